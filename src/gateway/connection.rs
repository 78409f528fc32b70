//! The connection the gateway holds and its lifecycle state, and how outputs are queued
//! for it: frames tagged with their connection, events kept before the terminal one.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Idle,
    Dialing(DialPurpose),
    Connected,
    Waiting,
    Held,
    Closed,
    Revoked,
}

/// Everything that lives exactly as long as one socket.
#[derive(Debug)]
pub(super) struct Connection {
    pub(super) generation: u64,
    /// When the first descriptor arrived; `None` while the handshake is open.
    pub(super) open_since: Option<Instant>,
    /// `going_idle` frames written and acks received on this socket. Acks come back in
    /// order, so only the ack that brings the two counts level answers the latest request:
    /// a late ack for an earlier, timed-out request can never satisfy a newer one.
    pub(super) idle_sent: u64,
    pub(super) idle_acked: u64,
    /// A `go_idle` awaits its ack; `true` when it was a `go_dormant`.
    pub(super) idle_waiter: Option<bool>,
    /// `disconnect` started: new commands fail, pending requests drain.
    pub(super) closing: bool,
    /// A `go_dormant` was acked: close when the current input is processed.
    pub(super) dormant_close: bool,
}

/// What follows once a socket the machine asked to close has reported its end (or the
/// close timeout gave up on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterClose {
    Nothing,
    /// `disconnect`: the terminal event.
    Terminal,
    /// A dormant or handshake-timeout close: the redial.
    Redial,
}

/// How a connection ended, for deciding what comes next.
pub(super) enum End {
    Closed { code: Option<u16>, reason: String },
    HandshakeTimeout,
    Dormant,
}

impl RelayMachine {
    /// A machine for `config`, idle until [`connect`](Self::connect).
    ///
    /// `seed` is the only source of randomness: request ids and backoff jitter. Give each
    /// process its own (from the operating system); tests pass a fixed one.
    pub fn new(mut config: GatewayConfig, seed: u64) -> Result<Self, ConfigError> {
        if config.identities.is_empty() {
            config.identities.push(Identity::new("relay", ""));
        }
        config.validate()?;
        let core = Core::new(config.max_frame_len);
        let hasher = crate::hash::SeededFx::new(seed);
        Ok(Self {
            core,
            rng: Rng::new(seed),
            routes: Bounded::new(config.route_capacity, hasher),
            handed: Handed::new(config.delivery_memory, hasher),
            config,
            state: State::Idle,
            connection: None,
            ladder: Ladder::default(),
            generation: 0,
            socket: None,
            handshake_succeeded: false,
            auth_retry_pending: false,
            auth_retry_generation: None,
            dormant: false,
            dormant_wait: false,
            hold_redial: false,
            descriptors: descriptors::Descriptors::new(),
            pending: Pending::new(hasher),
            timers: Timers::default(),
            terminal: false,
            close_due: false,
            closing_socket: None,
            now: None,
        })
    }

    /// The coarse state.
    pub fn state(&self) -> GatewayState {
        match self.state {
            State::Idle => GatewayState::Idle,
            State::Dialing(_) => GatewayState::Dialing,
            State::Connected => match &self.connection {
                Some(c) if c.closing => GatewayState::Closing,
                Some(c) if c.open_since.is_some() => GatewayState::Open,
                _ => GatewayState::AwaitingDescriptor,
            },
            State::Waiting => GatewayState::Waiting,
            State::Held => GatewayState::Held,
            State::Closed => GatewayState::Closed,
            State::Revoked => GatewayState::Revoked,
        }
    }

    /// Bytes of a partial frame held back on this connection, waiting for its newline.
    /// Never more than `max_frame_len`: the memory one connection's input can pin.
    pub fn buffered_len(&self) -> usize {
        self.connection
            .as_ref()
            .map_or(0, |_| self.core.buffered_len())
    }

    /// The generation of the latest dial.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Whether a new frame may be written now, and if not, why.
    pub(super) fn writable(&self) -> Result<(), SendError> {
        match (self.state, &self.connection) {
            (State::Connected, Some(c)) if c.closing => Err(SendError::Closing),
            (State::Connected, Some(_)) => Ok(()),
            (State::Closed, _) => Err(SendError::Closed),
            (State::Revoked, _) => Err(SendError::Revoked),
            _ => Err(SendError::NotConnected),
        }
    }

    pub(super) fn diagnostic(&mut self, diagnostic: Diagnostic) {
        if self.core.admit_diagnostic() {
            crate::trace::info!(generation = self.generation, diagnostic = %diagnostic, "diagnostic");
            self.event(GatewayEvent::Diagnostic(diagnostic));
        }
    }

    /// Queues an event; once the terminal event is queued, it stays the last output.
    pub(super) fn event(&mut self, event: GatewayEvent) {
        if self.terminal {
            self.core.outputs.event_before_last(event);
        } else {
            self.core.outputs.event(event);
        }
    }

    /// Queues a frame on the current connection.
    pub(super) fn transmit(&mut self, frame: &Frame, carries: Carries) {
        if let Some(generation) = self.connection.as_ref().map(|c| c.generation) {
            self.core.outputs.transmit(generation, frame, carries);
        }
    }
}

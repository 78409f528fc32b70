//! The gateway role: [`RelayMachine`].

mod acks;
mod disconnect;
mod handshake;
mod idle;
mod reconnect;
mod requests;
mod routes;
mod timers;
mod types;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bounded::Bounded;
use crate::codec::{DecodeError, Salvage};
use crate::conn_core::{Core, Step};
use crate::outputs::{Carries, Item};
use crate::pending::Pending;
use crate::rng::Rng;
use crate::wire::{
    BufferId, CapabilityDescriptor, Frame, Hello, Inbound, InboundAck, Interrupt, Outbound,
    OutboundAction, OutboundResult, PassthroughFrame, RequestId,
};
use acks::Handed;
pub use disconnect::drain_grace;
pub use reconnect::BackoffConfig;
use reconnect::Ladder;
pub use routes::ChatRoute;
pub use timers::TimerKind;
use timers::Timers;
pub use types::{
    AckError, ConfigError, ConnectFailure, ConnectionCommand, Diagnostic, DialPurpose,
    GatewayConfig, GatewayEvent, GatewayState, Identity, MAX_DURATION, MAX_IDENTITIES, Output,
    RequestFailure,
};

/// WebSocket close code by which a connector refuses or revokes a credential.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;

/// Close reason that marks a 4401 as "token too old, secret still valid".
pub const REASON_EXPIRED: &str = "expired";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
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
struct Connection {
    generation: u64,
    /// When the first descriptor arrived; `None` while the handshake is open.
    open_since: Option<Instant>,
    /// `going_idle` frames written and acks received on this socket. Acks come back in
    /// order, so only the ack that brings the two counts level answers the latest request:
    /// a late ack for an earlier, timed-out request can never satisfy a newer one.
    idle_sent: u64,
    idle_acked: u64,
    /// A `go_idle` awaits its ack; `true` when it was a `go_dormant`.
    idle_waiter: Option<bool>,
    /// `disconnect` started: new commands fail, pending requests drain.
    closing: bool,
    /// A `go_dormant` was acked: close when the current input is processed.
    dormant_close: bool,
}

/// How a connection ended, for deciding what comes next.
enum End {
    Closed { code: Option<u16>, reason: String },
    HandshakeTimeout,
    Dormant,
}

/// The gateway side of the relay protocol as a pure state machine.
///
/// It owns no socket, clock, thread or random source. The driver feeds it what happened
/// and carries out what it asks for, in one loop:
///
/// ```text
/// loop {
///     while let Some(output) = machine.poll_output() {   // one stream, in causal order
///         match output {
///             Output::Transmit(t) => write t as one text message on the current socket,
///             Output::Command(c)  => dial, or close the socket (after the frames before it),
///             Output::Event(e)    => hand e to the application (it may call commands),
///         }
///     }
///     // None: nothing left. Now wait for one input and feed it:
///     //   a socket message       -> handle_input(now, bytes)
///     //   poll_timeout() passed  -> handle_timeout(now)
///     //   the socket's fate      -> on_connected(now) / on_dial_failed(now, why) / on_closed(now, code, reason)
///     //   an application command -> send / interrupt / ack_inbound / go_idle / disconnect ...
/// }
/// ```
///
/// **One ordered output stream.** [`poll_output`](Self::poll_output) returns frames,
/// socket commands and events in exactly the order the machine produced them, so carrying
/// each out before taking the next is always right: an ack queued before a close is
/// written before it, and the terminal event ([`GatewayEvent::Closed`],
/// [`GatewayEvent::Revoked`]) is the last output of all. A driver may stop once it has
/// seen a terminal event *and* `poll_output` has returned `None`.
///
/// **Outputs belong to their connection.** What the driver has not taken when its socket
/// ends ([`on_closed`](Self::on_closed)) is discarded and accounted for, never written on
/// the next connection: a request among it resolves as [`RequestFailure::NotWritten`]
/// (definitely not sent), an ack stays owed and is written on the next connection, an
/// interrupt comes back as [`GatewayEvent::InterruptNotSent`].
///
/// **Every buffered delivery reaches the application once.** The machine remembers the
/// deliveries it handed over ([`GatewayConfig::delivery_memory`]); a redelivery is not
/// handed over again, and acked again by the machine if the application acked it. Ack with
/// [`ack_inbound`](Self::ack_inbound) whenever the application owns a delivery, whichever
/// connection brought it.
///
/// **Inputs are handled as outputs are taken.** `handle_input` only hands the bytes over;
/// each frame is decoded and handled when [`poll_output`](Self::poll_output) runs dry, with
/// the `now` of its input, so what one message can make the machine hold is the message
/// itself. The accessors (`state`, `in_flight`, `chat_descriptor`, ...) reflect the frames
/// handled so far: take the outputs before asking. Any other input first handles every
/// frame handed in before it.
///
/// **Time is monotonic and yours.** Every call takes `now`; pass `Instant::now()` (or a
/// virtual clock in tests) and never let it go backwards. Deadlines are compared with
/// `<=`, so calling `handle_timeout` early or twice does nothing.
///
/// **Randomness is yours too.** The `seed` given to [`new`](Self::new) is the only source
/// of request ids and backoff jitter: same seed and inputs, same outputs. Seed each
/// process from the operating system, or a fleet mints the same request ids and comes back
/// after a connector restart at the same instant.
///
/// **Requests resolve exactly once.** [`send`](Self::send) either fails at once with a
/// [`RequestFailure`] that is never ambiguous (nothing was written), or returns an id that
/// later resolves in exactly one [`GatewayEvent::Response`]: the connector's result, or a
/// failure whose [`is_ambiguous`](RequestFailure::is_ambiguous) says whether the frame may
/// have been written.
///
/// **Disconnect drains.** [`disconnect`](Self::disconnect) refuses new commands at once,
/// lets pending requests finish for [`drain_grace`] of the remaining budget, then, once
/// the application has taken every output before (and acked what it owns), closes and
/// fails what is left as ambiguous.
///
/// **The driver dials only when told.** Reconnection (backoff ladder, dormant cadence,
/// redial hold, the two-strike 4401 rule) is policy inside the machine; a
/// [`ConnectionCommand::Dial`] says when, and its purpose says whether it is the
/// fresh-token retry. The driver holds one socket at a time: after it carried out a
/// `Close` command it reports nothing more about that socket.
///
/// ```
/// use std::time::{Duration, Instant};
/// use relay_machine::gateway::{ConnectionCommand, GatewayConfig, GatewayEvent, Identity, Output, RelayMachine};
/// use relay_machine::wire::SendAction;
///
/// let config = GatewayConfig { identities: vec![Identity::new("telegram", "701")], ..Default::default() };
/// let mut gw = RelayMachine::new(config, 7).unwrap();
/// let t0 = Instant::now();
///
/// gw.connect(t0).unwrap();
/// assert!(matches!(gw.poll_output(), Some(Output::Command(ConnectionCommand::Dial { .. }))));
/// gw.on_connected(t0); // the driver's WebSocket is open
/// let Some(Output::Transmit(hello)) = gw.poll_output() else { panic!() };
/// assert_eq!(hello.as_str(), "{\"type\":\"hello\",\"platform\":\"telegram\",\"botId\":\"701\"}\n");
///
/// let descriptor = br#"{"type":"descriptor","descriptor":{"contract_version":1,"platform":"telegram","label":"Telegram","max_message_length":4096,"supports_draft_streaming":false,"supports_edit":true,"supports_threads":false,"markdown_dialect":"plain","len_unit":"utf16"}}"#;
/// gw.handle_input(t0, descriptor);
/// gw.handle_input(t0, b"\n");
/// assert!(matches!(gw.poll_output(), Some(Output::Event(GatewayEvent::HandshakeComplete { .. }))));
/// while gw.poll_output().is_some() {}
///
/// let action = SendAction { chat_id: "42".into(), content: "hi".into(), ..Default::default() };
/// let id = gw.send(t0, action, None).unwrap();
/// assert!(matches!(gw.poll_output(), Some(Output::Transmit(t)) if t.starts_with("{\"type\":\"outbound\"")));
///
/// // No result within 30 s: the request resolves as ambiguous.
/// let later = t0 + Duration::from_secs(30);
/// assert_eq!(gw.poll_timeout(), Some(later));
/// gw.handle_timeout(later);
/// let Some(Output::Event(GatewayEvent::Response { id: rid, result: Err(failure) })) = gw.poll_output() else { panic!() };
/// assert_eq!(rid, id);
/// assert!(failure.is_ambiguous());
/// ```
#[derive(Debug)]
pub struct RelayMachine {
    config: GatewayConfig,
    state: State,
    connection: Option<Connection>,
    rng: Rng,
    ladder: Ladder,
    generation: u64,
    /// The socket the driver holds: reported open and not yet closed by a `Close` it took
    /// or by `on_closed`. `on_closed` is about this socket.
    socket: Option<u64>,
    /// Sticky: some connection ever completed its handshake (drives the 4401 rules).
    handshake_succeeded: bool,
    /// The next connection that opens is the fresh-token retry after a first strike.
    auth_retry_pending: bool,
    /// The connection opened by the fresh-token retry; a 4401 on it is the second strike.
    auth_retry_generation: Option<u64>,
    dormant: bool,
    /// The next backoff wait is the dormant cadence (the close was a `go_dormant`).
    dormant_wait: bool,
    hold_redial: bool,
    default_descriptor: Option<CapabilityDescriptor>,
    descriptors: BTreeMap<String, CapabilityDescriptor>,
    pending: Pending,
    /// Buffered deliveries handed to the application (held, acked, owed).
    handed: Handed,
    /// Routing facts of each chat's latest inbound (bounded, least recent forgotten).
    routes: Bounded<String, ChatRoute>,
    timers: Timers,
    /// The bytes handed in, the diagnostics budget, the ordered outputs.
    core: Core<ConnectionCommand, GatewayEvent>,
    /// The terminal event is queued: it stays the last output.
    terminal: bool,
    /// `disconnect` is done draining: close once every output before is taken.
    close_due: bool,
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
        if config.identities.len() > MAX_IDENTITIES {
            return Err(ConfigError::TooManyIdentities(config.identities.len()));
        }
        for (i, identity) in config.identities.iter().enumerate() {
            if config.identities[..i]
                .iter()
                .any(|other| other.platform == identity.platform)
            {
                return Err(ConfigError::DuplicatePlatform(identity.platform.clone()));
            }
        }
        if config.max_in_flight == 0 {
            return Err(ConfigError::Zero("max_in_flight"));
        }
        if config.max_frame_len == 0 {
            return Err(ConfigError::Zero("max_frame_len"));
        }
        let backoff = &config.backoff;
        for (name, duration) in [
            ("handshake_timeout", config.handshake_timeout),
            ("request_timeout", config.request_timeout),
            ("go_idle_timeout", config.go_idle_timeout),
            ("disconnect_budget", config.disconnect_budget),
            ("backoff.base", backoff.base),
            ("backoff.cap", backoff.cap),
            ("backoff.stable_after", backoff.stable_after),
            ("backoff.dormant_cadence", backoff.dormant_cadence),
            ("backoff.hold_cap", backoff.hold_cap),
        ] {
            if duration > MAX_DURATION {
                return Err(ConfigError::TooLong(name));
            }
        }
        let core = Core::new(config.max_frame_len);
        Ok(Self {
            core,
            rng: Rng::new(seed),
            routes: Bounded::new(config.route_capacity),
            handed: Handed::new(config.delivery_memory),
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
            default_descriptor: None,
            descriptors: BTreeMap::new(),
            pending: Pending::default(),
            timers: Timers::default(),
            terminal: false,
            close_due: false,
        })
    }

    /// The next output, in the order the machine produced it; `None` when there is none.
    /// Carry it out before taking the next, and take them all after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        let item = loop {
            if let Some(item) = self.core.outputs.pop() {
                break item;
            }
            // Dry: decode the next frame handed in, if any.
            if self.step_input() {
                continue;
            }
            if !self.close_due {
                return None;
            }
            // The application has handled everything before the close, acks included.
            self.finish_close();
        };
        Some(match item {
            Item::Transmit { line, .. } => Output::Transmit(line),
            Item::Command { conn, command } => {
                if matches!(command, ConnectionCommand::Close { .. })
                    && conn.is_some()
                    && conn == self.socket
                {
                    self.socket = None;
                }
                Output::Command(command)
            }
            Item::Event(event) => Output::Event(event),
        })
    }

    /// The earliest deadline; call [`handle_timeout`](Self::handle_timeout) when it
    /// passes. `None` when nothing is timed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timer().map(|(at, _)| at)
    }

    /// The earliest deadline and what it is for.
    #[must_use]
    pub fn next_timer(&self) -> Option<(Instant, TimerKind)> {
        let timers = self.timers.iter();
        let request = self
            .pending
            .next_deadline()
            .map(|at| (at, TimerKind::Request));
        timers.chain(request).min()
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

    /// The configured identities, in `hello` order.
    pub fn identities(&self) -> &[Identity] {
        &self.config.identities
    }

    /// Requests awaiting their result.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
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

    /// Feeds the payload of one WebSocket message (text or binary). Its frames are decoded
    /// one at a time, as [`poll_output`](Self::poll_output) runs dry, each with this `now`.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.flush_input();
        if self.connection.is_none() {
            if !self.terminal {
                self.diagnostic(Diagnostic::InputWhileDisconnected(bytes.len()));
            }
            return;
        }
        self.core.push(now, bytes);
    }

    /// Handles every frame handed in and not decoded yet: any input but bytes comes after
    /// them, so nothing overtakes a result that has already arrived.
    pub(super) fn flush_input(&mut self) {
        while self.step_input() {}
    }

    /// Decodes and handles the next frame handed in, or finishes the input; `false` when
    /// there is nothing to decode.
    fn step_input(&mut self) -> bool {
        match self.core.step() {
            None => return false,
            Some(Step::Frame(now, Ok(frame))) => self.handle_frame(now, frame),
            Some(Step::Frame(_, Err(error))) => self.on_bad_frame(error),
            Some(Step::Done(now, suppressed)) => {
                if let Some(count) = suppressed {
                    self.event(GatewayEvent::Diagnostic(Diagnostic::Suppressed(count)));
                }
                if self.connection.as_ref().is_some_and(|c| c.dormant_close) {
                    self.close_socket("dormant");
                    self.end_connection(now, End::Dormant);
                }
            }
        }
        true
    }

    /// Acts on every deadline that is due at `now`. Spurious calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.flush_input();
        while let Some(id) = self.pending.pop_expired(now) {
            self.respond(id, Err(RequestFailure::Timeout));
        }
        if self.timers.fire(TimerKind::Handshake, now) && self.state == State::Connected {
            self.close_socket("handshake timeout");
            self.end_connection(now, End::HandshakeTimeout);
        }
        if self.timers.fire(TimerKind::GoIdle, now) {
            if let Some(dormant) = self.connection.as_mut().and_then(|c| c.idle_waiter.take()) {
                self.event(GatewayEvent::GoingIdle {
                    acked: false,
                    dormant,
                });
            }
        }
        if self.timers.fire(TimerKind::Drain, now) {
            self.close_due = true;
        }
        if self.timers.fire(TimerKind::Redial, now) {
            match self.state {
                State::Waiting if self.hold_redial => {
                    self.state = State::Held;
                    let until = now + self.config.backoff.hold_cap;
                    self.timers.set(TimerKind::Redial, until);
                    self.event(GatewayEvent::RedialHeld { until });
                }
                State::Waiting | State::Held => {
                    self.hold_redial = false;
                    self.dial(DialPurpose::Backoff);
                }
                State::Idle
                | State::Dialing(_)
                | State::Connected
                | State::Closed
                | State::Revoked => {}
            }
        }
        self.finish_close_if_drained();
    }

    pub(super) fn handle_frame(&mut self, now: Instant, frame: Frame) {
        match frame {
            Frame::Descriptor(d) => self.on_descriptor(now, d.descriptor),
            Frame::Inbound(inbound) => {
                let Inbound { event, buffer_id } = *inbound;
                if !self.admit(buffer_id.as_ref(), || acks::digest(&event)) {
                    return;
                }
                let source = &event.source;
                if !source.chat_id.is_empty() {
                    self.routes.insert(
                        source.chat_id.clone(),
                        ChatRoute {
                            platform: source.platform.clone(),
                            scope_id: source.scope_id.clone(),
                            user_id: source.user_id.clone(),
                            profile: source.profile.clone(),
                        },
                    );
                }
                self.event(GatewayEvent::Inbound {
                    event: Box::new(event),
                    buffer_id,
                });
            }
            Frame::PassthroughForward(PassthroughFrame { forward, buffer_id }) => {
                if self.admit(buffer_id.as_ref(), || acks::digest(&forward)) {
                    self.event(GatewayEvent::Passthrough {
                        forward: Box::new(forward),
                        buffer_id,
                    });
                }
            }
            Frame::OutboundResult(OutboundResult { request_id, result }) => {
                if self.pending.remove(&request_id) {
                    self.resolve(request_id, Ok(result));
                } else {
                    self.diagnostic(Diagnostic::UnknownResult(request_id));
                }
            }
            Frame::InterruptInbound(i) => self.event(GatewayEvent::Interrupt {
                session_key: i.session_key,
                chat_id: i.chat_id,
            }),
            Frame::GoingIdleAck => self.on_going_idle_ack(),
            other @ (Frame::Hello(_)
            | Frame::InboundAck(_)
            | Frame::Outbound(_)
            | Frame::Interrupt(_)
            | Frame::GoingIdle
            | Frame::Unknown(_)) => {
                self.diagnostic(Diagnostic::UnexpectedFrame(other.frame_type().to_owned()));
            }
        }
    }

    /// A frame that did not decode may still name the request or delivery it belongs to.
    pub(super) fn on_bad_frame(&mut self, error: DecodeError) {
        match error.salvage.clone() {
            Some(Salvage::OutboundResult(id)) if self.pending.remove(&id) => {
                let failure = RequestFailure::InvalidResult(error.message.clone());
                self.resolve(id, Err(failure));
            }
            Some(Salvage::Delivery(buffer_id)) => {
                // Keyed on what made it undecodable: a redelivery of the same poison line
                // is recognised, a good delivery that reuses the id is not swallowed.
                let digest = acks::digest(&(error.kind.as_str(), &error.message));
                if self.admit(Some(&buffer_id), || digest) {
                    // Never suppressed by the diagnostics budget: it must be acked.
                    return self.event(GatewayEvent::Undeliverable { buffer_id, error });
                }
                return;
            }
            Some(Salvage::OutboundResult(_) | Salvage::Outbound(_)) | None => {}
        }
        self.diagnostic(Diagnostic::Decode(error));
    }

    /// Whether a new frame may be written now, and if not, why.
    pub(super) fn writable(&self) -> Result<(), RequestFailure> {
        match (self.state, &self.connection) {
            (State::Connected, Some(c)) if c.closing => Err(RequestFailure::Closing),
            (State::Connected, Some(_)) => Ok(()),
            (State::Closed, _) => Err(RequestFailure::Closed),
            (State::Revoked, _) => Err(RequestFailure::Revoked),
            _ => Err(RequestFailure::NotConnected),
        }
    }

    pub(super) fn diagnostic(&mut self, diagnostic: Diagnostic) {
        if self.core.admit_diagnostic() {
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

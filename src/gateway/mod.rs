//! The gateway role: [`RelayMachine`].

mod backoff;
mod handed;
mod routes;
mod types;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bounded::Bounded;
use crate::budget::{DiagnosticBudget, INPUT_SLICE};
use crate::codec::{DecodeError, FrameDecoder, Salvage};
use crate::outputs::{Carries, Item, Queue};
use crate::pending::Pending;
use crate::rng::Rng;
use crate::wire::{
    BufferId, CapabilityDescriptor, Frame, Hello, Inbound, InboundAck, Interrupt, Outbound,
    OutboundAction, OutboundResult, PassthroughFrame, RequestId,
};
use handed::{Arrival, Handed};

pub use backoff::BackoffConfig;
use backoff::Ladder;
pub use routes::ChatRoute;
pub use types::{
    AckError, ConfigError, ConnectFailure, ConnectionCommand, Diagnostic, DialPurpose,
    GatewayConfig, GatewayEvent, GatewayState, Identity, MAX_DURATION, MAX_IDENTITIES, Output,
    RequestFailure,
};

/// WebSocket close code by which a connector refuses or revokes a credential.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;

/// Close reason that marks a 4401 as "token too old, secret still valid".
pub const REASON_EXPIRED: &str = "expired";

/// The pause a disconnect grants pending requests, from the remaining shutdown budget:
/// `max(0, min(5 s, budget − 3.5 s))` (protocol.md §6.9). 5 s gives 1.5 s; 3.5 s or less
/// gives none.
pub fn drain_grace(budget: Duration) -> Duration {
    budget
        .saturating_sub(Duration::from_millis(3500))
        .min(Duration::from_secs(5))
}

/// Which deadline [`RelayMachine::poll_timeout`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TimerKind {
    /// The first descriptor is due.
    Handshake,
    /// The `going_idle_ack` is due.
    GoIdle,
    /// A backoff wait or a redial hold ends.
    Redial,
    /// The disconnect drain grace ends.
    Drain,
    /// A request's result is due.
    Request,
}

const TIMERS: [TimerKind; 4] = [
    TimerKind::Handshake,
    TimerKind::GoIdle,
    TimerKind::Redial,
    TimerKind::Drain,
];

/// The connection timers: one slot per kind, so finding the next one is a constant-time
/// scan of four slots plus the first entry of the request index.
#[derive(Debug, Default)]
struct Timers([Option<Instant>; 4]);

impl Timers {
    fn slot(kind: TimerKind) -> usize {
        match kind {
            TimerKind::Handshake => 0,
            TimerKind::GoIdle => 1,
            TimerKind::Redial => 2,
            TimerKind::Drain | TimerKind::Request => 3,
        }
    }
    fn set(&mut self, kind: TimerKind, at: Instant) {
        if let Some(slot) = self.0.get_mut(Self::slot(kind)) {
            *slot = Some(at);
        }
    }
    fn clear(&mut self, kind: TimerKind) {
        if let Some(slot) = self.0.get_mut(Self::slot(kind)) {
            *slot = None;
        }
    }
    fn get(&self, kind: TimerKind) -> Option<Instant> {
        self.0.get(Self::slot(kind)).copied().flatten()
    }
    /// Clears and reports `kind` if it is due at `now`.
    fn fire(&mut self, kind: TimerKind, now: Instant) -> bool {
        let due = self.get(kind).is_some_and(|at| at <= now);
        if due {
            self.clear(kind);
        }
        due
    }
}

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
    decoder: FrameDecoder,
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
    /// Caps the diagnostics waiting in the output queue.
    diagnostics: DiagnosticBudget,
    /// Routing facts of each chat's latest inbound (bounded, least recent forgotten).
    routes: Bounded<String, ChatRoute>,
    timers: Timers,
    outputs: Queue<ConnectionCommand, GatewayEvent>,
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
        Ok(Self {
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
            diagnostics: DiagnosticBudget::default(),
            timers: Timers::default(),
            outputs: Queue::default(),
            terminal: false,
            close_due: false,
        })
    }

    // ----- outputs -------------------------------------------------------------------

    /// The next output, in the order the machine produced it; `None` when there is none.
    /// Carry it out before taking the next, and take them all after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.close_due && self.outputs.is_empty() {
            // The application has handled everything before the close, acks included.
            self.finish_close();
        }
        Some(match self.outputs.pop()? {
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
            Item::Event(event) => {
                if let GatewayEvent::Diagnostic(_) = event {
                    self.diagnostics.taken();
                }
                Output::Event(event)
            }
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
        let timers = TIMERS
            .iter()
            .filter_map(|&kind| self.timers.get(kind).map(|at| (at, kind)));
        let request = self
            .pending
            .next_deadline()
            .map(|at| (at, TimerKind::Request));
        timers.chain(request).min()
    }

    // ----- queries -------------------------------------------------------------------

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

    /// The first descriptor of the current connection: the session default.
    pub fn default_descriptor(&self) -> Option<&CapabilityDescriptor> {
        self.default_descriptor.as_ref()
    }

    /// The latest descriptor for `platform` on the current connection.
    pub fn descriptor(&self, platform: &str) -> Option<&CapabilityDescriptor> {
        self.descriptors.get(platform)
    }

    /// Every descriptor of the current connection, by platform.
    pub fn descriptors(&self) -> impl Iterator<Item = &CapabilityDescriptor> {
        self.descriptors.values()
    }

    /// The capabilities that govern replies to `chat_id` (protocol.md §3.5): the descriptor
    /// of the chat's platform when an inbound told us the platform and the connector
    /// described it, else the session default. Use it for `max_message_length`, text length
    /// in the chat's `len_unit` ([`CapabilityDescriptor::text_len`],
    /// [`CapabilityDescriptor::split`]) and op gating ([`CapabilityDescriptor::supports_op`]).
    pub fn chat_descriptor(&self, chat_id: &str) -> Option<&CapabilityDescriptor> {
        self.routes
            .get(chat_id)
            .and_then(|route| self.descriptors.get(&route.platform))
            .or(self.default_descriptor.as_ref())
    }

    /// What the machine remembers of `chat_id` from its latest inbound.
    pub fn route(&self, chat_id: &str) -> Option<&ChatRoute> {
        self.routes.get(chat_id)
    }

    /// Requests awaiting their result.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Buffered deliveries handed to the application and not yet acknowledged, whichever
    /// connection brought them.
    pub fn unacked(&self) -> usize {
        self.handed.holding()
    }

    /// Bytes of a partial frame held back on this connection, waiting for its newline.
    /// Never more than `max_frame_len`: the memory one connection's input can pin.
    pub fn buffered_len(&self) -> usize {
        self.connection
            .as_ref()
            .map_or(0, |c| c.decoder.buffered_len())
    }

    /// The last `go_dormant` was acknowledged and no dial has succeeded since.
    pub fn is_dormant(&self) -> bool {
        self.dormant
    }

    /// The generation of the latest dial.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    // ----- connection lifecycle ------------------------------------------------------

    /// Starts the first connection: asks the driver to dial. Does nothing unless idle.
    pub fn connect(&mut self, _now: Instant) -> Result<(), RequestFailure> {
        match self.state {
            State::Idle => {
                self.dial(DialPurpose::Initial);
                Ok(())
            }
            State::Closed => Err(RequestFailure::Closed),
            State::Revoked => Err(RequestFailure::Revoked),
            State::Dialing(_) | State::Connected | State::Waiting | State::Held => Ok(()),
        }
    }

    /// The dial asked for succeeded: the WebSocket is open. Writes one `hello` per
    /// identity and starts the handshake timer. Ignored unless a dial is in progress.
    pub fn on_connected(&mut self, now: Instant) {
        let State::Dialing(_) = self.state else {
            return;
        };
        if std::mem::take(&mut self.auth_retry_pending) {
            // Stamped only once the upgrade succeeded, so a network failure leaves the
            // marker for the next attempt.
            self.auth_retry_generation = Some(self.generation);
        }
        self.dormant = false;
        self.default_descriptor = None;
        self.descriptors.clear();
        self.socket = Some(self.generation);
        self.connection = Some(Connection {
            generation: self.generation,
            decoder: FrameDecoder::with_max_frame_len(self.config.max_frame_len),
            open_since: None,
            idle_sent: 0,
            idle_acked: 0,
            idle_waiter: None,
            closing: false,
            dormant_close: false,
        });
        self.state = State::Connected;
        for identity in self.config.identities.clone() {
            self.transmit(
                &Frame::Hello(Hello {
                    platform: identity.platform,
                    bot_id: identity.bot_id,
                    command_manifest: identity.command_manifest,
                }),
                Carries::Nothing,
            );
        }
        self.timers
            .set(TimerKind::Handshake, now + self.config.handshake_timeout);
    }

    /// The dial asked for failed before a WebSocket was open. Ignored unless a dial is in
    /// progress.
    pub fn on_dial_failed(&mut self, now: Instant, reason: &str) {
        self.dial_failed(now, None, reason);
    }

    /// The socket closed (by the peer or after an error), with the close code and reason
    /// when there was a close frame.
    ///
    /// It is about the socket the driver holds. Outputs of that socket not yet taken are
    /// discarded and accounted for (see the type's documentation). While a dial is in
    /// progress and no socket is held, it counts as a failed dial that keeps its code, so
    /// a 4401 refusing the upgrade follows the auth rules; otherwise it is ignored.
    pub fn on_closed(&mut self, now: Instant, code: Option<u16>, reason: &str) {
        if let Some(socket) = self.socket.take() {
            self.discard(socket);
            let current = self.connection.as_ref().map(|c| c.generation);
            if current != Some(socket) {
                // The machine had already ended this connection (its `Close` was queued).
                return;
            }
        }
        match self.state {
            State::Connected => self.end_connection(
                now,
                End::Closed {
                    code,
                    reason: reason.to_owned(),
                },
            ),
            State::Dialing(_) => self.dial_failed(now, code, reason),
            State::Idle | State::Waiting | State::Held | State::Closed | State::Revoked => {}
        }
    }

    /// A dial that never produced an open connection (§7.3, "failed dial").
    fn dial_failed(&mut self, now: Instant, code: Option<u16>, reason: &str) {
        let State::Dialing(purpose) = self.state else {
            return;
        };
        let refused = code == Some(CLOSE_UNAUTHORIZED);
        if purpose == DialPurpose::Initial {
            self.state = State::Idle;
            let failure = if refused {
                ConnectFailure::Unauthorized {
                    reason: reason.to_owned(),
                }
            } else {
                ConnectFailure::Dial(reason.to_owned())
            };
            self.event(GatewayEvent::ConnectFailed(failure));
            return;
        }
        if refused && self.auth_retry_pending {
            if reason == REASON_EXPIRED {
                // Only the token's age was wrong: the marker is spent, no latch.
                self.auth_retry_pending = false;
            } else {
                // The fresh-token retry was refused: the credential is revoked.
                return self.revoke(reason);
            }
        }
        if self.config.reconnect {
            self.schedule_redial(now);
        } else {
            self.state = State::Idle;
        }
    }

    fn revoke(&mut self, reason: &str) {
        self.state = State::Revoked;
        self.timers = Timers::default();
        self.event(GatewayEvent::Revoked {
            reason: reason.to_owned(),
        });
        self.terminal = true;
    }

    /// Parks the next due re-dial until [`release_redial`](Self::release_redial) or the
    /// hold cap passes. Applies to one wait only.
    pub fn hold_redial(&mut self) {
        self.hold_redial = true;
    }

    /// Releases a redial hold; a parked dial goes ahead now.
    pub fn release_redial(&mut self, _now: Instant) {
        self.hold_redial = false;
        if self.state == State::Held {
            self.timers.clear(TimerKind::Redial);
            self.dial(DialPurpose::Backoff);
        }
    }

    /// Shuts down for good: new commands fail at once; pending requests may finish for
    /// [`drain_grace`] of `budget` (the configured `disconnect_budget` when `None`); then,
    /// once the application has taken every output queued before (so a delivery that came
    /// in the same message as the last result can still be acked), the socket is closed,
    /// what is left fails as ambiguous ([`RequestFailure::Drained`]) and
    /// [`GatewayEvent::Closed`] ends the stream.
    pub fn disconnect(&mut self, now: Instant, budget: Option<Duration>) {
        match self.state {
            State::Closed | State::Revoked => {}
            State::Connected => {
                let Some(connection) = self.connection.as_mut() else {
                    return self.finish_close();
                };
                if connection.closing {
                    return;
                }
                connection.closing = true;
                let grace = drain_grace(budget.unwrap_or(self.config.disconnect_budget));
                if self.pending.is_empty() || grace.is_zero() {
                    self.close_due = true;
                } else {
                    self.timers.set(TimerKind::Drain, now + grace);
                }
            }
            State::Dialing(_) => {
                // A socket may be opening; tell the driver to abandon it.
                self.outputs.command(
                    Some(self.generation),
                    ConnectionCommand::Close {
                        code: 1000,
                        reason: "disconnect".to_owned(),
                    },
                );
                self.finish_close();
            }
            State::Idle | State::Waiting | State::Held => self.finish_close(),
        }
    }

    // ----- input ---------------------------------------------------------------------

    /// Feeds the payload of one WebSocket message (text or binary).
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        if self.connection.is_none() {
            if !self.terminal {
                self.diagnostic(Diagnostic::InputWhileDisconnected(bytes.len()));
            }
            return;
        }
        for slice in bytes.chunks(INPUT_SLICE) {
            let Some(connection) = self.connection.as_mut() else {
                break;
            };
            connection.decoder.push(slice);
            while let Some(item) = self
                .connection
                .as_mut()
                .and_then(|c| c.decoder.next_frame())
            {
                match item {
                    Ok(frame) => self.handle_frame(now, frame),
                    Err(e) => self.on_bad_frame(e),
                }
            }
        }
        if let Some(count) = self.diagnostics.take_suppressed() {
            self.event(GatewayEvent::Diagnostic(Diagnostic::Suppressed(count)));
        }
        if self.connection.as_ref().is_some_and(|c| c.dormant_close) {
            self.close_socket("dormant");
            self.end_connection(now, End::Dormant);
        }
    }

    /// Acts on every deadline that is due at `now`. Spurious calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
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

    // ----- commands ------------------------------------------------------------------

    /// Asks the connector to perform `action`, tagged with `platform` when given.
    ///
    /// Untagged actions for a chat seen in an inbound are tagged with that chat's
    /// platform, and the routing facts the connector needs to find the tenant
    /// (`metadata.scope_id`, `metadata.user_id`, `metadata.profile`) are added when the
    /// caller did not set them. `botId` rides with the platform when that platform was
    /// announced with one.
    ///
    /// Returns the request id, which resolves in exactly one
    /// [`GatewayEvent::Response`]; or fails at once, nothing written. Requests are accepted
    /// as soon as the socket is open, before the first descriptor, as in the reference
    /// (protocol.md §6.3): the connector processes frames in order, after the hellos.
    pub fn send(
        &mut self,
        now: Instant,
        action: impl Into<OutboundAction>,
        platform: Option<&str>,
    ) -> Result<RequestId, RequestFailure> {
        self.writable()?;
        if self.pending.len() >= self.config.max_in_flight {
            return Err(RequestFailure::InFlightLimit {
                limit: self.config.max_in_flight,
            });
        }
        let mut action = action.into();
        let route = action.chat_id().and_then(|c| self.routes.get(c)).cloned();
        if let (Some(route), Some(metadata)) = (&route, action.metadata_mut()) {
            for (key, value) in [
                ("scope_id", &route.scope_id),
                ("user_id", &route.user_id),
                ("profile", &route.profile),
            ] {
                if let Some(value) = value {
                    metadata
                        .entry(key)
                        .or_insert_with(|| Value::String(value.clone()));
                }
            }
        }
        // A chat's platform tags the reply only if this socket announced it: a connector
        // must refuse a tag for any other platform, while untagged falls back to the
        // session default.
        let platform = platform
            .map(str::to_owned)
            .or_else(|| {
                route
                    .map(|r| r.platform)
                    .filter(|p| self.identity(p).is_some())
            })
            .or_else(|| self.follow_up_platform(&action));
        let bot_id = platform
            .as_deref()
            .and_then(|p| self.identity(p))
            .map(|i| i.bot_id.clone())
            .filter(|b| !b.is_empty());
        let mut id = RequestId(self.rng.hex32());
        while self.pending.contains(&id) {
            id = RequestId(self.rng.hex32());
        }
        self.transmit(
            &Frame::Outbound(Outbound {
                request_id: id.clone(),
                action,
                platform,
                bot_id,
            }),
            Carries::Request(id.clone()),
        );
        self.pending
            .insert(id.clone(), now + self.config.request_timeout);
        Ok(id)
    }

    /// Asks the connector to stop the running turn of `session_key`. Fire-and-forget on
    /// the wire; fails at once, like a request, when it cannot be written.
    pub fn interrupt(
        &mut self,
        _now: Instant,
        session_key: &str,
        reason: Option<&str>,
    ) -> Result<(), RequestFailure> {
        self.writable()?;
        self.transmit(
            &Frame::Interrupt(Interrupt {
                session_key: session_key.to_owned(),
                reason: reason.map(str::to_owned),
            }),
            Carries::Interrupt(session_key.to_owned()),
        );
        Ok(())
    }

    /// Acknowledges a buffered delivery: the application now owns it durably and the
    /// connector may advance past it. Any delivery handed over and not yet acked can be
    /// acked, whichever connection brought it: the ack is written on the current
    /// connection, or owed to the next one (written once its handshake completes).
    pub fn ack_inbound(&mut self, _now: Instant, buffer_id: &BufferId) -> Result<(), AckError> {
        if matches!(self.state, State::Closed | State::Revoked) {
            return Err(AckError::Closed);
        }
        if !self.handed.ack(buffer_id) {
            return Err(AckError::Unknown(buffer_id.clone()));
        }
        self.write_ack(buffer_id.clone());
        Ok(())
    }

    /// Asks the connector to deliver further inbound for this instance to its durable
    /// buffer only. Ends in one [`GatewayEvent::GoingIdle`] (acked, or not within the
    /// go-idle timeout). While one is pending, another call joins it.
    ///
    /// The wire has no correlation id, so acks are matched by count on this connection: a
    /// late ack for a timed-out request can never satisfy a newer one. The price is that
    /// if a connector never answers one `going_idle`, no later one on the same connection
    /// can be acknowledged either; a new connection starts the count afresh.
    pub fn go_idle(&mut self, now: Instant) -> Result<(), RequestFailure> {
        self.start_idle(now, false)
    }

    /// [`go_idle`](Self::go_idle), then on ack close the socket and re-dial on the dormant
    /// cadence (usually parked by [`hold_redial`](Self::hold_redial) until the application
    /// has work). Without an ack the connection stays as it is.
    pub fn go_dormant(&mut self, now: Instant) -> Result<(), RequestFailure> {
        self.start_idle(now, true)
    }

    fn start_idle(&mut self, now: Instant, dormant: bool) -> Result<(), RequestFailure> {
        self.writable()?;
        let Some(connection) = self.connection.as_mut() else {
            return Err(RequestFailure::NotConnected);
        };
        if let Some(waiter) = connection.idle_waiter.as_mut() {
            *waiter |= dormant;
            return Ok(());
        }
        connection.idle_waiter = Some(dormant);
        connection.idle_sent += 1;
        self.transmit(&Frame::GoingIdle, Carries::Nothing);
        self.timers
            .set(TimerKind::GoIdle, now + self.config.go_idle_timeout);
        Ok(())
    }

    // ----- internals -----------------------------------------------------------------

    fn handle_frame(&mut self, now: Instant, frame: Frame) {
        match frame {
            Frame::Descriptor(d) => self.on_descriptor(now, d.descriptor),
            Frame::Inbound(inbound) => {
                let Inbound { event, buffer_id } = *inbound;
                if !self.admit(buffer_id.as_ref(), || handed::digest(&event)) {
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
                if self.admit(buffer_id.as_ref(), || handed::digest(&forward)) {
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
    fn on_bad_frame(&mut self, error: DecodeError) {
        match error.salvage.clone() {
            Some(Salvage::OutboundResult(id)) if self.pending.remove(&id) => {
                let failure = RequestFailure::InvalidResult(error.message.clone());
                self.resolve(id, Err(failure));
            }
            Some(Salvage::Delivery(buffer_id)) => {
                // Keyed on what made it undecodable: a redelivery of the same poison line
                // is recognised, a good delivery that reuses the id is not swallowed.
                let digest = handed::digest(&(error.kind.as_str(), &error.message));
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

    /// Whether a delivery goes to the application: a live one always; a buffered one once
    /// (a redelivery is dropped, and acked again if the application had acked it). Auto-ack
    /// writes the ack of a new one here.
    fn admit(&mut self, buffer_id: Option<&BufferId>, digest: impl FnOnce() -> u64) -> bool {
        let Some(id) = buffer_id else {
            return true;
        };
        match self.handed.arrive(id, digest(), self.config.auto_ack) {
            Arrival::New => {
                if self.config.auto_ack {
                    self.write_ack(id.clone());
                }
                true
            }
            Arrival::Held => false,
            Arrival::Acked => {
                self.write_ack(id.clone());
                false
            }
        }
    }

    /// Writes the ack of `id` on the current connection, or owes it to the next one.
    fn write_ack(&mut self, id: BufferId) {
        match self.connection.as_ref() {
            Some(connection) => {
                let generation = connection.generation;
                let frame = Frame::InboundAck(InboundAck {
                    buffer_id: id.clone(),
                });
                self.outputs.transmit(generation, &frame, Carries::Ack(id));
            }
            None => self.handed.owe(id),
        }
    }

    fn on_descriptor(&mut self, now: Instant, descriptor: CapabilityDescriptor) {
        let new_platform =
            !descriptor.platform.is_empty() && !self.descriptors.contains_key(&descriptor.platform);
        if new_platform && self.descriptors.len() >= MAX_IDENTITIES {
            // A connector describes what was announced, and no more than MAX_IDENTITIES
            // can be; without this bound every new platform name a peer invents would be
            // kept until the connection ends.
            return self.diagnostic(Diagnostic::TooManyDescriptors(descriptor.platform));
        }
        let announced = self
            .config
            .identities
            .iter()
            .any(|i| i.platform == descriptor.platform || i.platform == "relay");
        if !announced {
            self.diagnostic(Diagnostic::UnannouncedDescriptor(
                descriptor.platform.clone(),
            ));
        }
        if !descriptor.platform.is_empty() {
            self.descriptors
                .insert(descriptor.platform.clone(), descriptor.clone());
        }
        let first = self.default_descriptor.is_none();
        if first {
            self.default_descriptor = Some(descriptor.clone());
            self.handshake_succeeded = true;
            self.timers.clear(TimerKind::Handshake);
            if let Some(connection) = self.connection.as_mut() {
                connection.open_since = Some(now);
            }
            // Acks the application made while no connection could carry them.
            for id in self.handed.take_owed() {
                self.write_ack(id);
            }
            self.event(GatewayEvent::HandshakeComplete {
                platform: descriptor.platform.clone(),
            });
        }
        self.event(GatewayEvent::Descriptor(Box::new(descriptor)));
    }

    fn on_going_idle_ack(&mut self) {
        let Some(connection) = self.connection.as_mut() else {
            return;
        };
        if connection.idle_acked >= connection.idle_sent {
            // No `going_idle` is outstanding: this ack answers nothing. Counting it would
            // put the counts out of step for good, and no later request could ever be
            // answered on this connection.
            return self.diagnostic(Diagnostic::StrayGoingIdleAck);
        }
        connection.idle_acked += 1;
        let answers_latest = connection.idle_acked == connection.idle_sent;
        let waiter = if answers_latest {
            connection.idle_waiter.take()
        } else {
            None
        };
        let Some(dormant) = waiter else {
            return self.diagnostic(Diagnostic::StrayGoingIdleAck);
        };
        self.timers.clear(TimerKind::GoIdle);
        self.event(GatewayEvent::GoingIdle {
            acked: true,
            dormant,
        });
        if dormant {
            // Close once the rest of this input is processed: frames the connector wrote
            // before its ack (a result, say) arrived and must not be lost.
            if let Some(connection) = self.connection.as_mut() {
                connection.dormant_close = true;
            }
        }
    }

    /// Tears down the current connection and decides what comes next (§7.3).
    fn end_connection(&mut self, now: Instant, end: End) {
        let Some(connection) = self.connection.take() else {
            return;
        };
        // Descriptors describe a connection; the next one must send its own (§3.5).
        self.default_descriptor = None;
        self.descriptors.clear();
        self.timers.clear(TimerKind::Handshake);
        self.timers.clear(TimerKind::GoIdle);
        let lived = connection
            .open_since
            .map(|t| now.saturating_duration_since(t));
        for id in self.pending.drain() {
            self.respond(id, Err(RequestFailure::ConnectionLost));
        }
        if let Some(dormant) = connection.idle_waiter {
            self.event(GatewayEvent::GoingIdle {
                acked: false,
                dormant,
            });
        }
        let (code, reason) = match &end {
            End::Closed { code, reason } => (*code, reason.clone()),
            End::HandshakeTimeout => (None, "handshake timeout".to_owned()),
            End::Dormant => (Some(1000), "dormant".to_owned()),
        };
        self.event(GatewayEvent::Disconnected {
            code,
            reason: reason.clone(),
        });
        if connection.closing {
            return self.finish_close();
        }
        if lived.is_some_and(|l| l >= self.config.backoff.stable_after) {
            self.ladder.reset();
        }
        if !self.handshake_succeeded {
            // The first connection never completed: report it and let the caller decide.
            self.state = State::Idle;
            let failure = match end {
                End::HandshakeTimeout => ConnectFailure::HandshakeTimeout,
                End::Closed {
                    code: Some(CLOSE_UNAUTHORIZED),
                    reason,
                } => ConnectFailure::Unauthorized { reason },
                End::Closed { code, reason } => ConnectFailure::Closed { code, reason },
                End::Dormant => ConnectFailure::Closed { code, reason },
            };
            self.event(GatewayEvent::ConnectFailed(failure));
            return;
        }
        if code == Some(CLOSE_UNAUTHORIZED) && reason != REASON_EXPIRED {
            if self.auth_retry_generation == Some(connection.generation) {
                return self.revoke(&reason);
            }
            // First strike: re-dial at once with a fresh token, no backoff.
            self.auth_retry_pending = true;
            self.event(GatewayEvent::Reconnecting {
                at: now,
                purpose: DialPurpose::FreshToken,
            });
            self.dial(DialPurpose::FreshToken);
            return;
        }
        if matches!(end, End::Dormant) {
            self.dormant = true;
            self.dormant_wait = true;
        }
        if self.config.reconnect {
            self.schedule_redial(now);
        } else {
            self.state = State::Idle;
        }
    }

    fn schedule_redial(&mut self, now: Instant) {
        let wait = if std::mem::take(&mut self.dormant_wait) {
            self.config.backoff.dormant_cadence
        } else {
            self.ladder.next_wait(&self.config.backoff, &mut self.rng)
        };
        let at = now + wait;
        self.state = State::Waiting;
        self.timers.set(TimerKind::Redial, at);
        self.event(GatewayEvent::Reconnecting {
            at,
            purpose: DialPurpose::Backoff,
        });
    }

    fn dial(&mut self, purpose: DialPurpose) {
        self.generation += 1;
        self.state = State::Dialing(purpose);
        self.outputs.command(
            Some(self.generation),
            ConnectionCommand::Dial {
                generation: self.generation,
                purpose,
            },
        );
    }

    fn finish_close_if_drained(&mut self) {
        let draining = self.connection.as_ref().is_some_and(|c| c.closing);
        if draining && self.pending.is_empty() {
            self.close_due = true;
        }
    }

    fn finish_close(&mut self) {
        self.close_due = false;
        if let Some(connection) = self.connection.take() {
            self.close_socket_of(connection.generation, "disconnect");
            if let Some(dormant) = connection.idle_waiter {
                self.event(GatewayEvent::GoingIdle {
                    acked: false,
                    dormant,
                });
            }
        }
        for id in self.pending.drain() {
            self.respond(id, Err(RequestFailure::Drained));
        }
        self.timers = Timers::default();
        self.state = State::Closed;
        self.event(GatewayEvent::Closed);
        self.terminal = true;
    }

    /// Asks the driver to close the current connection's socket, after its queued frames.
    fn close_socket(&mut self, reason: &str) {
        if let Some(generation) = self.connection.as_ref().map(|c| c.generation) {
            self.close_socket_of(generation, reason);
        }
    }

    fn close_socket_of(&mut self, generation: u64, reason: &str) {
        let close = ConnectionCommand::Close {
            code: 1000,
            reason: reason.to_owned(),
        };
        self.outputs.command(Some(generation), close);
    }

    /// Takes back what the driver never took of connection `generation` and accounts for
    /// each: a request was definitely not sent, an ack is owed, an interrupt is reported.
    fn discard(&mut self, generation: u64) {
        for carried in self.outputs.discard(generation) {
            match carried {
                Carries::Request(id) => {
                    // Already resolved (as ambiguous) if the machine ended the connection
                    // itself; that stays true, and a request resolves only once.
                    if self.pending.remove(&id) {
                        self.respond(id, Err(RequestFailure::NotWritten));
                    }
                }
                Carries::Ack(id) => self.handed.owe(id),
                Carries::Interrupt(session_key) => {
                    self.event(GatewayEvent::InterruptNotSent { session_key });
                }
                Carries::Nothing => {}
            }
        }
    }

    /// Whether a new frame may be written now, and if not, why.
    fn writable(&self) -> Result<(), RequestFailure> {
        match (self.state, &self.connection) {
            (State::Connected, Some(c)) if c.closing => Err(RequestFailure::Closing),
            (State::Connected, Some(_)) => Ok(()),
            (State::Closed, _) => Err(RequestFailure::Closed),
            (State::Revoked, _) => Err(RequestFailure::Revoked),
            _ => Err(RequestFailure::NotConnected),
        }
    }

    fn identity(&self, platform: &str) -> Option<&Identity> {
        self.config
            .identities
            .iter()
            .find(|i| i.platform == platform)
    }

    /// A `follow_up` whose capability kind names an announced platform
    /// (`discord.interaction_token`) goes to that platform.
    fn follow_up_platform(&self, action: &OutboundAction) -> Option<String> {
        let OutboundAction::FollowUp(f) = action else {
            return None;
        };
        let prefix = f.kind.split('.').next()?;
        self.identity(prefix).map(|i| i.platform.clone())
    }

    fn respond(
        &mut self,
        id: RequestId,
        result: Result<crate::wire::ActionResult, RequestFailure>,
    ) {
        self.event(GatewayEvent::Response { id, result });
    }

    /// Resolves a request taken out of `pending`, and ends a disconnect's drain when it was
    /// the last.
    fn resolve(
        &mut self,
        id: RequestId,
        result: Result<crate::wire::ActionResult, RequestFailure>,
    ) {
        self.respond(id, result);
        self.finish_close_if_drained();
    }

    fn diagnostic(&mut self, diagnostic: Diagnostic) {
        if self.diagnostics.admit() {
            self.event(GatewayEvent::Diagnostic(diagnostic));
        }
    }

    /// Queues an event; once the terminal event is queued, it stays the last output.
    fn event(&mut self, event: GatewayEvent) {
        if self.terminal {
            self.outputs.event_before_last(event);
        } else {
            self.outputs.event(event);
        }
    }

    /// Queues a frame on the current connection.
    fn transmit(&mut self, frame: &Frame, carries: Carries) {
        if let Some(generation) = self.connection.as_ref().map(|c| c.generation) {
            self.outputs.transmit(generation, frame, carries);
        }
    }
}

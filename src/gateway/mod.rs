//! The gateway role: [`RelayMachine`].

mod acks;
mod config;
mod connection;
mod descriptors;
mod digest;
mod disconnect;
mod handshake;
mod idle;
mod reconnect;
mod requests;
mod routes;
mod timers;
mod types;

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bounded::Bounded;
use crate::codec::{DecodeError, Salvage};
use crate::conn_core::{Core, Step};
use crate::outputs::{Carries, Item};
use crate::pending::Pending;
use crate::rng::Rng;
pub use crate::wire::Identity;
use crate::wire::{
    BufferId, CapabilityDescriptor, Frame, Inbound, Interrupt, Outbound, OutboundAction,
    OutboundResult, PassthroughFrame, RequestId,
};
use acks::Handed;
pub use config::{ConfigError, GatewayConfig, MAX_DURATION};
use connection::{AfterClose, Connection, End, State};
pub use disconnect::drain_grace;
pub use reconnect::BackoffConfig;
use reconnect::Ladder;
pub use routes::ChatRoute;
pub use timers::TimerKind;
use timers::Timers;
pub use types::{
    AckError, ConnectFailure, ConnectionCommand, Diagnostic, DialPurpose, GatewayEvent,
    GatewayState, Output, RequestFailure, SendError,
};

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
///     // None: nothing left. Now wait for one input (the socket, the timer, a command).
/// }
/// ```
///
/// Methods by kind:
/// - outputs: [`poll_output`](Self::poll_output), [`poll_timeout`](Self::poll_timeout), [`next_timer`](Self::next_timer);
/// - inputs: [`handle_input`](Self::handle_input), [`handle_timeout`](Self::handle_timeout), [`on_connected`](Self::on_connected), [`on_dial_failed`](Self::on_dial_failed), [`on_closed`](Self::on_closed);
/// - application commands: [`connect`](Self::connect), [`send`](Self::send), [`interrupt`](Self::interrupt), [`ack_inbound`](Self::ack_inbound), [`go_idle`](Self::go_idle), [`go_dormant`](Self::go_dormant), [`hold_redial`](Self::hold_redial), [`release_redial`](Self::release_redial), [`disconnect`](Self::disconnect);
/// - accessors: [`state`](Self::state), [`identities`](Self::identities), [`default_descriptor`](Self::default_descriptor), [`descriptor`](Self::descriptor), [`descriptors`](Self::descriptors), [`chat_descriptor`](Self::chat_descriptor), [`route`](Self::route), [`in_flight`](Self::in_flight), [`unacked`](Self::unacked), [`buffered_len`](Self::buffered_len), [`is_dormant`](Self::is_dormant), [`generation`](Self::generation).
///
/// - **One ordered output stream.** Frames, socket commands and events come out of
///   [`poll_output`](Self::poll_output) in the order the machine produced them: an ack
///   queued before a close is written before it, and the terminal event
///   ([`GatewayEvent::Closed`], [`GatewayEvent::Revoked`]) is the last output. A driver may
///   stop once it has seen one *and* `poll_output` returned `None`.
/// - **Outputs belong to their connection.** What the driver had not taken when its socket
///   ended ([`on_closed`](Self::on_closed)) is discarded and accounted for, never written
///   on the next connection: a request resolves as [`RequestFailure::NotWritten`], an ack
///   is owed to the next connection, an interrupt comes back as
///   [`GatewayEvent::InterruptNotSent`].
/// - **Every buffered delivery reaches the application once** within
///   [`GatewayConfig::delivery_memory`]: a redelivery is not handed over again, and is
///   acked again if the application acked it. [`ack_inbound`](Self::ack_inbound) takes any
///   delivery the application holds, whichever connection brought it.
/// - **Inputs are handled as outputs are taken.** `handle_input` only hands the bytes over;
///   each frame is handled when `poll_output` runs dry, with the `now` of its input, so one
///   message makes the machine hold about the message itself. Accessors reflect the frames
///   handled so far: take the outputs before asking. Any other input first handles every
///   frame handed in before it.
/// - **Time and randomness are yours.** Every call takes a monotonic `now`; deadlines
///   compare with `<=`, so an early or repeated `handle_timeout` does nothing. The `seed` of
///   [`new`](Self::new) alone makes request ids and backoff jitter: seed each process from
///   the operating system, or a fleet shares its ids and its reconnect instants.
/// - **Requests resolve exactly once.** [`send`](Self::send) fails at once, nothing
///   written, or returns an id that resolves in exactly one [`GatewayEvent::Response`]:
///   the result, or a failure whose [`is_ambiguous`](RequestFailure::is_ambiguous) says
///   whether the frame may have been written. [`disconnect`](Self::disconnect) lets pending
///   requests drain for [`drain_grace`], then closes once every output before is taken.
/// - **The driver dials only when told.** Reconnection (backoff ladder, dormant cadence,
///   redial hold, the two-strike 4401 rule) is the machine's policy; a
///   [`ConnectionCommand::Dial`] says when and why. The driver holds one socket at a time:
///   after it carried out a `Close` it reports nothing more about that socket.
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
/// let Some(Output::Command(ConnectionCommand::Dial { generation, .. })) = gw.poll_output() else { panic!() };
/// gw.on_connected(t0, generation); // the driver's WebSocket is open
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
    /// (Non-zero: generations count from 1, and the niche keeps an idle machine 8 bytes
    /// smaller, within its 2 KiB.)
    auth_retry_generation: Option<std::num::NonZeroU64>,
    dormant: bool,
    /// The next backoff wait is the dormant cadence (the close was a `go_dormant`).
    dormant_wait: bool,
    hold_redial: bool,
    /// The current connection's descriptors and its session default.
    descriptors: descriptors::Descriptors,
    pending: Pending,
    /// Buffered deliveries handed to the application (held, acked, owed).
    handed: Handed,
    /// Routing facts of each chat's latest inbound (bounded, least recent forgotten).
    /// Each route is its own key, in one shared allocation that the age index shares.
    routes: Bounded<routes::RouteKey, ()>,
    timers: Timers,
    /// The bytes handed in, the diagnostics budget, the ordered outputs.
    core: Core<ConnectionCommand, GatewayEvent>,
    /// The terminal event is queued: it stays the last output.
    terminal: bool,
    /// `disconnect` is done draining: close once every output before is taken.
    close_due: bool,
    /// A socket the machine asked to close, awaiting `on_closed`, and what follows then.
    closing_socket: Option<(u64, AfterClose)>,
    /// The latest `now` seen, for deadlines set while outputs are taken.
    now: Option<Instant>,
}

impl RelayMachine {
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
                // Without a close timeout the driver forgets a socket once it closed it;
                // with one, it reports the socket's end.
                let forgotten = self.config.close_timeout.is_none();
                if forgotten
                    && matches!(command, ConnectionCommand::Close { .. })
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

    /// Feeds the payload of one WebSocket message (text or binary). Its frames are decoded
    /// one at a time, as [`poll_output`](Self::poll_output) runs dry, each with this `now`.
    ///
    /// Borrowed bytes are copied in; a [`Bytes`](bytes::Bytes) (a WebSocket library's
    /// message) is decoded in place, its frames' strings sharing it (see
    /// [`Payload`](crate::codec::Payload)).
    pub fn handle_input(&mut self, now: Instant, bytes: impl crate::codec::Payload) {
        self.flush_input();
        self.observe(now);
        self.proof_of_life(now);
        if self.connection.is_none() {
            if !self.terminal {
                self.diagnostic(Diagnostic::InputWhileDisconnected(bytes.byte_len()));
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
                    self.close_socket("dormant", now);
                    self.end_connection(now, End::Dormant);
                }
            }
        }
        true
    }

    pub(super) fn handle_frame(&mut self, now: Instant, frame: Frame) {
        match frame {
            Frame::Descriptor(d) => self.on_descriptor(now, d.descriptor),
            Frame::Inbound(inbound) => self.on_inbound(inbound),
            Frame::PassthroughForward(forward) => self.on_passthrough(forward),
            Frame::OutboundResult(OutboundResult { request_id, result }) => {
                self.on_result(request_id, result);
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
    pub(super) fn on_bad_frame(&mut self, error: Box<DecodeError>) {
        match error.salvage.clone() {
            Some(Salvage::OutboundResult(id)) if self.pending.remove(&id) => {
                let failure = RequestFailure::InvalidResult(error.message.clone());
                self.resolve(id, Err(failure));
            }
            Some(Salvage::Delivery(buffer_id)) => return self.on_undeliverable(buffer_id, error),
            Some(Salvage::OutboundResult(_) | Salvage::Outbound(_)) | None => {}
        }
        self.diagnostic(Diagnostic::Decode(error));
    }
}

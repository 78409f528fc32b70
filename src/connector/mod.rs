//! The connector role: [`ConnectorMachine`], one per gateway connection, and [`Instance`],
//! one per gateway instance, which owns what that instance's connections share: the
//! replay window over the application's durable buffer, superseding, and acks from any
//! connection.

mod handshake;
mod instance;
mod requests;
mod store;
mod types;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use crate::codec::{DecodeError, Salvage};
use crate::conn_core::{Core, Step};
use crate::outputs::{Carries, Item};
use crate::transmit::Transmit;
use crate::wire::close::UNAUTHORIZED as CLOSE_UNAUTHORIZED;
use crate::wire::{
    ActionResult, BufferId, CapabilityDescriptor, Descriptor, Frame, Identity, Inbound,
    InterruptInbound, Outbound, OutboundResult, PassthroughFrame, RequestId,
};

pub use instance::{ConnId, Instance, InstanceOutput, Live, LoadToken};
pub use store::{Delivery, DeliveryStore, MemoryStore};
pub use types::{
    ConnectorCommand, ConnectorConfig, ConnectorDiagnostic, ConnectorError, ConnectorEvent,
    INVALID_ACTION, Output, UNKNOWN_IDENTITY,
};

/// The connector has one connection per machine; its outputs are tagged with this.
const CONNECTION: u64 = 0;

/// The connector side of one gateway connection, as a pure state machine.
///
/// Same run-loop contract as [`RelayMachine`](crate::gateway::RelayMachine): after every
/// input (`handle_input` with a WebSocket message's payload, or a command), take
/// [`poll_output`](Self::poll_output) until `None` and carry out each output in order:
/// write a transmit, close on a command, hand an event to the application (which answers
/// with commands such as [`send_descriptor`](Self::send_descriptor) or
/// [`respond`](Self::respond), queuing more outputs). Frames queued before a close are
/// written before it. When the socket ends, report [`on_closed`](Self::on_closed): what was
/// not taken is discarded, never written anywhere else. It reads no clock; `now` is
/// accepted for symmetry and future timers, and must be monotonic.
///
/// Methods by kind:
/// - outputs: [`poll_output`](Self::poll_output);
/// - inputs: [`handle_input`](Self::handle_input), [`on_closed`](Self::on_closed);
/// - application commands: [`send_descriptor`](Self::send_descriptor), [`respond`](Self::respond), [`send_live`](Self::send_live), [`send_buffered`](Self::send_buffered), [`send_interrupt`](Self::send_interrupt), [`close`](Self::close), [`reject_auth`](Self::reject_auth);
/// - accessors: [`identities`](Self::identities), [`is_handshaken`](Self::is_handshaken), [`is_idle`](Self::is_idle), [`is_closed`](Self::is_closed), [`in_flight`](Self::in_flight), [`buffered_len`](Self::buffered_len).
///
/// It holds no buffer: a buffered delivery is written with
/// [`send_buffered`](Self::send_buffered) and its ack comes back as
/// [`ConnectorEvent::Acked`]. An [`Instance`] does that bookkeeping for every connection
/// of one gateway instance (the replay window, superseding); use it whenever the
/// connector buffers deliveries. A connector that only relays live traffic can drive this
/// machine alone.
///
/// ```
/// use std::time::Instant;
/// use relay_machine::connector::{ConnectorConfig, ConnectorEvent, ConnectorMachine, Output};
/// use relay_machine::wire::{BufferId, CapabilityDescriptor, MessageEvent};
///
/// let now = Instant::now();
/// let mut conn = ConnectorMachine::new(ConnectorConfig::default(), now);
/// conn.handle_input(now, b"{\"type\":\"hello\",\"platform\":\"telegram\",\"botId\":\"701\"}\n");
/// let Some(Output::Event(ConnectorEvent::Hello { identity, .. })) = conn.poll_output() else { panic!() };
/// conn.send_descriptor(now, CapabilityDescriptor::new(identity.platform, "Telegram")).unwrap();
/// conn.send_live(now, MessageEvent { text: "hi".into(), ..Default::default() }).unwrap();
/// let frames: Vec<String> = std::iter::from_fn(|| conn.poll_output())
///     .filter_map(|out| match out { Output::Transmit(t) => Some(t.into_string()), _ => None })
///     .collect();
/// assert!(frames[0].starts_with("{\"type\":\"descriptor\""));
/// assert!(frames[1].starts_with("{\"type\":\"inbound\""));
///
/// conn.handle_input(now, b"{\"type\":\"inbound_ack\",\"bufferId\":\"b-1\"}\n");
/// assert_eq!(conn.poll_output(), Some(Output::Event(ConnectorEvent::Acked(BufferId::from("b-1")))));
/// ```
#[derive(Debug)]
pub struct ConnectorMachine {
    config: ConnectorConfig,
    /// Shared with every [`ConnectorEvent::Outbound`] that acts as one of them: handing
    /// out a reference count instead of a copy saves two allocations per request.
    identities: Vec<Arc<Identity>>,
    /// A descriptor was sent: the handshake is answered.
    handshaken: bool,
    idle: bool,
    open_requests: HashSet<requests::OpenId, crate::hash::SeededFx>,
    /// Nothing more is written: closed by us, or the socket ended.
    closed: bool,
    /// Deadlines: the hello, the next keepalive Ping (from the first hello on), the
    /// liveness of the link.
    hello_due: Option<Instant>,
    ping_due: Option<Instant>,
    alive_until: Option<Instant>,
    /// Nothing more is read: the socket ended, or the credential was refused. A connection
    /// we closed otherwise still reads acks until its socket ends (the peer may send frames
    /// until it answers the close, and an ack on any connection counts).
    deaf: bool,
    /// The bytes handed in, the diagnostics budget, the ordered outputs.
    core: Core<ConnectorCommand, ConnectorEvent>,
}

impl ConnectorMachine {
    /// A machine for a gateway connection accepted at `now` (the TCP accept: the hello
    /// timeout covers the WebSocket upgrade too).
    pub fn new(config: ConnectorConfig, now: Instant) -> Self {
        // A zero bound would be due at every instant: it means off, as `None`.
        let bound = |d: Option<std::time::Duration>| d.filter(|d| !d.is_zero()).map(|d| now + d);
        Self {
            hello_due: bound(config.hello_timeout),
            // Keepalive starts at the hello: before it the socket may still be upgrading
            // (no Ping can be written yet), and the hello timeout bounds that wait.
            ping_due: None,
            alive_until: bound(config.liveness_timeout),
            core: Core::new(config.max_frame_len),
            config,
            identities: Vec::new(),
            handshaken: false,
            idle: false,
            open_requests: HashSet::with_hasher(requests::id_hashing()),
            closed: false,
            deaf: false,
        }
    }

    /// The next output, in the order the machine produced it; `None` when there is none.
    /// Carry it out before taking the next, and take them all after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        let item = loop {
            if let Some(item) = self.core.outputs.pop() {
                break item;
            }
            // Dry: decode the next frame handed in, if any.
            if !self.step_input() {
                return None;
            }
        };
        Some(match item {
            Item::Transmit { line, .. } => Output::Transmit(line),
            Item::Command { command, .. } => Output::Command(command),
            Item::Event(event) => Output::Event(event),
        })
    }

    /// The gateway asked to go idle on this connection.
    pub fn is_idle(&self) -> bool {
        self.idle
    }

    /// Bytes of a partial frame held back, waiting for its newline. Never more than
    /// `max_frame_len`: the memory the gateway's input can pin.
    pub fn buffered_len(&self) -> usize {
        self.core.buffered_len()
    }

    /// The connection is closed (by `close`, `reject_auth` or `on_closed`): nothing more is
    /// written.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Feeds the payload of one WebSocket message.
    ///
    /// After [`close`](Self::close) only acks are read (they count on any connection); after
    /// [`reject_auth`](Self::reject_auth) or [`on_closed`](Self::on_closed), nothing.
    pub fn handle_input(&mut self, now: Instant, bytes: impl crate::codec::Payload) {
        self.flush_input();
        self.proof_of_life(now);
        if !self.deaf {
            self.core.push(now, bytes);
        }
    }

    /// A Pong came: the link is alive.
    pub fn on_pong(&mut self, now: Instant) {
        self.flush_input();
        self.proof_of_life(now);
    }

    /// The earliest deadline: call [`handle_timeout`](Self::handle_timeout) when it passes.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.hello_due, self.ping_due, self.alive_until]
            .into_iter()
            .flatten()
            .min()
    }

    /// Acts on every deadline due at `now`: a connection silent since its accept is
    /// closed (1008 `hello timeout`), a Ping is asked for, a dead link is dropped.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.flush_input();
        if self.deaf {
            return;
        }
        if self.hello_due.is_some_and(|at| at <= now) {
            self.hello_due = None;
            if self.identities.is_empty() {
                crate::trace::warn!("hello timeout: no hello since the accept");
                self.close(now, 1008, "hello timeout");
            }
        }
        if self.alive_until.is_some_and(|at| at <= now) {
            // A dead link cannot complete a close handshake: drop it.
            crate::trace::warn!("liveness timeout: no sign of life, socket dropped");
            self.closed = true;
            self.deaf = true;
            self.core.outputs.discard(CONNECTION);
            self.core.outputs.command(None, ConnectorCommand::Abort);
            self.hello_due = None;
            self.ping_due = None;
            self.alive_until = None;
            return;
        }
        if let Some(at) = self.ping_due.filter(|at| *at <= now) {
            if !self.closed {
                self.core
                    .outputs
                    .command(Some(CONNECTION), ConnectorCommand::Ping);
            }
            self.ping_due = self
                .config
                .ping_interval
                .filter(|d| !d.is_zero())
                .map(|t| at.max(now) + t);
        }
    }

    fn proof_of_life(&mut self, now: Instant) {
        if let (Some(_), Some(timeout)) = (self.alive_until, self.config.liveness_timeout) {
            // (alive_until is only ever set for a non-zero timeout.)
            self.alive_until = Some(now + timeout);
        }
    }

    /// Handles every frame handed in and not decoded yet: any input but bytes comes after
    /// them.
    fn flush_input(&mut self) {
        while self.step_input() {}
    }

    /// Decodes and handles the next frame handed in, or finishes the input; `false` when
    /// there is nothing to decode.
    fn step_input(&mut self) -> bool {
        // The usual frame straight to its handler, as its box.
        if let Some(request) = self.core.next_outbound() {
            if !self.closed {
                self.on_outbound(request);
            }
            return true;
        }
        match self.core.step() {
            None => return false,
            Some(Step::Frame(_, Ok(Frame::InboundAck(ack)))) => {
                crate::trace::debug!(buffer_id = %ack.buffer_id, "ack received");
                self.event(ConnectorEvent::Acked(ack.buffer_id));
            }
            // Closed by us: nothing else can be answered any more.
            Some(Step::Frame(..)) if self.closed => {}
            Some(Step::Frame(now, Ok(frame))) => self.handle_frame(now, frame),
            Some(Step::Frame(_, Err(error))) => self.on_bad_frame(error),
            Some(Step::Done(_, Some(count))) => {
                let suppressed = ConnectorDiagnostic::Suppressed(count);
                self.event(ConnectorEvent::Diagnostic(suppressed));
            }
            Some(Step::Done(_, None)) => {}
        }
        true
    }

    /// The socket ended, with the close code and reason when there was a close frame (the
    /// same report as [`RelayMachine::on_closed`](crate::gateway::RelayMachine::on_closed)).
    /// Nothing more is written: outputs not yet taken are discarded, and unacked buffered
    /// deliveries stay in the store for the next connection.
    pub fn on_closed(&mut self, _now: Instant, _code: Option<u16>, _reason: &str) {
        self.hello_due = None;
        self.ping_due = None;
        self.alive_until = None;
        // What the peer sent before the end still counts (an ack, above all).
        self.flush_input();
        self.closed = true;
        self.deaf = true;
        self.core.outputs.discard(CONNECTION);
    }

    /// Delivers a message event or a provider webhook live: no `bufferId`, never acked,
    /// never replayed. Refused with [`ConnectorError::Idle`] once the gateway went idle:
    /// buffer it instead.
    pub fn send_live(
        &mut self,
        _now: Instant,
        delivery: impl Into<Delivery>,
    ) -> Result<(), ConnectorError> {
        self.flush_input();
        self.open()?;
        if self.idle {
            return Err(ConnectorError::Idle);
        }
        self.transmit(&frame_of(delivery.into(), None));
        Ok(())
    }

    /// Writes a buffered delivery with its `bufferId`; the gateway acks it with
    /// [`ConnectorEvent::Acked`]. Pacing (the replay window) and order are the caller's:
    /// [`Instance`] does both.
    pub fn send_buffered(
        &mut self,
        _now: Instant,
        id: BufferId,
        delivery: Delivery,
    ) -> Result<(), ConnectorError> {
        self.flush_input();
        self.open()?;
        self.transmit(&frame_of(delivery, Some(id)));
        Ok(())
    }

    /// Delivers a `/stop` for `session_key` to this gateway.
    pub fn send_interrupt(
        &mut self,
        _now: Instant,
        session_key: &str,
        chat_id: &str,
    ) -> Result<(), ConnectorError> {
        self.flush_input();
        self.open()?;
        self.transmit(&Frame::InterruptInbound(InterruptInbound {
            session_key: session_key.to_owned(),
            chat_id: chat_id.to_owned(),
        }));
        Ok(())
    }

    /// Refuses or revokes the gateway's credential: close 4401 with `reason` (use
    /// [`TokenError::close_reason`](crate::auth::TokenError::close_reason): `expired` only
    /// when the token was genuine but too old).
    pub fn reject_auth(&mut self, now: Instant, reason: &str) {
        crate::trace::warn!(reason, "credential refused (4401)");
        self.close(now, CLOSE_UNAUTHORIZED, reason);
        // An unauthenticated peer's frames, acks included, are never acted on.
        self.deaf = true;
    }

    /// Closes the connection with `code` and `reason` after the queued frames.
    pub fn close(&mut self, _now: Instant, code: u16, reason: &str) {
        self.flush_input();
        if self.closed {
            return;
        }
        self.closed = true;
        crate::trace::debug!(code, reason, "close decided");
        let close = ConnectorCommand::Close {
            code,
            reason: reason.to_owned(),
        };
        self.core.outputs.command(Some(CONNECTION), close);
    }

    pub(super) fn handle_frame(&mut self, now: Instant, frame: Frame) {
        match frame {
            Frame::Hello(hello) => self.on_hello(now, *hello),
            Frame::InboundAck(ack) => self.event(ConnectorEvent::Acked(ack.buffer_id)),
            Frame::Outbound(outbound) => self.on_outbound(outbound),
            Frame::Interrupt(i) => self.event(ConnectorEvent::Interrupt {
                session_key: i.session_key,
                reason: i.reason,
            }),
            Frame::GoingIdle => {
                crate::trace::debug!("went idle");
                self.idle = true;
                self.transmit(&Frame::GoingIdleAck);
                self.event(ConnectorEvent::WentIdle);
            }
            other @ (Frame::Descriptor(_)
            | Frame::Inbound(_)
            | Frame::OutboundResult(_)
            | Frame::InterruptInbound(_)
            | Frame::GoingIdleAck
            | Frame::PassthroughForward(_)
            | Frame::Unknown(_)) => {
                self.diagnostic(ConnectorDiagnostic::UnexpectedFrame(
                    other.frame_type().to_owned(),
                ));
            }
        }
    }

    pub(super) fn open(&self) -> Result<(), ConnectorError> {
        if self.closed {
            Err(ConnectorError::Closed)
        } else {
            Ok(())
        }
    }

    pub(super) fn diagnostic(&mut self, diagnostic: ConnectorDiagnostic) {
        if self.core.admit_diagnostic() {
            crate::trace::info!(diagnostic = %diagnostic, "diagnostic");
            self.event(ConnectorEvent::Diagnostic(diagnostic));
        }
    }

    pub(super) fn event(&mut self, event: ConnectorEvent) {
        self.core.outputs.event(event);
    }

    pub(super) fn transmit(&mut self, frame: &Frame) {
        if !self.closed {
            self.core
                .outputs
                .transmit(CONNECTION, frame, Carries::Nothing);
        }
    }
}

fn frame_of(delivery: Delivery, buffer_id: Option<BufferId>) -> Frame {
    match delivery {
        Delivery::Inbound(event) => Frame::Inbound(Inbound { event, buffer_id }),
        Delivery::Passthrough(forward) => {
            Frame::PassthroughForward(PassthroughFrame { forward, buffer_id })
        }
    }
}

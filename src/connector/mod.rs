//! The connector role: [`ConnectorMachine`], one per gateway connection, and [`Instance`],
//! one per gateway instance, which owns what that instance's connections share: the
//! replay window over the application's durable buffer, superseding, and acks from any
//! connection.

mod instance;
mod store;

use std::collections::HashSet;
use std::fmt;
use std::time::Instant;

use crate::codec::{DEFAULT_MAX_FRAME_LEN, DecodeError, Salvage};
use crate::conn_core::{Core, Step};
use crate::outputs::{Carries, Item};
use crate::transmit::Transmit;
use crate::wire::close::UNAUTHORIZED as CLOSE_UNAUTHORIZED;
use crate::wire::{
    ActionResult, BufferId, CapabilityDescriptor, Descriptor, Frame, Identity, Inbound,
    InterruptInbound, Outbound, OutboundAction, OutboundResult, PassthroughFrame, RequestId,
};

pub use instance::{ConnId, Instance, InstanceOutput, Live, LoadToken};
pub use store::{Delivery, DeliveryStore, MemoryStore};

/// The failure `code` the machine answers for an `outbound` whose platform/botId pair was
/// not announced on this socket.
pub const UNKNOWN_IDENTITY: &str = "unknown_identity";

/// The failure `code` the machine answers for an `outbound` that names a `requestId` but
/// does not decode (a mistyped or missing field).
pub const INVALID_ACTION: &str = "invalid_action";

/// Limits of one connection.
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// Longest frame accepted, in bytes (1 MiB).
    pub max_frame_len: usize,
    /// Most identities one socket may announce (64); further hellos are refused.
    pub max_identities: usize,
    /// Buffered deliveries sent and not yet acked at once, per gateway instance (32):
    /// replay is ack-gated, so a gateway that falls behind is not flooded, and one that
    /// dies gets the unacked tail. Used by [`Instance`].
    pub replay_window: usize,
    /// Most `outbound` requests awaiting the application's response (1024); more are
    /// answered with a failure at once.
    pub max_open_requests: usize,
}

impl Default for ConnectorConfig {
    fn default() -> Self {
        Self {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_identities: 64,
            replay_window: 32,
            max_open_requests: 1024,
        }
    }
}

/// Something the connector application should act on.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConnectorEvent {
    /// The gateway announced an identity. Validate it against the authenticated tenant and
    /// answer with [`ConnectorMachine::send_descriptor`]. The first is the session default.
    Hello {
        /// The identity, with the Discord slash commands to reconcile (best effort).
        identity: Identity,
    },
    /// The gateway asks for an action. Answer exactly once with
    /// [`ConnectorMachine::respond`].
    Outbound {
        /// Correlates the response.
        request_id: RequestId,
        /// What to do.
        action: OutboundAction,
        /// The identity to act as: the tagged one, or the session default.
        identity: Identity,
    },
    /// The gateway asks to stop a session's running turn; route it to the gateway that owns
    /// the session as an `interrupt_inbound`.
    Interrupt {
        /// The session.
        session_key: String,
        /// Free text.
        reason: Option<String>,
    },
    /// The gateway acked a buffered delivery: it durably owns it. Make the ack durable (an
    /// [`Instance`] turns this into [`InstanceOutput::Acked`]). The id is the gateway's
    /// word: it may name a delivery acked before, or none at all.
    Acked(BufferId),
    /// The gateway went idle: further deliveries for it are buffered only
    /// (`going_idle_ack` is already written).
    WentIdle,
    /// Something unexpected that changed nothing.
    Diagnostic(ConnectorDiagnostic),
}

/// Gateway behaviour that was tolerated.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConnectorDiagnostic {
    /// A line that did not decode. An `outbound` among them that named its `requestId`
    /// was answered with an [`INVALID_ACTION`] failure.
    Decode(DecodeError),
    /// A frame a gateway should not send, or an unknown type.
    UnexpectedFrame(String),
    /// An `outbound` reusing an id still awaiting its response; it was ignored.
    DuplicateRequest(RequestId),
    /// An `outbound` for an identity not announced on this socket; it was answered with
    /// an `unknown_identity` failure.
    UnknownIdentity {
        /// The request.
        request_id: RequestId,
        /// Its platform tag.
        platform: Option<String>,
        /// Its botId tag.
        bot_id: Option<String>,
    },
    /// An `outbound` past `max_open_requests`; it was answered with a failure.
    TooManyRequests(RequestId),
    /// A `hello` past `max_identities`, or repeating an announced platform; ignored.
    RefusedHello(String),
    /// This many further diagnostics of one input were dropped (at most 64 are reported
    /// per input); their side effects still happened.
    Suppressed(u64),
}

impl fmt::Display for ConnectorDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectorDiagnostic::Decode(e) => write!(f, "undecodable line: {e}"),
            ConnectorDiagnostic::UnexpectedFrame(t) => write!(f, "unexpected frame type {t:?}"),
            ConnectorDiagnostic::DuplicateRequest(id) => {
                write!(f, "outbound {id} repeats an open request, ignored")
            }
            ConnectorDiagnostic::UnknownIdentity {
                request_id,
                platform,
                bot_id,
            } => write!(
                f,
                "outbound {request_id} for unannounced identity {}:{}",
                platform.as_deref().unwrap_or("<default>"),
                bot_id.as_deref().unwrap_or("")
            ),
            ConnectorDiagnostic::TooManyRequests(id) => {
                write!(f, "outbound {id} refused: too many open requests")
            }
            ConnectorDiagnostic::RefusedHello(p) => write!(f, "hello for {p:?} refused"),
            ConnectorDiagnostic::Suppressed(n) => write!(f, "{n} more diagnostics of this input"),
        }
    }
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectorError {
    /// The connection is closed.
    #[error("connection closed")]
    Closed,
    /// No `outbound` with this id awaits a response (never received, or answered).
    #[error("no open request {0}")]
    UnknownRequest(RequestId),
    /// The descriptor's platform was not announced with `hello` on this socket.
    #[error("platform {0:?} was not announced on this connection")]
    NotAnnounced(String),
    /// The gateway went idle: a live delivery must be buffered instead.
    #[error("the gateway is idle: buffer the delivery")]
    Idle,
    /// No such connection on this instance (it ended, or never was).
    #[error("no connection {0}")]
    UnknownConnection(ConnId),
}

/// An instruction for the driver about the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectorCommand {
    /// Close the socket with this code and reason (every frame before it is written
    /// first), then wait for the peer's close frame or the socket's end.
    Close {
        /// WebSocket close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
}

/// One output of a [`ConnectorMachine`], in the order the machine produced it. Carry each
/// out before taking the next.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "every output must be carried out, in order"]
#[non_exhaustive]
// An output is moved once, from the queue to the driver: boxing the large event would cost
// an allocation per event to save a copy.
#[allow(clippy::large_enum_variant)]
pub enum Output {
    /// Write this line as one WebSocket text message.
    Transmit(Transmit),
    /// Close the socket, after writing every frame before it.
    Command(ConnectorCommand),
    /// Hand this to the application. It may call commands, which queue more outputs.
    Event(ConnectorEvent),
}

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
/// let mut conn = ConnectorMachine::new(ConnectorConfig::default());
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
    identities: Vec<Identity>,
    /// A descriptor was sent: the handshake is answered.
    handshaken: bool,
    idle: bool,
    open_requests: HashSet<RequestId>,
    /// Nothing more is written: closed by us, or the socket ended.
    closed: bool,
    /// Nothing more is read: the socket ended, or the credential was refused. A connection
    /// we closed otherwise still reads acks until its socket ends (the peer may send frames
    /// until it answers the close, and an ack on any connection counts).
    deaf: bool,
    /// The bytes handed in, the diagnostics budget, the ordered outputs.
    core: Core<ConnectorCommand, ConnectorEvent>,
}

impl ConnectorMachine {
    /// A machine for a newly accepted (and authenticated) gateway connection.
    pub fn new(config: ConnectorConfig) -> Self {
        Self {
            core: Core::new(config.max_frame_len),
            config,
            identities: Vec::new(),
            handshaken: false,
            idle: false,
            open_requests: HashSet::new(),
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

    /// The identities announced so far, in order; the first is the session default.
    pub fn identities(&self) -> &[Identity] {
        &self.identities
    }

    /// The gateway asked to go idle on this connection.
    pub fn is_idle(&self) -> bool {
        self.idle
    }

    /// Requests awaiting [`respond`](Self::respond).
    pub fn in_flight(&self) -> usize {
        self.open_requests.len()
    }

    /// Bytes of a partial frame held back, waiting for its newline. Never more than
    /// `max_frame_len`: the memory the gateway's input can pin.
    pub fn buffered_len(&self) -> usize {
        self.core.buffered_len()
    }

    /// A descriptor was sent: the handshake is answered.
    pub fn is_handshaken(&self) -> bool {
        self.handshaken
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
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        self.flush_input();
        if !self.deaf {
            self.core.push(now, bytes);
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
        match self.core.step() {
            None => return false,
            Some(Step::Frame(_, Ok(Frame::InboundAck(ack)))) => {
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
        // What the peer sent before the end still counts (an ack, above all).
        self.flush_input();
        self.closed = true;
        self.deaf = true;
        self.core.outputs.discard(CONNECTION);
    }

    /// Answers a `hello` with the platform's capabilities. The first descriptor completes
    /// the handshake and starts the replay of the buffered backlog.
    pub fn send_descriptor(
        &mut self,
        _now: Instant,
        descriptor: CapabilityDescriptor,
    ) -> Result<(), ConnectorError> {
        self.flush_input();
        self.open()?;
        if !self
            .identities
            .iter()
            .any(|i| i.platform == descriptor.platform)
        {
            return Err(ConnectorError::NotAnnounced(descriptor.platform));
        }
        self.transmit(&Frame::Descriptor(Descriptor { descriptor }));
        self.handshaken = true;
        Ok(())
    }

    /// Sends the one `outbound_result` for `request_id`.
    pub fn respond(
        &mut self,
        _now: Instant,
        request_id: &RequestId,
        result: ActionResult,
    ) -> Result<(), ConnectorError> {
        self.flush_input();
        self.open()?;
        if !self.open_requests.remove(request_id) {
            return Err(ConnectorError::UnknownRequest(request_id.clone()));
        }
        self.transmit(&Frame::OutboundResult(OutboundResult {
            request_id: request_id.clone(),
            result,
        }));
        Ok(())
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
        let close = ConnectorCommand::Close {
            code,
            reason: reason.to_owned(),
        };
        self.core.outputs.command(Some(CONNECTION), close);
    }

    fn handle_frame(&mut self, _now: Instant, frame: Frame) {
        match frame {
            Frame::Hello(hello) => self.on_hello(hello),
            Frame::InboundAck(ack) => self.event(ConnectorEvent::Acked(ack.buffer_id)),
            Frame::Outbound(outbound) => self.on_outbound(outbound),
            Frame::Interrupt(i) => self.event(ConnectorEvent::Interrupt {
                session_key: i.session_key,
                reason: i.reason,
            }),
            Frame::GoingIdle => {
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

    /// An `outbound` that did not decode but names its `requestId` is answered with an
    /// `invalid_action` failure, so the gateway's request resolves now (definitely not
    /// executed) instead of timing out as ambiguous.
    fn on_bad_frame(&mut self, e: DecodeError) {
        // An id still open belongs to a request the application will answer: a second
        // answer for it would be a duplicate result.
        if let Some(Salvage::Outbound(id)) = &e.salvage {
            if !self.open_requests.contains(id) {
                let error = format!("invalid outbound: {}", e.message);
                self.transmit(&Frame::OutboundResult(OutboundResult {
                    request_id: id.clone(),
                    result: ActionResult::failure(error, Some(INVALID_ACTION)),
                }));
            }
        }
        self.diagnostic(ConnectorDiagnostic::Decode(e));
    }

    fn on_hello(&mut self, identity: Identity) {
        let repeated = self
            .identities
            .iter()
            .any(|i| i.platform == identity.platform);
        if repeated || self.identities.len() >= self.config.max_identities {
            return self.diagnostic(ConnectorDiagnostic::RefusedHello(identity.platform));
        }
        // The manifest is the application's, once; what the socket keeps is who it is.
        self.identities
            .push(Identity::new(&identity.platform, &identity.bot_id));
        self.event(ConnectorEvent::Hello { identity });
    }

    fn on_outbound(&mut self, outbound: Outbound) {
        let Outbound {
            request_id,
            action,
            platform,
            bot_id,
        } = outbound;
        if self.open_requests.contains(&request_id) {
            return self.diagnostic(ConnectorDiagnostic::DuplicateRequest(request_id));
        }
        let identity = match &platform {
            Some(p) => self.identities.iter().find(|i| &i.platform == p),
            None => self.identities.first(),
        }
        .filter(|i| bot_id.as_ref().is_none_or(|b| *b == i.bot_id))
        .cloned();
        let Some(identity) = identity else {
            let error = format!(
                "identity {}:{} is not announced on this connection",
                platform.as_deref().unwrap_or("<default>"),
                bot_id.as_deref().unwrap_or("")
            );
            self.transmit(&Frame::OutboundResult(OutboundResult {
                request_id: request_id.clone(),
                result: ActionResult::failure(error, Some(UNKNOWN_IDENTITY)),
            }));
            return self.diagnostic(ConnectorDiagnostic::UnknownIdentity {
                request_id,
                platform,
                bot_id,
            });
        };
        if self.open_requests.len() >= self.config.max_open_requests {
            self.transmit(&Frame::OutboundResult(OutboundResult {
                request_id: request_id.clone(),
                result: ActionResult::failure("connector busy: too many open requests", None),
            }));
            return self.diagnostic(ConnectorDiagnostic::TooManyRequests(request_id));
        }
        self.open_requests.insert(request_id.clone());
        self.event(ConnectorEvent::Outbound {
            request_id,
            action,
            identity,
        });
    }

    fn open(&self) -> Result<(), ConnectorError> {
        if self.closed {
            Err(ConnectorError::Closed)
        } else {
            Ok(())
        }
    }

    fn diagnostic(&mut self, diagnostic: ConnectorDiagnostic) {
        if self.core.admit_diagnostic() {
            self.event(ConnectorEvent::Diagnostic(diagnostic));
        }
    }

    fn event(&mut self, event: ConnectorEvent) {
        self.core.outputs.event(event);
    }

    fn transmit(&mut self, frame: &Frame) {
        if !self.closed {
            self.core
                .outputs
                .transmit(CONNECTION, frame, Carries::Nothing);
        }
    }
}

fn frame_of(delivery: Delivery, buffer_id: Option<BufferId>) -> Frame {
    match delivery {
        Delivery::Inbound(event) => Frame::from(Inbound {
            event: *event,
            buffer_id,
        }),
        Delivery::Passthrough(forward) => Frame::PassthroughForward(PassthroughFrame {
            forward: *forward,
            buffer_id,
        }),
    }
}

impl fmt::Display for ConnectorEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectorEvent::Hello { identity } => write!(
                f,
                "Hello {}:{}{}",
                identity.platform,
                identity.bot_id,
                if identity.command_manifest.is_some() {
                    " +manifest"
                } else {
                    ""
                }
            ),
            ConnectorEvent::Outbound {
                request_id,
                action,
                identity,
            } => write!(
                f,
                "Outbound {request_id} as {}:{} {}",
                identity.platform,
                identity.bot_id,
                serde_json::to_string(action).unwrap_or_default()
            ),
            ConnectorEvent::Interrupt {
                session_key,
                reason,
            } => write!(f, "Interrupt {session_key} reason={reason:?}"),
            ConnectorEvent::Acked(id) => write!(f, "Acked {id}"),
            ConnectorEvent::WentIdle => write!(f, "WentIdle"),
            ConnectorEvent::Diagnostic(ConnectorDiagnostic::Decode(e)) => {
                write!(f, "Diagnostic {e}")
            }
            ConnectorEvent::Diagnostic(d) => write!(f, "Diagnostic {d:?}"),
        }
    }
}

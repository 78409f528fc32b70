//! The connector role: [`ConnectorMachine`], one per gateway connection.

mod store;

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

use serde_json::{Map, Value};

use crate::budget::{DiagnosticBudget, INPUT_SLICE};
use crate::codec::{DEFAULT_MAX_FRAME_LEN, DecodeError, FrameDecoder, Salvage};
use crate::outputs::{Carries, Item, Queue};
use crate::transmit::Transmit;
use crate::wire::{
    ActionResult, BufferId, CapabilityDescriptor, Descriptor, Frame, Hello, Inbound,
    InterruptInbound, MessageEvent, Outbound, OutboundAction, OutboundResult, PassthroughForward,
    PassthroughFrame, RequestId,
};

pub use store::{Delivery, DeliveryStore, MemoryStore};

/// WebSocket close code for a refused or revoked credential.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;

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
    /// Buffered deliveries sent and not yet acked at once (32): replay is ack-gated, so a
    /// gateway that falls behind is not flooded, and one that dies gets the unacked tail.
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

/// One platform identity a gateway announced with `hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnouncedIdentity {
    /// The platform.
    pub platform: String,
    /// The bot identity; may be empty.
    pub bot_id: String,
}

/// Something the connector application should act on.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConnectorEvent {
    /// The gateway announced an identity. Validate it against the authenticated tenant and
    /// answer with [`ConnectorMachine::send_descriptor`]. The first is the session default.
    Hello {
        /// The identity.
        identity: AnnouncedIdentity,
        /// Discord slash commands to reconcile (best effort).
        command_manifest: Option<Vec<Map<String, Value>>>,
    },
    /// The gateway asks for an action. Answer exactly once with
    /// [`ConnectorMachine::respond`].
    Outbound {
        /// Correlates the response.
        request_id: RequestId,
        /// What to do.
        action: OutboundAction,
        /// The identity to act as: the tagged one, or the session default.
        identity: AnnouncedIdentity,
    },
    /// The gateway asks to stop a session's running turn; route it to the gateway that owns
    /// the session as an `interrupt_inbound`.
    Interrupt {
        /// The session.
        session_key: String,
        /// Free text.
        reason: Option<String>,
    },
    /// The gateway durably owns a buffered delivery; it will never be replayed again.
    Acked(BufferId),
    /// The gateway went idle: further deliveries on this instance are buffered only
    /// (`going_idle_ack` is already written).
    WentIdle,
    /// The first delivery was buffered for an idle instance: poke its wake URL.
    WakeNeeded,
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
    /// An `inbound_ack` for nothing awaiting one.
    UnknownAck(BufferId),
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
    /// This many further diagnostics of one input were dropped (at most 64 wait in the
    /// event queue at once); their side effects still happened.
    Suppressed(u64),
}

/// How an application-pushed delivery travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// Sent at once without a `bufferId`; never acked, never replayed. Buffered instead
    /// while the instance is idle.
    Live,
    /// Appended to the durable store and sent with a `bufferId` through the ack-gated
    /// window; replayed on every connection until acked.
    Buffered,
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
/// The durable buffer is the application's [`DeliveryStore`]; the machine owns it for the
/// connection's lifetime and hands it back with [`into_store`](Self::into_store), so the
/// next connection's machine replays exactly the unacked tail, in order.
///
/// ```
/// use std::time::Instant;
/// use relay_machine::connector::{ConnectorConfig, ConnectorEvent, ConnectorMachine, DeliveryStore, MemoryStore, Mode, Output};
/// use relay_machine::wire::{CapabilityDescriptor, MessageEvent};
///
/// let now = Instant::now();
/// let mut conn = ConnectorMachine::new(ConnectorConfig::default(), MemoryStore::with_epoch(0));
/// conn.handle_input(now, b"{\"type\":\"hello\",\"platform\":\"telegram\",\"botId\":\"701\"}\n");
/// let Some(Output::Event(ConnectorEvent::Hello { identity, .. })) = conn.poll_output() else { panic!() };
/// conn.send_descriptor(now, CapabilityDescriptor::new(identity.platform, "Telegram")).unwrap();
/// let id = conn.push(now, MessageEvent { text: "hi".into(), ..Default::default() }, Mode::Buffered).unwrap().unwrap();
/// let frames: Vec<String> = std::iter::from_fn(|| conn.poll_output())
///     .filter_map(|out| match out { Output::Transmit(t) => Some(t.into_string()), _ => None })
///     .collect();
/// assert!(frames[0].starts_with("{\"type\":\"descriptor\""));
/// assert!(frames[1].starts_with("{\"type\":\"inbound\""));
/// assert!(frames[1].contains(&format!("\"bufferId\":\"{id}\"")));
///
/// conn.handle_input(now, format!("{{\"type\":\"inbound_ack\",\"bufferId\":\"{id}\"}}\n").as_bytes());
/// assert!(matches!(conn.poll_output(), Some(Output::Event(ConnectorEvent::Acked(_)))));
/// assert_eq!(conn.into_store().unacked_len(), 0);
/// ```
#[derive(Debug)]
pub struct ConnectorMachine<S: DeliveryStore = MemoryStore> {
    config: ConnectorConfig,
    store: S,
    decoder: FrameDecoder,
    identities: Vec<AnnouncedIdentity>,
    /// A descriptor was sent: the handshake is answered and replay may run.
    handshaken: bool,
    /// Buffered deliveries sent on this connection and not yet acked, oldest first.
    in_window: VecDeque<BufferId>,
    /// The last buffered delivery sent; the store is read after it.
    last_sent: Option<BufferId>,
    idle: bool,
    woke: bool,
    open_requests: HashSet<RequestId>,
    closed: bool,
    outputs: Queue<ConnectorCommand, ConnectorEvent>,
    /// Caps the diagnostics waiting in the output queue.
    diagnostics: DiagnosticBudget,
}

impl<S: DeliveryStore> ConnectorMachine<S> {
    /// A machine for a newly accepted (and authenticated) gateway connection.
    pub fn new(config: ConnectorConfig, store: S) -> Self {
        Self {
            decoder: FrameDecoder::with_max_frame_len(config.max_frame_len),
            config,
            store,
            identities: Vec::new(),
            handshaken: false,
            in_window: VecDeque::new(),
            last_sent: None,
            idle: false,
            woke: false,
            open_requests: HashSet::new(),
            closed: false,
            outputs: Queue::default(),
            diagnostics: DiagnosticBudget::default(),
        }
    }

    /// The next output, in the order the machine produced it; `None` when there is none.
    /// Carry it out before taking the next, and take them all after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        Some(match self.outputs.pop()? {
            Item::Transmit { line, .. } => Output::Transmit(line),
            Item::Command { command, .. } => Output::Command(command),
            Item::Event(event) => {
                if let ConnectorEvent::Diagnostic(_) = event {
                    self.diagnostics.taken();
                }
                Output::Event(event)
            }
        })
    }

    /// The identities announced so far, in order; the first is the session default.
    pub fn identities(&self) -> &[AnnouncedIdentity] {
        &self.identities
    }

    /// The gateway asked to go idle on this connection.
    pub fn is_idle(&self) -> bool {
        self.idle
    }

    /// Requests awaiting [`respond`](Self::respond).
    pub fn open_requests(&self) -> usize {
        self.open_requests.len()
    }

    /// Bytes of a partial frame held back, waiting for its newline. Never more than
    /// `max_frame_len`: the memory the gateway's input can pin.
    pub fn buffered_len(&self) -> usize {
        self.decoder.buffered_len()
    }

    /// The durable store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Ends the machine and returns the store for the next connection.
    pub fn into_store(self) -> S {
        self.store
    }

    /// Feeds the payload of one WebSocket message.
    pub fn handle_input(&mut self, now: Instant, bytes: &[u8]) {
        if self.closed {
            return;
        }
        for slice in bytes.chunks(INPUT_SLICE) {
            self.decoder.push(slice);
            while let Some(item) = self.decoder.next_frame() {
                match item {
                    Ok(frame) => self.handle_frame(now, frame),
                    Err(e) => self.on_bad_frame(e),
                }
            }
        }
        if let Some(count) = self.diagnostics.take_suppressed() {
            self.event(ConnectorEvent::Diagnostic(ConnectorDiagnostic::Suppressed(
                count,
            )));
        }
    }

    /// The socket ended. Nothing more is written: outputs not yet taken are discarded, and
    /// unacked buffered deliveries stay in the store for the next connection.
    pub fn on_closed(&mut self, _now: Instant) {
        self.closed = true;
        self.outputs.discard(CONNECTION);
    }

    /// Answers a `hello` with the platform's capabilities. The first descriptor completes
    /// the handshake and starts the replay of the buffered backlog.
    pub fn send_descriptor(
        &mut self,
        _now: Instant,
        descriptor: CapabilityDescriptor,
    ) -> Result<(), ConnectorError> {
        self.open()?;
        if !self
            .identities
            .iter()
            .any(|i| i.platform == descriptor.platform)
        {
            return Err(ConnectorError::NotAnnounced(descriptor.platform));
        }
        self.transmit(&Frame::Descriptor(Descriptor { descriptor }));
        if !self.handshaken {
            // The flip to buffered-only lasts until the next successful handshake.
            self.handshaken = true;
            self.idle = false;
            self.fill_window();
        }
        Ok(())
    }

    /// Sends the one `outbound_result` for `request_id`.
    pub fn respond(
        &mut self,
        _now: Instant,
        request_id: &RequestId,
        result: ActionResult,
    ) -> Result<(), ConnectorError> {
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

    /// Delivers a message event, live or through the durable buffer. Returns the buffer id
    /// when it was buffered (always for [`Mode::Buffered`]; for [`Mode::Live`] while the
    /// instance is idle).
    pub fn push(
        &mut self,
        now: Instant,
        event: MessageEvent,
        mode: Mode,
    ) -> Result<Option<BufferId>, ConnectorError> {
        self.deliver(now, Delivery::Inbound(Box::new(event)), mode)
    }

    /// Delivers a provider webhook, live or through the durable buffer, like
    /// [`push`](Self::push).
    pub fn push_passthrough(
        &mut self,
        now: Instant,
        forward: PassthroughForward,
        mode: Mode,
    ) -> Result<Option<BufferId>, ConnectorError> {
        self.deliver(now, Delivery::Passthrough(Box::new(forward)), mode)
    }

    /// Delivers a `/stop` for `session_key` to this gateway.
    pub fn send_interrupt(
        &mut self,
        _now: Instant,
        session_key: &str,
        chat_id: &str,
    ) -> Result<(), ConnectorError> {
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
    }

    /// Closes the connection with `code` and `reason` after the queued frames.
    pub fn close(&mut self, _now: Instant, code: u16, reason: &str) {
        if self.closed {
            return;
        }
        self.closed = true;
        let close = ConnectorCommand::Close {
            code,
            reason: reason.to_owned(),
        };
        self.outputs.command(Some(CONNECTION), close);
    }

    fn deliver(
        &mut self,
        _now: Instant,
        delivery: Delivery,
        mode: Mode,
    ) -> Result<Option<BufferId>, ConnectorError> {
        self.open()?;
        if mode == Mode::Live && !self.idle {
            self.transmit(&frame_of(delivery, None));
            return Ok(None);
        }
        let id = self.store.append(delivery);
        if self.idle {
            if !std::mem::replace(&mut self.woke, true) {
                self.event(ConnectorEvent::WakeNeeded);
            }
        } else {
            self.fill_window();
        }
        Ok(Some(id))
    }

    /// Sends buffered deliveries in store order while the window has room.
    fn fill_window(&mut self) {
        if !self.handshaken || self.idle || self.closed {
            return;
        }
        let room = self
            .config
            .replay_window
            .saturating_sub(self.in_window.len());
        if room == 0 {
            return;
        }
        for (id, delivery) in self.store.unacked_after(self.last_sent.as_ref(), room) {
            self.transmit(&frame_of(delivery, Some(id.clone())));
            self.last_sent = Some(id.clone());
            self.in_window.push_back(id);
        }
    }

    fn handle_frame(&mut self, _now: Instant, frame: Frame) {
        match frame {
            Frame::Hello(hello) => self.on_hello(hello),
            Frame::InboundAck(ack) => {
                let in_window = self.in_window.iter().position(|id| *id == ack.buffer_id);
                if let Some(i) = in_window {
                    self.in_window.remove(i);
                }
                if self.store.ack(&ack.buffer_id) {
                    self.event(ConnectorEvent::Acked(ack.buffer_id));
                    self.fill_window();
                } else {
                    self.diagnostic(ConnectorDiagnostic::UnknownAck(ack.buffer_id));
                }
            }
            Frame::Outbound(outbound) => self.on_outbound(outbound),
            Frame::Interrupt(i) => self.event(ConnectorEvent::Interrupt {
                session_key: i.session_key,
                reason: i.reason,
            }),
            Frame::GoingIdle => {
                self.idle = true;
                self.woke = false;
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

    fn on_hello(&mut self, hello: Hello) {
        let repeated = self.identities.iter().any(|i| i.platform == hello.platform);
        if repeated || self.identities.len() >= self.config.max_identities {
            return self.diagnostic(ConnectorDiagnostic::RefusedHello(hello.platform));
        }
        let identity = AnnouncedIdentity {
            platform: hello.platform,
            bot_id: hello.bot_id,
        };
        self.identities.push(identity.clone());
        self.event(ConnectorEvent::Hello {
            identity,
            command_manifest: hello.command_manifest,
        });
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
        if self.diagnostics.admit() {
            self.event(ConnectorEvent::Diagnostic(diagnostic));
        }
    }

    fn event(&mut self, event: ConnectorEvent) {
        self.outputs.event(event);
    }

    fn transmit(&mut self, frame: &Frame) {
        if !self.closed {
            self.outputs.transmit(CONNECTION, frame, Carries::Nothing);
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

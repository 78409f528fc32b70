//! What goes in and out of a [`ConnectorMachine`](super::ConnectorMachine)(super::ConnectorMachine) besides bytes.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::codec::{DEFAULT_MAX_FRAME_LEN, DecodeError};
use crate::transmit::Transmit;
use crate::wire::{BufferId, Identity, Outbound, RequestId};

use super::ConnId;

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
    /// dies gets the unacked tail. Used by [`Instance`](super::Instance).
    pub replay_window: usize,
    /// Most `outbound` requests awaiting the application's response (1024); more are
    /// answered with a failure at once.
    pub max_open_requests: usize,
    /// A connection that has sent no `hello` this long after it was accepted (the TCP
    /// accept: the WebSocket upgrade counts) is closed with 1008 `hello timeout` (10 s).
    /// Never 4401: after a handshake that would be an auth strike. `None`: never.
    pub hello_timeout: Option<Duration>,
    /// How often to ask the driver for a WebSocket Ping once the first `hello` came (30 s;
    /// before it the hello timeout governs). `None`: no pings.
    pub ping_interval: Option<Duration>,
    /// How long a connection may stay silent (no byte, no Pong) before the machine gives
    /// it up as dead and asks the driver to drop it (60 s). `None`: never.
    pub liveness_timeout: Option<Duration>,
}

impl Default for ConnectorConfig {
    fn default() -> Self {
        Self {
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            max_identities: 64,
            replay_window: 32,
            max_open_requests: 1024,
            hello_timeout: Some(Duration::from_secs(10)),
            ping_interval: Some(Duration::from_secs(30)),
            liveness_timeout: Some(Duration::from_secs(60)),
        }
    }
}

/// Something the connector application should act on.
///
/// `ConnectorEvent` implements [`Display`](fmt::Display): one line naming the variant and
/// its essentials, as the examples print and transcripts snapshot, for instance
/// `Hello discord:111`, `Outbound r-1 as discord:111 {"op":"send",...}`, `Acked b-1` or
/// `WentIdle`. It is meant for logs; match on the variants to act on an event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConnectorEvent {
    /// The gateway announced an identity. Validate it against the authenticated tenant and
    /// answer with [`ConnectorMachine::send_descriptor`](super::ConnectorMachine::send_descriptor). The first is the session default.
    Hello {
        /// The identity, with the Discord slash commands to reconcile (best effort).
        identity: Identity,
    },
    /// The gateway asks for an action. Answer exactly once with
    /// [`ConnectorMachine::respond`](super::ConnectorMachine::respond), with
    /// `request.request_id`.
    Outbound {
        /// The request as it came: its id (which correlates the response), its action,
        /// and the identity tags it carried. Boxed as it was decoded, and handed over in
        /// that box: a request is a few hundred bytes, and moving it through the machine
        /// and the output queue by value cost several copies of it.
        request: Box<Outbound>,
        /// The identity to act as: the tagged one, or the session default. Shared with
        /// the machine (it reads as an `Identity`): every request names one of the few
        /// announced identities, so each event holds a reference count, not a copy.
        identity: Arc<Identity>,
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
    /// [`Instance`](super::Instance) turns this into [`InstanceOutput::Acked`](super::InstanceOutput::Acked)). The id is the gateway's
    /// word: it may name a delivery acked before, or none at all.
    Acked(BufferId),
    /// The gateway went idle: further deliveries for it are buffered only
    /// (`going_idle_ack` is already written).
    WentIdle,
    /// Something unexpected that changed nothing.
    Diagnostic(ConnectorDiagnostic),
}

/// Gateway behaviour that was tolerated.
///
/// Displays as a lower-case phrase, e.g. `outbound r-1 repeats an open request, ignored`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConnectorDiagnostic {
    /// A line that did not decode. An `outbound` among them that named its `requestId`
    /// was answered with an [`INVALID_ACTION`] failure.
    Decode(Box<DecodeError>),
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
///
/// Displays as `close 4401 "unauthorized"`, `ping` or `abort`.
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
    /// Send a WebSocket Ping (keepalive); report its Pong with `on_pong`.
    Ping,
    /// Drop the socket now, without a close handshake (the link is dead).
    Abort,
}

impl fmt::Display for ConnectorCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectorCommand::Close { code, reason } => write!(f, "close {code} {reason:?}"),
            ConnectorCommand::Ping => f.write_str("ping"),
            ConnectorCommand::Abort => f.write_str("abort"),
        }
    }
}

/// One output of a [`ConnectorMachine`](super::ConnectorMachine), in the order the machine produced it. Carry each
/// out before taking the next.
///
/// Displays as one log line: `transmit ` and the line without its `\n`, `command ` and
/// the command, or `event ` and the event.
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

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Transmit(t) => write!(f, "transmit {t}"),
            Output::Command(c) => write!(f, "command {c}"),
            Output::Event(e) => write!(f, "event {e}"),
        }
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
            ConnectorEvent::Outbound { request, identity } => write!(
                f,
                "Outbound {} as {}:{} {}",
                request.request_id,
                identity.platform,
                identity.bot_id,
                serde_json::to_string(&request.action).unwrap_or_default()
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

#[cfg(test)]
mod size {
    /// Every output is moved from the queue to the driver, and every event several times
    /// before it: a request stays in its box, and the largest action variants are boxed.
    /// A new action or event field that grows them should be a decision, not an accident.
    #[test]
    fn events_and_outputs_stay_small() {
        // `Metadata` is 40 bytes (received text or a map), 16 more than a bare map: it
        // spares a `send` five allocations.
        assert!(size_of::<crate::wire::OutboundAction>() <= 152);
        // A request is handed over in the box it was decoded into.
        assert!(size_of::<super::ConnectorEvent>() <= 80);
        assert!(size_of::<super::Output>() <= 80);
    }
}

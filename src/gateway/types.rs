//! What goes in and out of a [`RelayMachine`](super::RelayMachine) besides bytes.

use std::fmt;
use std::time::Instant;

use crate::codec::DecodeError;
use crate::transmit::Transmit;
use crate::wire::{
    ActionResult, BufferId, CapabilityDescriptor, MessageEvent, PassthroughForward, RequestId,
};

/// Why a command was refused at once: nothing was written, so nothing can have been
/// acted on. Retrying later is always safe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// There is no connection (never connected, reconnecting, or held).
    #[error("relay transport not connected")]
    NotConnected,
    /// `disconnect` has started.
    #[error("relay transport closing")]
    Closing,
    /// The machine is closed for good.
    #[error("relay transport closed")]
    Closed,
    /// The connector revoked this gateway's credential.
    #[error("relay credential revoked")]
    Revoked,
    /// `max_in_flight` requests are already awaiting results.
    #[error("{limit} requests already in flight")]
    InFlightLimit {
        /// The configured limit.
        limit: usize,
    },
}

/// Why a request that was accepted resolved without a result. Each kind says whether the
/// connector may have acted on it ([`is_ambiguous`](Self::is_ambiguous)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestFailure {
    /// Not sent: the connection ended before the driver took the frame to write it.
    #[error("relay transport connection lost before the request was written")]
    NotWritten,
    /// Ambiguous: sent, and no result came within the request timeout.
    #[error("relay outbound timed out")]
    Timeout,
    /// Ambiguous: sent, and the connection ended before the result came.
    #[error("relay transport connection lost")]
    ConnectionLost,
    /// Ambiguous: sent, and `disconnect` ended the wait before the result came.
    #[error("relay transport closed before the result came")]
    Drained,
    /// Ambiguous: the connector answered, but its `outbound_result` did not decode.
    #[error("undecodable outbound_result: {0}")]
    InvalidResult(String),
}

impl RequestFailure {
    /// `true` when the frame was written and the connector may have applied it; `false`
    /// when it was definitely not sent. Retry only what is not ambiguous, or what is
    /// idempotent.
    pub fn is_ambiguous(&self) -> bool {
        match self {
            RequestFailure::Timeout
            | RequestFailure::ConnectionLost
            | RequestFailure::Drained
            | RequestFailure::InvalidResult(_) => true,
            RequestFailure::NotWritten => false,
        }
    }
}

/// Why `ack_inbound` refused an ack.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// No delivery with this id is held by the application: it was acked already, was
    /// never handed over, or was forgotten past
    /// [`delivery_memory`](super::GatewayConfig::delivery_memory) (the connector redelivers it).
    #[error("no unacknowledged delivery {0}")]
    Unknown(BufferId),
    /// The machine is closed or revoked for good; nothing will be written again.
    #[error("relay transport closed")]
    Closed,
}

/// Why a dial is requested.
///
/// Displays as a short phrase: `initial dial`, `backoff re-dial`, `re-dial with a fresh token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DialPurpose {
    /// The first connection, asked for by `connect`.
    Initial,
    /// A reconnection after the backoff wait.
    Backoff,
    /// The immediate re-dial after a first auth strike (close 4401 on an established
    /// connection). The upgrade must carry a freshly minted token.
    FreshToken,
}

impl fmt::Display for DialPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DialPurpose::Initial => "initial dial",
            DialPurpose::Backoff => "backoff re-dial",
            DialPurpose::FreshToken => "re-dial with a fresh token",
        })
    }
}

/// An instruction for the driver about the socket.
///
/// Displays as `dial #3 (backoff re-dial)`, `close 1000 "bye"`, `ping` or `abort`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionCommand {
    /// Open a WebSocket now (minting a fresh upgrade token), then report
    /// `on_connected` or `on_dial_failed`.
    Dial {
        /// Which attempt this is; increases with every dial.
        generation: u64,
        /// Why.
        purpose: DialPurpose,
    },
    /// Close the current socket with this code and reason, after the frames before it,
    /// and keep reading until the peer answers; then report `on_closed`. (With no
    /// `close_timeout` configured, report nothing more about it.)
    Close {
        /// WebSocket close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// Send a WebSocket Ping on the current socket (keepalive). Its Pong is reported with
    /// `on_pong`; any byte received counts as well.
    Ping,
    /// Drop the current socket or abandon the dial in progress now, without a close
    /// handshake (a dead link cannot complete one). Report nothing more about it.
    Abort,
}

impl fmt::Display for ConnectionCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionCommand::Dial {
                generation,
                purpose,
            } => write!(f, "dial #{generation} ({purpose})"),
            ConnectionCommand::Close { code, reason } => write!(f, "close {code} {reason:?}"),
            ConnectionCommand::Ping => f.write_str("ping"),
            ConnectionCommand::Abort => f.write_str("abort"),
        }
    }
}

/// The machine's coarse state, for observability.
///
/// Displays in lower case, as in logs: `idle`, `dialing`, `awaiting descriptor`, `open`,
/// `waiting`, `held`, `closing`, `closed`, `revoked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GatewayState {
    /// Not connected and not trying to (before `connect`, after a failed first connect,
    /// or after a drop with reconnect off).
    Idle,
    /// A dial was requested; waiting for the driver's report.
    Dialing,
    /// Connected; hellos written; waiting for the first descriptor.
    AwaitingDescriptor,
    /// Handshake complete.
    Open,
    /// Waiting out a backoff delay before re-dialling.
    Waiting,
    /// A due re-dial is parked by `hold_redial`.
    Held,
    /// `disconnect` is draining pending requests.
    Closing,
    /// Terminal: disconnected.
    Closed,
    /// Terminal: the connector revoked the credential.
    Revoked,
}

impl fmt::Display for GatewayState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GatewayState::Idle => "idle",
            GatewayState::Dialing => "dialing",
            GatewayState::AwaitingDescriptor => "awaiting descriptor",
            GatewayState::Open => "open",
            GatewayState::Waiting => "waiting",
            GatewayState::Held => "held",
            GatewayState::Closing => "closing",
            GatewayState::Closed => "closed",
            GatewayState::Revoked => "revoked",
        })
    }
}

/// Why the first connection attempt failed. The machine is `Idle` again; call
/// `connect` to try anew.
///
/// An [`Error`](std::error::Error); displays as e.g. `the connector refused the credential
/// (4401 "unauthorized")` or `no descriptor within the handshake timeout`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectFailure {
    /// The dial itself failed (as reported by the driver).
    #[error("dial failed: {0}")]
    Dial(String),
    /// The connector closed with 4401 before the handshake: the credential was refused.
    #[error("the connector refused the credential (4401 {reason:?})")]
    Unauthorized {
        /// The close reason (`expired` means only the token's age was the problem).
        reason: String,
    },
    /// The socket closed before the first descriptor.
    #[error("the socket closed before the handshake ({}{reason:?})", code.map(|c| format!("{c} ")).unwrap_or_default())]
    Closed {
        /// Close code, if the close had one.
        code: Option<u16>,
        /// Close reason.
        reason: String,
    },
    /// No descriptor arrived within the handshake timeout.
    #[error("no descriptor within the handshake timeout")]
    HandshakeTimeout,
}

/// One output of a [`RelayMachine`](super::RelayMachine), in the order the machine
/// produced it. Carry each out before taking the next.
///
/// Displays as one log line: `transmit {"type":"hello",...}` (the line without its `\n`),
/// `command dial #1 (initial dial)`, or `event ` and the event's own display.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "every output must be carried out, in order"]
#[non_exhaustive]
pub enum Output {
    /// Write this line as one WebSocket text message on the current socket.
    Transmit(Transmit),
    /// Dial or close, after writing every frame before it.
    Command(ConnectionCommand),
    /// Hand this to the application. It may call commands, which queue more outputs.
    Event(GatewayEvent),
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

/// Something the application should know about.
///
/// `GatewayEvent` implements [`Display`](fmt::Display): one line naming the variant and
/// its essentials, the form the examples print and transcripts snapshot, for instance
/// `HandshakeComplete default=discord`, `Inbound discord:4455 "hi" buffer=b-1`,
/// `Response 63cb… Ok({"success":true})`, `Disconnected 1006 "reset"` or `Closed`. It is
/// meant for logs, stable across patch releases; match on the variants to act on an event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum GatewayEvent {
    /// The first descriptor of this connection arrived: requests are routed by it now.
    HandshakeComplete {
        /// The session default platform's descriptor platform.
        platform: String,
    },
    /// A descriptor arrived (the first of a connection also completes the handshake).
    Descriptor(Box<CapabilityDescriptor>),
    /// The first connection attempt failed; the machine is idle.
    ConnectFailed(ConnectFailure),
    /// A message event. Acknowledge a buffered one with `ack_inbound` once it is owned.
    Inbound {
        /// The event.
        event: Box<MessageEvent>,
        /// Set for buffered (replayed) deliveries.
        buffer_id: Option<BufferId>,
    },
    /// A buffered delivery whose `bufferId` could be read but whose body could not. It is
    /// handed over like any delivery, never suppressed: ack it (auto-ack does) so it is not
    /// redelivered forever, after logging or dead-lettering what it can.
    Undeliverable {
        /// The delivery.
        buffer_id: BufferId,
        /// Why its line did not decode.
        error: Box<DecodeError>,
    },
    /// An `interrupt` that was never written: the connection ended before the driver took
    /// it. Call [`interrupt`](super::RelayMachine::interrupt) again once reconnected if the
    /// turn still runs.
    InterruptNotSent {
        /// The session it was for.
        session_key: String,
    },
    /// A provider webhook. Acknowledge a buffered one like an inbound.
    Passthrough {
        /// The forward; its body may carry a decode error.
        forward: Box<PassthroughForward>,
        /// Set for buffered (replayed) deliveries.
        buffer_id: Option<BufferId>,
    },
    /// The connector asks to stop a session's running turn.
    Interrupt {
        /// The session.
        session_key: String,
        /// Its chat.
        chat_id: String,
    },
    /// A request resolved; each request id resolves exactly once.
    Response {
        /// The request.
        id: RequestId,
        /// The connector's result, or why none came. Boxed as it was decoded, so that
        /// events stay small to move.
        result: Result<Box<ActionResult>, RequestFailure>,
    },
    /// A `go_idle` or `go_dormant` ended.
    GoingIdle {
        /// The connector acknowledged: further inbound is buffered.
        acked: bool,
        /// It was a `go_dormant`: on ack the socket is closed and re-dialled on the
        /// dormant cadence.
        dormant: bool,
    },
    /// The connection ended.
    Disconnected {
        /// Close code, if any.
        code: Option<u16>,
        /// Close reason or failure text.
        reason: String,
    },
    /// A re-dial is scheduled.
    Reconnecting {
        /// When it will be attempted (unless held).
        at: Instant,
        /// Why.
        purpose: DialPurpose,
    },
    /// The due re-dial is parked by `hold_redial` until release or the hold cap.
    RedialHeld {
        /// When the hold expires and the dial goes ahead anyway.
        until: Instant,
    },
    /// The connector revoked the credential (two 4401 strikes). Terminal.
    Revoked {
        /// The final close reason.
        reason: String,
    },
    /// `disconnect` finished. Terminal.
    Closed,
    /// Something unexpected that changed nothing.
    Diagnostic(Diagnostic),
}

/// Peer behaviour that was tolerated. The connection carries on.
///
/// Displays as a lower-case phrase, e.g. `undecodable line: line 2, byte 40: invalid_json:
/// ...` or `result for no pending request r-9`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Diagnostic {
    /// A line that did not decode. If it was an `outbound_result` for a pending request,
    /// that request has resolved with [`RequestFailure::InvalidResult`]; a buffered
    /// delivery comes as [`GatewayEvent::Undeliverable`] instead.
    Decode(Box<DecodeError>),
    /// An `outbound_result` for an id that is not pending: unknown, late, or a duplicate.
    UnknownResult(RequestId),
    /// A frame the connector should not send (a gateway→connector type) or an unknown
    /// frame type.
    UnexpectedFrame(String),
    /// A descriptor for a platform this gateway did not announce. It is kept anyway
    /// (within [`max_identities`](super::GatewayConfig::max_identities) platforms per connection).
    UnannouncedDescriptor(String),
    /// A descriptor for yet another platform after [`max_identities`](super::GatewayConfig::max_identities) platforms were
    /// described on this connection. It was dropped (no `Descriptor` event); updates of
    /// platforms already described are still taken.
    TooManyDescriptors(String),
    /// A `going_idle_ack` that answers no pending `going_idle`.
    StrayGoingIdleAck,
    /// Bytes arrived while no connection was open; they were dropped.
    InputWhileDisconnected(usize),
    /// This many further diagnostics of one input were dropped: at most 64 are reported
    /// per input, so a message of tiny bad lines cannot make one event per line. Their
    /// side effects (resolving a request) still happened.
    Suppressed(u64),
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnostic::Decode(e) => write!(f, "undecodable line: {e}"),
            Diagnostic::UnknownResult(id) => write!(f, "result for no pending request {id}"),
            Diagnostic::UnexpectedFrame(t) => write!(f, "unexpected frame type {t:?}"),
            Diagnostic::UnannouncedDescriptor(p) => {
                write!(f, "descriptor for unannounced platform {p:?}")
            }
            Diagnostic::TooManyDescriptors(p) => {
                write!(f, "descriptor for {p:?} dropped: too many platforms")
            }
            Diagnostic::StrayGoingIdleAck => write!(f, "going_idle_ack answering nothing"),
            Diagnostic::InputWhileDisconnected(n) => {
                write!(f, "{n} bytes while disconnected, dropped")
            }
            Diagnostic::Suppressed(n) => write!(f, "{n} more diagnostics of this input"),
        }
    }
}

impl fmt::Display for GatewayEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GatewayEvent::HandshakeComplete { platform } => {
                write!(f, "HandshakeComplete default={platform}")
            }
            GatewayEvent::Descriptor(d) => write!(
                f,
                "Descriptor {} max={} unit={}",
                d.platform,
                d.max_message_length,
                d.len_unit.as_str()
            ),
            GatewayEvent::ConnectFailed(failure) => write!(f, "ConnectFailed {failure:?}"),
            GatewayEvent::Inbound { event, buffer_id } => write!(
                f,
                "Inbound {}:{} {:?}{}",
                event.source.platform,
                event.source.chat_id,
                event.text,
                buffered(buffer_id.as_ref())
            ),
            GatewayEvent::Passthrough { forward, buffer_id } => write!(
                f,
                "Passthrough {} {} {}{}",
                forward.platform,
                forward.path,
                match &forward.body {
                    Ok(body) => format!("body={}B", body.len()),
                    Err(e) => format!("body error: {}", e.reason),
                },
                buffered(buffer_id.as_ref())
            ),
            GatewayEvent::Interrupt {
                session_key,
                chat_id,
            } => write!(f, "Interrupt {session_key} chat={chat_id}"),
            GatewayEvent::Response { id, result } => match result {
                Ok(r) => write!(f, "Response {id} Ok({})", json(r)),
                Err(e) => write!(
                    f,
                    "Response {id} Err({e:?}){}",
                    if e.is_ambiguous() { " ambiguous" } else { "" }
                ),
            },
            GatewayEvent::GoingIdle { acked, dormant } => {
                write!(f, "GoingIdle acked={acked} dormant={dormant}")
            }
            GatewayEvent::Disconnected { code, reason } => match code {
                Some(code) => write!(f, "Disconnected {code} {reason:?}"),
                None => write!(f, "Disconnected {reason:?}"),
            },
            GatewayEvent::Reconnecting { purpose, .. } => write!(f, "Reconnecting ({purpose:?})"),
            GatewayEvent::RedialHeld { .. } => write!(f, "RedialHeld"),
            GatewayEvent::Revoked { reason } => write!(f, "Revoked {reason:?}"),
            GatewayEvent::Closed => write!(f, "Closed"),
            GatewayEvent::Undeliverable { buffer_id, error } => {
                write!(f, "Undeliverable buffer={buffer_id} {error}")
            }
            GatewayEvent::InterruptNotSent { session_key } => {
                write!(f, "InterruptNotSent {session_key}")
            }
            GatewayEvent::Diagnostic(Diagnostic::Decode(e)) => write!(f, "Diagnostic {e}"),
            GatewayEvent::Diagnostic(d) => write!(f, "Diagnostic {d:?}"),
        }
    }
}

fn buffered(buffer_id: Option<&crate::wire::BufferId>) -> String {
    buffer_id.map_or_else(String::new, |b| format!(" buffer={b}"))
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod size {
    /// A frame is moved from the decoder through the machine, and every event into the
    /// output queue and out to the driver: what is large or rare is boxed, so that each of
    /// those moves is a few registers rather than a call to `memcpy` (they were 200 bytes
    /// and a tenth of the receive path). A field that grows them should be a decision.
    #[test]
    fn frames_events_and_outputs_stay_small() {
        assert!(size_of::<crate::wire::Frame>() <= 56);
        assert!(size_of::<super::GatewayEvent>() <= 56);
        assert!(size_of::<super::Output>() <= 56);
        assert!(
            size_of::<Option<Result<crate::wire::Frame, Box<crate::codec::DecodeError>>>>() <= 56
        );
    }
}

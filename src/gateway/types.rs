//! What goes in and out of a [`RelayMachine`](super::RelayMachine) besides bytes.

use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::reconnect::BackoffConfig;
use crate::codec::{DEFAULT_MAX_FRAME_LEN, DecodeError};
use crate::transmit::Transmit;
use crate::wire::{
    ActionResult, BufferId, CapabilityDescriptor, MessageEvent, PassthroughForward, RequestId,
};

/// One platform identity the gateway fronts: one `hello` on every connection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identity {
    /// Platform name (`discord`, `telegram`, ...).
    pub platform: String,
    /// Bot identity on that platform; may be empty.
    pub bot_id: String,
    /// Discord slash commands to register, sent verbatim in the `hello`.
    pub command_manifest: Option<Vec<Map<String, Value>>>,
}

impl Identity {
    /// An identity without a command manifest.
    pub fn new(platform: impl Into<String>, bot_id: impl Into<String>) -> Self {
        Self {
            platform: platform.into(),
            bot_id: bot_id.into(),
            command_manifest: None,
        }
    }
}

/// Everything that shapes a [`RelayMachine`](super::RelayMachine). The defaults are the
/// reference gateway's numbers (protocol.md §6.1) plus limits the reference lacks.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The identities to announce, in order; the first is the session default. Empty means
    /// the single identity `("relay", "")`, as in the reference.
    pub identities: Vec<Identity>,
    /// How long to wait for the first `descriptor` after connecting (30 s).
    pub handshake_timeout: Duration,
    /// How long a request may wait for its result before it fails as ambiguous (30 s).
    pub request_timeout: Duration,
    /// How long `go_idle` waits for `going_idle_ack` (10 s).
    pub go_idle_timeout: Duration,
    /// Disconnect budget used when `disconnect` is given none (5 s); see
    /// [`drain_grace`](super::drain_grace).
    pub disconnect_budget: Duration,
    /// Most requests awaiting results at once (1024); more fail as not sent.
    pub max_in_flight: usize,
    /// Longest frame accepted, in bytes (1 MiB).
    pub max_frame_len: usize,
    /// Most buffered deliveries remembered (4096), least recently seen forgotten first.
    /// The machine remembers each delivery it handed to the application, while the
    /// application holds it and after it is acked, so that a redelivery (the connector
    /// never got the ack) is not handed over twice but acked again. A delivery forgotten
    /// while held can no longer be acked; the connector redelivers it on a later connection.
    pub delivery_memory: usize,
    /// Most chats whose routing facts are remembered (4096).
    pub route_capacity: usize,
    /// Acknowledge every buffered delivery as soon as it is handed out as an event. Only
    /// for applications that own an event the moment they see it.
    pub auto_ack: bool,
    /// Re-dial after an established connection ends (true).
    pub reconnect: bool,
    /// Reconnect timing.
    pub backoff: BackoffConfig,
}

/// Most identities one connection may announce.
pub const MAX_IDENTITIES: usize = 64;

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            identities: Vec::new(),
            handshake_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(30),
            go_idle_timeout: Duration::from_secs(10),
            disconnect_budget: Duration::from_secs(5),
            max_in_flight: 1024,
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            delivery_memory: 4096,
            route_capacity: 4096,
            auto_ack: false,
            reconnect: true,
            backoff: BackoffConfig::default(),
        }
    }
}

impl GatewayConfig {
    /// Checks the limits and durations: what [`RelayMachine::new`](super::RelayMachine::new)
    /// refuses.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let config = self;
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
        Ok(())
    }
}

/// Why a [`GatewayConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Two identities name the same platform; the connector keys descriptors by platform,
    /// so the second could never be told apart from the first.
    #[error("platform {0:?} is configured twice")]
    DuplicatePlatform(String),
    /// More identities than [`MAX_IDENTITIES`].
    #[error("{0} identities configured; at most {MAX_IDENTITIES} are allowed")]
    TooManyIdentities(usize),
    /// `max_in_flight` or `max_frame_len` is zero.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// A timeout or backoff duration over [`MAX_DURATION`]: added to `now`, it could
    /// overflow `Instant`.
    #[error("{0} is longer than 100 years")]
    TooLong(&'static str),
}

/// The longest duration a [`GatewayConfig`] accepts (100 years), so that no deadline
/// computed from `now` can overflow `Instant`.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Why a request failed. Each kind says whether the connector may have acted on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestFailure {
    /// Not sent: there is no connection (never connected, reconnecting, or held).
    #[error("relay transport not connected")]
    NotConnected,
    /// Not sent: `disconnect` has started.
    #[error("relay transport closing")]
    Closing,
    /// Not sent: the machine is closed for good.
    #[error("relay transport closed")]
    Closed,
    /// Not sent: the connector revoked this gateway's credential.
    #[error("relay credential revoked")]
    Revoked,
    /// Not sent: the connection ended before the driver took the frame to write it.
    #[error("relay transport connection lost before the request was written")]
    NotWritten,
    /// Not sent: `max_in_flight` requests are already awaiting results.
    #[error("{limit} requests already in flight")]
    InFlightLimit {
        /// The configured limit.
        limit: usize,
    },
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
            RequestFailure::NotConnected
            | RequestFailure::Closing
            | RequestFailure::Closed
            | RequestFailure::Revoked
            | RequestFailure::NotWritten
            | RequestFailure::InFlightLimit { .. } => false,
        }
    }
}

/// Why `ack_inbound` refused an ack.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// No delivery with this id is held by the application: it was acked already, was
    /// never handed over, or was forgotten past
    /// [`delivery_memory`](GatewayConfig::delivery_memory) (the connector redelivers it).
    #[error("no unacknowledged delivery {0}")]
    Unknown(BufferId),
    /// The machine is closed or revoked for good; nothing will be written again.
    #[error("relay transport closed")]
    Closed,
}

/// Why a dial is requested.
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

/// An instruction for the driver about the socket.
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
    /// Close the current socket with this code and reason. Report nothing more about it.
    Close {
        /// WebSocket close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
}

/// The machine's coarse state, for observability.
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

/// Why the first connection attempt failed. The machine is `Idle` again; call
/// `connect` to try anew.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectFailure {
    /// The dial itself failed (as reported by the driver).
    Dial(String),
    /// The connector closed with 4401 before the handshake: the credential was refused.
    Unauthorized {
        /// The close reason (`expired` means only the token's age was the problem).
        reason: String,
    },
    /// The socket closed before the first descriptor.
    Closed {
        /// Close code, if the close had one.
        code: Option<u16>,
        /// Close reason.
        reason: String,
    },
    /// No descriptor arrived within the handshake timeout.
    HandshakeTimeout,
}

/// One output of a [`RelayMachine`](super::RelayMachine), in the order the machine
/// produced it. Carry each out before taking the next.
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

/// Something the application should know about.
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
        error: DecodeError,
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
        /// The connector's result, or why none came.
        result: Result<ActionResult, RequestFailure>,
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
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Diagnostic {
    /// A line that did not decode. If it was an `outbound_result` for a pending request,
    /// that request has resolved with [`RequestFailure::InvalidResult`]; a buffered
    /// delivery comes as [`GatewayEvent::Undeliverable`] instead.
    Decode(DecodeError),
    /// An `outbound_result` for an id that is not pending: unknown, late, or a duplicate.
    UnknownResult(RequestId),
    /// A frame the connector should not send (a gateway→connector type) or an unknown
    /// frame type.
    UnexpectedFrame(String),
    /// A descriptor for a platform this gateway did not announce. It is kept anyway
    /// (within [`MAX_IDENTITIES`] platforms per connection).
    UnannouncedDescriptor(String),
    /// A descriptor for yet another platform after [`MAX_IDENTITIES`] platforms were
    /// described on this connection. It was dropped (no `Descriptor` event); updates of
    /// platforms already described are still taken.
    TooManyDescriptors(String),
    /// A `going_idle_ack` that answers no pending `going_idle`.
    StrayGoingIdleAck,
    /// Bytes arrived while no connection was open; they were dropped.
    InputWhileDisconnected(usize),
    /// This many further diagnostics of one input were dropped: at most 64 wait in the
    /// event queue at once, so a message of tiny bad lines cannot queue one event per line.
    /// Their side effects (resolving a request, tracking a delivery) still happened.
    Suppressed(u64),
}

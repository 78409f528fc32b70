//! What shapes a [`RelayMachine`](super::RelayMachine): identities, timeouts, limits and
//! reconnect timing, checked before the machine starts.

use std::time::Duration;

use super::reconnect::BackoffConfig;
use crate::codec::DEFAULT_MAX_FRAME_LEN;
use crate::wire::Identity;

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
    /// Most identities one connection may announce, and most platforms a connector may
    /// describe on one connection (64, as the connector's `max_identities`).
    pub max_identities: usize,
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
    /// How often to ask the driver for a WebSocket Ping while connected (30 s, as the
    /// reference's WebSocket library). `None`: no pings.
    pub ping_interval: Option<Duration>,
    /// How long a connection may stay silent (no byte, no Pong) before the machine gives
    /// it up as dead: it emits `Abort` and reconnects (60 s). `None`: never.
    pub liveness_timeout: Option<Duration>,
    /// How long a dial may take before it is abandoned (`Abort`) and counted as failed
    /// (10 s). `None`: the driver's dial takes as long as it takes.
    pub dial_timeout: Option<Duration>,
    /// How long after a `Close` the machine waits for the driver's `on_closed` before it
    /// emits `Abort` and moves on (10 s). `None`: it moves on at once.
    pub close_timeout: Option<Duration>,
    /// Retry a failed first dial on the backoff ladder (true). `false` restores the
    /// reference's fail-fast first connection (protocol.md §7.4): it ends in
    /// `ConnectFailed`.
    pub retry_first_dial: bool,
}

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
            max_identities: 64,
            delivery_memory: 4096,
            route_capacity: 4096,
            auto_ack: false,
            reconnect: true,
            backoff: BackoffConfig::default(),
            ping_interval: Some(Duration::from_secs(30)),
            liveness_timeout: Some(Duration::from_secs(60)),
            dial_timeout: Some(Duration::from_secs(10)),
            close_timeout: Some(Duration::from_secs(10)),
            retry_first_dial: true,
        }
    }
}

impl GatewayConfig {
    /// Checks the limits and durations: what [`RelayMachine::new`](super::RelayMachine::new)
    /// refuses.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let config = self;
        if config.identities.len() > config.max_identities {
            return Err(ConfigError::TooManyIdentities {
                configured: config.identities.len(),
                limit: config.max_identities,
            });
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
        // A zero bound would fire at the instant it is set, forever: turn it off with None.
        for (name, bound) in [
            ("ping_interval", config.ping_interval),
            ("liveness_timeout", config.liveness_timeout),
            ("dial_timeout", config.dial_timeout),
            ("close_timeout", config.close_timeout),
        ] {
            if bound.is_some_and(|d| d.is_zero()) {
                return Err(ConfigError::Zero(name));
            }
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
            ("ping_interval", config.ping_interval.unwrap_or_default()),
            (
                "liveness_timeout",
                config.liveness_timeout.unwrap_or_default(),
            ),
            ("dial_timeout", config.dial_timeout.unwrap_or_default()),
            ("close_timeout", config.close_timeout.unwrap_or_default()),
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
    /// More identities than `max_identities`.
    #[error("{configured} identities configured; at most {limit} are allowed")]
    TooManyIdentities {
        /// How many were configured.
        configured: usize,
        /// The configured `max_identities`.
        limit: usize,
    },
    /// `max_in_flight` or `max_frame_len` is zero, or a keepalive, dial or close bound is
    /// `Some(0)` (use `None` to turn it off).
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

//! WebSocket close codes and close reasons with a meaning in the protocol (protocol.md §7.1).
//!
//! A close is not a frame, but its code and reason are part of the contract between the two
//! roles: the gateway's reconnect and auth-strike policy (protocol.md §7.3) is decided by
//! them. Any other code (1001 aside, which means the same as [`NORMAL`]) is an ordinary
//! unexpected close.

/// Normal closure, sent by either side when it ends the connection on purpose (1001,
/// going away, means the same). The gateway's reader ends quietly and its reconnect
/// supervisor is armed unless the gateway is closing, revoked or has reconnect off.
pub const NORMAL: u16 = 1000;

/// Message too big: a WebSocket message exceeded the 1 MiB limit, and the receiving
/// WebSocket library closed the connection. For the gateway an ordinary unexpected close.
pub const MESSAGE_TOO_BIG: u16 = 1009;

/// Unauthorized: the connector refused the upgrade credential or revoked the gateway's
/// secret. With reason [`REASON_EXPIRED`] only the token was too old and the gateway
/// re-dials with a fresh one; any other reason (e.g. `"unauthorized"`) may be a revocation,
/// which the gateway latches on the second strike. A 4401 before the first successful
/// handshake refuses the credential outright.
pub const UNAUTHORIZED: u16 = 4401;

/// Superseded: the connector closed this connection because a newer connection of the same
/// gateway instance replaced it; sent with reason [`REASON_SUPERSEDED`]. Never 4401, which
/// after a successful handshake would count as an auth strike.
pub const SUPERSEDED: u16 = 4409;

/// The reason that goes with [`UNAUTHORIZED`] when only the token expired: the secret is
/// still valid, so this is never a revocation.
pub const REASON_EXPIRED: &str = "expired";

/// The reason that goes with [`SUPERSEDED`].
pub const REASON_SUPERSEDED: &str = "superseded";

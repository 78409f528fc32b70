//! Trace points at the machines' protocol decisions (feature `tracing`).
//!
//! The crate-private macros `debug!`, `info!` and `warn!` take the `tracing` event
//! syntax this crate uses (`field = value`, `field = %display`, `field = ?debug`, a bare
//! `field`, then a message literal with optional format arguments):
//!
//! - with the feature on they *are* `tracing::debug!` and friends, so a subscriber sees
//!   ordinary `tracing` events whose target is the module that made the decision
//!   (`relay_machine::gateway::reconnect`, `relay_machine::connector::requests`, ...), and a
//!   disabled level costs one cached callsite check;
//! - with it off they expand to `if false { let _ = &field_value; ... }`: the arguments are
//!   type-checked and count as used (no unused-variable warning at a call site whose only
//!   reader is the trace point), but they are never evaluated, no code is emitted for them,
//!   and the crate does not depend on `tracing` at all.
//!
//! That is why the call sites can pass values that cost something to compute (a
//! `Display` of an outcome, a lookup): none of it runs unless the feature is on *and* a
//! subscriber wants the event.
//!
//! # Levels
//!
//! - `debug`: the protocol decisions of a healthy connection: hellos written, a descriptor
//!   received (an identity handshaken), the handshake complete, a request resolved, an ack
//!   written or received, a reconnect scheduled, a close decided, going idle.
//! - `info`: what the peer did wrong but the protocol absorbs: diagnostics (undecodable or
//!   unexpected frames), refused hellos and requests, a failed dial, a connection that
//!   ended, a connection superseded by a newer one.
//! - `warn`: faults that cost a connection or a credential: an auth strike (4401) and a
//!   revocation, a handshake / hello / liveness / dial / request timeout, a refused
//!   credential, a first connection that failed.
//!
//! # No spans held
//!
//! A sans-IO machine returns after every call, so it cannot hold a span entered across
//! calls. Every gateway event carries the connection `generation` instead (the one
//! [`ConnectionCommand::Dial`](crate::gateway::ConnectionCommand::Dial) names), and every
//! [`Instance`](crate::connector::Instance) event its `conn`. A driver that wants a span per
//! socket enters its own around its calls into the machine: the machine's events nest in it.

#[cfg(feature = "tracing")]
macro_rules! debug {
    ($($args:tt)*) => { ::tracing::debug!($($args)*) };
}
#[cfg(feature = "tracing")]
macro_rules! info {
    ($($args:tt)*) => { ::tracing::info!($($args)*) };
}
#[cfg(feature = "tracing")]
macro_rules! warn_event {
    ($($args:tt)*) => { ::tracing::warn!($($args)*) };
}

#[cfg(not(feature = "tracing"))]
macro_rules! debug {
    ($($args:tt)*) => { $crate::trace::unused!($($args)*) };
}
#[cfg(not(feature = "tracing"))]
macro_rules! info {
    ($($args:tt)*) => { $crate::trace::unused!($($args)*) };
}
#[cfg(not(feature = "tracing"))]
macro_rules! warn_event {
    ($($args:tt)*) => { $crate::trace::unused!($($args)*) };
}

/// The feature-off expansion: the arguments in a branch that never runs.
#[cfg(not(feature = "tracing"))]
macro_rules! unused {
    // One field at a time; each arm starts with a token matched as such (an ident or a
    // sigil), so a failed arm falls through to the next.
    (@ $key:ident = % $value:expr $(, $($rest:tt)*)?) => {
        let _ = &$value;
        $crate::trace::unused!(@ $($($rest)*)?);
    };
    (@ $key:ident = ? $value:expr $(, $($rest:tt)*)?) => {
        let _ = &$value;
        $crate::trace::unused!(@ $($($rest)*)?);
    };
    (@ $key:ident = $value:expr $(, $($rest:tt)*)?) => {
        let _ = &$value;
        $crate::trace::unused!(@ $($($rest)*)?);
    };
    (@ % $key:ident $(, $($rest:tt)*)?) => {
        let _ = &$key;
        $crate::trace::unused!(@ $($($rest)*)?);
    };
    (@ ? $key:ident $(, $($rest:tt)*)?) => {
        let _ = &$key;
        $crate::trace::unused!(@ $($($rest)*)?);
    };
    (@ $key:ident $(, $($rest:tt)*)?) => {
        let _ = &$key;
        $crate::trace::unused!(@ $($($rest)*)?);
    };
    (@ $message:literal $(, $arg:expr)* $(,)?) => {
        $(let _ = &$arg;)*
    };
    (@) => {};
    // The entry (last: the arms above take the `@` of each step).
    ($($args:tt)*) => {{
        if false {
            $crate::trace::unused!(@ $($args)*);
        }
    }};
}

#[cfg(not(feature = "tracing"))]
pub(crate) use unused;
// `warn` alone would be ambiguous with the built-in `#[warn]` attribute in this `use`.
pub(crate) use {debug, info, warn_event as warn};

use std::fmt;

use crate::gateway::RequestFailure;
use crate::wire::ActionResult;

/// How a gateway request resolved, in words (`ok message m-1`, `failed (code): why`,
/// `ambiguous: relay outbound timed out`, `not sent: ...`), formatted only when an event
/// records it.
pub(crate) struct Outcome<'a>(pub(crate) &'a Result<Box<ActionResult>, RequestFailure>);

impl fmt::Display for Outcome<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Ok(result) => write!(f, "{result}"),
            Err(failure) if failure.is_ambiguous() => write!(f, "ambiguous: {failure}"),
            Err(failure) => write!(f, "not sent: {failure}"),
        }
    }
}

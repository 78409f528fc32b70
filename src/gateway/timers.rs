//! The connection timers: a fixed table with one slot per kind, so the next deadline is a
//! scan of eight slots. Request deadlines live in their own ordered index beside the
//! pending map ([`TimerKind::Request`] has no slot here).

use std::time::Instant;

/// Which deadline [`RelayMachine::poll_timeout`](super::RelayMachine::poll_timeout)
/// reports.
///
/// Displays as its snake_case name: `handshake`, `go_idle`, `redial`, `drain`, `request`,
/// `ping`, `liveness`, `dial`, `close`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum TimerKind {
    /// The first descriptor is due.
    Handshake,
    /// The `going_idle_ack` is due.
    GoIdle,
    /// A backoff wait or a redial hold ends.
    Redial,
    /// The disconnect drain grace ends.
    Drain,
    /// A request's result is due.
    Request,
    /// The next keepalive Ping is due.
    Ping,
    /// The connection has been silent too long.
    Liveness,
    /// The dial has taken too long.
    Dial,
    /// The socket asked to close has not reported its end.
    Close,
}

impl std::fmt::Display for TimerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TimerKind::Handshake => "handshake",
            TimerKind::GoIdle => "go_idle",
            TimerKind::Redial => "redial",
            TimerKind::Drain => "drain",
            TimerKind::Request => "request",
            TimerKind::Ping => "ping",
            TimerKind::Liveness => "liveness",
            TimerKind::Dial => "dial",
            TimerKind::Close => "close",
        })
    }
}

/// The kinds with a slot in [`Timers`], in slot order.
pub(crate) const TIMERS: [TimerKind; 8] = [
    TimerKind::Handshake,
    TimerKind::GoIdle,
    TimerKind::Redial,
    TimerKind::Drain,
    TimerKind::Ping,
    TimerKind::Liveness,
    TimerKind::Dial,
    TimerKind::Close,
];

/// One deadline per connection timer kind.
#[derive(Debug, Default)]
pub(crate) struct Timers([Option<Instant>; TIMERS.len()]);

impl Timers {
    fn slot(&mut self, kind: TimerKind) -> Option<&mut Option<Instant>> {
        let index = TIMERS.iter().position(|k| *k == kind)?;
        self.0.get_mut(index)
    }

    pub(crate) fn set(&mut self, kind: TimerKind, at: Instant) {
        if let Some(slot) = self.slot(kind) {
            *slot = Some(at);
        }
    }

    pub(crate) fn clear(&mut self, kind: TimerKind) {
        if let Some(slot) = self.slot(kind) {
            *slot = None;
        }
    }

    /// Every set deadline with its kind.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Instant, TimerKind)> + '_ {
        TIMERS
            .iter()
            .zip(&self.0)
            .filter_map(|(kind, at)| at.map(|at| (at, *kind)))
    }

    /// Clears and reports `kind` if it is due at `now`.
    pub(crate) fn fire(&mut self, kind: TimerKind, now: Instant) -> bool {
        let Some(slot) = self.slot(kind) else {
            return false;
        };
        let due = slot.is_some_and(|at| at <= now);
        if due {
            *slot = None;
        }
        due
    }
}

use super::RelayMachine;

impl RelayMachine {
    /// The earliest deadline; call [`handle_timeout`](Self::handle_timeout) when it
    /// passes. `None` when nothing is timed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_timer().map(|(at, _)| at)
    }

    /// The earliest deadline and what it is for.
    #[must_use]
    pub fn next_timer(&self) -> Option<(Instant, TimerKind)> {
        let timers = self.timers.iter();
        let request = self
            .pending
            .next_deadline()
            .map(|at| (at, TimerKind::Request));
        timers.chain(request).min()
    }

    /// Acts on every deadline that is due at `now`. Spurious calls do nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.flush_input();
        self.observe(now);
        self.expire_requests(now);
        if self.timers.fire(TimerKind::Handshake, now) {
            self.on_handshake_timeout(now);
        }
        if self.timers.fire(TimerKind::GoIdle, now) {
            self.on_go_idle_timeout();
        }
        if self.timers.fire(TimerKind::Drain, now) {
            self.close_due = true;
        }
        if self.timers.fire(TimerKind::Redial, now) {
            self.on_redial_timer(now);
        }
        if self.timers.fire(TimerKind::Ping, now) {
            self.on_ping_timer(now);
        }
        if self.timers.fire(TimerKind::Liveness, now) {
            self.on_liveness_timeout(now);
        }
        if self.timers.fire(TimerKind::Dial, now) {
            self.on_dial_timeout(now);
        }
        if self.timers.fire(TimerKind::Close, now) {
            self.on_close_timeout(now);
        }
        self.finish_close_if_drained();
    }
}

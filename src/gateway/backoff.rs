//! The reconnect ladder (protocol.md §7.4, variant V-B): capped, jittered, and reset only
//! after a connection that stayed up long enough.

use std::time::Duration;

use crate::rng::Rng;

/// Reconnect timing. The defaults are the reference's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackoffConfig {
    /// First ceiling of the ladder (1 s).
    pub base: Duration,
    /// Largest ceiling (30 s).
    pub cap: Duration,
    /// A connection that lived this long after its handshake resets the ladder (60 s).
    pub stable_after: Duration,
    /// Wait before re-dialling after going dormant (1 s); does not climb the ladder.
    pub dormant_cadence: Duration,
    /// Longest a redial hold parks a due dial (60 s).
    pub hold_cap: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(30),
            stable_after: Duration::from_secs(60),
            dormant_cadence: Duration::from_secs(1),
            hold_cap: Duration::from_secs(60),
        }
    }
}

/// Position on the ladder. It survives reconnections, so a connector that accepts and
/// drops at once sees waits that keep growing instead of a dial every second.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ladder {
    attempt: u32,
}

impl Ladder {
    /// The ceiling of the next step, then a wait uniform in `[ceiling/2, ceiling]` so a
    /// fleet that lost the same connector does not come back in step.
    pub(crate) fn next_wait(&mut self, config: &BackoffConfig, rng: &mut Rng) -> Duration {
        self.attempt = self.attempt.saturating_add(1);
        let ceiling = self.ceiling(config);
        let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rng.between(ms / 2, ms))
    }

    fn ceiling(&self, config: &BackoffConfig) -> Duration {
        if config.base.is_zero() || config.cap.is_zero() {
            return Duration::ZERO;
        }
        let doublings = self.attempt.saturating_sub(1).min(32);
        config
            .base
            .checked_mul(1 << doublings)
            .map_or(config.cap, |d| d.min(config.cap))
    }

    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

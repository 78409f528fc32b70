//! Bounds on what one input can make a machine queue.

/// Bytes of one input decoded at a time: a machine decodes a WebSocket message in slices of
/// this size and handles each slice's frames before decoding more, so the decoder never
/// holds a whole message's worth of decoded items at once.
pub(crate) const INPUT_SLICE: usize = 16 * 1024;

/// Most diagnostics waiting in a machine's event queue. A message full of tiny bad lines
/// (`1\n` repeated) would otherwise queue one event per two bytes of input.
pub(crate) const MAX_QUEUED_DIAGNOSTICS: usize = 64;

/// Counts the diagnostics in an event queue and those dropped past the cap.
#[derive(Debug, Default)]
pub(crate) struct DiagnosticBudget {
    queued: usize,
    suppressed: u64,
}

impl DiagnosticBudget {
    /// Whether one more diagnostic may be queued; if not, it is counted as suppressed.
    pub(crate) fn admit(&mut self) -> bool {
        if self.queued < MAX_QUEUED_DIAGNOSTICS {
            self.queued += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    /// A queued diagnostic was taken by the application.
    pub(crate) fn taken(&mut self) {
        self.queued = self.queued.saturating_sub(1);
    }

    /// How many were dropped since the last call, if any.
    pub(crate) fn take_suppressed(&mut self) -> Option<u64> {
        Some(std::mem::take(&mut self.suppressed)).filter(|&n| n > 0)
    }
}

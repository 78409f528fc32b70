//! What both roles do the same way with their connection: decode the bytes handed in,
//! one frame at a time, and queue outputs in one ordered stream.
//!
//! Decoding is pulled, not pushed: `handle_input` only hands the bytes to the decoder, and a
//! machine decodes the next frame when its output queue runs dry (inside `poll_output`), so
//! what one input can make a machine hold is the input itself and the outputs of one frame,
//! however many frames the input carries. Each frame is handled with the `now` of the input
//! that brought it. Any other input first handles every frame handed in before it, so
//! nothing overtakes a result that has already arrived.

use std::time::Instant;

use crate::codec::{DecodeError, FrameDecoder};
use crate::outputs::Queue;
use crate::wire::{Frame, Outbound};

/// Most diagnostics one input may produce; the rest are counted and reported once, when the
/// input is done. A message of tiny bad lines (`1\n` repeated) would otherwise produce an
/// event per two bytes.
pub(crate) const MAX_DIAGNOSTICS_PER_INPUT: u64 = 64;

/// The next step of the input being decoded.
pub(crate) enum Step {
    /// A line of the input, decoded or not.
    Frame(Instant, Result<Frame, Box<DecodeError>>),
    /// The input is done; this many diagnostics of it were suppressed.
    Done(Instant, Option<u64>),
}

#[derive(Debug)]
pub(crate) struct Core<C, E> {
    decoder: FrameDecoder,
    /// The `now` of the input whose bytes the decoder holds; `None` when it has none.
    input: Option<Instant>,
    /// Diagnostics admitted and suppressed in the current input.
    diagnostics: u64,
    suppressed: u64,
    pub(crate) outputs: Queue<C, E>,
}

impl<C, E> Core<C, E> {
    pub(crate) fn new(max_frame_len: usize) -> Self {
        Self {
            decoder: FrameDecoder::with_max_frame_len(max_frame_len),
            input: None,
            diagnostics: 0,
            suppressed: 0,
            outputs: Queue::default(),
        }
    }

    /// Hands the bytes of one input to the decoder. The caller has handled every frame of
    /// the previous input first.
    pub(crate) fn push(&mut self, now: Instant, bytes: impl crate::codec::Payload) {
        bytes.push_to(&mut self.decoder);
        self.input = Some(now);
        self.diagnostics = 0;
    }

    /// The next step of the input being decoded; `None` when there is none.
    #[inline]
    pub(crate) fn step(&mut self) -> Option<Step> {
        let now = self.input?;
        Some(match self.decoder.next_frame() {
            Some(item) => Step::Frame(now, item),
            None => {
                self.input = None;
                let suppressed = std::mem::take(&mut self.suppressed);
                Step::Done(now, Some(suppressed).filter(|&n| n > 0))
            }
        })
    }

    /// The next frame of the input if it is an `outbound` that the fast path reads (see
    /// `FrameDecoder::next_outbound`); `None` leaves it to [`step`](Self::step).
    #[inline]
    pub(crate) fn next_outbound(&mut self) -> Option<Box<Outbound>> {
        self.input?;
        self.decoder.next_outbound()
    }

    /// Whether a diagnostic of the current input may be reported; if not, it is counted.
    pub(crate) fn admit_diagnostic(&mut self) -> bool {
        if self.diagnostics < MAX_DIAGNOSTICS_PER_INPUT {
            self.diagnostics += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    /// Forgets the bytes of a connection that ended (a partial line, undecoded input).
    pub(crate) fn reset_input(&mut self) {
        self.decoder.reset();
        self.input = None;
        self.suppressed = 0;
    }

    /// Bytes of a partial line held back, waiting for its newline.
    pub(crate) fn buffered_len(&self) -> usize {
        self.decoder.buffered_len()
    }
}

//! [`FrameDecoder`]: the pull-based line splitter, with its limits.
#![deny(clippy::indexing_slicing)]

use bytes::{Bytes, BytesMut};

use super::line::decode_line;
use super::{DEFAULT_MAX_FRAME_LEN, DecodeError, DecodeErrorKind};
use crate::wire::{Frame, Outbound};

/// Turns a stream of byte chunks into frames.
///
/// Feed it the payload of every WebSocket message (text or binary) with
/// [`push`](Self::push), then take the frames with [`next_frame`](Self::next_frame) until
/// it returns `None`. Chunks may split lines anywhere, including inside a UTF-8 character,
/// and may carry several lines; the frames are the same however the stream is cut.
///
/// Decoding is pulled: `push` only keeps the bytes, and each `next_frame` decodes one
/// line. What a chunk can make the decoder hold is the chunk itself, never a chunk's worth
/// of decoded frames. Each byte is scanned once: the total work is linear in the input
/// however it is chunked. A line longer than the limit is reported once, as soon as it
/// crosses the limit, and its remaining bytes are skipped up to the newline without being
/// kept, so the decoder never holds more than `max_frame_len` bytes of a partial line
/// across chunks. A bad line yields one [`DecodeError`] and the next line decodes
/// normally. Blank lines are skipped; a trailing `\r` is tolerated.
///
/// ```
/// use relay_machine::codec::FrameDecoder;
/// use relay_machine::wire::Frame;
///
/// let mut decoder = FrameDecoder::new();
/// decoder.push(br#"{"type":"going_idle_ack"}"#);
/// assert!(decoder.next_frame().is_none()); // no newline yet
/// decoder.push(b"\n{\"type\":");
/// assert_eq!(decoder.next_frame(), Some(Ok(Frame::GoingIdleAck)));
/// assert!(decoder.next_frame().is_none());
/// ```
#[derive(Debug)]
pub struct FrameDecoder {
    max_frame_len: usize,
    /// Bytes of the current line that arrived in earlier chunks.
    partial: Vec<u8>,
    /// The current line crossed the limit and was reported; skip it up to its newline.
    skipping: bool,
    /// 1-based number of the current line.
    line: u64,
    /// Stream offset of the current line's first byte.
    line_start: u64,
    /// Stream offset of the next byte to scan.
    position: u64,
    /// Bytes pushed and not scanned yet. Each complete line is split off as its own
    /// `Bytes`, so the strings of its frame can be slices of it (see
    /// [`Str`](crate::wire::Str)); once every frame of a message is dropped the buffer is
    /// unique again and the next push reuses it.
    input: BytesMut,
    /// A message handed over as `Bytes` ([`push_bytes`](Self::push_bytes)) and not
    /// scanned yet: its lines are split off it without a copy. It comes before `input`.
    shared: Bytes,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    /// A decoder with the default 1 MiB line limit.
    pub fn new() -> Self {
        Self::with_max_frame_len(DEFAULT_MAX_FRAME_LEN)
    }

    /// A decoder that rejects lines longer than `max_frame_len` bytes (without the `\n`).
    pub fn with_max_frame_len(max_frame_len: usize) -> Self {
        Self {
            max_frame_len,
            partial: Vec::new(),
            skipping: false,
            line: 1,
            line_start: 0,
            position: 0,
            input: BytesMut::new(),
            shared: Bytes::new(),
        }
    }

    /// The line limit in bytes.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Hands over the next chunk of the stream; [`next_frame`](Self::next_frame) decodes it.
    pub fn push(&mut self, chunk: &[u8]) {
        // The middle of a long line (a large frame in many messages) is appended to the
        // partial line at once, instead of copied into `input` and then out of it again:
        // when it is next in the stream (nothing pushed before it is unscanned), ends no
        // line, and keeps the line within the limit (whose crossing `next_frame` reports).
        // That second copy made a 16 MiB frame in 4 KiB messages 10% slower than whole.
        if !self.partial.is_empty()
            && !self.skipping
            && self.input.is_empty()
            && self.shared.is_empty()
            && self.partial.len() + chunk.len() <= self.max_frame_len
            && memchr::memchr(b'\n', chunk).is_none()
        {
            self.position += chunk.len() as u64;
            self.partial.extend_from_slice(chunk);
            return;
        }
        self.input.extend_from_slice(chunk);
    }

    /// [`push`](Self::push) for a chunk already held as `Bytes` (a WebSocket library's
    /// message payload): its lines are decoded in place, and their frames' strings share
    /// it, without copying it first. Only a chunk pushed while bytes of an earlier one are
    /// still unscanned is copied, to keep the order.
    pub fn push_bytes(&mut self, chunk: Bytes) {
        if self.shared.is_empty() && self.input.is_empty() {
            self.shared = chunk;
        } else {
            self.input.extend_from_slice(&chunk);
        }
    }

    /// Decodes the next complete line: a frame or the line's error, in stream order;
    /// `None` when every complete line pushed so far has been taken.
    #[inline]
    pub fn next_frame(&mut self) -> Option<Result<Frame, Box<DecodeError>>> {
        let mut item = None;
        while item.is_none() && !self.shared.is_empty() {
            if let Some(frame) = self.fast_line() {
                item = Some(Ok(frame));
                break;
            }
            match memchr::memchr(b'\n', &self.shared) {
                Some(n) => {
                    let line = self.shared.split_to(n + 1);
                    item = self.end_line(&line, n);
                }
                None => {
                    let rest = std::mem::take(&mut self.shared);
                    item = self.extend_partial(&rest).map(Err);
                }
            }
        }
        while item.is_none() && !self.input.is_empty() {
            match memchr::memchr(b'\n', &self.input) {
                Some(n) => {
                    let line = self.input.split_to(n + 1).freeze();
                    item = self.end_line(&line, n);
                }
                None => {
                    // Moved out while its bytes are kept, then emptied: its capacity stays.
                    let mut rest = std::mem::take(&mut self.input);
                    item = self.extend_partial(&rest).map(Err);
                    rest.clear();
                    self.input = rest;
                }
            }
        }
        // A burst (one large message) should not pin its size for the connection's life.
        if self.input.is_empty() && self.input.capacity() > 64 * 1024 {
            self.input = BytesMut::new();
        }
        item
    }

    /// Ends the stream: a last line that has no trailing newline is decoded as a line by
    /// the next [`next_frame`](Self::next_frame) calls.
    ///
    /// A live connection never calls this (the protocol processes a frame only when its
    /// newline arrives); it is for reading a capture whose last line lacks one.
    pub fn finish(&mut self) {
        let last = self.input.last().or(self.shared.last());
        let open = match last {
            Some(last) => *last != b'\n',
            None => !self.partial.is_empty() || self.skipping,
        };
        if open {
            self.push(b"\n");
        }
    }

    /// Forgets everything buffered and starts a new stream (a new connection).
    pub fn reset(&mut self) {
        *self = Self::with_max_frame_len(self.max_frame_len);
    }

    /// Bytes of a partial line held back, waiting for its newline. Never more than
    /// [`max_frame_len`](Self::max_frame_len).
    pub fn buffered_len(&self) -> usize {
        self.partial.len()
    }

    /// Bytes pushed and not decoded yet.
    pub fn pending_len(&self) -> usize {
        self.shared.len() + self.input.len()
    }

    /// Keeps the start of a line whose newline has not arrived; reports it once it crosses
    /// the limit.
    fn extend_partial(&mut self, bytes: &[u8]) -> Option<Box<DecodeError>> {
        self.position += bytes.len() as u64;
        if self.skipping || bytes.is_empty() {
            return None;
        }
        if self.partial.len() + bytes.len() > self.max_frame_len {
            Some(self.too_long())
        } else {
            self.partial.extend_from_slice(bytes);
            None
        }
    }

    /// `line` holds the rest of the current line and its newline, which is at `n`.
    fn end_line(&mut self, line: &Bytes, n: usize) -> Option<Result<Frame, Box<DecodeError>>> {
        let tail = line.get(..n).unwrap_or_default();
        self.position += tail.len() as u64;
        let item = if self.skipping {
            self.skipping = false;
            None
        } else if self.partial.len() + tail.len() > self.max_frame_len {
            let error = self.too_long();
            self.skipping = false;
            Some(Err(error))
        } else if self.partial.is_empty() {
            self.decode_line(line, tail)
        } else {
            // The line's start came in earlier messages: it is joined into one buffer of
            // its own, which its frame's strings may then share.
            let mut joined = std::mem::take(&mut self.partial);
            joined.extend_from_slice(tail);
            let joined = Bytes::from(joined);
            self.decode_line(&joined, &joined)
        };
        self.position += 1;
        self.line += 1;
        self.line_start = self.position;
        item
    }

    /// The next line of a shared message by the fast path, read straight from the message
    /// (see `fast::frame_line`): no search for its newline first, no line split off. Only
    /// where the usual way would decode that line alone, as it is (no partial line before
    /// it, not skipping, not too long); `None` leaves the line to the usual way.
    #[inline]
    fn fast_line(&mut self) -> Option<Frame> {
        if !self.partial.is_empty() || self.skipping {
            return None;
        }
        let (frame, n) = super::fast::frame_line(&self.shared, &self.shared)?;
        self.take_fast_line(n).then_some(frame)
    }

    /// [`next_frame`](Self::next_frame) when the next line is an `outbound` that the fast
    /// path reads, as its box: the connector's way to its usual frame (see
    /// `fast::outbound_line`). `None` leaves the line, whatever it is, to `next_frame`.
    #[inline]
    pub(crate) fn next_outbound(&mut self) -> Option<Box<Outbound>> {
        if !self.partial.is_empty() || self.skipping {
            return None;
        }
        let (outbound, n) = super::fast::outbound_line(&self.shared, &self.shared)?;
        self.take_fast_line(n).then_some(outbound)
    }

    /// Consumes a line the fast path read, whose newline is at `n`; `false` (consuming
    /// nothing) when it is too long, which the usual way reports.
    #[inline]
    fn take_fast_line(&mut self, n: usize) -> bool {
        if n > self.max_frame_len {
            return false;
        }
        bytes::Buf::advance(&mut self.shared, n + 1);
        // As `end_line` counts a line.
        self.position += n as u64 + 1;
        self.line += 1;
        self.line_start = self.position;
        true
    }

    fn too_long(&mut self) -> Box<DecodeError> {
        self.partial = Vec::new();
        self.skipping = true;
        Box::new(DecodeError {
            kind: DecodeErrorKind::FrameTooLong,
            line: self.line,
            offset: self.line_start,
            frame_type: None,
            salvage: None,
            message: format!("line exceeds {} bytes", self.max_frame_len),
        })
    }

    /// Decodes `line`, which lies within `source`: unescaped strings of the frame may be
    /// slices of `source`.
    fn decode_line(&self, source: &Bytes, line: &[u8]) -> Option<Result<Frame, Box<DecodeError>>> {
        if line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            return None;
        }
        let decoded = decode_line(source, line);
        Some(decoded.map_err(|e| {
            Box::new(DecodeError {
                kind: e.kind,
                line: self.line,
                offset: self.line_start + e.at as u64,
                frame_type: e.salvage.frame_type,
                salvage: e.salvage.salvage,
                message: e.message,
            })
        }))
    }
}

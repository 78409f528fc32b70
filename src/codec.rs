//! Bytes ⇄ frames: newline-delimited JSON, incremental and bounded (protocol.md §1.5).
#![deny(clippy::indexing_slicing)]

use std::fmt;

use bytes::Bytes;

use crate::wire::tagged::{self, Shape};
use crate::wire::{BufferId, Frame, RequestId};

/// The default longest line, in bytes without its `\n`: 1 MiB, the largest WebSocket
/// message the reference gateway accepts.
pub const DEFAULT_MAX_FRAME_LEN: usize = 1 << 20;

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
    /// Bytes pushed and not scanned yet, from `cursor` on.
    input: Vec<u8>,
    cursor: usize,
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
            input: Vec::new(),
            cursor: 0,
        }
    }

    /// The line limit in bytes.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Hands over the next chunk of the stream; [`next_frame`](Self::next_frame) decodes it.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.cursor >= self.input.len() {
            self.input.clear();
            self.cursor = 0;
        }
        self.input.extend_from_slice(chunk);
    }

    /// Decodes the next complete line: a frame or the line's error, in stream order;
    /// `None` when every complete line pushed so far has been taken.
    pub fn next_frame(&mut self) -> Option<Result<Frame, DecodeError>> {
        // The input is moved out while a line of it is decoded, so that the line can be
        // borrowed while the rest of the state changes.
        let input = std::mem::take(&mut self.input);
        let mut item = None;
        while item.is_none() {
            let Some(rest) = input.get(self.cursor..).filter(|r| !r.is_empty()) else {
                break;
            };
            match memchr::memchr(b'\n', rest) {
                Some(n) => {
                    self.cursor += n + 1;
                    item = self.end_line(rest.get(..n).unwrap_or_default());
                }
                None => {
                    self.cursor = input.len();
                    item = self.extend_partial(rest).map(Err);
                }
            }
        }
        self.input = input;
        if self.cursor >= self.input.len() {
            self.cursor = 0;
            self.input.clear();
            // A burst (one large message) should not pin its size for the connection's life.
            if self.input.capacity() > 64 * 1024 {
                self.input = Vec::new();
            }
        }
        item
    }

    /// Ends the stream: a last line that has no trailing newline is decoded as a line by
    /// the next [`next_frame`](Self::next_frame) calls.
    ///
    /// A live connection never calls this (the protocol processes a frame only when its
    /// newline arrives); it is for reading a capture whose last line lacks one.
    pub fn finish(&mut self) {
        let open = match self.input.get(self.cursor..) {
            Some(rest) if !rest.is_empty() => rest.last() != Some(&b'\n'),
            _ => !self.partial.is_empty() || self.skipping,
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
        self.input.len().saturating_sub(self.cursor)
    }

    /// Keeps the start of a line whose newline has not arrived; reports it once it crosses
    /// the limit.
    fn extend_partial(&mut self, bytes: &[u8]) -> Option<DecodeError> {
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

    /// `tail` is the rest of the current line, up to (not including) its newline.
    fn end_line(&mut self, tail: &[u8]) -> Option<Result<Frame, DecodeError>> {
        self.position += tail.len() as u64;
        let item = if self.skipping {
            self.skipping = false;
            None
        } else if self.partial.len() + tail.len() > self.max_frame_len {
            let error = self.too_long();
            self.skipping = false;
            Some(Err(error))
        } else if self.partial.is_empty() {
            self.decode_line(tail)
        } else {
            let mut line = std::mem::take(&mut self.partial);
            line.extend_from_slice(tail);
            let item = self.decode_line(&line);
            // Keep the allocation for the next partial line.
            line.clear();
            self.partial = line;
            item
        };
        self.position += 1;
        self.line += 1;
        self.line_start = self.position;
        item
    }

    fn too_long(&mut self) -> DecodeError {
        self.partial = Vec::new();
        self.skipping = true;
        DecodeError {
            kind: DecodeErrorKind::FrameTooLong,
            line: self.line,
            offset: self.line_start,
            frame_type: None,
            salvage: None,
            message: format!("line exceeds {} bytes", self.max_frame_len),
        }
    }

    fn decode_line(&self, line: &[u8]) -> Option<Result<Frame, DecodeError>> {
        if line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r')) {
            return None;
        }
        Some(decode_line(line).map_err(|e| DecodeError {
            kind: e.kind,
            line: self.line,
            offset: self.line_start + e.at as u64,
            frame_type: e.salvage.frame_type,
            salvage: e.salvage.salvage,
            message: e.message,
        }))
    }
}

/// A line's problem, before it is placed in the stream.
struct LineError {
    kind: DecodeErrorKind,
    /// Byte offset within the line.
    at: usize,
    message: String,
    salvage: Found,
}

/// What can still be read from a well-formed object whose frame is invalid.
#[derive(Default)]
struct Found {
    frame_type: Option<String>,
    salvage: Option<Salvage>,
}

impl Found {
    fn from_object(value: &serde_json::Value) -> Self {
        let text = |key: &str| match value.get(key) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(serde_json::Value::Number(n)) if n.is_u64() || n.is_i64() => Some(n.to_string()),
            _ => None,
        };
        let frame_type = value.get("type").and_then(|t| t.as_str());
        // The one place a frame type is matched as text: the line did not decode, so there
        // is no typed frame to match on.
        let salvage = match frame_type {
            Some("outbound") => text("requestId").map(|id| Salvage::Outbound(RequestId(id))),
            Some("outbound_result") => {
                text("requestId").map(|id| Salvage::OutboundResult(RequestId(id)))
            }
            Some("inbound" | "passthrough_forward") => {
                text("bufferId").map(|id| Salvage::Delivery(BufferId(id)))
            }
            _ => None,
        };
        Self {
            frame_type: frame_type.map(str::to_owned),
            salvage,
        }
    }
}

/// What an undecodable frame still says about the request or delivery it belongs to:
/// enough for a machine to resolve the request or hand over the delivery, so a frame that
/// fails validation neither strands a request until its timeout nor is redelivered forever.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Salvage {
    /// An `outbound` that names its `requestId`: answer it with a failure.
    Outbound(RequestId),
    /// An `outbound_result` that names its `requestId`: resolve that request.
    OutboundResult(RequestId),
    /// An `inbound` or `passthrough_forward` that names its `bufferId`: a buffered
    /// delivery that must be handed over (and acked) even though its body is unreadable.
    Delivery(BufferId),
}

fn decode_line(line: &[u8]) -> Result<Frame, LineError> {
    let text = std::str::from_utf8(line).map_err(|e| LineError {
        kind: DecodeErrorKind::InvalidUtf8,
        at: e.valid_up_to(),
        message: e.to_string(),
        salvage: Found::default(),
    })?;
    let start = text.len() - text.trim_start().len();
    if !text.trim_start().starts_with('{') {
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => LineError {
                kind: DecodeErrorKind::NotAnObject,
                at: start,
                message: "frame is not a JSON object".to_owned(),
                salvage: Found::default(),
            },
            Err(e) => json_error(DecodeErrorKind::InvalidJson, text, &e, Found::default()),
        });
    }
    let mut parsed = tagged::from_str::<Frame>(text);
    // Python's json writes and reads lone surrogate escapes (`"\ud800"`); serde_json
    // rejects them. Only a line that failed is looked at again: with each replaced by
    // U+FFFD (same length, so offsets stay true) it is parsed anew, and if it fails still,
    // it is classified as rewritten, so what it names is salvaged all the same.
    let fixed = match parsed {
        Err(_) => replace_lone_surrogates(text),
        Ok(_) => None,
    };
    let text = match &fixed {
        Some(fixed) => {
            parsed = tagged::from_str::<Frame>(fixed);
            fixed.as_str()
        }
        None => text,
    };
    match parsed {
        Ok(Ok(frame)) => Ok(frame),
        Ok(Err(shape)) => Err(LineError {
            kind: match shape {
                Shape::MissingTag => DecodeErrorKind::MissingType,
                Shape::TagNotString => DecodeErrorKind::TypeNotString,
            },
            at: start,
            message: shape.describe("type"),
            salvage: Found::default(),
        }),
        Err(e) => Err(classify(text, &e)),
    }
}

/// The error of a line that failed to parse with `e`.
fn classify(text: &str, e: &serde_json::Error) -> LineError {
    // serde stops at the first problem it meets, so its error category says nothing
    // about the line as a whole: a header `["a", "b", "c"]` is "trailing characters"
    // (a syntax error) in valid JSON, and a mistyped field before an unclosed bracket
    // is a data error in a line that is not JSON. Classify by the line itself; this
    // second parse runs only for lines that already failed.
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value) => json_error(
            DecodeErrorKind::InvalidFrame,
            text,
            e,
            Found::from_object(&value),
        ),
        Err(syntax) => json_error(
            DecodeErrorKind::InvalidJson,
            text,
            &syntax,
            Found::default(),
        ),
    }
}

/// `text` with every lone surrogate escape (`\uD800`–`\uDFFF` not part of a high-low
/// pair) replaced by `\uFFFD`, or `None` when it has none. Same length, so byte offsets
/// stay true. Backslashes only occur in strings, so every escape is found by stepping
/// from one backslash to the next: `\uXXXX` is 6 bytes, any other escape 2 (the `u` in
/// `\\ud800` is a letter). Nothing is allocated unless a lone surrogate is found.
fn replace_lone_surrogates(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out: Option<Vec<u8>> = None;
    let mut i = 0;
    while let Some(found) = bytes.get(i..).and_then(|rest| memchr::memchr(b'\\', rest)) {
        let at = i + found;
        i = match unicode_escape(bytes, at) {
            Some(0xD800..=0xDBFF)
                if matches!(unicode_escape(bytes, at + 6), Some(0xDC00..=0xDFFF)) =>
            {
                at + 12
            }
            Some(0xD800..=0xDFFF) => {
                let out = out.get_or_insert_with(|| bytes.to_vec());
                if let Some(hex) = out.get_mut(at + 2..at + 6) {
                    hex.copy_from_slice(b"FFFD");
                }
                at + 6
            }
            Some(_) => at + 6,
            None => at + 2,
        };
    }
    // Only ASCII hex digits were overwritten with ASCII: still UTF-8.
    String::from_utf8(out?).ok()
}

/// The code unit of the escape `\uXXXX` at byte `at`, if there is one.
fn unicode_escape(bytes: &[u8], at: usize) -> Option<u16> {
    let Some([b'\\', b'u', hex @ ..]) = bytes.get(at..at + 6) else {
        return None;
    };
    hex.iter().try_fold(0u16, |unit, &digit| {
        let value = char::from(digit).to_digit(16)?;
        Some(unit << 4 | u16::try_from(value).ok()?)
    })
}

fn json_error(
    kind: DecodeErrorKind,
    text: &str,
    e: &serde_json::Error,
    salvage: Found,
) -> LineError {
    // serde_json counts 1-based columns within the (single) line.
    let at = e.column().saturating_sub(1).min(text.len());
    let message = e.to_string();
    let message = match message.rsplit_once(" at line ") {
        Some((head, _)) => head.to_owned(),
        None => message,
    };
    LineError {
        kind,
        at,
        message,
        salvage,
    }
}

/// Why one line did not decode into a frame. The stream goes on with the next line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("line {line}, byte {offset}: {kind}{}: {message}", .frame_type.as_ref().map(|t| format!(" ({t})")).unwrap_or_default())]
pub struct DecodeError {
    /// What kind of problem.
    pub kind: DecodeErrorKind,
    /// 1-based line number in the stream (blank lines count).
    pub line: u64,
    /// Byte offset in the stream where the problem was found (the line's start for an
    /// over-long line).
    pub offset: u64,
    /// The frame's `type`, when the line was an object with a string `type`.
    pub frame_type: Option<String>,
    /// For an invalid frame that still names its request or delivery: which, so it can
    /// be resolved or handed over now rather than time out or be redelivered forever.
    pub salvage: Option<Salvage>,
    /// What was wrong, in words.
    pub message: String,
}

/// The kinds of [`DecodeError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The line is longer than the decoder's limit; it was skipped without being stored.
    FrameTooLong,
    /// The line is not valid UTF-8.
    InvalidUtf8,
    /// The line is not valid JSON (including nesting deeper than 128 levels and numbers
    /// out of range).
    InvalidJson,
    /// The line is valid JSON but not an object.
    NotAnObject,
    /// The object has no `type`.
    MissingType,
    /// The object's `type` is not a string.
    TypeNotString,
    /// The frame's fields do not match its type: a required field is missing or a field
    /// has the wrong JSON type.
    InvalidFrame,
}

impl DecodeErrorKind {
    /// A stable snake_case name, for logs and machine-readable output.
    pub fn as_str(self) -> &'static str {
        match self {
            DecodeErrorKind::FrameTooLong => "frame_too_long",
            DecodeErrorKind::InvalidUtf8 => "invalid_utf8",
            DecodeErrorKind::InvalidJson => "invalid_json",
            DecodeErrorKind::NotAnObject => "not_an_object",
            DecodeErrorKind::MissingType => "missing_type",
            DecodeErrorKind::TypeNotString => "type_not_string",
            DecodeErrorKind::InvalidFrame => "invalid_frame",
        }
    }
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Appends `frame` to `out` as compact JSON and a `\n`: one wire line.
pub fn encode_into(frame: &Frame, out: &mut Vec<u8>) {
    let start = out.len();
    // Writing to a Vec fails only for maps with non-string keys, which no frame has;
    // should it ever happen, write nothing rather than half a line.
    if serde_json::to_writer(&mut *out, frame).is_err() {
        out.truncate(start);
        return;
    }
    out.push(b'\n');
}

/// `frame` as one wire line: compact JSON and a `\n`, ready to be sent as one WebSocket
/// text message.
pub fn encode(frame: &Frame) -> Bytes {
    let mut out = Vec::with_capacity(128);
    encode_into(frame, &mut out);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::replace_lone_surrogates;

    #[test]
    fn lone_surrogates_are_replaced_in_place() {
        let cases = [
            (r#""\ud800""#, Some(r#""\uFFFD""#)),
            (r#""a\uDC00b""#, Some(r#""a\uFFFDb""#)),
            (r#""\ud800\u0041""#, Some(r#""\uFFFD\u0041""#)),
            (r#""\udc00\ud800""#, Some(r#""\uFFFD\uFFFD""#)),
            (r#""\ud800\ud800\udc00""#, Some(r#""\uFFFD\ud800\udc00""#)),
            (r#""\\\ud800""#, Some(r#""\\\uFFFD""#)),
            (r#""\ud83d\ude80""#, None),
            (r#""\\ud800""#, None),
            (r#""\u00e9\n\"""#, None),
            ("plain", None),
            // Truncated escapes: no panic, nothing to replace.
            (r"\ud80", None),
            (r"\u", None),
            (r"\", None),
            (r"\ud800", Some(r"\uFFFD")),
            (r"\ud800\udc0", Some(r"\uFFFD\udc0")),
        ];
        for (line, expected) in cases {
            let got = replace_lone_surrogates(line);
            assert_eq!(got.as_deref(), expected, "{line}");
            assert!(got.is_none_or(|g| g.len() == line.len()), "{line}");
        }
    }
}

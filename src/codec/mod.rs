//! Bytes ⇄ frames: newline-delimited JSON, incremental and bounded (protocol.md §1.5).
#![deny(clippy::indexing_slicing)]

mod decoder;
mod fast;
mod line;

#[cfg(feature = "fuzzing")]
pub(crate) use line::{both_paths, fast_lines, outbound_way_agrees};

use std::fmt;

use bytes::Bytes;

use crate::wire::{BufferId, Frame, RequestId};

pub use decoder::FrameDecoder;

/// The payload of one WebSocket message, as the machines' `handle_input` takes it:
/// borrowed bytes (`&[u8]`, `&Vec<u8>`, `&str`, ...), which are copied in, or an owned
/// buffer — a [`Bytes`] (what tungstenite hands a driver), a `Vec<u8>` or a `String` —
/// which is decoded in place and shared by the frames' strings, without a copy.
///
/// ```
/// use relay_machine::codec::{FrameDecoder, Payload};
///
/// let mut decoder = FrameDecoder::new();
/// let line = "{\"type\":\"going_idle_ack\"}\n";
/// line.push_to(&mut decoder); // borrowed: copied in
/// line.to_owned().push_to(&mut decoder); // owned: decoded in place
/// bytes::Bytes::from_static(line.as_bytes()).push_to(&mut decoder);
/// assert_eq!(std::iter::from_fn(|| decoder.next_frame()).count(), 3);
/// ```
pub trait Payload {
    /// Hands the payload to `decoder`.
    fn push_to(self, decoder: &mut FrameDecoder);
    /// Its length in bytes.
    fn byte_len(&self) -> usize;
}

impl<T: AsRef<[u8]> + ?Sized> Payload for &T {
    fn push_to(self, decoder: &mut FrameDecoder) {
        decoder.push(self.as_ref());
    }
    fn byte_len(&self) -> usize {
        (*self).as_ref().len()
    }
}

impl<T: AsRef<[u8]> + ?Sized> Payload for &mut T {
    fn push_to(self, decoder: &mut FrameDecoder) {
        decoder.push((*self).as_ref());
    }
    fn byte_len(&self) -> usize {
        (**self).as_ref().len()
    }
}

impl Payload for Bytes {
    fn push_to(self, decoder: &mut FrameDecoder) {
        decoder.push_bytes(self);
    }
    fn byte_len(&self) -> usize {
        self.len()
    }
}

impl Payload for Vec<u8> {
    fn push_to(self, decoder: &mut FrameDecoder) {
        decoder.push_bytes(Bytes::from(self));
    }
    fn byte_len(&self) -> usize {
        self.len()
    }
}

impl Payload for String {
    fn push_to(self, decoder: &mut FrameDecoder) {
        decoder.push_bytes(Bytes::from(self));
    }
    fn byte_len(&self) -> usize {
        self.len()
    }
}

/// The default longest line, in bytes without its `\n`: 1 MiB, the largest WebSocket
/// message the reference gateway accepts.
pub const DEFAULT_MAX_FRAME_LEN: usize = 1 << 20;

/// What an undecodable frame still says about the request or delivery it belongs to:
/// enough for a machine to resolve the request or hand over the delivery, so a frame that
/// fails validation neither strands a request until its timeout nor is redelivered forever.
///
/// Displays as the frame kind and the id it names: `outbound r-1`, `outbound_result r-1`,
/// `delivery b-1`.
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

impl fmt::Display for Salvage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Salvage::Outbound(id) => write!(f, "outbound {id}"),
            Salvage::OutboundResult(id) => write!(f, "outbound_result {id}"),
            Salvage::Delivery(id) => write!(f, "delivery {id}"),
        }
    }
}

/// Why one line did not decode into a frame. The stream goes on with the next line.
///
/// An [`Error`](std::error::Error); displays as
/// ``line 2, byte 40: invalid_frame (hello): missing field `botId` ``.
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
///
/// Displays as its stable snake_case name ([`as_str`](Self::as_str)), e.g. `invalid_json`.
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

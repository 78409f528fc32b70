//! Decoding one line into a frame, or into the [`LineError`] that says why it is not one.
#![deny(clippy::indexing_slicing)]

use bytes::Bytes;

use super::{DecodeErrorKind, Salvage};
use crate::wire::tagged::{self, Shape};
use crate::wire::{BufferId, Frame, RequestId, text};

/// A line's problem, before it is placed in the stream.
pub(super) struct LineError {
    pub(super) kind: DecodeErrorKind,
    /// Byte offset within the line.
    pub(super) at: usize,
    pub(super) message: String,
    pub(super) salvage: Found,
}

/// What can still be read from a well-formed object whose frame is invalid.
#[derive(Default)]
pub(super) struct Found {
    pub(super) frame_type: Option<String>,
    pub(super) salvage: Option<Salvage>,
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
            Some("outbound") => text("requestId").map(|id| Salvage::Outbound(RequestId::from(id))),
            Some("outbound_result") => {
                text("requestId").map(|id| Salvage::OutboundResult(RequestId::from(id)))
            }
            Some("inbound" | "passthrough_forward") => {
                text("bufferId").map(|id| Salvage::Delivery(BufferId(id.into())))
            }
            _ => None,
        };
        Self {
            frame_type: frame_type.map(str::to_owned),
            salvage,
        }
    }
}

/// Decodes `line`, which lies within `source` (its unescaped strings may become slices of
/// it).
pub(super) fn decode_line(source: &Bytes, line: &[u8]) -> Result<Frame, LineError> {
    // First, as the line's bytes: the fast path checks the UTF-8 of what it reads as it
    // reads it, and leaves anything it is not sure of (invalid UTF-8 included) to the
    // checks below.
    if let Some(frame) = super::fast::frame(line, source) {
        return Ok(frame);
    }
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
    // The general path reads `Str`s through serde, which knows nothing of `source`: it is
    // made the thread's source of slices for the duration.
    text::with_source(source, || general(text))
}

/// For the fast path's oracle: what the fast path and the general path make of one line
/// (without its newline), when the fast path decides it.
#[cfg(feature = "fuzzing")]
pub(crate) fn both_paths(line: &[u8]) -> Option<(Frame, Result<Frame, String>)> {
    let source = Bytes::copy_from_slice(line);
    let fast = super::fast::frame(&source, &source)?;
    // A line that is not UTF-8 is the general path's error: the fast path must not take
    // it.
    let general = match std::str::from_utf8(&source) {
        Ok(text) => text::with_source(&source, || general(text)).map_err(|e| e.message),
        Err(e) => Err(e.to_string()),
    };
    Some((fast, general))
}

/// For the fast path's oracle: whether the connector's way to an `outbound`
/// (`fast::outbound_line`) reads `line` (without its newline) exactly as `frame_line`
/// reads it: the same frame where that is an `outbound`, and nothing otherwise.
#[cfg(feature = "fuzzing")]
pub(crate) fn outbound_way_agrees(line: &[u8]) -> bool {
    let mut bytes = line.to_vec();
    bytes.push(b'\n');
    let source = Bytes::from(bytes);
    let typed = super::fast::outbound_line(&source, &source).map(|(o, n)| (Frame::Outbound(o), n));
    let framed = super::fast::frame_line(&source, &source)
        .filter(|(frame, _)| matches!(frame, Frame::Outbound(_)));
    typed == framed
}

/// For tests of the decoder's way with a shared message: how many of the lines at the
/// start of `message` the fast path reads straight from it, one after another (each from
/// the whole rest of the message, as `FrameDecoder` does), before the first it leaves; and
/// how many values of them it handed to serde_json rather than read by hand.
#[cfg(feature = "fuzzing")]
pub(crate) fn fast_lines(message: &[u8]) -> (usize, usize) {
    let source = Bytes::copy_from_slice(message);
    let mut rest = &source[..];
    let mut lines = 0;
    let before = super::fast::SERDE_VALUES.with(std::cell::Cell::get);
    while let Some((_, end)) = super::fast::frame_line(rest, &source) {
        lines += 1;
        rest = rest.get(end + 1..).unwrap_or_default();
    }
    let after = super::fast::SERDE_VALUES.with(std::cell::Cell::get);
    (lines, after - before)
}

/// A line the fast path left alone: serde_json decides, and says what is wrong.
fn general(text: &str) -> Result<Frame, LineError> {
    let start = text.len() - text.trim_start().len();
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

//! [`Transmit`]: one frame to write, as one WebSocket text message.

use std::fmt;

use bytes::Bytes;

use crate::codec;
use crate::wire::{ActionResult, BufferId, Frame, RequestId, Str};

/// One wire line to write as one WebSocket **text** message: compact JSON ending in `\n`.
///
/// It is UTF-8 by construction, so a driver never re-validates it: [`as_str`](Self::as_str)
/// and [`into_string`](Self::into_string) are free, and so is [`into_bytes`](Self::into_bytes)
/// (`Bytes::from(String)` takes the allocation over). With tungstenite,
/// `Message::Text(transmit.into_string().into())` moves it without a copy.
#[derive(Clone, PartialEq, Eq, Hash)]
#[must_use = "a transmit is a frame the peer must receive"]
pub struct Transmit(String);

impl Transmit {
    /// Encodes `frame` as one wire line.
    pub(crate) fn encode(frame: &Frame) -> Self {
        let mut out = Vec::with_capacity(128);
        codec::encode_into(frame, &mut out);
        // serde_json writes UTF-8 only; the fallback cannot be taken, and would write an
        // empty line (skipped by every decoder) rather than panic.
        Self(String::from_utf8(out).unwrap_or_default())
    }

    /// The `outbound_result` line answering `request_id` with `result`: byte for byte what
    /// [`encode`](Self::encode) writes for that frame, written from borrowed parts, so a
    /// connector answers a request without copying its id into a frame first.
    pub(crate) fn outbound_result(request_id: &RequestId, result: &ActionResult) -> Self {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(b"{\"type\":\"outbound_result\",\"requestId\":");
        let written = write_str(&mut out, &request_id.0).and_then(|()| {
            out.extend_from_slice(b",\"result\":");
            write_result(&mut out, result)
        });
        if written.is_err() {
            // As `encode`: a failed write (impossible for these types) is an empty line,
            // skipped by every decoder, never half a frame.
            return Self(String::new());
        }
        out.extend_from_slice(b"}\n");
        Self(String::from_utf8(out).unwrap_or_default())
    }

    /// The `inbound_ack` line of `buffer_id`: byte for byte what [`encode`](Self::encode)
    /// writes for that frame, written without building the frame (and without serde's
    /// tagged-enum machinery), as every buffered delivery's ack is.
    pub(crate) fn inbound_ack(buffer_id: &BufferId) -> Self {
        let mut out = Vec::with_capacity(40 + buffer_id.0.len());
        out.extend_from_slice(b"{\"type\":\"inbound_ack\",\"bufferId\":");
        if write_str(&mut out, &buffer_id.0).is_err() {
            // As `encode`: never half a frame.
            return Self(String::new());
        }
        out.extend_from_slice(b"}\n");
        Self(String::from_utf8(out).unwrap_or_default())
    }

    /// The line, `\n` included.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The line's bytes, `\n` included.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Length in bytes, `\n` included.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Never true for a transmit the machine produced; present for API completeness.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The line as a `String`, without a copy.
    pub fn into_string(self) -> String {
        self.0
    }

    /// The line as `Bytes`, without a copy.
    pub fn into_bytes(self) -> Bytes {
        Bytes::from(self.0)
    }
}

impl AsRef<str> for Transmit {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<[u8]> for Transmit {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::ops::Deref for Transmit {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<Transmit> for String {
    fn from(t: Transmit) -> Self {
        t.0
    }
}

impl From<Transmit> for Bytes {
    fn from(t: Transmit) -> Self {
        t.into_bytes()
    }
}

/// `result` as its `Serialize` writes it. A result with extra members goes through serde;
/// the usual one (a few known fields) is written field by field in the same order, each
/// string escaped by serde_json: the derived serialiser goes through serde's map machinery
/// for the flattened extras even when there are none, which cost a connector more than
/// decoding the request it answers.
/// Writes `text` as a JSON string, as serde_json does: an id or name with nothing to
/// escape (no quote, backslash or control character; serde_json writes every other
/// character as it is) is copied from its bytes, without `Str::as_str`'s UTF-8 check.
fn write_str(out: &mut Vec<u8>, text: &Str) -> serde_json::Result<()> {
    let bytes = text.as_bytes();
    // A fold, not `any`: without the early exit the compiler checks a vector of bytes at a
    // time, and ids have nothing to escape.
    let plain = bytes.iter().fold(true, |plain, &b| {
        plain & (b != b'"') & (b != b'\\') & (b >= 0x20)
    });
    if !plain {
        return serde_json::to_writer(out, text.as_str());
    }
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    out.extend_from_slice(bytes);
    out.push(b'"');
    Ok(())
}

fn write_result(out: &mut Vec<u8>, result: &ActionResult) -> serde_json::Result<()> {
    let ActionResult {
        success,
        message_id,
        error,
        code,
        thread_id,
        auto_thread_name,
        extra,
    } = result;
    if !extra.is_empty() {
        return serde_json::to_writer(out, result);
    }
    out.extend_from_slice(if *success {
        b"{\"success\":true"
    } else {
        b"{\"success\":false"
    });
    let strings = [
        ("message_id", message_id.as_ref().map(|s| s.as_str())),
        ("error", error.as_deref()),
        ("code", code.as_deref()),
        ("thread_id", thread_id.as_deref()),
        ("auto_thread_name", auto_thread_name.as_deref()),
    ];
    for (key, value) in strings {
        if let Some(value) = value {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"\":");
            serde_json::to_writer(&mut *out, value)?;
        }
    }
    out.push(b'}');
    Ok(())
}

impl fmt::Debug for Transmit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Transmit").field(&self.0).finish()
    }
}

impl fmt::Display for Transmit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.trim_end_matches('\n'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{InboundAck, OutboundResult};

    /// An ack written by hand is the bytes of its frame encoded.
    #[test]
    fn an_inbound_ack_is_written_as_its_frame_is() {
        for id in ["b-1", "", "a\"b\\c\u{1}\u{7f}\u{1F680}", &"9".repeat(300)] {
            let id = BufferId::from(id);
            let frame = Frame::InboundAck(InboundAck {
                buffer_id: id.clone(),
            });
            assert_eq!(Transmit::inbound_ack(&id), Transmit::encode(&frame));
        }
    }

    /// The borrowed encoding of a result writes the same bytes as encoding the frame.
    #[test]
    fn an_outbound_result_is_written_as_its_frame_is() {
        let mut extra = serde_json::Map::new();
        extra.insert(
            "chat_info".into(),
            serde_json::json!({"name": "n\u{e9}", "n": 1}),
        );
        let results = [
            ActionResult::ok(),
            ActionResult::ok_with_message("m-1"),
            ActionResult::failure("quote \" and \u{2014} and \n", Some("egress_declined")),
            ActionResult {
                thread_id: Some("t".into()),
                auto_thread_name: Some("a".into()),
                extra,
                ..ActionResult::ok()
            },
            // Every known field, no extras: the hand-written way.
            ActionResult {
                success: false,
                message_id: Some("m\u{1F680}".into()),
                error: Some(String::new()),
                code: Some("c\\".into()),
                thread_id: Some("t\u{7f}".into()),
                auto_thread_name: Some("a\u{2028}".into()),
                extra: serde_json::Map::new(),
            },
            ActionResult {
                thread_id: Some("t".into()),
                ..ActionResult::default()
            },
        ];
        let controls = "\u{0}\u{8}\u{c}\r\t\n\u{1f}\u{7f}";
        for id in [
            "r-1",
            "",
            "a\"b\\c\u{1}\u{1F680}",
            controls,
            &"9".repeat(40),
        ] {
            for result in &results {
                let frame = Frame::OutboundResult(OutboundResult {
                    request_id: RequestId::from(id),
                    result: Box::new(result.clone()),
                });
                let line = Transmit::outbound_result(&RequestId::from(id), result);
                assert_eq!(line, Transmit::encode(&frame));
            }
        }
    }
}

//! Lone UTF-16 surrogate escapes, as Python's `json` writes them: a line that fails the
//! strict parse only because of them decodes with each one replaced by U+FFFD.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::wildcard_enum_match_arm
)]

use relay_machine::codec::{DecodeError, DecodeErrorKind, FrameDecoder, Salvage};
use relay_machine::wire::{BufferId, Frame, OutboundAction, RequestId};

/// Decodes one line: exactly one item.
fn decode(line: &str) -> Result<Frame, Box<DecodeError>> {
    let mut decoder = FrameDecoder::new();
    decoder.push(line.as_bytes());
    decoder.push(b"\n");
    let item = decoder.next_frame().expect("one item");
    assert_eq!(decoder.next_frame(), None);
    item
}

fn frame(line: &str) -> Frame {
    decode(line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn error(line: &str) -> DecodeError {
    match decode(line) {
        Err(e) => *e,
        Ok(frame) => panic!("{line}: expected an error, got {frame:?}"),
    }
}

/// The `platform` of a `hello` line whose platform is the JSON string body `escaped`.
fn platform(escaped: &str) -> String {
    match frame(&format!(
        r#"{{"type":"hello","platform":"{escaped}","botId":"b"}}"#
    )) {
        Frame::Hello(h) => h.platform,
        other => panic!("not hello: {other:?}"),
    }
}

/// The `event.text` of an `inbound` line whose text is the JSON string body `escaped`.
fn text(escaped: &str) -> String {
    match frame(&format!(
        r#"{{"type":"inbound","event":{{"text":"{escaped}"}}}}"#
    )) {
        Frame::Inbound(i) => i.event.text.to_string(),
        other => panic!("not inbound: {other:?}"),
    }
}

#[test]
fn lone_high_surrogate() {
    assert_eq!(platform(r"\ud800"), "\u{FFFD}");
    assert_eq!(text(r"a\ud800b"), "a\u{FFFD}b");
    assert_eq!(text(r"a\uDBFFb"), "a\u{FFFD}b", "upper-case hex");
}

#[test]
fn lone_low_surrogate() {
    assert_eq!(text(r"a\udc00b"), "a\u{FFFD}b");
    assert_eq!(text(r"\uDFFF"), "\u{FFFD}");
}

#[test]
fn high_surrogate_then_a_letter_escape() {
    assert_eq!(text(r"\ud800\u0041"), "\u{FFFD}A");
}

#[test]
fn high_surrogate_at_the_end_of_a_string() {
    assert_eq!(text(r"abc\ud83d"), "abc\u{FFFD}");
}

#[test]
fn a_pair_is_kept() {
    assert_eq!(text(r"\ud83d\ude80"), "\u{1F680}");
    assert_eq!(text(r"\uD83D\uDE80"), "\u{1F680}");
    // Beside a lone one, the pair still reads as its astral character.
    assert_eq!(
        text(r"\ud800\ud83d\ude80\udc00"),
        "\u{FFFD}\u{1F680}\u{FFFD}"
    );
    assert_eq!(text(r"\ud800\ud800\udc00"), "\u{FFFD}\u{10000}");
}

#[test]
fn an_escaped_backslash_before_ud800_is_not_an_escape() {
    assert_eq!(text(r"\\ud800"), r"\ud800");
    // Also when the line is rewritten for a real lone surrogate next to it.
    assert_eq!(text(r"\\ud800\udc00"), "\\ud800\u{FFFD}");
    assert_eq!(text(r"\\\ud800"), "\\\u{FFFD}");
    // `\ud800` then an escaped backslash and the letters udc00: not a pair.
    assert_eq!(text(r"\ud800\\udc00"), "\u{FFFD}\\udc00");
}

#[test]
fn two_lone_surrogates_in_a_row() {
    assert_eq!(text(r"\ud800\ud800"), "\u{FFFD}\u{FFFD}");
    assert_eq!(text(r"\udc00\udc00"), "\u{FFFD}\u{FFFD}");
    assert_eq!(text(r"\udc00\ud800"), "\u{FFFD}\u{FFFD}");
}

#[test]
fn in_an_object_key() {
    match frame(r#"{"type":"presence","k\ud800":1}"#) {
        Frame::Unknown(u) => {
            assert_eq!(u.frame_type, "presence");
            assert_eq!(u.fields.keys().collect::<Vec<_>>(), ["k\u{FFFD}"]);
        }
        other => panic!("not unknown: {other:?}"),
    }
    // A key before `type`: the object is buffered, and every key must be valid.
    assert_eq!(
        frame(r#"{"\udc00":1,"type":"going_idle"}"#),
        Frame::GoingIdle
    );
}

#[test]
fn inbound_text() {
    match frame(
        r#"{"type":"inbound","bufferId":"b1","event":{"text":"hi \ud83d!","source":{"platform":"telegram","chat_id":"42"}}}"#,
    ) {
        Frame::Inbound(i) => {
            assert_eq!(i.event.text, "hi \u{FFFD}!");
            assert_eq!(i.event.source.platform, "telegram");
            assert_eq!(i.event.source.chat_id, "42");
            assert_eq!(i.buffer_id.map(|b| b.0).as_deref(), Some("b1"));
        }
        other => panic!("not inbound: {other:?}"),
    }
}

#[test]
fn outbound_content() {
    match frame(
        r#"{"type":"outbound","requestId":"r1","action":{"op":"send","chat_id":"42","content":"x\udc00y"}}"#,
    ) {
        Frame::Outbound(o) => match o.action {
            OutboundAction::Send(send) => {
                assert_eq!(send.chat_id, "42");
                assert_eq!(send.content, "x\u{FFFD}y");
            }
            other => panic!("not send: {other:?}"),
        },
        other => panic!("not outbound: {other:?}"),
    }
}

#[test]
fn a_line_bad_for_another_reason_is_still_an_error_and_salvaged() {
    // Classified as the rewritten line (same length, so offsets are the line's own): a
    // mistyped field is an invalid frame, not invalid JSON at the surrogate.
    let l = r#"{"type":"inbound","event":{"text":"a\udc00b","message_id":5}}"#;
    assert_eq!(error(l).kind, DecodeErrorKind::InvalidFrame);
    // Not JSON at all after the surrogate.
    let l = r#"{"type":"hello","platform":"\ud800","botId":"b""#;
    assert_eq!(error(l).kind, DecodeErrorKind::InvalidJson);
    // A required field missing: still an outbound whose requestId is readable, so the
    // connector can answer it.
    let l = r#"{"type":"outbound","requestId":"r1","action":{"op":"send","content":"\ud800"}}"#;
    let e = error(l);
    assert_eq!(e.kind, DecodeErrorKind::InvalidFrame);
    assert_eq!(e.salvage, Some(Salvage::Outbound(RequestId::from("r1"))));
    // A buffered inbound whose body is bad names its delivery.
    let l = r#"{"type":"inbound","bufferId":"b-9","event":{"text":"\ud800","source":7}}"#;
    assert_eq!(
        error(l).salvage,
        Some(Salvage::Delivery(BufferId::from("b-9")))
    );
    // No `type`.
    let l = r#"{"text":"\ud800"}"#;
    assert_eq!(error(l).kind, DecodeErrorKind::MissingType);
}

#[test]
fn the_stream_goes_on() {
    let mut decoder = FrameDecoder::new();
    decoder.push(b"{\"type\":\"hello\",\"platform\":\"\\ud800\",\"botId\":\"b\"}\n");
    decoder.push(b"{\"type\":\"going_idle\"}\n");
    assert!(matches!(decoder.next_frame(), Some(Ok(Frame::Hello(_)))));
    assert_eq!(decoder.next_frame(), Some(Ok(Frame::GoingIdle)));
    assert_eq!(decoder.next_frame(), None);
}

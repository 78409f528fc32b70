#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Scenario 11: hostile frames never kill the connection (protocol.md §1.5, §11.2 items
//! 1, 4, 5; design.md §3 principles 5 and 6).

use relay_machine::codec::DecodeErrorKind;
use relay_machine::gateway::{Diagnostic, GatewayEvent, GatewayState};
use serde_json::json;

use crate::driver::*;

/// What one hostile line must be reported as.
#[derive(Debug)]
enum Expect {
    Decode(DecodeErrorKind),
    Unexpected(&'static str),
    UnknownResult(&'static str),
}

fn check(d: &Driver, m: usize, expect: &Expect) {
    let diags = d.diagnostics_since(m);
    assert_eq!(diags.len(), 1, "one diagnostic for {expect:?}: {diags:?}");
    let ok = match (&diags[0], expect) {
        (Diagnostic::Decode(e), Expect::Decode(kind)) => e.kind == *kind,
        (Diagnostic::UnexpectedFrame(t), Expect::Unexpected(want)) => t == want,
        (Diagnostic::UnknownResult(id), Expect::UnknownResult(want)) => id.as_str() == *want,
        _ => false,
    };
    assert!(ok, "expected {expect:?}, got {:?}", diags[0]);
    // Nothing else came of it: no event but the diagnostic, no frame, no command.
    assert_eq!(d.since(m).len(), 1, "{:?}", d.since(m));
}

#[test]
fn hostile_lines_are_diagnosed_and_the_next_frame_still_works() {
    let mut d = Driver::open(config1());
    let outbound_echo = json!({"type": "outbound", "requestId": "0123456789abcdef0123456789abcdef",
        "action": {"op": "send", "chat_id": "42", "content": "x", "reply_to": null, "metadata": {}}})
    .to_string();
    let cases: Vec<(&str, String, Expect)> = vec![
        ("invalid JSON", r#"{"type": "inbound", "event": "#.into(), Expect::Decode(DecodeErrorKind::InvalidJson)),
        ("not an object", "[1, 2, 3]".into(), Expect::Decode(DecodeErrorKind::NotAnObject)),
        ("a bare string", r#""inbound""#.into(), Expect::Decode(DecodeErrorKind::NotAnObject)),
        ("no type", r#"{"event": {}}"#.into(), Expect::Decode(DecodeErrorKind::MissingType)),
        ("type not a string", r#"{"type": ["inbound"]}"#.into(), Expect::Decode(DecodeErrorKind::TypeNotString)),
        ("unknown type", r#"{"type": "telemetry", "load": 0.5}"#.into(), Expect::Unexpected("telemetry")),
        ("echoed hello", r#"{"type": "hello", "platform": "telegram", "botId": "701"}"#.into(), Expect::Unexpected("hello")),
        ("echoed outbound", outbound_echo, Expect::Unexpected("outbound")),
        ("echoed inbound_ack", r#"{"type": "inbound_ack", "bufferId": "b-1"}"#.into(), Expect::Unexpected("inbound_ack")),
        ("echoed going_idle", r#"{"type": "going_idle"}"#.into(), Expect::Unexpected("going_idle")),
        ("echoed interrupt", r#"{"type": "interrupt", "session_key": "k", "reason": null}"#.into(), Expect::Unexpected("interrupt")),
        ("result for an unknown id", r#"{"type": "outbound_result", "requestId": "feedfacefeedfacefeedfacefeedface", "result": {"success": true}}"#.into(), Expect::UnknownResult("feedfacefeedfacefeedfacefeedface")),
        ("requestId not a string", r#"{"type": "outbound_result", "requestId": 5, "result": {"success": true}}"#.into(), Expect::Decode(DecodeErrorKind::InvalidFrame)),
        ("event not an object", r#"{"type": "inbound", "event": "hello"}"#.into(), Expect::Decode(DecodeErrorKind::InvalidFrame)),
        ("source not an object", r#"{"type": "inbound", "event": {"text": "x", "source": 7}}"#.into(), Expect::Decode(DecodeErrorKind::InvalidFrame)),
        ("descriptor missing fields", r#"{"type": "descriptor", "descriptor": {"platform": "telegram"}}"#.into(), Expect::Decode(DecodeErrorKind::InvalidFrame)),
    ];
    for (name, line, expect) in cases {
        let id = d.send_text("42", name).unwrap();
        d.advance(10);
        let m = d.mark();
        d.feed(&line);
        check(&d, m, &expect);
        assert_eq!(d.state(), GatewayState::Open, "{name}");
        // The next well-formed frame still works.
        d.feed(&result_ok(&id, "m-ok"));
        assert!(d.response(&id).is_ok(), "{name}");
    }
    d.assert_all_resolved();
    assert!(d.closes_since(0).is_empty(), "never closed");
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn oversized_and_invalid_utf8_lines_are_skipped() {
    let mut d = Driver::open(config1());
    let id = d.send_text("42", "pending across the junk").unwrap();

    // 2 MiB in one message against the default 1 MiB limit, and the result behind it in
    // the same message.
    let mut big = br#"{"type": "inbound", "event": {"text": ""#.to_vec();
    big.resize(2 << 20, b'a');
    big.extend_from_slice(b"\"}}\n");
    let m = d.mark();
    d.feed_bytes("<2 MiB inbound line>", &big);
    check(&d, m, &Expect::Decode(DecodeErrorKind::FrameTooLong));
    // The same, in 64 KiB messages.
    let m = d.mark();
    d.feed_chunks("<2 MiB inbound line in 64 KiB messages>", &big, 64 << 10);
    check(&d, m, &Expect::Decode(DecodeErrorKind::FrameTooLong));
    assert_eq!(d.state(), GatewayState::Open);

    let m = d.mark();
    d.feed_bytes(
        "<invalid UTF-8 line>",
        b"{\"type\": \"inbound\", \"event\": {\"text\": \"\xff\xfe\"}}\n",
    );
    check(&d, m, &Expect::Decode(DecodeErrorKind::InvalidUtf8));

    d.feed(&result_ok(&id, "m-ok"));
    assert!(d.response(&id).is_ok());
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn frames_split_and_coalesced_across_messages() {
    let mut d = Driver::open(config1());
    let a = d.send_text("42", "a").unwrap();
    let b = d.send_text("42", "b").unwrap();
    // Two frames in one message, the second cut in the middle of a multi-byte character.
    let text = json!({"type": "inbound", "event": {"text": "héllo ✓", "source": {"platform": "telegram", "chat_id": "42"}}}).to_string();
    let mut bytes = result_ok(&a, "m-a").into_bytes();
    bytes.push(b'\n');
    let split = bytes.len() + text.find('✓').unwrap() + 1;
    bytes.extend_from_slice(text.as_bytes());
    bytes.push(b'\n');
    bytes.extend_from_slice(result_ok(&b, "m-b").as_bytes());
    bytes.push(b'\n');
    let m = d.mark();
    d.feed_bytes("<result a + half an inbound>", &bytes[..split]);
    assert!(d.response(&a).is_ok());
    assert_eq!(
        d.events_since(m).len(),
        1,
        "the inbound waits for its newline"
    );
    d.feed_bytes("<rest of the inbound + result b>", &bytes[split..]);
    assert!(d.response(&b).is_ok());
    let events = d.events_since(m);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, GatewayEvent::Inbound { event, .. } if event.text == "héllo ✓"))
    );
    assert!(d.diagnostics_since(m).is_empty());
    // A line with no newline yet is never processed early (protocol.md §1.5).
    let c = d.send_text("42", "c").unwrap();
    let m = d.mark();
    d.feed_bytes(
        "<result c without newline>",
        result_ok(&c, "m-c").as_bytes(),
    );
    assert!(d.since(m).is_empty());
    d.feed_bytes("<newline>", b"\r\n");
    assert!(d.response(&c).is_ok());
    insta::assert_snapshot!(d.transcript());
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Decoding on the gateway. Scenario 11: hostile frames never kill the connection
//! (protocol.md §1.5, §11.2 items 1, 4, 5; design.md §3 principles 5 and 6). Salvage: a
//! frame that fails validation still resolves the request or delivery it names, so nothing
//! waits for a timeout and nothing is redelivered forever. And the same events however the
//! bytes are cut or merged on the link.

use relay_machine::codec::{DecodeErrorKind, Salvage};
use relay_machine::gateway::{
    AckError, Diagnostic, GatewayConfig, GatewayEvent, GatewayState, RequestFailure, TimerKind,
};
use relay_machine::wire::{BufferId, SendAction};
use serde_json::json;

use crate::driver::*;
use crate::linked;

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

// ----- salvage: a frame that fails validation still resolves what it names ----------

fn salvaging(auto_ack: bool) -> Driver {
    Driver::open_seeded(
        GatewayConfig {
            auto_ack,
            ..discord1()
        },
        0,
    )
}

#[test]
fn an_undecodable_result_resolves_its_request_at_once_as_ambiguous() {
    let mut d = salvaging(false);
    let id = d.send(SendAction::default(), None).unwrap();
    let m = d.mark();
    d.feed(&format!(
        "{{\"type\":\"outbound_result\",\"requestId\":\"{id}\",\"result\":{{\"success\":\"yes\"}}}}"
    ));
    let events = d.events_since(m);
    let resolved: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            GatewayEvent::Response { id: rid, result } => Some((rid.clone(), result.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].0, id);
    let failure = resolved[0].1.clone().unwrap_err();
    assert!(matches!(failure, RequestFailure::InvalidResult(_)));
    assert!(failure.is_ambiguous());
    assert_eq!(d.gateway().in_flight(), 0);
    assert!(
        d.gateway()
            .next_timer()
            .is_none_or(|(_, kind)| kind != TimerKind::Request),
        "no deadline left for the resolved request"
    );
    // The diagnostic still says what was wrong.
    assert!(events.iter().any(|e| matches!(e, GatewayEvent::Diagnostic(Diagnostic::Decode(d)) if d.salvage == Some(Salvage::OutboundResult(id.clone())))));
}

#[test]
fn an_undecodable_result_for_an_unknown_id_changes_nothing() {
    let mut d = salvaging(false);
    d.send(SendAction::default(), None).unwrap();
    let m = d.mark();
    d.feed(r#"{"type":"outbound_result","requestId":"other","result":[]}"#);
    assert!(
        !d.events_since(m)
            .iter()
            .any(|e| matches!(e, GatewayEvent::Response { .. }))
    );
    assert_eq!(d.gateway().in_flight(), 1);
}

#[test]
fn an_undecodable_buffered_delivery_can_be_acked_to_drop_it() {
    const LINE: &str = r#"{"type":"inbound","event":{"text":5},"bufferId":"b-9"}"#;
    let mut d = salvaging(false);
    let m = d.mark();
    d.feed(LINE);
    // Handed over as a delivery of its own (not a diagnostic), with why it did not decode.
    assert!(matches!(
        d.events_since(m).as_slice(),
        [GatewayEvent::Undeliverable { buffer_id, error }]
            if *buffer_id == BufferId::from("b-9")
                && error.salvage == Some(Salvage::Delivery(BufferId::from("b-9")))
    ));
    assert!(
        d.frames_since(m).is_empty(),
        "never acked on the machine's own initiative"
    );
    assert_eq!(d.gateway().unacked(), 1);
    let m = d.mark();
    d.ack("b-9").unwrap();
    let acks = d.frames_since(m);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0]["type"], "inbound_ack");
    assert_eq!(acks[0]["bufferId"], "b-9");
    assert_eq!(d.ack("b-9"), Err(AckError::Unknown(BufferId::from("b-9"))));
    // A redelivery of the same line (the ack was lost) is not handed over again: the
    // machine acks it again by itself.
    let m = d.mark();
    d.feed(LINE);
    assert!(d.events_since(m).is_empty(), "{:?}", d.events_since(m));
    assert_eq!(
        d.frames_since(m),
        [json!({"type": "inbound_ack", "bufferId": "b-9"})]
    );
    assert_eq!(d.gateway().unacked(), 0);
}

#[test]
fn auto_ack_drops_an_undecodable_buffered_delivery_but_never_a_live_one() {
    let mut d = salvaging(true);
    let m = d.mark();
    d.feed_bytes(
        "a bad buffered passthrough, a bad live inbound",
        b"{\"type\":\"passthrough_forward\",\"forward\":{\"headers\":[1]},\"bufferId\":\"p-1\"}\n{\"type\":\"inbound\",\"event\":{\"text\":5}}\n",
    );
    let acks = d.frames_since(m);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0]["bufferId"], "p-1");
    // The buffered one is handed over as undeliverable (and acked at once); the live one
    // is only a diagnostic, with nothing to ack.
    let events = d.events_since(m);
    assert!(
        matches!(
            events.as_slice(),
            [
                GatewayEvent::Undeliverable { buffer_id, .. },
                GatewayEvent::Diagnostic(Diagnostic::Decode(d)),
            ] if *buffer_id == BufferId::from("p-1") && d.salvage.is_none()
        ),
        "{events:?}"
    );
    assert_eq!(d.gateway().unacked(), 0);
}

// ----- both roles: framing across messages -------------------------------------------
/// The same traffic gives the same events however the bytes are cut or merged.
#[test]
fn byte_split_and_coalesced_delivery_give_the_same_events() {
    let mut outcomes = Vec::new();
    for (split, coalesce) in [
        (None, false),
        (Some(1), false),
        (Some(7), true),
        (None, true),
    ] {
        let mut pair = linked::pair();
        pair.knobs.split = split;
        pair.knobs.coalesce = coalesce;
        for i in 0..5 {
            // Even ones buffered, odd ones live (sent at once: the gateway is not idle).
            let buffered = i % 2 == 0;
            let id = pair.push(linked::event("c1", &format!("caf\u{e9} {i} 🚀")), buffered);
            assert_eq!(id.is_some(), buffered);
        }
        let ids: Vec<_> = (0..3).map(|_| linked::send(&mut pair, "c1")).collect();
        pair.drive_until_idle().unwrap();
        let texts = linked::inbound_texts(&pair);
        assert_eq!(texts.len(), 5, "split {split:?} coalesce {coalesce}");
        assert!(linked::responses(&pair).iter().all(|(_, ok, _)| *ok));
        assert_eq!(linked::responses(&pair).len(), ids.len());
        let events: Vec<String> = texts.iter().map(|(t, b)| format!("{t} {b:?}")).collect();
        outcomes.push(events);
    }
    assert!(outcomes.windows(2).all(|w| w[0] == w[1]), "{outcomes:#?}");
}

//! The connector role's own rules, driven directly: identities, exactly one result per
//! request, the ack-gated replay window, going idle, auth refusal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use relay_machine::connector::{
    ConnectorCommand, ConnectorConfig, ConnectorDiagnostic, ConnectorError, ConnectorEvent,
    ConnectorMachine, DeliveryStore, MemoryStore, Mode, UNKNOWN_IDENTITY,
};
use relay_machine::testing::{Split, split_connector};
use relay_machine::wire::{ActionResult, CapabilityDescriptor, MessageEvent, RequestId};
use serde_json::Value;

fn machine(config: ConnectorConfig) -> (ConnectorMachine, Instant) {
    (
        ConnectorMachine::new(config, MemoryStore::with_epoch(0)),
        Instant::now(),
    )
}

fn feed(conn: &mut ConnectorMachine, now: Instant, line: &str) {
    conn.handle_input(now, format!("{line}\n").as_bytes());
}

/// Takes every output: one drain serves all the assertions about an input.
fn drain(conn: &mut ConnectorMachine) -> Split<ConnectorCommand, ConnectorEvent> {
    split_connector(conn)
}

/// Hellos for discord (default) and telegram, both answered.
fn handshake(conn: &mut ConnectorMachine, now: Instant) {
    feed(
        conn,
        now,
        r#"{"type":"hello","platform":"discord","botId":"111"}"#,
    );
    feed(
        conn,
        now,
        r#"{"type":"hello","platform":"telegram","botId":"222"}"#,
    );
    for event in drain(conn).events {
        if let ConnectorEvent::Hello { identity, .. } = event {
            conn.send_descriptor(
                now,
                CapabilityDescriptor::new(identity.platform.clone(), "x"),
            )
            .unwrap();
        }
    }
    assert_eq!(drain(conn).frames().len(), 2);
}

fn message(text: &str) -> MessageEvent {
    MessageEvent {
        text: text.into(),
        ..MessageEvent::default()
    }
}

#[test]
fn outbound_resolves_its_identity_and_gets_exactly_one_result() {
    let (mut conn, now) = machine(ConnectorConfig::default());
    handshake(&mut conn, now);
    assert_eq!(
        conn.identities()[0].platform,
        "discord",
        "first hello is the default"
    );
    // Untagged: the session default. Tagged: that identity.
    feed(
        &mut conn,
        now,
        r#"{"type":"outbound","requestId":"r1","action":{"op":"send","chat_id":"c","content":"x","reply_to":null}}"#,
    );
    feed(
        &mut conn,
        now,
        r#"{"type":"outbound","requestId":"r2","action":{"op":"typing","chat_id":"c"},"platform":"telegram","botId":"222"}"#,
    );
    let identities: Vec<_> = drain(&mut conn)
        .events
        .into_iter()
        .map(|e| match e {
            ConnectorEvent::Outbound {
                request_id,
                identity,
                ..
            } => (request_id.0, identity.platform),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        identities,
        [
            ("r1".into(), "discord".into()),
            ("r2".into(), "telegram".into())
        ]
    );
    assert_eq!(conn.open_requests(), 2);
    conn.respond(now, &RequestId::from("r1"), ActionResult::ok())
        .unwrap();
    assert_eq!(
        conn.respond(now, &RequestId::from("r1"), ActionResult::ok()),
        Err(ConnectorError::UnknownRequest(RequestId::from("r1")))
    );
    let out = drain(&mut conn).frames();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["requestId"], "r1");
    // A duplicate of a still-open id is ignored, not executed twice.
    feed(
        &mut conn,
        now,
        r#"{"type":"outbound","requestId":"r2","action":{"op":"typing","chat_id":"c"}}"#,
    );
    let out = drain(&mut conn);
    assert_eq!(
        out.events,
        [ConnectorEvent::Diagnostic(
            ConnectorDiagnostic::DuplicateRequest(RequestId::from("r2"))
        )]
    );
    assert!(out.transmits.is_empty());
}

#[test]
fn an_unannounced_identity_is_answered_with_a_structured_failure() {
    let (mut conn, now) = machine(ConnectorConfig::default());
    handshake(&mut conn, now);
    for line in [
        r#"{"type":"outbound","requestId":"a","action":{"op":"send","chat_id":"c","content":"x"},"platform":"slack"}"#,
        r#"{"type":"outbound","requestId":"b","action":{"op":"send","chat_id":"c","content":"x"},"platform":"discord","botId":"999"}"#,
    ] {
        feed(&mut conn, now, line);
    }
    let drained = drain(&mut conn);
    let out = drained.frames();
    assert_eq!(out.len(), 2);
    for result in &out {
        assert_eq!(result["type"], "outbound_result");
        assert_eq!(result["result"]["success"], false);
        assert_eq!(result["result"]["code"], UNKNOWN_IDENTITY);
    }
    assert_eq!(conn.open_requests(), 0);
    assert!(drained.events.iter().all(|e| matches!(
        e,
        ConnectorEvent::Diagnostic(ConnectorDiagnostic::UnknownIdentity { .. })
    )));
}

#[test]
fn replay_is_gated_by_acks_in_a_window() {
    let config = ConnectorConfig {
        replay_window: 2,
        ..ConnectorConfig::default()
    };
    let (mut conn, now) = machine(config);
    // Buffered before the handshake: nothing is sent until the first descriptor.
    for i in 1..=5 {
        conn.push(now, message(&format!("m{i}")), Mode::Buffered)
            .unwrap();
    }
    assert!(drain(&mut conn).transmits.is_empty());
    feed(
        &mut conn,
        now,
        r#"{"type":"hello","platform":"discord","botId":"111"}"#,
    );
    conn.send_descriptor(now, CapabilityDescriptor::new("discord", "x"))
        .unwrap();
    let sent: Vec<Value> = drain(&mut conn).frames();
    assert_eq!(sent[0]["type"], "descriptor");
    let ids: Vec<&str> = sent[1..]
        .iter()
        .map(|f| f["bufferId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["b-0-1", "b-0-2"], "the window holds two");
    feed(
        &mut conn,
        now,
        r#"{"type":"inbound_ack","bufferId":"b-0-1"}"#,
    );
    let sent: Vec<String> = drain(&mut conn)
        .frames()
        .iter()
        .map(|f| f["bufferId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent, ["b-0-3"], "one ack makes room for exactly one more");
    // An ack out of order also frees its slot.
    feed(
        &mut conn,
        now,
        r#"{"type":"inbound_ack","bufferId":"b-0-3"}"#,
    );
    let sent: Vec<String> = drain(&mut conn)
        .frames()
        .iter()
        .map(|f| f["bufferId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent, ["b-0-4"]);
    assert_eq!(conn.store().unacked_len(), 3, "b-2, b-4, b-5");
    // A stray ack changes nothing.
    feed(
        &mut conn,
        now,
        r#"{"type":"inbound_ack","bufferId":"b-0-1"}"#,
    );
    let out = drain(&mut conn);
    assert!(out.transmits.is_empty());
    assert!(out.events.iter().any(|e| matches!(
        e,
        ConnectorEvent::Diagnostic(ConnectorDiagnostic::UnknownAck(_))
    )));

    // The next connection replays exactly the unacked tail, in order.
    let store = conn.into_store();
    let mut next = ConnectorMachine::new(ConnectorConfig::default(), store);
    handshake_collect(&mut next, now);
}

fn handshake_collect(conn: &mut ConnectorMachine, now: Instant) {
    feed(
        conn,
        now,
        r#"{"type":"hello","platform":"discord","botId":"111"}"#,
    );
    conn.send_descriptor(now, CapabilityDescriptor::new("discord", "x"))
        .unwrap();
    let texts: Vec<String> = drain(conn)
        .frames()
        .iter()
        .filter(|f| f["type"] == "inbound")
        .map(|f| f["event"]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["m2", "m4", "m5"]);
}

#[test]
fn going_idle_buffers_live_deliveries_and_asks_for_a_wake() {
    let (mut conn, now) = machine(ConnectorConfig::default());
    handshake(&mut conn, now);
    feed(&mut conn, now, r#"{"type":"going_idle"}"#);
    let out = drain(&mut conn);
    assert_eq!(
        out.frames(),
        [serde_json::json!({"type": "going_idle_ack"})]
    );
    assert_eq!(out.events, [ConnectorEvent::WentIdle]);
    assert!(conn.is_idle());
    // Live deliveries are buffered now; the first one asks for a wake, once.
    let first = conn.push(now, message("while idle"), Mode::Live).unwrap();
    let second = conn.push(now, message("still idle"), Mode::Live).unwrap();
    assert!(first.is_some() && second.is_some());
    let out = drain(&mut conn);
    assert!(out.transmits.is_empty());
    assert_eq!(out.events, [ConnectorEvent::WakeNeeded]);
    assert_eq!(conn.store().unacked_len(), 2);
}

#[test]
fn refusing_the_credential_closes_4401_with_the_reason() {
    let (mut conn, now) = machine(ConnectorConfig::default());
    conn.reject_auth(now, "expired");
    assert_eq!(
        drain(&mut conn).commands,
        [ConnectorCommand::Close {
            code: 4401,
            reason: "expired".into()
        }]
    );
    // Closed: commands fail, input is ignored.
    assert_eq!(
        conn.push(now, message("x"), Mode::Live),
        Err(ConnectorError::Closed)
    );
    feed(
        &mut conn,
        now,
        r#"{"type":"hello","platform":"discord","botId":"1"}"#,
    );
    assert!(drain(&mut conn).events.is_empty());
}

#[test]
fn hellos_past_the_limit_or_repeated_are_refused() {
    let config = ConnectorConfig {
        max_identities: 1,
        ..ConnectorConfig::default()
    };
    let (mut conn, now) = machine(config);
    feed(
        &mut conn,
        now,
        r#"{"type":"hello","platform":"discord","botId":"1"}"#,
    );
    feed(
        &mut conn,
        now,
        r#"{"type":"hello","platform":"discord","botId":"2"}"#,
    );
    feed(
        &mut conn,
        now,
        r#"{"type":"hello","platform":"slack","botId":"3"}"#,
    );
    let events = drain(&mut conn).events;
    assert!(matches!(events[0], ConnectorEvent::Hello { .. }));
    assert!(
        matches!(&events[1], ConnectorEvent::Diagnostic(ConnectorDiagnostic::RefusedHello(p)) if p == "discord")
    );
    assert!(
        matches!(&events[2], ConnectorEvent::Diagnostic(ConnectorDiagnostic::RefusedHello(p)) if p == "slack")
    );
    assert_eq!(conn.identities().len(), 1);
    assert_eq!(
        conn.send_descriptor(now, CapabilityDescriptor::new("slack", "x")),
        Err(ConnectorError::NotAnnounced("slack".into()))
    );
}

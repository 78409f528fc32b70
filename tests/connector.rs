//! The connector role's own rules, driven directly: identities, exactly one result per
//! request and auth refusal on one connection ([`ConnectorMachine`]); the ack-gated replay
//! window, superseding and going idle on one gateway instance ([`Instance`]) over a
//! [`MemoryStore`] that the test drives as the application would.
// The pair harness needs the `testing` feature. The repository's self dev-dependency
// turns it on for `cargo test`, and tests/features.rs fails there should it ever be off;
// the published package runs these with `--features testing`.
#![cfg(feature = "testing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use relay_machine::connector::{
    ConnId, ConnectorCommand, ConnectorConfig, ConnectorDiagnostic, ConnectorError, ConnectorEvent,
    ConnectorMachine, Delivery, DeliveryStore, Instance, InstanceOutput, Live, MemoryStore,
    UNKNOWN_IDENTITY,
};
use relay_machine::testing::{Split, split_connector};
use relay_machine::wire::close;
use relay_machine::wire::{ActionResult, BufferId, CapabilityDescriptor, MessageEvent, RequestId};
use serde_json::Value;

fn machine(config: ConnectorConfig) -> (ConnectorMachine, Instant) {
    (
        ConnectorMachine::new(config, std::time::Instant::now()),
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
    assert_eq!(conn.in_flight(), 2);
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
    assert_eq!(conn.in_flight(), 0);
    assert!(drained.events.iter().all(|e| matches!(
        e,
        ConnectorEvent::Diagnostic(ConnectorDiagnostic::UnknownIdentity { .. })
    )));
}

/// What an [`Instance`] produced after an input, with the application's part played: every
/// `Load` answered from the store, every `Acked` made durable in it.
#[derive(Debug, Default)]
struct Drained {
    /// Frames, with their connection.
    frames: Vec<(ConnId, Value)>,
    /// Socket commands, with their connection.
    commands: Vec<(ConnId, ConnectorCommand)>,
    /// Events, with their connection.
    events: Vec<(ConnId, ConnectorEvent)>,
    /// Each ack, and whether the store knew it unacked (`DeliveryStore::ack`).
    acked: Vec<(BufferId, bool)>,
    /// `WakeNeeded` outputs.
    wakes: usize,
}

impl Drained {
    /// The `bufferId`s of the buffered frames, in order.
    fn buffer_ids(&self) -> Vec<String> {
        self.frames
            .iter()
            .filter_map(|(_, f)| f["bufferId"].as_str().map(str::to_owned))
            .collect()
    }

    /// The texts of the `inbound` frames, in order.
    fn texts(&self) -> Vec<String> {
        self.frames
            .iter()
            .filter(|(_, f)| f["type"] == "inbound")
            .map(|(_, f)| f["event"]["text"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Takes every output of `instance`, playing the application for the store.
fn drive(instance: &mut Instance, store: &mut MemoryStore, now: Instant) -> Drained {
    let mut out = Drained::default();
    while let Some(output) = instance.poll_output() {
        match output {
            InstanceOutput::Transmit(conn, line) => {
                out.frames
                    .push((conn, serde_json::from_str(line.as_str()).unwrap()));
            }
            InstanceOutput::Command(conn, command) => out.commands.push((conn, command)),
            InstanceOutput::Event(conn, event) => out.events.push((conn, event)),
            InstanceOutput::Load {
                token,
                after,
                limit,
            } => {
                let deliveries = store.unacked_after(after.as_ref(), limit);
                assert!(instance.offer(now, token, deliveries), "a fresh load");
            }
            InstanceOutput::Acked(id) => {
                let known = store.ack(&id);
                out.acked.push((id, known));
            }
            InstanceOutput::WakeNeeded => out.wakes += 1,
            other => panic!("{other:?}"),
        }
    }
    out
}

fn feed_instance(instance: &mut Instance, conn: ConnId, now: Instant, line: &str) {
    instance.handle_input(now, conn, format!("{line}\n").as_bytes());
}

/// Persists `delivery` first, then hands it to the instance, as the application does.
fn push_buffered(
    instance: &mut Instance,
    store: &mut MemoryStore,
    now: Instant,
    delivery: impl Into<Delivery>,
) -> BufferId {
    let delivery = delivery.into();
    let id = store.append(delivery.clone());
    instance.push_buffered(now, id.clone(), delivery);
    id
}

/// A discord hello on `conn`, answered: the first descriptor of the current connection
/// starts the replay. Returns what that produced.
fn handshake_instance(
    instance: &mut Instance,
    store: &mut MemoryStore,
    conn: ConnId,
    now: Instant,
) -> Drained {
    feed_instance(
        instance,
        conn,
        now,
        r#"{"type":"hello","platform":"discord","botId":"111"}"#,
    );
    let hello = drive(instance, store, now);
    assert!(
        matches!(hello.events.as_slice(), [(c, ConnectorEvent::Hello { .. })] if *c == conn),
        "{:?}",
        hello.events
    );
    instance
        .send_descriptor(now, conn, CapabilityDescriptor::new("discord", "x"))
        .unwrap();
    let out = drive(instance, store, now);
    assert_eq!(out.frames[0].0, conn);
    assert_eq!(out.frames[0].1["type"], "descriptor");
    assert!(out.frames.iter().all(|(c, _)| *c == conn));
    out
}

#[test]
fn replay_is_gated_by_acks_in_a_window() {
    let config = ConnectorConfig {
        replay_window: 2,
        ..ConnectorConfig::default()
    };
    let now = Instant::now();
    let mut store = MemoryStore::with_epoch(0);
    let mut instance = Instance::new(config);
    let conn = instance.accept(now);
    // Buffered before the handshake: nothing is sent until the first descriptor.
    for i in 1..=5 {
        push_buffered(&mut instance, &mut store, now, message(&format!("m{i}")));
    }
    assert!(drive(&mut instance, &mut store, now).frames.is_empty());
    let sent = handshake_instance(&mut instance, &mut store, conn, now);
    assert_eq!(
        sent.buffer_ids(),
        ["b-0-1", "b-0-2"],
        "the window holds two"
    );
    assert_eq!(instance.in_window(), 2);
    feed_instance(
        &mut instance,
        conn,
        now,
        r#"{"type":"inbound_ack","bufferId":"b-0-1"}"#,
    );
    let out = drive(&mut instance, &mut store, now);
    assert_eq!(out.acked, [(BufferId::from("b-0-1"), true)]);
    assert_eq!(
        out.buffer_ids(),
        ["b-0-3"],
        "one ack makes room for exactly one more"
    );
    // An ack out of order also frees its slot.
    feed_instance(
        &mut instance,
        conn,
        now,
        r#"{"type":"inbound_ack","bufferId":"b-0-3"}"#,
    );
    let out = drive(&mut instance, &mut store, now);
    assert_eq!(out.buffer_ids(), ["b-0-4"]);
    assert_eq!(store.unacked_len(), 3, "b-2, b-4, b-5");
    // A stray ack changes nothing: it is passed on (the instance cannot know the store),
    // the store does not know it as unacked, and the window does not move.
    feed_instance(
        &mut instance,
        conn,
        now,
        r#"{"type":"inbound_ack","bufferId":"b-0-1"}"#,
    );
    let out = drive(&mut instance, &mut store, now);
    assert!(out.frames.is_empty());
    assert_eq!(out.acked, [(BufferId::from("b-0-1"), false)]);
    assert_eq!(instance.in_window(), 2);
    assert_eq!(store.unacked_len(), 3);

    // The next connection supersedes this one and replays exactly the unacked tail, in
    // order, through the same window.
    let next = instance.accept(now);
    let out = drive(&mut instance, &mut store, now);
    assert_eq!(
        out.commands,
        [(
            conn,
            ConnectorCommand::Close {
                code: close::SUPERSEDED,
                reason: close::REASON_SUPERSEDED.into()
            }
        )]
    );
    assert!(out.frames.is_empty());
    instance.on_closed(now, conn, None, "socket ended");
    let mut texts = handshake_instance(&mut instance, &mut store, next, now).texts();
    assert_eq!(texts, ["m2", "m4"], "the window holds two");
    feed_instance(
        &mut instance,
        next,
        now,
        r#"{"type":"inbound_ack","bufferId":"b-0-2"}"#,
    );
    texts.extend(drive(&mut instance, &mut store, now).texts());
    assert_eq!(texts, ["m2", "m4", "m5"]);
}

#[test]
fn going_idle_buffers_live_deliveries_and_asks_for_a_wake() {
    let now = Instant::now();
    let mut store = MemoryStore::with_epoch(0);
    let mut instance = Instance::new(ConnectorConfig::default());
    let conn = instance.accept(now);
    handshake_instance(&mut instance, &mut store, conn, now);
    assert_eq!(instance.push_live(now, message("live")), Live::Sent);
    assert_eq!(drive(&mut instance, &mut store, now).texts(), ["live"]);
    feed_instance(&mut instance, conn, now, r#"{"type":"going_idle"}"#);
    let out = drive(&mut instance, &mut store, now);
    assert_eq!(
        out.frames,
        [(conn, serde_json::json!({"type": "going_idle_ack"}))]
    );
    assert_eq!(out.events, [(conn, ConnectorEvent::WentIdle)]);
    assert!(instance.is_idle());
    assert!(instance.connection(conn).unwrap().is_idle());
    // Live deliveries are handed back to be buffered now; the first one buffered asks for
    // a wake, once.
    for text in ["while idle", "still idle"] {
        let Live::Buffer(delivery) = instance.push_live(now, message(text)) else {
            panic!("{text}: sent live while idle");
        };
        assert_eq!(delivery, Delivery::from(message(text)));
        push_buffered(&mut instance, &mut store, now, delivery);
    }
    let out = drive(&mut instance, &mut store, now);
    assert!(out.frames.is_empty());
    assert!(out.events.is_empty());
    assert_eq!(out.wakes, 1);
    assert_eq!(store.unacked_len(), 2);

    // The woken gateway connects again: the flip ends at its handshake, and the buffered
    // ones are replayed in order.
    let next = instance.accept(now);
    drive(&mut instance, &mut store, now);
    instance.on_closed(now, conn, None, "socket ended");
    assert!(instance.is_idle(), "idle until the next handshake");
    let out = handshake_instance(&mut instance, &mut store, next, now);
    assert_eq!(out.texts(), ["while idle", "still idle"]);
    assert_eq!(out.buffer_ids(), ["b-0-1", "b-0-2"]);
    assert!(!instance.is_idle());
    assert_eq!(instance.push_live(now, message("live again")), Live::Sent);
    assert_eq!(
        drive(&mut instance, &mut store, now).texts(),
        ["live again"]
    );
    // A new idle period asks for a wake again, once.
    feed_instance(&mut instance, next, now, r#"{"type":"going_idle"}"#);
    drive(&mut instance, &mut store, now);
    for text in ["idle again", "and again"] {
        push_buffered(&mut instance, &mut store, now, message(text));
    }
    let out = drive(&mut instance, &mut store, now);
    assert!(out.frames.is_empty());
    assert_eq!(out.wakes, 1);
    assert_eq!(store.unacked_len(), 4);
}

/// One connection alone refuses a live delivery once its gateway went idle.
#[test]
fn a_connection_refuses_live_deliveries_after_going_idle() {
    let (mut conn, now) = machine(ConnectorConfig::default());
    handshake(&mut conn, now);
    assert!(conn.is_handshaken());
    feed(&mut conn, now, r#"{"type":"going_idle"}"#);
    drain(&mut conn);
    assert!(conn.is_idle());
    assert_eq!(conn.send_live(now, message("x")), Err(ConnectorError::Idle));
    assert!(drain(&mut conn).transmits.is_empty());
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
    assert!(conn.is_closed());
    // Closed: commands fail, input is ignored.
    assert_eq!(
        conn.send_live(now, message("x")),
        Err(ConnectorError::Closed)
    );
    assert_eq!(
        conn.send_buffered(now, BufferId::from("b-0-1"), message("x").into()),
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

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Scenarios 3 and 5: buffered replay, acks and passthrough forwards (protocol.md §2.5,
//! §2.6, §2.12, §6.4, §6.5; design.md §3 principle 8, §4 items 11 and 12).

use std::time::Duration;

use relay_machine::connector::DeliveryStore;
use relay_machine::gateway::{AckError, GatewayConfig, GatewayEvent, GatewayState};
use relay_machine::wire::{Base64Error, BufferId};
use serde_json::{Value, json};

use crate::driver::*;
use crate::linked;
use relay_machine::testing::Pair;

fn inbound_buffer_ids(events: &[GatewayEvent]) -> Vec<Option<BufferId>> {
    events
        .iter()
        .filter_map(|e| match e {
            GatewayEvent::Inbound { buffer_id, .. }
            | GatewayEvent::Passthrough { buffer_id, .. } => Some(buffer_id.clone()),
            _ => None,
        })
        .collect()
}

fn group(chat: &str) -> Value {
    json!({"platform": "telegram", "chat_id": chat, "chat_type": "group", "user_id": "77"})
}

#[test]
fn buffered_inbound_is_acked_once_when_the_application_says_so() {
    let mut d = Driver::open(config1());
    let m = d.mark();
    d.feed(&inbound(group("-100"), "live", None));
    d.feed(&inbound(group("-100"), "replayed", Some("b-17")));
    // Non-string and empty buffer ids, as the reference reads them: 42 → "42", "" → live.
    d.feed(&json!({"type": "inbound", "event": {"text": "numeric", "source": group("-100")}, "bufferId": 42}).to_string());
    d.feed(&json!({"type": "inbound", "event": {"text": "empty", "source": group("-100")}, "bufferId": ""}).to_string());
    assert_eq!(
        inbound_buffer_ids(&d.events_since(m)),
        vec![None, Some("b-17".into()), Some("42".into()), None]
    );
    // Nothing is acked on delivery.
    assert!(d.frames_of(m, "inbound_ack").is_empty());
    assert_eq!(d.gateway().unacked(), 2);

    d.advance(250);
    let m = d.mark();
    assert_eq!(d.ack("b-17"), Ok(()));
    assert_eq!(
        d.frames_since(m),
        vec![json!({"type": "inbound_ack", "bufferId": "b-17"})]
    );
    let m = d.mark();
    assert_eq!(d.ack("b-17"), Err(AckError::Unknown("b-17".into())));
    // Never delivered (a live inbound has no id to ack).
    assert_eq!(d.ack("b-99"), Err(AckError::Unknown("b-99".into())));
    assert!(d.frames_since(m).is_empty());
    assert_eq!(d.ack("42"), Ok(()));
    assert_eq!(d.gateway().unacked(), 0);
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn an_ack_lost_at_close_is_owed_and_the_redelivery_is_acked_not_handed_over() {
    let mut d = Driver::open(config1());
    d.feed(&inbound(group("-100"), "replayed", Some("b-1")));
    // The application acks, and the socket dies before the driver took the ack.
    let b1 = BufferId::from("b-1");
    d.batch("ack_inbound b-1, then the socket drops", true, |m, now| {
        assert_eq!(m.ack_inbound(now, &b1), Ok(()));
        m.on_closed(now, None, "connection reset");
    });
    d.fire();
    d.connected();
    let m = d.mark();
    d.feed(&descriptor("telegram"));
    // The owed ack goes out once the new connection is open ...
    assert_eq!(
        d.frames_of(m, "inbound_ack"),
        vec![json!({"type": "inbound_ack", "bufferId": "b-1"})]
    );
    // ... and the connector's redelivery (it may have missed the ack) is acked again by the
    // machine, never handed to the application a second time.
    let m = d.mark();
    d.feed(&inbound(group("-100"), "replayed", Some("b-1")));
    assert!(d.events_since(m).is_empty());
    assert_eq!(
        d.frames_of(m, "inbound_ack"),
        vec![json!({"type": "inbound_ack", "bufferId": "b-1"})]
    );
    assert_eq!(d.ack("b-1"), Err(AckError::Unknown("b-1".into())));
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn a_redelivery_while_the_application_holds_the_first_copy_is_not_handed_over() {
    let mut d = Driver::open(config1());
    d.feed(&inbound(group("-100"), "replayed", Some("b-1")));
    d.dropped();
    d.fire();
    d.connected();
    d.feed(&descriptor("telegram"));
    let m = d.mark();
    d.feed(&inbound(group("-100"), "replayed", Some("b-1")));
    assert!(d.events_since(m).is_empty(), "handed over twice");
    assert!(
        d.frames_since(m).is_empty(),
        "not acked: the application holds it"
    );
    assert_eq!(d.gateway().unacked(), 1);
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn an_ack_made_after_a_reconnect_is_written_on_the_new_socket() {
    let mut d = Driver::open(config1());
    d.feed(&inbound(group("-100"), "replayed", Some("b-1")));
    d.dropped();
    // No socket now: the ack is owed, not refused.
    let m = d.mark();
    assert_eq!(d.ack("b-1"), Ok(()));
    assert!(d.frames_since(m).is_empty());
    d.fire();
    d.connected();
    let m = d.mark();
    d.feed(&descriptor("telegram"));
    assert_eq!(
        d.frames_of(m, "inbound_ack"),
        vec![json!({"type": "inbound_ack", "bufferId": "b-1"})]
    );
    // Held on the old connection, acked on the new one: also written on the new socket.
    d.feed(&inbound(group("-100"), "second", Some("b-2")));
    d.dropped();
    d.fire();
    d.connected();
    d.feed(&descriptor("telegram"));
    let m = d.mark();
    assert_eq!(d.ack("b-2"), Ok(()));
    assert_eq!(
        d.frames_since(m),
        vec![json!({"type": "inbound_ack", "bufferId": "b-2"})]
    );
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn a_reused_id_with_a_different_body_is_delivered() {
    let mut d = Driver::open(config1());
    d.feed(&inbound(group("-100"), "first", Some("b-1")));
    assert_eq!(d.ack("b-1"), Ok(()));
    let m = d.mark();
    d.feed(&inbound(group("-100"), "another delivery", Some("b-1")));
    let events = d.events_since(m);
    assert!(
        matches!(events.as_slice(), [GatewayEvent::Inbound { event, .. }] if event.text == "another delivery"),
        "{events:?}"
    );
    assert!(
        d.frames_since(m).is_empty(),
        "not acked for the application"
    );
    assert_eq!(d.ack("b-1"), Ok(()));
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn auto_ack_acks_buffered_inbound_and_passthrough_once_and_never_live() {
    let config = GatewayConfig {
        auto_ack: true,
        ..config1()
    };
    let mut d = Driver::open(config);
    let m = d.mark();
    d.feed(&inbound(group("-100"), "live", None));
    d.feed(&inbound(group("-100"), "replayed", Some("b-1")));
    d.feed(&json!({"type": "passthrough_forward", "forward": {"platform": "discord", "bodyB64": "aGk="}}).to_string());
    d.feed(&json!({"type": "passthrough_forward", "forward": {"platform": "discord", "bodyB64": "aGk="}, "bufferId": "pb-1"}).to_string());
    assert_eq!(
        d.frames_of(m, "inbound_ack"),
        vec![
            json!({"type": "inbound_ack", "bufferId": "b-1"}),
            json!({"type": "inbound_ack", "bufferId": "pb-1"})
        ]
    );
    // Every delivery still reaches the application, with its buffer id.
    assert_eq!(
        inbound_buffer_ids(&d.events_since(m)),
        vec![None, Some("b-1".into()), None, Some("pb-1".into())]
    );
    // Already acked: the application cannot ack again.
    let m = d.mark();
    assert_eq!(d.ack("b-1"), Err(AckError::Unknown("b-1".into())));
    assert_eq!(d.ack("pb-1"), Err(AckError::Unknown("pb-1".into())));
    assert!(d.frames_since(m).is_empty());
    assert_eq!(d.gateway().unacked(), 0);
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn delivery_memory_forgets_the_oldest() {
    let config = GatewayConfig {
        delivery_memory: 2,
        ..config1()
    };
    let mut d = Driver::open(config);
    for b in ["b-1", "b-2", "b-3"] {
        d.feed(&inbound(group("-100"), b, Some(b)));
    }
    assert_eq!(d.gateway().unacked(), 2);
    let m = d.mark();
    assert_eq!(d.ack("b-1"), Err(AckError::Unknown("b-1".into())));
    assert_eq!(d.ack("b-2"), Ok(()));
    assert_eq!(d.ack("b-3"), Ok(()));
    assert_eq!(
        d.frames_of(m, "inbound_ack"),
        vec![
            json!({"type": "inbound_ack", "bufferId": "b-2"}),
            json!({"type": "inbound_ack", "bufferId": "b-3"})
        ]
    );
    insta::assert_snapshot!(d.transcript());
}

/// The body of protocol.md §2.12's example.
const INTERACTION: &str = r#"{"type":2,"id":"i1","channel_id":"4455","guild_id":"1000","data":{"name":"new"},"member":{"user":{"id":"77","username":"alice"}}}"#;
const INTERACTION_B64: &str = "eyJ0eXBlIjoyLCJpZCI6ImkxIiwiY2hhbm5lbF9pZCI6IjQ0NTUiLCJndWlsZF9pZCI6IjEwMDAiLCJkYXRhIjp7Im5hbWUiOiJuZXcifSwibWVtYmVyIjp7InVzZXIiOnsiaWQiOiI3NyIsInVzZXJuYW1lIjoiYWxpY2UifX19";

#[test]
fn passthrough_with_a_good_body_decodes_exactly() {
    let mut d = Driver::open(config3());
    let m = d.mark();
    d.feed(
        &json!({"type": "passthrough_forward", "forward": {
            "platform": "discord", "botId": "1122334455", "method": "POST",
            "path": "/interactions/discord/1122334455",
            "headers": [["content-type", "application/json"], ["x-trace", "t1"]],
            "bodyB64": INTERACTION_B64, "profile": "reviewer"}, "bufferId": "pb-3"})
        .to_string(),
    );
    let events = d.events_since(m);
    let [GatewayEvent::Passthrough { forward, buffer_id }] = events.as_slice() else {
        panic!("one passthrough event expected, got {events:?}");
    };
    assert_eq!(
        forward.body.as_ref().unwrap().as_ref(),
        INTERACTION.as_bytes()
    );
    assert_eq!(forward.platform, "discord");
    assert_eq!(forward.bot_id, "1122334455");
    assert_eq!(forward.method, "POST");
    assert_eq!(forward.path, "/interactions/discord/1122334455");
    assert_eq!(forward.profile.as_deref(), Some("reviewer"));
    assert_eq!(forward.header("Content-Type"), Some("application/json"));
    assert_eq!(buffer_id.as_ref().unwrap().as_str(), "pb-3");
    assert!(
        d.frames_since(m).is_empty(),
        "not acked until the application says so"
    );
    let m = d.mark();
    assert_eq!(d.ack("pb-3"), Ok(()));
    assert_eq!(
        d.frames_since(m),
        vec![json!({"type": "inbound_ack", "bufferId": "pb-3"})]
    );
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn passthrough_with_a_bad_body_is_delivered_with_the_error_and_ackable() {
    let mut d = Driver::open(config3());
    let m = d.mark();
    // URL-safe alphabet (the reference silently yields an empty body) and missing padding.
    d.feed(r#"{"type": "passthrough_forward", "forward": {"platform": "discord", "path": "/i", "bodyB64": "-_8="}, "bufferId": "pb-7"}"#);
    d.feed(r#"{"type": "passthrough_forward", "forward": {"platform": "discord", "path": "/i", "bodyB64": "aGk"}, "bufferId": "pb-8"}"#);
    let events = d.events_since(m);
    assert_eq!(events.len(), 2, "both delivered: {events:?}");
    let mut seen = Vec::new();
    for e in &events {
        let GatewayEvent::Passthrough { forward, buffer_id } = e else {
            panic!("passthrough expected, got {e:?}");
        };
        let err = forward.body.as_ref().unwrap_err();
        seen.push((buffer_id.clone().unwrap(), err.reason, err.encoded.clone()));
        assert_eq!(forward.path, "/i");
    }
    assert_eq!(
        seen[0],
        (
            "pb-7".into(),
            Base64Error::InvalidByte {
                offset: 0,
                byte: b'-'
            },
            "-_8=".to_owned()
        )
    );
    assert_eq!(seen[1].0, BufferId::from("pb-8"));
    assert!(matches!(
        seen[1].1,
        Base64Error::InvalidPadding | Base64Error::InvalidLength { .. }
    ));
    // A bad body is the application's problem, not the connection's.
    assert_eq!(d.gateway().unacked(), 2);
    assert_eq!(d.ack("pb-7"), Ok(()));
    assert_eq!(d.ack("pb-8"), Ok(()));
    assert!(d.diagnostics_since(m).is_empty());
    insta::assert_snapshot!(d.transcript());
}

/// The application acks the deliveries of `first` whose text is one of `texts`.
fn ack_texts(pair: &mut Pair, first: &[(String, Option<BufferId>)], texts: &[&str]) {
    for (text, id) in first {
        if texts.contains(&text.as_str()) {
            pair.ack(id.as_ref().unwrap()).unwrap();
        }
    }
}

/// The unacked tail, exactly, in order; nothing acked is ever delivered again. The replay
/// is the connector's, on the wire: the gateway remembers what it handed over, so the
/// application gets each delivery once and acks it whichever connection is up.
#[test]
fn reconnect_replays_exactly_the_unacked_tail() {
    let mut pair = linked::pair();
    for i in 1..=6 {
        pair.push(linked::event("c1", &format!("m{i}")), true)
            .unwrap();
    }
    pair.drive_until_idle().unwrap();
    let first = linked::inbound_texts(&pair);
    assert_eq!(first.len(), 6);
    // The application owns m1, m2 and m4 durably; m3, m5, m6 are still its to lose.
    ack_texts(&mut pair, &first, &["m1", "m2", "m4"]);
    pair.drive_until_idle().unwrap();
    assert_eq!(pair.store.unacked_len(), 3);
    assert_eq!(pair.gateway.unacked(), 3);
    pair.gateway_events.clear();
    let mark = linked::transcript_len(&pair);
    pair.drop_connection();
    pair.advance(Duration::from_secs(1)).unwrap();
    assert_eq!(pair.gateway.state(), GatewayState::Open);
    assert_eq!(linked::wire_inbound(&pair, mark), ["m3", "m5", "m6"]);
    // The application still holds those three from the first connection: not handed over
    // a second time.
    assert!(linked::inbound_texts(&pair).is_empty());
    assert_eq!(pair.gateway.unacked(), 3);
    // Ack everything now (with the ids the first connection brought): a third connection
    // replays nothing.
    ack_texts(&mut pair, &first, &["m3", "m5", "m6"]);
    pair.drive_until_idle().unwrap();
    assert_eq!(pair.store.unacked_len(), 0);
    assert_eq!(pair.gateway.unacked(), 0);
    pair.gateway_events.clear();
    let mark = linked::transcript_len(&pair);
    pair.drop_connection();
    pair.advance(Duration::from_secs(2)).unwrap();
    assert_eq!(pair.gateway.state(), GatewayState::Open);
    assert!(linked::wire_inbound(&pair, mark).is_empty());
    assert!(linked::inbound_texts(&pair).is_empty());
}

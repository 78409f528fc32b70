#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Scenarios 6, 7 and 10: going idle, dormant mode and the redial hold (protocol.md §6.7,
//! §6.8, §7.4, §7.6 rows 13–17; §11.2 item 8).

use std::time::Duration;

use relay_machine::gateway::{
    ConnectionCommand, Diagnostic, DialPurpose, GatewayEvent, GatewayState, RequestFailure,
    SendError,
};
use relay_machine::wire::SendAction;
use serde_json::json;

use crate::driver::*;

const ACK: &str = r#"{"type": "going_idle_ack"}"#;

fn going_idle(acked: bool, dormant: bool) -> GatewayEvent {
    GatewayEvent::GoingIdle { acked, dormant }
}

fn idle_events(d: &Driver, m: usize) -> Vec<GatewayEvent> {
    d.events_since(m)
        .into_iter()
        .filter(|e| matches!(e, GatewayEvent::GoingIdle { .. }))
        .collect()
}

#[test]
fn go_idle_acked() {
    let mut d = Driver::open(config1());
    let m = d.mark();
    d.go_idle().unwrap();
    assert_eq!(d.frames_since(m), vec![json!({"type": "going_idle"})]);
    // A second call while one is pending joins it: no second frame.
    d.go_idle().unwrap();
    assert_eq!(d.frames_since(m).len(), 1);
    d.advance(300);
    d.feed(ACK);
    assert_eq!(idle_events(&d, m), vec![going_idle(true, false)]);
    assert_eq!(d.state(), GatewayState::Open);
    assert!(d.commands_since(m).is_empty());
    assert_eq!(
        d.gateway().poll_timeout(),
        None,
        "the go-idle timer is gone"
    );
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn go_idle_times_out_after_10s() {
    let mut d = Driver::open(config1());
    let m = d.mark();
    d.go_idle().unwrap();
    d.advance(9_999);
    assert!(idle_events(&d, m).is_empty());
    d.advance(1);
    assert_eq!(idle_events(&d, m), vec![going_idle(false, false)]);
    assert_eq!(d.ms(), 10_000);
    assert_eq!(d.state(), GatewayState::Open);
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn a_late_ack_for_a_timed_out_go_idle_does_not_satisfy_a_newer_one() {
    let mut d = Driver::open(config1());
    d.go_idle().unwrap();
    d.advance(10_000); // the first times out
    d.advance(1_000);
    let m = d.mark();
    d.go_idle().unwrap();
    assert_eq!(d.frames_of(m, "going_idle").len(), 1);
    d.advance(500);
    d.feed(ACK); // the first one's ack, late
    assert_eq!(d.diagnostics_since(m), vec![Diagnostic::StrayGoingIdleAck]);
    assert!(
        idle_events(&d, m).is_empty(),
        "the late ack satisfies nothing"
    );
    d.advance(500);
    d.feed(ACK); // the second one's own ack
    assert_eq!(idle_events(&d, m), vec![going_idle(true, false)]);
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn a_stray_ack_is_diagnosed_and_the_next_go_idle_still_works() {
    let mut d = Driver::open(config1());
    let m = d.mark();
    d.feed(ACK);
    assert_eq!(d.diagnostics_since(m), vec![Diagnostic::StrayGoingIdleAck]);
    assert_eq!(d.state(), GatewayState::Open);
    // The stray ack answered nothing, so it must not count against a later request.
    d.advance(1_000);
    let m = d.mark();
    d.go_idle().unwrap();
    d.advance(200);
    d.feed(ACK);
    assert_eq!(idle_events(&d, m), vec![going_idle(true, false)]);
    assert!(d.diagnostics_since(m).is_empty());
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn inbound_during_the_go_idle_wait_is_delivered() {
    let mut d = Driver::open(config1());
    let m = d.mark();
    d.go_idle().unwrap();
    d.advance(100);
    d.feed(&dm("42", "9", "in the flip window"));
    let id = d.send_text("42", "reply").unwrap();
    d.feed(&result_ok(&id, "m-1"));
    d.advance(100);
    d.feed(ACK);
    let events = d.events_since(m);
    assert!(
        matches!(&events[0], GatewayEvent::Inbound { event, .. } if event.text == "in the flip window")
    );
    assert!(d.response(&id).is_ok());
    assert_eq!(idle_events(&d, m), vec![going_idle(true, false)]);
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn row16_go_dormant_acked_closes_and_redials_on_the_dormant_cadence() {
    let mut d = Driver::open(config1());
    // Climb the ladder first so a ladder wait would be visibly longer than 1 s.
    for _ in 0..3 {
        d.dropped();
        d.fire();
        d.connected();
        d.feed(&descriptor("telegram"));
    }
    let pending = d.send_text("42", "in flight").unwrap();
    let m = d.mark();
    d.go_dormant().unwrap();
    assert_eq!(d.frames_since(m), vec![json!({"type": "going_idle"})]);
    d.advance(200);
    d.feed(ACK);
    let events = d.events_since(m);
    assert_eq!(events[0], going_idle(true, true));
    assert_eq!(d.closes_since(m), vec![(1000, "dormant".to_owned())]);
    assert_eq!(d.response(&pending), Err(RequestFailure::ConnectionLost));
    assert!(events.contains(&GatewayEvent::Disconnected {
        code: Some(1000),
        reason: "dormant".into()
    }));
    // Not closing: the supervisor is armed with the 1 s dormant cadence.
    assert_eq!(d.waits_since(m), vec![(1_000, DialPurpose::Backoff)]);
    assert_eq!(d.state(), GatewayState::Waiting);
    assert!(d.gateway().is_dormant());
    assert_eq!(d.send_text("42", "x"), Err(SendError::NotConnected));

    let dormant_at = d.ms();
    d.advance(999);
    assert!(d.dials_since(m).is_empty());
    d.advance(1);
    let dials = d.dials_since(m);
    assert_eq!(dials.len(), 1);
    assert_eq!(
        (dials[0].0, dials[0].2),
        (dormant_at + 1_000, DialPurpose::Backoff)
    );
    assert!(d.gateway().is_dormant(), "dormant until a dial succeeds");
    d.connected();
    assert!(!d.gateway().is_dormant());

    // The second handshake; the connector replays the buffered backlog.
    let m = d.mark();
    d.feed(&descriptor("telegram"));
    assert_eq!(
        d.events_since(m)[0],
        GatewayEvent::HandshakeComplete {
            platform: "telegram".into()
        }
    );
    d.feed(&inbound(
        json!({"platform": "telegram", "chat_id": "42"}),
        "while asleep",
        Some("b-1"),
    ));
    d.feed(&inbound(
        json!({"platform": "telegram", "chat_id": "42"}),
        "also",
        Some("b-2"),
    ));
    d.ack("b-1").unwrap();
    d.ack("b-2").unwrap();
    assert_eq!(d.frames_of(m, "inbound_ack").len(), 2);

    // The dormant wait did not climb the ladder: after three short connections the next
    // ceiling is the fourth step, 8 s.
    let m = d.mark();
    d.dropped();
    let (wait, _) = d.waits_since(m)[0];
    assert!((4_000..=8_000).contains(&wait), "wait {wait}");
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn row17_go_dormant_not_acked_stays_connected() {
    let mut d = Driver::open(config1());
    let m = d.mark();
    d.go_dormant().unwrap();
    d.advance(10_000);
    assert_eq!(idle_events(&d, m), vec![going_idle(false, true)]);
    assert!(d.commands_since(m).is_empty(), "no close, no dial");
    assert_eq!(d.state(), GatewayState::Open);
    assert!(!d.gateway().is_dormant());
    let id = d.send_text("42", "still here").unwrap();
    d.feed(&result_ok(&id, "m-1"));
    assert!(d.response(&id).is_ok());
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn row14_row15_hold_parks_the_due_dial_until_release() {
    let mut d = Driver::open(config1());
    d.hold_redial();
    let m = d.mark();
    d.dropped();
    let (wait, _) = d.waits_since(m)[0];
    d.advance(wait);
    assert_eq!(d.state(), GatewayState::Held);
    assert!(
        d.events_since(m)
            .iter()
            .any(|e| matches!(e, GatewayEvent::RedialHeld { .. }))
    );
    // No dial at all while held, even far past the cadence.
    d.advance(59_000);
    assert!(d.dials_since(m).is_empty());
    assert_eq!(d.send_text("42", "x"), Err(SendError::NotConnected));
    d.release_redial();
    let dials = d.dials_since(m);
    assert_eq!(dials.len(), 1);
    assert_eq!((dials[0].0, dials[0].2), (d.ms(), DialPurpose::Backoff));
    assert_eq!(d.state(), GatewayState::Dialing);
    assert_eq!(
        d.gateway().poll_timeout(),
        None,
        "the hold cap is cancelled"
    );
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn row15_hold_expires_at_60s_and_dials_anyway() {
    let mut d = Driver::open(config1());
    d.hold_redial();
    let m = d.mark();
    d.dropped();
    let (wait, _) = d.waits_since(m)[0];
    d.advance(wait);
    let held_at = d.ms();
    d.advance(59_999);
    assert!(d.dials_since(m).is_empty());
    d.advance(1);
    let dials = d.dials_since(m);
    assert_eq!(dials.len(), 1);
    assert_eq!(dials[0].0, held_at + 60_000);
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn row13_hold_applies_to_one_wait_only() {
    let mut d = Driver::open(config1());
    d.hold_redial();
    let m = d.mark();
    d.dropped();
    d.advance(61_000); // the wait, then the whole hold
    assert_eq!(d.dials_since(m).len(), 1);
    let m = d.mark();
    d.dial_failed("connection refused");
    // The next wait is not held: it dials as soon as it elapses.
    let (wait, _) = d.waits_since(m)[0];
    d.advance(wait);
    assert_eq!(d.dials_since(m).len(), 1);
    assert!(
        !d.events_since(m)
            .iter()
            .any(|e| matches!(e, GatewayEvent::RedialHeld { .. }))
    );
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn dormant_with_a_hold_sleeps_until_released() {
    // The intended use: go dormant, hold the redial, release it when there is work.
    let mut d = Driver::open(config1());
    d.go_dormant().unwrap();
    d.hold_redial();
    d.feed(ACK);
    let m = d.mark();
    d.advance(30_000);
    assert!(d.dials_since(m).is_empty());
    assert_eq!(d.state(), GatewayState::Held);
    d.release_redial();
    d.connected();
    assert!(!d.gateway().is_dormant());
    d.feed(&descriptor("telegram"));
    assert_eq!(d.state(), GatewayState::Open);
    insta::assert_snapshot!(d.transcript());
}

/// A result the connector wrote before its dormant ack, in the same message, resolves its
/// request instead of being failed as lost.
#[test]
fn frames_before_a_dormant_ack_in_the_same_message_are_processed() {
    let mut d = Driver::open_seeded(discord1(), 0);
    let id = d.send(SendAction::default(), None).unwrap();
    d.go_dormant().unwrap();
    let m = d.mark();
    let message = format!(
        "{{\"type\":\"going_idle_ack\"}}\n{{\"type\":\"outbound_result\",\"requestId\":\"{id}\",\"result\":{{\"success\":true}}}}\n"
    );
    d.feed_bytes("going_idle_ack, outbound_result", message.as_bytes());
    let events = d.events_since(m);
    let response = events.iter().find_map(|e| match e {
        GatewayEvent::Response { id: rid, result } if *rid == id => Some(result.clone()),
        _ => None,
    });
    assert!(response.unwrap().unwrap().success);
    assert!(events.contains(&going_idle(true, true)));
    assert!(matches!(
        d.commands_since(m).as_slice(),
        [ConnectionCommand::Close { .. }]
    ));
    assert!(d.gateway().is_dormant());
    assert_eq!(d.state(), GatewayState::Waiting);
    // The redial waits for the socket being closed to end (the close timeout bounds it).
    assert_eq!(
        d.gateway().poll_timeout(),
        Some(d.now + Duration::from_secs(10))
    );
    d.closed(1000, "dormant");
    // The dormant cadence: one second, not the ladder.
    assert_eq!(
        d.gateway().poll_timeout(),
        Some(d.now + Duration::from_secs(1))
    );
}

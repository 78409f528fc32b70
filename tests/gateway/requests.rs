#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Scenario 2: requests and their exactly-once resolution (protocol.md §5.5, §6.3, §6.9,
//! §11.2 item 6).

use std::time::Duration;

use relay_machine::gateway::{
    Diagnostic, GatewayConfig, GatewayEvent, GatewayState, RequestFailure, SendError,
};
use relay_machine::wire::RequestId;
use serde_json::json;

use crate::driver::*;
use crate::linked;

#[test]
fn results_are_matched_by_request_id() {
    let mut d = Driver::open(config1());
    let m = d.mark();
    let a = d.send_text("42", "first").unwrap();
    let b = d.send_text("42", "second").unwrap();
    assert_ne!(a, b);
    let out = d.frames_of(m, "outbound");
    assert_eq!(out.len(), 2);
    assert_eq!(out[0]["requestId"], a.as_str());
    assert_eq!(out[1]["requestId"], b.as_str());
    assert_eq!(
        out[0]["action"],
        json!({"op": "send", "chat_id": "42", "content": "first", "reply_to": null, "metadata": {}})
    );
    assert_eq!(d.gateway().in_flight(), 2);

    // Results come back in any order; each goes to its own request.
    d.advance(40);
    d.feed(&result_ok(&b, "m-2"));
    assert_eq!(d.response(&b).unwrap().message_id.as_deref(), Some("m-2"));
    assert!(d.responses(&a).is_empty());
    d.advance(10);
    d.feed(
        &json!({"type": "outbound_result", "requestId": a.as_str(),
                "result": {"success": false, "code": "egress_declined",
                           "error": "telegram egress declined: target is not an approved destination for this connection"}})
        .to_string(),
    );
    let ra = d.response(&a).unwrap();
    assert!(!ra.success);
    assert!(ra.is_egress_declined());
    assert_eq!(d.gateway().in_flight(), 0);
    assert_eq!(d.gateway().poll_timeout(), None);

    // A duplicate result is not a second resolution.
    let m = d.mark();
    d.feed(&result_ok(&b, "m-2"));
    assert_eq!(
        d.diagnostics_since(m),
        vec![Diagnostic::UnknownResult(b.clone())]
    );
    assert_eq!(d.responses(&b).len(), 1);
    d.assert_all_resolved();
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn timeout_at_30s_is_ambiguous_and_a_late_result_matches_nothing() {
    let mut d = Driver::open(config1());
    let a = d.send_text("42", "slow").unwrap();
    d.advance(10_000);
    let b = d.send_text("42", "later").unwrap();

    let m = d.mark();
    d.advance(19_999);
    assert!(d.since(m).is_empty());
    d.advance(1);
    assert_eq!(d.ms(), 30_000);
    let ra = d.response(&a);
    assert_eq!(ra, Err(RequestFailure::Timeout));
    assert!(ra.unwrap_err().is_ambiguous());
    assert!(
        d.responses(&b).is_empty(),
        "the other request is still pending"
    );
    assert_eq!(d.gateway().in_flight(), 1);

    // The late result for `a` and a result for an id never sent are diagnosed; neither
    // resolves `b`.
    d.advance(500);
    let m = d.mark();
    d.feed(&result_ok(&a, "m-late"));
    let stranger = RequestId::from("0123456789abcdef0123456789abcdef");
    d.feed(&result_ok(&stranger, "m-x"));
    assert_eq!(
        d.diagnostics_since(m),
        vec![
            Diagnostic::UnknownResult(a.clone()),
            Diagnostic::UnknownResult(stranger)
        ]
    );
    assert_eq!(d.responses(&a).len(), 1);
    assert!(d.responses(&b).is_empty());

    d.advance(9_500);
    assert_eq!(d.ms(), 40_000);
    assert_eq!(d.response(&b), Err(RequestFailure::Timeout));
    d.assert_all_resolved();
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn connection_lost_fails_pending_requests_as_ambiguous() {
    let mut d = Driver::open(config1());
    let a = d.send_text("42", "one").unwrap();
    let b = d.send_text("42", "two").unwrap();
    d.go_idle().unwrap();
    d.advance(700);
    let m = d.mark();
    d.dropped();
    // The pending go_idle ends too, unacknowledged.
    assert!(d.events_since(m).contains(&GatewayEvent::GoingIdle {
        acked: false,
        dormant: false
    }));
    for id in [&a, &b] {
        let r = d.response(id);
        assert_eq!(r, Err(RequestFailure::ConnectionLost));
        // Written, outcome unknown: ambiguous (the reference omits the flag, §11.2 item 6).
        assert!(r.unwrap_err().is_ambiguous());
    }
    assert_eq!(d.gateway().in_flight(), 0);
    assert_eq!(d.state(), GatewayState::Waiting);
    // Nothing resolves them again later, whatever arrives.
    d.advance(60_000);
    d.assert_all_resolved();
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn disconnect_with_the_default_budget_drains_for_1500ms() {
    let mut d = Driver::open(config1());
    let a = d.send_text("42", "final edit").unwrap();
    d.go_idle().unwrap();
    d.advance(100);
    let m = d.mark();
    d.disconnect(None);
    assert_eq!(d.state(), GatewayState::Closing);
    assert!(
        d.closes_since(m).is_empty(),
        "the socket stays open during the grace"
    );
    assert_eq!(d.send_text("42", "more"), Err(SendError::Closing));
    assert_eq!(d.go_idle(), Err(SendError::Closing));

    let m = d.mark();
    d.advance(1_499);
    assert!(d.responses(&a).is_empty());
    assert!(d.closes_since(m).is_empty());
    d.advance(1);
    assert_eq!(d.ms(), 1_600);
    let r = d.response(&a);
    assert_eq!(r, Err(RequestFailure::Drained));
    assert!(r.unwrap_err().is_ambiguous());
    assert_eq!(d.closes_since(m), vec![(1000, "disconnect".to_owned())]);
    assert_eq!(d.state(), GatewayState::Closed);
    // The pending go_idle is failed at the close, and Closed is the last event.
    let events = d.events_since(m);
    assert!(events.contains(&GatewayEvent::GoingIdle {
        acked: false,
        dormant: false
    }));
    assert_eq!(events.last(), Some(&GatewayEvent::Closed));
    assert_eq!(d.send_text("42", "after"), Err(SendError::Closed));
    d.assert_all_resolved();
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn disconnect_with_3500ms_budget_fails_pending_at_once() {
    let mut d = Driver::open(config1());
    let a = d.send_text("42", "x").unwrap();
    let m = d.mark();
    d.disconnect(Some(Duration::from_millis(3_500)));
    assert_eq!(d.response(&a), Err(RequestFailure::Drained));
    assert_eq!(d.closes_since(m), vec![(1000, "disconnect".to_owned())]);
    assert_eq!(d.state(), GatewayState::Closed);
    assert_eq!(d.since(m).last().unwrap().ms, 0);
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn a_result_during_the_drain_grace_resolves_ok_and_ends_the_drain() {
    let mut d = Driver::open(config1());
    let a = d.send_text("42", "x").unwrap();
    let b = d.send_text("42", "y").unwrap();
    d.disconnect(None);
    d.advance(300);
    let m = d.mark();
    d.feed(&result_ok(&a, "m-a"));
    assert!(d.response(&a).is_ok());
    assert!(d.closes_since(m).is_empty(), "b is still pending");
    d.advance(400);
    let m = d.mark();
    d.feed(&result_ok(&b, "m-b"));
    assert!(d.response(&b).is_ok());
    // The last result ends the drain early: closed at 700 ms, not 1500 ms.
    assert_eq!(d.closes_since(m), vec![(1000, "disconnect".to_owned())]);
    assert_eq!(d.state(), GatewayState::Closed);
    assert_eq!(d.ms(), 700);
    assert_eq!(d.gateway().poll_timeout(), None);
    d.assert_all_resolved();
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn drain_grace_numbers() {
    use relay_machine::gateway::drain_grace;
    let ms = |m: u64| Duration::from_millis(m);
    assert_eq!(drain_grace(ms(5_000)), ms(1_500));
    assert_eq!(drain_grace(ms(4_800)), ms(1_300));
    assert_eq!(drain_grace(ms(3_500)), ms(0));
    assert_eq!(drain_grace(ms(1_000)), ms(0));
    assert_eq!(drain_grace(ms(10_000)), ms(5_000));

    // And the machine uses it: a 10 s budget waits 5 s.
    let mut d = Driver::open(config1());
    d.send_text("42", "x").unwrap();
    d.disconnect(Some(ms(10_000)));
    let (at, _) = d.gateway().next_timer().unwrap();
    assert_eq!(at - d.now, ms(5_000));
}

#[test]
fn sends_that_cannot_be_written_fail_at_once_and_definitely() {
    let config = GatewayConfig {
        max_in_flight: 2,
        ..config1()
    };
    let mut d = Driver::new(config);
    let not_connected = Err(SendError::NotConnected);
    assert_eq!(d.send_text("42", "before connect"), not_connected);
    d.connect().unwrap();
    assert_eq!(d.send_text("42", "while dialing"), not_connected);
    d.connected();
    d.feed(&descriptor("telegram"));

    let a = d.send_text("42", "a").unwrap();
    let _b = d.send_text("42", "b").unwrap();
    let m = d.mark();
    assert_eq!(
        d.send_text("42", "c"),
        Err(SendError::InFlightLimit { limit: 2 })
    );
    assert!(d.frames_since(m).is_empty(), "nothing written");
    d.feed(&result_ok(&a, "m-a"));
    let _c = d.send_text("42", "c again").unwrap();

    d.dropped();
    assert_eq!(d.state(), GatewayState::Waiting);
    let m = d.mark();
    assert_eq!(d.send_text("42", "while backing off"), not_connected);
    assert!(d.frames_since(m).is_empty());
    assert_eq!(d.gateway().in_flight(), 0);

    d.fire();
    d.connected();
    d.feed(&descriptor("telegram"));
    let _d = d.send_text("42", "d").unwrap();
    d.disconnect(None);
    assert_eq!(d.send_text("42", "while closing"), Err(SendError::Closing));
    d.advance(1_500);
    assert_eq!(d.send_text("42", "after close"), Err(SendError::Closed));
    assert_eq!(d.connect(), Err(SendError::Closed));

    d.assert_all_resolved();
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn sends_after_revocation_fail_revoked() {
    let mut d = Driver::open(config1());
    d.advance(1_000);
    d.closed(4401, "unauthorized"); // first strike: fresh-token dial at once
    d.connected();
    d.feed(&descriptor("telegram"));
    let a = d.send_text("42", "in flight at revocation").unwrap();
    d.advance(5_000);
    d.closed(4401, "unauthorized"); // second strike
    assert_eq!(d.state(), GatewayState::Revoked);
    assert_eq!(d.response(&a), Err(RequestFailure::ConnectionLost));
    let m = d.mark();
    assert_eq!(d.send_text("42", "x"), Err(SendError::Revoked));
    assert_eq!(d.go_idle(), Err(SendError::Revoked));
    assert_eq!(
        d.cmd("interrupt", |g, now| g.interrupt(
            now,
            "agent:main:telegram:dm:42",
            None
        )),
        Err(SendError::Revoked)
    );
    assert!(d.frames_since(m).is_empty());
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn interrupts_go_out_and_come_in() {
    let mut d = Driver::open(config1());
    let m = d.mark();
    d.cmd("interrupt", |g, now| {
        g.interrupt(now, "agent:main:discord:group:4455:77", None)
    })
    .unwrap();
    assert_eq!(
        d.frames_since(m),
        vec![
            json!({"type": "interrupt", "session_key": "agent:main:discord:group:4455:77", "reason": null})
        ]
    );
    let m = d.mark();
    d.feed(
        r#"{"type": "interrupt_inbound", "session_key": "agent:main:discord:group:4455:77", "chat_id": "4455"}"#,
    );
    assert_eq!(
        d.events_since(m),
        vec![GatewayEvent::Interrupt {
            session_key: "agent:main:discord:group:4455:77".into(),
            chat_id: "4455".into()
        }]
    );
    // Like any command, an interrupt without a socket fails instead of raising (§11.2 16).
    d.dropped();
    assert_eq!(
        d.cmd("interrupt", |g, now| g.interrupt(now, "k", Some("stop"))),
        Err(SendError::NotConnected)
    );
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn a_connection_dropped_mid_request_fails_it_as_ambiguous_and_reconnects() {
    let mut pair = linked::pair();
    pair.app.auto_respond = false;
    let id = linked::send(&mut pair, "c1");
    pair.drive_until_idle().unwrap();
    assert_eq!(pair.connection().unwrap().in_flight(), 1);
    pair.drop_connection();
    pair.drive_until_idle().unwrap();
    let resolved = linked::responses(&pair);
    assert_eq!(resolved, vec![(id, false, true)]);
    assert_eq!(pair.gateway.state(), GatewayState::Waiting);
    // Reconnects after the first backoff step (at most 1 s) and handshakes again.
    pair.app.auto_respond = true;
    pair.advance(Duration::from_secs(1)).unwrap();
    assert_eq!(pair.gateway.state(), GatewayState::Open);
    let handshakes = pair
        .gateway_events
        .iter()
        .filter(|e| matches!(e, GatewayEvent::HandshakeComplete { .. }))
        .count();
    assert_eq!(handshakes, 2);
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Scenario: a dead link is found and replaced. Keepalive pings and the liveness timeout,
//! the dial timeout and the close wait (the reference gets these from its WebSocket
//! library, protocol.md §1.4; here they are the machine's policy).

use std::time::Duration;

use relay_machine::gateway::{
    ConnectionCommand, DialPurpose, GatewayConfig, GatewayEvent, GatewayState, Identity,
    RequestFailure,
};

use crate::driver::*;

/// The defaults: a Ping every 30 s, given up after 60 s of silence, dials and closes bounded
/// at 10 s, a failed first dial retried.
fn live() -> GatewayConfig {
    GatewayConfig {
        identities: vec![Identity::new("telegram", "701")],
        ..GatewayConfig::default()
    }
}

fn commands(d: &Driver, mark: usize) -> Vec<ConnectionCommand> {
    d.commands_since(mark)
}

#[test]
fn a_link_that_goes_silent_mid_request_is_aborted_at_60s_and_replaced() {
    let mut d = Driver::open_seeded(live(), SEED);
    let id = d.send_text("42", "into the void").unwrap();
    let m = d.mark();
    d.advance(30_000);
    assert_eq!(commands(&d, m), [ConnectionCommand::Ping]);
    // No Pong, no byte: at 60 s the link is dead.
    d.advance(30_000);
    assert!(
        commands(&d, m).contains(&ConnectionCommand::Abort),
        "{:?}",
        commands(&d, m)
    );
    // The request timed out at 30 s already (ambiguous); the connection is replaced.
    assert_eq!(d.response(&id), Err(RequestFailure::Timeout));
    let events = d.events_since(m);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, GatewayEvent::Disconnected { code: None, .. }))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, GatewayEvent::Reconnecting { .. }))
    );
    assert_eq!(d.state(), GatewayState::Waiting);
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn a_request_in_flight_when_the_link_dies_resolves_as_ambiguous() {
    let config = GatewayConfig {
        request_timeout: Duration::from_secs(120),
        ..live()
    };
    let mut d = Driver::open_seeded(config, SEED);
    let id = d.send_text("42", "slow").unwrap();
    d.advance(60_000);
    let failure = d.response(&id).unwrap_err();
    assert_eq!(failure, RequestFailure::ConnectionLost);
    assert!(failure.is_ambiguous());
}

#[test]
fn pongs_and_bytes_keep_an_idle_link_alive_until_it_goes_silent() {
    let mut d = Driver::open_seeded(live(), SEED);
    let m = d.mark();
    for _ in 0..3 {
        d.advance(30_000);
        d.pong();
    }
    // Any byte counts too.
    d.advance(10_000);
    d.feed(r#"{"type":"interrupt_inbound","session_key":"s","chat_id":"42"}"#);
    assert!(!commands(&d, m).contains(&ConnectionCommand::Abort));
    assert_eq!(d.state(), GatewayState::Open);
    // Then silence: aborted 60 s after the last sign of life.
    let before = d.ms();
    d.advance(59_999);
    assert!(!commands(&d, m).contains(&ConnectionCommand::Abort));
    d.advance(1);
    assert!(commands(&d, m).contains(&ConnectionCommand::Abort));
    assert_eq!(d.ms() - before, 60_000);
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn a_dial_that_never_answers_is_abandoned_at_10s_and_retried() {
    let mut d = Driver::seeded(live(), SEED);
    d.connect().unwrap();
    let m = d.mark();
    d.advance(10_000);
    assert_eq!(commands(&d, m)[0], ConnectionCommand::Abort);
    let waits = d.waits_since(m);
    assert_eq!(waits.len(), 1, "the first dial is retried on the ladder");
    assert_eq!(waits[0].1, DialPurpose::Backoff);
    // The abandoned dial's socket opens after all: ignored.
    d.connected_late(1);
    assert_eq!(d.state(), GatewayState::Waiting);
    d.advance(waits[0].0);
    let dials = d.dials_since(m);
    assert_eq!(dials.len(), 1);
    assert_eq!(dials[0].1, 2, "a new generation");
    d.connected();
    d.feed(&descriptor("telegram"));
    assert_eq!(d.state(), GatewayState::Open);
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn the_reference_first_dial_fails_fast_when_asked() {
    let config = GatewayConfig {
        retry_first_dial: false,
        ..live()
    };
    let mut d = Driver::seeded(config, SEED);
    d.connect().unwrap();
    let m = d.mark();
    d.advance(10_000);
    assert!(
        d.events_since(m)
            .iter()
            .any(|e| matches!(e, GatewayEvent::ConnectFailed(_)))
    );
    assert_eq!(d.state(), GatewayState::Idle);
}

#[test]
fn disconnect_waits_for_the_socket_to_close_then_ends() {
    let mut d = Driver::open_seeded(live(), SEED);
    let m = d.mark();
    d.disconnect(None);
    assert!(matches!(
        commands(&d, m).as_slice(),
        [ConnectionCommand::Close { .. }]
    ));
    assert!(
        !d.events_since(m).contains(&GatewayEvent::Closed),
        "the terminal event waits for the socket's end"
    );
    d.closed(1000, "disconnect");
    assert_eq!(d.events_since(m).last(), Some(&GatewayEvent::Closed));
    assert_eq!(d.gateway().poll_timeout(), None);
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn a_socket_that_never_closes_is_aborted_at_the_close_timeout() {
    let mut d = Driver::open_seeded(live(), SEED);
    let m = d.mark();
    d.disconnect(None);
    d.advance(10_000);
    let commands = commands(&d, m);
    assert!(matches!(
        commands.as_slice(),
        [ConnectionCommand::Close { .. }, ConnectionCommand::Abort]
    ));
    assert_eq!(d.events_since(m).last(), Some(&GatewayEvent::Closed));
    assert_eq!(d.state(), GatewayState::Closed);
    insta::assert_snapshot!(d.transcript());
}

/// The pair seat's clock: each step goes to the earlier deadline of the two sides (or the
/// next message due), never past it.
#[test]
fn a_pair_steps_to_the_earlier_deadline_of_the_two_sides() {
    let mut pair = crate::linked::pair();
    for _ in 0..20 {
        let gateway = pair.gateway.poll_timeout();
        let connector = pair.instance.poll_timeout();
        let due = pair.next_due().unwrap();
        assert_eq!(
            Some(due),
            [gateway, connector].into_iter().flatten().min(),
            "nothing on the wire between steps"
        );
        assert!(pair.step().unwrap());
        assert_eq!(pair.now, due);
    }
    assert_eq!(
        pair.gateway.state(),
        GatewayState::Open,
        "keepalive kept it open"
    );
}

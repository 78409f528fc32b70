#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Scenario 8: the rows of protocol.md §7.6 (with the §7.3 transitions), named after their
//! numbers. Rows 13–17 are in `idle.rs`; the ladder numbers are in `backoff.rs`.

use std::time::Duration;

use relay_machine::gateway::{
    ConnectFailure, ConnectionCommand, DialPurpose, GatewayConfig, GatewayEvent, GatewayState,
    RequestFailure, SendError,
};

use crate::driver::*;

fn revoked(d: &Driver, m: usize) -> bool {
    d.events_since(m)
        .iter()
        .any(|e| matches!(e, GatewayEvent::Revoked { .. }))
}

/// Nothing at all happens for a long time, whatever the driver reports.
fn assert_inert(d: &mut Driver) {
    let m = d.mark();
    d.advance(3_600_000);
    d.connected();
    d.dropped();
    d.dial_failed("late");
    assert!(d.dials_since(m).is_empty());
    assert_eq!(d.gateway().poll_timeout(), None);
}

#[test]
fn row01_connect_from_idle_dials_initial() {
    let mut d = Driver::new(config1());
    assert_eq!(d.gateway().generation(), 0);
    d.connect().unwrap();
    assert_eq!(d.dials_since(0), vec![(0, 1, DialPurpose::Initial)]);
    assert_eq!(d.gateway().generation(), 1);
    // Connecting again while a dial is in progress asks for nothing more.
    let m = d.mark();
    d.connect().unwrap();
    assert!(d.since(m).is_empty());
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn row02_row03_upgrade_accepted_writes_hellos_and_accepts_requests() {
    let mut d = Driver::new(config3());
    d.connect().unwrap();
    let m = d.mark();
    d.connected();
    assert_eq!(d.frames_of(m, "hello").len(), 3);
    assert_eq!(d.state(), GatewayState::AwaitingDescriptor);
    let (at, _) = d.gateway().next_timer().unwrap();
    assert_eq!(at - d.now, Duration::from_secs(30));
    // A report for a socket that was not asked for changes nothing.
    let m = d.mark();
    d.connected();
    assert!(d.since(m).is_empty());
    // Requests are accepted as soon as the socket is installed (protocol.md §6.3).
    let id = d.send_text("42", "early").unwrap();
    d.feed(&descriptor("telegram"));
    d.feed(&result_ok(&id, "m-1"));
    assert!(d.response(&id).is_ok());
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn row04_socket_dies_while_the_hellos_go_out() {
    // Initial dial: reported to the caller, no retry.
    let mut d = Driver::new(config1());
    d.connect().unwrap();
    d.connected();
    let m = d.mark();
    d.dropped();
    assert!(
        d.events_since(m)
            .contains(&GatewayEvent::ConnectFailed(ConnectFailure::Closed {
                code: None,
                reason: "connection reset".into()
            }))
    );
    assert_eq!(d.state(), GatewayState::Idle);
    assert!(d.dials_since(m).is_empty());

    // A re-dial: the supervisor tries again with the next backoff step.
    d.connect().unwrap();
    d.connected();
    d.feed(&descriptor("telegram"));
    d.dropped();
    d.fire();
    d.connected();
    let m = d.mark();
    d.closed(1011, "keepalive ping timeout");
    assert_eq!(d.state(), GatewayState::Waiting);
    let waits = d.waits_since(m);
    assert_eq!(waits.len(), 1);
    assert!(
        (1_000..=2_000).contains(&waits[0].0),
        "second step: {waits:?}"
    );
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn row05_descriptor_opens_every_connection() {
    let mut d = Driver::open(config1());
    d.dropped();
    d.fire();
    d.connected();
    assert_eq!(d.state(), GatewayState::AwaitingDescriptor);
    assert!(
        d.gateway().default_descriptor().is_none(),
        "cleared for the new connection"
    );
    let m = d.mark();
    d.feed(&descriptor("telegram"));
    assert_eq!(
        d.events_since(m)[0],
        GatewayEvent::HandshakeComplete {
            platform: "telegram".into()
        }
    );
    assert_eq!(d.state(), GatewayState::Open);
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn row06_initial_dial_failure_surfaces_and_goes_idle() {
    let mut d = Driver::new(config1());
    d.connect().unwrap();
    d.advance(10_000);
    let m = d.mark();
    d.dial_failed("connection refused");
    assert_eq!(
        d.events_since(m),
        vec![GatewayEvent::ConnectFailed(ConnectFailure::Dial(
            "connection refused".into()
        ))]
    );
    assert_eq!(d.state(), GatewayState::Idle);
    let m = d.mark();
    d.advance(120_000);
    assert!(d.since(m).is_empty(), "the first connect is not retried");
    insta::assert_snapshot!(d.transcript());
}

/// Open, then a first strike: a non-expired 4401 after a successful handshake.
fn first_strike(d: &mut Driver) -> usize {
    d.advance(5_000);
    d.note("first strike: 4401 after a successful handshake");
    let m = d.mark();
    d.closed(4401, "unauthorized");
    m
}

#[test]
fn row07_backoff_dial_refused_while_the_marker_is_set_revokes() {
    let mut d = Driver::open(config1());
    first_strike(&mut d);
    d.dial_failed("network unreachable"); // the fresh-token dial never reached the connector
    d.fire();
    let m = d.mark();
    // The backoff dial carries the marker: the connector accepts and closes with 4401.
    d.connected();
    d.closed(4401, "unauthorized");
    assert!(revoked(&d, m));
    assert_eq!(d.state(), GatewayState::Revoked);
    assert!(d.dials_since(m).is_empty());
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn row07b_expired_while_the_marker_is_set_consumes_it() {
    let mut d = Driver::open(config1());
    first_strike(&mut d);
    d.dial_failed("network unreachable");
    d.fire();
    d.connected();
    let m = d.mark();
    d.closed(4401, "expired");
    assert!(!revoked(&d, m));
    assert_eq!(d.state(), GatewayState::Waiting);
    assert_eq!(d.waits_since(m).len(), 1);
    assert_eq!(d.waits_since(m)[0].1, DialPurpose::Backoff);

    // The marker is gone: the next connection is an ordinary one, so a 4401 on it is a
    // new first strike (fresh-token dial), not a revocation.
    d.fire();
    d.connected();
    d.feed(&descriptor("telegram"));
    let m = first_strike(&mut d);
    assert!(!revoked(&d, m));
    assert_eq!(d.dials_since(m).last().unwrap().2, DialPurpose::FreshToken);
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn row07c_other_dial_failures_climb_the_ladder() {
    let mut d = Driver::open(config1());
    let m = d.mark();
    d.dropped();
    for _ in 0..3 {
        d.fire();
        d.dial_failed("connection refused");
    }
    let waits: Vec<u64> = d.waits_since(m).iter().map(|w| w.0).collect();
    assert_eq!(waits.len(), 4);
    for (wait, ceiling) in waits.iter().zip([1_000, 2_000, 4_000, 8_000]) {
        assert!((ceiling / 2..=ceiling).contains(wait), "{waits:?}");
    }
    assert_eq!(d.state(), GatewayState::Waiting);
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn row08_fresh_token_refused_revokes() {
    let mut d = Driver::open(config1());
    let m = first_strike(&mut d);
    assert_eq!(d.dials_since(m), vec![(d.ms(), 2, DialPurpose::FreshToken)]);
    d.connected();
    let m = d.mark();
    d.closed(4401, "unauthorized");
    assert!(revoked(&d, m));
    assert_eq!(d.state(), GatewayState::Revoked);
    assert_inert(&mut d);
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn row08b_fresh_token_network_failure_keeps_the_marker() {
    let mut d = Driver::open(config1());
    first_strike(&mut d);
    let m = d.mark();
    d.dial_failed("network unreachable");
    // Handed to the supervisor: an ordinary backoff wait.
    assert_eq!(d.waits_since(m).len(), 1);
    assert_eq!(d.waits_since(m)[0].1, DialPurpose::Backoff);
    d.fire();
    d.dial_failed("network unreachable"); // still down: the marker survives this too
    d.fire();
    assert_eq!(d.dials_since(m).last().unwrap().2, DialPurpose::Backoff);
    d.connected();
    d.feed(&descriptor("telegram"));
    // This backoff connection is the retry generation: a 4401 much later on it revokes.
    d.advance(600_000);
    let m = d.mark();
    d.closed(4401, "unauthorized");
    assert!(revoked(&d, m));
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn row09_row10_two_strikes_revoke() {
    let mut d = Driver::open(config1());
    let gen_before = d.gateway().generation();
    let m = first_strike(&mut d);
    // First strike: re-dial at once with a fresh token, no backoff wait.
    assert_eq!(
        d.dials_since(m),
        vec![(d.ms(), gen_before + 1, DialPurpose::FreshToken)]
    );
    assert_eq!(d.waits_since(m), vec![(0, DialPurpose::FreshToken)]);
    assert!(!revoked(&d, m));
    d.advance(150);
    d.connected();
    d.feed(&descriptor("telegram"));

    // Ten minutes later the same connection gets a non-expired 4401: second strike.
    d.advance(600_000);
    let pending = d.send_text("42", "x").unwrap();
    d.advance(20);
    d.note("second strike: 4401 on the fresh-token connection");
    let m = d.mark();
    d.closed(4401, "revoked");
    assert_eq!(
        d.events_since(m).last().unwrap(),
        &GatewayEvent::Revoked {
            reason: "revoked".into()
        }
    );
    assert_eq!(d.response(&pending), Err(RequestFailure::ConnectionLost));
    assert_eq!(d.state(), GatewayState::Revoked);
    assert_eq!(d.send_text("42", "y"), Err(SendError::Revoked));
    assert_eq!(d.connect(), Err(SendError::Revoked));
    assert_inert(&mut d);
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn row10_a_4401_on_a_later_generation_is_a_new_first_strike() {
    let mut d = Driver::open(config1());
    first_strike(&mut d);
    d.connected();
    d.feed(&descriptor("telegram"));
    // The fresh-token connection ends normally; the next one is ordinary.
    d.advance(1_000);
    d.dropped();
    d.fire();
    d.connected();
    d.feed(&descriptor("telegram"));
    let m = first_strike(&mut d);
    assert!(!revoked(&d, m));
    assert_eq!(d.dials_since(m).len(), 1);
    assert_eq!(d.dials_since(m)[0].2, DialPurpose::FreshToken);
    assert_eq!(d.dials_since(m)[0].0, d.ms());
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn row11_other_ends_reconnect_with_backoff_and_expired_never_revokes() {
    let mut d = Driver::open(config1());
    let ends: [Option<(u16, &str)>; 7] = [
        Some((1000, "bye")),
        Some((1001, "going away")),
        None,
        Some((1011, "keepalive ping timeout")),
        Some((4401, "expired")),
        Some((4401, "expired")),
        Some((4401, "expired")),
    ];
    for end in ends {
        let m = d.mark();
        match end {
            Some((code, reason)) => d.closed(code, reason),
            None => d.dropped(),
        }
        assert_eq!(d.state(), GatewayState::Waiting, "{end:?}");
        let waits = d.waits_since(m);
        assert_eq!(waits.len(), 1);
        assert_eq!(waits[0].1, DialPurpose::Backoff);
        assert!(!revoked(&d, m));
        d.fire();
        assert_eq!(d.dials_since(m).last().unwrap().2, DialPurpose::Backoff);
        d.connected();
        d.feed(&descriptor("telegram"));
        d.advance(70_000); // stable: keeps the waits short
    }
    // Even on the fresh-token connection, "expired" is no strike.
    first_strike(&mut d);
    d.connected();
    d.feed(&descriptor("telegram"));
    let m = d.mark();
    d.closed(4401, "expired");
    assert!(!revoked(&d, m));
    assert_eq!(d.state(), GatewayState::Waiting);
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn row12_reconnect_off_goes_idle_after_a_drop() {
    let config = GatewayConfig {
        reconnect: false,
        ..config1()
    };
    let mut d = Driver::open(config);
    let id = d.send_text("42", "x").unwrap();
    let m = d.mark();
    d.dropped();
    assert_eq!(d.response(&id), Err(RequestFailure::ConnectionLost));
    assert_eq!(d.state(), GatewayState::Idle);
    assert_eq!(d.gateway().poll_timeout(), None);
    assert_eq!(d.send_text("42", "y"), Err(SendError::NotConnected));
    d.advance(600_000);
    assert!(d.dials_since(m).is_empty());
    insta::assert_snapshot!(d.transcript());
}

/// (`Closing` itself is the drain of row 18; see `requests.rs`.)
#[test]
fn row18_disconnect_from_every_non_terminal_state() {
    let mut all = String::new();
    type Setup = fn(&mut Driver);
    let cases: [(&str, GatewayState, Setup); 6] = [
        ("idle", GatewayState::Idle, |_| {}),
        ("dialing", GatewayState::Dialing, |d| {
            d.connect().unwrap();
        }),
        (
            "awaiting descriptor",
            GatewayState::AwaitingDescriptor,
            |d| {
                d.connect().unwrap();
                d.connected();
            },
        ),
        ("open", GatewayState::Open, |d| {
            d.connect().unwrap();
            d.connected();
            d.feed(&descriptor("telegram"));
        }),
        ("waiting", GatewayState::Waiting, |d| {
            d.connect().unwrap();
            d.connected();
            d.feed(&descriptor("telegram"));
            d.dropped();
        }),
        ("held", GatewayState::Held, |d| {
            d.connect().unwrap();
            d.connected();
            d.feed(&descriptor("telegram"));
            d.hold_redial();
            d.dropped();
            d.fire();
        }),
    ];
    for (name, state, setup) in cases {
        let mut d = Driver::new(config1());
        setup(&mut d);
        assert_eq!(d.state(), state, "{name}");
        d.advance(100);
        let m = d.mark();
        d.disconnect(Some(Duration::ZERO));
        assert_eq!(d.state(), GatewayState::Closed, "{name}");
        assert_eq!(
            d.events_since(m).last(),
            Some(&GatewayEvent::Closed),
            "{name}"
        );
        // A close is asked for exactly when a socket is (or may be) open.
        let socket = matches!(
            state,
            GatewayState::Dialing | GatewayState::AwaitingDescriptor | GatewayState::Open
        );
        assert_eq!(
            d.closes_since(m),
            if socket {
                vec![(1000, "disconnect".to_owned())]
            } else {
                vec![]
            },
            "{name}"
        );
        assert_inert(&mut d);
        assert_eq!(d.state(), GatewayState::Closed);
        all.push_str(&format!("## from {name}\n{}\n", d.transcript()));
    }
    insta::assert_snapshot!(all);
}

#[test]
fn row19_revoked_is_terminal() {
    let mut d = Driver::open(config1());
    first_strike(&mut d);
    d.connected();
    d.closed(4401, "unauthorized");
    assert_eq!(d.state(), GatewayState::Revoked);
    let m = d.mark();
    d.disconnect(None);
    d.hold_redial();
    d.release_redial();
    assert_eq!(d.go_dormant(), Err(SendError::Revoked));
    assert_inert(&mut d);
    assert_eq!(d.state(), GatewayState::Revoked);
    assert!(
        !d.commands_since(m)
            .iter()
            .any(|c| matches!(c, ConnectionCommand::Dial { .. }))
    );
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn row11_handshake_timeout_on_a_redial_closes_and_backs_off() {
    let mut d = Driver::open(config1());
    d.dropped();
    d.fire();
    d.connected();
    let m = d.mark();
    d.advance(30_000);
    // Not a failed connect (that is only for the first connection): close and re-dial.
    assert_eq!(
        d.closes_since(m),
        vec![(1000, "handshake timeout".to_owned())]
    );
    assert!(
        !d.events_since(m)
            .iter()
            .any(|e| matches!(e, GatewayEvent::ConnectFailed(_)))
    );
    assert_eq!(d.state(), GatewayState::Waiting);
    let waits = d.waits_since(m);
    assert_eq!(waits.len(), 1);
    assert!((1_000..=2_000).contains(&waits[0].0), "{waits:?}");
    insta::assert_snapshot!(d.transcript());
}

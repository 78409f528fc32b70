//! Edge cases of the gateway's connection handling found in review: a 4401 refusing a dial,
//! frames that share a message with a dormant ack, descriptors outliving their connection.
// The pair harness needs the `testing` feature. The repository's self dev-dependency
// turns it on for `cargo test`, and tests/features.rs fails there should it ever be off;
// the published package runs these with `--features testing`.
#![cfg(feature = "testing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use relay_machine::gateway::{
    ConnectFailure, ConnectionCommand, DialPurpose, GatewayConfig, GatewayEvent, GatewayState,
    Identity, RelayMachine,
};
use relay_machine::testing::{Split, split_gateway};
use relay_machine::wire::SendAction;

const DESCRIPTOR: &str = r#"{"type":"descriptor","descriptor":{"contract_version":1,"platform":"discord","label":"Discord","max_message_length":2000,"supports_draft_streaming":false,"supports_edit":true,"supports_threads":true,"markdown_dialect":"discord","len_unit":"utf16"}}
"#;

fn machine() -> RelayMachine {
    let config = GatewayConfig {
        identities: vec![Identity::new("discord", "1")],
        ..GatewayConfig::default()
    };
    RelayMachine::new(config, 0).unwrap()
}

/// Takes every output: one drain serves all the assertions about an input.
fn drain(gw: &mut RelayMachine) -> Split<ConnectionCommand, GatewayEvent> {
    split_gateway(gw)
}

/// Connected and handshaken at `now`.
fn open(gw: &mut RelayMachine, now: Instant) {
    gw.on_connected(now, gw.generation());
    gw.handle_input(now, DESCRIPTOR.as_bytes());
    drain(gw);
    assert_eq!(gw.state(), GatewayState::Open);
}

#[test]
fn a_4401_refusing_the_first_dial_is_reported_as_unauthorized() {
    let mut gw = machine();
    let now = Instant::now();
    gw.connect(now).unwrap();
    drain(&mut gw);
    gw.on_closed(now, Some(4401), "unauthorized");
    let events = drain(&mut gw).events;
    assert_eq!(
        events,
        [GatewayEvent::ConnectFailed(ConnectFailure::Unauthorized {
            reason: "unauthorized".into()
        })]
    );
    assert_eq!(gw.state(), GatewayState::Idle);
}

/// First strike on an open connection, then the fresh-token dial itself is refused with a
/// 4401: revoked (§7.3, row 8), not another backoff.
#[test]
fn a_refused_fresh_token_dial_revokes() {
    let mut gw = machine();
    let now = Instant::now();
    gw.connect(now).unwrap();
    drain(&mut gw);
    open(&mut gw, now);
    gw.on_closed(now, Some(4401), "unauthorized");
    let commands = drain(&mut gw).commands;
    assert!(matches!(
        commands.as_slice(),
        [ConnectionCommand::Dial {
            purpose: DialPurpose::FreshToken,
            ..
        }]
    ));
    gw.on_closed(now, Some(4401), "unauthorized");
    let Split {
        commands, events, ..
    } = drain(&mut gw);
    assert!(commands.is_empty());
    assert!(matches!(events.last(), Some(GatewayEvent::Revoked { .. })));
    assert_eq!(gw.state(), GatewayState::Revoked);
}

/// The same, but the refusal says only the token was stale: the marker is spent, no
/// revocation, back to backoff (row 7b/8); and a later refusal is a first strike again.
#[test]
fn an_expired_refusal_of_the_fresh_token_dial_only_spends_the_marker() {
    let mut gw = machine();
    let now = Instant::now();
    gw.connect(now).unwrap();
    drain(&mut gw);
    open(&mut gw, now);
    gw.on_closed(now, Some(4401), "unauthorized");
    drain(&mut gw);
    gw.on_closed(now, Some(4401), "expired");
    drain(&mut gw);
    assert_eq!(gw.state(), GatewayState::Waiting);
    let later = gw.poll_timeout().unwrap();
    gw.handle_timeout(later);
    let commands = drain(&mut gw).commands;
    assert!(matches!(
        commands.as_slice(),
        [ConnectionCommand::Dial {
            purpose: DialPurpose::Backoff,
            ..
        }]
    ));
    open(&mut gw, later);
    // The backoff connection is not the retry generation: this is a new first strike.
    gw.on_closed(later, Some(4401), "unauthorized");
    let commands = drain(&mut gw).commands;
    assert!(matches!(
        commands.as_slice(),
        [ConnectionCommand::Dial {
            purpose: DialPurpose::FreshToken,
            ..
        }]
    ));
}

/// A result the connector wrote before its dormant ack, in the same message, resolves its
/// request instead of being failed as lost.
#[test]
fn frames_before_a_dormant_ack_in_the_same_message_are_processed() {
    let mut gw = machine();
    let now = Instant::now();
    gw.connect(now).unwrap();
    drain(&mut gw);
    open(&mut gw, now);
    let id = gw.send(now, SendAction::default(), None).unwrap();
    gw.go_dormant(now).unwrap();
    drain(&mut gw);
    let message = format!(
        "{{\"type\":\"going_idle_ack\"}}\n{{\"type\":\"outbound_result\",\"requestId\":\"{id}\",\"result\":{{\"success\":true}}}}\n"
    );
    gw.handle_input(now, message.as_bytes());
    let Split {
        commands, events, ..
    } = drain(&mut gw);
    let response = events.iter().find_map(|e| match e {
        GatewayEvent::Response { id: rid, result } if *rid == id => Some(result.clone()),
        _ => None,
    });
    assert!(response.unwrap().unwrap().success);
    assert!(events.contains(&GatewayEvent::GoingIdle {
        acked: true,
        dormant: true
    }));
    assert!(matches!(
        commands.as_slice(),
        [ConnectionCommand::Close { .. }]
    ));
    assert!(gw.is_dormant());
    assert_eq!(gw.state(), GatewayState::Waiting);
    // The redial waits for the socket being closed to end (the close timeout bounds it).
    assert_eq!(gw.poll_timeout(), Some(now + Duration::from_secs(10)));
    gw.on_closed(now, Some(1000), "dormant");
    drain(&mut gw);
    // The dormant cadence: one second, not the ladder.
    assert_eq!(gw.poll_timeout(), Some(now + Duration::from_secs(1)));
}

#[test]
fn descriptors_do_not_outlive_their_connection() {
    let mut gw = machine();
    let now = Instant::now();
    gw.connect(now).unwrap();
    drain(&mut gw);
    open(&mut gw, now);
    assert!(gw.default_descriptor().is_some());
    gw.on_closed(now, Some(1001), "going away");
    assert!(gw.default_descriptor().is_none());
    assert!(gw.descriptor("discord").is_none());
    assert!(gw.chat_descriptor("any").is_none());
}

/// A reply to a chat on a platform this socket never announced is not tagged with it (the
/// connector would have to refuse the tag); the tenant metadata still rides along.
#[test]
fn a_chat_on_an_unannounced_platform_is_not_tagged_with_it() {
    let mut gw = machine();
    let now = Instant::now();
    gw.connect(now).unwrap();
    drain(&mut gw);
    open(&mut gw, now);
    gw.handle_input(
        now,
        br#"{"type":"inbound","event":{"source":{"platform":"slack","chat_id":"C1","chat_type":"group","scope_id":"T1","user_id":"U1"}}}
"#,
    );
    drain(&mut gw);
    gw.send(
        now,
        SendAction {
            chat_id: "C1".into(),
            ..SendAction::default()
        },
        None,
    )
    .unwrap();
    let frames = drain(&mut gw).frames();
    let [frame] = frames.as_slice() else {
        panic!("one outbound expected: {frames:?}")
    };
    assert!(frame.get("platform").is_none(), "{frame}");
    assert!(frame.get("botId").is_none(), "{frame}");
    assert_eq!(frame["action"]["metadata"]["scope_id"], "T1");
    assert_eq!(frame["action"]["metadata"]["user_id"], "U1");
}

/// A duration that could overflow `Instant` when added to `now` is refused up front.
#[test]
fn absurd_durations_are_refused_not_panicked_on() {
    use relay_machine::gateway::{ConfigError, MAX_DURATION};
    let config = GatewayConfig {
        request_timeout: Duration::MAX,
        ..GatewayConfig::default()
    };
    assert_eq!(
        RelayMachine::new(config, 0).unwrap_err(),
        ConfigError::TooLong("request_timeout")
    );
    let mut config = GatewayConfig::default();
    config.backoff.hold_cap = MAX_DURATION;
    assert!(
        RelayMachine::new(config, 0).is_ok(),
        "the bound itself is accepted"
    );
}

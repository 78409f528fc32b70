#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Scenario 1: the handshake (protocol.md §2.3, §2.4, §6.2; design.md §4 item 14).

use relay_machine::gateway::{
    ConnectFailure, ConnectionCommand, Diagnostic, DialPurpose, GatewayEvent, GatewayState,
    SendError,
};
use serde_json::json;

use crate::driver::*;

#[test]
fn three_identities_hello_in_order_and_first_descriptor_completes() {
    let mut d = Driver::new(config3());
    assert_eq!(d.state(), GatewayState::Idle);
    d.connect().unwrap();
    assert_eq!(d.dials_since(0), vec![(0, 1, DialPurpose::Initial)]);
    assert_eq!(d.state(), GatewayState::Dialing);

    d.advance(120);
    let m = d.mark();
    d.connected();
    // One hello per identity, in configured order, back to back, exactly as configured;
    // only the discord hello carries the command manifest.
    assert_eq!(
        d.frames_since(m),
        vec![
            json!({"type": "hello", "platform": "telegram", "botId": "701"}),
            json!({"type": "hello", "platform": "discord", "botId": "1122334455",
            "command_manifest": [
                {"name": "ping", "description": "Check liveness"},
                {"name": "topic", "description": "Set topic", "options": [
                    {"type": 3, "name": "text", "description": "New topic", "required": false}
                ]}
            ]}),
            json!({"type": "hello", "platform": "slack", "botId": ""}),
        ]
    );
    assert_eq!(d.state(), GatewayState::AwaitingDescriptor);
    assert!(d.events_since(m).is_empty());
    assert!(d.gateway().default_descriptor().is_none());

    d.advance(80);
    let m = d.mark();
    d.feed(&descriptor("telegram"));
    let events = d.events_since(m);
    assert_eq!(
        events[0],
        GatewayEvent::HandshakeComplete {
            platform: "telegram".into()
        }
    );
    assert!(matches!(&events[1], GatewayEvent::Descriptor(x) if x.platform == "telegram"));
    assert_eq!(events.len(), 2);
    assert_eq!(d.state(), GatewayState::Open);
    // The handshake timer is gone.
    assert_eq!(d.gateway().poll_timeout(), None);

    let m = d.mark();
    d.feed(&descriptor("discord"));
    d.feed(&descriptor("slack"));
    // Later descriptors complete nothing more.
    let events = d.events_since(m);
    assert_eq!(events.len(), 2);
    assert!(
        events
            .iter()
            .all(|e| matches!(e, GatewayEvent::Descriptor(_)))
    );

    let gw = d.gateway();
    assert_eq!(gw.default_descriptor().unwrap().platform, "telegram");
    assert_eq!(gw.descriptor("telegram").unwrap().max_message_length, 4096);
    assert_eq!(gw.descriptor("discord").unwrap().max_message_length, 2000);
    assert_eq!(gw.descriptor("slack").unwrap().max_message_length, 40000);
    assert_eq!(gw.descriptors().count(), 3);
    assert!(gw.descriptor("whatsapp").is_none());

    insta::assert_snapshot!(d.transcript());
}

#[test]
fn default_is_the_first_descriptor_to_arrive_not_the_first_hello() {
    // protocol.md §6.2 step 5: the first descriptor frame becomes the default.
    let mut d = Driver::new(config3());
    d.connect().unwrap();
    d.connected();
    let m = d.mark();
    d.feed(&descriptor("discord"));
    d.feed(&descriptor("telegram"));
    assert_eq!(
        d.events_since(m)[0],
        GatewayEvent::HandshakeComplete {
            platform: "discord".into()
        }
    );
    assert_eq!(
        d.gateway().default_descriptor().unwrap().platform,
        "discord"
    );
    assert_eq!(d.gateway().descriptors().count(), 2);
    assert!(d.gateway().descriptor("slack").is_none());
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn descriptor_for_an_unannounced_platform_is_diagnosed_and_kept() {
    let mut d = Driver::open(config3());
    let m = d.mark();
    d.feed(&descriptor("whatsapp"));
    assert_eq!(
        d.diagnostics_since(m),
        vec![Diagnostic::UnannouncedDescriptor("whatsapp".into())]
    );
    // Kept, but the default does not move and the connection is untouched.
    assert!(d.gateway().descriptor("whatsapp").is_some());
    assert_eq!(
        d.gateway().default_descriptor().unwrap().platform,
        "telegram"
    );
    assert_eq!(d.state(), GatewayState::Open);
    assert!(d.commands_since(m).is_empty());
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn handshake_timeout_on_the_initial_connect_fails_the_connect() {
    let mut d = Driver::new(config3());
    d.connect().unwrap();
    d.connected();
    let m = d.mark();
    d.advance(29_999);
    assert!(d.since(m).is_empty(), "nothing happens before 30 s");
    assert_eq!(d.state(), GatewayState::AwaitingDescriptor);

    d.advance(1);
    assert_eq!(d.ms(), 30_000);
    assert_eq!(
        d.closes_since(m),
        vec![(1000, "handshake timeout".to_owned())]
    );
    assert!(d.events_since(m).contains(&GatewayEvent::ConnectFailed(
        ConnectFailure::HandshakeTimeout
    )));
    // The first connection is not retried by the machine: idle, no dial, no deadline.
    assert!(d.dials_since(m).is_empty());
    assert_eq!(d.state(), GatewayState::Idle);
    assert_eq!(d.gateway().poll_timeout(), None);
    assert_eq!(d.send_text("1", "x"), Err(SendError::NotConnected));

    // A descriptor arriving now is input for no connection.
    let m = d.mark();
    d.feed(&descriptor("telegram"));
    assert!(matches!(
        d.diagnostics_since(m).as_slice(),
        [Diagnostic::InputWhileDisconnected(_)]
    ));
    assert_eq!(d.state(), GatewayState::Idle);

    // The caller may try again: a new initial dial, a new generation.
    d.connect().unwrap();
    assert_eq!(d.dials_since(m), vec![(30_000, 2, DialPurpose::Initial)]);
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn unauthorized_before_the_first_descriptor_fails_at_once() {
    let mut d = Driver::new(config3());
    d.connect().unwrap();
    d.connected();
    d.advance(250);
    let m = d.mark();
    d.closed(4401, "unauthorized");
    // Not after 30 s: right now.
    assert_eq!(
        d.events_since(m),
        vec![
            GatewayEvent::Disconnected {
                code: Some(4401),
                reason: "unauthorized".into()
            },
            GatewayEvent::ConnectFailed(ConnectFailure::Unauthorized {
                reason: "unauthorized".into()
            }),
        ]
    );
    assert_eq!(d.state(), GatewayState::Idle);
    assert_eq!(d.gateway().poll_timeout(), None);
    assert!(d.dials_since(m).is_empty());
    assert!(!d.commands_since(m).contains(&ConnectionCommand::Close {
        code: 1000,
        reason: "handshake timeout".into()
    }));
    // Nothing is due later either.
    let m = d.mark();
    d.advance(60_000);
    assert!(d.since(m).is_empty());

    // "expired" is reported with its reason so the caller can tell the two apart.
    d.connect().unwrap();
    d.connected();
    let m = d.mark();
    d.closed(4401, "expired");
    assert!(d.events_since(m).contains(&GatewayEvent::ConnectFailed(
        ConnectFailure::Unauthorized {
            reason: "expired".into()
        }
    )));
    assert_eq!(d.state(), GatewayState::Idle);
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn descriptors_do_not_outlive_their_connection() {
    let mut d = Driver::open_seeded(discord1(), 0);
    assert!(d.gateway().default_descriptor().is_some());
    d.closed(1001, "going away");
    assert!(d.gateway().default_descriptor().is_none());
    assert!(d.gateway().descriptor("discord").is_none());
    assert!(d.gateway().chat_descriptor("any").is_none());
}

//! A frame that fails validation still resolves the request or delivery it names: nothing
//! waits for a timeout and nothing is redelivered forever.
// The pair harness needs the `testing` feature. The repository's self dev-dependency
// turns it on for `cargo test`, and tests/features.rs fails there should it ever be off;
// the published package runs these with `--features testing`.
#![cfg(feature = "testing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use relay_machine::codec::Salvage;
use relay_machine::connector::{ConnectorConfig, ConnectorMachine, INVALID_ACTION};
use relay_machine::gateway::{
    AckError, ConnectionCommand, Diagnostic, GatewayConfig, GatewayEvent, Identity, Output,
    RelayMachine, RequestFailure,
};
use relay_machine::testing::{split_connector, split_gateway};
use relay_machine::wire::{BufferId, SendAction};

const DESCRIPTOR: &str = r#"{"type":"descriptor","descriptor":{"contract_version":1,"platform":"discord","label":"Discord","max_message_length":2000,"supports_draft_streaming":false,"supports_edit":true,"supports_threads":true,"markdown_dialect":"discord","len_unit":"utf16"}}"#;

fn open_gateway(auto_ack: bool) -> (RelayMachine, Instant) {
    let config = GatewayConfig {
        identities: vec![Identity::new("discord", "1")],
        auto_ack,
        ..GatewayConfig::default()
    };
    let mut gw = RelayMachine::new(config, 0).unwrap();
    let now = Instant::now();
    gw.connect(now).unwrap();
    assert!(matches!(
        gw.poll_output(),
        Some(Output::Command(ConnectionCommand::Dial { .. }))
    ));
    gw.on_connected(now, gw.generation());
    gw.handle_input(now, format!("{DESCRIPTOR}\n").as_bytes());
    let _ = split_gateway(&mut gw);
    (gw, now)
}

#[test]
fn an_undecodable_result_resolves_its_request_at_once_as_ambiguous() {
    let (mut gw, now) = open_gateway(false);
    let id = gw.send(now, SendAction::default(), None).unwrap();
    let line = format!(
        "{{\"type\":\"outbound_result\",\"requestId\":\"{id}\",\"result\":{{\"success\":\"yes\"}}}}\n"
    );
    gw.handle_input(now, line.as_bytes());
    let events = split_gateway(&mut gw).events;
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
    assert_eq!(gw.in_flight(), 0);
    assert!(
        gw.next_timer()
            .is_none_or(|(_, kind)| kind != relay_machine::gateway::TimerKind::Request),
        "no deadline left for the resolved request"
    );
    // The diagnostic still says what was wrong.
    assert!(events.iter().any(|e| matches!(e, GatewayEvent::Diagnostic(Diagnostic::Decode(d)) if d.salvage == Some(Salvage::OutboundResult(id.clone())))));
}

#[test]
fn an_undecodable_result_for_an_unknown_id_changes_nothing() {
    let (mut gw, now) = open_gateway(false);
    let id = gw.send(now, SendAction::default(), None).unwrap();
    gw.handle_input(
        now,
        b"{\"type\":\"outbound_result\",\"requestId\":\"other\",\"result\":[]}\n",
    );
    assert!(
        !split_gateway(&mut gw)
            .events
            .iter()
            .any(|e| matches!(e, GatewayEvent::Response { .. }))
    );
    assert_eq!(gw.in_flight(), 1);
    let _ = id;
}

#[test]
fn an_undecodable_buffered_delivery_can_be_acked_to_drop_it() {
    let (mut gw, now) = open_gateway(false);
    gw.handle_input(
        now,
        b"{\"type\":\"inbound\",\"event\":{\"text\":5},\"bufferId\":\"b-9\"}\n",
    );
    let out = split_gateway(&mut gw);
    // Handed over as a delivery of its own (not a diagnostic), with why it did not decode.
    assert!(matches!(
        out.events.as_slice(),
        [GatewayEvent::Undeliverable { buffer_id, error }]
            if *buffer_id == BufferId::from("b-9")
                && error.salvage == Some(Salvage::Delivery(BufferId::from("b-9")))
    ));
    assert!(
        out.transmits.is_empty(),
        "never acked on the machine's own initiative"
    );
    assert_eq!(gw.unacked(), 1);
    gw.ack_inbound(now, &BufferId::from("b-9")).unwrap();
    let acks = split_gateway(&mut gw).frames();
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0]["type"], "inbound_ack");
    assert_eq!(acks[0]["bufferId"], "b-9");
    assert_eq!(
        gw.ack_inbound(now, &BufferId::from("b-9")),
        Err(AckError::Unknown(BufferId::from("b-9")))
    );
    // A redelivery of the same line (the ack was lost) is not handed over again: the
    // machine acks it again by itself.
    gw.handle_input(
        now,
        b"{\"type\":\"inbound\",\"event\":{\"text\":5},\"bufferId\":\"b-9\"}\n",
    );
    let out = split_gateway(&mut gw);
    assert!(out.events.is_empty(), "{:?}", out.events);
    assert_eq!(
        out.frames(),
        [serde_json::json!({"type": "inbound_ack", "bufferId": "b-9"})]
    );
    assert_eq!(gw.unacked(), 0);
}

#[test]
fn auto_ack_drops_an_undecodable_buffered_delivery_but_never_a_live_one() {
    let (mut gw, now) = open_gateway(true);
    gw.handle_input(
        now,
        b"{\"type\":\"passthrough_forward\",\"forward\":{\"headers\":[1]},\"bufferId\":\"p-1\"}\n{\"type\":\"inbound\",\"event\":{\"text\":5}}\n",
    );
    let out = split_gateway(&mut gw);
    let acks = out.frames();
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0]["bufferId"], "p-1");
    // The buffered one is handed over as undeliverable (and acked at once); the live one
    // is only a diagnostic, with nothing to ack.
    assert!(
        matches!(
            out.events.as_slice(),
            [
                GatewayEvent::Undeliverable { buffer_id, .. },
                GatewayEvent::Diagnostic(Diagnostic::Decode(d)),
            ] if *buffer_id == BufferId::from("p-1") && d.salvage.is_none()
        ),
        "{:?}",
        out.events
    );
    assert_eq!(gw.unacked(), 0);
}

#[test]
fn the_connector_answers_an_undecodable_outbound_instead_of_dropping_it() {
    let now = Instant::now();
    let mut conn = ConnectorMachine::new(ConnectorConfig::default(), std::time::Instant::now());
    conn.handle_input(
        now,
        b"{\"type\":\"hello\",\"platform\":\"discord\",\"botId\":\"1\"}\n",
    );
    conn.handle_input(
        now,
        b"{\"type\":\"outbound\",\"requestId\":\"r-1\",\"action\":{\"op\":\"send\",\"chat_id\":5,\"content\":\"x\"}}\n",
    );
    let out = split_connector(&mut conn).frames();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["type"], "outbound_result");
    assert_eq!(out[0]["requestId"], "r-1");
    assert_eq!(out[0]["result"]["success"], false);
    assert_eq!(out[0]["result"]["code"], INVALID_ACTION);
    assert_eq!(conn.in_flight(), 0);
}

//! A frame that fails validation still resolves the request or delivery it names: nothing
//! waits for a timeout and nothing is redelivered forever.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use relay_machine::connector::{ConnectorConfig, ConnectorMachine, INVALID_ACTION, MemoryStore};
use relay_machine::gateway::{
    AckError, Diagnostic, GatewayConfig, GatewayEvent, Identity, RelayMachine, RequestFailure,
};
use relay_machine::wire::{BufferId, SendAction};
use serde_json::Value;

const DESCRIPTOR: &str = r#"{"type":"descriptor","descriptor":{"contract_version":1,"platform":"discord","label":"Discord","max_message_length":2000,"supports_draft_streaming":false,"supports_edit":true,"supports_threads":true,"markdown_dialect":"discord","len_unit":"utf16"}}"#;

fn open_gateway(auto_ack: bool) -> (RelayMachine, Instant) {
    let config = GatewayConfig {
        identities: vec![Identity::new("discord", "1")],
        auto_ack,
        ..GatewayConfig::default()
    };
    let mut gw = RelayMachine::new(config).unwrap();
    let now = Instant::now();
    gw.connect(now).unwrap();
    let _ = gw.poll_command();
    gw.on_connected(now);
    gw.handle_input(now, format!("{DESCRIPTOR}\n").as_bytes());
    while gw.poll_transmit().is_some() {}
    while gw.poll_event().is_some() {}
    (gw, now)
}

fn events(gw: &mut RelayMachine) -> Vec<GatewayEvent> {
    std::iter::from_fn(|| gw.poll_event()).collect()
}

fn frames(gw: &mut RelayMachine) -> Vec<Value> {
    std::iter::from_fn(|| gw.poll_transmit())
        .map(|b| serde_json::from_slice(&b).unwrap())
        .collect()
}

#[test]
fn an_undecodable_result_resolves_its_request_at_once_as_ambiguous() {
    let (mut gw, now) = open_gateway(false);
    let id = gw.send(now, SendAction::default(), None).unwrap();
    let line = format!(
        "{{\"type\":\"outbound_result\",\"requestId\":\"{id}\",\"result\":{{\"success\":\"yes\"}}}}\n"
    );
    gw.handle_input(now, line.as_bytes());
    let events = events(&mut gw);
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
    assert_eq!(
        gw.poll_timeout(),
        None,
        "no deadline left for the resolved request"
    );
    // The diagnostic still says what was wrong.
    assert!(events.iter().any(|e| matches!(e, GatewayEvent::Diagnostic(Diagnostic::Decode(d)) if d.request_id.as_ref() == Some(&id))));
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
        !events(&mut gw)
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
    let events = events(&mut gw);
    assert!(events.iter().any(|e| matches!(e, GatewayEvent::Diagnostic(Diagnostic::Decode(d)) if d.buffer_id == Some(BufferId::from("b-9")))));
    assert!(
        frames(&mut gw).is_empty(),
        "never acked on the machine's own initiative"
    );
    assert_eq!(gw.unacked(), 1);
    gw.ack_inbound(now, &BufferId::from("b-9")).unwrap();
    let acks = frames(&mut gw);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0]["type"], "inbound_ack");
    assert_eq!(acks[0]["bufferId"], "b-9");
    assert_eq!(
        gw.ack_inbound(now, &BufferId::from("b-9")),
        Err(AckError::Unknown(BufferId::from("b-9")))
    );
}

#[test]
fn auto_ack_drops_an_undecodable_buffered_delivery_but_never_a_live_one() {
    let (mut gw, now) = open_gateway(true);
    gw.handle_input(
        now,
        b"{\"type\":\"passthrough_forward\",\"forward\":{\"headers\":[1]},\"bufferId\":\"p-1\"}\n{\"type\":\"inbound\",\"event\":{\"text\":5}}\n",
    );
    let acks = frames(&mut gw);
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0]["bufferId"], "p-1");
}

#[test]
fn the_connector_answers_an_undecodable_outbound_instead_of_dropping_it() {
    let now = Instant::now();
    let mut conn = ConnectorMachine::new(ConnectorConfig::default(), MemoryStore::new());
    conn.handle_input(
        now,
        b"{\"type\":\"hello\",\"platform\":\"discord\",\"botId\":\"1\"}\n",
    );
    conn.handle_input(
        now,
        b"{\"type\":\"outbound\",\"requestId\":\"r-1\",\"action\":{\"op\":\"send\",\"chat_id\":5,\"content\":\"x\"}}\n",
    );
    let out: Vec<Value> = std::iter::from_fn(|| conn.poll_transmit())
        .map(|b| serde_json::from_slice(&b).unwrap())
        .collect();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["type"], "outbound_result");
    assert_eq!(out[0]["requestId"], "r-1");
    assert_eq!(out[0]["result"]["success"], false);
    assert_eq!(out[0]["result"]["code"], INVALID_ACTION);
    assert_eq!(conn.open_requests(), 0);
}

//! Heap per idle handshaken connection, each role (issue 15, goal 3): the machine boxed (so
//! its struct counts), handshaken with one identity and the descriptor of protocol.md §2.4,
//! no acked ids, no traffic. Measured with dhat's heap profiler in testing mode: one
//! profiler per process, so both roles are measured in this one test, one after the other.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use relay_machine::connector::{
    ConnectorConfig, ConnectorEvent, ConnectorMachine, Output as ConnectorOutput,
};
use relay_machine::gateway::{
    ConnectionCommand, GatewayConfig, GatewayEvent, Identity, Output, RelayMachine,
};
use relay_machine::wire::{ActionResult, CapabilityDescriptor, SendAction};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// The goal: at most 2 KiB of heap per idle connection, each role.
const BUDGET: usize = 2048;

/// protocol.md §2.4's example descriptor.
const DESCRIPTOR: &str = r#"{"contract_version": 1, "platform": "telegram", "label": "Telegram", "max_message_length": 4096, "supports_draft_streaming": true, "supports_edit": true, "supports_threads": true, "markdown_dialect": "markdown_v2", "len_unit": "utf16", "supported_ops": ["send", "edit", "typing", "draft", "react"]}"#;

/// protocol.md §2.3's example hello.
const HELLO: &str =
    "{\"type\": \"hello\", \"platform\": \"telegram\", \"botId\": \"7012345678\"}\n";

/// Live heap bytes now.
fn live() -> usize {
    dhat::HeapStats::get().curr_bytes
}

fn gateway(now: Instant) -> Box<RelayMachine> {
    let config = GatewayConfig {
        identities: vec![Identity::new("telegram", "7012345678")],
        ..GatewayConfig::default()
    };
    let mut gw = Box::new(RelayMachine::new(config, 1).unwrap());
    gw.connect(now).unwrap();
    let Some(Output::Command(ConnectionCommand::Dial { generation, .. })) = gw.poll_output() else {
        panic!("no dial")
    };
    gw.on_connected(now, generation);
    let frame = format!("{{\"type\": \"descriptor\", \"descriptor\": {DESCRIPTOR}}}\n");
    gw.handle_input(now, frame.as_bytes());
    let mut handshaken = false;
    while let Some(output) = gw.poll_output() {
        handshaken |= matches!(
            output,
            Output::Event(GatewayEvent::HandshakeComplete { .. })
        );
    }
    assert!(handshaken);
    assert_eq!(gw.unacked(), 0);
    gw
}

/// Light traffic on the gateway: inbounds in a few chats (some buffered, acked), requests
/// answered, a passthrough.
fn gateway_traffic(gw: &mut RelayMachine, now: Instant) {
    for i in 0..8 {
        let buffer = if i % 4 == 0 {
            format!(", \"bufferId\": \"b-{i}\"")
        } else {
            String::new()
        };
        let line = format!(
            "{{\"type\": \"inbound\", \"event\": {{\"text\": \"hello {i}\", \"message_id\": \"{i}\", \"source\": {{\"platform\": \"telegram\", \"chat_id\": \"{}\", \"chat_type\": \"group\", \"user_id\": \"77\", \"scope_id\": \"1000\"}}}}{buffer}}}\n",
            i % 3
        );
        gw.handle_input(now, line.as_bytes());
        while let Some(output) = gw.poll_output() {
            if let Output::Event(GatewayEvent::Inbound {
                buffer_id: Some(id),
                ..
            }) = output
            {
                gw.ack_inbound(now, &id).unwrap();
            }
        }
        let action = SendAction {
            chat_id: (i % 3).to_string().into(),
            content: "ok".into(),
            ..SendAction::default()
        };
        let id = gw.send(now, action, None).unwrap();
        while gw.poll_output().is_some() {}
        let result = format!(
            "{{\"type\": \"outbound_result\", \"requestId\": \"{id}\", \"result\": {{\"success\": true, \"message_id\": \"9{i}\"}}}}\n"
        );
        gw.handle_input(now, result.as_bytes());
        while gw.poll_output().is_some() {}
    }
    assert_eq!(gw.in_flight(), 0);
    assert_eq!(gw.unacked(), 0);
}

fn connector(now: Instant) -> Box<ConnectorMachine> {
    let mut conn = Box::new(ConnectorMachine::new(ConnectorConfig::default(), now));
    conn.handle_input(now, HELLO.as_bytes());
    let Some(ConnectorOutput::Event(ConnectorEvent::Hello { .. })) = conn.poll_output() else {
        panic!("no hello")
    };
    let descriptor: CapabilityDescriptor = serde_json::from_str(DESCRIPTOR).unwrap();
    conn.send_descriptor(now, descriptor).unwrap();
    while conn.poll_output().is_some() {}
    assert!(conn.is_handshaken());
    conn
}

/// Light traffic on the connector: requests answered, live inbounds sent.
fn connector_traffic(conn: &mut ConnectorMachine, now: Instant) {
    for i in 0..8 {
        let line = format!(
            "{{\"type\": \"outbound\", \"requestId\": \"{i:032x}\", \"action\": {{\"op\": \"send\", \"chat_id\": \"{}\", \"content\": \"hi\"}}, \"platform\": \"telegram\", \"botId\": \"7012345678\"}}\n",
            i % 3
        );
        conn.handle_input(now, line.as_bytes());
        while let Some(output) = conn.poll_output() {
            if let ConnectorOutput::Event(ConnectorEvent::Outbound { request, .. }) = output {
                conn.respond(now, &request.request_id, ActionResult::ok())
                    .unwrap();
            }
        }
        let event = relay_machine::wire::MessageEvent {
            text: format!("hello {i}").into(),
            ..Default::default()
        };
        conn.send_live(now, event).unwrap();
        while conn.poll_output().is_some() {}
    }
    assert_eq!(conn.in_flight(), 0);
}

/// Heap held by the machine `make` builds: idle, then after `traffic`.
fn measure<M>(make: impl FnOnce() -> Box<M>, traffic: impl FnOnce(&mut M)) -> (usize, usize) {
    let before = live();
    let mut machine = make();
    let idle = live() - before;
    traffic(&mut machine);
    let after = live() - before;
    drop(machine);
    (idle, after)
}

#[test]
fn an_idle_handshaken_connection_holds_at_most_two_kib_of_heap_in_each_role() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let now = Instant::now();

    let (gateway_idle, gateway_after) = measure(|| gateway(now), |gw| gateway_traffic(gw, now));
    let (connector_idle, connector_after) =
        measure(|| connector(now), |conn| connector_traffic(conn, now));

    eprintln!("gateway: {gateway_idle} B idle, {gateway_after} B after light traffic");
    eprintln!("connector: {connector_idle} B idle, {connector_after} B after light traffic");
    dhat::assert!(
        gateway_idle <= BUDGET,
        "gateway holds {gateway_idle} B idle"
    );
    dhat::assert!(
        connector_idle <= BUDGET,
        "connector holds {connector_idle} B idle"
    );
}

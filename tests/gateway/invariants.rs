//! The harness's one checker (`relay_machine::testing::Invariants`) catches each broken
//! promise it stands for: fed a forged or misdriven run, it panics with the promise named.

use std::time::Instant;

use relay_machine::connector::{DeliveryStore, InstanceOutput, MemoryStore};
use relay_machine::gateway::{GatewayEvent, Output, RelayMachine};
use relay_machine::testing::Invariants;
use relay_machine::wire::{ActionResult, BufferId, MessageEvent, RequestId};

use crate::driver::*;

fn response(id: &str) -> Output {
    Output::Event(GatewayEvent::Response {
        id: RequestId::from(id),
        result: Ok(Box::new(ActionResult::ok())),
    })
}

fn delivery(id: &str, text: &str) -> Output {
    Output::Event(GatewayEvent::Inbound {
        event: Box::new(MessageEvent {
            text: text.into(),
            ..MessageEvent::default()
        }),
        buffer_id: Some(BufferId::from(id)),
    })
}

const ID: &str = "0123456789abcdef0123456789abcdef";

#[test]
#[should_panic(expected = "protocol invariant violated: a response for")]
fn a_response_for_an_id_never_sent() {
    Invariants::new().gateway_output(&response(ID));
}

#[test]
#[should_panic(expected = "resolved twice")]
fn a_request_resolved_twice() {
    let mut check = Invariants::new();
    check.sent(&RequestId::from(ID));
    check.gateway_output(&response(ID));
    check.gateway_output(&response(ID));
}

#[test]
#[should_panic(expected = "resolved 0 times")]
fn a_request_never_resolved() {
    let mut check = Invariants::new();
    check.sent(&RequestId::from(ID));
    check.all_resolved();
}

#[test]
#[should_panic(expected = "acked delivery b-1 handed over again")]
fn an_acked_delivery_handed_over_again() {
    let mut check = Invariants::for_gateway(&config1());
    check.gateway_output(&delivery("b-1", "hi"));
    check.app_acked(&BufferId::from("b-1"));
    check.gateway_output(&delivery("b-1", "hi"));
}

/// A reused id with other content is another delivery: handing it over is right.
#[test]
fn a_reused_id_with_other_content_is_not_a_redelivery() {
    let mut check = Invariants::for_gateway(&config1());
    check.gateway_output(&delivery("b-1", "hi"));
    check.app_acked(&BufferId::from("b-1"));
    check.gateway_output(&delivery("b-1", "another"));
}

#[test]
#[should_panic(expected = "a frame with no open socket")]
fn a_frame_while_no_socket_is_open() {
    let now = Instant::now();
    let mut gw = RelayMachine::new(config1(), SEED).unwrap();
    let mut check = Invariants::for_gateway(&config1());
    gw.connect(now).unwrap();
    // The driver never reported the socket open to the checker.
    gw.on_connected(now, gw.generation());
    while let Some(output) = gw.poll_output() {
        check.gateway_output(&output);
    }
}

#[test]
#[should_panic(expected = "after the terminal event")]
fn an_output_after_the_terminal_event() {
    let mut check = Invariants::new();
    check.gateway_output(&Output::Event(GatewayEvent::Closed));
    check.gateway_output(&Output::Event(GatewayEvent::Closed));
}

#[test]
#[should_panic(expected = "was never acked, yet the store lost it")]
fn an_unacked_delivery_lost_from_the_store() {
    let mut check = Invariants::new();
    let mut store = MemoryStore::with_epoch(0);
    let id = store.append(MessageEvent::default().into());
    check.pushed(&id);
    // The store drops it with no ack from the gateway.
    store.ack(&id);
    check.unacked_kept(&store);
}

#[test]
#[should_panic(expected = "acked, yet the gateway application never had it")]
fn an_ack_for_a_delivery_the_gateway_never_handed_over() {
    let mut check = Invariants::new().across_the_link();
    check.instance_output(&InstanceOutput::Acked(BufferId::from("b-0-1")));
}

//! What one 1 MiB WebSocket message can make the gateway hold, measured with dhat's heap
//! profiler. One test per binary: the profiler is process-wide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use relay_machine::gateway::{GatewayConfig, GatewayEvent, Identity, Output, RelayMachine};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const DESCRIPTOR: &[u8] = b"{\"type\":\"descriptor\",\"descriptor\":{\"contract_version\":1,\"platform\":\"discord\",\"label\":\"Discord\",\"max_message_length\":2000,\"supports_draft_streaming\":false,\"supports_edit\":true,\"supports_threads\":true,\"markdown_dialect\":\"discord\",\"len_unit\":\"utf16\"}}\n";

/// The application takes each output and lets it go, as a driver does.
fn drain(gw: &mut RelayMachine) -> usize {
    let mut inbound = 0;
    while let Some(output) = gw.poll_output() {
        if let Output::Event(GatewayEvent::Inbound { .. }) = output {
            inbound += 1;
        }
    }
    inbound
}

#[test]
fn one_mebibyte_message_of_minimal_inbound_frames_is_held_at_most_four_times() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let now = Instant::now();
    let config = GatewayConfig {
        identities: vec![Identity::new("discord", "1")],
        ..GatewayConfig::default()
    };
    let mut gw = RelayMachine::new(config, 0).unwrap();
    gw.connect(now).unwrap();
    gw.on_connected(now, gw.generation());
    gw.handle_input(now, DESCRIPTOR);
    drain(&mut gw);

    // The smallest inbound the gateway hands over, repeated to 1 MiB in one message.
    let line = b"{\"type\":\"inbound\",\"event\":{}}\n";
    let mut message = Vec::with_capacity(1 << 20);
    while message.len() + line.len() <= 1 << 20 {
        message.extend_from_slice(line);
    }
    let frames = message.len() / line.len();

    let before = dhat::HeapStats::get();
    gw.handle_input(now, &message);
    let inbound = drain(&mut gw);
    let after = dhat::HeapStats::get();

    assert_eq!(inbound, frames);
    // The peak during the input, above what was live before it (the message included).
    let held = after.max_bytes.saturating_sub(before.curr_bytes);
    let ratio = held as f64 / message.len() as f64;
    eprintln!(
        "held {held} B for a {} B message: {ratio:.2}x",
        message.len()
    );
    dhat::assert!(
        held <= 4 * message.len(),
        "held {held} B for a {} B message",
        message.len()
    );
}

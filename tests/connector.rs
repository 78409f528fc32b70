// The harness needs the `testing` feature. The repository's self dev-dependency turns it
// on for `cargo test`, and tests/features.rs fails there should it ever be off; the
// published package runs these with `--features testing`.
#![cfg(feature = "testing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::wildcard_enum_match_arm)]
//! Scenario tests of the connector role (`ConnectorMachine`, `connector::Instance`) on a
//! virtual clock, one module per concern of `src/connector/`: the handshake, requests,
//! decoding, the replay window, the instance across connections, going idle, the
//! timers and the output contract. The gateway is scripted by each test through the
//! harness's `SoloConnector` and `SoloInstance` seats, which record every output, render the
//! transcript and check the protocol invariants after every step (time is an input: nothing
//! sleeps). Snapshots live in `tests/connector/snapshots/`.

#[path = "connector/fixtures.rs"]
mod fixtures;

#[path = "connector/decode.rs"]
mod decode;
#[path = "connector/handshake.rs"]
mod handshake;
#[path = "connector/idle.rs"]
mod idle;
#[path = "connector/instance.rs"]
mod instance;
#[path = "connector/liveness.rs"]
mod liveness;
#[path = "connector/outputs.rs"]
mod outputs;
#[path = "connector/replay.rs"]
mod replay;
#[path = "connector/requests.rs"]
mod requests;

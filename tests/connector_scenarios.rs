//! Connector scenarios on the virtual clock, one module per concern of `src/connector/`:
//! the handshake, requests, decoding, the replay window, going idle and the timers. Each
//! test asserts its key facts and snapshots its transcript (time is an input: nothing
//! sleeps).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "connector_scenarios/harness.rs"]
mod harness;

#[path = "connector_scenarios/decode.rs"]
mod decode;
#[path = "connector_scenarios/handshake.rs"]
mod handshake;
#[path = "connector_scenarios/idle.rs"]
mod idle;
#[path = "connector_scenarios/liveness.rs"]
mod liveness;
#[path = "connector_scenarios/replay.rs"]
mod replay;
#[path = "connector_scenarios/requests.rs"]
mod requests;

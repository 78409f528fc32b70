// The harness needs the `testing` feature. The repository's self dev-dependency turns it
// on for `cargo test`, and tests/features.rs fails there should it ever be off; the
// published package runs these with `--features testing`.
#![cfg(feature = "testing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::wildcard_enum_match_arm)]
//! Scenario tests of `RelayMachine`, the gateway role, on a virtual clock.
//!
//! Every scenario snapshots its whole transcript (`tests/gateway/snapshots/`) and also
//! asserts its key facts explicitly, so a blindly accepted snapshot cannot hide a
//! regression. Every scenario runs on the harness's `SoloGateway` seat (through the thin
//! layer in `tests/gateway/driver.rs`), which checks the protocol invariants after every step.

#[path = "gateway/driver.rs"]
mod driver;

#[path = "gateway/acks.rs"]
mod acks;
#[path = "gateway/backoff.rs"]
mod backoff;
#[path = "gateway/config.rs"]
mod config;
#[path = "gateway/decode.rs"]
mod decode;
#[path = "gateway/determinism.rs"]
mod determinism;
#[path = "gateway/handshake.rs"]
mod handshake;
#[path = "gateway/idle.rs"]
mod idle;
#[path = "gateway/invariants.rs"]
mod invariants;
#[path = "gateway/linked.rs"]
mod linked;
#[path = "gateway/liveness.rs"]
mod liveness;
#[path = "gateway/outputs.rs"]
mod outputs;
#[path = "gateway/reconnect.rs"]
mod reconnect;
#[path = "gateway/requests.rs"]
mod requests;
#[path = "gateway/routing.rs"]
mod routing;
#[path = "gateway/unauthorized.rs"]
mod unauthorized;

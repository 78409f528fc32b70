//! A sans-IO implementation of the Hermes relay ⇄ connector protocol.
//!
//! A hosted AI-agent gateway has no public address: it dials *out* over one WebSocket to a
//! connector, which owns the chat-platform bots and relays their traffic over that socket
//! as newline-delimited JSON frames. This crate implements that protocol as pure data and
//! pure functions: it consumes received bytes, the caller's clock and the caller's
//! commands, and produces frames to write, events and the next deadline. It owns no
//! socket, spawns no thread and reads no clock, so it runs under any runtime, or none.
//!
//! Two roles, each a pure state machine:
//! - [`gateway::RelayMachine`]: the gateway, which dials out, handshakes, correlates
//!   requests, acknowledges buffered deliveries and reconnects;
//! - [`connector::ConnectorMachine`]: one gateway connection on the connector, which answers
//!   hellos, executes outbound actions once each and replays the buffered backlog.
//!
//! # The run loop
//!
//! Both machines have one ordered output stream. After every input, take `poll_output()`
//! until it returns `None`, carrying out each output before taking the next; then wait for
//! the socket, the timer (`poll_timeout()`) or a command:
//!
//! ```text
//! loop {
//!     while let Some(output) = machine.poll_output() {
//!         match output {
//!             Output::Transmit(t) => write t as one WebSocket text message,
//!             Output::Command(c)  => dial / close the socket (after the frames before it),
//!             Output::Event(e)    => hand e to the application (it may call commands),
//!         }
//!     }
//!     wait for a socket message (handle_input), the deadline (handle_timeout),
//!     the socket's fate (on_connected / on_dial_failed / on_closed) or a command.
//! }
//! ```
//!
//! What that loop can rely on:
//! - **Causal order.** Outputs come in the order the machine produced them: a frame queued
//!   before a close is written before it; the gateway's terminal event (`Closed`,
//!   `Revoked`) is its last output.
//! - **Connection scoping.** Nothing produced for one connection is written on another:
//!   what was not taken when a connection ended is discarded and accounted for (a request
//!   resolves as definitely not sent, an ack is owed to the next connection).
//! - **Exactly once to the application.** Every request resolves once; a buffered delivery
//!   is handed to the application once, and a redelivery of one it acked is acked again by
//!   the machine.
//! - **Nothing read from the environment.** Time, randomness (the gateway's seed) and
//!   bytes are arguments; the same inputs give the same outputs.
//!
//! The rustdoc of each machine has a runnable example; `examples/` has drivers on smol,
//! tokio and a plain blocking loop.
//!
//! # Layers
//!
//! From the bottom:
//! - [`wire`]: every frame as typed data ([`wire::Frame`]).
//! - [`codec`]: bytes ⇄ frames, incremental and bounded ([`codec::FrameDecoder`],
//!   [`codec::encode`]); [`Transmit`], a frame ready to write.
//! - Pure helpers: [`url::dial_url`] (dial-URL normalisation),
//!   [`session_key::session_key`] (the session key the gateway derives for an event, which a
//!   connector needs to bind capabilities such as a Discord interaction token),
//!   [`discord::interaction_event`] (a forwarded Discord interaction as a message event) and,
//!   with the default `auth` feature, [`auth`] (upgrade-token mint and verify).
//!
//! Features: `auth` (default: upgrade tokens), `testing` (the in-memory pair harness and
//! transcript helpers), `fuzzing` (the fuzz-target bodies).
//!
//! ```
//! use relay_machine::codec::{FrameDecoder, encode};
//! use relay_machine::wire::{Frame, InboundAck};
//!
//! let ack = Frame::from(InboundAck { buffer_id: "b-17".into() });
//! let line = encode(&ack);
//! assert_eq!(&line[..], b"{\"type\":\"inbound_ack\",\"bufferId\":\"b-17\"}\n");
//!
//! let mut decoder = FrameDecoder::new();
//! decoder.push(&line[..10]); // any chunking gives the same frames
//! decoder.push(&line[10..]);
//! assert_eq!(decoder.next_frame(), Some(Ok(ack)));
//! ```
#![forbid(unsafe_code)]
// docs.rs builds with every feature and `--cfg docsrs`: each gated item says which feature.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(missing_docs)]
// Library code must not panic on peer input; tests and examples may.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::wildcard_enum_match_arm
)]

#[cfg(feature = "auth")]
#[cfg_attr(docsrs, doc(cfg(feature = "auth")))]
pub mod auth;
mod bounded;
pub mod codec;
mod conn_core;
pub mod connector;
pub mod discord;
#[cfg(feature = "fuzzing")]
#[cfg_attr(docsrs, doc(cfg(feature = "fuzzing")))]
pub mod fuzzing;
pub mod gateway;
mod hash;
mod outputs;
mod pending;
pub mod rng;
pub mod session_key;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
pub mod transcript;
mod transmit;
pub mod url;
pub mod wire;

pub use transmit::Transmit;

//! A sans-IO implementation of the Hermes relay ⇄ connector protocol.
//!
//! A hosted AI-agent gateway has no public address: it dials *out* over one WebSocket to a
//! connector, which owns the chat-platform bots and relays their traffic over that socket
//! as newline-delimited JSON frames. This crate implements that protocol as pure data and
//! pure functions: it consumes received bytes, the caller's clock and the caller's
//! commands, and produces frames to write, events and the next deadline. It owns no
//! socket, spawns no thread and reads no clock, so it runs under any runtime, or none.
//!
//! Layers, from the bottom:
//! - [`wire`]: every frame as typed data ([`wire::Frame`]).
//! - [`codec`]: bytes ⇄ frames, incremental and bounded ([`codec::FrameDecoder`],
//!   [`codec::encode`]).
//! - Pure helpers: [`url::dial_url`] (dial-URL normalisation),
//!   [`session_key::session_key`] (the session key the gateway derives for an event, which a
//!   connector needs to bind capabilities such as a Discord interaction token),
//!   [`discord::interaction_event`] (a forwarded Discord interaction as a message event) and,
//!   with the default `auth` feature, [`auth`] (upgrade-token mint and verify).
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
#![deny(missing_docs)]
// Library code must not panic on peer input; tests and examples may.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::wildcard_enum_match_arm
)]

#[cfg(feature = "auth")]
pub mod auth;
mod bounded;
mod budget;
pub mod codec;
pub mod connector;
pub mod discord;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod gateway;
mod outputs;
mod pending;
mod rng;
pub mod session_key;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transcript;
mod transmit;
pub mod url;
pub mod wire;

pub use transmit::Transmit;

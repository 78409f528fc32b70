//! A sans-IO implementation of the Hermes relay ⇄ connector protocol.
//!
//! A hosted AI-agent gateway has no public address: it dials *out* over one WebSocket to a
//! connector, which owns the chat-platform bots and relays their traffic over that socket
//! as newline-delimited JSON frames (`docs/protocol.md` is the reference). This crate is that
//! protocol as pure state machines: they consume received bytes, the caller's clock and the
//! caller's commands, and produce frames to write, events and the next deadline. They own
//! no socket, spawn no thread and read no clock, so they run under any runtime, or none.
//!
//! # The two roles
//!
//! - **Gateway**: [`gateway::RelayMachine`] dials out, handshakes (`hello` / `descriptor`),
//!   correlates requests by `requestId`, routes replies to the right platform identity,
//!   acknowledges buffered deliveries and reconnects with the reference's backoff and
//!   auth-strike policy.
//! - **Connector**: [`connector::ConnectorMachine`] is one gateway connection: it answers
//!   hellos, hands each outbound action to the application and takes its answer exactly
//!   once. [`connector::Instance`] is one gateway *instance* across its connections: the
//!   ack-gated replay of its durable buffer, superseding, acks from any connection. It never
//!   touches the store; it asks for deliveries and reports acks through its outputs.
//!
//! # The run loop
//!
//! Every machine has one ordered output stream. Feed it an input (received bytes, the
//! time, the socket's fate or a command), then take [`poll_output`] until it returns
//! `None`, carrying out each output before taking the next; then sleep until the next
//! socket message, [`poll_timeout`] or command. The gateway on a blocking socket
//! (`examples/blocking_gateway.rs` is this loop in full, with tungstenite):
//!
//! ```no_run
//! use std::time::Instant;
//! use relay_machine::gateway::{
//!     ConnectionCommand, GatewayConfig, GatewayEvent, GatewayState, Identity, Output, RelayMachine,
//! };
//! # struct Socket;
//! # enum Wake { Message(Vec<u8>), Closed(Option<u16>, String), Deadline }
//! # impl Socket {
//! #     fn dial(_url: &str) -> std::io::Result<Socket> { unimplemented!() }
//! #     fn write(&mut self, _text: &str) {}
//! #     fn close(&mut self, _code: u16, _reason: &str) {}
//! #     fn ping(&mut self) {}
//! # }
//! # /// Blocks until a message on `socket`, its end, or `deadline`.
//! # fn wait(_socket: Option<&mut Socket>, _deadline: Option<Instant>) -> Wake { unimplemented!() }
//!
//! let identities = vec![Identity::new("discord", "1122")];
//! let config = GatewayConfig { identities, ..GatewayConfig::default() };
//! let seed = 0x5eed; // the only randomness (request ids, jitter): one per process, from the OS
//! let mut gw = RelayMachine::new(config, seed)?;
//! gw.connect(Instant::now())?;
//! let mut socket: Option<Socket> = None;
//! loop {
//!     // 1. Carry out every output, in order, until there is none.
//!     while let Some(output) = gw.poll_output() {
//!         let now = Instant::now();
//!         match output {
//!             Output::Transmit(line) => {
//!                 if let Some(s) = &mut socket { s.write(line.as_str()) }
//!             }
//!             Output::Command(ConnectionCommand::Dial { generation, .. }) => {
//!                 match Socket::dial("ws://127.0.0.1:8080/relay") {
//!                     Ok(s) => {
//!                         socket = Some(s);
//!                         gw.on_connected(now, generation);
//!                     }
//!                     Err(e) => gw.on_dial_failed(now, generation, &e.to_string()),
//!                 }
//!             }
//!             Output::Command(ConnectionCommand::Close { code, reason }) => {
//!                 // After the frames before it; its end is reported in step 2.
//!                 if let Some(s) = &mut socket { s.close(code, &reason) }
//!             }
//!             Output::Command(ConnectionCommand::Ping) => {
//!                 if let Some(s) = &mut socket { s.ping() }
//!             }
//!             Output::Command(_) => socket = None, // Abort: drop it, no handshake
//!             // The application: it may call commands (send, ack_inbound, disconnect, ...),
//!             // whose outputs follow in this same stream.
//!             Output::Event(GatewayEvent::Inbound { event, buffer_id }) => {
//!                 println!("{}: {}", event.source.chat_id, event.text);
//!                 if let Some(id) = buffer_id {
//!                     let _ = gw.ack_inbound(now, &id); // once it is durably ours
//!                 }
//!             }
//!             Output::Event(event) => println!("{event}"),
//!             _ => {}
//!         }
//!     }
//!     // The terminal event was the last output.
//!     if matches!(gw.state(), GatewayState::Closed | GatewayState::Revoked) {
//!         break;
//!     }
//!     // 2. Sleep until a message, the socket's end or the deadline, and feed what came.
//!     match wait(socket.as_mut(), gw.poll_timeout()) {
//!         Wake::Message(bytes) => gw.handle_input(Instant::now(), &bytes),
//!         Wake::Closed(code, reason) => {
//!             socket = None;
//!             gw.on_closed(Instant::now(), code, &reason);
//!         }
//!         Wake::Deadline => gw.handle_timeout(Instant::now()), // may fire late, never early
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The connector roles loop the same way ([`connector::ConnectorMachine::poll_output`],
//! [`connector::Instance::poll_output`]); each machine's rustdoc has a runnable example.
//!
//! [`poll_output`]: gateway::RelayMachine::poll_output
//! [`poll_timeout`]: gateway::RelayMachine::poll_timeout
//!
//! # Guarantees
//!
//! - **Ordered outputs.** Outputs come in the order the machine produced them: a frame
//!   queued before a close is written before it; the gateway's terminal event (`Closed`,
//!   `Revoked`) is its last output.
//! - **Nothing lost.** Nothing produced for one connection is written on another, and what
//!   a connection had not had taken when it ended is accounted for: a request resolves as
//!   definitely not sent ([`gateway::RequestFailure::NotWritten`]), an ack is owed to the
//!   next connection, an unsent interrupt is reported. Every request resolves exactly once;
//!   a buffered delivery reaches the application once and is replayed until acked.
//! - **No panics on peer input.** Any bytes, in any chunking, are survivable: a bad line
//!   becomes a typed diagnostic and the connection carries on; every limit is bounded
//!   (`docs/limits.md`). Fuzzed (`fuzz/`), and no `unwrap` on a path peer input reaches.
//! - **Typed errors.** Refusals and failures are enums ([`gateway::SendError`],
//!   [`gateway::ConnectFailure`], [`codec::DecodeError`], ...) that implement
//!   [`std::error::Error`]; every outcome type also implements `Display` for logs.
//! - **No IO.** No socket, thread, clock, randomness or store inside: time, the seed and
//!   bytes are arguments, so the same inputs give the same outputs (tests run on a virtual
//!   clock; `testing::Pair` joins both roles in memory).
//!
//! # Features
//!
//! - `auth` (default): upgrade-token mint and verify ([`auth`]).
//! - `testing`: the in-memory pair harness (`testing::Pair`: both roles on a virtual clock,
//!   with knobs to split, delay and drop traffic) for testing applications.
//! - `fuzzing`: the fuzz-target bodies (`fuzzing`), shared by `fuzz/` and the corpus replay.
//! - `tracing` (optional, off by default): spans/events at protocol decisions (handshake
//!   done, request resolved, ack, reconnect scheduled, strike; `docs/tracing.md`). Without
//!   it the trace points compile to nothing and `tracing` is not a dependency.
//!
//! # Examples
//!
//! In `examples/`: `demo` (both roles over a real WebSocket, printed as a transcript),
//! `gateway` and `tokio_gateway` (a gateway client on smol and on tokio),
//! `blocking_gateway` (the loop above with tungstenite, no runtime), `connector` (a
//! multi-tenant connector server with memory, SQLite or Redis buffers), `follow_up` (a
//! Discord interaction answered through `testing::Pair`) and `decode` (a capture
//! inspector). `cargo run --example NAME -- --help` lists each one's flags.
//!
//! # Layers
//!
//! Below the machines: [`wire`] (every frame as typed data, [`wire::Frame`]); [`codec`]
//! (bytes ⇄ frames, incremental and bounded: [`codec::FrameDecoder`], [`codec::encode`];
//! [`Transmit`], a line ready to write); and pure helpers: [`url::dial_url`],
//! [`session_key::session_key`] (the session key the gateway derives for an event, to bind
//! capabilities such as a Discord interaction token on the connector) and
//! [`discord::interaction_event`].
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
mod trace;
pub mod transcript;
mod transmit;
pub mod url;
pub mod wire;

pub use transmit::Transmit;

// The README's Rust blocks are compiled and run as doc tests (`cargo test --doc`), so the
// front page cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

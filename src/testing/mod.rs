//! One test harness for both roles, on a virtual clock (feature `testing`).
//!
//! The harness has one recorder ([`Log`]), one invariant checker ([`Invariants`]) and one
//! clock discipline, and seats a test in one of three ways:
//!
//! - [`Pair`]: a [`RelayMachine`] and a connector [`Instance`](crate::connector::Instance)
//!   joined in memory; the harness plays the socket and a minimal connector application. [`Pair::step`] moves the clock to the
//!   earlier deadline of the two sides (or the next message due), like quinn-proto's
//!   `Pair::step`.
//! - [`SoloGateway`]: the gateway alone; the test scripts the connector (feeds lines and
//!   reports socket events).
//! - [`SoloConnector`] and [`SoloInstance`]: a `ConnectorMachine` or an `Instance` alone;
//!   the test scripts the gateway.
//!
//! Every seat records each output in the [`Log`] (typed, and rendered into its
//! [`Transcript`] without being consumed) and shows it to its [`Invariants`] before the
//! test sees it; a broken promise panics there, named. Time never passes by itself: a test
//! moves the clock (`advance`, `step`), and every deadline on the way fires in order.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use relay_machine::connector::MemoryStore;
//! use relay_machine::gateway::{GatewayConfig, GatewayEvent, GatewayState, Identity, RelayMachine};
//! use relay_machine::testing::Pair;
//! use relay_machine::wire::{MessageEvent, SendAction, SessionSource};
//!
//! let config = GatewayConfig {
//!     identities: vec![Identity::new("discord", "111")],
//!     ..GatewayConfig::default()
//! };
//! let gateway = RelayMachine::new(config, 7)?;
//! let mut pair = Pair::new(gateway, MemoryStore::default(), Instant::now());
//! pair.gateway.connect(pair.now)?;
//! pair.drive_until_idle()?;
//! assert_eq!(pair.gateway.state(), GatewayState::Open);
//!
//! // Through the pair, not on `pair.gateway`, so the checker knows what the application did.
//! let id = pair.send(SendAction { chat_id: "c1".into(), content: "hi".into(), ..SendAction::default() }, None)?;
//! let event = MessageEvent {
//!     text: "hello".into(),
//!     source: SessionSource::new("discord", "dm", "c1"),
//!     ..MessageEvent::default()
//! };
//! let buffer_id = pair.push(event, true).expect("buffered");
//! pair.advance(Duration::from_secs(1))?;
//! pair.ack(&buffer_id)?;
//! pair.advance(Duration::from_secs(1))?;
//!
//! assert!(pair.gateway_events.iter().any(|e| matches!(e, GatewayEvent::Response { id: r, result: Ok(_) } if *r == id)));
//! pair.check.all_resolved();            // every request resolved exactly once
//! pair.check.unacked_kept(&pair.store); // nothing unacked lost
//! println!("{}", pair.log.transcript);  // or insta::assert_snapshot!(pair.log.transcript.render())
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// The seats pick one kind of output out of non-exhaustive enums: a kind added later is
// simply not the one being picked.
#![allow(clippy::wildcard_enum_match_arm)]

mod check;
mod pair;
mod solo_connector;
mod solo_gateway;
mod solo_instance;

use std::time::Instant;

pub use check::Invariants;
pub use pair::{ConnectorApp, Knobs, MAX_STEPS, NotConverged, Pair};
pub use solo_connector::{HELLO, SoloConnector};
pub use solo_gateway::SoloGateway;
pub use solo_instance::SoloInstance;

use crate::Transmit;
use crate::connector::{self, ConnectorCommand, ConnectorEvent, ConnectorMachine, InstanceOutput};
use crate::gateway::{self, ConnectionCommand, GatewayEvent, RelayMachine};
use crate::transcript::Transcript;

/// An output and when it came out (milliseconds since the run's start).
#[derive(Debug, Clone, PartialEq)]
pub struct Record<O> {
    /// Milliseconds since the start.
    pub ms: u64,
    /// The output, as the machine gave it.
    pub output: O,
}

/// The one recorder: every output of a run, typed and in order, and its transcript.
///
/// Each `*_output` method renders an output into the transcript without consuming it and
/// keeps a copy, so a test can both snapshot the run and assert on typed values.
#[derive(Debug, Clone)]
pub struct Log {
    start: Instant,
    /// The readable run.
    pub transcript: Transcript,
    /// Every gateway output.
    pub gateway: Vec<Record<gateway::Output>>,
    /// Every output of a lone connector machine.
    pub connector: Vec<Record<connector::Output>>,
    /// Every output of a connector instance.
    pub instance: Vec<Record<InstanceOutput>>,
    /// Label instance outputs by connection (`#0→gw`) rather than as `conn→gw`.
    pub per_connection: bool,
}

impl Log {
    /// An empty log whose times are relative to `start`.
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            transcript: Transcript::new(start),
            gateway: Vec::new(),
            connector: Vec::new(),
            instance: Vec::new(),
            per_connection: false,
        }
    }

    /// Milliseconds from the start to `now`.
    pub fn ms(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.start).as_millis()).unwrap_or(u64::MAX)
    }

    /// Records a gateway output.
    pub fn gateway_output(&mut self, now: Instant, output: &gateway::Output) {
        self.transcript.gateway_output(now, output);
        let ms = self.ms(now);
        self.gateway.push(Record {
            ms,
            output: output.clone(),
        });
    }

    /// Records an output of a lone connector machine.
    pub fn connector_output(&mut self, now: Instant, output: &connector::Output) {
        self.transcript.connector_output(now, output);
        let ms = self.ms(now);
        self.connector.push(Record {
            ms,
            output: output.clone(),
        });
    }

    /// Records an instance output.
    pub fn instance_output(&mut self, now: Instant, output: &InstanceOutput) {
        if self.per_connection {
            self.transcript.instance_output_per_connection(now, output);
        } else {
            self.transcript.instance_output(now, output);
        }
        let ms = self.ms(now);
        self.instance.push(Record {
            ms,
            output: output.clone(),
        });
    }

    /// The gateway's events so far, in order.
    pub fn gateway_events(&self) -> impl Iterator<Item = &GatewayEvent> {
        self.gateway.iter().filter_map(|r| match &r.output {
            gateway::Output::Event(e) => Some(e),
            _ => None,
        })
    }
}

/// Every output a machine had, sorted by kind, each kind in its order: for tests that
/// assert on one kind at a time. (A driver never sorts: it carries outputs out in order.)
#[derive(Debug, Clone, PartialEq)]
pub struct Split<C, E> {
    /// The frames, in order.
    pub transmits: Vec<Transmit>,
    /// The socket commands, in order.
    pub commands: Vec<C>,
    /// The events, in order.
    pub events: Vec<E>,
}

impl<C, E> Split<C, E> {
    /// The frames as JSON values.
    pub fn frames(&self) -> Vec<serde_json::Value> {
        self.transmits
            .iter()
            .map(|t| serde_json::from_str(t.as_str()).unwrap_or(serde_json::Value::Null))
            .collect()
    }
}

/// Takes every output of `gateway`, sorted by kind.
pub fn split_gateway(gateway: &mut RelayMachine) -> Split<ConnectionCommand, GatewayEvent> {
    let mut split = Split {
        transmits: Vec::new(),
        commands: Vec::new(),
        events: Vec::new(),
    };
    while let Some(output) = gateway.poll_output() {
        match output {
            gateway::Output::Transmit(t) => split.transmits.push(t),
            gateway::Output::Command(c) => split.commands.push(c),
            gateway::Output::Event(e) => split.events.push(e),
        }
    }
    split
}

/// Takes every output of `connector`, sorted by kind.
pub fn split_connector(
    connector: &mut ConnectorMachine,
) -> Split<ConnectorCommand, ConnectorEvent> {
    let mut split = Split {
        transmits: Vec::new(),
        commands: Vec::new(),
        events: Vec::new(),
    };
    while let Some(output) = connector.poll_output() {
        match output {
            connector::Output::Transmit(t) => split.transmits.push(t),
            connector::Output::Command(c) => split.commands.push(c),
            connector::Output::Event(e) => split.events.push(e),
        }
    }
    split
}

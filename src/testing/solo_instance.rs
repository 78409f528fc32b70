//! The connector alone, the gateway scripted by the test: an [`Instance`] with the
//! application's durable store.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::solo_connector::{HELLO, newline};
use super::{Invariants, Log, Record};
use crate::connector::{
    ConnId, ConnectorCommand, ConnectorConfig, ConnectorError, Delivery, DeliveryStore, Instance,
    InstanceOutput, Live, MemoryStore,
};
use crate::wire::{BufferId, CapabilityDescriptor, MessageEvent};

/// An [`Instance`] and the connector application's durable store on a virtual clock, the
/// gateway played by the test. The seat plays the application's driver: it answers every
/// load from the store and makes every ack durable. Transcript lines name the connection
/// (`#0→gw`).
#[derive(Debug)]
pub struct SoloInstance<S: DeliveryStore = MemoryStore> {
    /// The instance; after calling it directly, [`pump`](Self::pump).
    pub instance: Instance,
    /// The application's durable store.
    pub store: S,
    /// The virtual clock.
    pub now: Instant,
    /// Every output and the transcript.
    pub log: Log,
    /// The invariants checked after every step.
    pub check: Invariants,
    /// Answer each load from the store as soon as it comes out (the default); when
    /// `false`, loads wait in [`loads`](Self::loads) until [`answer_loads`](Self::answer_loads).
    pub eager_loads: bool,
    /// Loads not answered yet.
    pub loads: Vec<InstanceOutput>,
    texts: usize,
}

impl SoloInstance {
    /// An instance built from `config` over an empty [`MemoryStore`] (epoch 0).
    pub fn new(config: ConnectorConfig) -> Self {
        Self::with_store(config, MemoryStore::with_epoch(0))
    }

    /// An instance whose replay window is `window`, the rest default.
    pub fn with_window(window: usize) -> Self {
        Self::new(ConnectorConfig {
            replay_window: window,
            ..ConnectorConfig::default()
        })
    }
}

impl<S: DeliveryStore> SoloInstance<S> {
    /// An instance built from `config` over `store`.
    pub fn with_store(config: ConnectorConfig, store: S) -> Self {
        let now = Instant::now();
        let mut log = Log::new(now);
        log.per_connection = true;
        Self {
            instance: Instance::new(config),
            store,
            now,
            log,
            check: Invariants::new(),
            eager_loads: true,
            loads: Vec::new(),
            texts: 0,
        }
    }

    /// Carries out every output: each is recorded and checked, loads answered from the
    /// store, acks made durable.
    pub fn pump(&mut self) {
        while let Some(output) = self.instance.poll_output() {
            self.check.instance_output(&output);
            self.log.instance_output(self.now, &output);
            match output {
                load @ InstanceOutput::Load { .. } => self.loads.push(load),
                InstanceOutput::Acked(id) => {
                    self.store.ack(&id);
                }
                _ => {}
            }
            if self.eager_loads {
                self.answer_pending();
            }
        }
        self.check.unacked_kept(&self.store);
    }

    /// Answers every pending load from the store, then pumps.
    pub fn answer_loads(&mut self) {
        self.answer_pending();
        self.pump();
    }

    fn answer_pending(&mut self) {
        for load in std::mem::take(&mut self.loads) {
            if let InstanceOutput::Load {
                token,
                after,
                limit,
            } = load
            {
                let deliveries = self.store.unacked_after(after.as_ref(), limit);
                self.instance.offer(self.now, token, deliveries);
            }
        }
    }

    /// A position in the output log, for [`since`](Self::since).
    pub fn mark(&self) -> usize {
        self.log.instance.len()
    }

    /// The outputs since `mark`.
    pub fn since(&self, mark: usize) -> &[Record<InstanceOutput>] {
        &self.log.instance[mark.min(self.log.instance.len())..]
    }

    /// Persists `delivery` and hands it to the instance, as the application does.
    pub fn push(&mut self, delivery: impl Into<Delivery>) -> BufferId {
        let delivery = delivery.into();
        let id = self.store.append(delivery.clone());
        self.check.pushed(&id);
        self.log
            .transcript
            .note(self.now, "app", format_args!("buffer {id}"));
        self.instance.push_buffered(self.now, id.clone(), delivery);
        self.pump();
        id
    }

    /// A socket is accepted.
    pub fn accept(&mut self) -> ConnId {
        let conn = self.instance.accept(self.now);
        self.log
            .transcript
            .note(self.now, "net", format_args!("accept {conn}"));
        self.pump();
        conn
    }

    /// Accepts a connection, reads its [`HELLO`] and answers with a descriptor.
    pub fn handshake(&mut self) -> Result<ConnId, ConnectorError> {
        let conn = self.accept();
        self.greet(conn)?;
        Ok(conn)
    }

    /// Reads [`HELLO`] on the accepted `conn` and answers with a descriptor.
    pub fn greet(&mut self, conn: ConnId) -> Result<(), ConnectorError> {
        self.line(conn, HELLO);
        self.log
            .transcript
            .note(self.now, "app", "descriptor discord");
        self.instance
            .send_descriptor(self.now, conn, CapabilityDescriptor::new("discord", "D"))?;
        self.pump();
        Ok(())
    }

    /// The gateway writes one line on `conn` (a newline is added).
    pub fn line(&mut self, conn: ConnId, line: &str) {
        let bytes = newline(line);
        self.log
            .transcript
            .frame(self.now, &format!("gw→{conn}"), &bytes);
        self.instance.handle_input(self.now, conn, &bytes);
        self.pump();
    }

    /// The gateway acks `id` on `conn`.
    pub fn ack(&mut self, conn: ConnId, id: &BufferId) {
        self.line(
            conn,
            &format!(r#"{{"type":"inbound_ack","bufferId":"{id}"}}"#),
        );
    }

    /// `conn`'s socket ended.
    pub fn closed(&mut self, conn: ConnId, reason: &str) {
        self.log
            .transcript
            .note(self.now, "net", format_args!("{conn} ended: {reason}"));
        self.check.connection_ended(Some(conn));
        self.instance.on_closed(self.now, conn, None, reason);
        self.pump();
    }

    /// Lets `by` pass, firing every deadline on the way.
    pub fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while let Some(at) = self.instance.poll_timeout().filter(|at| *at <= end) {
            self.now = self.now.max(at);
            self.log.transcript.note(self.now, "test", "timeout");
            self.instance.handle_timeout(self.now);
            self.pump();
            self.check
                .after_timeout(self.now, self.instance.poll_timeout());
        }
        self.now = end;
    }

    fn next_delivery(&mut self) -> Delivery {
        self.texts += 1;
        Delivery::from(MessageEvent {
            text: format!("m{}", self.texts).into(),
            ..Default::default()
        })
    }

    /// Persists `n` deliveries (texts `m1`, `m2`, …) and hands each to the instance.
    pub fn buffer(&mut self, n: usize) -> Vec<BufferId> {
        (0..n)
            .map(|_| {
                let delivery = self.next_delivery();
                self.push(delivery)
            })
            .collect()
    }

    /// Offers the next delivery live; returns what became of it.
    pub fn live(&mut self) -> Live {
        let delivery = self.next_delivery();
        let live = self.instance.push_live(self.now, delivery);
        self.log
            .transcript
            .note(self.now, "app", format_args!("push live: {live}"));
        self.pump();
        live
    }

    fn frames_on(&self, conn: ConnId) -> impl Iterator<Item = Value> + '_ {
        self.log
            .instance
            .iter()
            .filter_map(move |r| match &r.output {
                InstanceOutput::Transmit(c, t) if *c == conn => {
                    serde_json::from_str(t.as_str()).ok()
                }
                _ => None,
            })
    }

    /// The buffer ids written on `conn`, in order.
    pub fn sent(&self, conn: ConnId) -> Vec<BufferId> {
        self.frames_on(conn)
            .filter_map(|f| f["bufferId"].as_str().map(BufferId::from))
            .collect()
    }

    /// The texts of the `inbound` frames written on `conn`, in order.
    pub fn texts(&self, conn: ConnId) -> Vec<String> {
        self.frames_on(conn)
            .filter(|f| f["type"] == "inbound")
            .filter_map(|f| f["event"]["text"].as_str().map(str::to_owned))
            .collect()
    }

    /// The frame types written on `conn`, in order.
    pub fn frame_types(&self, conn: ConnId) -> Vec<String> {
        self.frames_on(conn)
            .filter_map(|f| f["type"].as_str().map(str::to_owned))
            .collect()
    }

    /// The socket commands for `conn`, in order.
    pub fn commands(&self, conn: ConnId) -> Vec<ConnectorCommand> {
        self.log
            .instance
            .iter()
            .filter_map(|r| match &r.output {
                InstanceOutput::Command(c, command) if *c == conn => Some(command.clone()),
                _ => None,
            })
            .collect()
    }

    /// The deliveries the gateway acked, in order.
    pub fn acked(&self) -> Vec<BufferId> {
        self.log
            .instance
            .iter()
            .filter_map(|r| match &r.output {
                InstanceOutput::Acked(id) => Some(id.clone()),
                _ => None,
            })
            .collect()
    }

    /// How many times the instance asked for a wake-up.
    pub fn wakes(&self) -> usize {
        self.log
            .instance
            .iter()
            .filter(|r| matches!(r.output, InstanceOutput::WakeNeeded))
            .count()
    }
}

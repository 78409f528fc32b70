//! Two small runs on a virtual clock: [`Conn`] drives one `ConnectorMachine`, [`Inst`] an
//! `Instance` over a `MemoryStore` it answers loads from and acks into.

use std::time::{Duration, Instant};

use relay_machine::connector::{
    ConnId, ConnectorCommand, ConnectorConfig, ConnectorEvent, ConnectorMachine, Delivery,
    DeliveryStore, Instance, InstanceOutput, Live, MemoryStore, Output,
};
use relay_machine::transcript::Transcript;
use relay_machine::wire::{BufferId, CapabilityDescriptor, MessageEvent};

/// Snapshots a transcript next to the other snapshots, in `tests/snapshots/`.
macro_rules! snap {
    ($transcript:expr) => {
        insta::with_settings!({ snapshot_path => "../snapshots" }, {
            insta::assert_snapshot!($transcript.render());
        })
    };
}
pub(crate) use snap;

pub const HELLO: &str = r#"{"type":"hello","platform":"discord","botId":"1"}"#;

/// A line of `inbound_ack` for `id`.
pub fn ack(id: &BufferId) -> String {
    format!(r#"{{"type":"inbound_ack","bufferId":"{id}"}}"#)
}

fn newline(line: &str) -> Vec<u8> {
    format!("{line}\n").into_bytes()
}

/// One connection's machine, its clock, its transcript and what it gave out.
pub struct Conn {
    pub now: Instant,
    pub m: ConnectorMachine,
    pub transcript: Transcript,
    pub frames: Vec<String>,
    pub commands: Vec<ConnectorCommand>,
    pub events: Vec<ConnectorEvent>,
}

impl Conn {
    pub fn new(config: ConnectorConfig) -> Self {
        let now = Instant::now();
        Self {
            now,
            m: ConnectorMachine::new(config, now),
            transcript: Transcript::new(now),
            frames: Vec::new(),
            commands: Vec::new(),
            events: Vec::new(),
        }
    }

    /// A machine past its handshake: `hello` for discord:1, answered with a descriptor.
    pub fn handshaken(config: ConnectorConfig) -> Self {
        let mut run = Self::new(config);
        run.line(HELLO);
        run.descriptor("discord").unwrap();
        run
    }

    pub fn drain(&mut self) {
        while let Some(output) = self.m.poll_output() {
            self.transcript.connector_output(self.now, &output);
            match output {
                Output::Transmit(t) => self.frames.push(t.into_string()),
                Output::Command(c) => self.commands.push(c),
                Output::Event(e) => self.events.push(e),
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Feeds raw bytes as one WebSocket message.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.transcript.frame(self.now, "gw→conn", bytes);
        self.m.handle_input(self.now, bytes);
        self.drain();
    }

    /// Feeds one line (a newline is added).
    pub fn line(&mut self, line: &str) {
        self.bytes(&newline(line));
    }

    pub fn descriptor(
        &mut self,
        platform: &str,
    ) -> Result<(), relay_machine::connector::ConnectorError> {
        let result = self
            .m
            .send_descriptor(self.now, CapabilityDescriptor::new(platform, platform));
        let outcome = match &result {
            Ok(()) => String::new(),
            Err(e) => format!(": refused ({e})"),
        };
        self.transcript.note(
            self.now,
            "app",
            format_args!("descriptor {platform}{outcome}"),
        );
        self.drain();
        result
    }

    /// Lets `ms` pass, firing every deadline on the way.
    pub fn advance(&mut self, ms: u64) {
        let end = self.now + Duration::from_millis(ms);
        while let Some(at) = self.m.poll_timeout().filter(|at| *at <= end) {
            self.now = at;
            self.transcript.note(at, "test", "timeout");
            self.m.handle_timeout(at);
            self.drain();
        }
        self.now = end;
    }

    /// The diagnostics so far, in order.
    pub fn diagnostics(&self) -> Vec<&relay_machine::connector::ConnectorDiagnostic> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ConnectorEvent::Diagnostic(d) => Some(d),
                _ => None,
            })
            .collect()
    }
}

/// An instance, the application's durable store and what each connection was sent.
pub struct Inst {
    pub now: Instant,
    pub instance: Instance,
    pub store: MemoryStore,
    pub transcript: Transcript,
    /// Every output but the loads (answered at once from the store), in order.
    pub outputs: Vec<InstanceOutput>,
    texts: usize,
}

impl Inst {
    pub fn new(config: ConnectorConfig) -> Self {
        let now = Instant::now();
        Self {
            now,
            instance: Instance::new(config),
            store: MemoryStore::with_epoch(0),
            transcript: Transcript::new(now),
            outputs: Vec::new(),
            texts: 0,
        }
    }

    pub fn with_window(window: usize) -> Self {
        Self::new(ConnectorConfig {
            replay_window: window,
            ..ConnectorConfig::default()
        })
    }

    /// Carries out every output: frames and events are recorded, loads answered from the
    /// store, acks made durable.
    pub fn pump(&mut self) {
        while let Some(output) = self.instance.poll_output() {
            match &output {
                InstanceOutput::Transmit(c, t) => {
                    self.transcript
                        .frame(self.now, &format!("{c}→gw"), t.as_bytes());
                }
                InstanceOutput::Command(c, command) => {
                    let what = match command {
                        ConnectorCommand::Close { code, reason } => {
                            format!("close {code} {reason:?}")
                        }
                        other => format!("{other:?}"),
                    };
                    self.transcript.note(self.now, &c.to_string(), what);
                }
                InstanceOutput::Event(c, e) => {
                    self.transcript
                        .note(self.now, &c.to_string(), format_args!("event {e}"));
                }
                InstanceOutput::Load { .. }
                | InstanceOutput::Acked(_)
                | InstanceOutput::WakeNeeded => {
                    self.transcript.instance_output(self.now, &output);
                }
                other => panic!("unexpected {other:?}"),
            }
            match output {
                InstanceOutput::Load {
                    token,
                    after,
                    limit,
                } => {
                    let deliveries = self.store.unacked_after(after.as_ref(), limit);
                    self.instance.offer(self.now, token, deliveries);
                }
                InstanceOutput::Acked(id) => {
                    self.store.ack(&id);
                    self.outputs.push(InstanceOutput::Acked(id));
                }
                other => self.outputs.push(other),
            }
        }
    }

    pub fn accept(&mut self) -> ConnId {
        let conn = self.instance.accept(self.now);
        self.transcript
            .note(self.now, "net", format_args!("accept {conn}"));
        self.pump();
        conn
    }

    /// Accepts a connection, reads its `hello` and answers with a descriptor.
    pub fn handshake(&mut self) -> ConnId {
        let conn = self.accept();
        self.line(conn, HELLO);
        self.transcript.note(self.now, "app", "descriptor discord");
        self.instance
            .send_descriptor(self.now, conn, CapabilityDescriptor::new("discord", "D"))
            .unwrap();
        self.pump();
        conn
    }

    pub fn line(&mut self, conn: ConnId, line: &str) {
        let bytes = newline(line);
        self.transcript
            .frame(self.now, &format!("gw→{conn}"), &bytes);
        self.instance.handle_input(self.now, conn, &bytes);
        self.pump();
    }

    pub fn ack(&mut self, conn: ConnId, id: &BufferId) {
        self.line(conn, &ack(id));
    }

    pub fn closed(&mut self, conn: ConnId, reason: &str) {
        self.transcript
            .note(self.now, "net", format_args!("{conn} ended: {reason}"));
        self.instance.on_closed(self.now, conn, None, reason);
        self.pump();
    }

    fn next_delivery(&mut self) -> Delivery {
        self.texts += 1;
        Delivery::from(MessageEvent {
            text: format!("m{}", self.texts).into(),
            ..Default::default()
        })
    }

    /// Persists `n` deliveries and hands each to the instance.
    pub fn buffer(&mut self, n: usize) -> Vec<BufferId> {
        (0..n)
            .map(|_| {
                let delivery = self.next_delivery();
                let id = self.store.append(delivery.clone());
                self.transcript
                    .note(self.now, "app", format_args!("buffer {id}"));
                self.instance.push_buffered(self.now, id.clone(), delivery);
                self.pump();
                id
            })
            .collect()
    }

    /// Offers a delivery live; returns what became of it.
    pub fn live(&mut self) -> Live {
        let delivery = self.next_delivery();
        let live = self.instance.push_live(self.now, delivery);
        self.transcript
            .note(self.now, "app", format_args!("push live: {live}"));
        self.pump();
        live
    }

    /// The buffer ids written on `conn`, in order.
    pub fn sent(&self, conn: ConnId) -> Vec<BufferId> {
        self.outputs
            .iter()
            .filter_map(|o| match o {
                InstanceOutput::Transmit(c, t) if *c == conn => {
                    let frame: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                    frame["bufferId"].as_str().map(BufferId::from)
                }
                _ => None,
            })
            .collect()
    }

    /// The frame types written on `conn`, in order.
    pub fn frame_types(&self, conn: ConnId) -> Vec<String> {
        self.outputs
            .iter()
            .filter_map(|o| match o {
                InstanceOutput::Transmit(c, t) if *c == conn => {
                    let frame: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                    frame["type"].as_str().map(str::to_owned)
                }
                _ => None,
            })
            .collect()
    }

    pub fn commands(&self, conn: ConnId) -> Vec<ConnectorCommand> {
        self.outputs
            .iter()
            .filter_map(|o| match o {
                InstanceOutput::Command(c, command) if *c == conn => Some(command.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn acked(&self) -> Vec<BufferId> {
        self.outputs
            .iter()
            .filter_map(|o| match o {
                InstanceOutput::Acked(id) => Some(id.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn wakes(&self) -> usize {
        self.outputs
            .iter()
            .filter(|o| matches!(o, InstanceOutput::WakeNeeded))
            .count()
    }
}

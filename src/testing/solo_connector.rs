//! The connector alone, the gateway scripted by the test: one [`ConnectorMachine`].

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Invariants, Log};
use crate::connector::{
    self, ConnectorCommand, ConnectorConfig, ConnectorDiagnostic, ConnectorError, ConnectorEvent,
    ConnectorMachine,
};
use crate::wire::CapabilityDescriptor;

/// The `hello` the scripted gateway says by default: discord, bot `1`.
pub const HELLO: &str = r#"{"type":"hello","platform":"discord","botId":"1"}"#;

pub(super) fn newline(line: &str) -> Vec<u8> {
    format!("{line}\n").into_bytes()
}

/// One [`ConnectorMachine`] on a virtual clock whose gateway the test plays. Call the
/// machine's application methods on [`machine`](Self::machine) and then
/// [`settle`](Self::settle), which records and checks every output.
#[derive(Debug)]
pub struct SoloConnector {
    /// The machine; after calling it directly, [`settle`](Self::settle).
    pub machine: ConnectorMachine,
    /// The virtual clock's origin.
    pub start: Instant,
    /// The virtual clock.
    pub now: Instant,
    /// Every output and the transcript.
    pub log: Log,
    /// The invariants checked after every step.
    pub check: Invariants,
}

impl SoloConnector {
    /// A machine built from `config`, its socket accepted at a fresh virtual start.
    pub fn new(config: ConnectorConfig) -> Self {
        let start = Instant::now();
        Self {
            machine: ConnectorMachine::new(config, start),
            start,
            now: start,
            log: Log::new(start),
            check: Invariants::new(),
        }
    }

    /// A machine past its handshake: [`HELLO`], answered with a descriptor.
    pub fn handshaken(config: ConnectorConfig) -> Result<Self, ConnectorError> {
        let mut run = Self::new(config);
        run.line(HELLO);
        run.descriptor("discord")?;
        Ok(run)
    }

    /// Milliseconds since the start.
    pub fn ms(&self) -> u64 {
        self.log.ms(self.now)
    }

    /// Takes every output, records and checks each.
    pub fn settle(&mut self) {
        while let Some(output) = self.machine.poll_output() {
            self.check.connector_output(&output);
            self.log.connector_output(self.now, &output);
        }
    }

    /// The gateway writes raw bytes as one WebSocket message.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.log.transcript.frame(self.now, "gw→conn", bytes);
        self.machine.handle_input(self.now, bytes);
        self.settle();
    }

    /// The gateway writes one line (a newline is added).
    pub fn line(&mut self, line: &str) {
        self.bytes(&newline(line));
    }

    /// The gateway writes `bytes` in one message; `label` stands for them.
    pub fn input(&mut self, label: &str, bytes: &[u8]) {
        self.log.transcript.note(self.now, "gw→conn", label);
        self.machine.handle_input(self.now, bytes);
        self.settle();
    }

    /// A Pong came back.
    pub fn pong(&mut self) {
        self.log.transcript.note(self.now, "socket", "pong");
        self.machine.on_pong(self.now);
        self.settle();
    }

    /// The application answers the `hello` with a descriptor for `platform`.
    pub fn descriptor(&mut self, platform: &str) -> Result<(), ConnectorError> {
        let descriptor = CapabilityDescriptor::new(platform, platform);
        let result = self.machine.send_descriptor(self.now, descriptor);
        let outcome = match &result {
            Ok(()) => String::new(),
            Err(e) => format!(": refused ({e})"),
        };
        self.log.transcript.note(
            self.now,
            "app",
            format_args!("descriptor {platform}{outcome}"),
        );
        self.settle();
        result
    }

    /// Lets `by` pass, firing every deadline on the way.
    pub fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        while self.machine.poll_timeout().is_some_and(|at| at <= end) {
            self.step();
        }
        self.now = end;
    }

    /// Moves the clock to the next deadline and handles it; `false` when none is pending.
    pub fn step(&mut self) -> bool {
        let Some(at) = self.machine.poll_timeout() else {
            return false;
        };
        self.now = self.now.max(at);
        self.log.transcript.note(self.now, "test", "timeout");
        self.machine.handle_timeout(self.now);
        self.settle();
        self.check
            .after_timeout(self.now, self.machine.poll_timeout());
        true
    }

    /// A position in the output log, for the `*_since` queries.
    pub fn mark(&self) -> usize {
        self.log.connector.len()
    }

    fn picked<T>(&self, mark: usize, pick: impl Fn(&connector::Output) -> Option<T>) -> Vec<T> {
        let log = &self.log.connector;
        log[mark.min(log.len())..]
            .iter()
            .filter_map(|r| pick(&r.output))
            .collect()
    }

    /// The frames written since `mark`, parsed.
    pub fn frames_since(&self, mark: usize) -> Vec<Value> {
        self.picked(mark, |o| match o {
            connector::Output::Transmit(t) => serde_json::from_str(t.as_str()).ok(),
            _ => None,
        })
    }

    /// The events since `mark`.
    pub fn events_since(&self, mark: usize) -> Vec<ConnectorEvent> {
        self.picked(mark, |o| match o {
            connector::Output::Event(e) => Some(e.clone()),
            _ => None,
        })
    }

    /// The frames written so far, in order.
    pub fn frames(&self) -> Vec<String> {
        self.picked(0, |o| match o {
            connector::Output::Transmit(t) => Some(t.as_str().to_owned()),
            _ => None,
        })
    }

    /// The socket commands so far, in order.
    pub fn commands(&self) -> Vec<ConnectorCommand> {
        self.picked(0, |o| match o {
            connector::Output::Command(c) => Some(c.clone()),
            _ => None,
        })
    }

    /// The events so far, in order.
    pub fn events(&self) -> Vec<ConnectorEvent> {
        self.events_since(0)
    }

    /// The diagnostics so far, in order.
    pub fn diagnostics(&self) -> Vec<ConnectorDiagnostic> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                ConnectorEvent::Diagnostic(d) => Some(d),
                _ => None,
            })
            .collect()
    }
}

//! Readable transcripts of a protocol run, for snapshot tests (`insta::assert_snapshot!`).
//!
//! Each line is `+<ms>ms <who> <what>`, with times relative to the start, so a snapshot
//! does not depend on when the test ran:
//!
//! ```text
//! +0ms     gw→conn  hello {"platform":"telegram","botId":"701"}
//! +30000ms gw       event Response 4f1c… Err(Timeout) ambiguous
//! ```

use std::fmt::{self, Write as _};
use std::time::Instant;

use serde_json::Value;

use crate::connector::{self, ConnectorCommand};
use crate::gateway::{self, ConnectionCommand, GatewayEvent, RelayMachine};

/// Collects the lines of a run.
#[derive(Debug, Clone)]
pub struct Transcript {
    start: Instant,
    lines: Vec<(u128, String, String)>,
}

impl Transcript {
    /// A transcript whose times are relative to `start`.
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            lines: Vec::new(),
        }
    }

    /// Records a free-form line, e.g. an input the test fed.
    pub fn note(&mut self, now: Instant, who: &str, what: impl fmt::Display) {
        let ms = now.saturating_duration_since(self.start).as_millis();
        self.lines.push((ms, who.to_owned(), what.to_string()));
    }

    /// Records one wire line: its `type`, then its other fields as compact JSON. Bytes
    /// that are not a JSON object are shown as text.
    pub fn frame(&mut self, now: Instant, direction: &str, bytes: &[u8]) {
        self.note(now, direction, render_frame(bytes));
    }

    /// Records one gateway output without consuming it: frames labelled `gw→conn`,
    /// commands and events `gw`.
    pub fn gateway_output(&mut self, now: Instant, output: &gateway::Output) {
        match output {
            gateway::Output::Transmit(t) => self.frame(now, "gw→conn", t.as_bytes()),
            gateway::Output::Command(c) => self.note(now, "gw", render_command(c)),
            gateway::Output::Event(e) => self.note(now, "gw", render_gateway_event(now, e)),
        }
    }

    /// Records one connector output without consuming it: frames labelled `conn→gw`,
    /// commands and events `conn`.
    pub fn connector_output(&mut self, now: Instant, output: &connector::Output) {
        match output {
            connector::Output::Transmit(t) => self.frame(now, "conn→gw", t.as_bytes()),
            connector::Output::Command(command) => self.note(now, "conn", render_conn(command)),
            connector::Output::Event(e) => self.note(now, "conn", format_args!("event {e}")),
        }
    }

    /// Records one [`Instance`](crate::connector::Instance) output without consuming it:
    /// as [`connector_output`](Self::connector_output) for its connections' outputs, and
    /// `conn load ...`, `conn acked ...`, `conn wake needed` for its own.
    pub fn instance_output(&mut self, now: Instant, output: &connector::InstanceOutput) {
        use connector::InstanceOutput;
        match output {
            InstanceOutput::Transmit(_, t) => self.frame(now, "conn→gw", t.as_bytes()),
            InstanceOutput::Command(_, command) => self.note(now, "conn", render_conn(command)),
            InstanceOutput::Event(_, e) => self.note(now, "conn", format_args!("event {e}")),
            InstanceOutput::Load { after, limit, .. } => {
                let after = after.as_ref().map_or("the start", |a| a.as_str());
                self.note(now, "conn", format_args!("load {limit} after {after}"))
            }
            InstanceOutput::Acked(id) => self.note(now, "conn", format_args!("acked {id}")),
            InstanceOutput::WakeNeeded => self.note(now, "conn", "wake needed"),
        }
    }

    /// Records one [`Instance`](crate::connector::Instance) output as
    /// [`instance_output`](Self::instance_output) does, but labels a connection's frames,
    /// commands and events with the connection (`#0→gw`, `#0`), for runs with several.
    pub fn instance_output_per_connection(
        &mut self,
        now: Instant,
        output: &connector::InstanceOutput,
    ) {
        use connector::InstanceOutput;
        match output {
            InstanceOutput::Transmit(c, t) => self.frame(now, &format!("{c}→gw"), t.as_bytes()),
            InstanceOutput::Command(c, command) => {
                self.note(now, &c.to_string(), render_conn(command))
            }
            InstanceOutput::Event(c, e) => {
                self.note(now, &c.to_string(), format_args!("event {e}"))
            }
            InstanceOutput::Load { .. } | InstanceOutput::Acked(_) | InstanceOutput::WakeNeeded => {
                self.instance_output(now, output)
            }
        }
    }

    /// Takes every output `gateway` has, records each in order, and returns them.
    pub fn drain_gateway(
        &mut self,
        now: Instant,
        gateway: &mut RelayMachine,
    ) -> Vec<gateway::Output> {
        let outputs: Vec<_> = std::iter::from_fn(|| gateway.poll_output()).collect();
        for output in &outputs {
            self.gateway_output(now, output);
        }
        outputs
    }

    /// The transcript, one line per entry, times right-aligned.
    pub fn render(&self) -> String {
        let width = self
            .lines
            .iter()
            .map(|(ms, _, _)| ms.to_string().len())
            .max()
            .unwrap_or(1);
        let who_width = self
            .lines
            .iter()
            .map(|(_, who, _)| who.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (ms, who, what) in &self.lines {
            let pad = who_width - who.chars().count();
            let _ = writeln!(out, "+{ms:>width$}ms {who}{:pad$} {what}", "");
        }
        out
    }
}

impl fmt::Display for Transcript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

fn render_frame(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let trimmed = text.trim_end_matches(['\n', '\r']);
    match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Object(mut map)) => {
            let kind = match map.remove("type") {
                Some(Value::String(t)) => t,
                Some(other) => other.to_string(),
                None => "<no type>".to_owned(),
            };
            if map.is_empty() {
                kind
            } else {
                format!("{kind} {}", Value::Object(map))
            }
        }
        _ => format!("<raw> {trimmed:?}"),
    }
}

fn render_command(command: &ConnectionCommand) -> String {
    match command {
        ConnectionCommand::Dial {
            generation,
            purpose,
        } => format!("dial #{generation} ({purpose:?})"),
        ConnectionCommand::Close { code, reason } => format!("close {code} {reason:?}"),
        ConnectionCommand::Ping => "ping".to_owned(),
        ConnectionCommand::Abort => "abort".to_owned(),
    }
}

fn render_conn(command: &ConnectorCommand) -> String {
    match command {
        ConnectorCommand::Close { code, reason } => format!("close {code} {reason:?}"),
        ConnectorCommand::Ping => "ping".to_owned(),
        ConnectorCommand::Abort => "abort".to_owned(),
    }
}

fn render_gateway_event(now: Instant, event: &GatewayEvent) -> String {
    // Deadlines are absolute instants; a transcript shows them as delays.
    if let GatewayEvent::Reconnecting { at, purpose } = event {
        let ms = at.saturating_duration_since(now).as_millis();
        format!("event Reconnecting in {ms}ms ({purpose:?})")
    } else if let GatewayEvent::RedialHeld { until } = event {
        let ms = until.saturating_duration_since(now).as_millis();
        format!("event RedialHeld for {ms}ms")
    } else {
        format!("event {event}")
    }
}

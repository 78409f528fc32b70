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

use crate::connector::{self, ConnectorCommand, ConnectorDiagnostic, ConnectorEvent};
use crate::gateway::{self, ConnectionCommand, Diagnostic, GatewayEvent, RelayMachine};

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
            connector::Output::Command(ConnectorCommand::Close { code, reason }) => {
                self.note(now, "conn", format_args!("close {code} {reason:?}"))
            }
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
            InstanceOutput::Command(_, ConnectorCommand::Close { code, reason }) => {
                self.note(now, "conn", format_args!("close {code} {reason:?}"))
            }
            InstanceOutput::Event(_, e) => self.note(now, "conn", format_args!("event {e}")),
            InstanceOutput::Load { after, limit, .. } => {
                let after = after.as_ref().map_or("the start", |a| a.as_str());
                self.note(now, "conn", format_args!("load {limit} after {after}"))
            }
            InstanceOutput::Acked(id) => self.note(now, "conn", format_args!("acked {id}")),
            InstanceOutput::WakeNeeded => self.note(now, "conn", "wake needed"),
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

impl fmt::Display for GatewayEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GatewayEvent::HandshakeComplete { platform } => {
                write!(f, "HandshakeComplete default={platform}")
            }
            GatewayEvent::Descriptor(d) => write!(
                f,
                "Descriptor {} max={} unit={}",
                d.platform,
                d.max_message_length,
                d.len_unit.as_str()
            ),
            GatewayEvent::ConnectFailed(failure) => write!(f, "ConnectFailed {failure:?}"),
            GatewayEvent::Inbound { event, buffer_id } => write!(
                f,
                "Inbound {}:{} {:?}{}",
                event.source.platform,
                event.source.chat_id,
                event.text,
                buffered(buffer_id.as_ref())
            ),
            GatewayEvent::Passthrough { forward, buffer_id } => write!(
                f,
                "Passthrough {} {} {}{}",
                forward.platform,
                forward.path,
                match &forward.body {
                    Ok(body) => format!("body={}B", body.len()),
                    Err(e) => format!("body error: {}", e.reason),
                },
                buffered(buffer_id.as_ref())
            ),
            GatewayEvent::Interrupt {
                session_key,
                chat_id,
            } => write!(f, "Interrupt {session_key} chat={chat_id}"),
            GatewayEvent::Response { id, result } => match result {
                Ok(r) => write!(f, "Response {id} Ok({})", json(r)),
                Err(e) => write!(
                    f,
                    "Response {id} Err({e:?}){}",
                    if e.is_ambiguous() { " ambiguous" } else { "" }
                ),
            },
            GatewayEvent::GoingIdle { acked, dormant } => {
                write!(f, "GoingIdle acked={acked} dormant={dormant}")
            }
            GatewayEvent::Disconnected { code, reason } => match code {
                Some(code) => write!(f, "Disconnected {code} {reason:?}"),
                None => write!(f, "Disconnected {reason:?}"),
            },
            GatewayEvent::Reconnecting { purpose, .. } => write!(f, "Reconnecting ({purpose:?})"),
            GatewayEvent::RedialHeld { .. } => write!(f, "RedialHeld"),
            GatewayEvent::Revoked { reason } => write!(f, "Revoked {reason:?}"),
            GatewayEvent::Closed => write!(f, "Closed"),
            GatewayEvent::Undeliverable { buffer_id, error } => {
                write!(f, "Undeliverable buffer={buffer_id} {error}")
            }
            GatewayEvent::InterruptNotSent { session_key } => {
                write!(f, "InterruptNotSent {session_key}")
            }
            GatewayEvent::Diagnostic(Diagnostic::Decode(e)) => write!(f, "Diagnostic {e}"),
            GatewayEvent::Diagnostic(d) => write!(f, "Diagnostic {d:?}"),
        }
    }
}

impl fmt::Display for ConnectorEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectorEvent::Hello {
                identity,
                command_manifest,
            } => write!(
                f,
                "Hello {}:{}{}",
                identity.platform,
                identity.bot_id,
                if command_manifest.is_some() {
                    " +manifest"
                } else {
                    ""
                }
            ),
            ConnectorEvent::Outbound {
                request_id,
                action,
                identity,
            } => write!(
                f,
                "Outbound {request_id} as {}:{} {}",
                identity.platform,
                identity.bot_id,
                json(action)
            ),
            ConnectorEvent::Interrupt {
                session_key,
                reason,
            } => write!(f, "Interrupt {session_key} reason={reason:?}"),
            ConnectorEvent::Acked(id) => write!(f, "Acked {id}"),
            ConnectorEvent::WentIdle => write!(f, "WentIdle"),
            ConnectorEvent::Diagnostic(ConnectorDiagnostic::Decode(e)) => {
                write!(f, "Diagnostic {e}")
            }
            ConnectorEvent::Diagnostic(d) => write!(f, "Diagnostic {d:?}"),
        }
    }
}

fn buffered(buffer_id: Option<&crate::wire::BufferId>) -> String {
    buffer_id.map_or_else(String::new, |b| format!(" buffer={b}"))
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

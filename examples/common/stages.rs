//! The gateway examples' application, free of any runtime so that the smol and the tokio
//! driver share it: the handshake, `--sends` results, `--wait-inbound` deliveries, then
//! going idle or disconnecting, each stage bounded by `--timeout`; one JSON line per event.

use std::time::{Duration, Instant};

use relay_machine::gateway::{GatewayEvent, RelayMachine};
use relay_machine::wire::{RequestId, SendAction};
use serde_json::json;

/// The examples' exit codes past 0 (64, a usage error, is `cli`'s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The connection or the handshake failed (4401 included).
    Failed = 2,
    /// A stage did not see what it waits for within `--timeout`.
    TimedOut = 3,
    /// The connector did not acknowledge going idle.
    NotIdle = 4,
}

/// What the flags ask the application to do.
pub struct Plan {
    pub sends: usize,
    pub wait_inbound: usize,
    pub go_idle: bool,
    pub timeout: Duration,
    /// `--timings`: a `timing` line when the results and the inbound stages end.
    pub timings: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Handshake,
    Results,
    Inbound,
    GoingIdle,
    Closing,
}

/// Where the application is; the driver feeds it every event and asks for its deadline.
pub struct Stages {
    plan: Plan,
    stage: Stage,
    /// The current stage's end.
    pub deadline: Instant,
    requests: Vec<RequestId>,
    results: usize,
    inbound: usize,
    /// When the handshake completed (the sends issued, the connector's pushes begun):
    /// what a `timing` line measures from.
    handshaken_at: Instant,
}

impl Stages {
    pub fn new(plan: Plan, now: Instant) -> Self {
        Self {
            deadline: now + plan.timeout,
            plan,
            stage: Stage::Handshake,
            requests: Vec::new(),
            results: 0,
            inbound: 0,
            handshaken_at: now,
        }
    }

    /// The deadline passed without what the current stage waits for.
    pub fn timed_out(&self) -> Exit {
        eprintln!("gateway: timed out waiting for {:?}", self.stage);
        if self.stage == Stage::Handshake {
            Exit::Failed
        } else {
            Exit::TimedOut
        }
    }

    /// The machine is done and every output was carried out.
    pub fn ended(&self) -> Result<(), Exit> {
        if self.stage == Stage::Closing {
            Ok(())
        } else {
            Err(fail("the connection ended"))
        }
    }

    /// Acts on one event; `Some` when the run is over.
    pub fn on_event(
        &mut self,
        machine: &mut RelayMachine,
        now: Instant,
        event: GatewayEvent,
    ) -> Option<Result<(), Exit>> {
        print_event(&event);
        self.inbound += usize::from(matches!(
            event,
            GatewayEvent::Inbound { .. } | GatewayEvent::Undeliverable { .. }
        ));
        let before = self.stage;
        match event {
            GatewayEvent::ConnectFailed(why) => return Some(Err(fail(&why.to_string()))),
            GatewayEvent::Revoked { reason } => return Some(Err(fail(&reason))),
            GatewayEvent::HandshakeComplete { .. } if self.stage == Stage::Handshake => {
                for i in 0..self.plan.sends {
                    let action = SendAction {
                        chat_id: "demo".into(),
                        content: format!("send {i}"),
                        ..Default::default()
                    };
                    match machine.send(now, action, None) {
                        Ok(id) => self.requests.push(id),
                        Err(e) => println!(
                            "{}",
                            json!({ "event": "send_failed", "error": e.to_string() })
                        ),
                    }
                }
                self.stage = Stage::Results;
                self.handshaken_at = now;
            }
            GatewayEvent::Response { id, .. } if self.requests.contains(&id) => self.results += 1,
            GatewayEvent::Inbound { buffer_id, .. }
            | GatewayEvent::Passthrough { buffer_id, .. } => {
                if let Some(id) = buffer_id {
                    let _ = machine.ack_inbound(now, &id);
                }
            }
            GatewayEvent::Undeliverable { buffer_id, .. } => {
                // Logged above; acked so the connector stops redelivering it.
                let _ = machine.ack_inbound(now, &buffer_id);
            }
            GatewayEvent::GoingIdle { acked: false, .. } => return Some(Err(Exit::NotIdle)),
            GatewayEvent::GoingIdle { acked: true, .. } => {
                machine.disconnect(now, None);
                self.stage = Stage::Closing;
            }
            _ => {}
        }
        // Move on once what this stage waits for has come.
        if self.stage == Stage::Results && self.results == self.requests.len() {
            self.timing("results", self.plan.sends, self.results, now);
            self.stage = Stage::Inbound;
        }
        if self.stage == Stage::Inbound && self.inbound >= self.plan.wait_inbound {
            self.timing("inbound", self.plan.wait_inbound, self.inbound, now);
            if self.plan.go_idle {
                self.stage = Stage::GoingIdle;
                let _ = machine.go_idle(now);
            } else {
                self.stage = Stage::Closing;
                machine.disconnect(now, None);
            }
        }
        if self.stage != before {
            self.deadline = now + self.plan.timeout;
        }
        None
    }
}

impl Stages {
    /// `--timings`: a stage that waited for `asked` (> 0) things ended with `count` of them:
    /// how long since the handshake (both the sends and the connector's pushes start
    /// there, and may overlap) and the count per second.
    fn timing(&self, stage: &str, asked: usize, count: usize, now: Instant) {
        if !self.plan.timings || asked == 0 {
            return;
        }
        let seconds = now.duration_since(self.handshaken_at).as_secs_f64();
        let per_second = if seconds > 0.0 {
            count as f64 / seconds
        } else {
            0.0
        };
        println!(
            "{}",
            json!({ "event": "timing", "stage": stage, "count": count, "seconds": seconds, "per_second": per_second.round() })
        );
    }
}

/// Reports a failure to connect or a lost connection.
pub fn fail(why: &str) -> Exit {
    eprintln!("gateway: connection failed: {why}");
    Exit::Failed
}

/// One JSON line for an event.
pub fn print_event(event: &GatewayEvent) {
    let line = match event {
        GatewayEvent::Descriptor(d) => json!({ "event": "descriptor", "descriptor": d }),
        GatewayEvent::Response { id, result: Ok(r) } => {
            json!({ "event": "result", "requestId": id, "result": r })
        }
        GatewayEvent::Response { id, result: Err(e) } => {
            json!({ "event": "result", "requestId": id, "error": e.to_string(), "ambiguous": e.is_ambiguous() })
        }
        GatewayEvent::Inbound { event, buffer_id } => {
            json!({ "event": "inbound", "bufferId": buffer_id, "inbound": event })
        }
        GatewayEvent::Passthrough { forward, buffer_id } => {
            json!({ "event": "passthrough", "bufferId": buffer_id,
            "platform": forward.platform, "botId": forward.bot_id, "path": forward.path,
            "body": match &forward.body { Ok(b) => json!(String::from_utf8_lossy(b)), Err(e) => json!({ "error": e.to_string() }) } })
        }
        GatewayEvent::Interrupt {
            session_key,
            chat_id,
        } => json!({ "event": "interrupt", "session_key": session_key, "chat_id": chat_id }),
        GatewayEvent::GoingIdle { acked, .. } => json!({ "event": "going_idle", "acked": acked }),
        GatewayEvent::Undeliverable { buffer_id, error } => {
            json!({ "event": "undeliverable", "bufferId": buffer_id, "error": error.to_string() })
        }
        other => json!({ "event": "status", "detail": status(other) }),
    };
    println!("{line}");
}

/// A `status` line's detail, for people: the event's name first (`Disconnected`, ...),
/// then what it carries, every value in its `Display` form.
fn status(event: &GatewayEvent) -> String {
    match event {
        GatewayEvent::ConnectFailed(why) => format!("ConnectFailed: {why}"),
        GatewayEvent::Disconnected {
            code: Some(code),
            reason,
        } => format!("Disconnected {code} {reason}"),
        GatewayEvent::Disconnected { code: None, reason } => format!("Disconnected {reason}"),
        GatewayEvent::Reconnecting { purpose, .. } => format!("Reconnecting ({purpose})"),
        GatewayEvent::Revoked { reason } => format!("Revoked {reason}"),
        GatewayEvent::Diagnostic(d) => format!("Diagnostic {d}"),
        other => other.to_string(),
    }
}

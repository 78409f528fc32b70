//! The gateway examples' application, free of any runtime so that the smol and the tokio
//! driver share it: the handshake, `--sends` results, `--wait-inbound` deliveries, then
//! going idle or disconnecting, each stage bounded by `--timeout`; one JSON line per event.

use std::time::{Duration, Instant};

use relay_machine::gateway::{GatewayConfig, GatewayEvent, RelayMachine};
use relay_machine::wire::{RequestId, SendAction};
use serde_json::json;

use crate::cli;

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
#[derive(Clone)]
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
                        content: format!("send {i}").into(),
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

/// The command line of both gateway examples (`{name}` is the program's name).
const HELP_TEMPLATE: &str = "\
usage: {name} --url URL [--identity PLATFORM:BOTID]... [--gateway-id ID --secret S]
    [--sends N] [--wait-inbound K] [--go-idle] [--timings] [--timeout SECS]
    [--ping-interval S] [--liveness-timeout S] [--dial-timeout S] [--close-timeout S]
    [--request-timeout S] [--backoff-base S] [--backoff-cap S]

  --url URL               the connector (http(s) or ws; default GATEWAY_RELAY_URL)
  --identity P:BOT        a platform identity, repeatable; BOT may be empty (\"discord:\")
                          (default GATEWAY_RELAY_PLATFORMS with GATEWAY_RELAY_BOT_IDS,
                          a JSON object like {\"discord\": {\"botId\": \"111\"}})
  --gateway-id ID         the upgrade token's gateway id (default GATEWAY_RELAY_ID)
  --secret S              the upgrade token's secret; needs --gateway-id
                          (default GATEWAY_RELAY_SECRET)
  --sends N               send N messages to chat `demo` after the handshake
  --wait-inbound K        wait for K inbound deliveries
  --go-idle               go idle at the end instead of disconnecting
  --timings               a line {\"event\":\"timing\",\"stage\":\"results\"|\"inbound\",\"count\":N,
                          \"seconds\":S,\"per_second\":R} when the sends are all answered
                          and when the inbound wait ends, each timed from the handshake
  --timeout SECS          how long each stage may wait (default 30)
  --ping-interval S, --liveness-timeout S, --dial-timeout S, --close-timeout S,
  --request-timeout S, --backoff-base S, --backoff-cap S
                          the machine's timers (0 disables the first four)
  -h, --help              this text

Seconds are between 0 and 86400. Prints one JSON line per event.
Exit codes: 0 ok, 2 connect or handshake failed (4401 included), 3 a wait timed out,
4 going idle not acknowledged, 64 usage error.
";

/// The usage text of the gateway example called `name`.
pub fn help(name: &str) -> String {
    HELP_TEMPLATE.replace("{name}", name)
}

/// What the command line asks for.
pub struct Options {
    /// The connector's URL, as dialled.
    pub url: String,
    /// The upgrade token's gateway id and secret.
    pub credentials: Option<(String, String)>,
    /// The stages to walk.
    pub plan: Plan,
    /// The machine's config: identities, timers and backoff from the flags.
    pub config: GatewayConfig,
}

/// Parses the command line (and the `GATEWAY_RELAY_*` environment) of a gateway example
/// whose usage is `help`; `--help` prints it and exits 0.
pub fn parse_args(help: &str) -> Result<Options, String> {
    let mut args = cli::args(help).into_iter();
    let mut identities = cli::env_identities()?;
    let mut url = cli::env("GATEWAY_RELAY_URL");
    let (mut id, mut secret) = (
        cli::env("GATEWAY_RELAY_ID"),
        cli::env("GATEWAY_RELAY_SECRET"),
    );
    let mut plan = Plan {
        sends: 0,
        wait_inbound: 0,
        go_idle: false,
        timings: false,
        timeout: Duration::from_secs(30),
    };
    let mut tuning = GatewayConfig {
        // The examples' exit code 2 means the first connection failed, as the reference.
        retry_first_dial: false,
        ..GatewayConfig::default()
    };
    let mut flag_identities = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = || cli::value(&arg, &mut args);
        let timer = |v: String| cli::seconds(&arg, &v).map(|d| Some(d).filter(|d| !d.is_zero()));
        match arg.as_str() {
            "--url" => url = Some(value()?),
            "--identity" => flag_identities.push(cli::identity(&value()?)?),
            "--gateway-id" => id = Some(value()?),
            "--secret" => secret = Some(value()?),
            "--sends" => plan.sends = cli::number(&arg, &value()?)?,
            "--wait-inbound" => plan.wait_inbound = cli::number(&arg, &value()?)?,
            "--go-idle" => plan.go_idle = true,
            "--timings" => plan.timings = true,
            "--timeout" => plan.timeout = cli::seconds(&arg, &value()?)?,
            "--ping-interval" => tuning.ping_interval = timer(value()?)?,
            "--liveness-timeout" => tuning.liveness_timeout = timer(value()?)?,
            "--dial-timeout" => tuning.dial_timeout = timer(value()?)?,
            "--close-timeout" => tuning.close_timeout = timer(value()?)?,
            "--request-timeout" => tuning.request_timeout = cli::seconds(&arg, &value()?)?,
            "--backoff-base" => tuning.backoff.base = cli::seconds(&arg, &value()?)?,
            "--backoff-cap" => tuning.backoff.cap = cli::seconds(&arg, &value()?)?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if !flag_identities.is_empty() {
        identities = flag_identities;
    }
    let url = relay_machine::url::dial_url(&url.ok_or("--url (or GATEWAY_RELAY_URL) is required")?)
        .map_err(|e| format!("--url: {e}"))?;
    let credentials = cli::credentials(id, secret)?;
    let config = GatewayConfig {
        identities,
        ..tuning
    };
    // What the machine would refuse (a platform twice, too many identities) is the flags'
    // fault: a usage error, not a failed connection.
    config.validate().map_err(|e| e.to_string())?;
    Ok(Options {
        url,
        credentials,
        plan,
        config,
    })
}

//! A gateway client (smol + async-tungstenite) for any connector that speaks the protocol.
//!
//! ```text
//! cargo run --example gateway -- --url URL [--identity PLATFORM:BOTID]...
//!     [--gateway-id ID --secret S] [--sends N] [--wait-inbound K] [--go-idle] [--timings]
//!     [--timeout SECS] [--ping-interval S] [--liveness-timeout S] [--dial-timeout S]
//!     [--close-timeout S] [--request-timeout S] [--backoff-base S] [--backoff-cap S]
//! ```
//!
//! Without flags it takes the reference gateway's environment: `GATEWAY_RELAY_URL`,
//! `GATEWAY_RELAY_PLATFORMS`, `GATEWAY_RELAY_BOT_IDS`, `GATEWAY_RELAY_ID`,
//! `GATEWAY_RELAY_SECRET`. Prints one JSON line per event. Exit codes: 0 ok, 2 connect or
//! handshake failed (4401 included), 3 a wait timed out, 4 going idle not acknowledged,
//! 64 usage error (`--help` lists every flag).

#[path = "common/cli.rs"]
mod cli;
mod common;
#[path = "common/stages.rs"]
mod stages;

use std::time::{Duration, Instant};

use relay_machine::gateway::{GatewayConfig, Identity, RelayMachine};
use smol::future::FutureExt as _;
use stages::{Exit, Plan, Stages, fail};

struct Options {
    url: String,
    identities: Vec<Identity>,
    credentials: Option<(String, String)>,
    sends: usize,
    wait_inbound: usize,
    go_idle: bool,
    timeout: Duration,
    /// `--timings`: one `timing` line per timed stage.
    timings: bool,
    /// The machine's timers and backoff, shortened by tests (`--ping-interval`, ...).
    tuning: GatewayConfig,
}

fn main() -> std::process::ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => return cli::usage_error("gateway", HELP, &e),
    };
    match smol::block_on(run(options)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(exit) => std::process::ExitCode::from(exit as u8),
    }
}

async fn run(o: Options) -> Result<(), Exit> {
    let config = GatewayConfig {
        identities: o.identities.clone(),
        // The example's exit code 2 means the first connection failed, as the reference.
        retry_first_dial: false,
        ..o.tuning.clone()
    };
    let machine = RelayMachine::new(config, common::os_seed()).map_err(|e| fail(&e.to_string()))?;
    let mut gw = common::Gateway::new(machine, o.url.clone(), o.credentials.clone());
    let _ = gw.machine.connect(Instant::now());
    let result = stages(&mut gw, &o).await;
    // Whatever the outcome, let the peer see the close (a 4401 echoed, a 1000 answered).
    gw.finish_closes().await;
    result
}

/// Walks the stages the flags ask for; each gets `--timeout` to see what it waits for.
async fn stages(gw: &mut common::Gateway, o: &Options) -> Result<(), Exit> {
    let plan = Plan {
        sends: o.sends,
        wait_inbound: o.wait_inbound,
        go_idle: o.go_idle,
        timings: o.timings,
        timeout: o.timeout,
    };
    let mut stages = Stages::new(plan, Instant::now());
    loop {
        let deadline = stages.deadline;
        let event = async { Some(gw.next_event().await) }
            .or(async {
                smol::Timer::at(deadline).await;
                None
            })
            .await;
        let Some(event) = event else {
            return Err(stages.timed_out());
        };
        let Some(event) = event else {
            return stages.ended();
        };
        if let Some(done) = stages.on_event(&mut gw.machine, Instant::now(), event) {
            return done;
        }
    }
}

const HELP: &str = "\
usage: gateway --url URL [--identity PLATFORM:BOTID]... [--gateway-id ID --secret S]
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

fn parse_args() -> Result<Options, String> {
    let mut args = cli::args(HELP).into_iter();
    let mut identities = cli::env_identities()?;
    let mut url = cli::env("GATEWAY_RELAY_URL");
    let (mut id, mut secret) = (
        cli::env("GATEWAY_RELAY_ID"),
        cli::env("GATEWAY_RELAY_SECRET"),
    );
    let mut o = Options {
        url: String::new(),
        identities: Vec::new(),
        credentials: None,
        sends: 0,
        wait_inbound: 0,
        go_idle: false,
        timings: false,
        timeout: Duration::from_secs(30),
        tuning: GatewayConfig::default(),
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
            "--sends" => o.sends = cli::number(&arg, &value()?)?,
            "--wait-inbound" => o.wait_inbound = cli::number(&arg, &value()?)?,
            "--go-idle" => o.go_idle = true,
            "--timings" => o.timings = true,
            "--timeout" => o.timeout = cli::seconds(&arg, &value()?)?,
            "--ping-interval" => o.tuning.ping_interval = timer(value()?)?,
            "--liveness-timeout" => o.tuning.liveness_timeout = timer(value()?)?,
            "--dial-timeout" => o.tuning.dial_timeout = timer(value()?)?,
            "--close-timeout" => o.tuning.close_timeout = timer(value()?)?,
            "--request-timeout" => o.tuning.request_timeout = cli::seconds(&arg, &value()?)?,
            "--backoff-base" => o.tuning.backoff.base = cli::seconds(&arg, &value()?)?,
            "--backoff-cap" => o.tuning.backoff.cap = cli::seconds(&arg, &value()?)?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if !flag_identities.is_empty() {
        identities = flag_identities;
    }
    o.identities = identities;
    o.url = relay_machine::url::dial_url(&url.ok_or("--url (or GATEWAY_RELAY_URL) is required")?)
        .map_err(|e| format!("--url: {e}"))?;
    o.credentials = cli::credentials(id, secret)?;
    // What the machine would refuse (a platform twice, too many identities) is the flags'
    // fault: a usage error, not a failed connection.
    let config = GatewayConfig {
        identities: o.identities.clone(),
        ..o.tuning.clone()
    };
    config.validate().map_err(|e| e.to_string())?;
    Ok(o)
}

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

use std::time::Instant;

use relay_machine::gateway::RelayMachine;
use smol::future::FutureExt as _;
use stages::{Exit, Options, Stages, fail};

fn main() -> std::process::ExitCode {
    let help = stages::help("gateway");
    let options = match stages::parse_args(&help) {
        Ok(o) => o,
        Err(e) => return cli::usage_error("gateway", &help, &e),
    };
    match smol::block_on(run(options)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(exit) => std::process::ExitCode::from(exit as u8),
    }
}

async fn run(o: Options) -> Result<(), Exit> {
    let machine =
        RelayMachine::new(o.config.clone(), common::os_seed()).map_err(|e| fail(&e.to_string()))?;
    let mut gw = common::Gateway::new(machine, o.url.clone(), o.credentials.clone());
    let _ = gw.machine.connect(Instant::now());
    let result = stages(&mut gw, &o).await;
    // Whatever the outcome, let the peer see the close (a 4401 echoed, a 1000 answered).
    gw.finish_closes().await;
    result
}

/// Walks the stages the flags ask for; each gets `--timeout` to see what it waits for.
async fn stages(gw: &mut common::Gateway, o: &Options) -> Result<(), Exit> {
    let mut stages = Stages::new(o.plan.clone(), Instant::now());
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

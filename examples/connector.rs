//! A connector server (smol + async-tungstenite) for any gateway that speaks the protocol.
//!
//! ```text
//! cargo run --example connector -- [--listen ADDR] [--secret S] [--push-inbound K]
//!     [--buffered-every M] [--passthrough P] [--once]
//! ```
//!
//! First output line: `{"listening":"ws://HOST:PORT/relay"}`; then one JSON line per
//! protocol event. Answers every `hello` with a descriptor for that platform, every
//! `outbound` with a success, `going_idle` with its ack. After the first handshake it
//! pushes K inbound events (every M-th buffered) and P Discord-interaction forwards.
//! `--once`: exit when the first connection closes, 0 only if every buffered delivery was
//! acked, 1 otherwise.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use relay_machine::connector::{
    ConnectorConfig, ConnectorEvent, ConnectorMachine, DeliveryStore, MemoryStore, Mode,
};
use relay_machine::wire::{
    ActionResult, CapabilityDescriptor, MessageEvent, PassthroughForward, SessionSource,
};
use serde_json::json;

#[derive(Clone, Default)]
struct Options {
    listen: String,
    secret: Option<String>,
    push_inbound: u32,
    buffered_every: u32,
    passthrough: u32,
    once: bool,
}

fn main() -> std::process::ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("connector: {e}");
            return std::process::ExitCode::from(64);
        }
    };
    smol::block_on(run(options))
}

async fn run(options: Options) -> std::process::ExitCode {
    let listener = match smol::net::TcpListener::bind(options.listen.as_str()).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("connector: cannot listen on {}: {e}", options.listen);
            return std::process::ExitCode::from(1);
        }
    };
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    println!(
        "{}",
        json!({ "listening": format!("ws://{address}/relay") })
    );
    // One instance's durable buffer, shared by its successive connections.
    let store = Arc::new(Mutex::new(MemoryStore::new()));
    let pushed = Arc::new(Mutex::new(false));
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let connection = connection(tcp, options.clone(), store.clone(), pushed.clone());
        if options.once {
            connection.await;
            let unacked = store.lock().map_or(1, |s| s.unacked_len());
            return std::process::ExitCode::from(u8::from(unacked > 0));
        }
        smol::spawn(connection).detach();
    }
}

async fn connection(
    tcp: smol::net::TcpStream,
    options: Options,
    store: Arc<Mutex<MemoryStore>>,
    pushed: Arc<Mutex<bool>>,
) {
    let (mut ws, auth) = match common::accept(tcp, options.secret.as_deref()).await {
        Ok(accepted) => accepted,
        Err(e) => return println!("{}", json!({ "event": "upgrade_failed", "error": e })),
    };
    let taken = store
        .lock()
        .map(|mut s| std::mem::take(&mut *s))
        .unwrap_or_default();
    let mut machine = ConnectorMachine::new(ConnectorConfig::default(), taken);
    println!(
        "{}",
        json!({ "event": "connected", "gateway": auth.as_ref().ok() })
    );
    if let Err(reason) = auth {
        println!("{}", json!({ "event": "auth_failed", "reason": reason }));
        machine.reject_auth(Instant::now(), reason);
    }
    let mut handshaken = false;
    common::serve(&mut ws, &mut machine, |m, event| {
        let now = Instant::now();
        let line = match &event {
            ConnectorEvent::Hello { identity, .. } => {
                let descriptor = CapabilityDescriptor::new(identity.platform.clone(), identity.platform.clone());
                let _ = m.send_descriptor(now, descriptor);
                if !std::mem::replace(&mut handshaken, true) && !std::mem::replace(&mut *pushed.lock().unwrap_or_else(|e| e.into_inner()), true) {
                    push(m, &options);
                }
                json!({ "event": "hello", "platform": identity.platform, "botId": identity.bot_id })
            }
            ConnectorEvent::Outbound { request_id, action, identity } => {
                let _ = m.respond(now, request_id, ActionResult::ok_with_message(format!("m-{request_id}")));
                json!({ "event": "outbound", "requestId": request_id, "op": action.op(), "platform": identity.platform, "action": action })
            }
            ConnectorEvent::Acked(id) => json!({ "event": "acked", "bufferId": id }),
            ConnectorEvent::Interrupt { session_key, reason } => json!({ "event": "interrupt", "session_key": session_key, "reason": reason }),
            ConnectorEvent::WentIdle => json!({ "event": "going_idle" }),
            ConnectorEvent::WakeNeeded => json!({ "event": "wake_needed" }),
            ConnectorEvent::Diagnostic(d) => json!({ "event": "diagnostic", "detail": format!("{d:?}") }),
            other => json!({ "event": "other", "detail": format!("{other:?}") }),
        };
        println!("{line}");
        std::ops::ControlFlow::Continue(())
    })
    .await;
    let unacked = machine.store().unacked_len();
    println!("{}", json!({ "event": "closed", "unacked": unacked }));
    if let Ok(mut shared) = store.lock() {
        *shared = machine.into_store();
    }
}

/// What the connector pushes after the first handshake.
fn push(m: &mut ConnectorMachine<MemoryStore>, options: &Options) {
    let now = Instant::now();
    for i in 1..=options.push_inbound {
        let buffered = options.buffered_every > 0 && i % options.buffered_every == 0;
        let mut source = SessionSource::new("discord", "group", "4455");
        source.user_id = Some("77".into());
        source.scope_id = Some("1000".into());
        source.message_id = Some(format!("{}", 9000 + i));
        let event = MessageEvent {
            text: format!("message {i}"),
            message_id: source.message_id.clone(),
            source,
            ..Default::default()
        };
        let _ = m.push(
            now,
            event,
            if buffered { Mode::Buffered } else { Mode::Live },
        );
    }
    for i in 1..=options.passthrough {
        let body = json!({ "type": 2, "id": format!("i{i}"), "channel_id": "4455", "guild_id": "1000",
            "data": { "name": "ping" }, "member": { "user": { "id": "77", "username": "alice" } } });
        let mut forward = PassthroughForward::new("discord", body.to_string().into_bytes());
        forward.method = "POST".into();
        forward.path = "/interactions".into();
        forward.headers = vec![("content-type".into(), "application/json".into())];
        let _ = m.push_passthrough(now, forward, Mode::Live);
    }
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        listen: "127.0.0.1:0".into(),
        ..Options::default()
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        let number = |v: String| v.parse::<u32>().map_err(|e| format!("{arg}: {e}"));
        match arg.as_str() {
            "--listen" => o.listen = value()?,
            "--secret" => o.secret = Some(value()?),
            "--push-inbound" => o.push_inbound = number(value()?)?,
            "--buffered-every" => o.buffered_every = number(value()?)?,
            "--passthrough" => o.passthrough = number(value()?)?,
            "--once" => o.once = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

//! The whole protocol over a real WebSocket on 127.0.0.1, as a readable transcript:
//! an embedded connector and a gateway, both built on relay-machine.
//!
//! ```text
//! cargo run --example demo
//! ```
//!
//! Shows a handshake with two identities, a buffered inbound and its ack, a send round
//! trip, a Discord interaction passthrough decoded, an interrupt both ways, a dropped
//! connection followed by reconnect and replay of exactly the unacked tail, and going idle.

#[path = "common/cli.rs"]
mod cli;
mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::ToSocket;
use relay_machine::connector::{
    ConnId, ConnectorConfig, ConnectorEvent, Delivery, DeliveryStore, Instance, InstanceOutput,
    Live, MemoryStore,
};
use relay_machine::discord::interaction_event;
use relay_machine::gateway::{GatewayConfig, GatewayEvent, GatewayState, Identity, RelayMachine};
use relay_machine::session_key::{SessionKeyOptions, session_key};
use relay_machine::wire::{
    ActionResult, CapabilityDescriptor, MessageEvent, PassthroughForward, SendAction, SessionSource,
};
use serde_json::{Value, json};
use smol::future::FutureExt as _;

static START: OnceLock<Instant> = OnceLock::new();

fn say(who: &str, what: impl std::fmt::Display) {
    let ms = START.get().map_or(0, |s| s.elapsed().as_millis());
    println!("+{ms:>5}ms {who:<8} {what}");
}

/// Prints a frame as `type {other fields}`.
fn show_frame(direction: &str, bytes: &[u8]) {
    let line = String::from_utf8_lossy(bytes);
    match serde_json::from_str::<Value>(line.trim_end()) {
        Ok(Value::Object(mut map)) => {
            let kind = map
                .remove("type")
                .and_then(|t| t.as_str().map(str::to_owned))
                .unwrap_or_default();
            say(direction, format!("{kind} {}", Value::Object(map)))
        }
        _ => say(direction, line.trim_end()),
    }
}

fn message(text: &str) -> MessageEvent {
    let mut source = SessionSource::new("discord", "group", "4455");
    source.user_id = Some("77".into());
    source.scope_id = Some("1000".into());
    MessageEvent {
        text: text.into(),
        source,
        ..MessageEvent::default()
    }
}

const HELP: &str = "\
usage: demo

Both roles over a real WebSocket on 127.0.0.1, printed as a transcript. Takes no flags
but -h/--help (this text).
Exit codes: 0 the demo ran to its end, 1 it did not (within 20 s), 64 usage error.
";

fn main() -> std::process::ExitCode {
    if let Some(arg) = cli::args(HELP).first() {
        return cli::usage_error("demo", HELP, &format!("unknown argument {arg}"));
    }
    let _ = START.set(Instant::now());
    let _ = common::TAP.set(show_frame);
    let outcome = smol::block_on(run().or(async {
        smol::Timer::after(Duration::from_secs(20)).await;
        Err("the demo did not finish within 20 s".to_owned())
    }));
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let listener = smol::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let url = format!(
        "ws://{}/relay",
        listener.local_addr().map_err(|e| e.to_string())?
    );
    say("demo", format!("connector listening on {url}"));
    smol::spawn(connector(listener)).detach();

    let config = GatewayConfig {
        identities: vec![
            Identity::new("discord", "1122334455"),
            Identity::new("telegram", "7012345678"),
        ],
        ..GatewayConfig::default()
    };
    let machine = RelayMachine::new(config, common::os_seed()).map_err(|e| e.to_string())?;
    let mut gw = common::Gateway::new(machine, url, None);
    let _ = gw.machine.connect(Instant::now());
    let mut reconnected = false;
    let mut deferred = None;
    while let Some(event) = gw.next_event().await {
        let now = Instant::now();
        say("gw", format!("event {event}"));
        match event {
            GatewayEvent::Inbound {
                event,
                buffer_id: Some(id),
            } => {
                // The application owns the second delivery only later: unacked when the
                // connection drops, so the connector replays it after the reconnect.
                if event.text.contains("owned later") {
                    deferred = Some(id);
                    let _ = gw.machine.interrupt(
                        now,
                        "agent:main:discord:group:4455:77",
                        Some("user pressed stop"),
                    );
                } else {
                    let _ = gw.machine.ack_inbound(now, &id);
                }
                if event.text.contains("please deploy") {
                    let reply = SendAction {
                        chat_id: event.source.chat_id.clone(),
                        content: "deploying".into(),
                        ..Default::default()
                    };
                    let _ = gw.machine.send(now, reply, None);
                }
            }
            GatewayEvent::HandshakeComplete { .. } if reconnected => {
                // Owned now: the ack goes out on this connection, although an earlier one
                // brought the delivery; its replay is not handed over a second time.
                if let Some(id) = deferred.take() {
                    let _ = gw.machine.ack_inbound(now, &id);
                }
                let _ = gw.machine.go_idle(now);
            }
            GatewayEvent::Passthrough { forward, .. } => match interaction_event(&forward) {
                Ok(event) => {
                    let key = session_key(&event.source, &SessionKeyOptions::default());
                    let who = event.source.display_name().unwrap_or("?");
                    say(
                        "gw",
                        format!(
                            "  decoded interaction: {:?} by {who} in session {key}",
                            event.text
                        ),
                    );
                }
                Err(e) => say("gw", format!("  undecodable interaction: {e}")),
            },
            GatewayEvent::Disconnected { .. } => reconnected = true,
            GatewayEvent::GoingIdle { acked: true, .. } => gw.machine.disconnect(now, None),
            GatewayEvent::GoingIdle { acked: false, .. } => {
                return Err("going idle was not acknowledged".into());
            }
            GatewayEvent::ConnectFailed(why) => return Err(format!("connect failed: {why}")),
            _ => {}
        }
    }
    // `next_event` ends once the machine is terminal and every output was carried out.
    match gw.machine.state() {
        GatewayState::Closed => Ok(()),
        other => Err(format!("the gateway stopped in state {other:?}")),
    }
}

/// The demo connector's one gateway instance: the sans-IO [`Instance`], its durable
/// buffer, and the mailbox of each socket.
struct Connector {
    instance: Instance,
    store: MemoryStore,
    mailboxes: HashMap<ConnId, smol::channel::Sender<ToSocket>>,
    /// Which connection (1, 2, ...) each socket is, and how many descriptors it got.
    numbers: HashMap<ConnId, (u32, u32)>,
    /// A socket to drop once the outputs before are routed to it.
    dropping: Option<ConnId>,
}

/// A scripted connector: one gateway instance, whose durable buffer outlives its
/// connections.
async fn connector(listener: smol::net::TcpListener) {
    let state = Arc::new(Mutex::new(Connector {
        instance: Instance::new(ConnectorConfig::default()),
        store: MemoryStore::with_epoch(0xd3),
        mailboxes: HashMap::new(),
        numbers: HashMap::new(),
        dropping: None,
    }));
    for number in 1.. {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let Ok((ws, _)) = common::accept(tcp, None).await else {
            return;
        };
        let (sender, mailbox) = common::mailbox();
        let conn = with_connector(&state, |c| {
            let conn = c.instance.accept(Instant::now());
            c.mailboxes.insert(conn, sender);
            c.numbers.insert(conn, (number, 0));
            conn
        });
        common::serve_socket(ws, mailbox, |incoming| {
            with_connector(&state, |c| {
                let now = Instant::now();
                match incoming {
                    common::Incoming::Bytes(bytes) => c.instance.handle_input(now, conn, bytes),
                    common::Incoming::Pong => c.instance.on_pong(now, conn),
                    common::Incoming::Timeout => c.instance.handle_timeout(now),
                }
                c.instance.poll_timeout()
            })
        })
        .await;
        let unacked = with_connector(&state, |c| {
            c.instance
                .on_closed(Instant::now(), conn, None, "socket ended");
            c.mailboxes.remove(&conn);
            c.store.unacked_len()
        });
        say(
            "conn",
            format!("connection {number} ended; {unacked} unacked in the store"),
        );
    }
}

/// Runs `f` on the connector, then carries out every output of its instance.
fn with_connector<R>(state: &Mutex<Connector>, f: impl FnOnce(&mut Connector) -> R) -> R {
    let mut c = state.lock().unwrap_or_else(|e| e.into_inner());
    let result = f(&mut c);
    while let Some(output) = c.instance.poll_output() {
        if let Some(output) = common::route(output, &c.mailboxes) {
            script(&mut c, output);
        }
    }
    if let Some(conn) = c.dropping.take() {
        if let Some(mailbox) = c.mailboxes.get(&conn) {
            let _ = mailbox.try_send(ToSocket::Drop);
        }
    }
    result
}

/// The scripted connector application.
fn script(c: &mut Connector, output: InstanceOutput) {
    let now = Instant::now();
    let (conn, event) = match output {
        InstanceOutput::Event(conn, event) => (conn, event),
        InstanceOutput::Load {
            token,
            after,
            limit,
        } => {
            let deliveries = c.store.unacked_after(after.as_ref(), limit);
            c.instance.offer(now, token, deliveries);
            return;
        }
        InstanceOutput::Acked(id) => {
            say("conn", format!("event Acked {id}"));
            c.store.ack(&id);
            return;
        }
        other => return say("conn", format!("{other:?}")),
    };
    say("conn", format!("event {event}"));
    let number = c.numbers.get(&conn).map_or(0, |n| n.0);
    match event {
        ConnectorEvent::Hello { identity, .. } => {
            let mut d =
                CapabilityDescriptor::new(identity.platform.clone(), identity.platform.clone());
            d.len_unit = relay_machine::wire::LenUnit::Utf16;
            let _ = c.instance.send_descriptor(now, conn, d);
            let descriptors = c.numbers.get_mut(&conn).map_or(0, |n| {
                n.1 += 1;
                n.1
            });
            if number == 1 && descriptors == 2 {
                buffer(c, message("please deploy to staging"));
                let body = json!({ "type": 2, "id": "i1", "channel_id": "4455", "guild_id": "1000",
                    "data": { "name": "skill", "options": [{ "type": 1, "name": "run", "options": [{ "type": 3, "name": "target", "value": "deploy" }] }] },
                    "member": { "nick": "Al", "user": { "id": "77", "username": "alice" } } });
                let forward = PassthroughForward::new("discord", body.to_string().into_bytes());
                if let Live::Buffer(delivery) = c.instance.push_live(now, forward) {
                    buffer(c, delivery);
                }
            }
        }
        ConnectorEvent::Outbound { request, .. } => {
            let _ = c.instance.respond(
                now,
                conn,
                &request.request_id,
                ActionResult::ok_with_message("9002"),
            );
            if number == 1 {
                buffer(c, message("status? (owned later)"));
            }
        }
        // A real connector routes the stop to the gateway that owns the session.
        ConnectorEvent::Interrupt { session_key, .. } => {
            let _ = c.instance.send_interrupt(now, &session_key, "4455");
            if number == 1 {
                say(
                    "conn",
                    "dropping the connection (simulated network failure)",
                );
                c.dropping = Some(conn);
            }
        }
        _ => {}
    }
}

/// Persists `delivery`, then hands it to the instance with its id.
fn buffer(c: &mut Connector, delivery: impl Into<Delivery>) {
    let delivery = delivery.into();
    let id = c.store.append(delivery.clone());
    c.instance.push_buffered(Instant::now(), id, delivery);
}

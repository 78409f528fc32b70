//! A connector server (smol + async-tungstenite) for any gateway that speaks the protocol.
//!
//! ```text
//! cargo run --example connector -- [--listen ADDR] [--secret S] [--push-inbound K]
//!     [--buffered-every M] [--passthrough P] [--once] [--store PATH|redis://HOST:PORT/]
//! ```
//!
//! First output line: `{"listening":"ws://HOST:PORT/relay"}`; then one JSON line per
//! protocol event. Answers every `hello` with a descriptor for that platform, every
//! `outbound` with a success, `going_idle` with its ack. After the first handshake it
//! pushes K inbound events (every M-th buffered) and P Discord-interaction forwards.
//! `--once`: exit when the first connection closes, 0 only if every buffered delivery was
//! acked, 1 otherwise.
//!
//! `--store PATH` keeps every instance's buffer in an SQLite file, `--store
//! redis://HOST:PORT/` in Redis streams shared by a fleet, so that it survives the
//! process: a connector restarted on it (or another one sharing it) seeds nothing again
//! and replays what is unacked. The store runs on its own thread (`common/store.rs`).

mod common;
#[path = "common/store.rs"]
mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use common::Incoming;
use common::ToSocket;
use relay_machine::connector::{
    ConnId, ConnectorCommand, ConnectorConfig, ConnectorEvent, ConnectorMachine, Delivery,
    Instance, InstanceOutput, Live, Output,
};
use relay_machine::wire::{
    ActionResult, CapabilityDescriptor, MessageEvent, PassthroughForward, SessionSource,
};
use serde_json::json;
use smol::future::FutureExt as _;
use store::Store;

#[derive(Clone, Default)]
struct Options {
    listen: String,
    secret: Option<String>,
    push_inbound: u32,
    buffered_every: u32,
    passthrough: u32,
    once: bool,
    /// `--store`: the SQLite file or the Redis URL of the buffers (in memory without it).
    store: Option<String>,
    /// The connector's timers (hello, keepalive, liveness), shortened by tests.
    config: ConnectorConfig,
    /// Most sockets accepted and not yet handshaken at once.
    max_pending: usize,
}

/// The sockets accepted and not yet handshaken, oldest first, each with the switch that
/// drops it: past `--max-pending`, the oldest is closed to make room.
type Pending = Arc<Mutex<std::collections::VecDeque<(u64, smol::channel::Sender<()>)>>>;

/// One gateway instance: its connections (through the sans-IO [`Instance`]) and the
/// mailbox of each of its sockets. Sockets only map to instances; its buffer is in the
/// store, under the same key.
struct Tenant {
    instance: Instance,
    mailboxes: HashMap<ConnId, smol::channel::Sender<ToSocket>>,
    /// The `--push-inbound` / `--passthrough` seeding was started by this process.
    seeded: bool,
}

/// What every task of the process shares: the instances by gateway id (`""` without
/// `--secret`: one default instance), the store, the options.
#[derive(Clone)]
struct Relay {
    tenants: Arc<Mutex<HashMap<String, Tenant>>>,
    store: Store,
    options: Arc<Options>,
}

fn main() -> std::process::ExitCode {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("connector: {e}");
            return std::process::ExitCode::from(64);
        }
    };
    let backend = match store::open(options.store.as_deref()) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("connector: cannot open the store: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let relay = Relay {
        tenants: Arc::default(),
        store: Store::start(backend),
        options: Arc::new(options),
    };
    smol::block_on(run(relay))
}

async fn run(relay: Relay) -> std::process::ExitCode {
    let options = relay.options.clone();
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
    let pending: Pending = Arc::default();
    let mut backoff = std::time::Duration::from_millis(10);
    for socket in 0u64.. {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => {
                backoff = std::time::Duration::from_millis(10);
                tcp
            }
            Err(e) => {
                // Out of descriptors, say: wait before trying again instead of spinning.
                println!(
                    "{}",
                    json!({ "event": "accept_error", "error": e.to_string(), "retry_in_ms": backoff.as_millis() })
                );
                smol::Timer::after(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
                continue;
            }
        };
        let (kill, killed) = smol::channel::bounded::<()>(1);
        if let Ok(mut pending) = pending.lock() {
            if pending.len() >= options.max_pending {
                if let Some((_, oldest)) = pending.pop_front() {
                    let _ = oldest.try_send(());
                }
            }
            pending.push_back((socket, kill));
        }
        let connection = {
            let (relay, pending) = (relay.clone(), pending.clone());
            async move {
                let accepted_at = Instant::now();
                let served = connection(tcp, accepted_at, &relay, &pending, socket);
                let unacked = served
                    .or(async {
                        // A handshaken socket's switch is dropped: then it never fires.
                        if killed.recv().await.is_ok() {
                            println!("{}", json!({ "event": "dropped_pending" }));
                        } else {
                            smol::future::pending::<()>().await;
                        }
                        0
                    })
                    .await;
                if let Ok(mut pending) = pending.lock() {
                    pending.retain(|(s, _)| *s != socket);
                }
                unacked
            }
        };
        if options.once {
            let unacked = connection.await;
            return std::process::ExitCode::from(u8::from(unacked > 0));
        }
        smol::spawn(connection).detach();
    }
    std::process::ExitCode::SUCCESS
}

/// Serves one socket to its end; returns how many deliveries its instance has unacked
/// then (0 when it never reached an instance).
async fn connection(
    tcp: smol::net::TcpStream,
    accepted_at: Instant,
    relay: &Relay,
    pending: &Pending,
    socket: u64,
) -> usize {
    let options = &relay.options;
    // The hello timeout runs from the TCP accept and covers the upgrade: a machine owns it
    // from here, and the upgrade is raced against its deadlines. No Ping is asked before
    // a hello, so whatever the machine asks for meanwhile is the end of this socket.
    let mut early = ConnectorMachine::new(options.config.clone(), accepted_at);
    let upgrade = common::accept(tcp, options.secret.as_deref());
    let gave_up = async {
        loop {
            common::until(early.poll_timeout()).await;
            early.handle_timeout(Instant::now());
            while let Some(output) = early.poll_output() {
                if let Output::Command(command) = output {
                    return command;
                }
            }
        }
    };
    let upgraded = async { Ok(upgrade.await) }
        .or(async { Err(gave_up.await) })
        .await;
    let upgraded = match upgraded {
        Ok(upgraded) => upgraded,
        Err(ConnectorCommand::Close { .. }) => {
            println!("{}", json!({ "event": "hello_timeout", "upgraded": false }));
            return 0;
        }
        Err(command) => {
            let command = format!("{command:?}");
            println!(
                "{}",
                json!({ "event": "gave_up", "upgraded": false, "command": command })
            );
            return 0;
        }
    };
    let (mut ws, auth) = match upgraded {
        Ok(accepted) => accepted,
        Err(e) => {
            println!("{}", json!({ "event": "upgrade_failed", "error": e }));
            return 0;
        }
    };
    println!(
        "{}",
        json!({ "event": "connected", "gateway": auth.as_ref().ok() })
    );
    let key = match auth {
        Ok(gateway_id) => gateway_id,
        Err(reason) => {
            // Never touches an instance: only an authenticated connection reaches a buffer.
            println!("{}", json!({ "event": "auth_failed", "reason": reason }));
            common::refuse(&mut ws, reason).await;
            println!("{}", json!({ "event": "closed", "unacked": 0 }));
            return 0;
        }
    };
    let (sender, mailbox) = common::mailbox();
    let conn = with_tenant(relay, &key, |tenant| {
        let conn = tenant.instance.accept(accepted_at);
        tenant.mailboxes.insert(conn, sender);
        conn
    });
    common::serve_socket(ws, mailbox, |incoming| {
        with_tenant(relay, &key, |tenant| {
            let now = Instant::now();
            match incoming {
                Incoming::Bytes(bytes) => tenant.instance.handle_input(now, conn, bytes),
                Incoming::Pong => tenant.instance.on_pong(now, conn),
                Incoming::Timeout => tenant.instance.handle_timeout(now),
            }
            // Handshaken: no longer one of the pending sockets the cap may drop.
            if tenant
                .instance
                .connection(conn)
                .is_some_and(|m| m.is_handshaken())
            {
                if let Ok(mut pending) = pending.lock() {
                    pending.retain(|(s, _)| *s != socket);
                }
            }
            tenant.instance.poll_timeout()
        })
    })
    .await;
    with_tenant(relay, &key, |tenant| {
        tenant
            .instance
            .on_closed(Instant::now(), conn, None, "socket ended");
        tenant.mailboxes.remove(&conn);
    });
    // Queued after every ack this socket brought: the count sees them committed.
    let unacked = relay
        .store
        .call(move |store| store.unacked_len(&key))
        .await
        .unwrap_or(0);
    println!("{}", json!({ "event": "closed", "unacked": unacked }));
    unacked
}

/// Runs `f` on the tenant `key` (created on first use), then carries out every output of
/// its instance, as the run loop requires after each input.
fn with_tenant<R>(relay: &Relay, key: &str, f: impl FnOnce(&mut Tenant) -> R) -> R {
    let mut tenants = relay.tenants.lock().unwrap_or_else(|e| e.into_inner());
    let tenant = tenants.entry(key.to_owned()).or_insert_with(|| Tenant {
        instance: Instance::new(relay.options.config.clone()),
        mailboxes: HashMap::new(),
        seeded: false,
    });
    let result = f(tenant);
    while let Some(output) = tenant.instance.poll_output() {
        if let Some(output) = common::route(output, &tenant.mailboxes) {
            application(relay, key, tenant, output);
        }
    }
    result
}

/// The connector application: answers hellos and outbounds, seeds deliveries after the
/// first handshake, keeps the buffer. What the store does is queued on its thread; what
/// it answers comes back in a task, as a new input under [`with_tenant`].
fn application(relay: &Relay, key: &str, tenant: &mut Tenant, output: InstanceOutput) {
    let now = Instant::now();
    let line = match output {
        InstanceOutput::Event(conn, ConnectorEvent::Hello { identity, .. }) => {
            let descriptor =
                CapabilityDescriptor::new(identity.platform.clone(), identity.platform.clone());
            let _ = tenant.instance.send_descriptor(now, conn, descriptor);
            if !std::mem::replace(&mut tenant.seeded, true) {
                smol::spawn(seed(relay.clone(), key.to_owned())).detach();
            }
            json!({ "event": "hello", "platform": identity.platform, "botId": identity.bot_id })
        }
        InstanceOutput::Event(
            conn,
            ConnectorEvent::Outbound {
                request_id,
                action,
                identity,
            },
        ) => {
            let result = ActionResult::ok_with_message(format!("m-{request_id}"));
            let _ = tenant.instance.respond(now, conn, &request_id, result);
            json!({ "event": "outbound", "requestId": request_id, "op": action.op(), "platform": identity.platform, "action": action })
        }
        InstanceOutput::Event(
            _,
            ConnectorEvent::Interrupt {
                session_key,
                reason,
            },
        ) => {
            json!({ "event": "interrupt", "session_key": session_key, "reason": reason })
        }
        InstanceOutput::Event(_, ConnectorEvent::WentIdle) => json!({ "event": "going_idle" }),
        InstanceOutput::Event(_, ConnectorEvent::Diagnostic(d)) => {
            json!({ "event": "diagnostic", "detail": format!("{d:?}") })
        }
        InstanceOutput::Acked(id) => {
            // Reported by the store thread once committed: in commit order, and before
            // the answer to anything queued later (a `closed` line's count).
            let key = key.to_owned();
            return relay.store.run(move |store| {
                if store.ack(&key, &id)? {
                    println!("{}", json!({ "event": "acked", "bufferId": id }));
                }
                Ok(())
            });
        }
        InstanceOutput::Load {
            token,
            after,
            limit,
        } => {
            let read = {
                let key = key.to_owned();
                relay
                    .store
                    .call(move |store| store.unacked_after(&key, after.as_ref(), limit))
            };
            let (relay, key) = (relay.clone(), key.to_owned());
            // A stale token (its connection ended meanwhile) is refused by `offer`.
            return smol::spawn(async move {
                if let Some(deliveries) = read.await {
                    with_tenant(&relay, &key, |tenant| {
                        tenant.instance.offer(Instant::now(), token, deliveries)
                    });
                }
            })
            .detach();
        }
        InstanceOutput::WakeNeeded => json!({ "event": "wake_needed" }),
        other => json!({ "event": "other", "detail": format!("{other:?}") }),
    };
    println!("{line}");
}

/// Delivers `delivery` live, or, when the instance cannot send it live, through the
/// buffer: persisted first, then handed to the instance.
async fn deliver(relay: &Relay, key: &str, delivery: Delivery) {
    let live = with_tenant(relay, key, |tenant| {
        tenant.instance.push_live(Instant::now(), delivery)
    });
    let Live::Buffer(delivery) = live else { return };
    let append = {
        let (key, delivery) = (key.to_owned(), delivery.clone());
        relay.store.call(move |store| store.append(&key, delivery))
    };
    if let Some(id) = append.await {
        with_tenant(relay, key, |tenant| {
            tenant.instance.push_buffered(Instant::now(), id, delivery)
        });
    }
}

/// What the connector pushes after the first handshake, in order, unless the store says
/// this instance was seeded before (by this process or one that shared the store). The
/// buffered ones are persisted together with the marker, so that a connector killed
/// meanwhile leaves all of them or none.
async fn seed(relay: Relay, key: String) {
    let deliveries = seed_deliveries(&relay.options);
    let buffered: Vec<Delivery> = deliveries
        .iter()
        .filter(|(_, buffered)| *buffered)
        .map(|(d, _)| d.clone())
        .collect();
    let seeded = {
        let key = key.clone();
        relay.store.call(move |store| store.seed(&key, buffered))
    };
    let Some(Some(ids)) = seeded.await else {
        return;
    };
    let mut ids = ids.into_iter();
    for (delivery, buffered) in deliveries {
        if !buffered {
            deliver(&relay, &key, delivery).await;
        } else if let Some(id) = ids.next() {
            with_tenant(&relay, &key, |tenant| {
                tenant.instance.push_buffered(Instant::now(), id, delivery)
            });
        }
    }
}

/// The `--push-inbound` and `--passthrough` deliveries, each with whether it goes
/// through the buffer (every `--buffered-every`-th inbound) rather than live.
fn seed_deliveries(options: &Options) -> Vec<(Delivery, bool)> {
    let mut deliveries = Vec::new();
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
        deliveries.push((event.into(), buffered));
    }
    for i in 1..=options.passthrough {
        let body = json!({ "type": 2, "id": format!("i{i}"), "channel_id": "4455", "guild_id": "1000",
            "data": { "name": "ping" }, "member": { "user": { "id": "77", "username": "alice" } } });
        let mut forward = PassthroughForward::new("discord", body.to_string().into_bytes());
        forward.method = "POST".into();
        forward.path = "/interactions".into();
        forward.headers = vec![("content-type".into(), "application/json".into())];
        deliveries.push((forward.into(), false));
    }
    deliveries
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        listen: "127.0.0.1:0".into(),
        config: ConnectorConfig::default(),
        max_pending: 256,
        ..Options::default()
    };
    let seconds = |arg: &str, v: String| -> Result<Option<std::time::Duration>, String> {
        let s: f64 = v.parse().map_err(|e| format!("{arg}: {e}"))?;
        if !(s.is_finite() && (0.0..=86_400.0).contains(&s)) {
            return Err(format!("{arg}: seconds between 0 and 86400"));
        }
        Ok(Some(std::time::Duration::from_secs_f64(s)).filter(|d| !d.is_zero()))
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
            "--store" => o.store = Some(value()?),
            "--hello-timeout" => o.config.hello_timeout = seconds(&arg, value()?)?,
            "--ping-interval" => o.config.ping_interval = seconds(&arg, value()?)?,
            "--liveness-timeout" => o.config.liveness_timeout = seconds(&arg, value()?)?,
            "--max-pending" => {
                o.max_pending = number(value()?)?.max(1) as usize;
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

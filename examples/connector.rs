//! A connector server (smol + async-tungstenite) for any gateway that speaks the protocol.
//!
//! ```text
//! cargo run --example connector -- [--listen ADDR] [--secret S] [--push-inbound K]
//!     [--buffered-every M] [--inbound-text TEXT] [--inbound-bytes N] [--interrupt-after N]
//!     [--passthrough P] [--buffered-passthrough] [--once] [--store PATH|redis://HOST:PORT/]
//! ```
//!
//! First output line: `{"listening":"ws://HOST:PORT/relay"}`; then one JSON line per
//! protocol event. Answers every `hello` with a descriptor for that platform (its real
//! label, length limit and unit: [`descriptor`]), every `outbound` with a success,
//! `going_idle` with its ack. After the first handshake it pushes K inbound events from the
//! first announced platform (every M-th buffered, an interrupt after every N-th) and P
//! Discord-interaction forwards to the announced Discord bot.
//! `--once`: exit when the first connection closes, 0 only if it was handshaken and every
//! buffered delivery was acked, 1 otherwise (refused with 4401, closed before a
//! handshake, or deliveries left unacked). 64 on a usage error (`--help` lists every flag).
//!
//! `--store PATH` keeps every instance's buffer in an SQLite file, `--store
//! redis://HOST:PORT/` in Redis streams shared by a fleet, so that it survives the
//! process: a connector restarted on it (or another one sharing it) seeds nothing again
//! and replays what is unacked. The store runs on its own thread (`common/store.rs`).

#[path = "common/cli.rs"]
mod cli;
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
use relay_machine::gateway::Identity;
use relay_machine::session_key::{SessionKeyOptions, session_key};
use relay_machine::wire::{
    ActionResult, CapabilityDescriptor, LenUnit, MessageEvent, Outbound, PassthroughForward,
    SessionSource,
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
    /// `--buffered-passthrough`: the forwards go through the buffer (acked), not live.
    buffered_passthrough: bool,
    /// `--inbound-text`: the inbound text, `{i}` replaced by the message's number.
    inbound_text: String,
    /// `--inbound-bytes`: every inbound text made exactly this many bytes long.
    inbound_bytes: Option<usize>,
    /// `--interrupt-after`: an `interrupt_inbound` after every N-th inbound (0: none).
    interrupt_after: u32,
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
    /// The identities the gateway announced (one per platform, first = the default), for
    /// the seeding's platform and the forwards' bot.
    identities: Vec<Identity>,
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
        Err(e) => return cli::usage_error("connector", HELP, &e),
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
                        None
                    })
                    .await;
                if let Ok(mut pending) = pending.lock() {
                    pending.retain(|(s, _)| *s != socket);
                }
                unacked
            }
        };
        if options.once {
            // Refused or never handshaken (`None`) fails as unacked deliveries do.
            let clean = connection.await == Some(0);
            return std::process::ExitCode::from(u8::from(!clean));
        }
        smol::spawn(connection).detach();
    }
    std::process::ExitCode::SUCCESS
}

/// Serves one socket to its end; returns how many deliveries its instance has unacked
/// then, or `None` when it was refused or closed before its handshake.
async fn connection(
    tcp: smol::net::TcpStream,
    accepted_at: Instant,
    relay: &Relay,
    pending: &Pending,
    socket: u64,
) -> Option<usize> {
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
            return None;
        }
        Err(command) => {
            let command = command.to_string();
            println!(
                "{}",
                json!({ "event": "gave_up", "upgraded": false, "command": command })
            );
            return None;
        }
    };
    let (mut ws, auth) = match upgraded {
        Ok(accepted) => accepted,
        Err(e) => {
            println!("{}", json!({ "event": "upgrade_failed", "error": e }));
            return None;
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
            return None;
        }
    };
    let (sender, mailbox) = common::mailbox();
    let conn = with_tenant(relay, &key, |tenant| {
        let conn = tenant.instance.accept(accepted_at);
        tenant.mailboxes.insert(conn, sender);
        conn
    });
    let mut handshaken = false;
    common::serve_socket(ws, mailbox, |incoming| {
        with_tenant(relay, &key, |tenant| {
            let now = Instant::now();
            match incoming {
                Incoming::Bytes(bytes) => tenant.instance.handle_input(now, conn, bytes),
                Incoming::Pong => tenant.instance.on_pong(now, conn),
                Incoming::Timeout => tenant.instance.handle_timeout(now),
            }
        });
        // Read once the application has answered what this input brought (a hello's
        // descriptor completes the handshake), so a socket that ends right after its
        // handshake still counts as handshaken.
        with_tenant(relay, &key, |tenant| {
            // Handshaken: no longer one of the pending sockets the cap may drop.
            if tenant
                .instance
                .connection(conn)
                .is_some_and(|m| m.is_handshaken())
            {
                handshaken = true;
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
    handshaken.then_some(unacked)
}

/// Runs `f` on the tenant `key` (created on first use), then carries out every output of
/// its instance, as the run loop requires after each input.
fn with_tenant<R>(relay: &Relay, key: &str, f: impl FnOnce(&mut Tenant) -> R) -> R {
    let mut tenants = relay.tenants.lock().unwrap_or_else(|e| e.into_inner());
    let tenant = tenants.entry(key.to_owned()).or_insert_with(|| Tenant {
        instance: Instance::new(relay.options.config.clone()),
        mailboxes: HashMap::new(),
        seeded: false,
        identities: Vec::new(),
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
            let _ = tenant
                .instance
                .send_descriptor(now, conn, descriptor(&identity.platform));
            if !tenant
                .identities
                .iter()
                .any(|i| i.platform == identity.platform)
            {
                tenant.identities.push(identity.clone());
            }
            if !std::mem::replace(&mut tenant.seeded, true) {
                smol::spawn(seed(relay.clone(), key.to_owned())).detach();
            }
            json!({ "event": "hello", "platform": identity.platform, "botId": identity.bot_id })
        }
        InstanceOutput::Event(conn, ConnectorEvent::Outbound { request, identity }) => {
            let Outbound {
                request_id, action, ..
            } = *request;
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
            json!({ "event": "diagnostic", "detail": d.to_string() })
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
        other => json!({ "event": "other", "detail": other.to_string() }),
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

/// One step of the seeding: a delivery (through the buffer or live), or an interrupt.
enum Seed {
    Deliver(Delivery, bool),
    /// `--interrupt-after`: stop the turn of `session_key` (never buffered: an interrupt
    /// only means something to the gateway connected now).
    Interrupt {
        session_key: String,
        chat_id: String,
    },
}

/// What the connector pushes after the first handshake, in order, unless the store says
/// this instance was seeded before (by this process or one that shared the store). The
/// buffered ones are persisted together with the marker, so that a connector killed
/// meanwhile leaves all of them or none.
async fn seed(relay: Relay, key: String) {
    // The gateway sends its hellos back to back: taken when the seeding starts, right
    // after the first handshake (the first one is the default platform).
    let identities = with_tenant(&relay, &key, |tenant| tenant.identities.clone());
    let steps = seed_steps(&relay.options, &identities);
    let buffered: Vec<Delivery> = steps
        .iter()
        .filter_map(|step| match step {
            Seed::Deliver(d, true) => Some(d.clone()),
            _ => None,
        })
        .collect();
    let seeded = {
        let key = key.clone();
        relay.store.call(move |store| store.seed(&key, buffered))
    };
    let Some(Some(ids)) = seeded.await else {
        return;
    };
    let mut ids = ids.into_iter();
    for step in steps {
        match step {
            Seed::Deliver(delivery, false) => deliver(&relay, &key, delivery).await,
            Seed::Deliver(delivery, true) => {
                if let Some(id) = ids.next() {
                    with_tenant(&relay, &key, |tenant| {
                        tenant.instance.push_buffered(Instant::now(), id, delivery)
                    });
                }
            }
            Seed::Interrupt {
                session_key,
                chat_id,
            } => {
                let sent = with_tenant(&relay, &key, |tenant| {
                    tenant
                        .instance
                        .send_interrupt(Instant::now(), &session_key, &chat_id)
                });
                let line = match sent {
                    Ok(()) => {
                        json!({ "event": "interrupt_inbound", "session_key": session_key, "chat_id": chat_id })
                    }
                    Err(e) => {
                        json!({ "event": "interrupt_not_sent", "session_key": session_key, "error": e.to_string() })
                    }
                };
                println!("{line}");
            }
        }
    }
}

/// The `--push-inbound` events (each through the buffer when it is a `--buffered-every`-th
/// one, an interrupt after each `--interrupt-after`-th), then the `--passthrough` forwards.
/// The events come from the first announced platform, the forwards go to the announced
/// Discord bot (`botId` and path `/interactions/discord/BOTID`, as protocol.md §2.12).
fn seed_steps(options: &Options, identities: &[Identity]) -> Vec<Seed> {
    let platform = identities
        .first()
        .map_or("discord", |i| i.platform.as_str());
    let mut steps = Vec::new();
    for i in 1..=options.push_inbound {
        let buffered = options.buffered_every > 0 && i % options.buffered_every == 0;
        let mut source = SessionSource::new(platform, "group", "4455");
        source.user_id = Some("77".into());
        source.scope_id = Some("1000".into());
        source.message_id = Some(format!("{}", 9000 + i).into());
        let interrupt =
            (options.interrupt_after > 0 && i % options.interrupt_after == 0).then(|| {
                Seed::Interrupt {
                    session_key: session_key(&source, &SessionKeyOptions::default()),
                    chat_id: source.chat_id.to_string(),
                }
            });
        let event = MessageEvent {
            text: inbound_text(options, i).into(),
            message_id: source.message_id.clone(),
            source,
            ..Default::default()
        };
        steps.push(Seed::Deliver(event.into(), buffered));
        steps.extend(interrupt);
    }
    let bot_id = identities
        .iter()
        .find(|i| i.platform == "discord")
        .map_or("", |i| i.bot_id.as_str());
    for i in 1..=options.passthrough {
        let body = json!({ "type": 2, "id": format!("i{i}"), "channel_id": "4455", "guild_id": "1000",
            "data": { "name": "ping" }, "member": { "user": { "id": "77", "username": "alice" } } });
        let mut forward = PassthroughForward::new("discord", body.to_string().into_bytes());
        forward.bot_id = bot_id.into();
        forward.method = "POST".into();
        forward.path = if bot_id.is_empty() {
            "/interactions/discord".into()
        } else {
            format!("/interactions/discord/{bot_id}").into()
        };
        forward.headers = vec![("content-type".into(), "application/json".into())];
        steps.push(Seed::Deliver(forward.into(), options.buffered_passthrough));
    }
    steps
}

/// The text of the `i`-th inbound: `--inbound-text` with `{i}` replaced by `i`; with
/// `--inbound-bytes N`, repeated and cut to exactly N bytes (a character the cut would
/// split becomes `.`s, so the text stays valid UTF-8 of exactly N bytes).
fn inbound_text(options: &Options, i: u32) -> String {
    let text = options.inbound_text.replace("{i}", &i.to_string());
    let Some(n) = options.inbound_bytes else {
        return text;
    };
    if text.is_empty() {
        return ".".repeat(n);
    }
    let mut out = String::with_capacity(n);
    for c in text.chars().cycle() {
        if out.len() + c.len_utf8() > n {
            break;
        }
        out.push(c);
    }
    let pad = n - out.len();
    out.push_str(&".".repeat(pad));
    out
}

/// A descriptor for `platform`, as a connector fronting it would send. Telegram's 4096
/// UTF-16 units (and its dialect and ops) are protocol.md §2.4's example; Discord's 2000
/// code points are Discord's own message limit (the figure of protocol.md §3.2's
/// examples). protocol.md gives no figure for any other platform, so 4096 code points,
/// plain text and the legacy ops are this example's own choice there (the reference's
/// default length, §3.1). The label is the platform's real name ([`label`]).
fn descriptor(platform: &str) -> CapabilityDescriptor {
    let mut d = CapabilityDescriptor::new(platform, label(platform));
    match platform {
        "discord" => {
            d.max_message_length = 2000;
            d.len_unit = LenUnit::Chars;
            d.markdown_dialect = "discord".into();
            d.supports_edit = true;
            d.supports_threads = true;
        }
        "telegram" => {
            d.max_message_length = 4096;
            d.len_unit = LenUnit::Utf16;
            d.markdown_dialect = "markdown_v2".into();
            d.supports_draft_streaming = true;
            d.supports_edit = true;
            d.supports_threads = true;
            d.supported_ops = ["send", "edit", "typing", "draft", "react"]
                .map(String::from)
                .to_vec();
        }
        // This example's own figures (CapabilityDescriptor::new's defaults).
        _ => {}
    }
    d
}

/// The human name of a platform: the built-in ones of protocol.md §4.2 by their real
/// names, any other id with its first letter capitalised.
fn label(platform: &str) -> String {
    let known = match platform {
        "local" => "Local",
        "telegram" => "Telegram",
        "discord" => "Discord",
        "whatsapp" => "WhatsApp",
        "whatsapp_cloud" => "WhatsApp Cloud API",
        "slack" => "Slack",
        "signal" => "Signal",
        "mattermost" => "Mattermost",
        "matrix" => "Matrix",
        "homeassistant" => "Home Assistant",
        "email" => "Email",
        "sms" => "SMS",
        "dingtalk" => "DingTalk",
        "api_server" => "API Server",
        "webhook" => "Webhook",
        "msgraph_webhook" => "Microsoft Graph",
        "feishu" => "Feishu",
        "wecom" => "WeCom",
        "wecom_callback" => "WeCom Callback",
        "weixin" => "Weixin",
        "bluebubbles" => "BlueBubbles",
        "qqbot" => "QQ Bot",
        "yuanbao" => "Yuanbao",
        "relay" => "Relay",
        other => {
            let mut chars = other.chars();
            return chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect()
            });
        }
    };
    known.to_owned()
}

const HELP: &str = "\
usage: connector [--listen ADDR] [--secret S] [--push-inbound K] [--buffered-every M]
    [--inbound-text TEXT] [--inbound-bytes N] [--interrupt-after N] [--passthrough P]
    [--buffered-passthrough] [--once] [--hello-timeout S] [--ping-interval S]
    [--liveness-timeout S] [--max-pending N] [--store PATH|redis://HOST:PORT/]

  --listen ADDR           where to listen (default 127.0.0.1:0); the first output line is
                          {\"listening\":\"ws://HOST:PORT/relay\"}
  --secret S              require a valid upgrade token (else close 4401)
  --push-inbound K        after the first handshake, push K inbound events, from the first
                          announced platform (chat 4455, user 77)
  --buffered-every M      every M-th of them buffered (acked by the gateway)
  --inbound-text TEXT     their text (any Unicode), {i} replaced by the event's number
                          (default \"message {i}\")
  --inbound-bytes N       make each text exactly N bytes of UTF-8: the text repeated and
                          cut, a character the cut would split replaced by '.' (at most
                          1000000, so that the frame fits the 1 MiB limit)
  --interrupt-after N     after every N-th inbound event, an interrupt_inbound for its
                          session and chat (sent on the current connection, never
                          buffered; a buffered event may reach the gateway after it)
  --passthrough P         push P Discord-interaction forwards, to the announced Discord
                          bot: its botId, path /interactions/discord/BOTID (botId \"\" and
                          path /interactions/discord when no Discord bot was announced)
  --buffered-passthrough  the forwards go through the buffer (acked) instead of live
  --once                  exit when the first connection closes
  --hello-timeout S, --ping-interval S, --liveness-timeout S
                          the machine's timers, 0 to 86400 seconds (0 disables)
  --max-pending N         un-handshaken sockets kept at once (default 256)
  --store PATH|URL        the buffers in an SQLite file or Redis streams (default memory)
  -h, --help              this text

Descriptors: one per hello, with the platform's real name as label. Discord: 2000 chars;
Telegram: 4096 utf16 (protocol.md's figures); any other platform: 4096 chars, plain
text, legacy ops (this example's own figures: protocol.md gives none).
Prints one JSON line per protocol event.
Exit codes: 0 ok (with --once: every buffered delivery was acked), 1 with --once: some
delivery left unacked, or the connection was refused (4401) or closed before a handshake;
1 the store cannot be opened or the address cannot be listened on; 64 usage error.
";

/// Most `--inbound-bytes`: the inbound frame, its envelope and escapes included, must fit
/// one 1 MiB frame.
const MAX_INBOUND_BYTES: usize = 1_000_000;

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        listen: "127.0.0.1:0".into(),
        config: ConnectorConfig::default(),
        max_pending: 256,
        inbound_text: "message {i}".into(),
        ..Options::default()
    };
    let mut args = cli::args(HELP).into_iter();
    while let Some(arg) = args.next() {
        let mut value = || cli::value(&arg, &mut args);
        let timer = |v: String| cli::seconds(&arg, &v).map(|d| Some(d).filter(|d| !d.is_zero()));
        match arg.as_str() {
            "--listen" => o.listen = value()?,
            "--secret" => o.secret = Some(value()?),
            "--push-inbound" => o.push_inbound = cli::number(&arg, &value()?)?,
            "--buffered-every" => o.buffered_every = cli::number(&arg, &value()?)?,
            "--passthrough" => o.passthrough = cli::number(&arg, &value()?)?,
            "--buffered-passthrough" => o.buffered_passthrough = true,
            "--inbound-text" => o.inbound_text = value()?,
            "--inbound-bytes" => o.inbound_bytes = Some(cli::number(&arg, &value()?)?),
            "--interrupt-after" => o.interrupt_after = cli::number(&arg, &value()?)?,
            "--once" => o.once = true,
            "--store" => o.store = Some(value()?),
            "--hello-timeout" => o.config.hello_timeout = timer(value()?)?,
            "--ping-interval" => o.config.ping_interval = timer(value()?)?,
            "--liveness-timeout" => o.config.liveness_timeout = timer(value()?)?,
            "--max-pending" => o.max_pending = cli::number::<usize>(&arg, &value()?)?.max(1),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if let Some(n) = o.inbound_bytes {
        // Escapes (a quote, a control character) grow the frame: checked on the text.
        let escaped = serde_json::to_string(&inbound_text(&o, 1)).map_or(usize::MAX, |t| t.len());
        if n > MAX_INBOUND_BYTES || escaped > MAX_INBOUND_BYTES + 2 {
            return Err(format!(
                "--inbound-bytes: at most {MAX_INBOUND_BYTES} bytes once escaped in JSON, got {n}"
            ));
        }
    }
    Ok(o)
}

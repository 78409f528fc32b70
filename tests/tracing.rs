//! The `tracing` feature: both machines emit events at their protocol decisions, with the
//! fields docs/tracing.md lists.
//!
//! The feature is off by default; the repository's self dev-dependency turns it on for the
//! tests (tests/features.rs fails if it does not), so a plain `cargo test` runs this file.
//! From the published package it compiles to nothing unless `--features tracing,testing`.
//! The subscriber is written here on `tracing`'s own `Subscriber` trait: it records every
//! event, so no subscriber crate is needed.
#![cfg(all(feature = "tracing", feature = "testing"))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use relay_machine::connector::{ConnectorConfig, ConnectorMachine, MemoryStore};
use relay_machine::gateway::{GatewayConfig, GatewayState, Identity, RelayMachine};
use relay_machine::testing::Pair;
use relay_machine::wire::{MessageEvent, SendAction, SessionSource};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One recorded event: where from, how loud, and its fields as text (`message` included).
#[derive(Debug, Clone)]
struct Captured {
    target: String,
    level: Level,
    fields: BTreeMap<String, String>,
}

impl Captured {
    fn message(&self) -> &str {
        self.fields.get("message").map_or("", String::as_str)
    }

    fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// Records every event; spans are accepted and ignored (the machines open none).
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Captured>>>);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let metadata = event.metadata();
        self.0.lock().unwrap().push(Captured {
            target: metadata.target().to_owned(),
            level: *metadata.level(),
            fields,
        });
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Runs `body` with the recorder as this thread's subscriber; returns what it recorded.
fn record(body: impl FnOnce()) -> Vec<Captured> {
    let recorder = Recorder::default();
    tracing::subscriber::with_default(recorder.clone(), body);
    recorder.0.lock().unwrap().clone()
}

/// The one event with `message` from a target under `target`, and fields `with`.
fn find<'a>(
    events: &'a [Captured],
    target: &str,
    message: &str,
    with: &[(&str, &str)],
) -> &'a Captured {
    let found: Vec<&Captured> = events
        .iter()
        .filter(|e| e.target.starts_with(target) && e.message() == message)
        .filter(|e| with.iter().all(|(k, v)| e.field(k) == Some(v)))
        .collect();
    assert!(
        !found.is_empty(),
        "no {target} event {message:?} with {with:?} among:\n{}",
        render(events)
    );
    found[0]
}

fn render(events: &[Captured]) -> String {
    events
        .iter()
        .map(|e| format!("{} {} {:?}\n", e.level, e.target, e.fields))
        .collect()
}

fn pair() -> Pair {
    let config = GatewayConfig {
        identities: vec![
            Identity::new("discord", "111"),
            Identity::new("telegram", "222"),
        ],
        ..GatewayConfig::default()
    };
    let gateway = RelayMachine::new(config, 7).unwrap();
    Pair::new(gateway, MemoryStore::with_epoch(0), Instant::now())
}

fn connect(pair: &mut Pair) {
    pair.gateway.connect(pair.now).unwrap();
    pair.drive_until_idle().unwrap();
    assert_eq!(pair.gateway.state(), GatewayState::Open);
}

const GW: &str = "relay_machine::gateway";
const CONN: &str = "relay_machine::connector";

#[test]
fn handshake_requests_and_acks_are_traced_on_both_sides() {
    let mut request = None;
    let mut buffer = None;
    let events = record(|| {
        let mut pair = pair();
        connect(&mut pair);
        let action = SendAction {
            chat_id: "c1".into(),
            content: "hi".into(),
            ..SendAction::default()
        };
        request = Some(pair.send(action, None).unwrap());
        let event = MessageEvent {
            text: "buffered".into(),
            source: SessionSource::new("discord", "group", "c1"),
            ..MessageEvent::default()
        };
        buffer = pair.push(event, true);
        pair.drive_until_idle().unwrap();
        let id = buffer.clone().unwrap();
        pair.ack(&id).unwrap();
        pair.drive_until_idle().unwrap();
    });
    let (request, buffer) = (request.unwrap().to_string(), buffer.unwrap().to_string());

    // Handshake: per identity on each side, then complete once on the gateway.
    let hello = find(&events, GW, "connected: one hello per identity", &[]);
    assert_eq!(hello.level, Level::DEBUG);
    assert_eq!(hello.field("identities"), Some("2"));
    for (platform, bot_id) in [("discord", "111"), ("telegram", "222")] {
        let with = [("platform", platform), ("bot_id", bot_id)];
        find(&events, CONN, "hello received", &with);
        find(
            &events,
            CONN,
            "descriptor sent: identity handshaken",
            &[("platform", platform)],
        );
        let got = find(
            &events,
            GW,
            "descriptor received: identity handshaken",
            &with,
        );
        assert_eq!(got.level, Level::DEBUG);
        assert_eq!(got.field("generation"), Some("1"));
    }
    let done = find(
        &events,
        GW,
        "handshake complete",
        &[("platform", "discord")],
    );
    assert_eq!(done.field("generation"), Some("1"));
    assert_eq!(done.target, "relay_machine::gateway::handshake");

    // The request: received and answered by the connector, resolved by the gateway.
    find(
        &events,
        CONN,
        "request received",
        &[("request_id", &request), ("platform", "discord")],
    );
    find(
        &events,
        CONN,
        "request resolved",
        &[("request_id", &request), ("outcome", "ok message m-1")],
    );
    let resolved = find(&events, GW, "request resolved", &[("request_id", &request)]);
    assert_eq!(resolved.field("outcome"), Some("ok message m-1"));
    assert_eq!(resolved.level, Level::DEBUG);

    // The ack: written by the gateway, received by the connector.
    let written = find(&events, GW, "ack written", &[("buffer_id", &buffer)]);
    assert_eq!(written.field("generation"), Some("1"));
    find(&events, CONN, "ack received", &[("buffer_id", &buffer)]);
    find(&events, CONN, "connection accepted", &[("conn", "0")]);

    // A healthy exchange warns about nothing.
    let loud: Vec<_> = events.iter().filter(|e| e.level <= Level::INFO).collect();
    assert!(loud.is_empty(), "{}", render(&events));
}

#[test]
fn a_dropped_connection_traces_its_end_and_the_scheduled_reconnect() {
    let events = record(|| {
        let mut pair = pair();
        connect(&mut pair);
        pair.drop_connection();
        pair.drive_until_idle().unwrap();
        pair.advance(Duration::from_secs(2)).unwrap();
        assert_eq!(pair.gateway.state(), GatewayState::Open);
    });
    let ended = find(&events, GW, "connection ended", &[("generation", "1")]);
    assert_eq!(ended.level, Level::INFO);
    assert_eq!(ended.field("reason"), Some("connection reset"));
    let scheduled = find(&events, GW, "reconnect scheduled", &[("attempt", "1")]);
    assert_eq!(scheduled.level, Level::DEBUG);
    assert_eq!(scheduled.target, "relay_machine::gateway::reconnect");
    assert_eq!(scheduled.field("purpose"), Some("backoff re-dial"));
    assert!(scheduled.field("delay").is_some(), "{scheduled:?}");
    find(
        &events,
        GW,
        "dial requested",
        &[("generation", "2"), ("purpose", "backoff re-dial")],
    );
    find(&events, GW, "handshake complete", &[("generation", "2")]);
}

#[test]
fn auth_strikes_are_counted_and_warned() {
    let events = record(|| {
        let mut pair = pair();
        connect(&mut pair);
        // The connector revokes the credential on the open connection: the first strike
        // re-dials with a fresh token, and a 4401 on that connection is the second.
        for _ in 0..2 {
            let conn = pair.conn.unwrap();
            pair.instance.close(pair.now, conn, 4401, "unauthorized");
            pair.drive_until_idle().unwrap();
        }
        assert_eq!(pair.gateway.state(), GatewayState::Revoked);
    });
    find(
        &events,
        CONN,
        "close decided",
        &[("code", "4401"), ("reason", "unauthorized")],
    );
    let first = find(
        &events,
        GW,
        "auth strike 1 of 2: re-dialling with a fresh token",
        &[],
    );
    assert_eq!(first.level, Level::WARN);
    assert_eq!(first.field("strike"), Some("1"));
    assert_eq!(first.field("generation"), Some("1"));
    find(
        &events,
        GW,
        "dial requested",
        &[("purpose", "re-dial with a fresh token")],
    );
    let second = find(&events, GW, "auth strike 2 of 2: credential revoked", &[]);
    assert_eq!(second.level, Level::WARN);
    assert_eq!(second.field("strike"), Some("2"));
    assert_eq!(second.field("reason"), Some("unauthorized"));
}

#[test]
fn supersede_and_connector_timeouts_are_traced() {
    let events = record(|| {
        let mut pair = pair();
        connect(&mut pair);
        // A second connection of the same gateway instance supersedes the first.
        let now = pair.now;
        let second = pair.instance.accept(now);
        assert_eq!(second.0, 1);
        while pair.instance.poll_output().is_some() {}

        let t0 = Instant::now();
        let config = ConnectorConfig {
            hello_timeout: Some(Duration::from_secs(5)),
            liveness_timeout: Some(Duration::from_secs(60)),
            ..ConnectorConfig::default()
        };
        let mut silent = ConnectorMachine::new(config.clone(), t0);
        silent.handle_timeout(t0 + Duration::from_secs(5));
        while silent.poll_output().is_some() {}

        let mut dead = ConnectorMachine::new(config, t0);
        dead.handle_input(
            t0,
            b"{\"type\":\"hello\",\"platform\":\"discord\",\"botId\":\"1\"}\n",
        );
        while dead.poll_output().is_some() {}
        dead.handle_timeout(t0 + Duration::from_secs(61));
        while dead.poll_output().is_some() {}
    });
    let superseded = find(
        &events,
        CONN,
        "connection superseded",
        &[("conn", "0"), ("by", "1")],
    );
    assert_eq!(superseded.level, Level::INFO);
    find(&events, CONN, "close decided", &[("code", "4409")]);
    let hello = find(
        &events,
        CONN,
        "hello timeout: no hello since the accept",
        &[],
    );
    assert_eq!(hello.level, Level::WARN);
    find(
        &events,
        CONN,
        "close decided",
        &[("code", "1008"), ("reason", "hello timeout")],
    );
    let liveness = find(
        &events,
        CONN,
        "liveness timeout: no sign of life, socket dropped",
        &[],
    );
    assert_eq!(liveness.level, Level::WARN);
}

#[test]
fn gateway_timeouts_are_warned() {
    let events = record(|| {
        let mut pair = pair();
        pair.app.auto_descriptor = false;
        pair.gateway.connect(pair.now).unwrap();
        pair.drive_until_idle().unwrap();
        // No descriptor comes: the handshake times out.
        pair.advance(Duration::from_secs(31)).unwrap();
    });
    let timeout = find(&events, GW, "handshake timeout: no descriptor in time", &[]);
    assert_eq!(timeout.level, Level::WARN);
    assert_eq!(timeout.field("generation"), Some("1"));
    find(
        &events,
        GW,
        "close decided",
        &[("reason", "handshake timeout")],
    );
    let failed = find(&events, GW, "first connection failed", &[]);
    assert_eq!(failed.level, Level::WARN);
    assert!(failed.fields.contains_key("failure"), "{failed:?}");
}

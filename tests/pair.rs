//! Both roles against each other through the in-memory pair harness.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use relay_machine::connector::{DeliveryStore, MemoryStore};
use relay_machine::gateway::{GatewayConfig, GatewayEvent, GatewayState, Identity, RelayMachine};
use relay_machine::testing::Pair;
use relay_machine::wire::close;
use relay_machine::wire::{BufferId, MessageEvent, SendAction, SessionSource};

fn pair() -> Pair {
    let config = GatewayConfig {
        identities: vec![
            Identity::new("discord", "111"),
            Identity::new("telegram", "222"),
        ],
        ..GatewayConfig::default()
    };
    let gateway = RelayMachine::new(config, 7).unwrap();
    let mut pair = Pair::new(gateway, MemoryStore::with_epoch(0), Instant::now());
    pair.gateway.connect(pair.now).unwrap();
    pair.drive_until_idle().unwrap();
    assert_eq!(pair.gateway.state(), GatewayState::Open);
    pair
}

fn event(chat: &str, text: &str) -> MessageEvent {
    MessageEvent {
        text: text.into(),
        source: SessionSource::new("discord", "group", chat),
        ..MessageEvent::default()
    }
}

fn send(pair: &mut Pair, chat: &str) -> relay_machine::wire::RequestId {
    let action = SendAction {
        chat_id: chat.into(),
        content: "hi".into(),
        ..SendAction::default()
    };
    pair.gateway.send(pair.now, action, None).unwrap()
}

fn inbound_texts(pair: &Pair) -> Vec<(String, Option<BufferId>)> {
    pair.gateway_events
        .iter()
        .filter_map(|e| match e {
            GatewayEvent::Inbound { event, buffer_id } => {
                Some((event.text.to_string(), buffer_id.clone()))
            }
            _ => None,
        })
        .collect()
}

/// The texts of the buffered `inbound` frames the connector wrote, from transcript line
/// `from` on: what it replayed on the wire, whether or not the gateway handed it over.
fn wire_inbound(pair: &Pair, from: usize) -> Vec<String> {
    pair.transcript
        .render()
        .lines()
        .skip(from)
        .filter_map(|line| {
            line.split_once(" conn→gw ")?
                .1
                .trim_start()
                .strip_prefix("inbound ")
        })
        .map(|json| {
            let frame: serde_json::Value = serde_json::from_str(json).unwrap();
            assert!(frame["bufferId"].is_string(), "{frame}");
            frame["event"]["text"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn transcript_len(pair: &Pair) -> usize {
    pair.transcript.render().lines().count()
}

fn responses(pair: &Pair) -> Vec<(relay_machine::wire::RequestId, bool, bool)> {
    pair.gateway_events
        .iter()
        .filter_map(|e| match e {
            GatewayEvent::Response { id, result } => Some((
                id.clone(),
                result.as_ref().is_ok_and(|r| r.success),
                result.as_ref().err().is_some_and(|f| f.is_ambiguous()),
            )),
            _ => None,
        })
        .collect()
}

/// The same traffic gives the same events however the bytes are cut or merged.
#[test]
fn byte_split_and_coalesced_delivery_give_the_same_events() {
    let mut outcomes = Vec::new();
    for (split, coalesce) in [
        (None, false),
        (Some(1), false),
        (Some(7), true),
        (None, true),
    ] {
        let mut pair = pair();
        pair.knobs.split = split;
        pair.knobs.coalesce = coalesce;
        for i in 0..5 {
            // Even ones buffered, odd ones live (sent at once: the gateway is not idle).
            let buffered = i % 2 == 0;
            let id = pair.push(event("c1", &format!("caf\u{e9} {i} 🚀")), buffered);
            assert_eq!(id.is_some(), buffered);
        }
        let ids: Vec<_> = (0..3).map(|_| send(&mut pair, "c1")).collect();
        pair.drive_until_idle().unwrap();
        let texts = inbound_texts(&pair);
        assert_eq!(texts.len(), 5, "split {split:?} coalesce {coalesce}");
        assert!(responses(&pair).iter().all(|(_, ok, _)| *ok));
        assert_eq!(responses(&pair).len(), ids.len());
        let events: Vec<String> = texts.iter().map(|(t, b)| format!("{t} {b:?}")).collect();
        outcomes.push(events);
    }
    assert!(outcomes.windows(2).all(|w| w[0] == w[1]), "{outcomes:#?}");
}

#[test]
fn a_connection_dropped_mid_request_fails_it_as_ambiguous_and_reconnects() {
    let mut pair = pair();
    pair.app.auto_respond = false;
    let id = send(&mut pair, "c1");
    pair.drive_until_idle().unwrap();
    assert_eq!(pair.connection().unwrap().in_flight(), 1);
    pair.drop_connection();
    pair.drive_until_idle().unwrap();
    let resolved = responses(&pair);
    assert_eq!(resolved, vec![(id, false, true)]);
    assert_eq!(pair.gateway.state(), GatewayState::Waiting);
    // Reconnects after the first backoff step (at most 1 s) and handshakes again.
    pair.app.auto_respond = true;
    pair.advance(Duration::from_secs(1)).unwrap();
    assert_eq!(pair.gateway.state(), GatewayState::Open);
    let handshakes = pair
        .gateway_events
        .iter()
        .filter(|e| matches!(e, GatewayEvent::HandshakeComplete { .. }))
        .count();
    assert_eq!(handshakes, 2);
}

/// The unacked tail, exactly, in order; nothing acked is ever delivered again. The replay
/// is the connector's, on the wire: the gateway remembers what it handed over, so the
/// application gets each delivery once and acks it whichever connection is up.
#[test]
fn reconnect_replays_exactly_the_unacked_tail() {
    let mut pair = pair();
    for i in 1..=6 {
        pair.push(event("c1", &format!("m{i}")), true).unwrap();
    }
    pair.drive_until_idle().unwrap();
    let first = inbound_texts(&pair);
    assert_eq!(first.len(), 6);
    // The application owns m1, m2 and m4 durably; m3, m5, m6 are still its to lose.
    for (text, id) in &first {
        if ["m1", "m2", "m4"].contains(&text.as_str()) {
            pair.gateway
                .ack_inbound(pair.now, id.as_ref().unwrap())
                .unwrap();
        }
    }
    pair.drive_until_idle().unwrap();
    assert_eq!(pair.store.unacked_len(), 3);
    assert_eq!(pair.gateway.unacked(), 3);
    pair.gateway_events.clear();
    let mark = transcript_len(&pair);
    pair.drop_connection();
    pair.advance(Duration::from_secs(1)).unwrap();
    assert_eq!(pair.gateway.state(), GatewayState::Open);
    assert_eq!(wire_inbound(&pair, mark), ["m3", "m5", "m6"]);
    // The application still holds those three from the first connection: not handed over
    // a second time.
    assert!(inbound_texts(&pair).is_empty());
    assert_eq!(pair.gateway.unacked(), 3);
    // Ack everything now (with the ids the first connection brought): a third connection
    // replays nothing.
    for (text, id) in &first {
        if ["m3", "m5", "m6"].contains(&text.as_str()) {
            pair.gateway
                .ack_inbound(pair.now, id.as_ref().unwrap())
                .unwrap();
        }
    }
    pair.drive_until_idle().unwrap();
    assert_eq!(pair.store.unacked_len(), 0);
    assert_eq!(pair.gateway.unacked(), 0);
    pair.gateway_events.clear();
    let mark = transcript_len(&pair);
    pair.drop_connection();
    pair.advance(Duration::from_secs(2)).unwrap();
    assert_eq!(pair.gateway.state(), GatewayState::Open);
    assert!(wire_inbound(&pair, mark).is_empty());
    assert!(inbound_texts(&pair).is_empty());
}

#[test]
fn revocation_after_the_fresh_token_retry_is_terminal() {
    let mut pair = pair();
    // First strike: the connector closes 4401 on an established connection.
    let conn = pair.conn.unwrap();
    pair.instance
        .close(pair.now, conn, close::UNAUTHORIZED, "unauthorized");
    pair.drive_until_idle().unwrap();
    // The gateway re-dialled at once (no backoff) and handshook again.
    assert_eq!(pair.gateway.state(), GatewayState::Open);
    assert_eq!(pair.gateway.generation(), 2);
    // Second strike on the retry connection: revoked for good.
    let conn = pair.conn.unwrap();
    pair.instance
        .close(pair.now, conn, close::UNAUTHORIZED, "unauthorized");
    pair.drive_until_idle().unwrap();
    assert_eq!(pair.gateway.state(), GatewayState::Revoked);
    assert!(
        pair.gateway_events
            .iter()
            .any(|e| matches!(e, GatewayEvent::Revoked { .. }))
    );
    pair.advance(Duration::from_secs(120)).unwrap();
    assert_eq!(pair.gateway.generation(), 2, "no dial after revocation");
    let failure = pair
        .gateway
        .send(pair.now, SendAction::default(), None)
        .unwrap_err();
    assert_eq!(failure, relay_machine::gateway::SendError::Revoked);
}

#[test]
fn an_expired_token_is_never_a_revocation() {
    let mut pair = pair();
    for _ in 0..3 {
        let conn = pair.conn.unwrap();
        pair.instance
            .close(pair.now, conn, close::UNAUTHORIZED, "expired");
        pair.advance(Duration::from_secs(30)).unwrap();
        assert_eq!(pair.gateway.state(), GatewayState::Open);
    }
}

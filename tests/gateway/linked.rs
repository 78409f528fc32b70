//! Fixtures for the scenarios that run both roles linked in memory (the harness's
//! `Pair` seat): a gateway with two identities, open, over a connector with an empty store.

use std::time::Instant;

use relay_machine::connector::MemoryStore;
use relay_machine::gateway::{GatewayConfig, GatewayEvent, GatewayState, Identity, RelayMachine};
use relay_machine::testing::Pair;
use relay_machine::wire::{BufferId, MessageEvent, SendAction, SessionSource};

pub fn pair() -> Pair {
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

pub fn event(chat: &str, text: &str) -> MessageEvent {
    MessageEvent {
        text: text.into(),
        source: SessionSource::new("discord", "group", chat),
        ..MessageEvent::default()
    }
}

pub fn send(pair: &mut Pair, chat: &str) -> relay_machine::wire::RequestId {
    let action = SendAction {
        chat_id: chat.into(),
        content: "hi".into(),
        ..SendAction::default()
    };
    pair.send(action, None).unwrap()
}

pub fn inbound_texts(pair: &Pair) -> Vec<(String, Option<BufferId>)> {
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
pub fn wire_inbound(pair: &Pair, from: usize) -> Vec<String> {
    pair.log
        .transcript
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

pub fn transcript_len(pair: &Pair) -> usize {
    pair.log.transcript.render().lines().count()
}

pub fn responses(pair: &Pair) -> Vec<(relay_machine::wire::RequestId, bool, bool)> {
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

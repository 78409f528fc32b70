#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::wildcard_enum_match_arm)]
//! The gateway scenarios' thin layer over the harness's [`SoloGateway`] seat: the seat
//! drives the machine (the test plays the connector), records every output, renders the
//! transcript, answers queries over the recorded outputs and checks the protocol
//! invariants after every step (`relay_machine::testing::Invariants`). This file adds the
//! scenarios' fixtures and a few conveniences.
//!
//! Determinism (same seed and inputs, same outputs) is checked once, explicitly, by
//! `determinism::same_seed_same_inputs_same_outputs`, not by a twin on every step.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use relay_machine::gateway::{
    GatewayConfig, GatewayState, Identity, Output, RequestFailure, SendError,
};
use relay_machine::testing::SoloGateway;
use relay_machine::wire::{ActionResult, RequestId, SendAction};
use serde_json::{Value, json};

/// The seat, with the scenarios' conveniences: times in milliseconds, `fire`, the
/// one-resolution query. Everything else (inputs, commands, queries over the recorded
/// outputs) is `SoloGateway`'s, through `Deref`.
pub struct Driver {
    solo: SoloGateway,
}

impl Deref for Driver {
    type Target = SoloGateway;

    fn deref(&self) -> &SoloGateway {
        &self.solo
    }
}

impl DerefMut for Driver {
    fn deref_mut(&mut self) -> &mut SoloGateway {
        &mut self.solo
    }
}

impl Driver {
    /// A driver around a machine seeded with [`SEED`].
    pub fn new(config: GatewayConfig) -> Self {
        Self::seeded(config, SEED)
    }

    pub fn seeded(config: GatewayConfig, seed: u64) -> Self {
        Self {
            solo: SoloGateway::new(config, seed).unwrap(),
        }
    }

    /// A driver whose machine has completed its first handshake: every identity got its
    /// descriptor, in hello order.
    pub fn open(config: GatewayConfig) -> Self {
        Self::open_seeded(config, SEED)
    }

    pub fn open_seeded(config: GatewayConfig, seed: u64) -> Self {
        let platforms: Vec<String> = config_platforms(&config);
        let mut d = Self::seeded(config, seed);
        d.connect().unwrap();
        d.connected();
        for p in &platforms {
            d.feed(&descriptor(p));
        }
        assert_eq!(d.state(), GatewayState::Open);
        d
    }

    /// Milliseconds since the start.
    pub fn ms(&self) -> u64 {
        self.log.ms(self.now)
    }

    /// The transcript so far.
    pub fn transcript(&self) -> String {
        self.log.transcript.render()
    }

    /// Every output so far, typed (for the determinism check).
    pub fn outputs(&self) -> Vec<(u64, Output)> {
        let log = &self.log.gateway;
        log.iter().map(|r| (r.ms, r.output.clone())).collect()
    }

    /// The one resolution of `id`; fails unless there is exactly one.
    pub fn response(&self, id: &RequestId) -> Result<ActionResult, RequestFailure> {
        let all = self.responses(id);
        assert_eq!(all.len(), 1, "request {id} resolved {} times", all.len());
        all.into_iter().next().unwrap()
    }

    /// Every id returned by `send` resolved exactly once.
    pub fn assert_all_resolved(&self) {
        self.check.all_resolved();
    }

    /// Lets `ms` of virtual time pass, firing every deadline that falls due on the way.
    pub fn advance(&mut self, ms: u64) {
        self.solo.advance(Duration::from_millis(ms));
    }

    /// Jumps to the next deadline and handles it.
    pub fn fire(&mut self) {
        assert!(self.solo.step(), "fire: no deadline pending");
    }

    /// A plain `send` of `text` to `chat_id`.
    pub fn send_text(&mut self, chat_id: &str, text: &str) -> Result<RequestId, SendError> {
        self.send(send_action(chat_id, text), None)
    }
}

fn config_platforms(config: &GatewayConfig) -> Vec<String> {
    if config.identities.is_empty() {
        vec!["relay".to_owned()]
    } else {
        config
            .identities
            .iter()
            .map(|i| i.platform.clone())
            .collect()
    }
}

// ----- fixtures ---------------------------------------------------------------------

/// The Discord slash-command manifest of protocol.md §2.3.
pub fn discord_manifest() -> Vec<serde_json::Map<String, Value>> {
    let manifest = json!([
        {"name": "ping", "description": "Check liveness"},
        {"name": "topic", "description": "Set topic", "options": [
            {"type": 3, "name": "text", "description": "New topic", "required": false}
        ]}
    ]);
    serde_json::from_value(manifest).unwrap()
}

/// telegram (701), discord (1122334455, with a command manifest), slack (no bot id).
pub fn three_identities() -> Vec<Identity> {
    vec![
        Identity::new("telegram", "701"),
        Identity {
            command_manifest: Some(discord_manifest()),
            ..Identity::new("discord", "1122334455")
        },
        Identity::new("slack", ""),
    ]
}

/// A config with the three identities and the defaults otherwise (seed 7).
/// The seed of every scenario's machine unless a test says otherwise: the request ids and
/// jitter in the snapshots are this seed's.
pub const SEED: u64 = 7;

pub fn config3() -> GatewayConfig {
    GatewayConfig {
        identities: three_identities(),
        ..reference()
    }
}

/// A config with one telegram identity (seed 7).
pub fn config1() -> GatewayConfig {
    GatewayConfig {
        identities: vec![Identity::new("telegram", "701")],
        ..reference()
    }
}

/// One discord identity (bot `1`) with the library's defaults otherwise: keepalive, dial
/// and close bounds on (the edge cases found in review run on it, seed 0).
pub fn discord1() -> GatewayConfig {
    GatewayConfig {
        identities: vec![Identity::new("discord", "1")],
        ..GatewayConfig::default()
    }
}

/// The reference gateway's transport as the scenarios of protocol.md §6–§7 describe it:
/// no keepalive or dial/close bounds (the liveness scenarios turn them on), and a first
/// dial that fails fast.
pub fn reference() -> GatewayConfig {
    // (The liveness scenarios start from GatewayConfig::default() instead.)
    GatewayConfig {
        ping_interval: None,
        liveness_timeout: None,
        dial_timeout: None,
        close_timeout: None,
        retry_first_dial: false,
        ..GatewayConfig::default()
    }
}

/// A `descriptor` line for `platform`, with per-platform numbers so they are told apart.
pub fn descriptor(platform: &str) -> String {
    let (label, max, unit) = match platform {
        "telegram" => ("Telegram", 4096, "utf16"),
        "discord" => ("Discord", 2000, "utf16"),
        "slack" => ("Slack", 40000, "chars"),
        _ => ("Other", 1000, "chars"),
    };
    json!({"type": "descriptor", "descriptor": {
        "contract_version": 1, "platform": platform, "label": label,
        "max_message_length": max, "supports_draft_streaming": false,
        "supports_edit": true, "supports_threads": false,
        "markdown_dialect": "plain", "len_unit": unit
    }})
    .to_string()
}

/// An `inbound` line with `source` and `text`, buffered when `buffer_id` is given.
pub fn inbound(source: Value, text: &str, buffer_id: Option<&str>) -> String {
    let mut frame = json!({"type": "inbound", "event": {"text": text, "source": source}});
    if let Some(b) = buffer_id {
        frame["bufferId"] = json!(b);
    }
    frame.to_string()
}

/// A plain live telegram DM inbound.
pub fn dm(chat_id: &str, user_id: &str, text: &str) -> String {
    inbound(
        json!({"platform": "telegram", "chat_id": chat_id, "chat_type": "dm", "user_id": user_id}),
        text,
        None,
    )
}

/// A successful `outbound_result` for `id`.
pub fn result_ok(id: &RequestId, message_id: &str) -> String {
    json!({"type": "outbound_result", "requestId": id.as_str(),
           "result": {"success": true, "message_id": message_id}})
    .to_string()
}

pub fn send_action(chat_id: &str, text: &str) -> SendAction {
    SendAction {
        chat_id: chat_id.into(),
        content: text.into(),
        ..SendAction::default()
    }
}

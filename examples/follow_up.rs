//! A Discord slash command answered with `follow_up`, both roles in memory (no network).
//!
//! ```text
//! cargo run --example follow_up
//! ```
//!
//! Exit codes: 0 the follow-up resolved with success, 1 it did not, 64 usage error.
//!
//! The connector strips the interaction token from the webhook body before forwarding it, and
//! vaults it under the session key the gateway will derive for that interaction. The gateway
//! converts the forward with `discord::interaction_event`, derives the key with
//! `session_key::session_key`, and answers with a `follow_up` naming the key. The connector
//! finds the token by that key and spends it. Both sides print the key: they must agree, or the
//! follow-up names a session the vault never bound.

#[path = "common/cli.rs"]
mod cli;

use std::collections::HashMap;
use std::error::Error;
use std::time::Instant;

use relay_machine::connector::{ConnectorEvent, MemoryStore};
use relay_machine::discord::interaction_event;
use relay_machine::gateway::{GatewayConfig, GatewayEvent, Identity, RelayMachine};
use relay_machine::session_key::{SessionKeyOptions, session_key};
use relay_machine::testing::Pair;
use relay_machine::wire::{ActionResult, FollowUpAction, OutboundAction, PassthroughForward};
use serde_json::Value;

/// The interaction Discord posts to the connector: `/new` in channel 4455 of guild 1000.
const WEBHOOK_BODY: &str = r#"{"type":2,"id":"i1","application_id":"1122334455","token":"aW50ZXJhY3Rpb24tdG9rZW4","channel_id":"4455","guild_id":"1000","data":{"name":"new"},"member":{"user":{"id":"77","username":"alice"}}}"#;

/// What a run showed.
#[derive(Debug)]
pub struct Outcome {
    /// The key the connector vaulted the token under.
    pub connector_key: String,
    /// The key the gateway named in its `follow_up`.
    pub gateway_key: String,
    /// The body the gateway received (the token stripped).
    pub forwarded_body: Vec<u8>,
    /// The follow-up the connector executed: (token, content).
    pub executed: Option<(String, String)>,
    /// The gateway's request resolved with success.
    pub success: bool,
}

/// A credential the connector keeps for a later `follow_up`.
struct Capability {
    application_id: String,
    token: String,
}

/// Runs the whole exchange, telling `say` what each side does.
pub fn run(say: &mut dyn FnMut(&str, String)) -> Result<Outcome, Box<dyn Error>> {
    // Both sides must derive keys with the gateway's configuration (here its defaults).
    let options = SessionKeyOptions::default();

    let gateway = RelayMachine::new(
        GatewayConfig {
            identities: vec![Identity::new("discord", "1122334455")],
            ..GatewayConfig::default()
        },
        1,
    )?;
    let mut pair = Pair::new(gateway, MemoryStore::with_epoch(1), Instant::now());
    // This example plays the connector application itself, so it answers outbounds.
    pair.app.auto_respond = false;
    pair.gateway.connect(pair.now)?;
    pair.drive_until_idle()?;

    // Connector: a webhook arrives. Strip the token (the gateway never sees credentials),
    // vault it under the key the gateway will derive, forward the rest.
    let mut body: Value = serde_json::from_str(WEBHOOK_BODY)?;
    let object = body
        .as_object_mut()
        .ok_or("webhook body is not an object")?;
    let token = take_string(object, "token");
    let application_id = take_string(object, "application_id");
    let mut forward = PassthroughForward::new("discord", body.to_string());
    forward.bot_id = "1122334455".into();
    forward.method = "POST".into();
    forward.path = "/interactions/discord/1122334455".into();
    let connector_key = session_key(&interaction_event(&forward)?.source, &options);
    say(
        "conn",
        format!("vaulted the interaction token under {connector_key}"),
    );
    let mut vault = HashMap::new();
    vault.insert(
        connector_key.clone(),
        Capability {
            application_id,
            token,
        },
    );
    pair.push(forward, false);
    pair.drive_until_idle()?;

    // Gateway: convert the forward, derive the same key, answer through the capability.
    let mut forwarded_body = Vec::new();
    let mut gateway_key = String::new();
    for event in std::mem::take(&mut pair.gateway_events) {
        let GatewayEvent::Passthrough { forward, .. } = event else {
            continue;
        };
        if let Ok(body) = &forward.body {
            forwarded_body = body.to_vec();
        }
        let event = interaction_event(&forward)?;
        gateway_key = session_key(&event.source, &options);
        let author = event.source.user_name.as_deref().unwrap_or("?");
        say(
            "gw",
            format!("{} from {author}: session {gateway_key}", event.text),
        );
        let follow_up = FollowUpAction {
            session_key: gateway_key.clone().into(),
            kind: "discord.interaction_token".into(),
            content: "Started a new session.".into(),
            metadata: Default::default(),
        };
        pair.send(follow_up, None)?;
    }
    pair.drive_until_idle()?;

    // Connector: find the capability by the key the follow-up names and spend it.
    let mut executed = None;
    for event in std::mem::take(&mut pair.connector_events) {
        let ConnectorEvent::Outbound { request, .. } = event else {
            continue;
        };
        let result = match &request.action {
            OutboundAction::FollowUp(f) => match vault.get(f.session_key.as_str()) {
                Some(capability) => {
                    say("conn", format!("follow_up names {}", f.session_key));
                    // Stands in for Discord's `POST /webhooks/{application_id}/{token}`.
                    let shown = capability.token.get(..8).unwrap_or(&capability.token);
                    say(
                        "conn",
                        format!(
                            "POST /webhooks/{}/{shown}... {:?}",
                            capability.application_id, f.content
                        ),
                    );
                    executed = Some((capability.token.clone(), f.content.to_string()));
                    ActionResult::ok_with_message("m-1")
                }
                None => ActionResult::failure("no capability bound to that session", None),
            },
            _ => ActionResult::failure("unsupported op", None),
        };
        let conn = pair.conn.ok_or("no connection")?;
        pair.instance
            .respond(pair.now, conn, &request.request_id, result)?;
    }
    pair.drive_until_idle()?;

    let mut success = false;
    for event in &pair.gateway_events {
        if let GatewayEvent::Response { result, .. } = event {
            success = result.as_ref().is_ok_and(|r| r.success);
            say("gw", format!("follow_up resolved, success: {success}"));
        }
    }
    Ok(Outcome {
        connector_key,
        gateway_key,
        forwarded_body,
        executed,
        success,
    })
}

/// Removes `key` from `object` and returns it as a string (`""` when absent).
fn take_string(object: &mut serde_json::Map<String, Value>, key: &str) -> String {
    match object.remove(key) {
        Some(Value::String(s)) => s,
        _ => String::new(),
    }
}

const HELP: &str = "\
usage: follow_up

A Discord interaction answered with follow_up, both roles in memory (no network).
Takes no flags but -h/--help (this text).
Exit codes: 0 the follow-up resolved with success, 1 it did not, 64 usage error.
";

fn main() -> std::process::ExitCode {
    if let Some(arg) = cli::args(HELP).first() {
        return cli::usage_error("follow_up", HELP, &format!("unknown argument {arg}"));
    }
    match run(&mut |who, what| println!("{who:<5} {what}")) {
        Ok(o) if o.connector_key == o.gateway_key && o.success => std::process::ExitCode::SUCCESS,
        Ok(_) => {
            eprintln!("follow_up: the follow-up did not resolve");
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("follow_up: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

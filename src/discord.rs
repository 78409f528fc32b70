//! Discord interactions forwarded as `passthrough_forward` → message events
//! (protocol.md §10).
//!
//! A slash command, a button press or a modal submit reaches the connector as an HTTP webhook.
//! The connector answers it at its edge and forwards the raw body to the gateway, which turns
//! it into the same [`MessageEvent`] a relayed text message would be. Both sides need that
//! conversion: the gateway to act on the interaction, and the connector to derive the session
//! key (through [`session_key`](crate::session_key::session_key)) under which it vaults the
//! interaction token for a later `follow_up`. [`interaction_event`] is the reference gateway's
//! most evolved conversion (nick precedence, thread detection); the examples of §10 are its
//! tests.
//!
//! Differences from the reference, all on unusable input: a forward that is not for Discord or
//! whose body is unusable gives a typed [`InteractionError`] instead of being logged and
//! dropped, and shapes that crash the reference (a `data` that is not an object) are read as
//! absent.
//!
//! Values are stringified as the reference's Python `str()` does where that is well defined:
//! strings as they are, integers in decimal, booleans as `True`/`False`. Floats use JSON
//! number text (Python would write `1e+20` where this writes `1e20`), and arrays or objects,
//! which Discord never sends in these places, are written as compact JSON.
#![deny(clippy::indexing_slicing)]

use serde_json::{Map, Value};

use crate::session_key::{canonical_platform, py_trim};
use crate::wire::{
    BodyError, MessageEvent, MessageType, PassthroughForward, PromptResponse, SessionSource, Str,
};

/// Why a forward yields no event. The reference logs and drops all of these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InteractionError {
    /// The forward is for another provider (`twilio`, ...).
    #[error("not a Discord forward (platform {platform:?})")]
    NotDiscord {
        /// The forward's platform as received.
        platform: String,
    },
    /// The forward's `bodyB64` was not valid base64.
    #[error("interaction body could not be decoded: {0}")]
    Body(#[source] BodyError),
    /// The body is not UTF-8.
    #[error("interaction body is not UTF-8 (valid up to byte {valid_up_to})")]
    NotUtf8 {
        /// Length of the valid UTF-8 prefix.
        valid_up_to: usize,
    },
    /// The body is not JSON.
    #[error("interaction body is not JSON: {message}")]
    InvalidJson {
        /// The parser's message, with line and column.
        message: String,
    },
    /// The body is JSON but not an object.
    #[error("interaction body is a JSON {found}, not an object")]
    NotObject {
        /// What it is instead: `array`, `string`, `number`, `boolean` or `null`.
        found: &'static str,
    },
}

/// The message event the gateway makes of a forwarded Discord interaction (protocol.md §10).
///
/// - Application command (type 2): text `"/name option…"`, type `command`; options render
///   recursively (sub-command and group names, then values). An empty name gives `""`,
///   type `text`.
/// - Message component (type 3): text `custom_id`, type `text`; a Hermes prompt answer
///   (`hp1:<prompt_id>:<option_id>`, see [`decode_prompt_token`]) becomes text
///   `"/<option_id>"`, type `command`, with a [`PromptResponse`].
/// - Anything else (a ping, a modal submit, …): empty text, type `text`.
///
/// The source is platform `discord`, the channel as chat (a `thread` in a guild thread
/// channel, else `group` in a guild, else `dm`), the member's or user's id and display name,
/// the guild as `scope_id`, the interaction id as `source.message_id` (the event-level
/// `message_id` stays unset) and `forward.profile` as profile.
///
/// `forward.platform` is matched like a source platform
/// ([`canonical_platform`]): `Discord` counts, `twilio` does not.
///
/// ```
/// use relay_machine::discord::interaction_event;
/// use relay_machine::wire::PassthroughForward;
///
/// let body = r#"{"type":2,"id":"i1","channel_id":"4455","guild_id":"1000",
///     "data":{"name":"model","options":[{"type":3,"name":"name","value":"gpt-x"}]},
///     "member":{"user":{"id":"77","username":"alice"}}}"#;
/// let event = interaction_event(&PassthroughForward::new("discord", body)).unwrap();
/// assert_eq!(event.text, "/model gpt-x");
/// assert_eq!(event.source.chat_type, "group");
/// ```
pub fn interaction_event(forward: &PassthroughForward) -> Result<MessageEvent, InteractionError> {
    if canonical_platform(&forward.platform) != "discord" {
        return Err(InteractionError::NotDiscord {
            platform: forward.platform.to_string(),
        });
    }
    let body = forward
        .body
        .as_ref()
        .map_err(|e| InteractionError::Body(e.clone()))?;
    let text = std::str::from_utf8(body).map_err(|e| InteractionError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    let payload: Value = serde_json::from_str(text).map_err(|e| InteractionError::InvalidJson {
        message: e.to_string(),
    })?;
    if let Value::Object(payload) = payload {
        Ok(convert(&payload, forward.profile.clone()))
    } else {
        Err(InteractionError::NotObject {
            found: json_kind(&payload),
        })
    }
}

/// The prompt and option ids of a Hermes prompt answer's `custom_id`,
/// `hp1:<prompt_id>:<option_id>`: exactly three `:`-separated parts, both ids of 1 to 32
/// characters from `[A-Za-z0-9_.-]`. `None` for anything else, which is then an ordinary
/// component press.
pub fn decode_prompt_token(custom_id: &str) -> Option<(&str, &str)> {
    let mut parts = custom_id.split(':');
    let (Some("hp1"), Some(prompt_id), Some(option_id), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    // Strict: the reference's `re.match(r"^…{1,32}$")` would also accept a trailing newline.
    let valid = |id: &str| {
        (1..=32).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
    };
    (valid(prompt_id) && valid(option_id)).then_some((prompt_id, option_id))
}

/// The conversion proper. Every read tests truthiness as the reference does (`x or …`), so
/// `""`, `0`, `false`, `null`, `[]` and `{}` all count as absent.
fn convert(payload: &Map<String, Value>, profile: Option<Str>) -> MessageEvent {
    let kind = payload.get("type");
    let data = payload.get("data").and_then(Value::as_object);
    let field = |key: &str| data.and_then(|d| truthy(d.get(key))).map(py_str);

    let mut event = MessageEvent::default();
    if is_int(kind, 2) {
        let head = format!("/{}", field("name").unwrap_or_default());
        // A blank name leaves only slashes, which the reference strips to "": no command.
        let head = head.trim_end_matches('/');
        if !head.is_empty() {
            let mut parts = vec![head.to_owned()];
            render_options(data.and_then(|d| d.get("options")), &mut parts);
            event.text = py_trim(&parts.join(" ")).into();
            event.message_type = MessageType::Command;
        }
    } else if is_int(kind, 3) {
        event.text = field("custom_id").unwrap_or_default().into();
        if let Some((prompt_id, option_id)) = decode_prompt_token(&event.text) {
            let message = payload.get("message").and_then(Value::as_object);
            event.prompt_response = Some(Box::new(PromptResponse {
                prompt_id: prompt_id.to_owned(),
                option_id: option_id.to_owned(),
                label: None,
                prompt_message_id: message.and_then(|m| truthy(m.get("id"))).map(py_str),
            }));
            event.text = format!("/{option_id}").into();
            event.message_type = MessageType::Command;
        }
    }
    event.source = source(payload, profile);
    event
}

/// The session source, keyed like the text lane's so both lanes share one session.
fn source(payload: &Map<String, Value>, profile: Option<Str>) -> SessionSource {
    let get = |key: &str| truthy(payload.get(key));
    let member = payload.get("member").and_then(Value::as_object);
    // member.user in a guild, user in a DM. A member whose `user` is present but not an
    // object does not fall back to the top-level user (nor does the reference).
    let user = member
        .and_then(|m| truthy(m.get("user")))
        .or_else(|| get("user"))
        .and_then(Value::as_object);
    let user_field = |key: &str| user.and_then(|u| truthy(u.get(key)));
    // The text lane's name is the native author.display_name: nick, global name, username.
    let user_name = member
        .and_then(|m| truthy(m.get("nick")))
        .or_else(|| user_field("global_name"))
        .or_else(|| user_field("username"))
        .map(py_str);

    let guild_id = get("guild_id");
    let chat_id = get("channel_id").map(py_str).unwrap_or_default();
    // The partial channel object marks a thread by type (10 announcement, 11 public,
    // 12 private thread) and names its parent. Only guilds have threads.
    let channel = payload.get("channel").and_then(Value::as_object);
    let channel_type = channel.and_then(|c| c.get("type"));
    let is_thread = guild_id.is_some() && [10, 11, 12].iter().any(|t| is_int(channel_type, *t));
    let chat_type = if is_thread {
        "thread"
    } else if guild_id.is_some() {
        // "group", not "channel": the native Discord adapter keys guild channels as group.
        "group"
    } else {
        "dm"
    };

    SessionSource {
        thread_id: is_thread.then(|| Str::from(&chat_id)),
        parent_chat_id: channel
            .filter(|_| is_thread)
            .and_then(|c| truthy(c.get("parent_id")))
            .map(|v| py_str(v).into()),
        user_id: user_field("id").map(|v| py_str(v).into()),
        user_name: user_name.map(Str::from),
        scope_id: guild_id.map(|v| py_str(v).into()),
        // The interaction id; the event-level message_id stays unset, so the text lane's
        // replay dedupe does not apply to interactions.
        message_id: get("id").map(|v| py_str(v).into()),
        profile,
        ..SessionSource::new("discord", chat_type, chat_id)
    }
}

/// Appends the text of `options`: sub-commands (1) and groups (2) give their name and then
/// their nested options; any other option gives its value unless null or blank. Non-object
/// entries are skipped.
///
/// Recursion is bounded by the JSON parser's nesting limit (128), which allows at most 64
/// levels of options.
fn render_options(options: Option<&Value>, parts: &mut Vec<String>) {
    let Some(Value::Array(options)) = options else {
        return;
    };
    for option in options.iter().filter_map(Value::as_object) {
        let kind = option.get("type");
        if is_int(kind, 1) || is_int(kind, 2) {
            if let Some(name) = truthy(option.get("name")).map(py_str) {
                push_trimmed(parts, &name);
            }
            render_options(option.get("options"), parts);
        } else if let Some(value) = option.get("value").filter(|v| !v.is_null()) {
            push_trimmed(parts, &py_str(value));
        }
    }
}

fn push_trimmed(parts: &mut Vec<String>, text: &str) {
    let text = py_trim(text);
    if !text.is_empty() {
        parts.push(text.to_owned());
    }
}

/// `value` when Python would call it true.
fn truthy(value: Option<&Value>) -> Option<&Value> {
    value.filter(|v| match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    })
}

/// Whether `value` is the number `n` (Python's `==`, so `2.0` counts; booleans do not).
fn is_int(value: Option<&Value>, n: i64) -> bool {
    if let Some(Value::Number(number)) = value {
        number.as_i64() == Some(n) || (number.is_f64() && number.as_f64() == Some(n as f64))
    } else {
        false
    }
}

/// Python's `str()` of a JSON value, as far as it is well defined (see the module docs).
fn py_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Null => "None".to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Array(_) | Value::Object(_) => value.to_string(),
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

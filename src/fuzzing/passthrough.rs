//! The `passthrough` target: strict base64 bodies and `passthrough_forward` frames.

use arbitrary::Unstructured;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::decode_all;
use crate::codec::encode;
use crate::discord::interaction_event;
use crate::session_key::{SessionKeyOptions, canonical_platform, session_key};
use crate::wire::{Base64Error, Frame, MessageType, PassthroughForward, decode_base64};

/// Base64 bodies and passthrough frames.
///
/// Invariants:
/// - `decode_base64` never panics; what it accepts is exactly the canonical padded
///   encoding of what it returns, and an error's offset lies inside the text;
/// - any bytes encode and decode back;
/// - a `passthrough_forward` with any `bodyB64` string decodes (a bad body is a typed
///   error inside the frame, never a failed frame), its body is what `decode_base64` says,
///   a bad body keeps its text, and the frame re-encodes to a fixed point;
/// - arbitrary bytes in the `forward` position never panic the decoder;
/// - Discord interaction bodies (structured or arbitrary bytes) never panic
///   [`interaction_event`]; an event it returns is a `discord` event carrying the
///   forward's profile, a command's text starts with `/`, its session key is a Discord
///   key; a forward for another platform is refused.
pub fn passthrough(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(mode) = u.int_in_range(0..=4u8) else {
        return;
    };
    match mode {
        0 => {
            let Ok(text) = u.arbitrary::<&str>() else {
                return;
            };
            check_base64_text(text);
        }
        1 => {
            let bytes: &[u8] = u.arbitrary().unwrap_or_default();
            let text = STANDARD.encode(bytes);
            assert_eq!(
                decode_base64(&text).as_deref(),
                Ok(bytes),
                "bytes → b64 → bytes"
            );
        }
        2 => forward_frame(&mut u),
        3 => interaction(&mut u),
        _ => {
            let mut line =
                br#"{"type":"passthrough_forward","bufferId":"pb-1","forward":"#.to_vec();
            line.extend_from_slice(u.take_rest());
            line.extend_from_slice(b"}");
            line.retain(|&b| b != b'\n');
            for frame in decode_all(&line, usize::MAX).into_iter().flatten() {
                fixed_point(&frame);
                if let Frame::PassthroughForward(f) = &frame {
                    discord_hook(&f.forward);
                }
            }
        }
    }
}

fn check_base64_text(text: &str) {
    match decode_base64(text) {
        Ok(bytes) => assert_eq!(
            STANDARD.encode(&bytes),
            text,
            "decode_base64 accepted a non-canonical text"
        ),
        Err(
            Base64Error::InvalidByte { offset, .. } | Base64Error::InvalidLastSymbol { offset, .. },
        ) => assert!(
            offset < text.len(),
            "error offset {offset} outside the text"
        ),
        Err(_) => {}
    }
}

fn forward_frame(u: &mut Unstructured<'_>) {
    let text = |u: &mut Unstructured<'_>| u.arbitrary::<String>().unwrap_or_default();
    let body = text(u);
    let headers: Vec<(String, String)> = u.arbitrary().unwrap_or_default();
    let object = json!({
        "type": "passthrough_forward",
        "forward": {
            "platform": text(u),
            "botId": text(u),
            "method": text(u),
            "path": text(u),
            "headers": headers,
            "bodyB64": body,
            "profile": if u.arbitrary().unwrap_or(false) { Value::String(text(u)) } else { Value::Null },
        },
        "bufferId": text(u),
    });
    let Ok(mut line) = serde_json::to_vec(&object) else {
        return;
    };
    line.push(b'\n');
    let items = decode_all(&line, line.len());
    let [Ok(Frame::PassthroughForward(frame))] = items.as_slice() else {
        panic!("a well-typed forward did not decode: {items:?}");
    };
    let forward = &frame.forward;
    let got: Vec<(String, String)> = forward
        .headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    assert_eq!(got, headers);
    match (&forward.body, decode_base64(&body)) {
        (Ok(got), Ok(want)) => assert_eq!(got, &want),
        (Err(got), Err(reason)) => {
            assert_eq!(got.reason, reason);
            assert_eq!(got.encoded, body, "a bad body must keep its text");
        }
        (got, want) => panic!("body {got:?}, decode_base64 says {want:?}"),
    }
    fixed_point(&Frame::PassthroughForward(frame.clone()));
    discord_hook(forward);
}

/// A Discord-shaped interaction body (or arbitrary bytes) in a forward.
fn interaction(u: &mut Unstructured<'_>) {
    let body = if u.arbitrary().unwrap_or(false) {
        interaction_json(u, 0).to_string().into_bytes()
    } else {
        u.arbitrary::<Vec<u8>>().unwrap_or_default()
    };
    let platform = if u.arbitrary().unwrap_or(true) {
        "discord"
    } else {
        "twilio"
    };
    let mut forward = PassthroughForward::new(platform, body);
    forward.profile = u
        .arbitrary::<Option<String>>()
        .unwrap_or_default()
        .map(Into::into);
    discord_hook(&forward);
}

/// A value shaped like a Discord interaction: the keys §10 reads, with random types.
fn interaction_json(u: &mut Unstructured<'_>, depth: u8) -> Value {
    let text = |u: &mut Unstructured<'_>| u.arbitrary::<String>().unwrap_or_default();
    let id = |u: &mut Unstructured<'_>| match u.int_in_range(0..=2u8).unwrap_or(0) {
        0 => Value::String(text(u)),
        1 => json!(u.arbitrary::<u64>().unwrap_or_default()),
        _ => Value::Null,
    };
    let options: Vec<Value> = if depth < 3 {
        (0..u.int_in_range(0..=3u8).unwrap_or(0))
            .map(|_| {
                json!({ "type": u.int_in_range(0..=11u8).unwrap_or(3), "name": text(u),
                        "value": id(u), "options": interaction_json(u, depth + 1)["data"]["options"].clone() })
            })
            .collect()
    } else {
        Vec::new()
    };
    let custom_id = if u.arbitrary().unwrap_or(false) {
        format!("hp1:{}:{}", text(u), text(u))
    } else {
        text(u)
    };
    json!({
        "type": u.int_in_range(0..=6u8).unwrap_or(2), "id": id(u), "channel_id": id(u),
        "guild_id": id(u), "channel": { "type": u.int_in_range(0..=15u8).unwrap_or(0), "parent_id": id(u) },
        "data": { "name": text(u), "options": options, "custom_id": custom_id },
        "member": { "nick": id(u), "user": { "id": id(u), "username": text(u), "global_name": id(u) } },
        "user": { "id": id(u), "username": text(u) }, "message": { "id": id(u) },
    })
}

fn discord_hook(forward: &PassthroughForward) {
    let result = interaction_event(forward);
    if canonical_platform(&forward.platform) != "discord" {
        assert!(
            result.is_err(),
            "a {:?} forward became an event",
            forward.platform
        );
    }
    let Ok(event) = result else { return };
    assert_eq!(event.source.platform, "discord");
    assert_eq!(
        event.source.profile.as_deref(),
        forward.profile.as_deref(),
        "the forward's profile is carried"
    );
    if event.message_type == MessageType::Command {
        assert!(event.text.starts_with('/'), "command text {:?}", event.text);
    }
    let key = session_key(&event.source, &SessionKeyOptions::default());
    assert!(key.starts_with("agent:main:discord:"), "{key}");
}

fn fixed_point(frame: &Frame) {
    let again = decode_all(&encode(frame), usize::MAX);
    assert_eq!(again, [Ok(frame.clone())], "forward is not a fixed point");
}

//! encode → decode round trips for every frame type and op, the reference's formatting
//! (spaces after separators, `\uXXXX` escapes) decoding stably, and the example lines of
//! protocol.md decoding to the shared example values.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::wildcard_enum_match_arm
)]

mod common;

use bytes::Bytes;
use relay_machine::codec::{DecodeError, FrameDecoder, encode, encode_into};
use relay_machine::wire::{
    Base64Error, BodyError, BufferId, CapabilityDescriptor, DraftAction, Frame, Inbound, MediaItem,
    MessageEvent, MessageType, OutboundAction, PassthroughForward, PassthroughFrame, PromptAction,
    SendAction,
};

/// Decodes one complete line (with or without its `\n`) that must hold exactly one frame.
fn decode(line: &[u8]) -> Result<Frame, Box<DecodeError>> {
    let mut decoder = FrameDecoder::new();
    decoder.push(line);
    if !line.ends_with(b"\n") {
        decoder.push(b"\n");
    }
    let item = decoder.next_frame().expect("one item");
    assert_eq!(decoder.next_frame(), None, "one line, one item");
    item
}

fn roundtrip(label: &str, frame: &Frame) {
    let line = encode(frame);
    assert_eq!(line.last(), Some(&b'\n'), "{label}");
    assert_eq!(
        line.iter().filter(|&&b| b == b'\n').count(),
        1,
        "{label}: exactly one newline, at the end"
    );
    let decoded = decode(&line).unwrap_or_else(|e| panic!("{label}: {e}"));
    assert_eq!(&decoded, frame, "{label}: decode(encode(f)) != f");
    assert_eq!(encode(&decoded), line, "{label}: encoding is not stable");
}

#[test]
fn every_example_round_trips() {
    let all = common::all();
    assert!(all.len() >= 12 + 15);
    for (label, frame) in &all {
        roundtrip(label, frame);
    }
}

#[test]
#[allow(clippy::vec_init_then_push)]
fn edge_values_round_trip() {
    let mut frames: Vec<(&str, Frame)> = Vec::new();
    frames.push((
        "bad body keeps its text",
        PassthroughFrame {
            forward: Box::new(PassthroughForward {
                body: Err(BodyError {
                    reason: Base64Error::InvalidByte {
                        offset: 0,
                        byte: b'-',
                    },
                    encoded: "-_8=".to_owned(),
                }),
                ..PassthroughForward::new("discord", Bytes::new())
            }),
            buffer_id: Some(BufferId::from("pb-1")),
        }
        .into(),
    ));
    frames.push((
        "empty body",
        PassthroughFrame {
            forward: Box::new(PassthroughForward::new("", Bytes::new())),
            buffer_id: None,
        }
        .into(),
    ));
    frames.push((
        "every byte value in a body",
        PassthroughFrame {
            forward: Box::new(PassthroughForward::new(
                "x",
                (0..=255u8).collect::<Vec<u8>>(),
            )),
            buffer_id: None,
        }
        .into(),
    ));
    frames.push((
        "default event",
        Inbound {
            event: Box::new(MessageEvent::default()),
            buffer_id: None,
        }
        .into(),
    ));
    frames.push((
        "control characters and separators in text",
        Inbound {
            event: Box::new(MessageEvent {
                text: "\u{0}\u{1}\u{1f}\u{7f}\u{2028}\u{2029}\"\\/\r\n\t\u{feff}\u{10ffff}".into(),
                message_type: MessageType::Other("image".to_owned()),
                ..MessageEvent::default()
            }),
            buffer_id: Some(BufferId::from("b 1 \u{e9}")),
        }
        .into(),
    ));
    frames.push((
        "numeric limits",
        Inbound {
            event: Box::new(MessageEvent {
                media: vec![MediaItem {
                    url: "u".to_owned(),
                    kind: None,
                    mime: None,
                    size: Some(u64::MAX),
                    filename: None,
                    caption: None,
                }],
                ..MessageEvent::default()
            }),
            buffer_id: None,
        }
        .into(),
    ));
    for draft_id in [i64::MIN, -1, 0, i64::MAX] {
        frames.push((
            "draft_id limits",
            common::outbound(
                "r",
                DraftAction {
                    chat_id: "c".into(),
                    draft_id,
                    content: String::new().into(),
                    is_final: false,
                    metadata: Default::default(),
                },
            ),
        ));
    }
    frames.push((
        "timeout_s limit",
        common::outbound(
            "r",
            PromptAction {
                timeout_s: Some(u64::MAX),
                ..PromptAction::default()
            },
        ),
    ));
    for max_message_length in [1, i64::MAX as u64, i64::MAX as u64 + 1, u64::MAX] {
        let mut descriptor = common::telegram_descriptor();
        descriptor.contract_version = u32::MAX;
        descriptor.max_message_length = max_message_length;
        frames.push((
            "descriptor limits",
            relay_machine::wire::Descriptor {
                descriptor: Box::new(descriptor),
            }
            .into(),
        ));
    }
    frames.push((
        "metadata of every JSON type",
        common::outbound(
            "r",
            SendAction {
                metadata: common::obj(serde_json::json!({
                    "s": "x", "i": -5, "u": u64::MAX, "f": 1.5, "e": 1e300, "b": true,
                    "n": null, "a": [1, "two", [3]], "o": {"k": {"k": {}}}
                }))
                .into(),
                ..SendAction::default()
            },
        ),
    ));
    for (label, frame) in &frames {
        roundtrip(label, frame);
    }
}

/// Values a peer can construct but the decoder deliberately reads differently (the
/// reference's lenient rules): encode → decode is not the identity for them.
#[test]
fn values_the_decoder_normalises() {
    let normalised = |frame: Frame| decode(&encode(&frame)).map_err(|e| e.to_string());

    // An empty bufferId means "not buffered".
    let Ok(Frame::Inbound(i)) = normalised(
        Inbound {
            event: Box::new(MessageEvent::default()),
            buffer_id: Some(BufferId::from("")),
        }
        .into(),
    ) else {
        panic!()
    };
    assert_eq!(i.buffer_id, None);
    // A non-positive length limit reads as 4096; empty op names are dropped.
    let mut d = CapabilityDescriptor::new("x", "X");
    d.max_message_length = 0;
    d.supported_ops = vec![String::new(), "send".to_owned()];
    let Ok(Frame::Descriptor(read)) = normalised(
        relay_machine::wire::Descriptor {
            descriptor: Box::new(d),
        }
        .into(),
    ) else {
        panic!()
    };
    assert_eq!(read.descriptor.max_message_length, 4096);
    assert_eq!(read.descriptor.supported_ops, ["send"]);
    // A known message type spelled through `Other` comes back as the known variant.
    let Ok(Frame::Inbound(i)) = normalised(
        Inbound {
            event: Box::new(MessageEvent {
                message_type: MessageType::Other("photo".to_owned()),
                ..MessageEvent::default()
            }),
            buffer_id: None,
        }
        .into(),
    ) else {
        panic!()
    };
    assert_eq!(i.event.message_type, MessageType::Photo);
}

/// The example lines of protocol.md, verbatim (Python `json.dumps` formatting), and the
/// label of the shared example each must decode to.
const SPEC_LINES: &[(&str, &str)] = &[
    (
        "hello/telegram",
        r#"{"type": "hello", "platform": "telegram", "botId": "7012345678"}"#,
    ),
    (
        "hello/discord+manifest",
        r#"{"type": "hello", "platform": "discord", "botId": "1122334455", "command_manifest": [{"name": "ping", "description": "Check liveness"}, {"name": "topic", "description": "Set topic", "options": [{"type": 3, "name": "text", "description": "New topic", "required": false}]}]}"#,
    ),
    (
        "descriptor/telegram",
        r#"{"type": "descriptor", "descriptor": {"contract_version": 1, "platform": "telegram", "label": "Telegram", "max_message_length": 4096, "supports_draft_streaming": true, "supports_edit": true, "supports_threads": true, "markdown_dialect": "markdown_v2", "len_unit": "utf16", "supported_ops": ["send", "edit", "typing", "draft", "react"]}}"#,
    ),
    (
        "inbound/buffered",
        r#"{"type": "inbound", "event": {"text": "what is 2+2", "message_type": "text", "message_id": "9001", "source": {"platform": "discord", "chat_id": "4455", "chat_type": "group", "chat_name": "general", "user_id": "77", "user_name": "alice", "scope_id": "1000", "message_id": "9001"}}, "bufferId": "b-17"}"#,
    ),
    (
        "inbound_ack",
        r#"{"type": "inbound_ack", "bufferId": "b-17"}"#,
    ),
    (
        "send",
        r#"{"type": "outbound", "requestId": "4f1c0d9e2b7a4c61a0e3d5f6b7c8d9e0", "action": {"op": "send", "chat_id": "4455", "content": "4.", "reply_to": "9001", "metadata": {"scope_id": "1000", "user_id": "77"}}, "platform": "discord", "botId": "1122334455"}"#,
    ),
    (
        "outbound_result/success",
        r#"{"type": "outbound_result", "requestId": "4f1c0d9e2b7a4c61a0e3d5f6b7c8d9e0", "result": {"success": true, "message_id": "9002"}}"#,
    ),
    (
        "outbound_result/egress_declined",
        r#"{"type": "outbound_result", "requestId": "0a9b8c7d6e5f40312233445566778899", "result": {"success": false, "code": "egress_declined", "error": "discord egress declined: target is not an approved destination for this connection"}}"#,
    ),
    (
        "interrupt/no-reason",
        r#"{"type": "interrupt", "session_key": "agent:main:discord:group:4455:77", "reason": null}"#,
    ),
    (
        "interrupt_inbound",
        r#"{"type": "interrupt_inbound", "session_key": "agent:main:discord:group:4455:77", "chat_id": "4455"}"#,
    ),
    ("going_idle", r#"{"type": "going_idle"}"#),
    ("going_idle_ack", r#"{"type": "going_idle_ack"}"#),
    (
        "passthrough_forward",
        r#"{"type": "passthrough_forward", "forward": {"platform": "discord", "botId": "1122334455", "method": "POST", "path": "/interactions/discord/1122334455", "headers": [["content-type", "application/json"]], "bodyB64": "eyJ0eXBlIjoyLCJpZCI6ImkxIiwiY2hhbm5lbF9pZCI6IjQ0NTUiLCJndWlsZF9pZCI6IjEwMDAiLCJkYXRhIjp7Im5hbWUiOiJuZXcifSwibWVtYmVyIjp7InVzZXIiOnsiaWQiOiI3NyIsInVzZXJuYW1lIjoiYWxpY2UifX19", "profile": "reviewer"}, "bufferId": "pb-3"}"#,
    ),
];

fn example(label: &str) -> Frame {
    common::all()
        .into_iter()
        .find(|(l, _)| *l == label)
        .unwrap_or_else(|| panic!("no example {label}"))
        .1
}

/// decode → encode → decode gives the same frame, and the canonical line is a fixed point.
fn stable(label: &str, line: &str) -> Frame {
    let first = decode(line.as_bytes()).unwrap_or_else(|e| panic!("{label}: {e}"));
    let canonical = encode(&first);
    let second = decode(&canonical).unwrap();
    assert_eq!(second, first, "{label}");
    assert_eq!(encode(&second), canonical, "{label}");
    first
}

#[test]
fn spec_lines_decode_to_the_examples() {
    for (label, line) in SPEC_LINES {
        assert_eq!(stable(label, line), example(label), "{label}");
    }
}

#[test]
fn reference_formatting_is_read_and_re_encoded_compactly() {
    // Python json.dumps: ", " and ": " separators, every non-ASCII character escaped,
    // astral characters as surrogate pairs.
    let line = r#"{"type": "inbound", "event": {"text": "caf\u00e9 \ud83d\ude80 \u00C9\/\"\\\n\t\u0000", "message_type": "text", "source": {"platform": "telegram", "chat_id": "9988", "chat_type": "dm", "user_name": "Zo\u00eb", "thread_id": null}}}"#;
    let frame = stable("escapes", line);
    let Frame::Inbound(inbound) = &frame else {
        panic!("{frame:?}")
    };
    assert_eq!(
        inbound.event.text,
        "caf\u{e9} \u{1F680} \u{c9}/\"\\\n\t\u{0}"
    );
    assert_eq!(inbound.event.source.user_name.as_deref(), Some("Zo\u{eb}"));
    assert_eq!(inbound.event.source.thread_id, None);

    // The canonical form is compact UTF-8: no spaces after separators, non-ASCII raw,
    // only what JSON requires escaped.
    let canonical = String::from_utf8(encode(&frame).to_vec()).unwrap();
    assert!(
        canonical.contains(r#""text":"café 🚀 É/\"\\\n\t\u0000""#),
        "{canonical}"
    );
    assert!(canonical.contains(r#""user_name":"Zoë""#), "{canonical}");
    assert!(!canonical.contains(", \""), "{canonical}");
    assert!(!canonical.contains("\": "), "{canonical}");

    // Whitespace everywhere JSON allows it, and a \r\n ending.
    let spaced =
        " {\t\"type\" :\t\"interrupt\" , \"session_key\" : \"k\" , \"reason\" : null }\r\n";
    let frame = stable("whitespace", spaced);
    assert_eq!(
        encode(&frame),
        Bytes::from_static(b"{\"type\":\"interrupt\",\"session_key\":\"k\",\"reason\":null}\n")
    );
}

#[test]
fn key_order_does_not_matter() {
    // The same send, type and op last, keys shuffled: decodes to the spec example.
    let shuffled = r#"{"botId": "1122334455", "platform": "discord", "action": {"metadata": {"user_id": "77", "scope_id": "1000"}, "reply_to": "9001", "content": "4.", "chat_id": "4455", "op": "send"}, "requestId": "4f1c0d9e2b7a4c61a0e3d5f6b7c8d9e0", "type": "outbound"}"#;
    assert_eq!(stable("shuffled send", shuffled), example("send"));
    let shuffled = r#"{"bufferId": "b-18", "event": {"source": {"message_is_edit": true, "one_to_one_verified": false, "is_bot": false, "prospective_thread_id": "5567", "auto_thread_initial_name": "what is 2+2", "auto_thread_created": true, "profile": "reviewer", "message_id": "9003", "parent_chat_id": "4455", "scope_id": "1000", "chat_id_alt": "c-77aa", "user_id_alt": "u-5f0c", "chat_topic": "maths help", "thread_id": "5566", "user_handle": "alice_01", "user_display_name": "Alice", "user_name": "alice", "user_id": "77", "chat_type": "thread", "chat_name": "what is 2+2", "chat_id": "5566", "platform": "discord"}, "prompt_response": {"prompt_message_id": "9000", "label": "Approve", "option_id": "approve", "prompt_id": "a1b2c3.0badf00d"}, "context_error": false, "context": [{"source": {"user_id": "78", "user_name": "bob"}, "text": "anyone around?"}, {"text": "the build is red again"}], "media": [{"caption": "my cat", "filename": "cat.png", "size": 48213, "mime": "image/png", "kind": "image", "url": "https://cdn.discordapp.com/attachments/4455/1/cat.png"}, {"mime": "audio/ogg", "kind": "voice", "url": "https://relay.example.com/relay/media/m-42"}], "media_urls": ["https://cdn.discordapp.com/attachments/4455/1/cat.png", "https://relay.example.com/relay/media/m-42"], "reply_to": {"is_own": true, "author": "Hermes", "text": "Run `make release`?"}, "reply_to_message_id": "9000", "message_id": "9003", "message_type": "command", "text": "/approve"}, "type": "inbound"}"#;
    assert_eq!(
        stable("shuffled rich inbound", shuffled),
        example("inbound/rich")
    );
}

#[test]
fn encode_into_appends_whole_lines() {
    let all = common::all();
    let mut out = b"already here\n".to_vec();
    for (_, frame) in &all {
        let before = out.len();
        encode_into(frame, &mut out);
        assert_eq!(&out[before..], &encode(frame)[..]);
    }
    assert!(out.starts_with(b"already here\n"));
    let mut decoder = FrameDecoder::new();
    decoder.push(&out);
    let first = decoder.next_frame().unwrap().unwrap_err();
    assert_eq!((first.line, first.offset), (1, 0));
    let decoded: Vec<Frame> = std::iter::from_fn(|| decoder.next_frame())
        .map(Result::unwrap)
        .collect();
    let expected: Vec<Frame> = all.into_iter().map(|(_, f)| f).collect();
    assert_eq!(decoded, expected);
}

#[test]
fn op_and_chat_accessors() {
    for (label, frame) in common::ops() {
        let Frame::Outbound(mut o) = frame else {
            panic!("{label}")
        };
        let encoded = serde_json::to_value(&o.action).unwrap();
        assert_eq!(encoded["op"], o.action.op(), "{label}");
        assert_eq!(
            o.action.chat_id(),
            encoded.get("chat_id").and_then(|v| v.as_str()),
            "{label}"
        );
        let has_metadata = encoded.get("metadata").is_some();
        assert_eq!(o.action.metadata_mut().is_some(), has_metadata, "{label}");
        if let Some(metadata) = o.action.metadata_mut() {
            metadata.insert("profile".to_owned(), "p".into());
            let encoded = serde_json::to_value(&o.action).unwrap();
            assert_eq!(encoded["metadata"]["profile"], "p", "{label}");
        }
        if matches!(o.action, OutboundAction::FollowUp(_)) {
            assert_eq!(o.action.chat_id(), None);
        }
    }
}

/// Found by the `roundtrip` fuzz target (fuzz/artifacts/roundtrip/crash-390f642b...):
/// without serde_json's `float_roundtrip`, the subnormal 1.11360891034533e-308 read back
/// as 1.1136089103453303e-308, so a float relayed verbatim in metadata changed in transit.
#[test]
fn floats_pass_through_exactly() {
    for x in [
        1.11360891034533e-308,
        5e-324,
        f64::MAX,
        0.1 + 0.2,
        -2.2250738585072014e-308,
    ] {
        let mut action = SendAction {
            chat_id: "4455".into(),
            content: "x".into(),
            ..Default::default()
        };
        action
            .metadata
            .insert("f".into(), serde_json::Value::from(x));
        let frame = Frame::from(relay_machine::wire::Outbound {
            request_id: "r1".into(),
            action: OutboundAction::Send(action),
            platform: None,
            bot_id: None,
        });
        roundtrip(&format!("float {x:e}"), &frame);
    }
}

/// The exported op list names exactly the typed variants: each decodes to a variant whose
/// `op()` is that name, never to `Unknown`.
#[test]
fn known_ops_are_the_typed_variants() {
    use relay_machine::wire::OutboundAction;
    for op in OutboundAction::KNOWN_OPS {
        let action: Result<OutboundAction, _> = serde_json::from_str(&format!(
            r#"{{"op":"{op}","chat_id":"c","session_key":"s","kind":"k","content":"x","message_id":"m","emoji":"e","thread_name":"t","media_kind":"image","source_url":"u","prompt_kind":"choice","prompt_id":"p","options":[],"draft_id":1,"final":false,"card_id":"c","chunks":[]}}"#
        ));
        let action = action.unwrap();
        assert!(!matches!(action, OutboundAction::Unknown(_)), "{op}");
        assert_eq!(action.op(), op);
    }
}

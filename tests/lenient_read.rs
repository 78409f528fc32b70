//! The lenient-read rules of protocol.md §2–§5: legacy keys, bufferId coercion, base64
//! bodies, egress declines, op gating, length units, descriptor and action defaults.
//! (Moved from `hostile.rs` unchanged.)
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::wildcard_enum_match_arm
)]

mod common;

use bytes::Bytes;
use relay_machine::codec::{DecodeError, DecodeErrorKind::InvalidFrame, FrameDecoder};
use relay_machine::wire::{
    ActionResult, Base64Error, BodyError, BufferId, CapabilityDescriptor, Frame, InboundAck,
    LEGACY_OPS, LenUnit, MessageType, OutboundAction, decode_base64, text_len,
};
use serde_json::json;

/// The line `{"type":frame_type, ...body}`, with `type` first as every known peer writes
/// it (the decoder's fast path; `json!` alone would sort `type` last).
fn typed(frame_type: &str, body: &serde_json::Value) -> String {
    let body = body.to_string();
    let rest = body.strip_prefix('{').expect("an object");
    if rest == "}" {
        format!(r#"{{"type":"{frame_type}"}}"#)
    } else {
        format!(r#"{{"type":"{frame_type}",{rest}"#)
    }
}

/// A descriptor frame line built from a valid telegram descriptor, patched.
fn descriptor_line(patch: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> String {
    let mut d = json!({
        "contract_version": 1, "platform": "telegram", "label": "Telegram",
        "max_message_length": 4096, "supports_draft_streaming": true, "supports_edit": true,
        "supports_threads": true, "markdown_dialect": "markdown_v2", "len_unit": "utf16"
    });
    patch(d.as_object_mut().unwrap());
    typed("descriptor", &json!({ "descriptor": d }))
}

/// Decodes one line that must be a frame.
fn frame(line: &str) -> Frame {
    let mut decoder = FrameDecoder::new();
    decoder.push(line.as_bytes());
    decoder.push(b"\n");
    let frame = decoder
        .next_frame()
        .expect("one item")
        .unwrap_or_else(|e| panic!("{line}: {e}"));
    assert_eq!(decoder.next_frame(), None);
    frame
}

/// Decodes one line that must be an error.
fn error(line: &str) -> DecodeError {
    let mut decoder = FrameDecoder::new();
    decoder.push(line.as_bytes());
    decoder.push(b"\n");
    match decoder.next_frame() {
        Some(Err(e)) => *e,
        other => panic!("{line}: expected an error, got {other:?}"),
    }
}

fn inbound(line: &str) -> relay_machine::wire::Inbound {
    match frame(line) {
        Frame::Inbound(i) => i,
        other => panic!("not inbound: {other:?}"),
    }
}

fn source_of(source: serde_json::Value) -> relay_machine::wire::SessionSource {
    inbound(&typed("inbound", &json!({ "event": { "source": source } })))
        .event
        .source
}

#[test]
fn legacy_guild_id_is_a_fallback_for_scope_id() {
    let s = source_of(json!({"platform": "discord", "guild_id": "1000"}));
    assert_eq!(s.scope_id.as_deref(), Some("1000"));
    let s = source_of(json!({"platform": "discord", "guild_id": "1000", "scope_id": "2000"}));
    assert_eq!(s.scope_id.as_deref(), Some("2000"), "scope_id wins");
    let s = source_of(json!({"scope_id": "2000", "guild_id": "1000"}));
    assert_eq!(
        s.scope_id.as_deref(),
        Some("2000"),
        "whatever the key order"
    );
    let s = source_of(json!({"scope_id": null, "guild_id": "1000"}));
    assert_eq!(
        s.scope_id.as_deref(),
        Some("1000"),
        "null scope_id falls back"
    );
    let s = source_of(json!({"platform": "discord"}));
    assert_eq!(s.scope_id, None);
    // Only scope_id is written back.
    let mut written = Vec::new();
    relay_machine::codec::encode_into(
        &relay_machine::wire::Inbound {
            event: Box::new(relay_machine::wire::MessageEvent {
                source: source_of(json!({"guild_id": "1000"})),
                ..Default::default()
            }),
            buffer_id: None,
        }
        .into(),
        &mut written,
    );
    let written = String::from_utf8(written).unwrap();
    assert!(written.contains(r#""scope_id":"1000""#), "{written}");
    assert!(!written.contains("guild_id"), "{written}");
}

#[test]
fn source_and_event_defaults() {
    let i = inbound(r#"{"type":"inbound","event":{}}"#);
    assert_eq!(i.buffer_id, None);
    let e = i.event;
    assert_eq!(e.text, "");
    assert_eq!(e.message_type, MessageType::Text);
    assert_eq!(e.source.platform, "relay");
    assert_eq!(e.source.chat_type, "dm");
    assert_eq!(e.source.chat_id, "");
    assert!(!e.source.auto_thread_created);
    assert_eq!(e.source.is_bot, None);
    let e = inbound(
        r#"{"type":"inbound","event":{"message_type":"image","message_id":"9","source":{}}}"#,
    )
    .event;
    assert_eq!(e.message_type, MessageType::Other("image".to_owned()));
    assert_eq!(e.source_message_id(), Some("9"), "V-C fallback");
    let e = common::rich_event();
    assert_eq!(e.source_message_id(), Some("9003"));
    assert_eq!(e.media_types(), vec!["image/png", "audio/ogg"]);
    assert_eq!(e.source.display_name(), Some("Alice"));
}

#[test]
fn buffer_id_coercion() {
    let b = |v: serde_json::Value| {
        inbound(&typed("inbound", &json!({"event": {}, "bufferId": v}))).buffer_id
    };
    assert_eq!(b(json!(7)), Some(BufferId::from("7")));
    assert_eq!(b(json!(-7)), Some(BufferId::from("-7")));
    assert_eq!(b(json!(0)), Some(BufferId::from("0")));
    assert_eq!(b(json!("b-1")), Some(BufferId::from("b-1")));
    assert_eq!(b(json!("")), None);
    assert_eq!(b(json!(null)), None);

    let f = frame(r#"{"type":"passthrough_forward","forward":{},"bufferId":12}"#);
    let Frame::PassthroughForward(p) = f else {
        panic!("{f:?}")
    };
    assert_eq!(p.buffer_id, Some(BufferId::from("12")));
    let f = frame(r#"{"type":"passthrough_forward","forward":{},"bufferId":""}"#);
    let Frame::PassthroughForward(p) = f else {
        panic!("{f:?}")
    };
    assert_eq!(p.buffer_id, None);

    assert_eq!(
        frame(r#"{"type":"inbound_ack","bufferId":7}"#),
        InboundAck {
            buffer_id: BufferId::from("7")
        }
        .into()
    );
    assert_eq!(
        error(r#"{"type":"inbound_ack","bufferId":null}"#).kind,
        InvalidFrame
    );
}

fn forward(body: &str) -> relay_machine::wire::PassthroughFrame {
    let line = typed(
        "passthrough_forward",
        &json!({
            "forward": {
                "platform": "discord", "botId": "1122334455", "method": "POST",
                "path": "/interactions/discord/1122334455",
                "headers": [["Content-Type", "application/json"], ["x-b", ""]],
                "bodyB64": body, "profile": "reviewer"
            },
            "bufferId": "pb-9"
        }),
    );
    match frame(&line) {
        Frame::PassthroughForward(p) => p,
        other => panic!("{other:?}"),
    }
}

#[test]
fn passthrough_bodies() {
    let good = forward("aGk=");
    assert_eq!(good.forward.body, Ok(Bytes::from_static(b"hi")));

    for (text, reason) in [
        (
            "aG k=",
            Base64Error::InvalidByte {
                offset: 2,
                byte: b' ',
            },
        ),
        ("aGk", Base64Error::InvalidPadding),
        (
            "-_8=",
            Base64Error::InvalidByte {
                offset: 0,
                byte: b'-',
            },
        ),
        (
            "aGk=\n",
            Base64Error::InvalidByte {
                offset: 4,
                byte: b'\n',
            },
        ),
        ("a", Base64Error::InvalidLength { len: 1 }),
        (
            "aGl=",
            Base64Error::InvalidLastSymbol {
                offset: 2,
                byte: b'l',
            },
        ),
    ] {
        let p = forward(text);
        assert_eq!(
            p.forward.body,
            Err(BodyError {
                reason,
                encoded: text.to_owned()
            }),
            "{text:?}"
        );
        assert_eq!(decode_base64(text), Err(reason), "{text:?}");
        // Every other field is still there.
        assert_eq!(p.buffer_id, Some(BufferId::from("pb-9")));
        assert_eq!(p.forward.platform, "discord");
        assert_eq!(p.forward.bot_id, "1122334455");
        assert_eq!(p.forward.method, "POST");
        assert_eq!(p.forward.path, "/interactions/discord/1122334455");
        assert_eq!(p.forward.header("content-type"), Some("application/json"));
        assert_eq!(p.forward.header("X-B"), Some(""));
        assert_eq!(p.forward.header("x-c"), None);
        assert_eq!(p.forward.profile.as_deref(), Some("reviewer"));
        // The raw text goes back out unchanged.
        let line = relay_machine::codec::encode(&Frame::PassthroughForward(p));
        let bodyb64 = serde_json::to_string(text).unwrap();
        let needle = format!("\"bodyB64\":{bodyb64}");
        assert!(
            std::str::from_utf8(&line).unwrap().contains(&needle),
            "{needle}"
        );
    }

    // Absent and empty bodies are empty, not errors.
    assert_eq!(forward("").forward.body, Ok(Bytes::new()));
    let f = frame(r#"{"type":"passthrough_forward","forward":{}}"#);
    let Frame::PassthroughForward(p) = f else {
        panic!("{f:?}")
    };
    assert_eq!(p.forward.body, Ok(Bytes::new()));
    assert_eq!(p.forward.platform, "");
    assert!(p.forward.headers.is_empty());
    assert_eq!(p.forward.profile, None);
    assert_eq!(p.buffer_id, None);

    // The example of protocol.md §2.12.
    assert_eq!(
        decode_base64(common::DISCORD_INTERACTION_B64).unwrap(),
        Bytes::from_static(common::DISCORD_INTERACTION.as_bytes())
    );
}

#[test]
fn egress_declines() {
    assert!(ActionResult::egress_declined("discord").is_egress_declined());
    assert!(ActionResult::failure("no", Some("egress_declined")).is_egress_declined());
    // Older connectors: the marker text alone, in any case.
    for text in [
        "discord egress declined: target is not an approved destination for this connection",
        "Slack EGRESS DECLINED: nope",
        "Egress Declined: x",
    ] {
        assert!(
            ActionResult::failure(text, None).is_egress_declined(),
            "{text}"
        );
    }
    // Not declines.
    for text in [
        "egress declined",
        "egress_declined: x",
        "ack lost",
        "relay outbound timed out",
    ] {
        assert!(
            !ActionResult::failure(text, None).is_egress_declined(),
            "{text}"
        );
    }
    assert!(!ActionResult::failure("x", Some("EGRESS_DECLINED")).is_egress_declined());
    assert!(!ActionResult::failure("x", Some("rate_limited")).is_egress_declined());
    // A success is never a decline, whatever it carries.
    let success = ActionResult {
        success: true,
        ..ActionResult::egress_declined("discord")
    };
    assert!(!success.is_egress_declined());
    assert!(!ActionResult::ok().is_egress_declined());

    // The same from the wire.
    let result = |r: serde_json::Value| match frame(&typed(
        "outbound_result",
        &json!({"requestId": "r1", "result": r}),
    )) {
        Frame::OutboundResult(o) => o.result,
        other => panic!("{other:?}"),
    };
    assert!(result(json!({"success": false, "code": "egress_declined"})).is_egress_declined());
    assert!(
        result(json!({"success": false, "error": "telegram Egress declined: no"}))
            .is_egress_declined()
    );
    assert!(
        !result(json!({"success": true, "code": "egress_declined", "error": "egress declined: x"}))
            .is_egress_declined()
    );
    // A missing success reads as a failure, as in the reference.
    let r = result(json!({"code": "egress_declined"}));
    assert!(!r.success);
    assert!(r.is_egress_declined());
    // Extras are kept.
    let r = result(json!({"success": true, "chat_info": {"name": "general", "type": "group"}}));
    assert_eq!(
        r.extra.get("chat_info"),
        Some(&json!({"name": "general", "type": "group"}))
    );
}

fn descriptor(
    patch: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> CapabilityDescriptor {
    match frame(&descriptor_line(patch)) {
        Frame::Descriptor(d) => *d.descriptor,
        other => panic!("{other:?}"),
    }
}

#[test]
fn supported_ops_and_the_legacy_fallback() {
    let legacy = descriptor(|_| {});
    assert!(legacy.supported_ops.is_empty());
    for op in ["send", "edit", "typing", "follow_up"] {
        assert!(legacy.supports_op(op), "{op}");
    }
    assert_eq!(LEGACY_OPS, ["send", "edit", "typing", "follow_up"]);
    for op in [
        "get_chat_info",
        "send_media",
        "prompt",
        "react",
        "thread_create",
        "thread_rename",
        "delete",
        "draft",
        "task_card",
        "task_card_stop",
        "",
        "SEND",
    ] {
        assert!(!legacy.supports_op(op), "{op}");
    }
    assert!(!legacy.supports_drafts());

    let explicit = descriptor(|d| {
        d.insert("supported_ops".into(), json!(["", "draft", "react", ""]));
    });
    assert_eq!(
        explicit.supported_ops,
        ["draft", "react"],
        "empty strings dropped"
    );
    assert!(explicit.supports_op("draft"));
    assert!(explicit.supports_op("react"));
    assert!(
        !explicit.supports_op("send"),
        "an explicit list replaces the legacy set"
    );
    assert!(explicit.supports_drafts(), "flag and op");

    let only_empty = descriptor(|d| {
        d.insert("supported_ops".into(), json!([""]));
    });
    assert!(only_empty.supported_ops.is_empty());
    assert!(
        only_empty.supports_op("send"),
        "all-empty list falls back to legacy"
    );

    let flag_only = descriptor(|d| {
        d.insert("supported_ops".into(), json!(["send"]));
    });
    assert!(flag_only.supports_draft_streaming);
    assert!(!flag_only.supports_drafts(), "flag without the op");
    let op_only = descriptor(|d| {
        d.insert("supports_draft_streaming".into(), json!(false));
        d.insert("supported_ops".into(), json!(["draft"]));
    });
    assert!(!op_only.supports_drafts(), "op without the flag");
}

#[test]
fn text_length_units() {
    for (text, chars, utf16) in [
        ("\u{1F600}", 1, 2),
        ("\u{e9}", 1, 1),
        ("e\u{301}", 2, 2),
        ("", 0, 0),
        ("a\u{1F468}\u{200D}\u{1F469}", 4, 6),
    ] {
        assert_eq!(text_len(text, LenUnit::Chars), chars, "{text:?}");
        assert_eq!(text_len(text, LenUnit::Utf16), utf16, "{text:?}");
        assert_eq!(text.encode_utf16().count(), utf16, "{text:?}");
    }
    let utf16 = descriptor(|_| {});
    assert_eq!(utf16.len_unit, LenUnit::Utf16);
    assert_eq!(utf16.text_len("\u{1F600}"), 2);
    let chars = descriptor(|d| {
        d.insert("len_unit".into(), json!("chars"));
    });
    assert_eq!(chars.text_len("\u{1F600}"), 1);
    // Any unknown unit counts code points, as the reference does.
    let unknown = descriptor(|d| {
        d.insert("len_unit".into(), json!("bytes"));
    });
    assert_eq!(unknown.len_unit, LenUnit::Chars);
    assert_eq!(unknown.text_len("\u{1F600}"), 1);

    let mut small = CapabilityDescriptor::new("x", "X");
    small.max_message_length = 2;
    small.len_unit = LenUnit::Utf16;
    assert!(small.fits("\u{1F600}"));
    assert!(!small.fits("a\u{1F600}"));
    small.len_unit = LenUnit::Chars;
    assert!(small.fits("a\u{1F600}"));
    assert!(!small.fits("abc"));
}

#[test]
fn non_positive_max_message_length_reads_as_4096() {
    for (wire, expected) in [
        (json!(0), 4096),
        (json!(-1), 4096),
        (json!(i64::MIN), 4096),
        (json!(1), 1),
        (json!(2000), 2000),
        (json!(i64::MAX), i64::MAX as u64),
        (json!(u64::MAX), u64::MAX),
    ] {
        let d = descriptor(|d| {
            d.insert("max_message_length".into(), wire.clone());
        });
        assert_eq!(d.max_message_length, expected, "{wire}");
        // The same with `type` last (the decoder's buffered path).
        let mut body = common::telegram_descriptor();
        body.max_message_length = 7;
        let mut body = serde_json::to_value(body).unwrap();
        body["max_message_length"] = wire.clone();
        let line = json!({"type": "descriptor", "descriptor": body}).to_string();
        let Frame::Descriptor(d) = frame(&line) else {
            panic!("{line}")
        };
        assert_eq!(d.descriptor.max_message_length, expected, "{wire}");
    }
}

#[test]
fn descriptor_defaults() {
    let d = descriptor(|_| {});
    assert_eq!(d.contract_version, 1);
    assert_eq!(d.platform, "telegram");
    assert_eq!(d.emoji, "\u{1F50C}");
    assert_eq!(d.platform_hint, "");
    assert!(!d.pii_safe);
    assert!(!d.supports_context);
    assert!(!d.supports_inchannel_continuable);
    assert!(!d.supports_block_formatting);
    assert!(d.supported_ops.is_empty());

    let new = CapabilityDescriptor::new("relay", "Relay");
    assert_eq!(new.contract_version, 1);
    assert_eq!(new.max_message_length, 4096);
    assert_eq!(new.len_unit, LenUnit::Chars);
    assert_eq!(new.markdown_dialect, "plain");
    assert_eq!(new.emoji, "\u{1F50C}");
    assert!(new.supported_ops.is_empty());
    assert!(new.supports_op("follow_up"));
}

#[test]
fn action_defaults() {
    let action = |a: serde_json::Value| match frame(&typed(
        "outbound",
        &json!({"requestId": "r1", "action": a}),
    )) {
        Frame::Outbound(o) => o.action,
        other => panic!("{other:?}"),
    };
    let OutboundAction::ThreadCreate(t) = action(json!({"op": "thread_create", "chat_id": "1"}))
    else {
        panic!()
    };
    assert_eq!(t.thread_name, "handoff");
    assert_eq!(t.message_id, None);
    let OutboundAction::Send(s) = action(json!({"op": "send", "chat_id": "1", "content": "x"}))
    else {
        panic!()
    };
    assert_eq!(s.reply_to, None);
    assert!(s.metadata.is_empty());
    let OutboundAction::React(r) =
        action(json!({"op": "react", "chat_id": "1", "message_id": "2", "emoji": "\u{1F44D}"}))
    else {
        panic!()
    };
    assert!(!r.remove);
    // The op need not come first.
    let a = action(json!({"chat_id": "1", "content": "x", "op": "send"}));
    assert_eq!(a.op(), "send");
    assert_eq!(a.chat_id(), Some("1"));
    // An unknown op keeps its fields.
    let a = action(json!({"op": "pin", "chat_id": "4455", "metadata": {"a": 1}}));
    assert_eq!(a.op(), "pin");
    assert_eq!(a.chat_id(), Some("4455"));
    let OutboundAction::Unknown(u) = a else {
        panic!()
    };
    assert_eq!(
        u.fields,
        common::obj(json!({"chat_id": "4455", "metadata": {"a": 1}}))
    );
    // An interrupt without reason has none.
    assert_eq!(
        frame(r#"{"type":"interrupt","session_key":"k"}"#),
        relay_machine::wire::Interrupt {
            session_key: "k".to_owned(),
            reason: None
        }
        .into()
    );
}

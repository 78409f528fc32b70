//! Realistic example values of every frame type and every op, shared by the test files.
//!
//! Where protocol.md §2 or §5.3 gives an example, the value here is that example (the
//! `spec_lines` test in `roundtrip.rs` checks they decode to exactly these values).

#![allow(dead_code)]

use bytes::Bytes;
use relay_machine::wire::{
    ActionResult, BufferId, CapabilityDescriptor, ContextAuthor, ContextItem, DeleteAction,
    Descriptor, DraftAction, EditAction, FollowUpAction, Frame, GetChatInfoAction, Identity,
    Inbound, InboundAck, Interrupt, InterruptInbound, LenUnit, MediaItem, MessageEvent,
    MessageType, Metadata, Outbound, OutboundAction, OutboundResult, PassthroughForward,
    PassthroughFrame, PromptAction, PromptOption, PromptResponse, ReactAction, ReplyTo, RequestId,
    SendAction, SendMediaAction, SessionSource, TaskCardAction, TaskCardStopAction,
    ThreadCreateAction, ThreadRenameAction, TypingAction, UnknownAction, UnknownFrame,
};
use serde_json::{Map, Value, json};

/// The JSON object `v` as a map (panics on anything else: test data only).
pub fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// The body of the protocol.md §2.12 example, decoded.
pub const DISCORD_INTERACTION: &str = r#"{"type":2,"id":"i1","channel_id":"4455","guild_id":"1000","data":{"name":"new"},"member":{"user":{"id":"77","username":"alice"}}}"#;

/// The `bodyB64` of the protocol.md §2.12 example.
pub const DISCORD_INTERACTION_B64: &str = "eyJ0eXBlIjoyLCJpZCI6ImkxIiwiY2hhbm5lbF9pZCI6IjQ0NTUiLCJndWlsZF9pZCI6IjEwMDAiLCJkYXRhIjp7Im5hbWUiOiJuZXcifSwibWVtYmVyIjp7InVzZXIiOnsiaWQiOiI3NyIsInVzZXJuYW1lIjoiYWxpY2UifX19";

/// The tenant metadata of a guild reply (protocol.md §2.7, §5.2).
pub fn guild_metadata() -> Metadata {
    obj(json!({"scope_id": "1000", "user_id": "77"})).into()
}

/// The telegram descriptor of protocol.md §2.4.
pub fn telegram_descriptor() -> CapabilityDescriptor {
    let mut d = CapabilityDescriptor::new("telegram", "Telegram");
    d.max_message_length = 4096;
    d.supports_draft_streaming = true;
    d.supports_edit = true;
    d.supports_threads = true;
    d.markdown_dialect = "markdown_v2".to_owned();
    d.len_unit = LenUnit::Utf16;
    d.supported_ops = ["send", "edit", "typing", "draft", "react"]
        .map(str::to_owned)
        .to_vec();
    d
}

/// A discord descriptor that sets every optional field.
pub fn discord_descriptor() -> CapabilityDescriptor {
    let mut d = CapabilityDescriptor::new("discord", "Discord");
    d.max_message_length = 2000;
    d.supports_edit = true;
    d.supports_threads = true;
    d.markdown_dialect = "discord".to_owned();
    d.len_unit = LenUnit::Utf16;
    d.emoji = "\u{1F3AE}".to_owned();
    d.platform_hint = "You are on Discord; keep replies short.".to_owned();
    d.pii_safe = true;
    d.supports_context = true;
    d.supports_inchannel_continuable = true;
    d.supports_block_formatting = true;
    d.supported_ops = [
        "send",
        "edit",
        "typing",
        "follow_up",
        "get_chat_info",
        "send_media",
        "prompt",
        "react",
        "thread_create",
        "thread_rename",
        "delete",
        "task_card",
    ]
    .map(str::to_owned)
    .to_vec();
    d
}

/// The source of the protocol.md §2.5 example.
pub fn guild_source() -> SessionSource {
    let mut s = SessionSource::new("discord", "group", "4455");
    s.chat_name = Some("general".into());
    s.user_id = Some("77".into());
    s.user_name = Some("alice".into());
    s.scope_id = Some("1000".into());
    s.message_id = Some("9001".into());
    s
}

/// A source that sets every field, including the V-D booleans.
pub fn full_source() -> SessionSource {
    SessionSource {
        platform: "discord".into(),
        chat_id: "5566".into(),
        chat_name: Some("what is 2+2".into()),
        chat_type: "thread".into(),
        user_id: Some("77".into()),
        user_name: Some("alice".into()),
        user_display_name: Some("Alice".into()),
        user_handle: Some("alice_01".into()),
        thread_id: Some("5566".into()),
        chat_topic: Some("maths help".into()),
        user_id_alt: Some("u-5f0c".into()),
        chat_id_alt: Some("c-77aa".into()),
        scope_id: Some("1000".into()),
        parent_chat_id: Some("4455".into()),
        message_id: Some("9003".into()),
        profile: Some("reviewer".into()),
        auto_thread_created: true,
        auto_thread_initial_name: Some("what is 2+2".into()),
        prospective_thread_id: Some("5567".into()),
        is_bot: Some(false),
        one_to_one_verified: Some(false),
        message_is_edit: Some(true),
    }
}

/// A prompt answer that sets every event field.
pub fn rich_event() -> MessageEvent {
    MessageEvent {
        text: "/approve".into(),
        message_type: MessageType::Command,
        message_id: Some("9003".into()),
        reply_to_message_id: Some("9000".into()),
        reply_to: Some(Box::new(ReplyTo {
            text: Some("Run `make release`?".to_owned()),
            author: Some("Hermes".to_owned()),
            is_own: Some(true),
        })),
        media_urls: vec![
            "https://cdn.discordapp.com/attachments/4455/1/cat.png".to_owned(),
            "https://relay.example.com/relay/media/m-42".to_owned(),
        ],
        media: vec![
            MediaItem {
                url: "https://cdn.discordapp.com/attachments/4455/1/cat.png".to_owned(),
                kind: Some("image".to_owned()),
                mime: Some("image/png".to_owned()),
                size: Some(48213),
                filename: Some("cat.png".to_owned()),
                caption: Some("my cat".to_owned()),
            },
            MediaItem {
                url: "https://relay.example.com/relay/media/m-42".to_owned(),
                kind: Some("voice".to_owned()),
                mime: Some("audio/ogg".to_owned()),
                size: None,
                filename: None,
                caption: None,
            },
        ],
        context: vec![
            ContextItem {
                text: "anyone around?".to_owned(),
                source: Some(ContextAuthor {
                    user_name: Some("bob".to_owned()),
                    user_id: Some("78".to_owned()),
                }),
            },
            ContextItem {
                text: "the build is red again".to_owned(),
                source: None,
            },
        ],
        context_error: Some(false),
        prompt_response: Some(Box::new(PromptResponse {
            prompt_id: "a1b2c3.0badf00d".to_owned(),
            option_id: "approve".to_owned(),
            label: Some("Approve".to_owned()),
            prompt_message_id: Some("9000".to_owned()),
        })),
        source: full_source(),
    }
}

/// An `outbound` frame for `action`, untagged (session default platform).
pub fn outbound(request_id: &str, action: impl Into<OutboundAction>) -> Frame {
    Frame::from(Outbound {
        request_id: RequestId::from(request_id),
        action: action.into(),
        platform: None,
        bot_id: None,
    })
}

/// An `outbound` frame for `action`, tagged with a platform and bot.
pub fn outbound_on(
    request_id: &str,
    platform: &str,
    bot_id: Option<&str>,
    action: impl Into<OutboundAction>,
) -> Frame {
    Frame::from(Outbound {
        request_id: RequestId::from(request_id),
        action: action.into(),
        platform: Some(platform.into()),
        bot_id: bot_id.map(relay_machine::wire::Str::from),
    })
}

/// One example of every frame type except `outbound` (see [`ops`]), labelled.
pub fn frames() -> Vec<(&'static str, Frame)> {
    vec![
        (
            "hello/telegram",
            Identity {
                platform: "telegram".to_owned(),
                bot_id: "7012345678".to_owned(),
                command_manifest: None,
            }
            .into(),
        ),
        (
            "hello/discord+manifest",
            Identity {
                platform: "discord".to_owned(),
                bot_id: "1122334455".to_owned(),
                command_manifest: Some(vec![
                    obj(json!({"name": "ping", "description": "Check liveness"})),
                    obj(json!({"name": "topic", "description": "Set topic", "options": [
                        {"type": 3, "name": "text", "description": "New topic", "required": false}
                    ]})),
                ]),
            }
            .into(),
        ),
        (
            "hello/relay-no-bot",
            Identity {
                platform: "relay".to_owned(),
                bot_id: String::new(),
                command_manifest: None,
            }
            .into(),
        ),
        (
            "descriptor/telegram",
            Descriptor {
                descriptor: Box::new(telegram_descriptor()),
            }
            .into(),
        ),
        (
            "descriptor/discord-all-fields",
            Descriptor {
                descriptor: Box::new(discord_descriptor()),
            }
            .into(),
        ),
        (
            "inbound/buffered",
            Inbound {
                event: Box::new(MessageEvent {
                    text: "what is 2+2".into(),
                    message_type: MessageType::Text,
                    message_id: Some("9001".into()),
                    source: guild_source(),
                    ..MessageEvent::default()
                }),
                buffer_id: Some(BufferId::from("b-17")),
            }
            .into(),
        ),
        (
            "inbound/rich",
            Inbound {
                event: Box::new(rich_event()),
                buffer_id: Some(BufferId::from("b-18")),
            }
            .into(),
        ),
        (
            "inbound/live-dm",
            Inbound {
                event: Box::new(MessageEvent {
                    text: "caf\u{e9} \u{1F680}\nsecond line \"quoted\" \\ tab\t".into(),
                    message_id: Some("311".into()),
                    source: SessionSource {
                        user_id: Some("9988".into()),
                        user_name: Some("Zo\u{eb}".into()),
                        ..SessionSource::new("telegram", "dm", "9988")
                    },
                    ..MessageEvent::default()
                }),
                buffer_id: None,
            }
            .into(),
        ),
        (
            "inbound_ack",
            InboundAck {
                buffer_id: BufferId::from("b-17"),
            }
            .into(),
        ),
        (
            "outbound_result/success",
            OutboundResult {
                request_id: RequestId::from("4f1c0d9e2b7a4c61a0e3d5f6b7c8d9e0"),
                result: Box::new(ActionResult::ok_with_message("9002")),
            }
            .into(),
        ),
        (
            "outbound_result/egress_declined",
            OutboundResult {
                request_id: RequestId::from("0a9b8c7d6e5f40312233445566778899"),
                result: Box::new(ActionResult::egress_declined("discord")),
            }
            .into(),
        ),
        (
            "outbound_result/auto-thread",
            OutboundResult {
                request_id: RequestId::from("5d6e7f8091a2b3c4d5e6f708192a3b4c"),
                result: Box::new(ActionResult {
                    thread_id: Some("5566".to_owned()),
                    auto_thread_name: Some("what is 2+2".to_owned()),
                    ..ActionResult::ok_with_message("9004")
                }),
            }
            .into(),
        ),
        (
            "outbound_result/chat_info",
            OutboundResult {
                request_id: RequestId::from("6a7b8c9d0e1f20314253647586970a1b"),
                result: Box::new(ActionResult {
                    extra: obj(json!({"chat_info": {"name": "general", "type": "group"}})),
                    ..ActionResult::ok()
                }),
            }
            .into(),
        ),
        (
            "interrupt/no-reason",
            Interrupt {
                session_key: "agent:main:discord:group:4455:77".to_owned(),
                reason: None,
            }
            .into(),
        ),
        (
            "interrupt/reason",
            Interrupt {
                session_key: "agent:main:telegram:dm:9988".to_owned(),
                reason: Some("user pressed stop".to_owned()),
            }
            .into(),
        ),
        (
            "interrupt_inbound",
            InterruptInbound {
                session_key: "agent:main:discord:group:4455:77".to_owned(),
                chat_id: "4455".to_owned(),
            }
            .into(),
        ),
        ("going_idle", Frame::GoingIdle),
        ("going_idle_ack", Frame::GoingIdleAck),
        (
            "passthrough_forward",
            PassthroughFrame {
                forward: Box::new(PassthroughForward {
                    platform: "discord".into(),
                    bot_id: "1122334455".into(),
                    method: "POST".into(),
                    path: "/interactions/discord/1122334455".into(),
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: Ok(Bytes::from_static(DISCORD_INTERACTION.as_bytes())),
                    profile: Some("reviewer".into()),
                }),
                buffer_id: Some(BufferId::from("pb-3")),
            }
            .into(),
        ),
        (
            "passthrough_forward/live-binary",
            PassthroughFrame {
                forward: Box::new(PassthroughForward {
                    bot_id: "1122334455".into(),
                    method: "POST".into(),
                    path: "/webhooks/twilio".into(),
                    headers: vec![
                        (
                            "content-type".into(),
                            "application/octet-stream".into(),
                        ),
                        ("x-trace".into(), "a".into()),
                        ("X-Trace".into(), "b".into()),
                    ],
                    ..PassthroughForward::new("twilio", Bytes::from_static(&[0, 0xff, 0xfe, 1]))
                }),
                buffer_id: None,
            }
            .into(),
        ),
        (
            "unknown/presence",
            Frame::Unknown(UnknownFrame {
                frame_type: "presence".to_owned(),
                fields: obj(json!({"status": "online", "since": 1_700_000_000, "tags": ["a", null]})),
            }),
        ),
    ]
}

/// One `outbound` frame per op (all 14, some twice) and one with an unknown op, labelled.
pub fn ops() -> Vec<(&'static str, Frame)> {
    vec![
        (
            "send",
            outbound_on(
                "4f1c0d9e2b7a4c61a0e3d5f6b7c8d9e0",
                "discord",
                Some("1122334455"),
                SendAction {
                    chat_id: "4455".into(),
                    content: "4.".into(),
                    reply_to: Some("9001".into()),
                    metadata: guild_metadata(),
                },
            ),
        ),
        (
            "send/no-reply",
            outbound(
                "1b2c3d4e5f60718293a4b5c6d7e8f901",
                SendAction {
                    chat_id: "9988".into(),
                    content: "Good morning \u{2600}\u{fe0f}".into(),
                    reply_to: None,
                    metadata: obj(json!({"user_id": "9988"})).into(),
                },
            ),
        ),
        (
            "edit",
            outbound_on(
                "2c3d4e5f60718293a4b5c6d7e8f9012a",
                "discord",
                Some("1122334455"),
                EditAction {
                    chat_id: "4455".into(),
                    message_id: "9002".into(),
                    content: "4. (2 + 2 = 4)".into(),
                    metadata: guild_metadata(),
                },
            ),
        ),
        (
            "typing/indicator",
            outbound(
                "3d4e5f60718293a4b5c6d7e8f9012a3b",
                TypingAction {
                    chat_id: "4455".into(),
                    content: None,
                    metadata: guild_metadata(),
                },
            ),
        ),
        (
            "typing/slack-clear",
            outbound_on(
                "4e5f60718293a4b5c6d7e8f9012a3b4c",
                "slack",
                None,
                TypingAction {
                    chat_id: "C024BE91L".into(),
                    content: Some(String::new().into()),
                    metadata: obj(json!({"thread_id": "1700000000.000100", "scope_id": "T0001"}))
                        .into(),
                },
            ),
        ),
        (
            "follow_up",
            outbound_on(
                "5f60718293a4b5c6d7e8f9012a3b4c5d",
                "discord",
                Some("1122334455"),
                FollowUpAction {
                    session_key: "agent:main:discord:group:4455:77".into(),
                    kind: "discord.interaction_token".into(),
                    content: "Topic set.".into(),
                    metadata: guild_metadata(),
                },
            ),
        ),
        (
            "get_chat_info",
            outbound(
                "60718293a4b5c6d7e8f9012a3b4c5d6e",
                GetChatInfoAction {
                    chat_id: "4455".into(),
                },
            ),
        ),
        (
            "send_media",
            outbound(
                "718293a4b5c6d7e8f9012a3b4c5d6e7f",
                SendMediaAction {
                    chat_id: "4455".into(),
                    media_kind: "image".into(),
                    source_url: "https://relay.example.com/relay/media/m-43".into(),
                    content: String::new().into(),
                    reply_to: None,
                    metadata: guild_metadata(),
                    filename: Some("chart.png".into()),
                },
            ),
        ),
        (
            "prompt",
            outbound(
                "8293a4b5c6d7e8f9012a3b4c5d6e7f80",
                PromptAction {
                    chat_id: "4455".into(),
                    content: "Run `make release`?".into(),
                    prompt_kind: "approval".into(),
                    prompt_id: "a1b2c3.0badf00d".into(),
                    options: vec![
                        PromptOption {
                            id: "approve".into(),
                            label: "Approve".into(),
                            style: Some("success".into()),
                        },
                        PromptOption {
                            id: "deny".into(),
                            label: "Deny".into(),
                            style: Some("danger".into()),
                        },
                        PromptOption {
                            id: "later".into(),
                            label: "Ask me later".into(),
                            style: None,
                        },
                    ],
                    reply_to: Some("9001".into()),
                    metadata: guild_metadata(),
                    timeout_s: Some(3600),
                },
            ),
        ),
        (
            "react",
            outbound(
                "93a4b5c6d7e8f9012a3b4c5d6e7f8091",
                ReactAction {
                    chat_id: "4455".into(),
                    message_id: "9001".into(),
                    emoji: "\u{1F440}".into(),
                    remove: false,
                    metadata: guild_metadata(),
                },
            ),
        ),
        (
            "thread_create",
            outbound(
                "a4b5c6d7e8f9012a3b4c5d6e7f8091a2",
                ThreadCreateAction {
                    chat_id: "4455".into(),
                    thread_name: "handoff".into(),
                    message_id: Some("9001".into()),
                    metadata: guild_metadata(),
                },
            ),
        ),
        (
            "thread_rename",
            outbound(
                "b5c6d7e8f9012a3b4c5d6e7f8091a2b3",
                ThreadRenameAction {
                    chat_id: "4455".into(),
                    message_id: "5566".into(),
                    thread_name: "Arithmetic".into(),
                    metadata: guild_metadata(),
                    only_if_connector_created: Some(true),
                    only_if_current_name: None,
                },
            ),
        ),
        (
            "delete",
            outbound(
                "c6d7e8f9012a3b4c5d6e7f8091a2b3c4",
                DeleteAction {
                    chat_id: "4455".into(),
                    message_id: "9002".into(),
                    metadata: guild_metadata(),
                },
            ),
        ),
        (
            "draft/final",
            outbound_on(
                "d7e8f9012a3b4c5d6e7f8091a2b3c4d5",
                "telegram",
                Some("7012345678"),
                DraftAction {
                    chat_id: "9988".into(),
                    draft_id: 3,
                    content: "4.".into(),
                    is_final: true,
                    metadata: obj(json!({"user_id": "9988"})).into(),
                },
            ),
        ),
        (
            "task_card",
            outbound(
                "e8f9012a3b4c5d6e7f8091a2b3c4d5e6",
                TaskCardAction {
                    chat_id: "4455".into(),
                    card_id: "turn:9001".into(),
                    chunks: vec![
                        json!({"id": "t1", "title": "Read the failing test", "status": "done"}),
                        json!({"id": "t2", "title": "Fix the parser", "status": "in_progress"}),
                    ],
                    metadata: guild_metadata(),
                },
            ),
        ),
        (
            "task_card_stop",
            outbound(
                "f9012a3b4c5d6e7f8091a2b3c4d5e6f7",
                TaskCardStopAction {
                    chat_id: "4455".into(),
                    card_id: "turn:9001".into(),
                    metadata: guild_metadata(),
                },
            ),
        ),
        (
            "unknown-op/pin",
            outbound(
                "012a3b4c5d6e7f8091a2b3c4d5e6f708",
                OutboundAction::Unknown(UnknownAction {
                    op: "pin".to_owned(),
                    fields: obj(json!({
                        "chat_id": "4455",
                        "message_id": "9002",
                        "metadata": {"scope_id": "1000"}
                    })),
                }),
            ),
        ),
    ]
}

/// Every example of [`frames`] and [`ops`].
pub fn all() -> Vec<(&'static str, Frame)> {
    let mut all = frames();
    all.extend(ops());
    all
}

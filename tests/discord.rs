//! Discord interaction → event conversion (protocol.md §10), alone and with the session key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use relay_machine::codec::FrameDecoder;
use relay_machine::discord::{InteractionError, decode_prompt_token, interaction_event};
use relay_machine::session_key::{ProfileMode, SessionKeyOptions, session_key};
use relay_machine::wire::{
    Base64Error, BodyError, Frame, MessageEvent, MessageType, PassthroughForward, PromptResponse,
    decode_base64,
};
use serde_json::{Value, json};

fn forward(body: &Value) -> PassthroughForward {
    PassthroughForward::new("discord", body.to_string())
}

fn convert(body: Value) -> MessageEvent {
    interaction_event(&forward(&body)).unwrap()
}

/// An application command named `name` with `options`, in a guild channel.
fn command(name: Value, options: Value) -> MessageEvent {
    convert(json!({
        "type": 2, "id": "i1", "channel_id": "4455", "guild_id": "1000",
        "data": {"name": name, "options": options},
        "member": {"user": {"id": "77", "username": "alice"}},
    }))
}

fn text_of(name: &str, options: Value) -> (String, MessageType) {
    let event = command(json!(name), options);
    (event.text.to_string(), event.message_type)
}

fn component(custom_id: &str) -> MessageEvent {
    convert(json!({
        "type": 3, "id": "i2", "channel_id": "4455", "guild_id": "1000",
        "data": {"custom_id": custom_id, "component_type": 2},
        "message": {"id": "m-prompt"},
        "member": {"user": {"id": "77", "username": "alice"}},
    }))
}

const MULTIPLEX: SessionKeyOptions = SessionKeyOptions {
    group_sessions_per_user: true,
    thread_sessions_per_user: false,
    profile: ProfileMode::Multiplex { pinned: None },
};

/// The `passthrough_forward` frame of protocol.md §2.12, decoded from its line.
#[test]
fn the_example_frame_of_section_2_12_is_a_new_command_keyed_under_its_profile() {
    let line = r#"{"type": "passthrough_forward", "forward": {"platform": "discord", "botId": "1122334455", "method": "POST", "path": "/interactions/discord/1122334455", "headers": [["content-type", "application/json"]], "bodyB64": "eyJ0eXBlIjoyLCJpZCI6ImkxIiwiY2hhbm5lbF9pZCI6IjQ0NTUiLCJndWlsZF9pZCI6IjEwMDAiLCJkYXRhIjp7Im5hbWUiOiJuZXcifSwibWVtYmVyIjp7InVzZXIiOnsiaWQiOiI3NyIsInVzZXJuYW1lIjoiYWxpY2UifX19", "profile": "reviewer"}, "bufferId": "pb-3"}"#;
    let mut decoder = FrameDecoder::new();
    decoder.push(line.as_bytes());
    decoder.push(b"\n");
    let Some(Ok(Frame::PassthroughForward(frame))) = decoder.next_frame() else {
        panic!("not a passthrough_forward");
    };
    let event = interaction_event(&frame.forward).unwrap();
    assert_eq!(event.text, "/new");
    assert_eq!(event.message_type, MessageType::Command);
    assert_eq!(event.message_id, None);
    assert_eq!(event.prompt_response, None);
    let source = &event.source;
    assert_eq!(source.platform, "discord");
    assert_eq!(source.chat_id, "4455");
    assert_eq!(source.chat_type, "group");
    assert_eq!(source.scope_id.as_deref(), Some("1000"));
    assert_eq!(source.user_id.as_deref(), Some("77"));
    assert_eq!(source.user_name.as_deref(), Some("alice"));
    assert_eq!(source.message_id.as_deref(), Some("i1"));
    assert_eq!(source.thread_id, None);
    assert_eq!(source.profile.as_deref(), Some("reviewer"));
    // A multiplexing gateway keys it in the forward's profile; a single-profile one ignores it.
    assert_eq!(
        session_key(source, &MULTIPLEX),
        "agent:reviewer:discord:group:4455:77"
    );
    assert_eq!(
        session_key(source, &SessionKeyOptions::default()),
        "agent:main:discord:group:4455:77"
    );
}

/// The three keys at the end of protocol.md §10.2, from interaction bodies.
#[test]
fn guild_thread_and_dm_interactions_give_the_keys_of_section_10_2() {
    let options = SessionKeyOptions::default();
    let guild = command(json!("new"), json!(null));
    assert_eq!(
        session_key(&guild.source, &options),
        "agent:main:discord:group:4455:77"
    );
    let thread = convert(json!({
        "type": 2, "id": "i3", "channel_id": "8888", "guild_id": "1000",
        "channel": {"id": "8888", "type": 11, "parent_id": "4455"},
        "data": {"name": "new"},
        "member": {"user": {"id": "77", "username": "alice"}},
    }));
    assert_eq!(
        session_key(&thread.source, &options),
        "agent:main:discord:thread:8888:8888"
    );
    let dm = convert(json!({
        "type": 2, "id": "i4", "channel_id": "5151",
        "data": {"name": "new"},
        "user": {"id": "77", "username": "alice"},
    }));
    assert_eq!(
        session_key(&dm.source, &options),
        "agent:main:discord:dm:5151"
    );
}

#[test]
fn application_command_option_rendering() {
    let command_text = |text: &str| (text.to_owned(), MessageType::Command);
    // The three cases pinned by the reference's tests.
    assert_eq!(text_of("new", json!(null)), command_text("/new"));
    assert_eq!(
        text_of(
            "model",
            json!([{"type": 3, "name": "name", "value": "gpt-x"}])
        ),
        command_text("/model gpt-x")
    );
    assert_eq!(
        text_of(
            "skill",
            json!([{"type": 1, "name": "run", "options": [
                {"type": 3, "name": "target", "value": "deploy"}
            ]}])
        ),
        command_text("/skill run deploy")
    );
    // A sub-command group, then a sub-command, then values of several types.
    assert_eq!(
        text_of(
            "admin",
            json!([{"type": 2, "name": "users", "options": [
                {"type": 1, "name": " ban ", "options": [
                    {"type": 6, "name": "user", "value": "42"},
                    {"type": 4, "name": "days", "value": 7},
                    {"type": 10, "name": "ratio", "value": 0.5},
                    {"type": 5, "name": "silent", "value": true},
                ]}
            ]}])
        ),
        command_text("/admin users ban 42 7 0.5 True")
    );
    // Null, missing and blank values are skipped; values are trimmed; zero and false are
    // values, not absences.
    assert_eq!(
        text_of(
            "set",
            json!([
                {"type": 3, "name": "a", "value": null},
                {"type": 3, "name": "b"},
                {"type": 3, "name": "c", "value": "   "},
                {"type": 3, "name": "d", "value": "  x  "},
                {"type": 4, "name": "e", "value": 0},
                {"type": 5, "name": "f", "value": false},
            ])
        ),
        command_text("/set x 0 False")
    );
    // Non-object options are skipped; options that are not a list are ignored.
    assert_eq!(
        text_of("go", json!(["loose", 3, null, {"type": 3, "value": "on"}])),
        command_text("/go on")
    );
    assert_eq!(
        text_of("go", json!({"type": 3, "value": "on"})),
        command_text("/go")
    );
    // A sub-command without a name contributes only its options.
    assert_eq!(
        text_of(
            "go",
            json!([{"type": 1, "name": "", "options": [{"type": 3, "value": "v"}]}])
        ),
        command_text("/go v")
    );
    // Trailing slashes of the name are stripped as in the reference.
    assert_eq!(text_of("go/", json!(null)), command_text("/go"));
}

#[test]
fn an_empty_command_name_is_no_command() {
    let options = json!([{"type": 3, "name": "x", "value": "y"}]);
    for name in [json!(""), json!(null), json!("/")] {
        let event = command(name.clone(), options.clone());
        assert_eq!(event.text, "", "name {name}");
        assert_eq!(event.message_type, MessageType::Text, "name {name}");
    }
    let nameless = convert(json!({"type": 2, "channel_id": "1"}));
    assert_eq!(
        (nameless.text.as_str(), nameless.message_type),
        ("", MessageType::Text)
    );
}

#[test]
fn a_component_press_is_its_custom_id_as_text() {
    let event = component("approve_button");
    assert_eq!(event.text, "approve_button");
    assert_eq!(event.message_type, MessageType::Text);
    assert_eq!(event.prompt_response, None);
    let missing = convert(json!({"type": 3, "channel_id": "1", "data": {}}));
    assert_eq!(missing.text, "");
    assert_eq!(missing.message_type, MessageType::Text);
}

#[test]
fn a_prompt_answer_becomes_a_command_with_a_prompt_response() {
    let event = component("hp1:a1b2c3.0f:yes");
    assert_eq!(event.text, "/yes");
    assert_eq!(event.message_type, MessageType::Command);
    assert_eq!(
        event.prompt_response,
        Some(Box::new(PromptResponse {
            prompt_id: "a1b2c3.0f".into(),
            option_id: "yes".into(),
            label: None,
            prompt_message_id: Some("m-prompt".into()),
        }))
    );
    // The clicking user is the author.
    assert_eq!(event.source.user_id.as_deref(), Some("77"));
    // Without the prompt's message, prompt_message_id is null.
    let bare = convert(json!({
        "type": 3, "channel_id": "1", "data": {"custom_id": "hp1:p:o"},
        "user": {"id": "5"},
    }));
    assert_eq!(bare.text, "/o");
    assert_eq!(bare.prompt_response.and_then(|p| p.prompt_message_id), None);
    // Ids may use the whole alphabet and be 32 characters long.
    let long = "A".repeat(32);
    let edge = component(&format!("hp1:{long}:a_b.c-9"));
    assert_eq!(edge.text, "/a_b.c-9");
    assert_eq!(edge.prompt_response.unwrap().prompt_id, long);
}

#[test]
fn malformed_prompt_tokens_stay_plain_component_text() {
    let too_long = format!("hp1:{}:yes", "a".repeat(33));
    for custom_id in [
        "hp1:p:o:extra",       // four parts
        "hp1:p",               // two parts
        too_long.as_str(),     // 33-character id
        "hp1:p:o/k",           // a character outside the alphabet
        "hp1:p q:o",           // a space
        "hp1::o",              // an empty id
        "hp1:p:",              // an empty option
        "hp2:p:o",             // another version
        "HP1:p:o",             // the prefix is case-sensitive
        "hp1:p:yes\n",         // the reference's regex would accept this trailing newline
        "hp1:p:\u{e9}t\u{e9}", // non-ASCII
    ] {
        let event = component(custom_id);
        assert_eq!(event.text, custom_id);
        assert_eq!(event.message_type, MessageType::Text, "{custom_id:?}");
        assert_eq!(event.prompt_response, None, "{custom_id:?}");
        assert_eq!(decode_prompt_token(custom_id), None, "{custom_id:?}");
    }
    assert_eq!(decode_prompt_token("hp1:p:o"), Some(("p", "o")));
}

#[test]
fn pings_modals_and_other_types_are_empty_text_not_commands() {
    for kind in [
        json!(1),
        json!(4),
        json!(5),
        json!(99),
        json!(null),
        json!("2"),
    ] {
        let event = convert(json!({
            "type": kind, "channel_id": "1",
            "data": {"name": "new", "custom_id": "hp1:p:o", "components": []},
        }));
        assert_eq!(event.text, "", "type {kind}");
        assert_eq!(event.message_type, MessageType::Text, "type {kind}");
        assert_eq!(event.prompt_response, None, "type {kind}");
    }
    // 2.0 is 2, as in the reference.
    let float_type = convert(json!({"type": 2.0, "data": {"name": "new"}}));
    assert_eq!(float_type.text, "/new");
}

#[test]
fn display_name_precedence_is_nick_then_global_name_then_username() {
    let name = |member: Value, user: Value| {
        convert(json!({"type": 2, "guild_id": "1", "member": member, "user": user}))
            .source
            .user_name
    };
    let full = json!({"id": "7", "username": "alice", "global_name": "Alice A."});
    assert_eq!(
        name(json!({"nick": "Al", "user": full}), json!(null)).as_deref(),
        Some("Al")
    );
    assert_eq!(
        name(json!({"nick": "", "user": full}), json!(null)).as_deref(),
        Some("Alice A.")
    );
    assert_eq!(
        name(
            json!({"nick": null, "user": {"id": "7", "username": "alice", "global_name": ""}}),
            json!(null)
        )
        .as_deref(),
        Some("alice")
    );
    assert_eq!(name(json!({"user": {"id": "7"}}), json!(null)), None);
    // In a DM there is no member: the top-level user names the author.
    assert_eq!(name(json!(null), full.clone()).as_deref(), Some("Alice A."));
    // A nick counts even when the user comes from the top level.
    assert_eq!(name(json!({"nick": "Al"}), full).as_deref(), Some("Al"));
}

#[test]
fn the_author_is_the_member_user_else_the_top_level_user() {
    let author = |body: Value| {
        let source = convert(body).source;
        (source.user_id, source.user_name)
    };
    let both = json!({
        "type": 2, "guild_id": "1",
        "member": {"user": {"id": "m1", "username": "member"}},
        "user": {"id": "u1", "username": "user"},
    });
    assert_eq!(author(both), (Some("m1".into()), Some("member".into())));
    let memberless = json!({"type": 2, "user": {"id": "u1", "username": "user"}});
    assert_eq!(author(memberless), (Some("u1".into()), Some("user".into())));
    let userless_member = json!({"type": 2, "member": {"nick": "n"}, "user": {"id": "u1"}});
    assert_eq!(
        author(userless_member),
        (Some("u1".into()), Some("n".into()))
    );
    // Odd shapes read as absent, never as a crash.
    for body in [
        json!({"type": 2, "member": "x", "user": 5}),
        json!({"type": 2, "member": {"user": "x"}, "user": {"id": "u1"}}),
        json!({"type": 2, "member": [], "user": {"id": ""}}),
    ] {
        assert_eq!(author(body), (None, None));
    }
}

#[test]
fn guild_channel_thread_and_dm_detection() {
    let source = |guild: Value, channel: Value| {
        convert(json!({
            "type": 2, "id": "i9", "channel_id": "8888", "guild_id": guild,
            "channel": channel, "data": {"name": "new"},
            "member": {"user": {"id": "77"}},
        }))
        .source
    };
    for thread_type in [10, 11, 12] {
        let s = source(
            json!("1000"),
            json!({"id": "8888", "type": thread_type, "parent_id": "4455"}),
        );
        assert_eq!(s.chat_type, "thread", "channel type {thread_type}");
        assert_eq!(s.chat_id, "8888");
        assert_eq!(s.thread_id.as_deref(), Some("8888"));
        assert_eq!(s.parent_chat_id.as_deref(), Some("4455"));
        assert_eq!(s.scope_id.as_deref(), Some("1000"));
    }
    // A text channel (0), a voice channel (2), a forum (15): a guild channel.
    for channel_type in [0, 2, 15] {
        let s = source(
            json!("1000"),
            json!({"type": channel_type, "parent_id": "4455"}),
        );
        assert_eq!(s.chat_type, "group", "channel type {channel_type}");
        assert_eq!(s.thread_id, None);
        assert_eq!(s.parent_chat_id, None);
    }
    // No channel object: a guild channel. A thread without a parent: no parent.
    assert_eq!(source(json!("1000"), json!(null)).chat_type, "group");
    let orphan = source(json!("1000"), json!({"type": 11}));
    assert_eq!(orphan.chat_type, "thread");
    assert_eq!(orphan.parent_chat_id, None);
    // Without a guild there are no threads: a DM.
    for guild in [json!(null), json!("")] {
        let s = source(guild, json!({"type": 11, "parent_id": "4455"}));
        assert_eq!(s.chat_type, "dm");
        assert_eq!(s.scope_id, None);
        assert_eq!(s.thread_id, None);
    }
}

#[test]
fn integer_snowflakes_are_tolerated() {
    let event = convert(json!({
        "type": 3, "id": 9001, "channel_id": 4455, "guild_id": 1000,
        "channel": {"type": 11, "parent_id": 12},
        "data": {"custom_id": "hp1:p:o"},
        "message": {"id": 31},
        "member": {"user": {"id": 77, "username": "alice"}},
    }));
    let source = &event.source;
    assert_eq!(source.chat_id, "4455");
    assert_eq!(source.scope_id.as_deref(), Some("1000"));
    assert_eq!(source.parent_chat_id.as_deref(), Some("12"));
    assert_eq!(source.user_id.as_deref(), Some("77"));
    assert_eq!(source.message_id.as_deref(), Some("9001"));
    assert_eq!(
        event.prompt_response.unwrap().prompt_message_id.as_deref(),
        Some("31")
    );
}

#[test]
fn the_interaction_id_is_the_source_message_id_only() {
    let event = command(json!("new"), json!(null));
    assert_eq!(event.source.message_id.as_deref(), Some("i1"));
    assert_eq!(event.message_id, None);
    let idless = convert(json!({"type": 2, "data": {"name": "new"}}));
    assert_eq!(idless.source.message_id, None);
    assert_eq!(idless.source.chat_id, "");
    assert_eq!(idless.source.chat_type, "dm");
}

#[test]
fn the_forward_profile_is_carried_to_the_source() {
    let body =
        json!({"type": 2, "channel_id": "5151", "data": {"name": "new"}, "user": {"id": "7"}});
    let mut with_profile = forward(&body);
    with_profile.profile = Some("reviewer".into());
    let event = interaction_event(&with_profile).unwrap();
    assert_eq!(event.source.profile.as_deref(), Some("reviewer"));
    assert_eq!(
        session_key(&event.source, &MULTIPLEX),
        "agent:reviewer:discord:dm:5151"
    );
    // Absent: no profile, the legacy namespace even when multiplexing.
    let event = interaction_event(&forward(&body)).unwrap();
    assert_eq!(event.source.profile, None);
    assert_eq!(
        session_key(&event.source, &MULTIPLEX),
        "agent:main:discord:dm:5151"
    );
}

#[test]
fn non_discord_forwards_are_refused_with_a_typed_error() {
    let body = json!({"type": 2, "data": {"name": "new"}}).to_string();
    for platform in ["twilio", "", "discordx", "relay"] {
        let err = interaction_event(&PassthroughForward::new(platform, body.clone())).unwrap_err();
        assert_eq!(
            err,
            InteractionError::NotDiscord {
                platform: platform.into()
            }
        );
    }
    // Case and surrounding space are forgiven, as in the gateway's platform lookup.
    for platform in ["Discord", "DISCORD", " discord "] {
        let event = interaction_event(&PassthroughForward::new(platform, body.clone())).unwrap();
        assert_eq!(event.text, "/new");
        assert_eq!(event.source.platform, "discord");
    }
}

#[test]
fn unusable_bodies_are_refused_with_typed_errors() {
    // bodyB64 that was not valid base64 (here: missing padding).
    let reason = decode_base64("aGk").unwrap_err();
    assert!(matches!(
        reason,
        Base64Error::InvalidPadding | Base64Error::InvalidLength { .. }
    ));
    let mut bad_base64 = PassthroughForward::new("discord", "");
    let body_error = BodyError {
        reason,
        encoded: "aGk".into(),
    };
    bad_base64.body = Err(body_error.clone());
    assert_eq!(
        interaction_event(&bad_base64),
        Err(InteractionError::Body(body_error))
    );
    // The same through a decoded frame.
    let mut decoder = FrameDecoder::new();
    decoder.push(
        br#"{"type":"passthrough_forward","forward":{"platform":"discord","bodyB64":"-_8="}}
"#,
    );
    let Some(Ok(Frame::PassthroughForward(frame))) = decoder.next_frame() else {
        panic!("not a passthrough_forward");
    };
    assert!(matches!(
        interaction_event(&frame.forward),
        Err(InteractionError::Body(_))
    ));

    let not_utf8 = PassthroughForward::new("discord", &b"{\"type\":\xff}"[..]);
    assert_eq!(
        interaction_event(&not_utf8),
        Err(InteractionError::NotUtf8 { valid_up_to: 8 })
    );
    for bad_json in ["", "{", "{\"type\":2,}", "\u{feff}{}", "NaN"] {
        let err = interaction_event(&PassthroughForward::new("discord", bad_json)).unwrap_err();
        assert!(
            matches!(err, InteractionError::InvalidJson { .. }),
            "{bad_json:?}: {err:?}"
        );
    }
    for (body, found) in [
        ("[]", "array"),
        ("\"x\"", "string"),
        ("2", "number"),
        ("true", "boolean"),
        ("null", "null"),
    ] {
        assert_eq!(
            interaction_event(&PassthroughForward::new("discord", body)),
            Err(InteractionError::NotObject { found })
        );
    }
    // Errors say what is wrong.
    assert_eq!(
        InteractionError::NotObject { found: "array" }.to_string(),
        "interaction body is a JSON array, not an object"
    );
}

/// Shapes that crash the reference are read as absent here: never a panic.
#[test]
fn odd_shapes_never_panic() {
    let bodies = [
        json!({}),
        json!({"type": 2, "data": "new"}),
        json!({"type": 2, "data": ["new"]}),
        json!({"type": 3, "data": 5}),
        json!({"type": 2, "data": {"name": {"nested": true}, "options": [{"type": 1, "options": "x"}]}}),
        json!({"type": 2, "data": {"name": 5}}),
        json!({"type": 3, "data": {"custom_id": 12}}),
        json!({"type": 3, "data": {"custom_id": "hp1:p:o"}, "message": "m"}),
        json!({"type": 2, "guild_id": true, "channel": [], "channel_id": [1]}),
        json!({"type": 2, "guild_id": {"a": 1}, "channel": {"type": "11"}}),
        json!({"type": 18446744073709551615u64, "id": -1, "channel_id": 1.5}),
    ];
    for body in bodies {
        let _ = convert(body);
    }
    // Deeply nested options, up to the parser's nesting limit.
    let mut options = json!([{"type": 3, "value": "leaf"}]);
    for _ in 0..60 {
        options = json!([{"type": 1, "name": "s", "options": options}]);
    }
    let deep = command(json!("deep"), options);
    assert!(deep.text.starts_with("/deep s s"));
    assert!(deep.text.ends_with(" leaf"));
}

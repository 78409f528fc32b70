#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Scenario 4: replies carry the platform, bot and tenant of the chat's latest inbound
//! (protocol.md §2.7, §5.1, §5.2, §11.1; design.md §4 on `guild_id`).

use relay_machine::wire::{FollowUpAction, SendAction};
use serde_json::{Value, json};

use crate::driver::*;

fn guild_inbound() -> String {
    inbound(
        json!({"platform": "discord", "chat_id": "4455", "chat_type": "group",
               "user_id": "77", "user_name": "alice", "scope_id": "1000",
               "profile": "reviewer", "message_id": "9001"}),
        "what is 2+2",
        None,
    )
}

/// The single `outbound` frame written since `m`.
fn outbound_since(d: &Driver, m: usize) -> Value {
    let out = d.frames_of(m, "outbound");
    assert_eq!(out.len(), 1, "one outbound expected: {out:?}");
    out.into_iter().next().unwrap()
}

#[test]
fn guild_reply_carries_platform_bot_and_tenant() {
    let mut d = Driver::open(config3());
    d.feed(&guild_inbound());
    let route = d.gateway().route("4455").unwrap();
    assert_eq!(route.platform(), "discord");
    assert_eq!(route.scope_id(), Some("1000"));

    let m = d.mark();
    let action = SendAction {
        reply_to: Some("9001".into()),
        ..send_action("4455", "4.")
    };
    let id = d.send(action, None).unwrap();
    let frame = outbound_since(&d, m);
    assert_eq!(
        frame,
        json!({"type": "outbound", "requestId": id.as_str(),
               "action": {"op": "send", "chat_id": "4455", "content": "4.", "reply_to": "9001",
                          "metadata": {"scope_id": "1000", "user_id": "77", "profile": "reviewer"}},
               "platform": "discord", "botId": "1122334455"})
    );
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn dm_reply_carries_user_id_and_no_scope_id() {
    let mut d = Driver::open(config3());
    d.feed(&dm("555", "9", "hi"));
    let m = d.mark();
    d.send_text("555", "hello").unwrap();
    let frame = outbound_since(&d, m);
    assert_eq!(frame["platform"], "telegram");
    assert_eq!(frame["botId"], "701");
    assert_eq!(frame["action"]["metadata"], json!({"user_id": "9"}));
    assert!(frame["action"]["metadata"].get("scope_id").is_none());
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn caller_metadata_and_an_explicit_platform_win() {
    let mut d = Driver::open(config3());
    d.feed(&guild_inbound());
    let m = d.mark();
    let mut action = send_action("4455", "cross-post");
    action
        .metadata
        .insert("scope_id".into(), json!("caller-scope"));
    action.metadata.insert("thread_id".into(), json!("t-1"));
    d.send(action, Some("telegram")).unwrap();
    let frame = outbound_since(&d, m);
    assert_eq!(frame["platform"], "telegram");
    assert_eq!(frame["botId"], "701");
    assert_eq!(
        frame["action"]["metadata"],
        json!({"scope_id": "caller-scope", "thread_id": "t-1", "user_id": "77", "profile": "reviewer"})
    );
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn a_chat_never_seen_gets_no_tag() {
    let mut d = Driver::open(config3());
    d.feed(&guild_inbound());
    let m = d.mark();
    d.send_text("unseen", "hello").unwrap();
    let frame = outbound_since(&d, m);
    assert!(frame.get("platform").is_none());
    assert!(frame.get("botId").is_none());
    assert_eq!(frame["action"]["metadata"], json!({}));
    assert!(d.gateway().route("unseen").is_none());
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn a_platform_with_an_empty_bot_id_gets_no_bot_id_key() {
    let mut d = Driver::open(config3());
    d.feed(&inbound(
        json!({"platform": "slack", "chat_id": "C01", "chat_type": "channel",
               "user_id": "U7", "scope_id": "T9"}),
        "hey",
        None,
    ));
    let m = d.mark();
    d.send_text("C01", "hi").unwrap();
    // Explicitly naming the platform gives the same tag.
    d.send(send_action("C02", "hi"), Some("slack")).unwrap();
    let frames = d.frames_of(m, "outbound");
    assert_eq!(frames.len(), 2);
    for frame in &frames {
        assert_eq!(frame["platform"], "slack");
        assert!(frame.get("botId").is_none(), "no botId: {frame}");
    }
    assert_eq!(
        frames[0]["action"]["metadata"],
        json!({"scope_id": "T9", "user_id": "U7"})
    );
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn legacy_guild_id_is_read_as_scope_id() {
    let mut d = Driver::open(config3());
    d.feed(&inbound(
        json!({"platform": "discord", "chat_id": "4455", "chat_type": "group",
               "user_id": "77", "guild_id": "1000"}),
        "legacy connector",
        None,
    ));
    let m = d.mark();
    d.send_text("4455", "ok").unwrap();
    let frame = outbound_since(&d, m);
    assert_eq!(
        frame["action"]["metadata"],
        json!({"scope_id": "1000", "user_id": "77"})
    );
    assert_eq!(frame["platform"], "discord");
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn the_latest_inbound_of_a_chat_decides_and_follow_ups_name_their_platform() {
    let mut d = Driver::open(config3());
    d.feed(&guild_inbound());
    // Another author speaks in the same chat; the reply goes to them.
    d.feed(&inbound(
        json!({"platform": "discord", "chat_id": "4455", "chat_type": "group",
               "user_id": "88", "scope_id": "1000"}),
        "me too",
        None,
    ));
    let m = d.mark();
    d.send_text("4455", "both of you").unwrap();
    assert_eq!(
        outbound_since(&d, m)["action"]["metadata"],
        json!({"scope_id": "1000", "user_id": "88"})
    );
    // A follow_up has no chat; its capability kind names the platform (§5.1).
    let m = d.mark();
    let follow = FollowUpAction {
        session_key: "agent:main:discord:group:4455:77".into(),
        kind: "discord.interaction_token".into(),
        content: "done".into(),
        ..FollowUpAction::default()
    };
    d.send(follow, None).unwrap();
    let frame = outbound_since(&d, m);
    assert_eq!(frame["platform"], "discord");
    assert_eq!(frame["botId"], "1122334455");
    insta::assert_snapshot!(d.transcript());
}

/// A reply to a chat on a platform this socket never announced is not tagged with it (the
/// connector would have to refuse the tag); the tenant metadata still rides along.
#[test]
fn a_chat_on_an_unannounced_platform_is_not_tagged_with_it() {
    let mut d = Driver::open_seeded(discord1(), 0);
    d.feed(
        r#"{"type":"inbound","event":{"source":{"platform":"slack","chat_id":"C1","chat_type":"group","scope_id":"T1","user_id":"U1"}}}"#,
    );
    let m = d.mark();
    d.send(
        SendAction {
            chat_id: "C1".into(),
            ..SendAction::default()
        },
        None,
    )
    .unwrap();
    let frames = d.frames_since(m);
    let [frame] = frames.as_slice() else {
        panic!("one outbound expected: {frames:?}")
    };
    assert!(frame.get("platform").is_none(), "{frame}");
    assert!(frame.get("botId").is_none(), "{frame}");
    assert_eq!(frame["action"]["metadata"]["scope_id"], "T1");
    assert_eq!(frame["action"]["metadata"]["user_id"], "U1");
}

//! Hostile lines: every bad line is one typed error (or a documented decoded value) and the
//! stream goes on; plus the lenient-read rules of protocol.md §2–§5 (legacy keys, bufferId
//! coercion, base64 bodies, egress declines, op gating, length units, descriptor defaults).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::wildcard_enum_match_arm
)]

mod common;

use bytes::Bytes;
use relay_machine::codec::{DecodeError, DecodeErrorKind, FrameDecoder};
use relay_machine::wire::{
    ActionResult, Base64Error, BodyError, BufferId, CapabilityDescriptor, Frame, Identity, Inbound,
    InboundAck, LEGACY_OPS, LenUnit, MessageEvent, MessageType, OutboundAction, UnknownFrame,
    decode_base64, text_len,
};
use serde_json::json;

use DecodeErrorKind::{
    FrameTooLong, InvalidFrame, InvalidJson, InvalidUtf8, MissingType, NotAnObject, TypeNotString,
};

/// A well-formed line fed after every hostile one: the stream must survive.
const SENTINEL: &[u8] = br#"{"type":"inbound_ack","bufferId":"after"}"#;

fn sentinel() -> Frame {
    Frame::from(InboundAck {
        buffer_id: BufferId::from("after"),
    })
}

/// What one line must decode to.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Expect {
    /// An error of `kind` at byte `offset` of the line (when given), with this
    /// `frame_type`.
    Err {
        kind: DecodeErrorKind,
        offset: Option<usize>,
        frame_type: Option<&'static str>,
    },
    /// Exactly this frame.
    Frame(Frame),
    /// Nothing at all (a blank line).
    Nothing,
}

fn err(kind: DecodeErrorKind, offset: usize) -> Expect {
    Expect::Err {
        kind,
        offset: Some(offset),
        frame_type: None,
    }
}

fn err_anywhere(kind: DecodeErrorKind) -> Expect {
    Expect::Err {
        kind,
        offset: None,
        frame_type: None,
    }
}

/// A field problem in a frame of type `frame_type`, found at byte `offset`.
fn bad_field(frame_type: &'static str, offset: usize) -> Expect {
    Expect::Err {
        kind: InvalidFrame,
        offset: Some(offset),
        frame_type: Some(frame_type),
    }
}

/// Byte index of the first occurrence of `needle` in `line`.
fn at(line: &str, needle: &str) -> usize {
    line.find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in {line:?}"))
}

/// Byte index of the last byte of the first occurrence of `needle` in `line`.
fn last(line: &str, needle: &str) -> usize {
    at(line, needle) + needle.len() - 1
}

struct Row {
    label: &'static str,
    line: Vec<u8>,
    expect: Expect,
}

fn row(label: &'static str, line: impl Into<Vec<u8>>, expect: Expect) -> Row {
    Row {
        label,
        line: line.into(),
        expect,
    }
}

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

/// An `inbound` frame whose event has only `text`.
fn inbound_text(text: &str) -> Frame {
    Inbound {
        event: MessageEvent {
            text: text.to_owned(),
            ..MessageEvent::default()
        },
        buffer_id: None,
    }
    .into()
}

#[allow(clippy::too_many_lines)]
fn rows() -> Vec<Row> {
    let mut rows = Vec::new();

    // --- Not JSON.
    rows.push(row("bare word", "hello", err(InvalidJson, 0)));
    let l = r#"{"type":"hello","platform":"#;
    rows.push(row("truncated object", l, err(InvalidJson, l.len() - 1)));
    rows.push(row(
        "single quotes",
        "{'type':'going_idle'}",
        err(InvalidJson, 1),
    ));
    let l = r#"{"type":"going_idle",}"#;
    rows.push(row("trailing comma", l, err(InvalidJson, last(l, "}"))));
    let l = r#"{"type":"going_idle"}{"type":"going_idle"}"#;
    rows.push(row("two objects on one line", l, err(InvalidJson, 21)));
    let l = r#"{"type":"going_idle"} x"#;
    rows.push(row("trailing garbage", l, err(InvalidJson, at(l, "x"))));
    let l = "{\"type\":\"going_idle\"}\0";
    rows.push(row("trailing NUL", l, err(InvalidJson, at(l, "\0"))));
    let l = r#"{"type":"hello","platform":"a","botId":"b","x":NaN}"#;
    rows.push(row("NaN", l, err(InvalidJson, at(l, "NaN"))));
    rows.push(row(
        "byte order mark",
        "\u{feff}{\"type\":\"going_idle\"}",
        err(InvalidJson, 0),
    ));

    // --- JSON, but not an object.
    rows.push(row("array", "[1,2]", err(NotAnObject, 0)));
    rows.push(row("number", "42", err(NotAnObject, 0)));
    rows.push(row("string", r#""hello""#, err(NotAnObject, 0)));
    rows.push(row("null", "null", err(NotAnObject, 0)));
    rows.push(row("true", "true", err(NotAnObject, 0)));
    rows.push(row(
        "indented array of frames",
        r#"   [{"type":"going_idle"}]"#,
        err(NotAnObject, 3),
    ));

    // --- Objects that cannot be dispatched.
    rows.push(row("empty object", "{}", err(MissingType, 0)));
    rows.push(row("no type", r#"{"kind":"hello"}"#, err(MissingType, 0)));
    rows.push(row("type number", r#"{"type":5}"#, err(TypeNotString, 0)));
    rows.push(row("type null", r#"{"type":null}"#, err(TypeNotString, 0)));
    rows.push(row(
        "type array",
        r#"{"type":["hello"],"platform":"a","botId":"b"}"#,
        err(TypeNotString, 0),
    ));
    rows.push(row(
        "type object",
        r#"{"type":{"name":"hello"}}"#,
        err(TypeNotString, 0),
    ));
    rows.push(row(
        "type not first, not a string",
        r#"{"platform":"a","type":7}"#,
        err(TypeNotString, 0),
    ));
    rows.push(row(
        "type not first, missing",
        r#"{"platform":"a","botId":"b"}"#,
        err(MissingType, 0),
    ));

    // --- Wrong field types.
    let l = r#"{"type":"inbound","event":{"text":5}}"#;
    rows.push(row("text: 5", l, bad_field("inbound", last(l, "5"))));
    let l = r#"{"type":"outbound_result","requestId":"r1","result":{"success":"yes"}}"#;
    rows.push(row(
        "success: \"yes\"",
        l,
        bad_field("outbound_result", last(l, r#""yes""#)),
    ));
    let l = r#"{"type":"outbound_result","requestId":"r1","result":{"success":1}}"#;
    rows.push(row(
        "success: 1",
        l,
        bad_field("outbound_result", last(l, ":1")),
    ));
    let l = r#"{"type":"inbound","event":{},"bufferId":{}}"#;
    rows.push(row("bufferId: {}", l, bad_field("inbound", l.len() - 2)));
    let l = r#"{"type":"inbound","event":{},"bufferId":true}"#;
    rows.push(row(
        "bufferId: true",
        l,
        bad_field("inbound", last(l, "true")),
    ));
    let l = r#"{"type":"inbound","event":{},"bufferId":7.5}"#;
    rows.push(row(
        "bufferId: 7.5",
        l,
        bad_field("inbound", last(l, "7.5")),
    ));
    let l = r#"{"type":"passthrough_forward","forward":{"headers":[["content-type"]]}}"#;
    rows.push(row(
        "header pair of one",
        l,
        bad_field("passthrough_forward", last(l, r#"["content-type"]"#)),
    ));
    let l = r#"{"type":"passthrough_forward","forward":{"headers":[["a","b","c"]]}}"#;
    rows.push(row(
        "header triple",
        l,
        bad_field("passthrough_forward", at(l, r#""c""#)),
    ));
    let l = r#"{"type":"passthrough_forward","forward":{"headers":["content-type: x"]}}"#;
    rows.push(row(
        "header as a string",
        l,
        bad_field("passthrough_forward", last(l, r#""content-type: x""#)),
    ));
    let l = r#"{"type":"passthrough_forward","forward":{"headers":[["x-n",5]]}}"#;
    rows.push(row(
        "header value number",
        l,
        bad_field("passthrough_forward", last(l, "5")),
    ));
    let l = r#"{"type":"passthrough_forward","forward":{"headers":{"a":"b"}}}"#;
    rows.push(row(
        "headers as an object",
        l,
        bad_field("passthrough_forward", at(l, r#"{"a":"b"}"#) - 1),
    ));
    let l = r#"{"type":"passthrough_forward","forward":{"bodyB64":5}}"#;
    rows.push(row(
        "bodyB64: 5",
        l,
        bad_field("passthrough_forward", last(l, "5")),
    ));
    let l = descriptor_line(|d| {
        d.insert("max_message_length".into(), json!("2000"));
    });
    let o = last(&l, r#""2000""#);
    rows.push(row(
        "max_message_length \"2000\"",
        l,
        bad_field("descriptor", o),
    ));
    let l = descriptor_line(|d| {
        d.insert("max_message_length".into(), json!(2000.5));
    });
    let o = last(&l, "2000.5");
    rows.push(row(
        "max_message_length 2000.5",
        l,
        bad_field("descriptor", o),
    ));
    let l = descriptor_line(|d| {
        d.insert("max_message_length".into(), json!(true));
    });
    let o = last(&l, ":true");
    rows.push(row(
        "max_message_length true",
        l,
        bad_field("descriptor", o),
    ));
    let l = descriptor_line(|d| {
        d.insert("supported_ops".into(), json!(["send", 5]));
    });
    let o = last(&l, r#"["send",5"#);
    rows.push(row(
        "supported_ops with a number",
        l,
        bad_field("descriptor", o),
    ));
    let l = descriptor_line(|d| {
        d.insert("supports_edit".into(), json!("false"));
    });
    let o = last(&l, r#""false""#);
    rows.push(row("boolean as a string", l, bad_field("descriptor", o)));
    let l = json!({"type": "descriptor", "descriptor": {"contract_version": 1}}).to_string();
    assert!(
        l.ends_with(r#""type":"descriptor"}"#),
        "json! sorts type last: {l}"
    );
    rows.push(row(
        "type not first, missing field",
        l,
        Expect::Err {
            kind: InvalidFrame,
            offset: None,
            frame_type: Some("descriptor"),
        },
    ));
    let l = r#"{"type":"interrupt","session_key":5,"reason":null}"#;
    rows.push(row(
        "session_key: 5",
        l,
        bad_field("interrupt", last(l, "5")),
    ));
    let l = r#"{"type":"outbound","requestId":7,"action":{"op":"get_chat_info","chat_id":"1"}}"#;
    rows.push(row("requestId: 7", l, bad_field("outbound", last(l, "7"))));
    let l = r#"{"type":"outbound","requestId":"r1","action":"send"}"#;
    rows.push(row(
        "action: string",
        l,
        bad_field("outbound", last(l, r#""send""#)),
    ));
    let l = r#"{"type":"outbound","requestId":"r1","action":{"op":5,"chat_id":"1"}}"#;
    // A nested tag problem is found once the action object is read; the offset is
    // then the frame's end.
    rows.push(row("op: 5", l, bad_field("outbound", l.len() - 1)));
    let l = r#"{"type":"outbound","requestId":"r1","action":{"chat_id":"1"}}"#;
    rows.push(row("op missing", l, bad_field("outbound", l.len() - 1)));
    let l = r#"{"type":"outbound","requestId":"r1","action":{"op":"react","chat_id":"1","message_id":"2","emoji":"x","remove":"no"}}"#;
    rows.push(row(
        "remove: \"no\"",
        l,
        bad_field("outbound", last(l, r#""no""#)),
    ));
    let l = r#"{"type":"inbound","event":"hi"}"#;
    rows.push(row(
        "event: string",
        l,
        bad_field("inbound", last(l, r#""hi""#)),
    ));
    let l = r#"{"type":"inbound","event":{"source":5}}"#;
    rows.push(row("source: 5", l, bad_field("inbound", last(l, "5"))));
    let l = r#"{"type":"inbound","event":{"source":{"chat_id":4455}}}"#;
    rows.push(row(
        "chat_id: number",
        l,
        bad_field("inbound", last(l, "4455")),
    ));
    let l = r#"{"type":"inbound","event":{"source":{"is_bot":"false"}}}"#;
    rows.push(row(
        "is_bot: \"false\"",
        l,
        bad_field("inbound", last(l, r#""false""#)),
    ));
    let l = r#"{"type":"inbound","event":{"media_urls":"https://x/y.png"}}"#;
    rows.push(row(
        "media_urls: string",
        l,
        bad_field("inbound", last(l, r#""https://x/y.png""#)),
    ));
    let l =
        r#"{"type":"hello","platform":"discord","botId":"1","command_manifest":{"name":"ping"}}"#;
    rows.push(row(
        "command_manifest: object",
        l,
        bad_field("hello", at(l, r#"{"name""#) - 1),
    ));
    let l = r#"{"botId":"1","platform":5,"type":"hello"}"#;
    rows.push(row(
        "type not first, wrong field type",
        l,
        Expect::Err {
            kind: InvalidFrame,
            offset: None,
            frame_type: Some("hello"),
        },
    ));
    let l = r#"{"type":"hello","platform":"a","platform":"b","botId":"1"}"#;
    rows.push(row(
        "duplicate field",
        l,
        bad_field("hello", last(l, r#""platform":"b""#) - 4),
    ));

    // --- Missing required fields.
    let l = r#"{"type":"outbound_result","requestId":"r1"}"#;
    rows.push(row(
        "outbound_result without result",
        l,
        bad_field("outbound_result", l.len() - 1),
    ));
    let l = r#"{"type":"outbound_result","result":{"success":true}}"#;
    rows.push(row(
        "outbound_result without requestId",
        l,
        bad_field("outbound_result", l.len() - 1),
    ));
    let l = r#"{"type":"hello","platform":"telegram"}"#;
    rows.push(row(
        "hello without botId",
        l,
        bad_field("hello", l.len() - 1),
    ));
    let l = descriptor_line(|d| {
        d.remove("platform");
    });
    let o = l.len() - 2;
    rows.push(row(
        "descriptor without platform",
        l,
        bad_field("descriptor", o),
    ));
    let l = descriptor_line(|d| {
        d.remove("len_unit");
    });
    let o = l.len() - 2;
    rows.push(row(
        "descriptor without len_unit",
        l,
        bad_field("descriptor", o),
    ));
    let l = r#"{"type":"descriptor"}"#;
    rows.push(row(
        "descriptor without descriptor",
        l,
        bad_field("descriptor", l.len() - 1),
    ));
    let l = r#"{"type":"inbound"}"#;
    rows.push(row(
        "inbound without event",
        l,
        bad_field("inbound", l.len() - 1),
    ));
    let l = r#"{"type":"inbound_ack"}"#;
    rows.push(row(
        "inbound_ack without bufferId",
        l,
        bad_field("inbound_ack", l.len() - 1),
    ));
    let l = r#"{"type":"inbound_ack","bufferId":""}"#;
    rows.push(row(
        "inbound_ack with empty bufferId",
        l,
        bad_field("inbound_ack", l.len() - 1),
    ));
    let l = r#"{"type":"interrupt","reason":"x"}"#;
    rows.push(row(
        "interrupt without session_key",
        l,
        bad_field("interrupt", l.len() - 1),
    ));
    let l = r#"{"type":"interrupt_inbound","session_key":"k"}"#;
    rows.push(row(
        "interrupt_inbound without chat_id",
        l,
        bad_field("interrupt_inbound", l.len() - 1),
    ));
    let l = r#"{"type":"outbound","requestId":"r1","action":{"op":"send","chat_id":"1"}}"#;
    rows.push(row(
        "send without content",
        l,
        bad_field("outbound", l.len() - 2),
    ));
    let l = r#"{"type":"outbound","requestId":"r1","action":{"op":"draft","chat_id":"1","draft_id":1,"content":"x"}}"#;
    rows.push(row(
        "draft without final",
        l,
        bad_field("outbound", l.len() - 2),
    ));
    let l = r#"{"type":"inbound","event":{"prompt_response":{"prompt_id":"p"}}}"#;
    rows.push(row(
        "prompt_response without option_id",
        l,
        bad_field("inbound", l.len() - 3),
    ));

    // --- Invalid UTF-8.
    rows.push(row("lone 0xff", b"\xff".to_vec(), err(InvalidUtf8, 0)));
    let l = b"{\"type\":\"hello\",\"platform\":\"dis\xffcord\",\"botId\":\"1\"}".to_vec();
    rows.push(row("0xff inside a string", l, err(InvalidUtf8, 31)));
    let l = b"{\"type\":\"inbound\",\"event\":{\"text\":\"\xe2\x82\"}}".to_vec();
    rows.push(row("truncated 3-byte sequence", l, err(InvalidUtf8, 35)));
    let l = b"{\"type\":\"inbound\",\"event\":{\"text\":\"\xc0\xaf\"}}".to_vec();
    rows.push(row("overlong encoding", l, err(InvalidUtf8, 35)));
    let l = b"{\"type\":\"inbound\",\"event\":{\"text\":\"\xed\xa0\x80\"}}".to_vec();
    rows.push(row("UTF-8 encoded surrogate", l, err(InvalidUtf8, 35)));
    let l = b"{\"type\":\"x\",\"k\":\"caf\xc3\xa9\"} \xf0\x9f\x98".to_vec();
    rows.push(row(
        "truncated emoji after the object",
        l,
        err(InvalidUtf8, 25),
    ));

    // --- Line endings and blank lines.
    rows.push(row(
        "\\r\\n ending",
        "{\"type\":\"going_idle_ack\"}\r",
        Expect::Frame(Frame::GoingIdleAck),
    ));
    rows.push(row(
        "\\r\\n ending with fields",
        "{\"type\":\"inbound_ack\",\"bufferId\":\"b-1\"}\r",
        Expect::Frame(
            InboundAck {
                buffer_id: BufferId::from("b-1"),
            }
            .into(),
        ),
    ));
    rows.push(row(
        "leading whitespace",
        " \t\r{\"type\":\"going_idle\"}",
        Expect::Frame(Frame::GoingIdle),
    ));
    rows.push(row("empty line", "", Expect::Nothing));
    rows.push(row("lone \\r", "\r", Expect::Nothing));
    rows.push(row("spaces and tabs", " \t  \t\r", Expect::Nothing));

    // --- Unknown types and keys.
    rows.push(row(
        "unknown type",
        r#"{"type":"presence","status":"online","n":[1,{"a":null}]}"#,
        Expect::Frame(Frame::Unknown(UnknownFrame {
            frame_type: "presence".to_owned(),
            fields: common::obj(json!({"status": "online", "n": [1, {"a": null}]})),
        })),
    ));
    rows.push(row(
        "unknown type, type not first",
        r#"{"status":"online","type":"presence"}"#,
        Expect::Frame(Frame::Unknown(UnknownFrame {
            frame_type: "presence".to_owned(),
            fields: common::obj(json!({"status": "online"})),
        })),
    ));
    rows.push(row(
        "type in another case",
        r#"{"type":"Hello","platform":"a","botId":"b"}"#,
        Expect::Frame(Frame::Unknown(UnknownFrame {
            frame_type: "Hello".to_owned(),
            fields: common::obj(json!({"platform": "a", "botId": "b"})),
        })),
    ));
    rows.push(row(
        "unknown keys",
        r#"{"type":"inbound_ack","bufferId":"b-2","v":2,"extra":{"deep":[1,2,{"x":null}]}}"#,
        Expect::Frame(
            InboundAck {
                buffer_id: BufferId::from("b-2"),
            }
            .into(),
        ),
    ));
    rows.push(row(
        "unknown keys on a unit frame",
        r#"{"type":"going_idle","instance":"gw-2","reason":{"x":[1]}}"#,
        Expect::Frame(Frame::GoingIdle),
    ));
    rows.push(row(
        "type not first, unknown keys",
        r#"{"platform":"a","x":[1,2],"botId":"b","type":"hello","y":null}"#,
        Expect::Frame(
            Identity {
                platform: "a".to_owned(),
                bot_id: "b".to_owned(),
                command_manifest: None,
            }
            .into(),
        ),
    ));
    let legacy = descriptor_line(|d| {
        d.insert("media_capabilities".into(), json!(["image"]));
        d.insert("future_flag".into(), json!({"a": 1}));
    });
    let mut expected = common::telegram_descriptor();
    expected.supported_ops.clear();
    rows.push(row(
        "historical and future descriptor keys",
        legacy,
        Expect::Frame(
            relay_machine::wire::Descriptor {
                descriptor: expected,
            }
            .into(),
        ),
    ));

    // --- Deep nesting: an error or a skip, never a stack overflow.
    let open = "[".repeat(10_000);
    let balanced = format!("{open}{}", "]".repeat(10_000));
    let objects = format!("{}1{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
    rows.push(row(
        "10k [ at top level",
        open.clone(),
        err(InvalidJson, 9_999),
    ));
    rows.push(row(
        "10k balanced [] at top level",
        balanced.clone(),
        err(NotAnObject, 0),
    ));
    rows.push(row(
        "10k nested objects at top level",
        objects.clone(),
        err_anywhere(InvalidJson),
    ));
    let l = format!(r#"{{"type":"inbound","event":{{"text":{open}"#);
    rows.push(row("10k [ in a string field", l, err_anywhere(InvalidJson)));
    let l = format!(r#"{{"type":"inbound","event":{{"text":{balanced}}}}}"#);
    rows.push(row(
        "10k balanced [] in a string field",
        l,
        err_anywhere(InvalidJson),
    ));
    let l = format!(
        r#"{{"type":"outbound","requestId":"r1","action":{{"op":"send","chat_id":"1","content":"","metadata":{{"a":{balanced}}}}}}}"#
    );
    rows.push(row("10k [] in metadata", l, err_anywhere(InvalidJson)));
    let l = format!(r#"{{"type":"presence","a":{balanced}}}"#);
    rows.push(row(
        "10k [] in an unknown frame",
        l,
        err_anywhere(InvalidJson),
    ));
    let l = format!(r#"{{"type":"hello","platform":"a","botId":"b","x":{objects}}}"#);
    rows.push(row(
        "10k nested objects in an ignored key",
        l,
        // serde_json skips an ignored value iteratively, without a depth limit: the
        // frame decodes (nothing is built from the nested value).
        Expect::Frame(
            Identity {
                platform: "a".to_owned(),
                bot_id: "b".to_owned(),
                command_manifest: None,
            }
            .into(),
        ),
    ));
    let l = format!(r#"{{"x":{balanced},"type":"going_idle"}}"#);
    rows.push(row(
        "10k [] in a key before type",
        l,
        err_anywhere(InvalidJson),
    ));
    let l = format!(r#"{{"type":"going_idle","x":{open}}}"#);
    rows.push(row(
        "10k unclosed [ in an ignored key",
        l,
        err_anywhere(InvalidJson),
    ));
    let l = format!(
        r#"{{"type":"hello","platform":"discord","botId":"1","command_manifest":{balanced}}}"#
    );
    rows.push(row(
        "10k [] as command_manifest",
        l,
        err_anywhere(InvalidJson),
    ));

    // --- Huge numbers.
    let l = descriptor_line(|d| {
        d.insert("max_message_length".into(), json!("__N__"));
    })
    .replace(r#""__N__""#, "1e400");
    let o = last(&l, "1e400");
    rows.push(row("max_message_length 1e400", l, err(InvalidJson, o)));
    let l = descriptor_line(|d| {
        d.insert("max_message_length".into(), json!("__N__"));
    })
    .replace(r#""__N__""#, "99999999999999999999999");
    let o = last(&l, "99999999999999999999999");
    rows.push(row(
        "max_message_length 1e23 as an integer",
        l,
        bad_field("descriptor", o),
    ));
    let l = descriptor_line(|d| {
        d.insert("contract_version".into(), json!(4_294_967_296_u64));
    });
    let o = last(&l, "4294967296");
    rows.push(row(
        "contract_version over u32",
        l,
        bad_field("descriptor", o),
    ));
    let l = r#"{"type":"outbound","requestId":"r1","action":{"op":"draft","chat_id":"1","draft_id":99999999999999999999999,"content":"","final":true}}"#;
    rows.push(row(
        "draft_id 1e23",
        l,
        bad_field("outbound", last(l, "99999999999999999999999")),
    ));
    let l = r#"{"type":"inbound_ack","bufferId":99999999999999999999999}"#;
    rows.push(row(
        "bufferId 1e23",
        l,
        bad_field("inbound_ack", last(l, "99999999999999999999999")),
    ));
    let l = r#"{"type":"inbound","event":{"media":[{"url":"u","size":-1}]}}"#;
    rows.push(row("media size -1", l, bad_field("inbound", last(l, "-1"))));
    let l = r#"{"type":"outbound","requestId":"r1","action":{"op":"send","chat_id":"1","content":"","metadata":{"n":1e400}}}"#;
    rows.push(row(
        "1e400 in metadata",
        l,
        err(InvalidJson, last(l, "1e400")),
    ));
    let l = r#"{"type":"presence","n":-1e400}"#;
    rows.push(row(
        "-1e400 in an unknown frame",
        l,
        err(InvalidJson, last(l, "-1e400")),
    ));

    // --- Escapes. A lone surrogate (Python's json writes them) reads as U+FFFD.
    rows.push(row(
        "lone high surrogate",
        r#"{"type":"hello","platform":"\ud800","botId":"b"}"#,
        Expect::Frame(
            Identity {
                platform: "\u{FFFD}".to_owned(),
                bot_id: "b".to_owned(),
                command_manifest: None,
            }
            .into(),
        ),
    ));
    rows.push(row(
        "lone low surrogate",
        r#"{"type":"inbound","event":{"text":"a\udc00b"}}"#,
        Expect::Frame(inbound_text("a\u{FFFD}b")),
    ));
    rows.push(row(
        "high surrogate then a letter",
        r#"{"type":"inbound","event":{"text":"\ud800\u0041"}}"#,
        Expect::Frame(inbound_text("\u{FFFD}A")),
    ));
    let l = r#"{"type":"inbound","event":{"text":"\x41"}}"#;
    rows.push(row("invalid escape", l, err(InvalidJson, last(l, r#"\x"#))));
    let l = "{\"type\":\"inbound\",\"event\":{\"text\":\"a\tb\"}}";
    rows.push(row(
        "raw control character",
        l,
        err(InvalidJson, at(l, "\t")),
    ));
    rows.push(row(
        "valid surrogate pair",
        r#"{"type":"hello","platform":"\ud83d\ude80","botId":"caf\u00e9"}"#,
        Expect::Frame(
            Identity {
                platform: "\u{1F680}".to_owned(),
                bot_id: "caf\u{e9}".to_owned(),
                command_manifest: None,
            }
            .into(),
        ),
    ));

    // serde's derived structs would take an array as fields by position; only objects are
    // accepted for a struct-typed field.
    let array_rows: [(&'static str, &'static str, &'static str); 6] = [
        (
            "event as an array",
            "inbound",
            r#"{"type":"inbound","event":[]}"#,
        ),
        (
            "source as an array",
            "inbound",
            r#"{"type":"inbound","event":{"source":["discord","4455"]}}"#,
        ),
        (
            "descriptor as an array",
            "descriptor",
            r#"{"type":"descriptor","descriptor":[1,"x","y",5,true,true,true,"plain","chars"]}"#,
        ),
        (
            "result as an array",
            "outbound_result",
            r#"{"type":"outbound_result","requestId":"r","result":[true]}"#,
        ),
        (
            "forward as an array",
            "passthrough_forward",
            r#"{"type":"passthrough_forward","forward":["discord"]}"#,
        ),
        (
            "prompt option as an array",
            "outbound",
            r#"{"type":"outbound","requestId":"r","action":{"op":"prompt","chat_id":"c","content":"x","prompt_kind":"choice","prompt_id":"p","options":[["a","b"]]}}"#,
        ),
    ];
    for (label, frame_type, line) in array_rows {
        rows.push(row(
            label,
            line,
            Expect::Err {
                kind: InvalidFrame,
                offset: None,
                frame_type: Some(frame_type),
            },
        ));
    }

    rows
}

/// Everything a decoder yields after `push`ing `bytes` in one chunk.
fn decode_all(decoder: &mut FrameDecoder, bytes: &[u8]) -> Vec<Result<Frame, DecodeError>> {
    decoder.push(bytes);
    std::iter::from_fn(|| decoder.next_frame()).collect()
}

/// Checks one decoded item against a row, given the line number and the stream offset
/// of the line's first byte; describes every mismatch.
fn check(
    row: &Row,
    got: Option<Result<Frame, DecodeError>>,
    line: u64,
    line_start: u64,
) -> Result<(), String> {
    let label = row.label;
    let mut problems = Vec::new();
    match (&row.expect, got) {
        (
            Expect::Err {
                kind,
                offset,
                frame_type,
            },
            Some(Err(e)),
        ) => {
            if e.kind != *kind {
                problems.push(format!("kind {} (expected {kind})", e.kind));
            }
            if e.line != line {
                problems.push(format!("line {} (expected {line})", e.line));
            }
            match offset {
                Some(offset) if e.offset != line_start + *offset as u64 => problems.push(format!(
                    "offset {} in the line (expected {offset})",
                    e.offset - line_start
                )),
                None if e.offset < line_start || e.offset > line_start + row.line.len() as u64 => {
                    problems.push(format!("offset {} outside the line", e.offset));
                }
                _ => {}
            }
            if e.frame_type.as_deref() != *frame_type {
                problems.push(format!(
                    "frame_type {:?} (expected {frame_type:?})",
                    e.frame_type
                ));
            }
            if e.message.is_empty() {
                problems.push("empty message".to_owned());
            }
            // The rendered error names the line, the offset and the kind.
            let shown = e.to_string();
            if !shown.starts_with(&format!("line {}, byte {}: {}", e.line, e.offset, e.kind)) {
                problems.push(format!("rendered as {shown:?}"));
            }
            if !problems.is_empty() {
                problems.push(format!("error: {e}"));
            }
        }
        (Expect::Frame(expected), Some(Ok(frame))) => {
            if &frame != expected {
                problems.push(format!("decoded {frame:?}"));
            }
        }
        (expect, got) => problems.push(format!("expected {expect:?}, got {got:?}")),
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{label}: {}", problems.join("; ")))
    }
}

fn report(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn each_hostile_line_alone_then_a_good_line() {
    let mut failures = Vec::new();
    for row in rows() {
        let mut decoder = FrameDecoder::new();
        let mut bytes = row.line.clone();
        bytes.push(b'\n');
        bytes.extend_from_slice(SENTINEL);
        bytes.push(b'\n');
        let mut items = decode_all(&mut decoder, &bytes).into_iter();
        if !matches!(row.expect, Expect::Nothing) {
            if let Err(problem) = check(&row, items.next(), 1, 0) {
                failures.push(problem);
            }
        }
        assert_eq!(
            items.next(),
            Some(Ok(sentinel())),
            "{}: stream died",
            row.label
        );
        assert_eq!(items.next(), None, "{}: extra output", row.label);
        assert_eq!(decoder.buffered_len(), 0, "{}", row.label);
    }
    report(&failures);
}

#[test]
fn all_hostile_lines_in_one_stream() {
    let rows = rows();
    let mut bytes = Vec::new();
    let mut starts = Vec::new();
    for row in &rows {
        starts.push(bytes.len() as u64);
        bytes.extend_from_slice(&row.line);
        bytes.push(b'\n');
        bytes.extend_from_slice(SENTINEL);
        bytes.push(b'\n');
    }
    let mut decoder = FrameDecoder::new();
    let mut items = decode_all(&mut decoder, &bytes).into_iter();
    let mut failures = Vec::new();
    for (i, (row, start)) in rows.iter().zip(starts).enumerate() {
        let line = 2 * i as u64 + 1;
        if !matches!(row.expect, Expect::Nothing) {
            if let Err(problem) = check(row, items.next(), line, start) {
                failures.push(problem);
            }
        }
        assert_eq!(
            items.next(),
            Some(Ok(sentinel())),
            "{}: stream died",
            row.label
        );
    }
    assert_eq!(items.next(), None);
    report(&failures);
}

#[test]
fn over_long_lines_with_a_small_limit() {
    const MAX: usize = 48;
    let exact = format!(
        r#"{{"type":"inbound_ack","bufferId":"{}"}}"#,
        "x".repeat(MAX - 36)
    );
    assert_eq!(exact.len(), MAX);
    let one_more = format!(
        r#"{{"type":"inbound_ack","bufferId":"{}"}}"#,
        "x".repeat(MAX - 35)
    );
    let huge = format!(r#"{{"type":"presence","pad":"{}"}}"#, "y".repeat(10 * MAX));
    let ack = |n: usize| -> Frame {
        InboundAck {
            buffer_id: BufferId::from("x".repeat(n)),
        }
        .into()
    };
    let stream =
        format!("{exact}\n{one_more}\n{exact}\r\n{huge}\n{{\"type\":\"going_idle\"}}\n{huge}");

    // One chunk, then one byte at a time: same results, buffer always bounded.
    for chunk in [stream.len(), 1, 7] {
        let mut decoder = FrameDecoder::with_max_frame_len(MAX);
        assert_eq!(decoder.max_frame_len(), MAX);
        let mut items = Vec::new();
        for piece in stream.as_bytes().chunks(chunk) {
            decoder.push(piece);
            assert!(decoder.buffered_len() <= MAX);
            items.extend(std::iter::from_fn(|| decoder.next_frame()));
        }
        decoder.finish();
        items.extend(std::iter::from_fn(|| decoder.next_frame()));

        // Errors compared by what they say: kind, place, message and no salvage.
        type Seen = Result<Frame, (DecodeErrorKind, u64, u64, String, bool)>;
        let items: Vec<Seen> = items
            .into_iter()
            .map(|item| {
                item.map_err(|e| {
                    let salvaged = e.frame_type.is_some() || e.salvage.is_some();
                    (e.kind, e.line, e.offset, e.message, salvaged)
                })
            })
            .collect();
        let too_long = |line: u64, offset: usize| -> Seen {
            Err((
                FrameTooLong,
                line,
                offset as u64,
                format!("line exceeds {MAX} bytes"),
                false,
            ))
        };
        let l2 = exact.len() + 1;
        let l3 = l2 + one_more.len() + 1;
        let l4 = l3 + exact.len() + 2;
        let l6 = l4 + huge.len() + 1 + r#"{"type":"going_idle"}"#.len() + 1;
        assert_eq!(
            items,
            vec![
                Ok(ack(MAX - 36)),
                too_long(2, l2),
                // The `\r` counts towards the limit: a line of exactly MAX bytes plus
                // `\r` is too long.
                too_long(3, l3),
                too_long(4, l4),
                Ok(Frame::GoingIdle),
                // The last line has no newline; it is reported once, as soon as it
                // crosses the limit, and `finish` adds nothing.
                too_long(6, l6),
            ],
            "chunk size {chunk}"
        );
        assert_eq!(decoder.buffered_len(), 0);
    }
}

#[test]
fn an_over_long_line_is_never_stored() {
    let mut decoder = FrameDecoder::with_max_frame_len(24);
    decoder.push(b"{\"type\":\"presence\",\"pad\":\"");
    assert_eq!(decoder.buffered_len(), 0, "dropped as soon as it crossed");
    let first = decoder.next_frame().unwrap().unwrap_err();
    assert_eq!((first.kind, first.line, first.offset), (FrameTooLong, 1, 0));
    for _ in 0..1000 {
        decoder.push(&[b'z'; 1024]);
        assert_eq!(decoder.buffered_len(), 0);
    }
    assert_eq!(decoder.next_frame(), None, "reported once");
    decoder.push(b"\"}\n{\"type\":\"going_idle\"}\n");
    assert_eq!(decoder.next_frame(), Some(Ok(Frame::GoingIdle)));
    assert_eq!(decoder.next_frame(), None);
}

#[test]
fn finish_decodes_a_last_line_without_newline() {
    let mut decoder = FrameDecoder::new();
    decoder.push(b"{\"type\":\"going_idle\"}\n{\"type\":\"going_idle_ack\"}");
    assert_eq!(decoder.next_frame(), Some(Ok(Frame::GoingIdle)));
    assert_eq!(decoder.next_frame(), None, "no newline, no frame");
    assert_eq!(decoder.buffered_len(), 25);
    decoder.finish();
    assert_eq!(decoder.next_frame(), Some(Ok(Frame::GoingIdleAck)));
    assert_eq!(decoder.buffered_len(), 0);

    let mut decoder = FrameDecoder::new();
    decoder.push(b"\n\n{oops");
    decoder.finish();
    let e = decoder.next_frame().unwrap().unwrap_err();
    assert_eq!((e.kind, e.line, e.offset), (InvalidJson, 3, 3));
}

#[test]
fn reset_forgets_the_partial_line_and_restarts_counting() {
    let mut decoder = FrameDecoder::with_max_frame_len(64);
    decoder.push(b"{\"type\":\"going_idle\"}\n{\"type\":\"going_id");
    decoder.reset();
    assert_eq!(decoder.max_frame_len(), 64);
    assert_eq!(decoder.buffered_len(), 0);
    assert_eq!(decoder.next_frame(), None, "queued frames are dropped too");
    decoder.push(b"le\"}\nnope\n");
    let e = decoder.next_frame().unwrap().unwrap_err();
    assert_eq!((e.kind, e.line, e.offset), (InvalidJson, 1, 0));
    let e = decoder.next_frame().unwrap().unwrap_err();
    // `n` starts `null`; the `o` is the problem.
    assert_eq!((e.kind, e.line, e.offset), (InvalidJson, 2, 6));
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
        Some(Err(e)) => e,
        other => panic!("{line}: expected an error, got {other:?}"),
    }
}

fn inbound(line: &str) -> relay_machine::wire::Inbound {
    match frame(line) {
        Frame::Inbound(i) => *i,
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
            event: relay_machine::wire::MessageEvent {
                source: source_of(json!({"guild_id": "1000"})),
                ..Default::default()
            },
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
        Frame::Descriptor(d) => d.descriptor,
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

//! Snapshots of the canonical encoding of one example of every frame type and every op
//! (protocol.md §2, §5.3), plus checks of the wire rules a snapshot reviewer could miss.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::wildcard_enum_match_arm
)]

mod common;

use std::collections::BTreeSet;

use relay_machine::codec::encode;
use relay_machine::wire::{Frame, OutboundAction};
use serde_json::Value;

/// One line per example: `<label>: <encoded line>`.
fn render(examples: &[(&str, Frame)]) -> String {
    let mut out = String::new();
    for (label, frame) in examples {
        let line = encode(frame);
        let text = std::str::from_utf8(&line).unwrap();
        let text = text.strip_suffix('\n').expect("every line ends with \\n");
        assert!(!text.contains('\n'), "{label}: raw newline inside a line");
        out.push_str(label);
        out.push_str(": ");
        out.push_str(text);
        out.push('\n');
    }
    out
}

#[test]
fn every_frame_type() {
    insta::assert_snapshot!("frames", render(&common::frames()));
}

#[test]
fn every_op() {
    insta::assert_snapshot!("ops", render(&common::ops()));
}

#[test]
fn examples_cover_every_frame_type_and_op() {
    let types: BTreeSet<String> = common::all()
        .iter()
        .map(|(_, f)| f.frame_type().to_owned())
        .collect();
    // Every known type, and one the crate does not know (kept verbatim).
    let expected: BTreeSet<String> = Frame::KNOWN_TYPES
        .iter()
        .chain(&["presence"])
        .map(|t| (*t).to_owned())
        .collect();
    assert_eq!(types, expected);
    assert!(
        common::all()
            .iter()
            .any(|(_, f)| matches!(f, Frame::Unknown(_)))
    );

    let ops: BTreeSet<String> = common::ops()
        .iter()
        .map(|(_, f)| match f {
            Frame::Outbound(o) => o.action.op().to_owned(),
            other => panic!("not an outbound: {other:?}"),
        })
        .collect();
    // Every known op, and one the crate does not know (kept verbatim).
    let expected: BTreeSet<String> = relay_machine::wire::OutboundAction::KNOWN_OPS
        .iter()
        .chain(&["pin"])
        .map(|t| (*t).to_owned())
        .collect();
    assert_eq!(ops, expected);
    assert!(common::ops().iter().any(|(_, f)| matches!(
        f,
        Frame::Outbound(o) if matches!(o.action, OutboundAction::Unknown(_))
    )));
}

/// The encoded line as a JSON object.
fn encoded_object(frame: &Frame) -> serde_json::Map<String, Value> {
    match serde_json::from_slice(&encode(frame)).unwrap() {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

#[test]
fn type_and_op_are_written_first() {
    for (label, frame) in common::all() {
        let line = encode(&frame);
        let prefix = format!("{{\"type\":\"{}\"", frame.frame_type());
        assert!(line.starts_with(prefix.as_bytes()), "{label}");
        if let Frame::Outbound(o) = &frame {
            let text = std::str::from_utf8(&line).unwrap();
            let action = format!("\"action\":{{\"op\":\"{}\"", o.action.op());
            assert!(text.contains(&action), "{label}: {text}");
        }
    }
}

#[test]
fn keys_that_are_always_present() {
    for (label, frame) in common::all() {
        let object = encoded_object(&frame);
        match &frame {
            Frame::Interrupt(i) => {
                assert_eq!(
                    object.get("reason"),
                    Some(&i.reason.clone().map_or(Value::Null, Value::String)),
                    "{label}"
                );
            }
            Frame::Outbound(o) => {
                let action = object["action"].as_object().unwrap();
                let always: &[&str] = match o.action {
                    OutboundAction::Send(_)
                    | OutboundAction::SendMedia(_)
                    | OutboundAction::Prompt(_) => &["reply_to"],
                    OutboundAction::React(_) => &["remove"],
                    OutboundAction::Draft(_) => &["final", "draft_id"],
                    _ => &[],
                };
                for key in always {
                    assert!(action.contains_key(*key), "{label}: {key} missing");
                }
                assert!(!action.contains_key("is_final"), "{label}");
            }
            _ => {}
        }
    }
    // The null cases really are in the examples.
    let frames = common::all();
    let interrupt_null = frames.iter().any(|(_, f)| {
        matches!(f, Frame::Interrupt(i) if i.reason.is_none())
            && encoded_object(f)["reason"] == Value::Null
    });
    assert!(interrupt_null);
    let reply_null = frames.iter().any(|(_, f)| {
        matches!(f, Frame::Outbound(o) if matches!(&o.action, OutboundAction::SendMedia(a) if a.reply_to.is_none()))
            && encoded_object(f)["action"]["reply_to"] == Value::Null
    });
    assert!(reply_null);
}

/// Every key of the encoded examples, at any depth, except inside values passed through
/// verbatim (`command_manifest`, `metadata`, `chunks`, unknown fields).
fn keys(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                out.insert(k.clone());
                if !matches!(k.as_str(), "command_manifest" | "metadata" | "chunks") {
                    keys(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

#[test]
fn camel_case_only_for_the_four_keys() {
    let mut all = BTreeSet::new();
    for (_, frame) in common::all() {
        if matches!(frame, Frame::Unknown(_)) {
            continue;
        }
        keys(&Value::Object(encoded_object(&frame)), &mut all);
    }
    let camel: BTreeSet<&str> = all
        .iter()
        .map(String::as_str)
        .filter(|k| k.chars().any(|c| c.is_ascii_uppercase()))
        .collect();
    assert_eq!(
        camel,
        BTreeSet::from(["bodyB64", "botId", "bufferId", "requestId"])
    );
    for k in &all {
        assert!(
            k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "odd key {k}"
        );
    }
    // The legacy alias is read, never written.
    assert!(!all.contains("guild_id"));
}

//! Per-chat capabilities: which descriptor governs a chat, and splitting a long reply
//! into messages that fit it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use relay_machine::gateway::{ConnectionCommand, GatewayConfig, Identity, Output, RelayMachine};
use relay_machine::wire::{LenUnit, split_text, text_len};

#[test]
fn a_chat_is_governed_by_its_platforms_descriptor_else_the_default() {
    let config = GatewayConfig {
        identities: vec![
            Identity::new("discord", "1"),
            Identity::new("telegram", "2"),
        ],
        ..GatewayConfig::default()
    };
    let mut gw = RelayMachine::new(config, 0).unwrap();
    let now = Instant::now();
    gw.connect(now).unwrap();
    assert!(matches!(
        gw.poll_output(),
        Some(Output::Command(ConnectionCommand::Dial { .. }))
    ));
    gw.on_connected(now, gw.generation());
    assert!(gw.chat_descriptor("t-1").is_none(), "no descriptor yet");
    let descriptor = |platform: &str, max: u32, unit: &str, ops: &str| {
        format!(
            r#"{{"type":"descriptor","descriptor":{{"contract_version":1,"platform":"{platform}","label":"x","max_message_length":{max},"supports_draft_streaming":false,"supports_edit":true,"supports_threads":false,"markdown_dialect":"plain","len_unit":"{unit}","supported_ops":[{ops}]}}}}"#
        ) + "\n"
    };
    gw.handle_input(now, descriptor("discord", 2000, "chars", "").as_bytes());
    gw.handle_input(
        now,
        descriptor("telegram", 4096, "utf16", r#""send","react""#).as_bytes(),
    );
    gw.handle_input(
        now,
        br#"{"type":"inbound","event":{"text":"hi","source":{"platform":"telegram","chat_id":"t-1","chat_type":"dm"}}}
"#,
    );
    // Frames are handled as the outputs are taken: take them all, as after every input.
    while gw.poll_output().is_some() {}
    let telegram = gw.chat_descriptor("t-1").unwrap();
    assert_eq!(telegram.platform, "telegram");
    assert_eq!(telegram.max_message_length, 4096);
    assert_eq!(telegram.text_len("😀"), 2);
    assert!(telegram.supports_op("react"));
    assert!(
        !telegram.supports_op("edit"),
        "an advertised list replaces the legacy set"
    );
    // A chat never seen falls back to the session default (the first descriptor).
    let default = gw.chat_descriptor("unknown").unwrap();
    assert_eq!(default.platform, "discord");
    assert_eq!(default.text_len("😀"), 1);
    assert!(default.supports_op("edit") && !default.supports_op("react"));
    // A chat on a platform the connector never described also gets the default.
    gw.handle_input(
        now,
        br#"{"type":"inbound","event":{"source":{"platform":"slack","chat_id":"s-1"}}}
"#,
    );
    assert_eq!(gw.chat_descriptor("s-1").unwrap().platform, "discord");
}

#[test]
fn splitting_never_breaks_a_character_and_prefers_line_breaks() {
    // A surrogate pair straddling the limit moves whole to the next chunk.
    assert_eq!(split_text("ab😀", 3, LenUnit::Utf16), ["ab", "😀"]);
    assert_eq!(split_text("ab😀", 3, LenUnit::Chars), ["ab😀"]);
    // A character wider than the limit gets a chunk of its own.
    assert_eq!(split_text("😀😀", 1, LenUnit::Utf16), ["😀", "😀"]);
    // Combining marks are code points of their own (never graphemes).
    assert_eq!(
        split_text("e\u{301}e\u{301}", 2, LenUnit::Chars),
        ["e\u{301}", "e\u{301}"]
    );
    // Line break first, then whitespace, when that keeps at least half the chunk.
    assert_eq!(
        split_text("one two\nthree four", 12, LenUnit::Chars),
        ["one two\n", "three four"]
    );
    assert_eq!(
        split_text("hello world foo", 12, LenUnit::Chars),
        ["hello world ", "foo"]
    );
    assert_eq!(
        split_text("a bcdefghijkl", 6, LenUnit::Chars),
        ["a bcde", "fghijk", "l"]
    );
    assert!(split_text("", 10, LenUnit::Chars).is_empty());
}

#[test]
fn split_chunks_fit_and_reassemble_exactly() {
    let alphabet = [
        "a", "é", "e\u{301}", "日本", "😀", "🚀", " ", "\n", "ok ", "𝄞",
    ];
    let mut rng = relay_machine::rng::SplitMix64::new(0x243F_6A88_85A3_08D3);
    let mut next = || rng.next_u64() as usize;
    for _ in 0..2000 {
        let len = next() % 60;
        let text: String = (0..len)
            .map(|_| alphabet[next() % alphabet.len()])
            .collect();
        let max = 1 + next() % 12;
        for unit in [LenUnit::Chars, LenUnit::Utf16] {
            let chunks = split_text(&text, max, unit);
            assert_eq!(chunks.concat(), text);
            for chunk in &chunks {
                assert!(!chunk.is_empty());
                let fits = text_len(chunk, unit) <= max;
                assert!(
                    fits || chunk.chars().count() == 1,
                    "{chunk:?} over {max} {unit:?}"
                );
            }
        }
    }
}

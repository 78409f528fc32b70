//! The codec's fast path (the hand-written reader of `inbound`, `outbound_result`,
//! `passthrough_forward` and `outbound`) decodes exactly what serde_json's general path decodes, to the
//! same frames, and leaves everything else to it. Each line below goes through both paths
//! (`fuzzing::fast_path_line` panics when they disagree); the `fast_path` fuzz target does
//! the same on mutated corpus lines.
#![cfg(feature = "fuzzing")]
#![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

#[path = "../benches/corpus/mod.rs"]
mod corpus;

use relay_machine::codec::FrameDecoder;
use relay_machine::fuzzing::{fast_path_in_message, fast_path_line};
use relay_machine::rng::SplitMix64;
use serde_json::Value;

fn corpus_lines(n: usize) -> Vec<String> {
    corpus::gen_mixed(n).lines().map(str::to_owned).collect()
}

/// Python's `json.dumps` of a string, as the reference gateway writes them.
fn py_str(s: &str) -> String {
    let mut out = String::new();
    corpus::py_str(&mut out, s);
    out
}

/// What a Python gateway answers to each corpus line, as `benches/machine.rs` writes
/// its connector-bound replies: a `send` to an inbound (with tenant metadata), a
/// `typing` to a result, a `follow_up` to a webhook; `", "` and `": "` separators.
fn outbound_lines(n: usize) -> Vec<String> {
    let mut ids = SplitMix64::new(0x0B0B);
    let mut chat = String::from("4455");
    corpus_lines(n)
        .iter()
        .map(|line| {
            let frame: Value = serde_json::from_str(line).unwrap();
            let s = |v: &Value| py_str(v.as_str().unwrap_or(""));
            let (action, platform) = match frame["type"].as_str().unwrap() {
                "inbound" => {
                    let event = &frame["event"];
                    let source = &event["source"];
                    chat = source["chat_id"].as_str().unwrap().to_owned();
                    let content = format!(
                        "Re: {} \u{2014} noted \u{2705}",
                        event["text"].as_str().unwrap()
                    );
                    let action = format!(
                        r#"{{"op": "send", "chat_id": {}, "content": {}, "reply_to": {}, "metadata": {{"scope_id": {}, "user_id": {}}}}}"#,
                        py_str(&chat),
                        py_str(&content),
                        s(&event["message_id"]),
                        s(&source["scope_id"]),
                        s(&source["user_id"]),
                    );
                    (action, source["platform"].as_str().unwrap().to_owned())
                }
                "outbound_result" => (
                    format!(r#"{{"op": "typing", "chat_id": {}}}"#, py_str(&chat)),
                    "telegram".to_owned(),
                ),
                _ => (
                    format!(
                        r#"{{"op": "follow_up", "session_key": {}, "kind": "discord.interaction_token", "content": {}, "metadata": {{}}}}"#,
                        py_str(&format!("agent:main:discord:group:{chat}")),
                        py_str("Working on it \u{2026} \u{1F680}"),
                    ),
                    "discord".to_owned(),
                ),
            };
            format!(
                r#"{{"type": "outbound", "requestId": "{:016x}{:016x}", "action": {action}, "platform": {}, "botId": "bot-1"}}"#,
                ids.next_u64(),
                ids.next_u64(),
                py_str(&platform),
            )
        })
        .collect()
}

/// Every frame of the benchmark corpus is read by the fast path, to the frame the general
/// path reads.
#[test]
fn the_corpus_takes_the_fast_path() {
    let lines = corpus_lines(5_000);
    let fast = lines
        .iter()
        .filter(|l| fast_path_line(l.as_bytes()))
        .count();
    assert_eq!(fast, lines.len());
}

/// Every connector-bound reply to the corpus (Python-style `outbound` frames) is read by
/// the fast path, to the frame the general path reads.
#[test]
fn the_replies_take_the_fast_path() {
    let lines = outbound_lines(600);
    for line in &lines {
        assert!(fast_path_line(line.as_bytes()), "not decided fast: {line}");
    }
}

/// What the fast path reads by hand line by line it reads by hand in a message of many
/// lines too, where the decoder reads each straight from the message (the reader stops at
/// the newline, and whatever it needs as text it takes from the line, not the message):
/// every line decided, no value of them left to serde_json (a reply whose text it could
/// not take from the line would still decide, its action read by serde_json, slower).
#[test]
fn lines_in_a_message_take_the_fast_path() {
    for lines in [corpus_lines(400), outbound_lines(400)] {
        let mut message = lines.join("\n");
        message.push('\n');
        assert_eq!(fast_path_in_message(message.as_bytes()), (lines.len(), 0));
        let one = format!("{}\n", lines[0]);
        assert_eq!(fast_path_in_message(one.as_bytes()), (1, 0));
    }
}

/// Bytes that change what a JSON text means.
const SPECIAL: &[u8] = b"\"\\{}[],: \t\r\x01\x7fnu0-.eE+ta\xc3\xa9\xff\x80";

/// Corpus lines with one to three random edits: each edited line either goes the general
/// way or decodes to what the general path decodes. Some must still be decided by the fast
/// path, or this would test nothing.
#[test]
fn mutated_lines_agree() {
    let mut lines = corpus_lines(400);
    lines.extend(outbound_lines(200));
    let mut rng = SplitMix64::new(0xFA57);
    let mut pick = |n: usize| usize::try_from(rng.next_u64() % n.max(1) as u64).unwrap();
    let (mut decided, mut total) = (0, 0);
    for line in &lines {
        for _ in 0..60 {
            let mut bytes = line.as_bytes().to_vec();
            for _ in 0..=pick(3) {
                if bytes.is_empty() {
                    break;
                }
                let at = pick(bytes.len());
                match pick(5) {
                    0 => {
                        bytes.remove(at);
                    }
                    1 => bytes.insert(at, SPECIAL[pick(SPECIAL.len())]),
                    2 => bytes[at] = SPECIAL[pick(SPECIAL.len())],
                    3 => {
                        // Repeat a stretch (often a key and its value).
                        let end = (at + pick(40)).min(bytes.len());
                        let stretch = bytes[at..end].to_vec();
                        bytes.splice(end..end, stretch);
                    }
                    _ => bytes.truncate(at),
                }
            }
            total += 1;
            decided += usize::from(fast_path_line(&bytes));
        }
    }
    assert!(
        decided > total / 20,
        "only {decided} of {total} decided fast"
    );
}

/// Lines written to probe each rule: escapes, surrogates, repeated and unknown keys, the
/// legacy `guild_id`, nulls, numbers, nesting, whitespace, what only serde reads.
#[test]
fn edge_cases_agree() {
    let fast = [
        r#"{"type":"inbound","event":{"text":"caf\u00e9 \ud83d\ude80 \"q\" \\ \/ \b\f\n\r\t","source":{"chat_id":"c"}}}"#,
        r#"{"type":"inbound","event":{"source":{"guild_id":"g","scope_id":null}},"bufferId":null}"#,
        r#"{"type":"inbound","event":{"source":{"scope_id":"s","guild_id":"g"}},"bufferId":""}"#,
        r#"{"type":"inbound","event":{"message_type":"sticker","context_error":null},"type":"x"}"#,
        r#"{"type":"inbound","event":{"message_type":"gif\u0021"}}"#,
        r#"{"type":"inbound","event":{"media":[{"url":"u","size":5}],"media_urls":["u"]}}"#,
        r#"{"type":"inbound","event":{"reply_to":null,"prompt_response":{"prompt_id":"p","option_id":"o"}}}"#,
        r#"{"type":"inbound","event":{"unknown":[1,-0.5e-3,1E+2,{"a":[[]]},true,false,null,"s"]}}"#,
        " \t{ \"type\" : \"inbound\" , \"event\" : { } } \r",
        r#"{"type":"outbound_result","requestId":"r\u002d1","result":{}}"#,
        r#"{"type":"outbound_result","result":{"success":true,"message_id":"m"},"requestId":"r"}"#,
        r#"{"type":"outbound_result","requestId":"r","result":{"success":false,"error":"e","x":[1]}}"#,
        r#"{"type":"passthrough_forward","forward":{"headers":[["a","b"]],"bodyB64":"aGk="}}"#,
        r#"{"type":"passthrough_forward","forward":{"bodyB64":"not base64!"},"bufferId":"b"}"#,
        r#"{"type":"passthrough_forward","forward":{"bodyB64":"aGk\u003d","profile":"p"}}"#,
        r#"{"type": "outbound", "requestId": "r1", "action": {"op": "send", "chat_id": "c", "content": "caf\u00e9 \ud83d\ude80"}}"#,
        r#"{"type":"outbound","action":{"op":"send","chat_id":"c","content":"x","reply_to":null,"metadata":{"a":"1","a":"2"}},"requestId":"r","platform":null,"botId":null}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"send","content":"x","chat_id":"c","op":"edit","extra":[1,{"k":null}]},"extra":true}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"typing","chat_id":"c","content":""}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"typing","chat_id":"c","content":null,"metadata":{}}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"follow_up","session_key":"s","kind":"k","content":"c"}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"edit","chat_id":"c","message_id":"m","content":"c"}}"#,
        // Metadata of strings is kept as its text, whatever its escapes and spacing: it
        // must read back as the map serde makes of it.
        r#"{"type":"outbound","requestId":"r","action":{"op":"send","chat_id":"c","content":"x","metadata": { "a" : "caf\u00e9 \ud83d\ude80 \n\"\\" , "b":"", "c":"\u0000" } }}"#,
        // Metadata that is not all strings, and other ops: serde on their slices.
        r#"{"type":"outbound","requestId":"r","action":{"op":"send","chat_id":"c","content":"x","metadata":{"n":1,"o":{"a":[true]}}}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"react","chat_id":"c","message_id":"m","emoji":"\u2705"}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"get_chat_info","chat_id":"c"}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"future_op","x":[1,2]}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"s\u0065nd","chat_id":"c","content":"x"}}"#,
        // `op` not first: the general path buffers the action; serde reads its slice.
        r#"{"type":"outbound","requestId":"r","action":{"chat_id":"c","op":"send","content":"x"}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"chat_id":"c","content":"x","op":"typing"}}"#,
    ];
    for line in fast {
        assert!(fast_path_line(line.as_bytes()), "not decided fast: {line}");
    }
    // Left to the general path (which accepts some and rejects others).
    let general = [
        r#"{"event":{},"type":"inbound"}"#,
        r#"{"type":"inbound"}"#,
        r#"{"type":"inbound","event":{},"event":{}}"#,
        r#"{"type":"inbound","event":{"text":"a","text":"b"}}"#,
        r#"{"type":"inbound","event":{"source":{"chat_id":"a","chat_id":"b"}}}"#,
        r#"{"type":"inbound","event":{"source":{"guild_id":"a","guild_id":"b"}}}"#,
        r#"{"type":"inbound","event":{"text":null}}"#,
        r#"{"type":"inbound","event":{"source":null}}"#,
        r#"{"type":"inbound","event":[]}"#,
        r#"{"type":"inbound","event":{"text":"\ud800"}}"#,
        r#"{"type":"inbound","event":{"text":"\ud800\u0041"}}"#,
        r#"{"type":"inbound","event":{"text":"\x"}}"#,
        "{\"type\":\"inbound\",\"event\":{\"text\":\"tab\there\"}}",
        r#"{"type":"inbound","event":{},"bufferId":7}"#,
        r#"{"type":"inbound","event":{"x":01}}"#,
        r#"{"type":"inbound","event":{"x":1.}}"#,
        r#"{"type":"inbound","event":{"x":-}}"#,
        r#"{"type":"inbound","event":{"x":[1,]}}"#,
        r#"{"type":"inbound","event":{"x":{"a":1,}}}"#,
        r#"{"type":"inbound","event":{},}"#,
        r#"{"type":"inbound","event":{}} x"#,
        r#"{"type":"inbound","event":{}}{}"#,
        r#"{"type":"inbound","event":{"te\u0078t":"a"}}"#,
        r#"{"type":"in\u0062ound","event":{}}"#,
        r#"{"type":"outbound_result","requestId":"r"}"#,
        r#"{"type":"outbound_result","requestId":5,"result":{}}"#,
        r#"{"type":"passthrough_forward","forward":{"headers":[["a","b","c"]]}}"#,
        r#"{"type":"passthrough_forward","forward":{"headers":null}}"#,
        r#"{"type":"hello","platform":"p","botId":"b"}"#,
        r#"{"type":"outbound","action":{"op":"typing","chat_id":"c"}}"#,
        r#"{"type":"outbound","requestId":"r"}"#,
        r#"{"type":"outbound","requestId":"r","requestId":"s","action":{"op":"typing","chat_id":"c"}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"typing","chat_id":"c"},"platform":"a","platform":"b"}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"typing","chat_id":"c","chat_id":"d"}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"send","chat_id":"c","content":"a","metadata":{},"metadata":{}}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"send","chat_id":"c","content":"\ud800"}}"#,
        r#"{"type":"outbound","requestId":"\udc00","action":{"op":"typing","chat_id":"c"}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"send","chat_id":"c","content":"x","metadata":{"a":"\ud800"}}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"send","chat_id":"c","content":"x","metadata":{"a":"\udc00"}}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"send","chat_id":"c","content":"x","metadata":{"a":"\ud83d\u0041"}}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"send","chat_id":"c","content":"x","metadata":{"a":"x\ud83d"}}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"send","chat_id":"c","content":"x","metadata":{"a":"\\\ud83d\\ude80"}}}"#,
        r#"{"type":"outbound","requestId":7,"action":{"op":"typing","chat_id":"c"}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"typing","chat_id":5}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"send","chat_id":"c"}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"send","chat_id":"c","content":"x","metadata":null}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"send","chat_id":"c","content":"x","metadata":[]}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"follow_up","session_key":"s","content":"c"}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"edit","chat_id":"c","content":"c"}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"typing","chat_id":"c"},"platform":1}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":5,"chat_id":"c"}}"#,
        r#"{"type":"outbound","requestId":"r","action":{"chat_id":"c"}}"#,
        r#"{"type":"outbound","requestId":"r","action":{}}"#,
        r#"{"type":"outbound","requestId":"r","action":["typing","c"]}"#,
        r#"{"type":"outbound","requestId":"r","action":null}"#,
        r#"{"type":"outbound","requestId":"r","action":{"op":"react","chat_id":"c"}}"#,
        // An escaped key anywhere, even in metadata: left to serde as a whole.
        r#"{"type":"outbound","requestId":"r","action":{"op":"send","chat_id":"c","content":"x","metadata":{"k\u0031":"v"}}}"#,
    ];
    for line in general {
        assert!(!fast_path_line(line.as_bytes()), "decided fast: {line}");
    }
    // Not UTF-8, in a value and in a key.
    for bad in [&b"\xff"[..], b"\xc3", b"\xed\xa0\x80"] {
        for template in [
            &br#"{"type":"inbound","event":{"text":"a@b"}}"#[..],
            br#"{"type":"inbound","event":{"@":"a"}}"#,
        ] {
            let at = template.iter().position(|&b| b == b'@').unwrap();
            let line = [&template[..at], bad, &template[at + 1..]].concat();
            assert!(!fast_path_line(&line), "decided fast: {line:?}");
        }
    }
    let deep = format!(
        r#"{{"type":"inbound","event":{{"x":{}1{}}}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    assert!(!fast_path_line(deep.as_bytes()));
    let deep = format!(
        r#"{{"type":"outbound","requestId":"r","action":{{"op":"send","chat_id":"c","content":"x","metadata":{{"x":{}1{}}}}}}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    assert!(!fast_path_line(deep.as_bytes()));
}

/// The fast path checks UTF-8 only where it reads it, character by character as its scan
/// meets each non-ASCII byte, instead of the whole line first: it must take exactly the
/// well-formed sequences `std::str::from_utf8` takes, wherever they sit in a string (at
/// every offset within the scan's eight-byte words, before and after an escape, in keys,
/// skipped values and the fields read by hand), and leave every other line to the
/// general path, which rejects it.
#[test]
fn utf8_is_checked_where_it_is_read() {
    let templates: [&[u8]; 8] = [
        br#"{"type":"inbound","event":{"text":"@"}}"#,
        br#"{"type":"inbound","event":{"text":"\n@"}}"#,
        br#"{"type":"inbound","event":{"text":"@\t"}}"#,
        br#"{"type":"inbound","event":{"text":"t","x@":1}}"#,
        br#"{"type":"inbound","event":{"text":"t","x":["@"]}}"#,
        br#"{"type":"inbound","event":{"text":"t","source":{"platform":"p","chat_id":"@","chat_type":"dm"}}}"#,
        br#"{"type":"outbound_result","requestId":"@","result":{"success":true}}"#,
        br#"{"type":"outbound","requestId":"r","action":{"op":"send","chat_id":"c","content":"@","metadata":{"k@":"v"}}}"#,
    ];
    let plain = |seq: &[u8]| {
        std::str::from_utf8(seq).is_ok()
            && !seq.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\')
    };
    let mut sequences: Vec<Vec<u8>> = Vec::new();
    // Every lead byte with every second byte.
    for lead in 0x80..=0xFFu8 {
        for second in 0..=0xFFu8 {
            sequences.push(vec![lead, second]);
        }
    }
    // Three and four bytes: every lead with the continuation bytes at the edges of the
    // ranges the lead allows.
    let edges = [0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF];
    for lead in 0xE0..=0xFFu8 {
        for a in edges {
            for b in edges {
                sequences.push(vec![lead, a, b]);
                if lead >= 0xF0 {
                    for c in edges {
                        sequences.push(vec![lead, a, b, c]);
                    }
                }
            }
        }
    }
    // Truncated at the end of the string.
    sequences.extend([&b"\xc3"[..], b"\xe2\x82", b"\xf0\x9f\x98"].map(<[u8]>::to_vec));
    let mut decided = 0;
    for (i, seq) in sequences.iter().enumerate() {
        // A different offset within the scan's words for each sequence.
        let pad = "a".repeat(i % 11);
        let seq = [pad.as_bytes(), seq, b"z"].concat();
        for template in templates {
            let at = template.iter().position(|&b| b == b'@').unwrap();
            let line = [&template[..at], &seq, &template[at + 1..]].concat();
            let fast = fast_path_line(&line);
            assert_eq!(fast, plain(&seq), "{line:?}");
            decided += usize::from(fast);
        }
    }
    assert!(decided > 10_000, "{decided}");
}

/// A body is decoded straight from the line when it is plain base64 up to its quote, and
/// read as a string otherwise: both ways give what the general path gives, the body's
/// error included, whatever follows it.
#[test]
fn bodies_agree() {
    let bodies = [
        r#""""#,
        r#""QUJD""#,
        r#""QUJDRA==""#,
        r#""QU\/D""#,
        r#""\u0051UJD""#,
        r#""QUJ""#,
        r#""QUJD=""#,
        r#""QUJE""#,
        r#""QU JD""#,
        "\"QU\u{e9}D\"",
        r#""QUJD\"""#,
        r#""QUJD"#,
        r#"null"#,
        r#"7"#,
    ];
    let mut decided = 0;
    for body in bodies {
        for tail in ["", r#","bufferId":"b-1""#] {
            let line = format!(
                r#"{{"type":"passthrough_forward","forward":{{"platform":"discord","botId":"1","method":"POST","path":"/i","headers":[],"bodyB64":{body}}}{tail}}}"#
            );
            decided += usize::from(fast_path_line(line.as_bytes()));
            let mut message = format!("{line}\n{line}\n");
            message.push_str(
                r#"{"type":"outbound_result","requestId":"r","result":{"success":true}}"#,
            );
            message.push('\n');
            // Read from a message, the body's quote search may not run into the next line:
            // the decoder gives what it gives for the same bytes pushed borrowed (each line
            // split off first).
            let (lines, _) = fast_path_in_message(message.as_bytes());
            assert!(lines == 3 || lines == 0, "{body}: {lines}");
            let decode = |shared: bool| {
                let mut decoder = FrameDecoder::new();
                if shared {
                    decoder.push_bytes(bytes::Bytes::from(message.clone()));
                } else {
                    decoder.push(message.as_bytes());
                }
                std::iter::from_fn(|| decoder.next_frame()).collect::<Vec<_>>()
            };
            assert_eq!(decode(true), decode(false), "{body}");
        }
    }
    assert!(decided >= 16, "{decided}");
}

/// Escaped strings are decoded from the line's bytes, each raw non-ASCII character
/// checked where it is met: raw characters beside escapes, surrogate pairs, decoded
/// lengths about `Str`'s inline limit (23 bytes) are read fast, to what the general path
/// reads; invalid UTF-8 or a lone surrogate after an escape, and a string the line's end
/// cuts, are left to the general path. In a message of many lines, the decoder never
/// reads on into the next line.
#[test]
fn escaped_strings_agree() {
    let send = |content: &[u8]| {
        [
            &br#"{"type":"outbound","requestId":"r","action":{"op":"send","chat_id":"c","content":""#[..],
            content,
            br#"","metadata":{"k":"v"}},"platform":"discord","botId":"b"}"#,
        ]
        .concat()
    };
    let inbound = |text: &[u8]| {
        [
            &br#"{"type":"inbound","event":{"text":""#[..],
            text,
            br#"","source":{"chat_id":"c"}}}"#,
        ]
        .concat()
    };
    let mut fast: Vec<Vec<u8>> = [
        "\u{e9}\\u00e9\u{e9}",
        "\\u00e9\u{e9}\\n\u{65e5}",
        "\u{1F680}\\ud83d\\ude80\u{1F680}",
        "\\ud83d\\ude80",
        "a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\u{e9}",
        "\\u0000\\u001F",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    // Decoded to 21..=26 bytes, the escape first or last.
    for n in 19..=24 {
        let a = "a".repeat(n);
        fast.push(format!("\\u00e9{a}").into_bytes());
        fast.push(format!("{a}\\u00e9").into_bytes());
        fast.push(format!("{a}\\n\u{e9}").into_bytes());
    }
    for content in &fast {
        for line in [send(content), inbound(content)] {
            let text = String::from_utf8_lossy(&line);
            assert!(fast_path_line(&line), "not decided fast: {text}");
        }
    }
    let general: [&[u8]; 9] = [
        b"\\u00e9\xff",
        b"\\n\xc3",
        b"\\u00e9\xc3\x28",
        b"\\ud83d\\ude80\xed\xa0\x80",
        b"\\n\xf0\x9f\x98",
        "\u{e9}\\ud800".as_bytes(),
        "\u{e9}\\ud800\\u0041".as_bytes(),
        "\\u00e9\u{e9}\\x".as_bytes(),
        b"\\u00e9\x01",
    ];
    for content in general {
        for line in [send(content), inbound(content)] {
            let text = String::from_utf8_lossy(&line);
            assert!(!fast_path_line(&line), "decided fast: {text}");
        }
    }
    // A string the line's end cuts, with the next line's text closing it: the line is
    // not decided (its action goes to serde_json, which fails too).
    let whole = send(b"\\u00e9 cut");
    let at = whole.windows(3).position(|w| w == b"cut").unwrap() + 3;
    let cut = [&whole[..at], b"\n", &send(b"x"), b"\n"].concat();
    assert_eq!(fast_path_in_message(&cut).0, 0);
    let mut message = Vec::new();
    for content in &fast {
        message.extend_from_slice(&send(content));
        message.push(b'\n');
    }
    assert_eq!(fast_path_in_message(&message), (fast.len(), 0));
    for message in [cut, message] {
        let decode = |shared: bool| {
            let mut decoder = FrameDecoder::new();
            if shared {
                decoder.push_bytes(bytes::Bytes::from(message.clone()));
            } else {
                decoder.push(&message);
            }
            std::iter::from_fn(|| decoder.next_frame()).collect::<Vec<_>>()
        };
        assert_eq!(decode(true), decode(false));
    }
}

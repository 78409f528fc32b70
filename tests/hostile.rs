//! Hostile lines: every bad line is one typed error (or a documented decoded value) and the
//! stream goes on.
//!
//! The table is `fixtures/hostile.jsonl`, a row a line: `label`, an optional `note`, the
//! line as `line` (a string, or parts: strings and `{"repeat": s, "times": n}`) or as
//! `line_hex` (bytes that are not UTF-8), and what it must give, `expect`: `nothing` (a
//! blank line), `frame TYPE`, or an error `KIND (FRAME_TYPE) at OFFSET`, with `(FRAME_TYPE)`
//! when the error names the frame's type and `anywhere` for an offset anywhere in the line.
//! What each line decodes to in full (frames, messages, salvage) is the snapshot
//! `snapshots/hostile__hostile_lines.snap`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;

use relay_machine::codec::{DecodeError, FrameDecoder};
use relay_machine::wire::{BufferId, Frame, InboundAck};
use serde::Deserialize;
use serde_json::Value;

/// A well-formed line fed after every hostile one: the stream must survive.
const SENTINEL: &[u8] = br#"{"type":"inbound_ack","bufferId":"after"}"#;

fn sentinel() -> Frame {
    Frame::from(InboundAck {
        buffer_id: BufferId::from("after"),
    })
}

type Item = Result<Frame, Box<DecodeError>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    label: String,
    #[allow(dead_code)] // for the reader
    note: Option<String>,
    line: Option<Value>,
    line_hex: Option<String>,
    expect: String,
}

/// A `line`: a string, or the concatenation of its parts.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().map(text).collect(),
        Value::Object(o) if o.len() == 2 => {
            let times = usize::try_from(o["times"].as_u64().unwrap()).unwrap();
            o["repeat"].as_str().unwrap().repeat(times)
        }
        other => panic!("not a line or a part of one: {other}"),
    }
}

/// The rows of the fixture, with their lines' bytes.
fn rows() -> Vec<(Row, Vec<u8>)> {
    let rows: Vec<_> = include_str!("fixtures/hostile.jsonl")
        .lines()
        .map(|l| {
            let row: Row = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            let bytes = match (&row.line, &row.line_hex) {
                (Some(line), None) => text(line).into_bytes(),
                (None, Some(hex)) => (0..hex.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                    .collect(),
                _ => panic!("{}: one of line and line_hex", row.label),
            };
            (row, bytes)
        })
        .collect();
    assert_eq!(
        rows.len(),
        119,
        "rows lost or added? update the count if meant"
    );
    rows
}

/// What the decoder gave for `row`, as its `expect` says it, given the line number and
/// the stream offset of the line's first byte; with every other problem appended.
fn seen(row: &Row, len: usize, got: Option<&Item>, line: u64, start: u64) -> String {
    let e = match got {
        None => return "nothing".to_owned(),
        Some(Ok(frame)) => return format!("frame {}", frame.frame_type()),
        Some(Err(e)) => e,
    };
    let named = e.frame_type.as_ref().map(|t| format!(" ({t})"));
    let mut s = format!("{}{}", e.kind, named.unwrap_or_default());
    match e.offset.checked_sub(start) {
        Some(o) if o <= len as u64 && row.expect.ends_with(" anywhere") => s += " anywhere",
        Some(o) => write!(s, " at {o}").unwrap(),
        None => write!(s, " at {} before the line", e.offset).unwrap(),
    }
    if e.line != line {
        write!(s, ", on line {} (not {line})", e.line).unwrap();
    }
    // The rendered error names the line, the offset and the kind; the message says what.
    let prefix = format!("line {}, byte {}: {}", e.line, e.offset, e.kind);
    if e.message.is_empty() || !e.to_string().starts_with(&prefix) {
        write!(s, ", rendered as {:?}", e.to_string()).unwrap();
    }
    s
}

/// A line for a reader: printable ASCII as is, anything else escaped, long lines cut.
fn show(line: &[u8]) -> String {
    let escape = |c: char| match c {
        ' ' | '!'..='~' => c.to_string(),
        _ => c.escape_default().to_string(),
    };
    let mut s = String::new();
    for chunk in line.utf8_chunks() {
        s.extend(chunk.valid().chars().map(escape));
        s.extend(chunk.invalid().iter().map(|b| format!("\\x{b:02x}")));
    }
    match s.len() {
        0 => "(empty)".to_owned(),
        121.. => format!("{}… ({} bytes)", &s[..100], line.len()),
        _ => s,
    }
}

fn report(failures: &[String]) {
    let n = failures.len();
    assert!(n == 0, "{n} rows failed:\n{}", failures.join("\n"));
}

/// `line`, a newline, the sentinel and a newline.
fn then_sentinel(line: &[u8]) -> Vec<u8> {
    [line, b"\n", SENTINEL, b"\n"].concat()
}

#[test]
fn each_hostile_line_alone_then_a_good_line() {
    let (mut failures, mut snapshot) = (Vec::new(), String::new());
    for (n, (row, line)) in rows().iter().enumerate() {
        let label = &row.label;
        let mut decoder = FrameDecoder::new();
        decoder.push(&then_sentinel(line));
        let mut items: Vec<_> = std::iter::from_fn(|| decoder.next_frame()).collect();
        assert_eq!(items.pop(), Some(Ok(sentinel())), "{label}: stream died");
        assert!(items.len() <= 1, "{label}: extra output {items:?}");
        assert_eq!(decoder.buffered_len(), 0, "{label}");
        let seen = seen(row, line.len(), items.first(), 1, 0);
        if seen != row.expect {
            failures.push(format!("{label}: {seen} (expected {})", row.expect));
        }
        // The snapshot: the outcome, and the frame in full or the error's byte and words.
        let detail = match items.first() {
            Some(Ok(frame)) => format!("\n{frame:#?}").replace('\n', "\n     "),
            Some(Err(e)) => {
                let o = usize::try_from(e.offset).unwrap();
                let byte = line.get(o..=o).filter(|_| !seen.ends_with(" anywhere"));
                let byte = byte.map(|b| format!(" ({})", show(b)));
                let salvage = e.salvage.as_ref().map(|s| format!(" salvage {s:?}"));
                let (byte, salvage) = (byte.unwrap_or_default(), salvage.unwrap_or_default());
                format!("{byte}{salvage}: {}", e.message)
            }
            None => String::new(),
        };
        let (n, line) = (n + 1, show(line));
        writeln!(snapshot, "{n:3}. {label}\n     {line}\n  -> {seen}{detail}").unwrap();
    }
    report(&failures);
    insta::assert_snapshot!("hostile_lines", snapshot);
}

#[test]
fn all_hostile_lines_in_one_stream() {
    let rows = rows();
    let (mut bytes, mut starts, mut failures) = (Vec::new(), Vec::new(), Vec::new());
    for (_, line) in &rows {
        starts.push(bytes.len() as u64);
        bytes.extend_from_slice(&then_sentinel(line));
    }
    let mut decoder = FrameDecoder::new();
    decoder.push(&bytes);
    let mut items = std::iter::from_fn(|| decoder.next_frame());
    for (i, ((row, line), start)) in rows.iter().zip(starts).enumerate() {
        let label = &row.label;
        if row.expect != "nothing" {
            let got = items.next();
            let seen = seen(row, line.len(), got.as_ref(), 2 * i as u64 + 1, start);
            if seen != row.expect {
                failures.push(format!("{label}: {seen} (expected {})", row.expect));
            }
            // A frame is exactly the one of the line alone (the snapshot's).
            if let Some(Ok(frame)) = got {
                let mut alone = FrameDecoder::new();
                alone.push(&then_sentinel(line));
                assert_eq!(alone.next_frame(), Some(Ok(frame)), "{label}");
            }
        }
        assert_eq!(items.next(), Some(Ok(sentinel())), "{label}: stream died");
    }
    assert_eq!(items.next(), None);
    report(&failures);
}

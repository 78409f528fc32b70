//! `examples/decode.rs`: one output line per non-blank input line, canonical frames and
//! `{"error":{"kind","line","message"}}` objects, the same however stdin is written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs the example with `input` written to its stdin in chunks of the given sizes
/// (cycling), flushing after each.
fn run_decode(input: &[u8], chunk_sizes: &[usize]) -> Output {
    let mut child = Command::new(env!("CARGO"))
        .args(["run", "-q", "--example", "decode"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cargo run --example decode");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let sizes = chunk_sizes.to_vec();
    let writer = std::thread::spawn(move || {
        let mut rest = &input[..];
        for size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at((*size).min(rest.len()));
            stdin.write_all(chunk).unwrap();
            stdin.flush().unwrap();
            rest = tail;
        }
        // Dropping stdin closes it: end of input.
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output
}

fn input() -> Vec<u8> {
    let mut input = Vec::new();
    input.extend_from_slice(b"{\"type\": \"inbound_ack\", \"bufferId\": \"b-17\"}\n"); // 1
    input.extend_from_slice(b"\n"); // 2: blank
    input.extend_from_slice(b"not json\n"); // 3
    input.extend_from_slice(b"{\"type\":\"going_idle\"}\r\n"); // 4
    input.extend_from_slice(b"[1]\n"); // 5
    input.extend_from_slice(b"\xff\n"); // 6
    input.extend_from_slice(b"  \t \n"); // 7: blank
    input.extend_from_slice(
        br#"{"type": "hello", "platform": "caf\u00e9", "botId": "1"}"#, // 8
    );
    input.push(b'\n');
    input.extend_from_slice(b"{\"type\":\"presence\",\"a\":1}\n"); // 9
    input.extend_from_slice(
        br#"{"type":"passthrough_forward","forward":{"headers":[["a","b","c"]]}}"#, // 10
    );
    input.push(b'\n');
    assert_eq!(input.len(), 240);
    // 11: longer than the example's 1 MiB limit.
    input.extend_from_slice(br#"{"type":"presence","pad":""#);
    input.extend(std::iter::repeat_n(b'x', 1 << 20));
    input.extend_from_slice(b"\"}\n");
    input.extend_from_slice(b"{\"type\":\"going_idle_ack\"}\n"); // 12
    input.extend_from_slice(br#"{"type":"interrupt","session_key":"k"}"#); // 13: no newline
    input
}

const EXPECTED: &str = r#"{"type":"inbound_ack","bufferId":"b-17"}
{"error":{"kind":"invalid_json","line":3,"message":"line 3, byte 46: invalid_json: expected ident"}}
{"type":"going_idle"}
{"error":{"kind":"not_an_object","line":5,"message":"line 5, byte 77: not_an_object: frame is not a JSON object"}}
{"error":{"kind":"invalid_utf8","line":6,"message":"line 6, byte 81: invalid_utf8: invalid utf-8 sequence of 1 bytes from index 0"}}
{"type":"hello","platform":"café","botId":"1"}
{"type":"presence","a":1}
{"error":{"kind":"invalid_frame","line":10,"message":"line 10, byte 232: invalid_frame (passthrough_forward): trailing characters"}}
{"error":{"kind":"frame_too_long","line":11,"message":"line 11, byte 240: frame_too_long: line exceeds 1048576 bytes"}}
{"type":"going_idle_ack"}
{"type":"interrupt","session_key":"k","reason":null}
"#;

fn check(output: &Output, expected: &str, how: &str) {
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    assert!(
        output.status.success(),
        "{how}: {:?}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout, expected, "{how}");
}

#[test]
fn decodes_a_mixed_stream_the_same_however_it_is_written() {
    let input = input();
    let non_blank = input
        .split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(|b| b" \t\r".contains(b)))
        .count();
    assert_eq!(EXPECTED.lines().count(), non_blank);
    for line in EXPECTED.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        if let Some(error) = value.get("error") {
            let error = error.as_object().unwrap();
            assert_eq!(
                error.keys().collect::<Vec<_>>(),
                ["kind", "line", "message"]
            );
        } else {
            assert!(value.get("type").is_some_and(serde_json::Value::is_string));
        }
    }

    let at_once = run_decode(&input, &[input.len()]);
    check(&at_once, EXPECTED, "one write");
    let tiny = run_decode(&input, &[1, 2, 3, 1, 5, 7, 11, 4096]);
    check(&tiny, EXPECTED, "tiny writes");
    assert_eq!(tiny.stdout, at_once.stdout);
}

#[test]
fn empty_and_blank_input_give_no_output() {
    let output = run_decode(b"\n \r\n\t\n", &[1]);
    check(&output, "", "blank lines");
}

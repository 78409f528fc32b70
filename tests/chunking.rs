//! Any chunking of a stream yields the same frames and the same errors (kinds, line
//! numbers, offsets), and the decoder never holds more than its limit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::wildcard_enum_match_arm
)]

mod common;

use relay_machine::codec::{DecodeError, DecodeErrorKind, FrameDecoder, encode};
use relay_machine::rng::SplitMix64;
use relay_machine::wire::Frame;

type Item = Result<Frame, Box<DecodeError>>;

/// Lines that do not decode (and three that do, with unusual content), with assorted
/// endings; blank lines among them.
const HOSTILE: &[&[u8]] = &[
    b"not json",
    b"\xff\xfe",
    b"[1,2]",
    b"   \t",
    br#"{"type":5}"#,
    br#"{"type":"inbound","event":{"text":5}}"#,
    br#"{"type":"passthrough_forward","forward":{"headers":[["a","b","c"]]}}"#,
    "{\"type\":\"inbound\",\"event\":{\"text\":\"caf\u{e9} \u{1F680}\"}}".as_bytes(),
    b"{\"type\":\"inbound\",\"event\":{\"text\":\"caf\xc3\xa9 \xf0\x9f\x9a\"}}",
    br#"{"x":1,"type":"presence","pad":"................................................................................................................................................................................................................................................................................................................................................................"}"#,
    b"",
    br#"{"type":"hello","platform":"\ud800","botId":"b"}"#,
];

/// `examples` encoded, with the hostile lines, blank lines and `\r\n` endings mixed in,
/// and a last line without its newline.
fn stream_of(examples: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..examples.len().max(HOSTILE.len()) {
        if let Some(frame) = examples.get(i) {
            let line = encode(frame);
            if i % 3 == 1 {
                out.extend_from_slice(&line[..line.len() - 1]);
                out.extend_from_slice(b"\r\n");
            } else {
                out.extend_from_slice(&line);
            }
        }
        if let Some(bad) = HOSTILE.get(i) {
            out.extend_from_slice(bad);
            out.extend_from_slice(if i % 2 == 0 { b"\n" } else { b"\r\n" });
        }
        if i % 5 == 0 {
            out.extend_from_slice(b"\n");
        }
    }
    out.extend_from_slice(br#"{"type":"going_idle_ack"}"#);
    out
}

/// Every example frame, mixed with the hostile lines.
fn stream() -> Vec<u8> {
    let all: Vec<Frame> = common::all().into_iter().map(|(_, f)| f).collect();
    stream_of(&all)
}

/// A shorter stream for the quadratic test: every hostile line, and examples that cover
/// non-ASCII text, a binary body, unknown types and ops, and lines over the small limit.
fn compact_stream() -> Vec<u8> {
    let wanted = [
        "hello/telegram",
        "descriptor/telegram",
        "inbound/live-dm",
        "inbound_ack",
        "interrupt/no-reason",
        "going_idle",
        "passthrough_forward",
        "passthrough_forward/live-binary",
        "unknown/presence",
        "send",
        "draft/final",
        "unknown-op/pin",
    ];
    let examples: Vec<Frame> = common::all()
        .into_iter()
        .filter(|(label, _)| wanted.contains(label))
        .map(|(_, f)| f)
        .collect();
    assert_eq!(examples.len(), wanted.len());
    let s = stream_of(&examples);
    let lines = s.split(|&b| b == b'\n');
    assert!(lines.filter(|l| l.len() > LIMITS[1]).count() >= 3);
    s
}

/// Feeds `chunks` one after the other, draining after each push (or only at the end),
/// checks the buffer bound, then finishes the stream.
fn decode_chunks<'a>(
    max: usize,
    chunks: impl IntoIterator<Item = &'a [u8]>,
    drain_each: bool,
) -> Vec<Item> {
    let mut decoder = FrameDecoder::with_max_frame_len(max);
    let mut items = Vec::new();
    for chunk in chunks {
        decoder.push(chunk);
        assert!(
            decoder.buffered_len() <= max,
            "buffered {} > {max}",
            decoder.buffered_len()
        );
        if drain_each {
            items.extend(std::iter::from_fn(|| decoder.next_frame()));
        }
    }
    decoder.finish();
    items.extend(std::iter::from_fn(|| decoder.next_frame()));
    assert_eq!(decoder.buffered_len(), 0);
    items
}

/// The limits exercised: the default, and one that makes several lines too long.
const LIMITS: [usize; 2] = [relay_machine::codec::DEFAULT_MAX_FRAME_LEN, 300];

fn reference(stream: &[u8], max: usize) -> Vec<Item> {
    decode_chunks(max, [stream], true)
}

#[test]
fn the_reference_decoding_is_what_we_expect() {
    let s = stream();
    let all = common::all();
    // Default limit: every example, in order, and one error per hostile line.
    let items = reference(&s, LIMITS[0]);
    let frames: Vec<&Frame> = items.iter().filter_map(|i| i.as_ref().ok()).collect();
    let mut expected: Vec<&Frame> = all.iter().map(|(_, f)| f).collect();
    let last = Frame::GoingIdleAck;
    // Beyond the examples: the hostile-list lines that decode ("café 🚀", the unknown
    // type, the lone surrogate) and the last line.
    let errors: Vec<&Box<DecodeError>> = items.iter().filter_map(|i| i.as_ref().err()).collect();
    assert_eq!(frames.len(), expected.len() + 4, "{frames:#?}");
    expected.push(&last);
    assert_eq!(frames.last(), Some(&&last));
    let kinds: Vec<DecodeErrorKind> = errors.iter().map(|e| e.kind).collect();
    use DecodeErrorKind::*;
    assert_eq!(
        kinds,
        [
            InvalidJson,
            InvalidUtf8,
            NotAnObject,
            TypeNotString,
            InvalidFrame,
            InvalidFrame,
            InvalidUtf8,
        ]
    );
    // Line numbers and offsets point into the stream.
    for e in &errors {
        let start = usize::try_from(e.offset).unwrap();
        let line_no = s[..start].iter().filter(|&&b| b == b'\n').count() + 1;
        assert_eq!(e.line, line_no as u64, "{e}");
    }
    // A small limit turns long lines into FrameTooLong at their first byte.
    let small = reference(&s, LIMITS[1]);
    let too_long: Vec<&Box<DecodeError>> = small
        .iter()
        .filter_map(|i| i.as_ref().err())
        .filter(|e| e.kind == FrameTooLong)
        .collect();
    assert!(too_long.len() >= 5, "{}", too_long.len());
    for e in too_long {
        let start = usize::try_from(e.offset).unwrap();
        assert!(start == 0 || s[start - 1] == b'\n', "{e}");
        let len = s[start..]
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(s.len() - start);
        assert!(len > LIMITS[1], "{e}");
    }
}

#[test]
fn one_byte_at_a_time() {
    let s = stream();
    for max in LIMITS {
        let expected = reference(&s, max);
        assert_eq!(decode_chunks(max, s.chunks(1), true), expected, "max {max}");
        assert_eq!(
            decode_chunks(max, s.chunks(1), false),
            expected,
            "max {max}"
        );
    }
}

#[test]
fn every_single_cut_point() {
    let s = compact_stream();
    for max in LIMITS {
        let expected = reference(&s, max);
        for cut in 0..=s.len() {
            let (a, b) = s.split_at(cut);
            assert_eq!(
                decode_chunks(max, [a, b], cut % 2 == 0),
                expected,
                "max {max}, cut at {cut}"
            );
        }
    }
}

/// A draw in `0..n` from the crate's splitmix64.
fn below(rng: &mut SplitMix64, n: usize) -> usize {
    usize::try_from(rng.next_u64() % n as u64).unwrap()
}

#[test]
fn random_chunkings() {
    let s = stream();
    let mut rng = SplitMix64::new(0x5EED_C0DE_CAFE_F00D);
    for max in LIMITS {
        let expected = reference(&s, max);
        for round in 0..300 {
            // Mostly tiny chunks, sometimes empty ones, sometimes several lines at once.
            let mut chunks = Vec::new();
            let mut at = 0;
            while at < s.len() {
                let len = match below(&mut rng, 10) {
                    0 => 0,
                    1..=6 => 1 + below(&mut rng, 8),
                    7 | 8 => 1 + below(&mut rng, 200),
                    _ => 1 + below(&mut rng, 4000),
                };
                let end = (at + len).min(s.len());
                chunks.push(&s[at..end]);
                at = end;
            }
            assert_eq!(
                decode_chunks(max, chunks.iter().copied(), round % 3 != 0),
                expected,
                "max {max}, round {round}"
            );
        }
    }
}

#[test]
fn a_character_split_across_chunks_decodes_intact() {
    let text = "a\u{e9}\u{1F680}\u{800}z \u{10FFFF}";
    let line = format!(
        r#"{{"type":"inbound","event":{{"text":"{text}","source":{{"user_name":"{text}"}}}}}}"#
    );
    let bytes = format!("{line}\n").into_bytes();
    for cut in 0..=bytes.len() {
        let mut decoder = FrameDecoder::new();
        decoder.push(&bytes[..cut]);
        decoder.push(&bytes[cut..]);
        let Some(Ok(Frame::Inbound(inbound))) = decoder.next_frame() else {
            panic!("cut at {cut}")
        };
        assert_eq!(inbound.event.text, text, "cut at {cut}");
        assert_eq!(inbound.event.source.user_name.as_deref(), Some(text));
        assert_eq!(decoder.next_frame(), None);
    }
    // Every byte in its own chunk, each non-ASCII character split in all its places.
    let mut decoder = FrameDecoder::new();
    for b in &bytes {
        decoder.push(std::slice::from_ref(b));
    }
    assert!(matches!(decoder.next_frame(), Some(Ok(Frame::Inbound(i))) if i.event.text == text));
}

#[test]
fn buffer_stays_bounded_on_a_huge_line() {
    let max = 1024;
    let mut decoder = FrameDecoder::with_max_frame_len(max);
    let mut rng = SplitMix64::new(7);
    let mut fed = 0usize;
    decoder.push(br#"{"type":"presence","pad":""#);
    while fed < 4 << 20 {
        let len = 1 + below(&mut rng, 3000);
        decoder.push(&vec![b'x'; len]);
        fed += len;
        assert!(decoder.buffered_len() <= max);
    }
    decoder.push(b"\"}\n{\"type\":\"going_idle\"}\n");
    let e = decoder.next_frame().unwrap().unwrap_err();
    assert_eq!(
        (e.kind, e.line, e.offset),
        (DecodeErrorKind::FrameTooLong, 1, 0)
    );
    assert_eq!(decoder.next_frame(), Some(Ok(Frame::GoingIdle)));
    assert_eq!(decoder.next_frame(), None);
}

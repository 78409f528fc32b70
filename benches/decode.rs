//! Decoder and encoder throughput on the benchmark corpus (docs/performance.md).
//!
//! `cargo bench --bench decode`. The delivery modes are those of
//! `shared/bench/README.md`: the same bytes, cut into WebSocket messages differently.
//! Every bench pushes each message, drains every decoded frame, and asserts the count.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod corpus;

use std::sync::LazyLock;

use divan::counter::{BytesCount, ItemsCount};
use divan::{Bencher, black_box};
use relay_machine::codec::{FrameDecoder, encode};
use relay_machine::wire::Frame;

fn main() {
    divan::main();
}

/// `mixed_100k.ndjson`.
static MIXED: LazyLock<String> = LazyLock::new(|| corpus::gen_mixed(corpus::N_FRAMES));
/// Its lines, each with its `\n`.
static LINES: LazyLock<Vec<&[u8]>> =
    LazyLock::new(|| MIXED.as_bytes().split_inclusive(|&b| b == b'\n').collect());
/// `big_1mib.ndjson`.
static BIG: LazyLock<Vec<u8>> = LazyLock::new(|| big(corpus::BIG_TOTAL));
/// The mixed corpus, decoded (input of the encode bench).
static FRAMES: LazyLock<Vec<Frame>> = LazyLock::new(|| {
    let mut decoder = FrameDecoder::new();
    decoder.push(MIXED.as_bytes());
    std::iter::from_fn(|| decoder.next_frame())
        .map(Result::unwrap)
        .collect()
});

/// `gen_big(total)` with its newline: one frame of exactly `total` bytes.
fn big(total: usize) -> Vec<u8> {
    let mut line = corpus::gen_big(total).into_bytes();
    line.push(b'\n');
    line
}

/// Pushes every message and drains the decoder after each, as a connection would;
/// returns the number of frames, all of which must decode.
fn decode<'a>(mut decoder: FrameDecoder, messages: impl Iterator<Item = &'a [u8]>) -> usize {
    let mut frames = 0;
    for message in messages {
        decoder.push(message);
        while let Some(frame) = decoder.next_frame() {
            black_box(frame.expect("corpus frame decodes"));
            frames += 1;
        }
    }
    frames
}

/// Benches decoding `messages()` with a fresh decoder per iteration.
fn bench_decode<'a, I>(
    bencher: Bencher,
    decoder: fn() -> FrameDecoder,
    bytes: usize,
    frames: usize,
    messages: impl Fn() -> I + Sync,
) where
    I: Iterator<Item = &'a [u8]>,
{
    bencher
        .counter(BytesCount::new(bytes))
        .counter(ItemsCount::new(frames))
        .bench(|| assert_eq!(decode(decoder(), messages()), frames));
}

const SLOW: u32 = 20; // samples for the 45 MB benches (one iteration each)

/// a: one frame per message (100,000 messages).
#[divan::bench(sample_count = SLOW, sample_size = 1)]
fn a_frame_per_message(bencher: Bencher) {
    let lines = &*LINES;
    bench_decode(
        bencher,
        FrameDecoder::new,
        MIXED.len(),
        corpus::N_FRAMES,
        || lines.iter().copied(),
    );
}

/// b: 64 consecutive frames per message (1,563 messages).
#[divan::bench(sample_count = SLOW, sample_size = 1)]
fn b_64_frames_per_message(bencher: Bencher) {
    let text = MIXED.as_bytes();
    let mut messages = Vec::new();
    let mut start = 0;
    for group in LINES.chunks(64) {
        let len: usize = group.iter().map(|l| l.len()).sum();
        messages.push(&text[start..start + len]);
        start += len;
    }
    assert_eq!(messages.len(), 1_563);
    bench_decode(
        bencher,
        FrameDecoder::new,
        text.len(),
        corpus::N_FRAMES,
        || messages.iter().copied(),
    );
}

/// c: the 1 MiB frame in 256 messages of 4,096 bytes.
#[divan::bench]
fn c_1mib_in_4k_messages(bencher: Bencher) {
    let big = &*BIG;
    bench_decode(bencher, FrameDecoder::new, big.len(), 1, || {
        big.chunks(4096)
    });
}

/// c-control: the 1 MiB frame in one message.
#[divan::bench]
fn c_control_1mib_whole(bencher: Bencher) {
    let big = &*BIG;
    bench_decode(bencher, FrameDecoder::new, big.len(), 1, || {
        std::iter::once(&big[..])
    });
}

/// d: the whole mixed text cut every 4,096 bytes, regardless of frame boundaries.
#[divan::bench(sample_count = SLOW, sample_size = 1)]
fn d_mixed_in_4k_messages(bencher: Bencher) {
    let text = MIXED.as_bytes();
    bench_decode(
        bencher,
        FrameDecoder::new,
        text.len(),
        corpus::N_FRAMES,
        || text.chunks(4096),
    );
}

/// Linear framing: a frame of `mib` MiB in 4 KiB messages costs what it costs whole.
#[divan::bench_group(sample_count = SLOW, sample_size = 1)]
mod quadratic_check {
    use super::*;

    fn large() -> FrameDecoder {
        FrameDecoder::with_max_frame_len(32 << 20)
    }

    #[divan::bench(args = [4, 16])]
    fn in_4k_messages(bencher: Bencher, mib: usize) {
        let frame = big(mib << 20);
        bench_decode(bencher, large, frame.len(), 1, || frame.chunks(4096));
    }

    #[divan::bench(args = [4, 16])]
    fn whole(bencher: Bencher, mib: usize) {
        let frame = big(mib << 20);
        bench_decode(bencher, large, frame.len(), 1, || {
            std::iter::once(&frame[..])
        });
    }
}

/// Encoding the decoded mixed corpus back, one `Bytes` transmit per frame.
#[divan::bench(sample_count = SLOW, sample_size = 1)]
fn encode_mixed(bencher: Bencher) {
    let frames = &*FRAMES;
    bencher
        .counter(BytesCount::new(MIXED.len()))
        .counter(ItemsCount::new(frames.len()))
        .bench(|| {
            let bytes: usize = frames.iter().map(|f| black_box(encode(f)).len()).sum();
            assert_eq!(bytes, MIXED.len());
        });
}

/// Not our code: `serde_json::Value` of each line (after UTF-8 validation, as the decoder
/// does), the Rust analogue of Python's bare `json.loads`. A floor for mode a.
#[divan::bench(sample_count = SLOW, sample_size = 1)]
fn serde_json_value_per_line(bencher: Bencher) {
    let lines = &*LINES;
    bencher
        .counter(BytesCount::new(MIXED.len()))
        .counter(ItemsCount::new(lines.len()))
        .bench(|| {
            for line in lines {
                let text = std::str::from_utf8(line).unwrap();
                black_box(serde_json::from_str::<serde_json::Value>(text).unwrap());
            }
        });
}

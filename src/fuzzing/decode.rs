//! The codec targets: `decode` (arbitrary bytes, arbitrary chunkings) and `roundtrip`
//! (generated frames).

use arbitrary::Unstructured;

use super::{decode_all, generate};
use crate::codec::{DEFAULT_MAX_FRAME_LEN, DecodeError, DecodeErrorKind, FrameDecoder, encode};
use crate::rng::SplitMix64;
use crate::wire::Frame;

type Item = Result<Frame, Box<DecodeError>>;

/// Chunk sizes from a seeded splitmix64, so one input byte picks a whole cut pattern and the
/// rest of the input stays the stream itself.
struct Cuts(SplitMix64);

impl Cuts {
    fn next(&mut self, max: usize) -> usize {
        let z = self.0.next_u64();
        let max = u64::try_from(max.max(1)).unwrap_or(u64::MAX);
        usize::try_from(z % max).unwrap_or(0) + 1
    }
}

/// The decoder on arbitrary bytes.
///
/// Input: one byte choosing the line limit, one byte seeding a cut pattern, then the
/// stream. Invariants:
/// - no panic;
/// - split-invariance: the stream pushed whole and pushed in seeded random pieces (taking
///   frames between pushes) gives the same items;
/// - each item is what that line gives on its own (line numbers and offsets placed in the
///   stream), and an over-long line gives exactly one `FrameTooLong`;
/// - `buffered_len() <= max_frame_len` after every push;
/// - every decoded frame is a fixed point of encode → decode (one normalising pass).
pub fn decode(data: &[u8]) {
    let [limit, seed, stream @ ..] = data else {
        return;
    };
    let max_frame_len = match limit % 4 {
        0 => usize::from(limit / 4) + 1,
        1 => 64,
        2 => 1024,
        _ => DEFAULT_MAX_FRAME_LEN,
    };

    let whole = decode_all(stream, max_frame_len);

    let mut decoder = FrameDecoder::with_max_frame_len(max_frame_len);
    let mut pieces = Vec::new();
    let mut cuts = Cuts(SplitMix64::new(u64::from(*seed)));
    let biggest = match seed % 3 {
        0 => 1,
        1 => 8,
        _ => 257,
    };
    let mut rest = stream;
    while !rest.is_empty() {
        let (piece, tail) = rest.split_at(cuts.next(biggest).min(rest.len()));
        // Borrowed and shared pushes alternate with the cut pattern: the order and the
        // frames must not depend on which a piece came as.
        if cuts.next(2) == 1 {
            decoder.push(piece);
        } else {
            decoder.push_bytes(bytes::Bytes::copy_from_slice(piece));
        }
        assert!(
            decoder.buffered_len() <= max_frame_len,
            "buffered {} > limit {max_frame_len}",
            decoder.buffered_len()
        );
        pieces.extend(std::iter::from_fn(|| decoder.next_frame()));
        rest = tail;
    }
    decoder.finish();
    pieces.extend(std::iter::from_fn(|| decoder.next_frame()));
    assert_eq!(pieces, whole, "chunking changed the items");

    assert_eq!(
        whole,
        line_by_line(stream, max_frame_len),
        "lines interfere"
    );

    for frame in whole.iter().filter_map(|item| item.as_ref().ok()) {
        let again = decode_all(&encode(frame), usize::MAX);
        assert_eq!(
            again,
            [Ok(frame.clone())],
            "a decoded frame is not a fixed point"
        );
    }
}

/// The oracle: each line decoded by a fresh decoder, placed at its line and offset.
fn line_by_line(stream: &[u8], max_frame_len: usize) -> Vec<Item> {
    let mut items = Vec::new();
    let mut start = 0u64;
    for (index, line) in stream.split(|&b| b == b'\n').enumerate() {
        let number = index as u64 + 1;
        if line.len() > max_frame_len {
            let item = decode_all(line, max_frame_len);
            assert!(
                matches!(item.as_slice(), [Err(e)] if e.kind == DecodeErrorKind::FrameTooLong),
                "an over-long line must give exactly one FrameTooLong: {item:?}"
            );
            items.extend(item.into_iter().map(|i| place(i, number, start)));
        } else {
            let item = decode_all(line, max_frame_len);
            assert!(item.len() <= 1, "one line, one item at most");
            items.extend(item.into_iter().map(|i| place(i, number, start)));
        }
        start += line.len() as u64 + 1;
    }
    items
}

fn place(item: Item, line: u64, start: u64) -> Item {
    item.map_err(|mut e| {
        e.line = line;
        e.offset += start;
        e
    })
}

/// Generated frames survive encode → decode unchanged, and several of them written as one
/// stream and cut anywhere decode to the same frames in order.
///
/// The generator only makes canonical values (see [`generate`]), so the comparison is plain
/// equality. Each encoding is one line ending in its only `\n`, is valid UTF-8 and is
/// stable (re-encoding the decoded frame gives the same bytes).
pub fn roundtrip(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(count) = u.int_in_range(1..=4usize) else {
        return;
    };
    let mut frames = Vec::new();
    for _ in 0..count {
        match generate::frame(&mut u) {
            Ok(frame) => frames.push(frame),
            Err(_) => break,
        }
    }
    let mut stream = Vec::new();
    for frame in &frames {
        let line = encode(frame);
        assert_eq!(line.last(), Some(&b'\n'), "no newline: {frame:?}");
        assert_eq!(
            memchr::memchr_iter(b'\n', &line).count(),
            1,
            "a newline inside the line: {frame:?}"
        );
        assert!(std::str::from_utf8(&line).is_ok(), "not UTF-8");
        let decoded = decode_all(&line, line.len());
        assert_eq!(decoded, [Ok(frame.clone())], "decode(encode(f)) != f");
        assert_eq!(encode(frame), line, "encoding is not stable");
        stream.extend_from_slice(&line);
    }

    let mut decoder = FrameDecoder::with_max_frame_len(stream.len().max(1));
    let mut rest = &stream[..];
    let mut cut = u.arbitrary::<u64>().unwrap_or(0);
    while !rest.is_empty() {
        let at = usize::try_from(cut % 64).unwrap_or(0) + 1;
        cut = cut.rotate_left(7) ^ 0x5bd1_e995;
        let (piece, tail) = rest.split_at(at.min(rest.len()));
        decoder.push(piece);
        rest = tail;
    }
    let decoded: Vec<Item> = std::iter::from_fn(|| decoder.next_frame()).collect();
    let expected: Vec<Item> = frames.into_iter().map(Ok).collect();
    assert_eq!(decoded, expected, "a stream of frames cut anywhere");
}

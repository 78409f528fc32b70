//! The bodies of the fuzz targets (feature `fuzzing`).
//!
//! Each target is a function of the raw fuzzer input that panics when an invariant of
//! design.md §5 breaks. The cargo-fuzz crate in `fuzz/` wraps each in a three-line
//! `fuzz_target!`, and `tests/fuzz_corpus.rs` replays every committed corpus entry and
//! crash artifact through the same functions on stable, so a crash once found stays a
//! regression test. [`run`] dispatches by target name, as the replay test needs.
//!
//! The targets are oracles, not library code: panicking is how they report a broken
//! invariant, so the crate's no-panic lints are lifted here and only here.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::wildcard_enum_match_arm
)]

mod connector;
mod decode;
mod fast_path;
mod gateway;
pub mod generate;
mod passthrough;
#[cfg(feature = "auth")]
mod token;

pub use connector::connector_ops;
pub use decode::{decode, roundtrip};
pub use fast_path::{fast_path, fast_path_in_message, fast_path_line};
pub use gateway::gateway_ops;
pub use passthrough::passthrough;
#[cfg(feature = "auth")]
pub use token::token;

/// The name of every target, as in `fuzz/fuzz_targets/<name>.rs` and `fuzz/corpus/<name>/`.
pub const TARGETS: &[&str] = &[
    "decode",
    "roundtrip",
    "gateway_ops",
    "connector_ops",
    "passthrough",
    #[cfg(feature = "auth")]
    "token",
    "fast_path",
];

/// Runs target `name` on `data`; `false` when there is no such target.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "decode" => decode(data),
        "roundtrip" => roundtrip(data),
        "gateway_ops" => gateway_ops(data),
        "connector_ops" => connector_ops(data),
        "passthrough" => passthrough(data),
        "fast_path" => fast_path(data),
        #[cfg(feature = "auth")]
        "token" => token(data),
        _ => return false,
    }
    true
}

/// Decodes `bytes` as one complete stream (with `finish`), for oracles.
fn decode_all(
    bytes: &[u8],
    max_frame_len: usize,
) -> Vec<Result<crate::wire::Frame, Box<crate::codec::DecodeError>>> {
    let mut decoder = crate::codec::FrameDecoder::with_max_frame_len(max_frame_len);
    decoder.push(bytes);
    decoder.finish();
    std::iter::from_fn(|| decoder.next_frame()).collect()
}

/// Checks that `line` is one well-formed transmit (one frame, one `\n` at the end, valid
/// UTF-8, a fixed point of decode → encode) and returns its frame.
fn transmitted_frame(line: &[u8]) -> crate::wire::Frame {
    assert_eq!(line.last(), Some(&b'\n'), "transmit without its newline");
    assert_eq!(
        memchr::memchr_iter(b'\n', line).count(),
        1,
        "one transmit, one line"
    );
    assert!(std::str::from_utf8(line).is_ok(), "transmit is not UTF-8");
    let mut items = decode_all(line, line.len());
    assert_eq!(items.len(), 1, "one transmit, one frame: {line:?}");
    let frame = items
        .pop()
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("a machine wrote a line it cannot read: {line:?}"));
    assert_eq!(
        crate::codec::encode(&frame),
        line,
        "transmit is not a fixed point"
    );
    frame
}

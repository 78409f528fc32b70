//! The Rust port of the benchmark corpus generator (`benches/corpus`) reproduces the
//! Python one (`shared/bench/gen_corpus.py`) byte for byte. The expected digests were
//! computed with the Python generator.
#![cfg(feature = "auth")] // sha2 comes with the default `auth` feature
#![allow(clippy::unwrap_used, clippy::panic, clippy::wildcard_enum_match_arm)]

#[path = "../benches/corpus/mod.rs"]
mod corpus;

use relay_machine::codec::{FrameDecoder, encode_into};
use relay_machine::wire::Frame;
use sha2::{Digest, Sha256};

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn mixed_prefix_matches_python() {
    // python3 -c 'import gen_corpus as g; print("".join(l + "\n" for l in g.gen_mixed(2000)))'
    let text = corpus::gen_mixed(2000);
    assert_eq!(text.len(), 892_315);
    assert_eq!(
        sha256_hex(text.as_bytes()),
        "19581778a0a417e1042c3755254adfaee3bd576c35f6190cc5c6db28cfe23330"
    );
}

#[test]
fn big_frame_matches_python() {
    let cases = [
        (
            corpus::BIG_TOTAL, // big_1mib.ndjson
            "2b13e9221df4f465362a1dd2c92af5c2f4acc7d5d3a2f07ec1758d1a1a1bc65e",
        ),
        // Every remainder of the padding arithmetic.
        (
            1000,
            "7afe52b8afc9153325e13c29d1ddc89e2dda3e288baff6aa5e8066a4dcb568cb",
        ),
        (
            1001,
            "a80e548a794de6f99806e0bd149e3db3ebc1d2a9c51ad1cbeca4273645e41e51",
        ),
        (
            1002,
            "2bfb27ea20709ecc53466ae162b590f42064f0ba55cff093611fcc6e0b3e271a",
        ),
        (
            1003,
            "4b96c5a5289e917a38c33eb627f9d6d63892d31658294bf3e640b8c44b53accd",
        ),
    ];
    for (total, digest) in cases {
        let mut line = corpus::gen_big(total);
        line.push('\n');
        assert_eq!(line.len(), total);
        assert_eq!(sha256_hex(line.as_bytes()), digest, "gen_big({total})");
    }
}

/// The whole 45 MB corpus; slow in a debug build, so run it in release:
/// `cargo test --release --test corpus -- --ignored`.
#[test]
#[ignore = "45 MB: run with --release --ignored"]
fn full_mixed_matches_python() {
    let text = corpus::gen_mixed(corpus::N_FRAMES);
    assert_eq!(text.len(), 45_782_157);
    assert_eq!(
        sha256_hex(text.as_bytes()),
        "22a7e13a9d13ffc6ede80efd09168f483880d3a51d03346dd6c9f9a799b33a2b"
    );
}

/// What the benches rely on: every generated line decodes, to the expected type, and
/// re-encodes to the same bytes.
#[test]
fn corpus_decodes_and_reencodes() {
    let mut text = corpus::gen_mixed(2000);
    text.push_str(&corpus::gen_big(corpus::BIG_TOTAL));
    text.push('\n');
    let mut decoder = FrameDecoder::new();
    decoder.push(text.as_bytes());
    let mut reencoded = Vec::new();
    let (mut inbound, mut results, mut forwards) = (0, 0, 0);
    while let Some(frame) = decoder.next_frame() {
        let frame = frame.unwrap();
        encode_into(&frame, &mut reencoded);
        match frame {
            Frame::Inbound(_) => inbound += 1,
            Frame::OutboundResult(_) => results += 1,
            Frame::PassthroughForward(f) => {
                assert!(f.forward.body.is_ok());
                forwards += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(inbound + results + forwards, 2001);
    assert!(
        reencoded == text.as_bytes(),
        "re-encoding changed the bytes"
    );
    assert!(inbound > 0 && results > 0 && forwards > 1);
}

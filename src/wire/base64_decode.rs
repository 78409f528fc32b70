//! The fast path of strict standard base64 decoding: decoding passthrough bodies was 8% of
//! the gateway's receive path in the profile of docs/performance.md.
//!
//! Table-driven in the style of modp_b64 / Chromium: one table per position in a quad of
//! four symbols, each holding the symbol's six bits already shifted to where they land in
//! the quad's three output bytes, so that a quad decodes with four lookups and three ORs.
//! A byte outside the alphabet maps to a value with bits above the low 24 set; those bits
//! survive the ORs, so the loop ORs every quad into one accumulator and checks it once at
//! the end instead of branching per quad.
//!
//! It only ever says "here are the bytes" or "not sure": every error, with its kind and
//! offset, is left to the `base64` crate (the caller's slow path), so the fast path need
//! not reproduce its error reporting, only its notion of valid input, exactly.

/// What every byte outside the alphabet maps to: bits above the low 24 set.
const BAD: u32 = 0xFF00_0000;

/// The six-bit value of a standard-alphabet symbol, or `None`.
const fn sextet(byte: u8) -> Option<u32> {
    let value = match byte {
        b'A'..=b'Z' => byte - b'A',
        b'a'..=b'z' => byte - b'a' + 26,
        b'0'..=b'9' => byte - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(value as u32)
}

/// The table for position `pos` (0..4) of a quad.
///
/// The quad's 24 bits, big-endian, are `s0 s1 s2 s3` (six bits each); the output bytes are
/// kept little-endian in a `u32` (byte 0 in bits 0..8), so each sextet is split where it
/// straddles a byte boundary.
#[expect(clippy::indexing_slicing, reason = "the loop keeps `byte` below 256")]
const fn table(pos: usize) -> [u32; 256] {
    let mut table = [BAD; 256];
    let mut byte = 0;
    while byte < 256 {
        if let Some(s) = sextet(byte as u8) {
            table[byte] = match pos {
                // Byte 0: s0 (high six bits), then the top two bits of s1.
                0 => s << 2,
                1 => (s >> 4) | ((s & 0x0F) << 12),
                // Byte 1: the low four bits of s1, then the top four bits of s2.
                2 => ((s >> 2) << 8) | ((s & 0x03) << 22),
                // Byte 2: the low two bits of s2, then s3.
                _ => s << 16,
            };
        }
        byte += 1;
    }
    table
}

/// Symbols in the first position of a quad.
static D0: [u32; 256] = table(0);
/// Symbols in the second position of a quad.
static D1: [u32; 256] = table(1);
/// Symbols in the third position of a quad.
static D2: [u32; 256] = table(2);
/// Symbols in the fourth position of a quad.
static D3: [u32; 256] = table(3);

/// `table`'s entry for `byte`.
#[expect(clippy::indexing_slicing, reason = "a `u8` is below 256")]
fn at(table: &[u32; 256], byte: u8) -> u32 {
    table[usize::from(byte)]
}

/// A full quad: its three bytes in the low 24 bits, little-endian, or bits above 24 set
/// (a symbol outside the alphabet, or not four bytes, which the callers never give).
fn quad(src: &[u8]) -> u32 {
    let &[a, b, c, d] = src else {
        return BAD;
    };
    at(&D0, a) | at(&D1, b) | at(&D2, c) | at(&D3, d)
}

/// The decoded bytes of `text` if it is valid strict, padded, standard base64 (exactly
/// what the `base64` crate's `STANDARD` engine accepts), or `None` for anything else.
///
/// The vector's length and capacity are the decoded length, so `Bytes` takes it over
/// without reallocating.
pub(super) fn decode(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() % 4 != 0 {
        return None;
    }
    let Some((body, &last)) = text.split_last_chunk::<4>() else {
        return Some(Vec::new());
    };
    let (last, last_len) = last_quad(last)?;
    let body_len = body.len() / 4 * 3;
    // Zero-filled and then overwritten: filling the vector by pushing instead (no zeroing)
    // was slower, each push checking the capacity.
    let mut out = vec![0; body_len + last_len];
    let (out_body, out_last) = out.split_at_mut_checked(body_len)?;
    if decode_quads(body, out_body) >> 24 != 0 {
        return None;
    }
    for (dst, src) in out_last.iter_mut().zip(last.to_le_bytes()) {
        *dst = src;
    }
    Some(out)
}

/// Decodes the whole quads of `text` into `out`, three bytes for four symbols, and returns
/// the OR of all their values: bits above the low 24 are set if any symbol was not in the
/// alphabet (then what was written is garbage).
fn decode_quads(text: &[u8], out: &mut [u8]) -> u32 {
    let mut seen = 0;
    // Four quads at a time, so that their 12 bytes are written with two stores rather
    // than a store per byte (measured faster than one or two quads at a time, and than
    // eight).
    let text16 = text.chunks_exact(16);
    let rest = text16.remainder();
    let mut out12 = out.chunks_exact_mut(12);
    for (src, dst) in text16.zip(&mut out12) {
        let mut quads = [0; 4];
        for (v, src) in quads.iter_mut().zip(src.chunks_exact(4)) {
            *v = quad(src);
        }
        let [v0, v1, v2, v3] = quads;
        seen |= v0 | v1 | v2 | v3;
        // The four 24-bit values side by side, little-endian: 64 bits, then 32.
        let low = u64::from(v0) | (u64::from(v1) << 24) | (u64::from(v2) << 48);
        let high = (v2 >> 16) | (v3 << 8);
        let (dst_low, dst_high) = dst.split_at_mut(8);
        dst_low.copy_from_slice(&low.to_le_bytes());
        dst_high.copy_from_slice(&high.to_le_bytes());
    }
    for (src, dst) in rest
        .chunks_exact(4)
        .zip(out12.into_remainder().chunks_exact_mut(3))
    {
        let v = quad(src);
        seen |= v;
        let [b0, b1, b2, _] = v.to_le_bytes();
        dst.copy_from_slice(&[b0, b1, b2]);
    }
    seen
}

/// The last quad, which may end in `=` or `==`: its bytes (little-endian) and how many
/// there are, or `None` if it is not canonical.
///
/// Padding canonical means `xx==` or `xxx=`, nothing else; the bits of the last symbol
/// that encode no output byte must be zero (the `base64` crate's `InvalidLastSymbol`).
/// Both checks fold into one: the bits of every byte that is not output must be zero,
/// which they also are not for a byte outside the alphabet.
fn last_quad([a, b, c, d]: [u8; 4]) -> Option<(u32, usize)> {
    let (v, len) = match (c, d) {
        (b'=', b'=') => (at(&D0, a) | at(&D1, b), 1),
        (_, b'=') => (at(&D0, a) | at(&D1, b) | at(&D2, c), 2),
        _ => (quad(&[a, b, c, d]), 3),
    };
    (v >> (8 * len) == 0).then_some((v, len))
}

/// Differential tests against the `base64` crate, which the fast path must agree with
/// exactly.
#[cfg(test)]
mod tests {
    #![allow(clippy::indexing_slicing, clippy::panic)]
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::decode;
    use crate::rng::SplitMix64;

    /// The contract with the `base64` crate: the fast path gives bytes exactly when
    /// `STANDARD.decode` does, the same bytes, in a vector with no spare capacity; and it
    /// gives up on everything `STANDARD.decode` refuses (which then reports the error).
    fn agrees(text: &[u8]) {
        match (decode(text), STANDARD.decode(text)) {
            (Some(got), Ok(want)) => {
                assert_eq!(got, want, "{:?}", text.escape_ascii().to_string());
                assert_eq!(got.capacity(), got.len(), "spare capacity");
            }
            (None, Err(_)) => {}
            (got, want) => panic!(
                "{:?}: fast path {got:?}, base64 crate {want:?}",
                text.escape_ascii().to_string()
            ),
        }
    }

    /// The 64 symbols of the standard alphabet, in value order.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    /// Every text of each length in `lens` over `bytes`.
    fn every_text(bytes: &[u8], lens: std::ops::RangeInclusive<usize>) {
        for len in lens {
            // An odometer over indices into `bytes`.
            let mut digits = vec![0; len];
            let mut text = vec![bytes[0]; len];
            loop {
                agrees(&text);
                let Some(pos) = digits.iter().rposition(|&d| d + 1 < bytes.len()) else {
                    break;
                };
                digits[pos] += 1;
                text[pos] = bytes[digits[pos]];
                for i in pos + 1..len {
                    digits[i] = 0;
                    text[i] = bytes[0];
                }
            }
        }
    }

    /// Short texts over bytes of every class: symbols from each range of the alphabet
    /// (chosen so that their low bits, which the trailing-bits check looks at, vary),
    /// padding, the URL-safe symbols, whitespace, NUL and non-ASCII bytes.
    #[test]
    fn every_short_text() {
        let every_class = b"AHZbz09+/=-_ \n\x00\x80\xff";
        every_text(every_class, 0..=5);
        // Longer texts over fewer bytes, or the test would take an hour: symbols with their
        // low bits clear (`A`, `Q` is 16, `w` 48) and set (`H`, `/`), padding, and two
        // bytes outside the alphabet.
        every_text(b"AQwH/=-\x80", 6..=8);
    }

    /// Every byte in every position of valid texts of one to nine quads, padded each way:
    /// the last quad, each quad of the four-at-a-time loop and of its remainder.
    #[test]
    fn every_substitution() {
        for len in 1..=27 {
            let body: Vec<u8> = (0..len).map(|i| (i * 0x5b + 0xf8) as u8).collect();
            let text = STANDARD.encode(&body).into_bytes();
            agrees(&text);
            for pos in 0..text.len() {
                for byte in 0..=255 {
                    let mut text = text.clone();
                    text[pos] = byte;
                    agrees(&text);
                }
            }
        }
    }

    /// Every pair of symbols before `==` and every triple before `=`, after no quad and
    /// after one: the last symbol's unused bits must be zero (`InvalidLastSymbol`).
    #[test]
    fn every_last_quad() {
        for prefix in [&b""[..], b"QUJD"] {
            for &a in ALPHABET {
                for &b in ALPHABET {
                    agrees(&[prefix, &[a, b, b'=', b'=']].concat());
                    for &c in ALPHABET {
                        agrees(&[prefix, &[a, b, c, b'=']].concat());
                    }
                }
            }
        }
    }

    /// Random bodies of every size up to 3000 bytes, encoded by the `base64` crate, decode
    /// back to themselves.
    #[test]
    fn random_round_trips() {
        let mut rng = SplitMix64::new(64);
        for _ in 0..3000 {
            let len = rng.between(0, 3000) as usize;
            let body: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            let text = STANDARD.encode(&body);
            assert_eq!(
                decode(text.as_bytes()).as_deref(),
                Some(&body[..]),
                "{text}"
            );
            agrees(text.as_bytes());
        }
    }
}

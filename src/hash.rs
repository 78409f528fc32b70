//! A fast seeded hasher for the gateway's per-frame tables (chat routes, handed deliveries,
//! pending requests), in the style of rustc's FxHash.
//!
//! SipHash, the standard library's default, spent several percent of the gateway's receive
//! path hashing short ids. These keys are short strings from an authenticated peer, and
//! every table is bounded, so a multiply-rotate hash is enough (byte strings go in sixteen
//! bytes to a multiply, folded through a full 128-bit product); the state starts from a
//! seed derived from the machine's seed so that colliding keys cannot be computed
//! offline for every process alike.

use std::hash::{BuildHasher, Hasher};

/// The FxHash multiplier (a 64-bit odd constant with well-spread bits).
const K: u64 = 0xf135_7aea_2e62_a9c5;

/// Builds [`FxHasher`]s that all start from one seed.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SeededFx(u64);

impl SeededFx {
    /// Hashers for a machine seeded with `seed`. The seed is mixed (splitmix64's
    /// finaliser) rather than drawn from the machine's generator, which would shift every
    /// request id that follows.
    pub(crate) fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Self(z ^ (z >> 31))
    }
}

impl BuildHasher for SeededFx {
    type Hasher = FxHasher;

    fn build_hasher(&self) -> FxHasher {
        FxHasher {
            // Never 0 for the default seed: a zero state would let a first chunk of zero
            // bytes zero the product.
            state: self.0 ^ 0x9e37_79b9_7f4a_7c15,
            // The byte rounds' second operand: from the seed too, so that no chunk of a
            // key is known to zero a product (and erase the state) in every process.
            key: self.0.rotate_left(32) ^ K2,
        }
    }
}

/// The second multiplier of byte rounds (the fractional digits of π, odd).
const K2: u64 = 0x243f_6a88_85a3_08d3;

/// The low and high halves of the full 128-bit product of `a` and `b`, xored: every bit
/// of each operand reaches the middle bits, and one multiply takes two words.
fn fold(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

/// The little-endian word of the eight bytes at `at` (0 past the end; callers read
/// inside the slice).
fn word(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_le_bytes)
}

/// The little-endian half-word of the four bytes at `at` (0 past the end).
fn half(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, |b| u64::from(u32::from_le_bytes(b)))
}

/// One hashing. Integers go in FxHash-style, a rotate, xor and multiply each; byte
/// strings sixteen bytes to a multiply (two words folded through a full product), the
/// tail read as whole words that overlap what came before rather than copied out byte by
/// byte: a chat id (18 bytes) is two multiplies, not three plus a copy of its tail.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FxHasher {
    state: u64,
    key: u64,
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.state = (self.state.rotate_left(5) ^ word).wrapping_mul(K);
    }

    /// Folds in the 16 bytes `a`, `b`.
    fn round(&mut self, a: u64, b: u64) {
        self.state = fold(a ^ self.state, b ^ self.key);
    }

    /// All but the last 1 to 32 bytes of `bytes` (over 32 of them), in two independent
    /// lanes of 16 bytes each per step, so consecutive multiplies do not wait on each
    /// other; returns the last 32 bytes, for [`write`](Hasher::write)'s tail. Out of line:
    /// the short keys of the tables inline the rest of `write`.
    #[inline(never)]
    fn lanes<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        let len = bytes.len();
        let mut other = FxHasher {
            state: self.state.rotate_left(32) ^ K,
            key: self.key.rotate_left(17),
        };
        let body = bytes.get(..(len - 1) / 32 * 32).unwrap_or_default();
        for chunk in body.chunks_exact(32) {
            self.round(word(chunk, 0), word(chunk, 8));
            other.round(word(chunk, 16), word(chunk, 24));
        }
        self.state = fold(self.state ^ other.state.rotate_left(23), self.key ^ K);
        bytes.get(len.saturating_sub(32)..).unwrap_or_default()
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let len = bytes.len();
        // The length goes into the first round: "a" and "a\0" stay apart, and so do
        // strings whose overlapping reads would otherwise see the same words.
        let tagged = (len as u64).rotate_right(8);
        if len <= 16 {
            let (a, b) = if len >= 8 {
                (word(bytes, 0), word(bytes, len - 8))
            } else if len >= 4 {
                (half(bytes, 0), half(bytes, len - 4))
            } else {
                // 0 to 3 bytes: the first, middle and last cover them all.
                let byte = |at: usize| bytes.get(at).copied().map_or(0, u64::from);
                let a = if len == 0 {
                    0
                } else {
                    byte(0) << 16 | byte(len / 2) << 8 | byte(len - 1)
                };
                (a, 0)
            };
            self.round(a, b ^ tagged);
            return;
        }
        self.state ^= tagged;
        let tail = if len > 32 { self.lanes(bytes) } else { bytes };
        // The last 17 to 32 bytes, as two rounds of 16 that may overlap.
        let end = tail.len();
        self.round(word(tail, 0), word(tail, 8));
        self.round(word(tail, end - 16), word(tail, end - 8));
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // The low bits pick the bucket: fold the well-mixed high bits into them.
        self.state ^ (self.state >> 29)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_keys_hash_alike_and_seeds_differ() {
        let a = SeededFx::new(1);
        let b = SeededFx::new(2);
        assert_eq!(a.hash_one("chat-1"), a.hash_one("chat-1"));
        assert_ne!(a.hash_one("chat-1"), a.hash_one("chat-2"));
        assert_ne!(a.hash_one("chat-1"), b.hash_one("chat-1"));
        assert_ne!(a.hash_one("a"), a.hash_one("a\0"));
    }

    fn bytes_hash(seed: &SeededFx, bytes: &[u8]) -> u64 {
        let mut hasher = seed.build_hasher();
        hasher.write(bytes);
        hasher.finish()
    }

    /// Every length takes its own path through the short, two-round and two-lane reads,
    /// whose words overlap: a change to any one byte of any length must reach the hash,
    /// and runs of zeros of different lengths must differ.
    #[test]
    fn every_byte_of_every_length_counts() {
        for seed in [SeededFx::default(), SeededFx::new(7)] {
            let mut zeros = std::collections::HashSet::new();
            for len in 0..=130usize {
                assert!(
                    zeros.insert(bytes_hash(&seed, &vec![0; len])),
                    "zeros {len}"
                );
                let base: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
                let hash = bytes_hash(&seed, &base);
                for at in 0..len {
                    let mut changed = base.clone();
                    changed[at] ^= 0x10;
                    assert_ne!(hash, bytes_hash(&seed, &changed), "len {len}, byte {at}");
                }
            }
        }
    }
}

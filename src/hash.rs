//! A fast seeded hasher for the gateway's per-frame tables (chat routes, handed deliveries,
//! pending requests), in the style of rustc's FxHash.
//!
//! SipHash, the standard library's default, spent several percent of the gateway's receive
//! path hashing short ids. These keys are short strings from an authenticated peer, and
//! every table is bounded, so a multiply-rotate hash is enough; the state starts from a
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
        FxHasher(self.0)
    }
}

/// One hashing: eight bytes at a time, each folded in by a rotate, xor and multiply.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            // The length keeps "a\0" and "a" apart.
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
        }
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
        self.0 ^ (self.0 >> 29)
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
}

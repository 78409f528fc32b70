//! The crate's only source of randomness: splitmix64 from a caller-given seed, so that the
//! same seed and the same inputs give byte-identical outputs.

/// A small, fast, seedable generator (splitmix64). Not cryptographic: request ids only
/// need to be unique per connection and backoff jitter only needs to spread a fleet.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi` (modulo bias is irrelevant at these ranges).
    pub(crate) fn between(&mut self, lo: u64, hi: u64) -> u64 {
        match (hi - lo.min(hi)).checked_add(1) {
            Some(span) => lo + self.next_u64() % span,
            None => self.next_u64(),
        }
    }

    /// 32 lowercase hex characters, the shape of the reference's `uuid4().hex`.
    pub(crate) fn hex32(&mut self) -> String {
        format!("{:016x}{:016x}", self.next_u64(), self.next_u64())
    }
}

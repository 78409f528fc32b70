//! The crate's only source of randomness: [`SplitMix64`] from a caller-given seed, so that
//! the same seed and the same inputs give byte-identical outputs.
//!
//! Public so that there is one generator, not one per file: the benchmark corpus generator
//! (`benches/corpus`, a byte-for-byte port of the Python one) and the tests that need
//! reproducible pseudo-random input draw from this type instead of writing their own.

/// A small, fast, seedable pseudo-random generator: splitmix64 (Steele, Lea and Flood;
/// the seeding generator of `java.util.SplittableRandom` and of xoshiro).
///
/// Deterministic, **not cryptographic**: its output is predictable from a few values and
/// must never be used for secrets or tokens. The gateway uses it where that does not
/// matter: request ids only need to be unique per connection and backoff jitter only needs
/// to spread a fleet. The sequence for a given seed is fixed; benchmark corpora and test
/// inputs depend on it.
///
/// ```
/// use relay_machine::rng::SplitMix64;
///
/// let mut rng = SplitMix64::new(0);
/// assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
/// ```
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

/// The name the gateway code knows the generator by.
pub(crate) type Rng = SplitMix64;

impl SplitMix64 {
    /// A generator whose sequence is determined by `seed` alone.
    #[must_use]
    pub const fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
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

//! The simulator's random numbers: SplitMix64, small enough (8 bytes) to keep one per vehicle, and
//! defined here rather than borrowed from `rand`'s algorithms so that a seed gives the same fleet
//! and the same behaviour on every build, whatever `rand` version resolves.

use rand::RngCore;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimRng(u64);

impl SimRng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// An independent stream for `label` (a vehicle number, a purpose) under the same seed.
    pub fn derive(seed: u64, label: u64) -> Self {
        let mut rng = Self(seed ^ label.wrapping_mul(0xD605_BBB5_8C8A_BE91));
        rng.next_u64();
        rng
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform index below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }

    /// Uniform below `n` (n > 0); the modulo bias is irrelevant at the sizes used here.
    pub fn next_u64_below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A random (version 4 shaped) UUID.
    pub fn uuid(&mut self) -> uuid::Uuid {
        let mut bytes = [0u8; 16];
        self.fill_bytes(&mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }
}

impl RngCore for SimRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

//! The operating system's randomness as a [`rand_core`] generator, through aws-lc-rs.
//!
//! Everything in this crate that needs randomness takes `&mut impl CryptoRng`, so tests and
//! vectors pass a seeded generator and real use passes [`SystemRng`].

use rand_core::{CryptoRng, RngCore};

/// Randomness from aws-lc-rs's `SystemRandom` (the operating system's generator).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemRng;

impl RngCore for SystemRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        // The OS generator failing is not something any caller could recover from, and
        // continuing with unfilled bytes would be far worse than stopping.
        #[allow(clippy::expect_used)]
        aws_lc_rs::rand::fill(dst).expect("the operating system's random generator failed");
    }
}

impl CryptoRng for SystemRng {}

//! Secret values shared between two contacts. Both zeroize on drop, compare in constant time and
//! print as `CheckKey(..)` in `Debug`; there is no `Display` (`docs/PROTOCOL.md` §8).

use core::fmt;

use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A per-contact check key (the paper's client-specific check string, IV.2).
///
/// Each identity issues one check key to each contact, inside the messages it sends to that
/// contact. The contact then authenticates every entry it sends back with an HMAC under that key
/// (the `check` field). Only the holder of the contact's private key can read the key, so a valid
/// check proves the sender; both sides know the key, so the proof convinces nobody else.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct CheckKey([u8; 32]);

impl CheckKey {
    /// Length in bytes.
    pub const LEN: usize = 32;

    /// Draws a fresh key.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut k = [0u8; 32];
        rng.fill_bytes(&mut k);
        CheckKey(k)
    }

    /// Wraps stored key bytes (for the client's database).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        CheckKey(bytes)
    }

    /// The key bytes, for storing in the client's encrypted database. Never log them.
    pub fn export_bytes(&self) -> [u8; 32] {
        self.0
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl ConstantTimeEq for CheckKey {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for CheckKey {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}
impl Eq for CheckKey {}

impl fmt::Debug for CheckKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CheckKey(..)")
    }
}

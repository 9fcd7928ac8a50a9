//! Proof of work (`docs/PROTOCOL.md` §9): hashcash over SHA-256, bound to the entry's sealed
//! bytes.
//!
//! `digest = SHA-256("deaddrop/1 pow" || sealed)`, `work = SHA-256(digest || stamp_be64)`; the
//! stamp is valid at difficulty `d` when `work` begins with at least `d` zero bits. Verifying
//! costs one pass of SHA-256 over the entry and one block; solving costs about `2^d` blocks.
//! The spec explains why hashcash rather than Equi-X.

use crate::entry::{Entry, Stamp};
use crate::kdf::{label, sha256};

/// The highest difficulty a ledger may ask for. At 40 bits a solve takes days; nothing sane
/// asks more, and a client refuses more rather than spin forever.
pub const MAX_BITS: u8 = 40;

/// The digest of an entry's sealed bytes that the stamp is bound to.
pub fn entry_digest(entry: &Entry) -> [u8; 32] {
    sha256(&[&label("pow"), entry.sealed()])
}

/// The number of leading zero bits of `work(digest, stamp)`.
pub fn work_bits(digest: &[u8; 32], stamp: Stamp) -> u32 {
    leading_zero_bits(&sha256(&[digest, &stamp.0.to_be_bytes()]))
}

/// True when the entry's stamp meets `bits`. Zero bits always passes.
pub fn verify(entry: &Entry, bits: u8) -> bool {
    bits == 0 || work_bits(&entry_digest(entry), entry.stamp()) >= u32::from(bits)
}

/// Searches `count` stamps from `start` (wrapping) for one that meets `bits`. Callers split the
/// search across threads or check for cancellation between calls.
pub fn search(digest: &[u8; 32], bits: u8, start: u64, count: u64) -> Option<Stamp> {
    let bits = u32::from(bits);
    (0..count)
        .map(|i| Stamp(start.wrapping_add(i)))
        .find(|&s| work_bits(digest, s) >= bits)
}

/// Finds a stamp meeting `bits` and writes it into `entry`, starting at `start` (draw it at
/// random: a stamp then says nothing about who made it). Returns `false` only if `bits` is above
/// [`MAX_BITS`].
pub fn solve(entry: &mut Entry, bits: u8, start: u64) -> bool {
    if bits > MAX_BITS {
        return false;
    }
    let digest = entry_digest(entry);
    let mut from = start;
    loop {
        if let Some(stamp) = search(&digest, bits, from, 1 << 20) {
            entry.set_stamp(stamp);
            return true;
        }
        from = from.wrapping_add(1 << 20);
    }
}

fn leading_zero_bits(h: &[u8; 32]) -> u32 {
    let mut n = 0;
    for b in h {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Suite;

    #[test]
    fn leading_zero_bits_counts_across_bytes() {
        let mut h = [0xffu8; 32];
        assert_eq!(leading_zero_bits(&h), 0);
        h[0] = 0;
        h[1] = 0x1f;
        assert_eq!(leading_zero_bits(&h), 11);
        assert_eq!(leading_zero_bits(&[0u8; 32]), 256);
    }

    #[test]
    fn solved_stamp_verifies_and_is_bound_to_the_bytes() {
        let mut e = Entry::parse(
            Suite::RsaOaep,
            &vec![7u8; Suite::RsaOaep.layout().entry_len],
        )
        .unwrap();
        assert!(solve(&mut e, 12, 99));
        assert!(verify(&e, 12));
        assert!(verify(&e, 0));
        let mut bytes = e.as_bytes().to_vec();
        bytes[5] ^= 1;
        let tampered = Entry::parse(Suite::RsaOaep, &bytes).unwrap();
        // A stamp valid for other bytes passes 12 bits by chance with probability 2^-12; this
        // fixed input does not.
        assert!(!verify(&tampered, 12));
    }

    #[test]
    fn solve_refuses_absurd_difficulty() {
        let mut e = Entry::parse(
            Suite::RsaOaep,
            &vec![0u8; Suite::RsaOaep.layout().entry_len],
        )
        .unwrap();
        assert!(!solve(&mut e, MAX_BITS + 1, 0));
    }
}

//! The private key at rest (docs/DESIGN.md §3.9): sealed with AES-256-GCM under a key derived
//! from the passphrase with Argon2id, or stored plain when the user chose `--no-passphrase`.
//!
//! Format: `"ddkey" || 0x01 || m_kib (u32) || t (u32) || p (u32) || salt (16) || nonce (12) ||
//! AES-256-GCM(k, identity export)` with the first 46 bytes (the header) as associated data, and
//! `k = Argon2id(passphrase, salt, m, t, p)`; or `"ddkey" || 0x00 || identity export`.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use deaddrop_proto::codec::{CodecError, Reader, Writer};
use deaddrop_proto::rng::SystemRng;
use deaddrop_proto::Identity;
use rand_core::RngCore;
use zeroize::Zeroizing;

use crate::error::ClientError;

const MAGIC: &[u8; 5] = b"ddkey";
const HEADER_LEN: usize = 5 + 1 + 12 + 16 + 12;

/// Argon2id memory for new key files: 64 MiB (with 3 passes, some 0.2 s a guess on one core
/// of a laptop; RFC 9106's second recommended option). The parameters are stored in each file,
/// so files sealed with the former 19 MiB, 2 passes still open, and these may rise later.
pub const ARGON2_M_KIB: u32 = 64 * 1024;
/// Argon2id passes.
pub const ARGON2_T: u32 = 3;
/// Argon2id lanes.
pub const ARGON2_P: u32 = 1;

/// A passphrase; zeroized on drop, never printed.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

/// The shortest passphrase `init` accepts without `--weak-passphrase`, in characters.
pub const MIN_PASSPHRASE_CHARS: usize = 8;

impl Passphrase {
    /// Wraps a passphrase.
    pub fn new(s: String) -> Self {
        Passphrase(Zeroizing::new(s))
    }

    /// Its length in characters.
    pub fn chars(&self) -> usize {
        self.0.chars().count()
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(..)")
    }
}

pub(crate) fn derive(
    pass: &Passphrase,
    salt: &[u8],
    m: u32,
    t: u32,
    p: u32,
) -> Result<Zeroizing<[u8; 32]>, ClientError> {
    let params = argon2::Params::new(m, t, p, Some(32))
        .map_err(|_| ClientError::KeyProtection("the key-file parameters are out of range"))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut k = Zeroizing::new([0u8; 32]);
    a.hash_password_into(pass.0.as_bytes(), salt, k.as_mut())
        .map_err(|_| ClientError::KeyProtection("the key derivation (Argon2id) failed"))?;
    Ok(k)
}

/// Refuses absurd Argon2id costs from a tampered file rather than allocate gigabytes.
pub(crate) fn check_params([m, t, p]: [u32; 3]) -> Result<(), ClientError> {
    if !(8..=4 * 1024 * 1024).contains(&m) || !(1..=64).contains(&t) || !(1..=64).contains(&p) {
        return Err(ClientError::KeyProtection(
            "the key-file parameters are out of range",
        ));
    }
    Ok(())
}

/// Seals the identity's export under `pass`, or stores it plain when `pass` is `None`.
pub fn seal(identity: &Identity, pass: Option<&Passphrase>) -> Result<Vec<u8>, ClientError> {
    seal_with(identity, pass, [ARGON2_M_KIB, ARGON2_T, ARGON2_P])
}

/// [`seal`] with Argon2id memory (KiB), passes and lanes `params`.
fn seal_with(
    identity: &Identity,
    pass: Option<&Passphrase>,
    params: [u32; 3],
) -> Result<Vec<u8>, ClientError> {
    let secret = identity.export_secret();
    let Some(pass) = pass else {
        let mut out = Vec::with_capacity(6 + secret.len());
        out.put_slice(MAGIC);
        out.put_u8(0);
        out.put_slice(&secret);
        return Ok(out);
    };
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    SystemRng.fill_bytes(&mut salt);
    SystemRng.fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(HEADER_LEN + secret.len() + 16);
    out.put_slice(MAGIC);
    out.put_u8(1);
    for v in params {
        out.put_u32(v);
    }
    out.put_slice(&salt);
    out.put_slice(&nonce);
    debug_assert_eq!(out.len(), HEADER_LEN);
    let [m, t, p] = params;
    let k = derive(pass, &salt, m, t, p)?;
    let key = LessSafeKey::new(
        UnboundKey::new(&AES_256_GCM, k.as_ref())
            .map_err(|_| ClientError::KeyProtection("the AES key setup failed"))?,
    );
    let mut body = Zeroizing::new(secret.to_vec());
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&out[..HEADER_LEN]),
            body.as_mut_slice(),
        )
        .map_err(|_| ClientError::KeyProtection("sealing the key failed"))?;
    out.put_slice(&body);
    out.put_slice(tag.as_ref());
    Ok(out)
}

/// True when the stored key needs a passphrase.
pub fn is_encrypted(sealed: &[u8]) -> bool {
    sealed.get(5) == Some(&1)
}

/// Opens what [`seal`] stored.
pub fn open(sealed: &[u8], pass: Option<&Passphrase>) -> Result<Identity, ClientError> {
    let damaged = || ClientError::Damaged {
        what: "private key",
        detail: None,
    };
    let mut r = Reader::new(sealed);
    if r.take(MAGIC.len()) != Ok(&MAGIC[..]) {
        return Err(damaged());
    }
    match r.u8() {
        Ok(0) => {
            Identity::import_secret(r.rest()).map_err(|e| ClientError::damaged("private key", e))
        }
        Ok(1) => {
            let pass = pass.ok_or(ClientError::NoPassphrase)?;
            let (m, t, p, salt, nonce) = read_params(&mut r).map_err(|_| damaged())?;
            // Refuse absurd costs from a tampered file rather than allocate gigabytes.
            if r.remaining() < 16 || m > 4 * 1024 * 1024 || t > 64 || p > 64 {
                return Err(damaged());
            }
            let aad = r.consumed();
            let k = derive(pass, &salt, m, t, p)?;
            let key =
                LessSafeKey::new(UnboundKey::new(&AES_256_GCM, k.as_ref()).map_err(|_| damaged())?);
            let mut body = Zeroizing::new(r.rest().to_vec());
            let plain = key
                .open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    body.as_mut_slice(),
                )
                .map_err(|_| ClientError::WrongPassphrase)?;
            Identity::import_secret(plain).map_err(|e| ClientError::damaged("private key", e))
        }
        _ => Err(damaged()),
    }
}

/// The sealed form's `m_kib || t || p || salt || nonce`, after the magic and version byte.
type Params = (u32, u32, u32, [u8; 16], [u8; 12]);

fn read_params(r: &mut Reader<'_>) -> Result<Params, CodecError> {
    Ok((
        r.u32()?,
        r.u32()?,
        r.u32()?,
        r.take_array()?,
        r.take_array()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use deaddrop_proto::Suite;

    #[test]
    fn sealed_key_opens_only_with_its_passphrase() {
        let id = Identity::generate(Suite::XWing, &mut SystemRng).unwrap();
        let good = Passphrase::new("correct horse".into());
        let sealed = seal(&id, Some(&good)).unwrap();
        assert!(is_encrypted(&sealed));
        assert_eq!(open(&sealed, Some(&good)).unwrap().address(), id.address());
        assert!(matches!(
            open(&sealed, Some(&Passphrase::new("wrong".into()))),
            Err(ClientError::WrongPassphrase)
        ));
        assert!(matches!(
            open(&sealed, None),
            Err(ClientError::NoPassphrase)
        ));
        let mut bad = sealed.clone();
        bad[50] ^= 1;
        assert!(open(&bad, Some(&good)).is_err());
        let plain = seal(&id, None).unwrap();
        assert!(!is_encrypted(&plain));
        assert_eq!(open(&plain, None).unwrap().address(), id.address());
        assert!(open(b"garbage", None).is_err());
    }

    #[test]
    fn new_files_carry_the_raised_cost_and_old_ones_still_open() {
        let id = Identity::generate(Suite::XWing, &mut SystemRng).unwrap();
        let pass = Passphrase::new("correct horse battery".into());
        let sealed = seal(&id, Some(&pass)).unwrap();
        let mut r = Reader::new(&sealed[6..]);
        let (m, t, p, _, _) = read_params(&mut r).unwrap();
        assert_eq!((m, t, p), (64 * 1024, 3, 1));
        // A file sealed with the former cost (19 MiB, 2 passes) opens as before.
        let old = seal_with(&id, Some(&pass), [19 * 1024, 2, 1]).unwrap();
        let opened = open(&old, Some(&pass)).unwrap();
        assert_eq!(opened.address(), id.address());
        assert!(matches!(
            open(&old, Some(&Passphrase::new("wrong".into()))),
            Err(ClientError::WrongPassphrase)
        ));
    }
}

//! The `rsa-oaep` suite: RSA-3072, OAEP with SHA-256 and MGF1-SHA-256, used as a KEM and made
//! key-private (`docs/PROTOCOL.md` §3.2).
//!
//! A raw RSA ciphertext is a number below its modulus N, so a collection of them would reveal
//! which ones share a receiver. Following Bellare, Boldyreva, Desai and Pointcheval
//! ("Key-Privacy in Public-Key Encryption", 2001, the "expanding" fix), the sender adds a random
//! multiple of N: `phrase = c + k·N` with `k` uniform in `[0, ⌊2^3200 / N⌋)`. The result is a
//! 400-byte number whose distribution is within statistical distance `N / 2^3200 < 2^-128` of
//! uniform on `[0, 2^3200)`, whatever N is. The receiver recovers `c = phrase mod N`.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{
    KeySize, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey,
    PublicEncryptingKey, OAEP_SHA256_MGF1SHA256,
};
use num_bigint::BigUint;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::error::{AddressError, IdentityError, SealError};

/// Modulus length in bytes (RSA-3072). An address is the big-endian modulus.
pub(crate) const MODULUS_LEN: usize = 384;
/// The key-private phrase: a 3200-bit number.
pub(crate) const PHRASE_LEN: usize = 400;
/// The KEM's shared secret, which OAEP carries.
pub(crate) const SEED_LEN: usize = 32;
const PHRASE_BITS: u64 = (PHRASE_LEN * 8) as u64;

/// DER of a SubjectPublicKeyInfo for rsaEncryption with a 3072-bit modulus whose top bit is set
/// and public exponent 65537: this prefix, the 384 modulus bytes, then [`SPKI_SUFFIX`].
const SPKI_PREFIX: [u8; 33] = [
    0x30, 0x82, 0x01, 0xa2, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01,
    0x01, 0x05, 0x00, 0x03, 0x82, 0x01, 0x8f, 0x00, 0x30, 0x82, 0x01, 0x8a, 0x02, 0x82, 0x01, 0x81,
    0x00,
];
const SPKI_SUFFIX: [u8; 5] = [0x02, 0x03, 0x01, 0x00, 0x01];

/// An RSA-3072 private key, ready to decapsulate.
pub(crate) struct Secret {
    key: OaepPrivateDecryptingKey,
    pkcs8: Zeroizing<Vec<u8>>,
    modulus: Box<[u8]>,
    n: BigUint,
}

impl Secret {
    /// Generates a key pair with aws-lc's generator (e = 65537).
    pub(crate) fn generate() -> Result<Self, IdentityError> {
        let key = PrivateDecryptingKey::generate(KeySize::Rsa3072)
            .map_err(|_| IdentityError::KeyGeneration)?;
        let der = key.as_der().map_err(|_| IdentityError::KeyGeneration)?;
        Self::import(der.as_ref())
    }

    /// Rebuilds a key from its PKCS#8 DER.
    pub(crate) fn import(pkcs8: &[u8]) -> Result<Self, IdentityError> {
        let key = PrivateDecryptingKey::from_pkcs8(pkcs8)
            .map_err(|_| IdentityError::InvalidKey("RSA"))?;
        if key.key_size_bits() != MODULUS_LEN * 8 {
            return Err(IdentityError::InvalidKey("RSA-3072"));
        }
        let spki = key
            .public_key()
            .as_der()
            .map_err(|_| IdentityError::InvalidKey("RSA"))?;
        let modulus = modulus_from_spki(spki.as_ref())
            .ok_or(IdentityError::InvalidKey("RSA-3072 (e must be 65537)"))?;
        let n = BigUint::from_bytes_be(modulus);
        let modulus = modulus.to_vec().into_boxed_slice();
        let key =
            OaepPrivateDecryptingKey::new(key).map_err(|_| IdentityError::InvalidKey("RSA"))?;
        Ok(Secret {
            key,
            pkcs8: Zeroizing::new(pkcs8.to_vec()),
            modulus,
            n,
        })
    }

    /// The private key as PKCS#8 DER.
    pub(crate) fn export(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The public key: the big-endian modulus.
    pub(crate) fn public(&self) -> &[u8] {
        &self.modulus
    }

    /// Recovers the shared secret, or `None` when OAEP decoding fails (the entry is not for us).
    pub(crate) fn decapsulate(&self, phrase: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
        if phrase.len() != PHRASE_LEN {
            return None;
        }
        let c = BigUint::from_bytes_be(phrase) % &self.n;
        let c = left_pad(&c.to_bytes_be(), MODULUS_LEN)?;
        let mut out = Zeroizing::new([0u8; MODULUS_LEN]);
        let plain = self
            .key
            .decrypt(&OAEP_SHA256_MGF1SHA256, &c, out.as_mut(), None)
            .ok()?;
        if plain.len() != SEED_LEN {
            return None;
        }
        let mut ss = Zeroizing::new([0u8; 32]);
        ss.copy_from_slice(plain);
        Some(ss)
    }
}

fn modulus_from_spki(spki: &[u8]) -> Option<&[u8]> {
    let rest = spki.strip_prefix(&SPKI_PREFIX[..])?;
    let modulus = rest.strip_suffix(&SPKI_SUFFIX[..])?;
    (modulus.len() == MODULUS_LEN && modulus[0] & 0x80 != 0).then_some(modulus)
}

fn public_key(modulus: &[u8]) -> Option<PublicEncryptingKey> {
    if modulus.len() != MODULUS_LEN || modulus[0] & 0x80 == 0 || modulus[MODULUS_LEN - 1] & 1 == 0 {
        return None;
    }
    let mut der = Vec::with_capacity(SPKI_PREFIX.len() + MODULUS_LEN + SPKI_SUFFIX.len());
    der.extend_from_slice(&SPKI_PREFIX);
    der.extend_from_slice(modulus);
    der.extend_from_slice(&SPKI_SUFFIX);
    PublicEncryptingKey::from_der(&der).ok()
}

/// Checks that `public` is a 3072-bit odd modulus aws-lc-rs accepts with e = 65537.
pub(crate) fn validate_public(public: &[u8]) -> Result<(), AddressError> {
    if public.len() != MODULUS_LEN {
        return Err(AddressError::Length {
            suite: "rsa-oaep",
            expected: MODULUS_LEN,
            got: public.len(),
        });
    }
    public_key(public)
        .map(|_| ())
        .ok_or(AddressError::InvalidKey("rsa-oaep"))
}

/// OAEP-encrypts a fresh 32-byte secret to `modulus` and makes the ciphertext key-private.
pub(crate) fn encapsulate(
    modulus: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<(Vec<u8>, Zeroizing<[u8; 32]>), SealError> {
    let bad = SealError::BadReceiverKey("rsa-oaep");
    let key =
        OaepPublicEncryptingKey::new(public_key(modulus).ok_or(bad.clone())?).map_err(|_| bad)?;
    let mut ss = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(ss.as_mut());
    let mut c = [0u8; MODULUS_LEN];
    let c = key
        .encrypt(&OAEP_SHA256_MGF1SHA256, ss.as_ref(), &mut c, None)
        .map_err(|_| SealError::Crypto)?;
    let phrase = expand(modulus, c, rng).ok_or(SealError::Crypto)?;
    Ok((phrase, ss))
}

/// The key-private encoding: `c + k·N`, `k` uniform below `⌊2^3200 / N⌋`, as 400 bytes.
pub(crate) fn expand(modulus: &[u8], c: &[u8], rng: &mut impl CryptoRng) -> Option<Vec<u8>> {
    let n = BigUint::from_bytes_be(modulus);
    let c = BigUint::from_bytes_be(c);
    if c >= n {
        return None;
    }
    let k_bound = (BigUint::from(1u8) << PHRASE_BITS) / &n;
    let k_bits = k_bound.bits();
    let k_bytes = k_bits.div_ceil(8) as usize;
    let top_mask = 0xffu8 >> (k_bytes as u64 * 8 - k_bits);
    let k = loop {
        let mut buf = vec![0u8; k_bytes];
        rng.fill_bytes(&mut buf);
        buf[0] &= top_mask;
        let k = BigUint::from_bytes_be(&buf);
        if k < k_bound {
            break k;
        }
    };
    left_pad(&(c + k * n).to_bytes_be(), PHRASE_LEN)
}

fn left_pad(bytes: &[u8], len: usize) -> Option<Vec<u8>> {
    let pad = len.checked_sub(bytes.len())?;
    let mut out = vec![0u8; len];
    out[pad..].copy_from_slice(bytes);
    Some(out)
}

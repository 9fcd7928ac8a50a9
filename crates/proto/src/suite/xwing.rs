//! The `xwing` suite: X-Wing (draft-connolly-cfrg-xwing-kem-06), the hybrid of ML-KEM-768 and
//! X25519, used as the entry's KEM (`docs/PROTOCOL.md` §3.1). All primitives are aws-lc-rs.
//!
//! Public key: `pk_M (1184) || pk_X (32)`. Ciphertext: `ct_M (1088) || ct_X (32)`. Shared
//! secret: `SHA3-256(ss_M || ss_X || ct_X || pk_X || XWingLabel)`. The private key is kept in
//! expanded form (ML-KEM decapsulation key and X25519 scalar) because aws-lc-rs derives ML-KEM
//! keys only from its own randomness; the wire values (public key, ciphertext, shared secret)
//! are X-Wing's, which the tests check against the RustCrypto `x-wing` crate.

use aws_lc_rs::agreement::{self, UnparsedPublicKey, X25519};
use aws_lc_rs::digest;
use aws_lc_rs::kem::{Ciphertext, DecapsulationKey, EncapsulationKey, ML_KEM_768};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::error::{AddressError, IdentityError, SealError};

/// ML-KEM-768 encapsulation key length.
pub(crate) const MLKEM_EK_LEN: usize = 1184;
/// ML-KEM-768 decapsulation key length (FIPS 203 expanded form).
pub(crate) const MLKEM_DK_LEN: usize = 2400;
/// ML-KEM-768 ciphertext length.
pub(crate) const MLKEM_CT_LEN: usize = 1088;
/// X25519 key and point length.
pub(crate) const X25519_LEN: usize = 32;
/// X-Wing public key length.
pub(crate) const PUBLIC_LEN: usize = MLKEM_EK_LEN + X25519_LEN;
/// X-Wing ciphertext length.
pub(crate) const CIPHERTEXT_LEN: usize = MLKEM_CT_LEN + X25519_LEN;
/// Length of the exported secret: ML-KEM decapsulation key then X25519 scalar.
pub(crate) const SECRET_LEN: usize = MLKEM_DK_LEN + X25519_LEN;

/// X-Wing's domain-separation label, `\.//^\`.
const XWING_LABEL: &[u8; 6] = br"\.//^\";

/// Where the encapsulation key sits inside a FIPS 203 decapsulation key
/// (`dk = dk_PKE (1152) || ek (1184) || H(ek) (32) || z (32)`).
const DK_EK_AT: usize = 1152;
const DK_HASH_AT: usize = DK_EK_AT + MLKEM_EK_LEN;

/// An X-Wing private key, ready to decapsulate.
pub(crate) struct Secret {
    dk: DecapsulationKey,
    x_sk: agreement::PrivateKey,
    exported: Zeroizing<Vec<u8>>,
    public: Box<[u8]>,
}

impl Secret {
    /// Generates a key pair: ML-KEM from aws-lc's generator, the X25519 scalar from `rng`.
    pub(crate) fn generate(rng: &mut impl CryptoRng) -> Result<Self, IdentityError> {
        let dk =
            DecapsulationKey::generate(&ML_KEM_768).map_err(|_| IdentityError::KeyGeneration)?;
        let dk_bytes = dk.key_bytes().map_err(|_| IdentityError::KeyGeneration)?;
        let mut secret = Zeroizing::new(Vec::with_capacity(SECRET_LEN));
        secret.extend_from_slice(dk_bytes.as_ref());
        let mut x = Zeroizing::new([0u8; X25519_LEN]);
        rng.fill_bytes(x.as_mut());
        secret.extend_from_slice(x.as_ref());
        Self::import(&secret)
    }

    /// Rebuilds a key from [`Secret::export`]'s bytes.
    pub(crate) fn import(secret: &[u8]) -> Result<Self, IdentityError> {
        if secret.len() != SECRET_LEN {
            return Err(IdentityError::Format("xwing secret length"));
        }
        let (dk_bytes, x_bytes) = secret.split_at(MLKEM_DK_LEN);
        let ek = &dk_bytes[DK_EK_AT..DK_HASH_AT];
        let ek_hash = digest::digest(&digest::SHA3_256, ek);
        if ek_hash.as_ref() != &dk_bytes[DK_HASH_AT..DK_HASH_AT + 32] {
            return Err(IdentityError::InvalidKey("ML-KEM-768"));
        }
        let dk = DecapsulationKey::new(&ML_KEM_768, dk_bytes)
            .map_err(|_| IdentityError::InvalidKey("ML-KEM-768"))?;
        let x_sk = agreement::PrivateKey::from_private_key(&X25519, x_bytes)
            .map_err(|_| IdentityError::InvalidKey("X25519"))?;
        let x_pk = x_sk
            .compute_public_key()
            .map_err(|_| IdentityError::InvalidKey("X25519"))?;
        let mut public = Vec::with_capacity(PUBLIC_LEN);
        public.extend_from_slice(ek);
        public.extend_from_slice(x_pk.as_ref());
        Ok(Secret {
            dk,
            x_sk,
            exported: Zeroizing::new(secret.to_vec()),
            public: public.into_boxed_slice(),
        })
    }

    /// The private key bytes: `dk_M (2400) || sk_X (32)`.
    pub(crate) fn export(&self) -> &[u8] {
        &self.exported
    }

    /// The public key bytes: `pk_M || pk_X`.
    pub(crate) fn public(&self) -> &[u8] {
        &self.public
    }

    /// X-Wing decapsulation. `None` only when the X25519 share is a low-order point, which no
    /// honest sender produces.
    pub(crate) fn decapsulate(&self, ct: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
        if ct.len() != CIPHERTEXT_LEN {
            return None;
        }
        let (ct_m, ct_x) = ct.split_at(MLKEM_CT_LEN);
        let ss_m = self.dk.decapsulate(Ciphertext::from(ct_m)).ok()?;
        let ss_x = agreement::agree(&self.x_sk, UnparsedPublicKey::new(&X25519, ct_x), (), |k| {
            Ok(Zeroizing::new(k.to_vec()))
        })
        .ok()?;
        let pk_x = &self.public[MLKEM_EK_LEN..];
        Some(combiner(ss_m.as_ref(), &ss_x, ct_x, pk_x))
    }
}

/// Checks that `public` is an X-Wing public key aws-lc-rs accepts.
pub(crate) fn validate_public(public: &[u8]) -> Result<(), AddressError> {
    if public.len() != PUBLIC_LEN {
        return Err(AddressError::Length {
            suite: "xwing",
            expected: PUBLIC_LEN,
            got: public.len(),
        });
    }
    if !mlkem_ek_is_canonical(&public[..MLKEM_EK_LEN]) {
        return Err(AddressError::InvalidKey("xwing"));
    }
    EncapsulationKey::new(&ML_KEM_768, &public[..MLKEM_EK_LEN])
        .map_err(|_| AddressError::InvalidKey("xwing"))?;
    Ok(())
}

/// FIPS 203 §7.2 modulus check: every 12-bit coefficient of the encoded vector `t` (the first
/// 1152 bytes of an encapsulation key) must be below q = 3329. aws-lc-rs does not check this
/// when it reads a key, so we do, as the spec and other X-Wing implementations require.
fn mlkem_ek_is_canonical(ek: &[u8]) -> bool {
    const Q: u16 = 3329;
    ek.len() == MLKEM_EK_LEN
        && ek[..MLKEM_EK_LEN - 32].chunks_exact(3).all(|c| {
            let a = u16::from(c[0]) | (u16::from(c[1] & 0x0f) << 8);
            let b = u16::from(c[1] >> 4) | (u16::from(c[2]) << 4);
            a < Q && b < Q
        })
}

/// X-Wing encapsulation to `public`. The X25519 ephemeral comes from `rng`; the ML-KEM
/// randomness from aws-lc's own generator.
pub(crate) fn encapsulate(
    public: &[u8],
    rng: &mut impl CryptoRng,
) -> Result<(Vec<u8>, Zeroizing<[u8; 32]>), SealError> {
    if public.len() != PUBLIC_LEN {
        return Err(SealError::BadReceiverKey("xwing"));
    }
    let (pk_m, pk_x) = public.split_at(MLKEM_EK_LEN);
    let ek =
        EncapsulationKey::new(&ML_KEM_768, pk_m).map_err(|_| SealError::BadReceiverKey("xwing"))?;
    let (ct_m, ss_m) = ek.encapsulate().map_err(|_| SealError::Crypto)?;
    let mut e = Zeroizing::new([0u8; X25519_LEN]);
    rng.fill_bytes(e.as_mut());
    encapsulate_with_parts(pk_x, ct_m.as_ref(), ss_m.as_ref(), &e)
}

/// The deterministic rest of encapsulation, given the ML-KEM output and the X25519 ephemeral.
pub(crate) fn encapsulate_with_parts(
    pk_x: &[u8],
    ct_m: &[u8],
    ss_m: &[u8],
    ephemeral: &[u8; X25519_LEN],
) -> Result<(Vec<u8>, Zeroizing<[u8; 32]>), SealError> {
    let e = agreement::PrivateKey::from_private_key(&X25519, ephemeral)
        .map_err(|_| SealError::Crypto)?;
    let ct_x = e.compute_public_key().map_err(|_| SealError::Crypto)?;
    let ss_x = agreement::agree(
        &e,
        UnparsedPublicKey::new(&X25519, pk_x),
        SealError::BadReceiverKey("xwing"),
        |k| Ok(Zeroizing::new(k.to_vec())),
    )?;
    let ss = combiner(ss_m, &ss_x, ct_x.as_ref(), pk_x);
    let mut ct = Vec::with_capacity(CIPHERTEXT_LEN);
    ct.extend_from_slice(ct_m);
    ct.extend_from_slice(ct_x.as_ref());
    Ok((ct, ss))
}

fn combiner(ss_m: &[u8], ss_x: &[u8], ct_x: &[u8], pk_x: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut ctx = digest::Context::new(&digest::SHA3_256);
    ctx.update(ss_m);
    ctx.update(ss_x);
    ctx.update(ct_x);
    ctx.update(pk_x);
    ctx.update(XWING_LABEL);
    let d = ctx.finish();
    let mut out = Zeroizing::new([0u8; 32]);
    out.copy_from_slice(d.as_ref());
    out
}

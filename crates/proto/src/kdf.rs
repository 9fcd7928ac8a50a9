//! The key schedule and the small crypto helpers everything else uses (`docs/PROTOCOL.md` §5).
//! Every label is built here from [`crate::PROTOCOL`], so no label exists twice.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use aws_lc_rs::{digest, hkdf, hmac};
use zeroize::Zeroizing;

use crate::suite::Suite;
use crate::PROTOCOL;

/// SHA-256 over the concatenation of `parts`.
pub(crate) fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// `PROTOCOL || " " || name`, the prefix of every hash input and HKDF label.
pub(crate) fn label(name: &str) -> Vec<u8> {
    let mut l = Vec::with_capacity(PROTOCOL.len() + 1 + name.len());
    l.extend_from_slice(PROTOCOL.as_bytes());
    l.push(b' ');
    l.extend_from_slice(name.as_bytes());
    l
}

/// The per-entry keys, derived from the KEM shared secret.
///
/// `prk = HKDF-Extract(salt = "deaddrop/1 entry", ikm = ss)`, then for each field name `L`:
/// `HKDF-Expand(prk, "deaddrop/1 " || L || 0x00 || suite_id || receiver_fp || SHA-256(phrase), 32)`.
/// Binding the receiver's fingerprint and the phrase makes the `commit` value key-committing:
/// one entry cannot pass the commitment check of two identities.
pub(crate) struct EntryKeys {
    prk: hkdf::Prk,
    context: Zeroizing<Vec<u8>>,
}

/// The fields that get their own key or value from the schedule.
#[derive(Clone, Copy)]
pub(crate) enum Field {
    Commit,
    Header,
    From,
    Cipher,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Commit => "commit",
            Field::Header => "header",
            Field::From => "from",
            Field::Cipher => "cipher",
        }
    }
}

impl EntryKeys {
    pub(crate) fn new(suite: Suite, ss: &[u8; 32], receiver_fp: &[u8; 32], phrase: &[u8]) -> Self {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, &label("entry"));
        let prk = salt.extract(ss);
        let mut context = Zeroizing::new(Vec::with_capacity(1 + 64));
        context.push(suite.id());
        context.extend_from_slice(receiver_fp);
        context.extend_from_slice(&sha256(&[phrase]));
        EntryKeys { prk, context }
    }

    /// 32 bytes for `field`.
    pub(crate) fn derive(&self, field: Field) -> Zeroizing<[u8; 32]> {
        let l = label(field.name());
        let info: [&[u8]; 3] = [&l, &[0u8], &self.context];
        let mut out = Zeroizing::new([0u8; 32]);
        // HKDF-SHA256 can always produce 32 bytes; a failure here would be a broken library,
        // and the all-zero output then fails every later check instead of passing one.
        if let Ok(okm) = self.prk.expand(&info, hkdf::HKDF_SHA256) {
            let _ = okm.fill(out.as_mut());
        }
        out
    }
}

/// AES-256-GCM under a single-use key with the all-zero nonce, tag appended.
pub(crate) fn aead_seal(key: &[u8; 32], plaintext: &[u8], out: &mut [u8]) -> bool {
    let Ok(unbound) = UnboundKey::new(&AES_256_GCM, key) else {
        return false;
    };
    let key = LessSafeKey::new(unbound);
    if out.len() != plaintext.len() + AES_256_GCM.tag_len() {
        return false;
    }
    let (body, tag_out) = out.split_at_mut(plaintext.len());
    body.copy_from_slice(plaintext);
    match key.seal_in_place_separate_tag(
        Nonce::assume_unique_for_key([0u8; 12]),
        Aad::empty(),
        body,
    ) {
        Ok(tag) => {
            tag_out.copy_from_slice(tag.as_ref());
            true
        }
        Err(_) => false,
    }
}

/// Opens what [`aead_seal`] sealed; `None` if the tag does not verify.
pub(crate) fn aead_open(key: &[u8; 32], sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let unbound = UnboundKey::new(&AES_256_GCM, key).ok()?;
    let key = LessSafeKey::new(unbound);
    let mut buf = Zeroizing::new(sealed.to_vec());
    let len = key
        .open_in_place(
            Nonce::assume_unique_for_key([0u8; 12]),
            Aad::empty(),
            &mut buf,
        )
        .ok()?
        .len();
    buf.truncate(len);
    Some(buf)
}

/// HMAC-SHA256 over the concatenation of `parts`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

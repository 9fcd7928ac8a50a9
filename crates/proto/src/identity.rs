//! Identities (paper I, V.1): a private key of one suite, generated locally with no server
//! involved, and its [`Address`]. The private key leaves only through
//! [`Identity::export_secret`] (`docs/PROTOCOL.md` §4.4).

use core::fmt;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::address::Address;
use crate::codec::{Reader, Writer};
use crate::error::IdentityError;
use crate::suite::{rsa, xwing, Suite};

/// Exported identity secrets start with these four bytes, then a format version.
pub const SECRET_MAGIC: &[u8; 4] = b"ddid";
/// The export format version.
pub const SECRET_VERSION: u8 = 1;

enum Keys {
    XWing(xwing::Secret),
    Rsa(rsa::Secret),
}

/// A private key and its address. The key material lives in aws-lc (which clears it when freed)
/// and in a zeroizing export buffer; `Debug` shows only the suite and fingerprint.
pub struct Identity {
    keys: Keys,
    address: Address,
}

impl Identity {
    /// Generates a new identity. RSA-3072 takes a fraction of a second; X-Wing microseconds.
    pub fn generate(suite: Suite, rng: &mut impl CryptoRng) -> Result<Identity, IdentityError> {
        let keys = match suite {
            Suite::XWing => Keys::XWing(xwing::Secret::generate(rng)?),
            Suite::RsaOaep => Keys::Rsa(rsa::Secret::generate()?),
        };
        Ok(Self::from_keys(keys))
    }

    fn from_keys(keys: Keys) -> Identity {
        let (suite, public) = match &keys {
            Keys::XWing(k) => (Suite::XWing, k.public()),
            Keys::Rsa(k) => (Suite::RsaOaep, k.public()),
        };
        let address = Address::new_unchecked(suite, public);
        Identity { keys, address }
    }

    /// The identity's suite.
    pub fn suite(&self) -> Suite {
        self.address.suite()
    }

    /// The identity's public address.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The private key in the export format: `"ddid" || version || suite_id || key`, where key
    /// is `dk_M || sk_X` for `xwing` and PKCS#8 DER for `rsa-oaep`. Encrypt it before it
    /// touches a disk.
    pub fn export_secret(&self) -> Zeroizing<Vec<u8>> {
        let key = match &self.keys {
            Keys::XWing(k) => k.export(),
            Keys::Rsa(k) => k.export(),
        };
        let mut out = Zeroizing::new(Vec::with_capacity(6 + key.len()));
        out.put_slice(SECRET_MAGIC);
        out.put_u8(SECRET_VERSION);
        out.put_u8(self.suite().id());
        out.put_slice(key);
        out
    }

    /// Reads [`Identity::export_secret`]'s format.
    pub fn import_secret(bytes: &[u8]) -> Result<Identity, IdentityError> {
        let mut r = Reader::new(bytes);
        if r.take(SECRET_MAGIC.len()) != Ok(&SECRET_MAGIC[..]) {
            return Err(IdentityError::Format("magic"));
        }
        let truncated = |_| IdentityError::Format("truncated");
        if r.u8().map_err(truncated)? != SECRET_VERSION {
            return Err(IdentityError::Format("version"));
        }
        let suite_id = r.u8().map_err(truncated)?;
        let key = r.rest();
        let keys = match Suite::from_id(suite_id) {
            Some(Suite::XWing) => Keys::XWing(xwing::Secret::import(key)?),
            Some(Suite::RsaOaep) => Keys::Rsa(rsa::Secret::import(key)?),
            None => return Err(IdentityError::UnknownSuite(suite_id)),
        };
        Ok(Self::from_keys(keys))
    }

    /// The KEM's decapsulation: the shared secret, or `None` when the phrase cannot be
    /// decapsulated (for `rsa-oaep`, an OAEP failure).
    pub(crate) fn decapsulate(&self, phrase: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
        match &self.keys {
            Keys::XWing(k) => k.decapsulate(phrase),
            Keys::Rsa(k) => k.decapsulate(phrase),
        }
    }

    /// One bare decapsulation, the private-key operation that bounds scanning speed; exposed so
    /// benchmarks can measure the limit. Returns whether a secret came out.
    pub fn decapsulate_only(&self, phrase: &[u8]) -> bool {
        self.decapsulate(phrase).is_some()
    }
}

impl AsRef<Address> for Identity {
    fn as_ref(&self) -> &Address {
        &self.address
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Identity({}, {})",
            self.suite(),
            self.address.fingerprint().short()
        )
    }
}

//! Addresses (paper I): a suite and a public key, their printable form with a checksum, and the
//! fingerprint people compare (`docs/PROTOCOL.md` §4.1, §4.2).

use core::fmt;
use core::str::FromStr;

use data_encoding::{BASE32_NOPAD, BASE64URL_NOPAD};

use crate::codec::{Reader, Writer};
use crate::error::AddressError;
use crate::kdf::{label, sha256};
use crate::suite::{rsa, xwing, Suite, FINGERPRINT_LEN};

/// Printable addresses start with this.
pub const ADDRESS_PREFIX: &str = "deaddrop-address-v1:";
/// Length of the checksum appended to printable addresses and cards.
pub const CHECKSUM_LEN: usize = 4;

/// The public address of an identity. Parsing checks the key, so an `Address` always holds a
/// key its suite accepts.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Address {
    suite: Suite,
    key: Box<[u8]>,
    fingerprint: Fingerprint,
}

/// The SHA-256 fingerprint of an address: `SHA-256("deaddrop/1 fingerprint" || suite_id || key)`.
/// The entry's `from` field carries it; [`Fingerprint::short`] is what people compare.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; FINGERPRINT_LEN]);

impl Address {
    /// Reads an address from its suite and raw public-key bytes, checking the key.
    pub fn from_key(suite: Suite, key: &[u8]) -> Result<Address, AddressError> {
        match suite {
            Suite::XWing => xwing::validate_public(key)?,
            Suite::RsaOaep => rsa::validate_public(key)?,
        }
        Ok(Self::new_unchecked(suite, key))
    }

    /// For keys that come from our own private key.
    pub(crate) fn new_unchecked(suite: Suite, key: &[u8]) -> Address {
        let fingerprint = Fingerprint(sha256(&[&label("fingerprint"), &[suite.id()], key]));
        Address {
            suite,
            key: key.into(),
            fingerprint,
        }
    }

    /// The suite of this address.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The raw public-key bytes (`docs/PROTOCOL.md` §4.1).
    pub fn key_bytes(&self) -> &[u8] {
        &self.key
    }

    /// The fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// `deaddrop-address-v1:<suite>:<base64url(key || checksum)>`.
    pub fn to_text(&self) -> String {
        let mut payload = self.key.to_vec();
        payload.put_slice(&address_checksum(self.suite, &self.key));
        format!(
            "{ADDRESS_PREFIX}{}:{}",
            self.suite.name(),
            BASE64URL_NOPAD.encode(&payload)
        )
    }

    /// Parses [`Address::to_text`]'s form; surrounding white space is ignored.
    pub fn parse(text: &str) -> Result<Address, AddressError> {
        let rest = text
            .trim()
            .strip_prefix(ADDRESS_PREFIX)
            .ok_or(AddressError::NotAnAddress)?;
        let (suite, b64) = rest.split_once(':').ok_or(AddressError::NotAnAddress)?;
        let suite: Suite = suite.parse()?;
        let payload = BASE64URL_NOPAD
            .decode(b64.as_bytes())
            .map_err(|_| AddressError::Encoding)?;
        let mut r = Reader::new(&payload);
        let sum = r
            .take_last(CHECKSUM_LEN)
            .map_err(|_| AddressError::Checksum)?;
        let key = r.rest();
        if address_checksum(suite, key) != sum {
            return Err(AddressError::Checksum);
        }
        Address::from_key(suite, key)
    }
}

fn address_checksum(suite: Suite, key: &[u8]) -> [u8; CHECKSUM_LEN] {
    let h = sha256(&[&label("address checksum"), &[suite.id()], key]);
    [h[0], h[1], h[2], h[3]]
}

impl AsRef<Address> for Address {
    fn as_ref(&self) -> &Address {
        self
    }
}

impl FromStr for Address {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({}, {})", self.suite, self.fingerprint.short())
    }
}

impl Fingerprint {
    /// The first 10 bytes in base32, in four groups of four: `ABCD-EFGH-IJKL-MNOP` (80 bits).
    pub fn short(&self) -> String {
        let b32 = BASE32_NOPAD.encode(&self.0[..10]);
        let groups: Vec<&str> = b32
            .as_bytes()
            .chunks(4)
            .map(|c| core::str::from_utf8(c).unwrap_or(""))
            .collect();
        groups.join("-")
    }

    /// All 32 bytes in lowercase hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.short())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.short())
    }
}

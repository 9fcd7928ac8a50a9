//! Contact cards (paper II.1): an address, the check strings its holder accepts in the `header`
//! of entries sealed to it, and an optional display name, in a versioned printable form
//! (`docs/PROTOCOL.md` §4.3).

use core::fmt;
use core::str::FromStr;

use data_encoding::BASE64URL_NOPAD;
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::address::{Address, CHECKSUM_LEN};
use crate::codec::{Reader, Writer};
use crate::error::CardError;
use crate::kdf::{label, sha256};
use crate::suite::{Suite, CHECK_STRING_LEN};

/// Printable cards start with this.
pub const CARD_PREFIX: &str = "deaddrop-card-v1:";
/// The most check strings a card carries (the current one and those still in their grace period).
pub const MAX_CHECK_STRINGS: usize = 4;
/// The longest display name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 64;

/// A check string (paper IV.2): the value an identity accepts in the `header` of entries
/// sealed to it. It is handed out in the contact card; rotating it refuses senders who only know
/// the bare address. It is not a key, but it is not public either: zeroized, compared in
/// constant time, redacted in `Debug`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct CheckString([u8; CHECK_STRING_LEN]);

impl CheckString {
    /// Draws a fresh check string.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut b = [0u8; CHECK_STRING_LEN];
        rng.fill_bytes(&mut b);
        CheckString(b)
    }

    /// Wraps stored bytes.
    pub fn from_bytes(bytes: [u8; CHECK_STRING_LEN]) -> Self {
        CheckString(bytes)
    }

    /// The bytes, for the client's database.
    pub fn export_bytes(&self) -> [u8; CHECK_STRING_LEN] {
        self.0
    }

    pub(crate) fn as_bytes(&self) -> &[u8; CHECK_STRING_LEN] {
        &self.0
    }
}

impl ConstantTimeEq for CheckString {
    fn ct_eq(&self, other: &Self) -> subtle::Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for CheckString {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}
impl Eq for CheckString {}

impl fmt::Debug for CheckString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CheckString(..)")
    }
}

/// What one person gives another so the other can write to them.
#[derive(Clone, PartialEq, Eq)]
pub struct ContactCard {
    address: Address,
    checks: Vec<CheckString>,
    name: Option<String>,
}

impl ContactCard {
    /// Builds a card. `checks` must hold 1 to [`MAX_CHECK_STRINGS`] values, newest first; the
    /// name at most [`MAX_NAME_LEN`] bytes.
    pub fn new(
        address: Address,
        checks: Vec<CheckString>,
        name: Option<String>,
    ) -> Result<Self, CardError> {
        if checks.is_empty() || checks.len() > MAX_CHECK_STRINGS {
            return Err(CardError::CheckStrings {
                max: MAX_CHECK_STRINGS,
                got: checks.len(),
            });
        }
        if name.as_ref().is_some_and(|n| n.len() > MAX_NAME_LEN) {
            return Err(CardError::Name { max: MAX_NAME_LEN });
        }
        Ok(ContactCard {
            address,
            checks,
            name: name.filter(|n| !n.is_empty()),
        })
    }

    /// The holder's address.
    pub fn address(&self) -> &Address {
        &self.address
    }

    /// The check strings the holder accepts, newest first. Senders use the first.
    pub fn checks(&self) -> &[CheckString] {
        &self.checks
    }

    /// The display name the holder chose, if any.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The binary form (`docs/PROTOCOL.md` §4.3), checksum included.
    pub fn to_bytes(&self) -> Vec<u8> {
        let key = self.address.key_bytes();
        let name = self.name.as_deref().unwrap_or("").as_bytes();
        let mut b = Vec::with_capacity(
            3 + key.len() + self.checks.len() * CHECK_STRING_LEN + name.len() + CHECKSUM_LEN,
        );
        b.put_u8(self.address.suite().id());
        b.put_slice(key);
        b.put_u8(self.checks.len() as u8);
        for c in &self.checks {
            b.put_slice(c.as_bytes());
        }
        b.put_u8(name.len() as u8);
        b.put_slice(name);
        let sum = card_checksum(&b);
        b.put_slice(&sum);
        b
    }

    /// Reads the binary form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CardError> {
        let mut r = Reader::new(bytes);
        let sum = r.take_last(CHECKSUM_LEN)?;
        if card_checksum(r.peek_rest()) != sum {
            return Err(CardError::Checksum);
        }
        let suite_id = r.u8()?;
        let suite = Suite::from_id(suite_id)
            .ok_or_else(|| crate::error::AddressError::UnknownSuite(format!("id {suite_id}")))?;
        let address = Address::from_key(suite, r.take(suite.layout().address_len)?)?;
        let n = usize::from(r.u8()?);
        if n == 0 || n > MAX_CHECK_STRINGS {
            return Err(CardError::CheckStrings {
                max: MAX_CHECK_STRINGS,
                got: n,
            });
        }
        let mut checks = Vec::with_capacity(n);
        for _ in 0..n {
            checks.push(CheckString(r.take_array()?));
        }
        let name_len = usize::from(r.u8()?);
        if name_len > MAX_NAME_LEN {
            return Err(CardError::Name { max: MAX_NAME_LEN });
        }
        let name = core::str::from_utf8(r.take(name_len)?)
            .map_err(|_| CardError::Name { max: MAX_NAME_LEN })?
            .to_owned();
        r.expect_empty()?;
        ContactCard::new(address, checks, Some(name))
    }

    /// `deaddrop-card-v1:<base64url(binary form)>`.
    pub fn to_text(&self) -> String {
        format!("{CARD_PREFIX}{}", BASE64URL_NOPAD.encode(&self.to_bytes()))
    }

    /// Parses [`ContactCard::to_text`]'s form. White space anywhere (a card wrapped by a mail
    /// program or split over lines) is ignored.
    pub fn parse(text: &str) -> Result<Self, CardError> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let b64 = compact
            .strip_prefix(CARD_PREFIX)
            .ok_or(CardError::NotACard)?;
        let bytes = BASE64URL_NOPAD
            .decode(b64.as_bytes())
            .map_err(|_| CardError::Encoding)?;
        ContactCard::from_bytes(&bytes)
    }
}

fn card_checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let h = sha256(&[&label("card checksum"), body]);
    [h[0], h[1], h[2], h[3]]
}

impl FromStr for ContactCard {
    type Err = CardError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ContactCard::parse(s)
    }
}

impl fmt::Display for ContactCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl fmt::Debug for ContactCard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContactCard")
            .field("address", &self.address)
            .field("checks", &self.checks.len())
            .field("name", &self.name)
            .finish()
    }
}

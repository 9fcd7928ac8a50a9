//! The two cryptographic suites and the fixed sizes of everything on the wire
//! (`docs/PROTOCOL.md` §3 and §6). Every size in the protocol is defined here once.

pub(crate) mod rsa;
pub(crate) mod xwing;

use core::fmt;
use core::str::FromStr;

use crate::error::AddressError;

/// A cryptographic suite. A ledger carries exactly one suite, so all of its entries share one
/// shape (`docs/DESIGN.md` §3.3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Suite {
    /// Hybrid post-quantum KEM: X25519 + ML-KEM-768 with the X-Wing combiner. The default.
    #[default]
    XWing,
    /// The paper's suite: RSA-3072 with OAEP-SHA256, made key-private.
    RsaOaep,
}

/// Byte sizes of one suite's entries and keys (`docs/PROTOCOL.md` §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Total length of an entry on the wire, proof-of-work stamp included.
    pub entry_len: usize,
    /// Length of the `phrase` field (the KEM ciphertext).
    pub phrase_len: usize,
    /// Length of an address's public-key bytes.
    pub address_len: usize,
}

/// Length of the `header` field: a 32-byte key commitment and the sealed check string.
pub const HEADER_LEN: usize = 32 + CHECK_STRING_LEN + TAG_LEN;
/// Length of the `check` field: an HMAC-SHA256 tag.
pub const CHECK_LEN: usize = 32;
/// Length of the `from` field: the sealed 32-byte sender fingerprint.
pub const FROM_LEN: usize = FINGERPRINT_LEN + TAG_LEN;
/// Length of the proof-of-work stamp at the end of every entry.
pub const STAMP_LEN: usize = 8;
/// Length of an AES-256-GCM tag.
pub const TAG_LEN: usize = 16;
/// Length of a check string.
pub const CHECK_STRING_LEN: usize = 16;
/// Length of a fingerprint.
pub const FINGERPRINT_LEN: usize = 32;
/// Length of the fixed part of a message body before the optional address and the text.
pub const BODY_FIXED_LEN: usize = 64;

const XWING_LAYOUT: Layout = Layout {
    entry_len: 4096,
    phrase_len: xwing::CIPHERTEXT_LEN,
    address_len: xwing::PUBLIC_LEN,
};

const RSA_LAYOUT: Layout = Layout {
    entry_len: 2048,
    phrase_len: rsa::PHRASE_LEN,
    address_len: rsa::MODULUS_LEN,
};

impl Suite {
    /// Every suite, in id order.
    pub const ALL: [Suite; 2] = [Suite::XWing, Suite::RsaOaep];

    /// The one-byte id used in binary encodings.
    pub const fn id(self) -> u8 {
        match self {
            Suite::XWing => 1,
            Suite::RsaOaep => 2,
        }
    }

    /// The suite with this id.
    pub fn from_id(id: u8) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.id() == id)
    }

    /// The name used in printable forms, flags and the ledger's `info`.
    pub const fn name(self) -> &'static str {
        match self {
            Suite::XWing => "xwing",
            Suite::RsaOaep => "rsa-oaep",
        }
    }

    /// The sizes of this suite's entries.
    pub const fn layout(self) -> Layout {
        match self {
            Suite::XWing => XWING_LAYOUT,
            Suite::RsaOaep => RSA_LAYOUT,
        }
    }
}

impl Layout {
    /// Offset of the `header` field.
    pub const fn header_at(&self) -> usize {
        self.phrase_len
    }
    /// Offset of the `check` field.
    pub const fn check_at(&self) -> usize {
        self.header_at() + HEADER_LEN
    }
    /// Offset of the `from` field.
    pub const fn from_at(&self) -> usize {
        self.check_at() + CHECK_LEN
    }
    /// Offset of the `cipher` field.
    pub const fn cipher_at(&self) -> usize {
        self.from_at() + FROM_LEN
    }
    /// Length of the sealed part: everything but the stamp.
    pub const fn sealed_len(&self) -> usize {
        self.entry_len - STAMP_LEN
    }
    /// Length of the `cipher` field, tag included.
    pub const fn cipher_len(&self) -> usize {
        self.sealed_len() - self.cipher_at()
    }
    /// Length of a message body (the plaintext inside `cipher`).
    pub const fn body_len(&self) -> usize {
        self.cipher_len() - TAG_LEN
    }
    /// Most text bytes one part carries; `intro` parts also carry the sender's address and
    /// check string.
    pub const fn part_capacity(&self, intro: bool) -> usize {
        let cap = self.body_len() - BODY_FIXED_LEN;
        if intro {
            cap - self.intro_len()
        } else {
            cap
        }
    }
    /// Length of the intro block: the sender's address key and its current check string.
    pub const fn intro_len(&self) -> usize {
        self.address_len + CHECK_STRING_LEN
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Suite {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Suite::ALL
            .into_iter()
            .find(|suite| suite.name() == s)
            .ok_or_else(|| AddressError::UnknownSuite(s.chars().take(32).collect()))
    }
}

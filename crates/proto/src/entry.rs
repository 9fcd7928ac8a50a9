//! The entry wire format (paper IV.1; `docs/PROTOCOL.md` §6): fixed-size bytes with the fields
//! `phrase`, `header`, `check`, `from`, `cipher` and the proof-of-work stamp. The ledger's `id`
//! and `time` are not part of an entry; the ledger frames them alongside.

use core::fmt;

use crate::error::EntryError;
use crate::suite::{Layout, Suite, STAMP_LEN};

/// One entry: exactly [`Layout::entry_len`] bytes of its suite. Constructing one checks the
/// length, so every accessor below is infallible.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    suite: Suite,
    bytes: Box<[u8]>,
}

/// The proof-of-work nonce at the end of an entry, big-endian on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Stamp(pub u64);

impl Entry {
    /// Reads entry bytes of `suite`. Any bytes of the right length are an entry; whether it
    /// opens, and for whom, is [`crate::open`]'s business.
    pub fn parse(suite: Suite, bytes: &[u8]) -> Result<Entry, EntryError> {
        let layout = suite.layout();
        if bytes.len() != layout.entry_len {
            return Err(EntryError::Length {
                suite: suite.name(),
                expected: layout.entry_len,
                got: bytes.len(),
            });
        }
        Ok(Entry {
            suite,
            bytes: bytes.into(),
        })
    }

    pub(crate) fn from_sealed(suite: Suite, sealed: Vec<u8>) -> Entry {
        let mut bytes = sealed;
        bytes.resize(suite.layout().entry_len, 0);
        Entry {
            suite,
            bytes: bytes.into_boxed_slice(),
        }
    }

    /// The entry's suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    fn layout(&self) -> Layout {
        self.suite.layout()
    }

    /// All bytes, as they go on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// All bytes, owned.
    pub fn into_bytes(self) -> Box<[u8]> {
        self.bytes
    }

    /// Everything but the stamp: what the proof of work covers.
    pub fn sealed(&self) -> &[u8] {
        &self.bytes[..self.layout().sealed_len()]
    }

    /// The `phrase` field: the KEM ciphertext.
    pub fn phrase(&self) -> &[u8] {
        let l = self.layout();
        &self.bytes[..l.header_at()]
    }

    /// The `header` field: key commitment and sealed check string.
    pub fn header(&self) -> &[u8] {
        let l = self.layout();
        &self.bytes[l.header_at()..l.check_at()]
    }

    /// The `check` field: the sender's HMAC under the per-contact check key.
    pub fn check(&self) -> &[u8] {
        let l = self.layout();
        &self.bytes[l.check_at()..l.from_at()]
    }

    /// The `from` field: the sealed sender fingerprint.
    pub fn from_field(&self) -> &[u8] {
        let l = self.layout();
        &self.bytes[l.from_at()..l.cipher_at()]
    }

    /// The `cipher` field: the sealed, padded message body.
    pub fn cipher(&self) -> &[u8] {
        let l = self.layout();
        &self.bytes[l.cipher_at()..l.sealed_len()]
    }

    /// The proof-of-work stamp.
    pub fn stamp(&self) -> Stamp {
        let mut b = [0u8; STAMP_LEN];
        b.copy_from_slice(&self.bytes[self.layout().sealed_len()..]);
        Stamp(u64::from_be_bytes(b))
    }

    /// Replaces the stamp (see [`crate::pow::solve`]).
    pub fn set_stamp(&mut self, stamp: Stamp) {
        let at = self.layout().sealed_len();
        self.bytes[at..].copy_from_slice(&stamp.0.to_be_bytes());
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Entry({}, {} bytes)", self.suite, self.bytes.len())
    }
}

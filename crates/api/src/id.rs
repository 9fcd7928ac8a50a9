//! Entry ids as the ledger assigns them (paper III.2: bijective, in chronological order) and
//! ranges of them, which is how a reader is told which ids expired before it read them; and the
//! [`LedgerId`] that names the ledger those entry ids belong to.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The id the ledger assigned to an entry: 1 for the first, each next one higher. `EntryId(0)`
/// is "before the first", the `after` of a reader that has seen nothing.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct EntryId(pub u64);

impl EntryId {
    /// Before the first entry: where a new reader starts.
    pub const START: EntryId = EntryId(0);

    /// The number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The id after this one, if there is one.
    pub fn next(self) -> Option<EntryId> {
        self.0.checked_add(1).map(EntryId)
    }
}

impl From<u64> for EntryId {
    fn from(v: u64) -> Self {
        EntryId(v)
    }
}

impl From<EntryId> for u64 {
    fn from(v: EntryId) -> Self {
        v.0
    }
}

impl PartialEq<u64> for EntryId {
    fn eq(&self, other: &u64) -> bool {
        self.0 == *other
    }
}

impl PartialOrd<u64> for EntryId {
    fn partial_cmp(&self, other: &u64) -> Option<std::cmp::Ordering> {
        Some(self.0.cmp(other))
    }
}

/// `id + n`: the id `n` places later (saturating: ids never wrap).
impl std::ops::Add<u64> for EntryId {
    type Output = EntryId;
    fn add(self, n: u64) -> EntryId {
        EntryId(self.0.saturating_add(n))
    }
}

/// `id - n`: the id `n` places earlier (saturating at [`EntryId::START`]).
impl std::ops::Sub<u64> for EntryId {
    type Output = EntryId;
    fn sub(self, n: u64) -> EntryId {
        EntryId(self.0.saturating_sub(n))
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Text that is not an id or a range of ids.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("`{0}` is not an id range `FIRST-LAST` with FIRST <= LAST")]
pub struct RangeParseError(String);

/// The ids `first..=last`, both ends included, `first <= last`. On the wire: `FIRST-LAST` in
/// a header, `[FIRST, LAST]` in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "[u64; 2]", into = "[u64; 2]")]
pub struct IdRange {
    first: EntryId,
    last: EntryId,
}

impl IdRange {
    /// The range `first..=last`, or `None` when `first > last`.
    pub fn new(first: EntryId, last: EntryId) -> Option<IdRange> {
        (first <= last).then_some(IdRange { first, last })
    }

    /// The first id.
    pub fn first(&self) -> EntryId {
        self.first
    }

    /// The last id.
    pub fn last(&self) -> EntryId {
        self.last
    }

    /// How many ids.
    pub fn len(&self) -> u64 {
        (self.last.0 - self.first.0).saturating_add(1)
    }

    /// Always false: a range holds at least one id.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Whether `id` is in the range.
    pub fn contains(&self, id: EntryId) -> bool {
        self.first <= id && id <= self.last
    }

    /// The smallest range holding both.
    pub fn union(&self, other: &IdRange) -> IdRange {
        IdRange {
            first: self.first.min(other.first),
            last: self.last.max(other.last),
        }
    }
}

impl fmt::Display for IdRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl FromStr for IdRange {
    type Err = RangeParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || RangeParseError(s.chars().take(60).collect());
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let a: u64 = a.trim().parse().map_err(|_| bad())?;
        let b: u64 = b.trim().parse().map_err(|_| bad())?;
        IdRange::new(EntryId(a), EntryId(b)).ok_or_else(bad)
    }
}

impl TryFrom<[u64; 2]> for IdRange {
    type Error = RangeParseError;

    fn try_from([a, b]: [u64; 2]) -> Result<Self, Self::Error> {
        IdRange::new(EntryId(a), EntryId(b)).ok_or_else(|| RangeParseError(format!("[{a}, {b}]")))
    }
}

impl From<IdRange> for [u64; 2] {
    fn from(r: IdRange) -> Self {
        [r.first.0, r.last.0]
    }
}

/// The identity of a ledger's data: 16 random bytes made once, when the ledger's store is created
/// (an embedded store keeps it in its data directory, a JetStream stream in its metadata), and
/// reported by every front end of that store and by its mirrors, in `/v1/info` as 32 lowercase
/// hex digits (`docs/API.md`). Entry ids are numbers on one ledger: a client keeps its position
/// per `LedgerId`, so two URLs of one ledger share a position, and a ledger whose data was wiped
/// (ids start again at 1) is told from the one it replaced at the same URL.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LedgerId([u8; 16]);

impl LedgerId {
    /// The id made of these bytes (callers draw them from a random generator).
    pub const fn from_bytes(bytes: [u8; 16]) -> LedgerId {
        LedgerId(bytes)
    }

    /// Its bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// 32 lowercase hex digits, as in `/v1/info`.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Display for LedgerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for LedgerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LedgerId({})", self.to_hex())
    }
}

/// Text that is not a ledger id (32 hex digits).
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("`{0}` is not a ledger id (32 hex digits)")]
pub struct LedgerIdParseError(String);

impl FromStr for LedgerId {
    type Err = LedgerIdParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || LedgerIdParseError(s.chars().take(40).collect());
        let s = s.trim();
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut out = [0u8; 16];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(LedgerId(out))
    }
}

impl TryFrom<String> for LedgerId {
    type Error = LedgerIdParseError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<LedgerId> for String {
    fn from(id: LedgerId) -> Self {
        id.to_hex()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_round_trip_through_text_and_json() {
        let r = IdRange::new(EntryId(3), EntryId(9)).unwrap();
        assert_eq!(r.to_string(), "3-9");
        assert_eq!("3-9".parse::<IdRange>().unwrap(), r);
        assert_eq!(serde_json::to_string(&r).unwrap(), "[3,9]");
        assert_eq!(serde_json::from_str::<IdRange>("[3,9]").unwrap(), r);
        assert_eq!(r.len(), 7);
        assert!(r.contains(EntryId(3)) && r.contains(EntryId(9)) && !r.contains(EntryId(10)));
    }

    #[test]
    fn backwards_or_malformed_ranges_are_refused() {
        for bad in ["9-3", "3", "-3", "3-", "a-b", "1-2-3", ""] {
            assert!(bad.parse::<IdRange>().is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<IdRange>("[9,3]").is_err());
        assert_eq!(IdRange::new(EntryId(2), EntryId(1)), None);
    }

    #[test]
    fn ledger_ids_round_trip_as_32_hex_digits_and_nothing_else_parses() {
        let id = LedgerId::from_bytes([0xab; 16]);
        assert_eq!(id.to_hex(), "ab".repeat(16));
        assert_eq!(id.to_hex().parse::<LedgerId>().unwrap(), id);
        assert_eq!("AB".repeat(16).parse::<LedgerId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(16)));
        assert_eq!(serde_json::from_str::<LedgerId>(&json).unwrap(), id);
        let long = "a".repeat(34);
        let odd = format!("{}é", "a".repeat(30));
        for bad in [
            "",
            "ab",
            "zz".repeat(16).as_str(),
            long.as_str(),
            odd.as_str(),
            "+1".repeat(16).as_str(),
        ] {
            assert!(bad.parse::<LedgerId>().is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<LedgerId>("42").is_err());
    }
}

//! The JSON bodies of the API.

use serde::{Deserialize, Serialize};

use crate::id::{EntryId, IdRange, LedgerId};

pub use deaddrop_proto::PROTOCOL;

/// The WebSocket close code for a subscriber that fell behind; it resumes by reading.
pub const CLOSE_LAGGED: u16 = 4000;

/// The answer to `GET` [`path::INFO`](crate::path::INFO).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// The protocol version, [`PROTOCOL`].
    pub protocol: String,
    /// The ledger's suite name.
    pub suite: String,
    /// The length of every entry on this ledger.
    pub entry_bytes: usize,
    /// The current lifetime of entries, in seconds (paper III.3.1: it adapts to traffic).
    pub lifetime_s: u64,
    /// The longest lifetime this ledger grants.
    pub max_lifetime_s: u64,
    /// The shortest lifetime this ledger shrinks to.
    pub min_lifetime_s: u64,
    /// The proof-of-work difficulty appends need now, in bits.
    pub pow_bits: u8,
    /// The oldest id held, if any.
    pub oldest_id: Option<EntryId>,
    /// The newest id assigned, if any.
    pub newest_id: Option<EntryId>,
    /// Entries held now.
    pub entries: u64,
    /// The most entries one read returns.
    pub max_page: usize,
    /// The storage backend: `embedded`, `memory`, `jetstream`, ...
    pub store: String,
    /// The upstream ledger's URL when this ledger is a mirror.
    pub mirror_of: Option<String>,
    /// For a mirror: the upstream's newest id as last seen.
    #[serde(default)]
    pub upstream_newest_id: Option<EntryId>,
    /// For a mirror: how many ids it is behind its upstream.
    #[serde(default)]
    pub behind: Option<u64>,
    /// The server's version.
    pub server_version: String,
    /// The identity of the ledger's data ([`LedgerId`]): the same from every front end of one
    /// store and from its mirrors, new when the data is. `None` from ledgers older than the
    /// field, which clients then know by their URL alone.
    #[serde(default)]
    pub ledger_id: Option<LedgerId>,
}

/// The answer to an append: `201 Created`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The id assigned.
    pub id: EntryId,
    /// The time assigned, milliseconds since the Unix epoch.
    pub time: u64,
    /// When the entry expires at the current lifetime, milliseconds since the Unix epoch.
    pub expires_at: u64,
    /// True when the ledger held these bytes already and answered with their first id
    /// (`200 OK` instead of `201 Created`); nothing was stored.
    #[serde(default)]
    pub repeat: bool,
}

/// The first text message of a push stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamHello {
    /// Always `hello`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The oldest id held.
    pub oldest_id: Option<EntryId>,
    /// The newest id assigned.
    pub newest_id: Option<EntryId>,
    /// The ids after the subscriber's `after` that expired unseen, `[first, last]`.
    pub gap: Option<IdRange>,
}

impl StreamHello {
    /// The value of [`StreamHello::kind`].
    pub const KIND: &'static str = "hello";

    /// A hello with these bounds.
    pub fn new(
        oldest_id: Option<EntryId>,
        newest_id: Option<EntryId>,
        gap: Option<IdRange>,
    ) -> Self {
        StreamHello {
            kind: Self::KIND.into(),
            oldest_id,
            newest_id,
            gap,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const OLDER: &str = r#"{"protocol":"deaddrop/1","suite":"xwing","entry_bytes":4096,
        "lifetime_s":60,"max_lifetime_s":60,"min_lifetime_s":60,"pow_bits":0,"oldest_id":null,
        "newest_id":null,"entries":0,"max_page":1024,"store":"memory","mirror_of":null,
        "server_version":"0.1.0"}"#;

    #[test]
    fn an_info_from_a_ledger_older_than_ledger_id_still_parses() {
        let info: Info = serde_json::from_str(OLDER).unwrap();
        assert_eq!(info.ledger_id, None);
        let with = OLDER.replace(
            r#""server_version""#,
            r#""ledger_id":"000102030405060708090a0b0c0d0e0f","server_version""#,
        );
        let info: Info = serde_json::from_str(&with).unwrap();
        let id = info.ledger_id.unwrap();
        assert_eq!(id.to_hex(), "000102030405060708090a0b0c0d0e0f");
        // And it is printed as it was read.
        assert!(serde_json::to_string(&info)
            .unwrap()
            .contains(r#""ledger_id":"000102030405060708090a0b0c0d0e0f""#));
        let bad = OLDER.replace(
            r#""server_version""#,
            r#""ledger_id":"xyz","server_version""#,
        );
        assert!(serde_json::from_str::<Info>(&bad).is_err());
    }
}

//! What a home keeps about ledgers: its settings ([`crate::settings`]) and where it stands on
//! each ledger it synced with.
//!
//! **Positions are kept per ledger, not per URL.** Entry ids are numbers on one ledger's data,
//! which every ledger names with its [`LedgerId`] (`ledger_id` in `/v1/info`). The last id seen is
//! kept under `id:<ledger id>`, so `http://localhost:8470` and `http://127.0.0.1:8470`, or a
//! ledger and its mirrors, share one position, and a ledger whose data was wiped (its ids start
//! again at 1) is not read from the old ledger's position, which would skip its entries.
//! A ledger too old to report an id is known by its URL, as before ids existed.
//!
//! Each URL's last id is remembered too (`ledger_urls`): a URL that answers with an id other
//! than the one it had is another ledger now, which [`Db::ledger_position`] reports. A position
//! an older version of this client kept under a URL moves to the id the first time that URL
//! answers with one.

use deaddrop_api::LedgerId;
use rusqlite::{params, OptionalExtension};

use super::Db;
use crate::error::ClientError;
use crate::settings::{Setting, Settings};

/// The tables of this module (added to older homes as they open).
pub(super) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- The ledger id each URL answered with last.
CREATE TABLE IF NOT EXISTS ledger_urls (
    url TEXT PRIMARY KEY,
    ledger_id TEXT NOT NULL
);
"#;

/// The key a position is kept under: `id:<hex>` for a ledger that reports its id, its URL for
/// one that does not.
pub fn position_key(url: &str, id: Option<&LedgerId>) -> String {
    match id {
        Some(id) => format!("id:{id}"),
        None => url.to_string(),
    }
}

/// Where this home stands on a ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    /// Where the position is kept ([`position_key`]): what [`Db::apply_batch`] takes.
    pub key: String,
    /// The last id seen on that ledger (0: none yet).
    pub last_id: u64,
    /// The ledger this URL answered with before, when it now answers with another that this
    /// home has never read: its data was wiped, or another ledger took the URL. Its entries are
    /// read from the start; what the old one held and this home had not read is not there.
    pub replaced: Option<LedgerId>,
}

impl Db {
    /// The home's settings.
    pub fn settings(&self) -> Result<Settings, ClientError> {
        let mut st = self.conn.prepare("SELECT key, value FROM settings")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Settings::default();
        for row in rows {
            let (key, value) = row?;
            // A key of a newer version is kept but not known here.
            if let Ok(key) = key.parse::<Setting>() {
                out.put(key, Some(value));
            }
        }
        Ok(out)
    }

    /// Stores `value` (already checked with [`Setting::check`]) as `key`.
    pub fn set_setting(&mut self, key: Setting, value: &str) -> Result<(), ClientError> {
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key.name(), value],
        )?;
        Ok(())
    }

    /// Removes `key`; returns the value it had.
    pub fn unset_setting(&mut self, key: Setting) -> Result<Option<String>, ClientError> {
        let was = self.settings()?.get(key).map(str::to_string);
        self.conn
            .execute("DELETE FROM settings WHERE key = ?1", [key.name()])?;
        Ok(was)
    }

    /// This home's position on the ledger that answered at `url` with `id` (`None`: a ledger
    /// that reports no id), as a sync starts: remembers `id` as `url`'s, moves a position an
    /// older version kept under `url` to `id`, and says when `url` answered with another ledger
    /// before ([`Position::replaced`]). One transaction.
    pub fn ledger_position(
        &mut self,
        url: &str,
        id: Option<LedgerId>,
    ) -> Result<Position, ClientError> {
        let Some(id) = id else {
            return Ok(Position {
                key: url.to_string(),
                last_id: self.last_id(url)?,
                replaced: None,
            });
        };
        let key = position_key(url, Some(&id));
        let tx = self.conn.transaction()?;
        let get = |k: &str| -> rusqlite::Result<Option<u64>> {
            tx.query_row("SELECT last_id FROM sync WHERE ledger = ?1", [k], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .map(|v| v.map(|v| v as u64))
        };
        let held = get(&key)?;
        let by_url = get(url)?;
        let before: Option<LedgerId> = tx
            .query_row(
                "SELECT ledger_id FROM ledger_urls WHERE url = ?1",
                [url],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .and_then(|s| s.parse().ok());
        let mut last_id = held;
        // A position of a version that kept them per URL: it was this ledger's unless the URL
        // has answered with another id since.
        if let Some(old) = by_url.filter(|_| before.is_none_or(|b| b == id)) {
            last_id = Some(last_id.map_or(old, |h| h.max(old)));
            tx.execute(
                "INSERT INTO sync (ledger, last_id) VALUES (?1, ?2)
                 ON CONFLICT (ledger) DO UPDATE SET last_id = max(last_id, excluded.last_id)",
                params![key, old as i64],
            )?;
            tx.execute("DELETE FROM sync WHERE ledger = ?1", [url])?;
        }
        let replaced = before.filter(|b| *b != id && last_id.is_none());
        tx.execute(
            "INSERT INTO ledger_urls (url, ledger_id) VALUES (?1, ?2)
             ON CONFLICT (url) DO UPDATE SET ledger_id = excluded.ledger_id",
            params![url, id.to_hex()],
        )?;
        tx.commit()?;
        Ok(Position {
            key,
            last_id: last_id.unwrap_or(0),
            replaced,
        })
    }

    /// This home's position on the ledger at `url`, without changing anything (for `status`):
    /// that of `id` if the ledger answered with one, else that of the id `url` answered with
    /// last, else the one kept under `url`. Returns the id it went by, too.
    pub fn known_position(
        &self,
        url: &str,
        id: Option<LedgerId>,
    ) -> Result<(Option<LedgerId>, u64), ClientError> {
        let id = match id {
            Some(id) => Some(id),
            None => self
                .conn
                .query_row(
                    "SELECT ledger_id FROM ledger_urls WHERE url = ?1",
                    [url],
                    |r| r.get::<_, String>(0),
                )
                .optional()?
                .and_then(|s| s.parse().ok()),
        };
        let held = match id {
            Some(id) => self.last_id(&position_key(url, Some(&id)))?,
            None => 0,
        };
        // Not moved yet (no sync since this version): the URL's.
        Ok((id, held.max(self.last_id(url)?)))
    }
}

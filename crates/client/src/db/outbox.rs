//! The outbox beyond its parts (the `outbox` table of [`super`]): what waits for a ledger, to
//! whom and since when (`deaddrop outbox`, `deaddrop status`), and the parts a ledger refused for
//! good.
//!
//! A part a ledger refuses for a reason that does not pass (not a busy or unreachable ledger: a
//! bad size, a stamp it never accepts, a part damaged on disk) is set aside with the reason, so
//! the parts after it still go out: one bad part never holds the queue. Parts set aside are
//! tried again only when the user asks (`deaddrop outbox flush`), e.g. after pointing the home at
//! the right ledger; until then `outbox` and `status` list them with the reason.

use rusqlite::params;

use super::{Db, OutboxItem};
use crate::error::ClientError;

/// The tables of this module (added to older homes as they open).
pub(super) const SCHEMA: &str = r#"
-- Outbox parts a ledger refused for good, with why: skipped by automatic sends.
CREATE TABLE IF NOT EXISTS outbox_refused (
    part INTEGER PRIMARY KEY REFERENCES outbox(id) ON DELETE CASCADE,
    reason TEXT NOT NULL,
    time_ms INTEGER NOT NULL
);
"#;

/// A message with parts still in the outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedMessage {
    /// The message's row id (as `read --json` shows it).
    pub id: i64,
    /// To whom (the contact's name).
    pub contact: String,
    /// When it was written (queued), ms since the Unix epoch.
    pub since_ms: u64,
    /// Its parts not yet acknowledged by a ledger.
    pub parts: u64,
    /// Of those, the parts a ledger refused for good.
    pub refused: u64,
    /// Why (the latest refusal), if any was refused.
    pub reason: Option<String>,
}

/// A part a ledger refused for good, as a flush reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedPart {
    /// The message's row id.
    pub message: i64,
    /// To whom.
    pub contact: String,
    /// Why.
    pub reason: String,
}

impl Db {
    /// Parts not yet acknowledged by a ledger, oldest first; those refused for good only with
    /// `with_refused`.
    pub fn queued_parts(&self, with_refused: bool) -> Result<Vec<OutboxItem>, ClientError> {
        let mut st = self.conn.prepare(
            "SELECT o.id, o.entry, o.message_row FROM outbox o
             WHERE o.ledger_id IS NULL
               AND (?1 OR NOT EXISTS (SELECT 1 FROM outbox_refused r WHERE r.part = o.id))
             ORDER BY o.id",
        )?;
        let rows = st.query_map([with_refused], |r| {
            Ok(OutboxItem {
                id: r.get(0)?,
                entry: r.get(1)?,
                message_row: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Sets part `item` aside: a ledger refused it for good, for `reason`.
    pub fn outbox_refused(
        &mut self,
        item: i64,
        reason: &str,
        now_ms: u64,
    ) -> Result<RefusedPart, ClientError> {
        self.conn.execute(
            "INSERT INTO outbox_refused (part, reason, time_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (part) DO UPDATE SET reason = excluded.reason, time_ms = excluded.time_ms",
            params![item, reason, now_ms as i64],
        )?;
        let (message, contact): (i64, Option<String>) = self.conn.query_row(
            "SELECT m.id, c.name FROM outbox o JOIN messages m ON m.id = o.message_row
             LEFT JOIN contacts c ON c.id = m.contact_id WHERE o.id = ?1",
            [item],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(RefusedPart {
            message,
            contact: contact.unwrap_or_default(),
            reason: reason.to_string(),
        })
    }

    /// The messages with parts in the outbox, oldest first.
    pub fn queued_messages(&self) -> Result<Vec<QueuedMessage>, ClientError> {
        let mut st = self.conn.prepare(
            "SELECT m.id, c.name, m.time_ms, COUNT(o.id), COUNT(r.part), MAX(r.reason)
             FROM outbox o JOIN messages m ON m.id = o.message_row
             LEFT JOIN contacts c ON c.id = m.contact_id
             LEFT JOIN outbox_refused r ON r.part = o.id
             WHERE o.ledger_id IS NULL
             GROUP BY m.id ORDER BY m.time_ms, m.id",
        )?;
        let rows = st.query_map([], |r| {
            Ok(QueuedMessage {
                id: r.get(0)?,
                contact: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                since_ms: r.get::<_, i64>(2)? as u64,
                parts: r.get::<_, i64>(3)? as u64,
                refused: r.get::<_, i64>(4)? as u64,
                reason: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

//! What the user marks on a contact besides its card: its local name (`contact rename`), and
//! that its fingerprint was compared in person (`contact verify`).
//!
//! In-person verification is the user's own statement, kept apart from `confirmed` (a reply
//! verified under the key we issued, which proves the contact holds the card's key but not that
//! the card came from the person meant). It lives in `contacts.verified_ms`, a column homes made
//! before it existed get when they are first opened ([`add_columns`]).

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::Db;
use crate::error::ClientError;

/// Adds the columns this module keeps to a database made before they existed; does nothing
/// on one that has them. Checked and altered in one immediate transaction, so two commands
/// opening an old home at once do not both add the column.
pub(super) fn add_columns(conn: &mut Connection) -> Result<(), rusqlite::Error> {
    let has = |conn: &Connection| -> Result<bool, rusqlite::Error> {
        conn.query_row(
            "SELECT COUNT(*) FROM pragma_table_info('contacts') WHERE name = 'verified_ms'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
    };
    if has(conn)? {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if !has(&tx)? {
        tx.execute_batch("ALTER TABLE contacts ADD COLUMN verified_ms INTEGER")?;
    }
    tx.commit()
}

/// A contact's in-person verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InPerson {
    /// When the user marked the fingerprint compared, ms since the Unix epoch.
    pub at_ms: u64,
}

impl Db {
    /// Renames contact `old` to `new` (trimmed, not empty). Refuses a name another contact has.
    pub fn rename_contact(&mut self, old: &str, new: &str) -> Result<(), ClientError> {
        let new = new.trim();
        if new.is_empty() {
            return Err(ClientError::Input("the new name must not be empty".into()));
        }
        let tx = self.conn.transaction()?;
        let id: Option<i64> = tx
            .query_row("SELECT id FROM contacts WHERE name = ?1", [old], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(id) = id else {
            return Err(ClientError::UnknownContact(old.to_string()));
        };
        let taken: Option<i64> = tx
            .query_row("SELECT id FROM contacts WHERE name = ?1", [new], |r| {
                r.get(0)
            })
            .optional()?;
        match taken {
            Some(other) if other != id => {
                return Err(ClientError::ContactExists(format!(
                    "you already have a contact named `{new}`"
                )))
            }
            Some(_) => return Ok(()),
            None => {}
        }
        tx.execute(
            "UPDATE contacts SET name = ?2 WHERE id = ?1",
            params![id, new],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Marks contact `name`'s fingerprint as compared in person at `now_ms` (`true`), or takes
    /// the mark back (`false`). Returns the mark now held.
    pub fn mark_verified_in_person(
        &mut self,
        name: &str,
        verified: bool,
        now_ms: u64,
    ) -> Result<Option<InPerson>, ClientError> {
        let at = verified.then_some(now_ms as i64);
        let n = self.conn.execute(
            "UPDATE contacts SET verified_ms = CASE WHEN ?2 IS NULL THEN NULL ELSE COALESCE(verified_ms, ?2) END WHERE name = ?1",
            params![name, at],
        )?;
        if n == 0 {
            return Err(ClientError::UnknownContact(name.to_string()));
        }
        self.verified_in_person(name)
    }

    /// Whether contact `name`'s fingerprint was compared in person, and when.
    pub fn verified_in_person(&self, name: &str) -> Result<Option<InPerson>, ClientError> {
        let row: Option<Option<i64>> = self
            .conn
            .query_row(
                "SELECT verified_ms FROM contacts WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()?;
        match row {
            None => Err(ClientError::UnknownContact(name.to_string())),
            Some(t) => Ok(t.map(|t| InPerson {
                at_ms: u64::try_from(t).unwrap_or(0),
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    fn has_column(c: &Connection) -> bool {
        c.query_row(
            "SELECT COUNT(*) FROM pragma_table_info('contacts') WHERE name = 'verified_ms'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap()
            > 0
    }

    #[test]
    fn an_older_database_gets_the_column_and_keeps_its_contacts() {
        // A database as homes made before the column have it.
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(super::super::SCHEMA).unwrap();
        conn.execute(
            "INSERT INTO contacts (name, fingerprint, card, issued_key, created_ms)
             VALUES ('b', x'01', 'card', x'02', 1)",
            [],
        )
        .unwrap();
        assert!(!has_column(&conn));
        let conn = super::super::configure(conn).unwrap();
        assert!(has_column(&conn));
        let (name, mark): (String, Option<i64>) = conn
            .query_row("SELECT name, verified_ms FROM contacts", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((name.as_str(), mark), ("b", None));
        // Opening it again changes nothing.
        let conn = super::super::configure(conn).unwrap();
        assert!(has_column(&conn));
    }
}

//! Part of a conversation (`read NAME --last N --since T`): only the messages shown are marked
//! read, so what a window leaves out stays unread in the inbox.

use rusqlite::params;

use super::{Db, MessageView};
use crate::error::ClientError;

/// Which messages of a conversation to show.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// Only messages at or after this time, ms since the Unix epoch.
    pub since_ms: Option<u64>,
    /// Only the newest this many (of those after `since_ms`).
    pub last: Option<u64>,
}

impl Db {
    /// The messages of the conversation with `name` in `window`, oldest first; marks those read.
    pub fn conversation_window(
        &mut self,
        name: &str,
        window: Window,
    ) -> Result<Vec<MessageView>, ClientError> {
        let c = self.contact(name)?;
        let since = window
            .since_ms
            .map_or(i64::MIN, |t| t.min(i64::MAX as u64) as i64);
        // SQLite takes a negative LIMIT as none.
        let last = window.last.map_or(-1, |n| n.min(i64::MAX as u64) as i64);
        let mut st = self.conn.prepare(
            "SELECT id, direction, text, time_ms, verified, read FROM (
                 SELECT * FROM messages WHERE contact_id = ?1 AND time_ms >= ?2
                 ORDER BY time_ms DESC, id DESC LIMIT ?3)
             ORDER BY time_ms, id",
        )?;
        let rows = st.query_map(params![c.id, since, last], MessageView::from_row)?;
        let out = rows.collect::<Result<Vec<_>, _>>()?;
        drop(st);
        let tx = self.conn.transaction()?;
        for m in out.iter().filter(|m| !m.was_read) {
            tx.execute("UPDATE messages SET read = 1 WHERE id = ?1", [m.id])?;
        }
        tx.commit()?;
        Ok(out)
    }
}

//! The in-memory store (`--store memory`): nothing touches the disk, everything is lost when the
//! process ends. For tests and throwaway ledgers; the server says so when it starts. Its
//! [`LedgerId`] is drawn anew for every store, so a restarted memory ledger is a new ledger.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::sync::broadcast;

use super::{Appended, Bounds, EntryId, LedgerId, MirrorStore, Record, Store, StoreError};

/// Entries in a deque, oldest first.
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

struct Inner {
    id: LedgerId,
    records: VecDeque<Record>,
    newest: Option<EntryId>,
    last_time: u64,
    closed: bool,
    /// Push feed, set by [`Store::spawn_feed`], sent to under the lock so in id order.
    feed: Option<broadcast::Sender<Record>>,
}

impl MemoryStore {
    /// An empty store with a new random [`LedgerId`].
    pub fn new() -> Self {
        MemoryStore {
            inner: Mutex::new(Inner {
                id: super::new_ledger_id(),
                records: VecDeque::new(),
                newest: None,
                last_time: 0,
                closed: false,
                feed: None,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock means a panic while holding it; the data is still consistent
        // because every critical section below completes its change before it can panic.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn ledger_id(&self) -> LedgerId {
        self.lock().id
    }

    async fn append(&self, entry: Bytes, now_ms: u64) -> Result<Appended, StoreError> {
        let mut g = self.lock();
        if g.closed {
            return Err(StoreError::Unavailable("the store is closed".into()));
        }
        let id = g.newest.map_or(EntryId(1), |n| n + 1);
        let time_ms = now_ms.max(g.last_time);
        let record = Record { id, time_ms, entry };
        if let Some(feed) = &g.feed {
            let _ = feed.send(record.clone());
        }
        g.records.push_back(record);
        g.newest = Some(id);
        g.last_time = time_ms;
        Ok(Appended { id, time_ms })
    }

    async fn read(&self, after: EntryId, limit: usize) -> Result<Vec<Record>, StoreError> {
        let g = self.lock();
        // Ids are sorted but may skip (mirrors), so find the start by binary search.
        let start = g.records.partition_point(|r| r.id <= after);
        Ok(g.records.iter().skip(start).take(limit).cloned().collect())
    }

    fn bounds(&self) -> Bounds {
        let g = self.lock();
        Bounds {
            oldest: g.records.front().map(|r| r.id),
            newest: g.newest,
        }
    }

    async fn expire(&self, cutoff_ms: u64) -> Result<u64, StoreError> {
        let mut g = self.lock();
        let mut n = 0;
        while g.records.front().is_some_and(|r| r.time_ms < cutoff_ms) {
            g.records.pop_front();
            n += 1;
        }
        Ok(n)
    }

    fn spawn_feed(&self, tx: broadcast::Sender<Record>) {
        self.lock().feed = Some(tx);
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.lock().closed = true;
        Ok(())
    }
}

#[async_trait]
impl MirrorStore for MemoryStore {
    async fn adopt_ledger_id(&self, id: LedgerId) -> Result<(), StoreError> {
        self.lock().id = id;
        Ok(())
    }

    async fn insert(&self, record: Record) -> Result<(), StoreError> {
        let mut g = self.lock();
        if g.closed {
            return Err(StoreError::Unavailable("the store is closed".into()));
        }
        if g.newest.is_some_and(|n| record.id <= n) {
            return Err(StoreError::Unavailable(format!(
                "id {} is not above the newest id",
                record.id
            )));
        }
        let record = Record {
            time_ms: record.time_ms.max(g.last_time),
            ..record
        };
        g.newest = Some(record.id);
        g.last_time = record.time_ms;
        g.records.push_back(record);
        Ok(())
    }
}

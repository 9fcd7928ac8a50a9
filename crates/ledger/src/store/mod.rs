//! Ledger storage backends (docs/DESIGN.md §3.7). Every backend keeps the same promises, checked
//! by one conformance suite (`tests/store_conformance.rs`):
//!
//! - ids are assigned by the store, start at 1, strictly increase and are never reused, not
//!   even after every entry expired or the process restarted;
//! - times never decrease with increasing id;
//! - `append` resolves only once the entry is as durable as the backend can make it, and readers
//!   see an entry only after that;
//! - entries expire from the oldest end;
//! - the store has a [`LedgerId`], made once with its data and kept as long as the data is (the
//!   embedded store in its data directory, JetStream in the stream's metadata, the memory store
//!   for the life of the process), the same from every front end of one store.

pub mod jetstream;
pub mod lock;
pub mod log;
pub mod memory;

use async_trait::async_trait;
use bytes::Bytes;
pub use deaddrop_api::{EntryId, LedgerId};
use thiserror::Error;

/// One stored entry with the id and time the ledger assigned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The entry id (paper III.2).
    pub id: EntryId,
    /// When the ledger accepted it, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The entry's bytes.
    pub entry: Bytes,
}

/// The ids a store holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bounds {
    /// The oldest id still held, if any.
    pub oldest: Option<EntryId>,
    /// The newest id ever assigned (it may have expired), if any.
    pub newest: Option<EntryId>,
}

impl Bounds {
    /// Number of entries held.
    pub fn held(&self) -> u64 {
        match (self.oldest, self.newest) {
            (Some(o), Some(n)) if n >= o => n.get() - o.get() + 1,
            _ => 0,
        }
    }
}

/// What an append returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The id assigned.
    pub id: EntryId,
    /// The time assigned, in milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// A storage failure.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file operation failed.
    #[error("storage I/O failed while {context}: {source}")]
    Io {
        /// What the store was doing.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// The data directory holds something the store cannot read.
    #[error("the ledger data in {path} is damaged: {detail}")]
    Corrupt {
        /// The file or directory.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The store is shutting down or its backend is unreachable.
    #[error("the ledger store is unavailable: {0}")]
    Unavailable(String),
    /// Another process has the data directory open.
    #[error("the ledger data in {path} is in use by another process{}; stop it first, or give this ledger its own --data", holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Locked {
        /// The data directory.
        path: String,
        /// The process holding it, when known.
        holder: Option<u32>,
    },
}

impl StoreError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }
}

/// A new random [`LedgerId`], for a store whose data is being created.
pub fn new_ledger_id() -> LedgerId {
    use rand_core::RngCore;
    let mut bytes = [0u8; 16];
    deaddrop_proto::rng::SystemRng.fill_bytes(&mut bytes);
    LedgerId::from_bytes(bytes)
}

/// A ledger storage backend.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short name for `info` and logs: `embedded`, `memory`, ...
    fn kind(&self) -> &'static str;

    /// The identity of this store's data (`ledger_id` in `info`): made when the data was, and
    /// the same from every front end of it.
    fn ledger_id(&self) -> LedgerId;

    /// Appends one entry, assigning the next id and a time of at least `now_ms`. Resolves once
    /// the entry is durable; concurrent appends may share one sync (group commit).
    async fn append(&self, entry: Bytes, now_ms: u64) -> Result<Appended, StoreError>;

    /// Up to `limit` entries with id > `after`, in id order.
    ///
    /// The ledger tells the reader that ids skipped before the first record returned (or, when
    /// none is, those below [`Store::bounds`]'s oldest afterwards) are gone, and the reader moves
    /// past them for good. So a store skips only ids it knows are gone, ends a page before an id
    /// it cannot return after returning others, and answers [`StoreError::Unavailable`] when it
    /// cannot tell.
    async fn read(&self, after: EntryId, limit: usize) -> Result<Vec<Record>, StoreError>;

    /// The ids held now.
    fn bounds(&self) -> Bounds;

    /// Whether other processes append to this store too (front ends sharing a JetStream
    /// stream), so that its feed brings entries this ledger did not append itself.
    fn shared_with_other_writers(&self) -> bool {
        false
    }

    /// Removes every entry whose time is below `cutoff_ms`, oldest first. Returns how many were
    /// removed.
    async fn expire(&self, cutoff_ms: u64) -> Result<u64, StoreError>;

    /// Tells the store the lifetime now in force, for stores that expire entries themselves.
    async fn set_lifetime(&self, lifetime: std::time::Duration) -> Result<(), StoreError> {
        let _ = lifetime;
        Ok(())
    }

    /// Starts feeding every entry appended from now on, through any front end, into `tx`, in
    /// id order and only once it is durable. The ledger's push stream is this feed.
    fn spawn_feed(&self, tx: tokio::sync::broadcast::Sender<Record>);

    /// Whether the backend can take appends now, as far as the store can tell without trying
    /// (JetStream: the NATS connection is up). `/readyz` asks.
    fn healthy(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Flushes and stops background work. Appends after this fail with `Unavailable`.
    async fn close(&self) -> Result<(), StoreError>;
}

/// A store that can hold a copy of another ledger: it takes ids and times assigned upstream.
/// Only a mirror calls these; a ledger that assigns its own ids never does.
#[async_trait]
pub trait MirrorStore: Store {
    /// Stores a record whose id and time another ledger assigned. The id must be above every
    /// id held; ids may be skipped (the upstream expired them unseen).
    async fn insert(&self, record: Record) -> Result<(), StoreError>;

    /// Takes `id`, the upstream's [`LedgerId`], as this store's own from now on (kept as durably
    /// as the store keeps its data): a mirror's copy is of its upstream's ledger, and reports
    /// that ledger's id.
    async fn adopt_ledger_id(&self, id: LedgerId) -> Result<(), StoreError>;

    /// [`MirrorStore::insert`] for several records in id order; stores that can make them
    /// durable together (one sync) do so.
    async fn insert_many(&self, records: Vec<Record>) -> Result<(), StoreError> {
        for r in records {
            self.insert(r).await?;
        }
        Ok(())
    }
}

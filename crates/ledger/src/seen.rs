//! The entries the ledger holds, by digest, so that the same bytes appended again are answered
//! with the id they already have instead of being stored again (`docs/API.md`, "Repeats").
//!
//! A replayed entry costs its sender no new proof of work; if the ledger stored it again, one
//! solved stamp could fill the ledger. With this, a repeat is idempotent for as long as the
//! ledger holds the entry, and a client that retries an append whose answer it never saw gets
//! the id of the first.
//!
//! Memory is bounded by what the ledger holds: one 16-byte digest, an id and a time per held
//! entry (about 64 bytes with the map's overhead), dropped when the entry expires, and never
//! more than [`Seen::new`]'s `capacity`.

use std::collections::hash_map::Entry as MapEntry;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use deaddrop_api::EntryId;
use tokio::sync::watch;

use crate::store::Bounds;

/// Whether the store no longer holds `id`: below its oldest, or it holds nothing and has
/// assigned `id` already.
fn expired(id: EntryId, held: Bounds) -> bool {
    match held.oldest {
        Some(oldest) => id < oldest,
        None => held.newest.is_some_and(|n| n >= id),
    }
}

/// The first 16 bytes of an entry's SHA-256: collisions need about 2^64 work, and an entry
/// that collides with another is only answered with the other's id.
pub type Digest = [u8; 16];

/// The digest of an entry's bytes.
pub fn digest(entry: &[u8]) -> Digest {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, entry);
    let mut out = [0u8; 16];
    out.copy_from_slice(&d.as_ref()[..16]);
    out
}

/// Where a stored entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored {
    /// Its id.
    pub id: EntryId,
    /// Its time, milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// What an append of some bytes should do.
#[derive(Debug)]
pub enum Claim {
    /// The ledger holds these bytes already.
    Known(Stored),
    /// Another append of the same bytes is in flight: wait for its outcome
    /// ([`Claim::wait`]), then ask again.
    Wait(watch::Receiver<Option<Stored>>),
    /// This append stores them; report the outcome through the guard.
    Mine(Pending),
}

impl Claim {
    /// Waits for the other append's outcome: `Some` once it is stored, `None` if it failed (the
    /// caller then claims again and may store the entry itself).
    pub async fn wait(mut rx: watch::Receiver<Option<Stored>>) -> Option<Stored> {
        match rx.wait_for(Option::is_some).await {
            Ok(v) => *v,
            Err(_) => None,
        }
    }
}

/// An append in flight. [`Pending::stored`] records where the entry went; dropping it without
/// that (the append failed) lets the waiting repeats try themselves.
#[derive(Debug)]
pub struct Pending {
    digest: Digest,
    tx: Option<watch::Sender<Option<Stored>>>,
}

impl Pending {
    /// The append stored the entry at `at`.
    pub fn stored(mut self, seen: &Seen, at: Stored) {
        seen.record(self.digest, at);
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Some(at));
        }
    }

    /// The append failed: forget the claim.
    fn abandon(&mut self, seen: &Seen) {
        if self.tx.take().is_some() {
            let mut g = seen.lock();
            if matches!(g.by_digest.get(&self.digest), Some(Slot::Pending(_))) {
                g.by_digest.remove(&self.digest);
            }
        }
    }
}

#[derive(Debug)]
enum Slot {
    Stored(Stored),
    Pending(watch::Receiver<Option<Stored>>),
}

#[derive(Debug, Default)]
struct Inner {
    by_digest: HashMap<Digest, Slot>,
    /// Stored digests in the order they were recorded (by id, nearly), for expiry.
    order: VecDeque<(EntryId, Digest)>,
}

/// The digests of the entries the ledger holds.
#[derive(Debug)]
pub struct Seen {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl Seen {
    /// An empty set that remembers at most `capacity` entries (the most the ledger can hold);
    /// past that the oldest are forgotten first.
    pub fn new(capacity: usize) -> Seen {
        Seen {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Every critical section leaves the maps consistent before it could panic.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What an append of bytes with `digest` should do. Call [`Pending::stored`] on
    /// [`Claim::Mine`] once stored, or [`Seen::release`] on failure; a claim dropped without
    /// either (a cancelled append) is taken over by the next repeat.
    ///
    /// `held` is the store's bounds now: an entry it no longer holds (expired before the set
    /// was pruned) is no repeat, and this append stores the bytes anew.
    pub fn claim(&self, digest: Digest, held: Bounds) -> Claim {
        let mut g = self.lock();
        let mine = |slot: &mut Slot| {
            let (tx, rx) = watch::channel(None);
            *slot = Slot::Pending(rx);
            Claim::Mine(Pending {
                digest,
                tx: Some(tx),
            })
        };
        match g.by_digest.entry(digest) {
            MapEntry::Occupied(mut o) => match o.get() {
                Slot::Stored(s) if expired(s.id, held) => mine(o.get_mut()),
                Slot::Stored(s) => Claim::Known(*s),
                // The append that claimed it is gone without an outcome (failed or cancelled
                // when its client went away): this one takes over.
                Slot::Pending(rx) if rx.has_changed().is_err() => mine(o.get_mut()),
                Slot::Pending(rx) => Claim::Wait(rx.clone()),
            },
            MapEntry::Vacant(v) => mine(v.insert(Slot::Pending(watch::channel(None).1))),
        }
    }

    /// Forgets a claim whose append failed, so that a repeat stores the entry itself.
    pub fn release(&self, mut pending: Pending) {
        pending.abandon(self);
    }

    /// Records that the entry with `digest` is stored at `at` (from an append here, or from the
    /// store's feed: another front end's append, or what was stored before a restart).
    pub fn record(&self, digest: Digest, at: Stored) {
        let mut g = self.lock();
        let fresh = !matches!(g.by_digest.get(&digest), Some(Slot::Stored(_)));
        if fresh {
            g.by_digest.insert(digest, Slot::Stored(at));
            g.order.push_back((at.id, digest));
        }
        while g.order.len() > self.capacity {
            if let Some((_, d)) = g.order.pop_front() {
                g.by_digest.remove(&d);
            }
        }
    }

    /// Forgets every entry below `oldest` (expired), or every entry when the ledger holds none.
    pub fn expire_below(&self, oldest: Option<EntryId>) {
        let mut g = self.lock();
        let keep_from = oldest.unwrap_or(EntryId(u64::MAX));
        while g.order.front().is_some_and(|(id, _)| *id < keep_from) {
            if let Some((_, d)) = g.order.pop_front() {
                if matches!(g.by_digest.get(&d), Some(Slot::Stored(s)) if s.id < keep_from) {
                    g.by_digest.remove(&d);
                }
            }
        }
    }

    /// How many held entries are remembered.
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    /// True when none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store that holds everything recorded in these tests.
    const HELD: Bounds = Bounds {
        oldest: None,
        newest: None,
    };

    fn at(id: u64) -> Stored {
        Stored {
            id: EntryId(id),
            time_ms: id * 10,
        }
    }

    #[test]
    fn a_repeat_gets_the_first_id() {
        let seen = Seen::new(100);
        let d = digest(b"one entry");
        let Claim::Mine(p) = seen.claim(d, HELD) else {
            panic!("the first append stores")
        };
        p.stored(&seen, at(7));
        assert!(matches!(seen.claim(d, HELD), Claim::Known(s) if s == at(7)));
        assert!(matches!(
            seen.claim(digest(b"another"), HELD),
            Claim::Mine(_)
        ));
    }

    #[tokio::test]
    async fn a_concurrent_repeat_waits_for_the_first() {
        let seen = Seen::new(100);
        let d = digest(b"x");
        let Claim::Mine(p) = seen.claim(d, HELD) else {
            panic!("first")
        };
        let Claim::Wait(rx) = seen.claim(d, HELD) else {
            panic!("second waits")
        };
        let waiter = tokio::spawn(Claim::wait(rx));
        p.stored(&seen, at(3));
        assert_eq!(waiter.await.ok().flatten(), Some(at(3)));
    }

    #[tokio::test]
    async fn a_failed_append_lets_the_repeat_store_it() {
        let seen = Seen::new(100);
        let d = digest(b"x");
        let Claim::Mine(p) = seen.claim(d, HELD) else {
            panic!("first")
        };
        let Claim::Wait(rx) = seen.claim(d, HELD) else {
            panic!("second waits")
        };
        seen.release(p);
        assert_eq!(Claim::wait(rx).await, None);
        assert!(matches!(seen.claim(d, HELD), Claim::Mine(_)));
    }

    #[tokio::test]
    async fn a_cancelled_append_is_taken_over() {
        let seen = Seen::new(100);
        let d = digest(b"x");
        let Claim::Mine(p) = seen.claim(d, HELD) else {
            panic!("first")
        };
        let Claim::Wait(rx) = seen.claim(d, HELD) else {
            panic!("second waits")
        };
        drop(p);
        assert_eq!(Claim::wait(rx).await, None);
        assert!(
            matches!(seen.claim(d, HELD), Claim::Mine(_)),
            "no endless wait"
        );
    }

    #[test]
    fn expired_entries_are_forgotten_and_memory_is_capped() {
        let seen = Seen::new(3);
        for i in 1..=5u64 {
            seen.record(digest(&i.to_be_bytes()), at(i));
        }
        assert_eq!(seen.len(), 3, "the capacity holds");
        assert!(matches!(
            seen.claim(digest(&1u64.to_be_bytes()), HELD),
            Claim::Mine(_)
        ));
        seen.expire_below(Some(EntryId(5)));
        assert_eq!(seen.len(), 1);
        assert!(matches!(
            seen.claim(digest(&4u64.to_be_bytes()), HELD),
            Claim::Mine(_)
        ));
        assert!(matches!(
            seen.claim(digest(&5u64.to_be_bytes()), HELD),
            Claim::Known(_)
        ));
        seen.expire_below(None);
        assert!(seen.is_empty());
    }

    #[test]
    fn an_entry_the_store_expired_is_no_repeat() {
        let seen = Seen::new(10);
        seen.record(digest(b"a"), at(3));
        let expired_all = Bounds {
            oldest: None,
            newest: Some(EntryId(3)),
        };
        assert!(matches!(
            seen.claim(digest(b"a"), expired_all),
            Claim::Mine(_)
        ));
        seen.record(digest(b"b"), at(4));
        let from_five = Bounds {
            oldest: Some(EntryId(5)),
            newest: Some(EntryId(9)),
        };
        assert!(matches!(
            seen.claim(digest(b"b"), from_five),
            Claim::Mine(_)
        ));
        seen.record(digest(b"c"), at(6));
        assert!(matches!(
            seen.claim(digest(b"c"), from_five),
            Claim::Known(_)
        ));
    }

    #[test]
    fn recording_twice_keeps_one() {
        let seen = Seen::new(10);
        seen.record(digest(b"a"), at(1));
        seen.record(digest(b"a"), at(1));
        assert_eq!(seen.len(), 1);
    }
}

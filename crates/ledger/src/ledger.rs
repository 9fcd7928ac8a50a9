//! The ledger's core, independent of HTTP: checks and appends entries, serves pages with gaps,
//! feeds push subscribers, and runs expiry and the two adaption rules once per tick.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use deaddrop_api::{Accepted, EntryId, Frame, IdRange, Info};
use deaddrop_proto::{pow, Entry, PROTOCOL};
use tokio::sync::{broadcast, watch, Semaphore};

use crate::config::{Config, ConfigError};
use crate::metrics::Metrics;
use crate::policy::{DifficultyPolicy, LifetimePolicy};
use crate::problem::ApiError;
use crate::seen::{self, Claim, Seen, Stored};
use crate::store::{MirrorStore, Record, Store};

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// An entry as pushed: its id and its encoded frame, shared by every subscriber.
#[derive(Clone, Debug)]
pub struct Pushed {
    /// The entry id.
    pub id: EntryId,
    /// The frame (`docs/API.md`), encoded once.
    pub frame: Bytes,
    /// When the fan-out got it from the store's feed (the entry was durable then).
    pub at: Instant,
}

/// Encodes a record as a frame.
pub fn encode_frame(r: &Record) -> Bytes {
    Bytes::from(
        Frame {
            id: r.id,
            time_ms: r.time_ms,
            entry: &r.entry,
        }
        .to_vec(),
    )
}

/// One page of a read.
#[derive(Debug)]
pub struct Page {
    /// The entries, in id order.
    pub records: Vec<Record>,
    /// The oldest id held.
    pub oldest: Option<EntryId>,
    /// The newest id assigned.
    pub newest: Option<EntryId>,
    /// Ids after the reader's position that expired before it read them.
    pub gap: Option<IdRange>,
}

/// How often a burst of store failures is logged, and how long one keeps `/readyz` at 503.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(10);

/// Store failures seen.
#[derive(Debug, Default)]
struct Failures {
    /// The first failure since the last success.
    since: Option<Instant>,
    /// When one was last logged.
    logged: Option<Instant>,
    /// Failures since then that were not logged.
    unreported: u64,
}

struct Policies {
    lifetime: LifetimePolicy,
    difficulty: DifficultyPolicy,
    last_tick: Instant,
}

/// A running ledger.
pub struct Ledger {
    config: Config,
    store: Arc<dyn Store>,
    policies: Mutex<Policies>,
    lifetime_ms: AtomicU64,
    pow_current: AtomicU8,
    pow_accepted: AtomicU8,
    tick_appends: AtomicU64,
    tick_bytes: AtomicU64,
    /// Bytes of appends under way (checked against `max_bytes` but not yet stored), so that
    /// concurrent appends cannot together go past it.
    reserved: AtomicU64,
    feed: broadcast::Sender<Record>,
    /// The same entries as `feed`, each encoded once as a push frame for every subscriber.
    frames: broadcast::Sender<Pushed>,
    subscribers: Arc<Semaphore>,
    shutdown: watch::Sender<bool>,
    upstream: Option<Arc<crate::mirror::Upstream>>,
    /// The digests of the entries held, for idempotent repeats.
    seen: Seen,
    /// Store failures, for readiness and for logging once per burst.
    failures: Mutex<Failures>,
    /// Page bodies in memory, in KiB ([`crate::api::READ_BUDGET`]).
    read_budget: Arc<Semaphore>,
    /// The metrics, rendered by `GET /metrics`.
    pub metrics: Metrics,
}

impl Ledger {
    /// A ledger over `store` (call from inside a tokio runtime: a store may feed pushes from a
    /// task). Fails when `config` breaks a rule of [`Config::validate`].
    pub fn new(config: Config, store: Arc<dyn Store>) -> Result<Arc<Ledger>, ConfigError> {
        config.validate()?;
        let (feed, _) = broadcast::channel(config.subscriber_buffer);
        store.spawn_feed(feed.clone());
        Ok(Self::build(config, store, feed, None))
    }

    /// A mirror of `upstream`, keeping its copy in `store` (call from inside a tokio runtime:
    /// the follower is a task, and it feeds the push stream with what it stores).
    pub fn mirror(
        config: Config,
        store: Arc<dyn MirrorStore>,
        upstream: crate::mirror::Upstream,
    ) -> Result<Arc<Ledger>, ConfigError> {
        config.validate()?;
        let upstream = Arc::new(upstream);
        let (feed, _) = broadcast::channel(config.subscriber_buffer);
        tokio::spawn(crate::mirror::follow(
            upstream.clone(),
            store.clone(),
            feed.clone(),
            config.suite.layout().entry_len,
        ));
        Ok(Self::build(config, store, feed, Some(upstream)))
    }

    fn build(
        config: Config,
        store: Arc<dyn Store>,
        feed: broadcast::Sender<Record>,
        upstream: Option<Arc<crate::mirror::Upstream>>,
    ) -> Arc<Ledger> {
        let lifetime = LifetimePolicy::new(config.lifetime, config.min_lifetime, config.max_bytes);
        let difficulty =
            DifficultyPolicy::new(config.pow_bits, config.pow_max_bits, config.pow_rate);
        let (frames, _) = broadcast::channel(config.subscriber_buffer);
        // The most entries the ledger can hold, and some room for the ones expiring.
        let capacity = usize::try_from(config.max_bytes / config.suite.layout().entry_len as u64)
            .unwrap_or(usize::MAX)
            .saturating_add(1024);
        let ledger = Ledger {
            seen: Seen::new(capacity),
            failures: Mutex::new(Failures::default()),
            read_budget: Arc::new(Semaphore::new(
                crate::api::READ_BUDGET / crate::api::BUDGET_UNIT,
            )),
            frames,
            upstream,
            lifetime_ms: AtomicU64::new(lifetime.current().as_millis() as u64),
            pow_current: AtomicU8::new(difficulty.current()),
            pow_accepted: AtomicU8::new(difficulty.accepted()),
            policies: Mutex::new(Policies {
                lifetime,
                difficulty,
                last_tick: Instant::now(),
            }),
            tick_appends: AtomicU64::new(0),
            tick_bytes: AtomicU64::new(0),
            reserved: AtomicU64::new(0),
            feed,
            subscribers: Arc::new(Semaphore::new(config.max_subscribers)),
            shutdown: watch::channel(false).0,
            metrics: Metrics::new(),
            store,
            config,
        };
        ledger.update_gauges();
        Arc::new(ledger)
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn entry_len(&self) -> usize {
        self.config.suite.layout().entry_len
    }

    /// The current lifetime.
    pub fn lifetime(&self) -> Duration {
        Duration::from_millis(self.lifetime_ms.load(Ordering::Relaxed))
    }

    /// The difficulty advertised now.
    pub fn pow_bits(&self) -> u8 {
        self.pow_current.load(Ordering::Relaxed)
    }

    /// Checks and appends one entry; resolves once it is durable. A mirror forwards it upstream.
    pub async fn append(&self, body: Bytes) -> Result<Accepted, ApiError> {
        let started = Instant::now();
        if let Some(up) = &self.upstream {
            let r = up.forward(body).await.map_err(|e| self.reject(e));
            if r.is_ok() {
                self.metrics
                    .append_seconds
                    .observe(started.elapsed().as_secs_f64());
            }
            return r;
        }
        let suite = self.config.suite;
        let entry = Entry::parse(suite, &body).map_err(|_| {
            self.reject(ApiError::entry_size(
                suite.name(),
                self.entry_len(),
                body.len(),
            ))
        })?;
        let needed = self.pow_accepted.load(Ordering::Relaxed);
        if !pow::verify(&entry, needed) {
            return Err(self.reject(ApiError::pow(self.pow_bits())));
        }
        // The same bytes again: answered with the id they have, never stored twice.
        let digest = seen::digest(&body);
        let pending = loop {
            match self.seen.claim(digest, self.store.bounds()) {
                Claim::Known(s) => return Ok(self.repeat(s)),
                Claim::Wait(rx) => {
                    if let Some(s) = Claim::wait(rx).await {
                        return Ok(self.repeat(s));
                    }
                }
                Claim::Mine(p) => break p,
            }
        };
        // `max_bytes` is a hard bound: an append that would go past it is refused, and the
        // next tick shortens the lifetime so that older entries make room.
        let len = body.len() as u64;
        let Some(reservation) = self.reserve(len) else {
            self.seen.release(pending);
            // Refused bytes are inflow all the same: the lifetime rule makes room for them.
            self.tick_bytes.fetch_add(len, Ordering::Relaxed);
            return Err(self.reject(ApiError::full()));
        };
        let stored = self.store.append(body, now_ms()).await;
        drop(reservation);
        let a = match stored {
            Ok(a) => a,
            Err(e) => {
                self.seen.release(pending);
                return Err(self.store_failed("an append", &e));
            }
        };
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .since = None;
        pending.stored(
            &self.seen,
            Stored {
                id: a.id,
                time_ms: a.time_ms,
            },
        );
        self.tick_appends.fetch_add(1, Ordering::Relaxed);
        self.tick_bytes.fetch_add(len, Ordering::Relaxed);
        self.metrics.appends.inc();
        self.metrics.append_bytes.inc_by(len);
        self.metrics
            .append_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(Accepted {
            id: a.id,
            time: a.time_ms,
            expires_at: a
                .time_ms
                .saturating_add(self.lifetime_ms.load(Ordering::Relaxed)),
            repeat: false,
        })
    }

    /// Room for `len` more bytes within `max_bytes`, counting appends under way; held until
    /// the returned guard is dropped (the append stored, or failed).
    fn reserve(&self, len: u64) -> Option<Reservation<'_>> {
        let held = self.store.bounds().held() * self.entry_len() as u64;
        let before = self.reserved.fetch_add(len, Ordering::SeqCst);
        let guard = Reservation {
            reserved: &self.reserved,
            len,
        };
        (held.saturating_add(before).saturating_add(len) <= self.config.max_bytes).then_some(guard)
    }

    /// Counts and logs a store failure (the log has the cause, once per burst), and the answer
    /// for the client, which names no path or OS error.
    fn store_failed(&self, doing: &'static str, e: &crate::store::StoreError) -> ApiError {
        self.metrics.store_errors.inc();
        let mut f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        f.since.get_or_insert(now);
        if f.logged
            .is_none_or(|t| now.duration_since(t) >= FAILURE_LOG_EVERY)
        {
            tracing::error!(
                error = %e,
                failed = doing,
                more_since_last_report = f.unreported,
                "the store failed; clients get 503 store-unavailable and retry"
            );
            f.logged = Some(now);
            f.unreported = 0;
        } else {
            f.unreported += 1;
        }
        drop(f);
        self.reject(ApiError::store(format!(
            "{doing} failed in the ledger's store; retry"
        )))
    }

    /// Whether the ledger can take appends now: not shutting down, the store healthy, and no
    /// store failure in the last [`FAILURE_LOG_EVERY`] without a success since. `/readyz`.
    pub fn ready(&self) -> Result<(), String> {
        if *self.shutdown.borrow() {
            return Err("the ledger is shutting down".into());
        }
        if let Some(up) = &self.upstream {
            return if up.state().connected {
                Ok(())
            } else {
                Err("this mirror is not connected to its upstream".into())
            };
        }
        self.store
            .healthy()
            .map_err(|_| "the store is unreachable".to_string())?;
        let f = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match f.since {
            Some(t) if t.elapsed() < FAILURE_LOG_EVERY => {
                Err("the store's last operation failed".into())
            }
            _ => Ok(()),
        }
    }

    /// The budget every read's page body is counted against while it is in memory.
    pub fn read_budget(&self) -> Arc<Semaphore> {
        self.read_budget.clone()
    }

    /// The answer to a repeat of an entry stored at `s`.
    fn repeat(&self, s: Stored) -> Accepted {
        self.metrics.repeats.inc();
        Accepted {
            id: s.id,
            time: s.time_ms,
            expires_at: s
                .time_ms
                .saturating_add(self.lifetime_ms.load(Ordering::Relaxed)),
            repeat: true,
        }
    }

    /// Remembers the digest of every entry the store holds now, so that repeats of entries
    /// stored before this process started are recognised too. [`crate::run`] calls it before
    /// serving; the push feed keeps the set current afterwards.
    pub async fn load_seen(&self) -> Result<u64, crate::store::StoreError> {
        if self.upstream.is_some() {
            return Ok(0);
        }
        let mut after = EntryId::START;
        let mut n = 0u64;
        loop {
            let records = self.store.read(after, self.config.max_page).await?;
            let Some(last) = records.last() else {
                return Ok(n);
            };
            after = last.id;
            for r in &records {
                self.seen.record(
                    seen::digest(&r.entry),
                    Stored {
                        id: r.id,
                        time_ms: r.time_ms,
                    },
                );
            }
            n += records.len() as u64;
        }
    }

    fn reject(&self, e: ApiError) -> ApiError {
        self.metrics.reject(e.label());
        e
    }

    /// Counts a refusal decided outside the core (bad query, wrong method, ...).
    pub fn count_rejection(&self, e: &ApiError) {
        self.metrics.reject(e.label());
    }

    /// Up to `limit` entries after `after`, and the gap if entries after it expired unread.
    pub async fn read(&self, after: EntryId, limit: usize) -> Result<Page, ApiError> {
        let started = Instant::now();
        let limit = limit.clamp(1, self.config.max_page);
        let records = self
            .store
            .read(after, limit)
            .await
            .map_err(|e| self.store_failed("a read", &e))?;
        // The bounds after the read: a store may confirm them while reading (JetStream asks the
        // stream), and a gap must name only ids that are gone.
        let bounds = self.store.bounds();
        let gap = gap_after(
            after,
            bounds.oldest,
            bounds.newest,
            records.first().map(|r| r.id),
        );
        self.metrics.reads.inc();
        self.metrics.read_entries.inc_by(records.len() as u64);
        self.metrics
            .read_bytes
            .inc_by(records.iter().map(|r| r.entry.len() as u64).sum());
        self.metrics
            .read_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(Page {
            records,
            oldest: bounds.oldest,
            newest: bounds.newest,
            gap,
        })
    }

    /// What the ledger tells about itself ([`Info`]).
    pub fn info(&self) -> Info {
        let b = self.store.bounds();
        let up = self.upstream.as_ref().map(|u| u.state());
        let upstream_info = up.as_ref().and_then(|s| s.info.clone());
        Info {
            upstream_newest_id: up.as_ref().and_then(|s| s.newest),
            behind: up.as_ref().map(|s| behind(s.newest, b.newest)),
            protocol: PROTOCOL.to_string(),
            suite: self.config.suite.name().to_string(),
            entry_bytes: self.entry_len(),
            lifetime_s: upstream_info
                .as_ref()
                .map_or(self.lifetime().as_secs(), |i| i.lifetime_s),
            max_lifetime_s: self.config.lifetime.as_secs(),
            min_lifetime_s: self.config.min_lifetime.as_secs(),
            pow_bits: upstream_info
                .as_ref()
                .map_or(self.pow_bits(), |i| i.pow_bits),
            oldest_id: b.oldest,
            newest_id: b.newest,
            entries: b.held(),
            max_page: self.config.max_page,
            store: self.store.kind().to_string(),
            mirror_of: self.upstream.as_ref().map(|u| u.url().to_string()),
            server_version: env!("CARGO_PKG_VERSION").to_string(),
            // A mirror's store has adopted its upstream's (crate::mirror).
            ledger_id: Some(self.store.ledger_id()),
        }
    }

    /// A receiver of every entry appended from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Record> {
        self.feed.subscribe()
    }

    /// A receiver of every entry appended from now on, as encoded push frames.
    pub fn subscribe_frames(&self) -> broadcast::Receiver<Pushed> {
        self.frames.subscribe()
    }

    /// Encodes each fed entry once for all push subscribers, until shutdown.
    pub async fn fan_out(self: Arc<Self>) {
        let mut rx = self.feed.subscribe();
        let mut stop = self.shutdown_signal();
        loop {
            tokio::select! {
                got = rx.recv() => match got {
                    Ok(r) => {
                        let _ = self.frames.send(Pushed { id: r.id, frame: encode_frame(&r), at: Instant::now() });
                        // Entries appended through other front ends (JetStream) are repeats
                        // too; this ledger's own appends are recorded as they are acknowledged.
                        if self.upstream.is_none() && self.store.shared_with_other_writers() {
                            self.seen.record(seen::digest(&r.entry), Stored { id: r.id, time_ms: r.time_ms });
                        }
                    }
                    // Subscribers see the jump in ids and fill it from the store.
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = stop.changed() => return,
            }
        }
    }

    /// A subscriber slot, or `None` when the ledger serves the most it allows.
    pub fn subscriber_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.subscribers.clone().try_acquire_owned().ok()
    }

    /// Resolves when shutdown begins.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Tells subscribers and the maintenance loop to stop.
    pub fn begin_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// One maintenance tick: adapt lifetime and difficulty, expire, refresh gauges.
    pub async fn tick(&self) {
        let (lifetime, current, accepted) = {
            let mut p = self.policies.lock().unwrap_or_else(|e| e.into_inner());
            let elapsed = p.last_tick.elapsed();
            p.last_tick = Instant::now();
            let held = self.store.bounds().held() * self.entry_len() as u64;
            let lifetime =
                p.lifetime
                    .tick(elapsed, self.tick_bytes.swap(0, Ordering::Relaxed), held);
            let current = p
                .difficulty
                .tick(elapsed, self.tick_appends.swap(0, Ordering::Relaxed));
            self.metrics
                .inflow_bytes_per_second
                .set(p.lifetime.inflow_rate());
            (lifetime, current, p.difficulty.accepted())
        };
        // A mirror keeps entries as long as its upstream does.
        let lifetime = match self.upstream.as_ref().and_then(|u| u.state().info) {
            Some(i) => Duration::from_secs(i.lifetime_s),
            None => lifetime,
        };
        if let Err(e) = self.store.set_lifetime(lifetime).await {
            tracing::warn!(error = %e, "setting the store's lifetime failed; will retry");
        }
        self.lifetime_ms
            .store(lifetime.as_millis() as u64, Ordering::Relaxed);
        self.pow_current.store(current, Ordering::Relaxed);
        self.pow_accepted.store(accepted, Ordering::Relaxed);
        let cutoff = now_ms().saturating_sub(lifetime.as_millis() as u64);
        match self.store.expire(cutoff).await {
            Ok(n) => {
                self.metrics.expired.inc_by(n);
            }
            Err(e) => tracing::warn!(error = %e, "expiry failed; will retry"),
        }
        self.seen.expire_below(self.store.bounds().oldest);
        self.update_gauges();
    }

    fn update_gauges(&self) {
        let held = self.store.bounds().held();
        self.metrics.entries_held.set(held as i64);
        self.metrics
            .bytes_held
            .set((held * self.entry_len() as u64) as i64);
        self.metrics
            .lifetime_seconds
            .set(self.lifetime().as_secs() as i64);
        self.metrics.pow_bits.set(i64::from(self.pow_bits()));
        self.metrics
            .subscribers
            .set((self.config.max_subscribers - self.subscribers.available_permits()) as i64);
    }

    /// Runs [`Ledger::tick`] every `expiry_interval` until shutdown.
    pub async fn maintain(self: Arc<Self>) {
        let mut stop = self.shutdown_signal();
        let mut every = tokio::time::interval(self.config.expiry_interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => self.tick().await,
                _ = stop.changed() => return,
            }
        }
    }
}

/// Bytes of one append under way, counted against `max_bytes` until dropped.
struct Reservation<'a> {
    reserved: &'a AtomicU64,
    len: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.reserved.fetch_sub(self.len, Ordering::SeqCst);
    }
}

/// The ids a reader at `after` missed: those between it and the oldest entry held (or the
/// first one returned), when they expired before it read them.
pub fn gap_after(
    after: EntryId,
    oldest: Option<EntryId>,
    newest: Option<EntryId>,
    first_returned: Option<EntryId>,
) -> Option<IdRange> {
    let next = after.next()?;
    let first_alive = first_returned.or(oldest);
    match (first_alive, newest) {
        (Some(f), _) if f > next => IdRange::new(next, f - 1),
        (None, Some(n)) if n >= next => IdRange::new(next, n),
        _ => None,
    }
}

/// How many ids a mirror at `mine` is behind an upstream at `upstream`.
fn behind(upstream: Option<EntryId>, mine: Option<EntryId>) -> u64 {
    let (up, mine) = (upstream.unwrap_or_default(), mine.unwrap_or_default());
    up.get().saturating_sub(mine.get())
}

#[cfg(test)]
mod tests {
    use super::{gap_after, EntryId, IdRange};

    fn gap(
        after: u64,
        oldest: Option<u64>,
        newest: Option<u64>,
        first: Option<u64>,
    ) -> Option<(u64, u64)> {
        gap_after(
            EntryId(after),
            oldest.map(EntryId),
            newest.map(EntryId),
            first.map(EntryId),
        )
        .map(|r: IdRange| (r.first().get(), r.last().get()))
    }

    #[test]
    fn gaps_are_exact() {
        assert_eq!(gap(0, Some(1), Some(5), Some(1)), None);
        assert_eq!(gap(0, Some(4), Some(5), Some(4)), Some((1, 3)));
        assert_eq!(gap(2, Some(4), Some(5), Some(4)), Some((3, 3)));
        assert_eq!(gap(3, Some(4), Some(5), Some(4)), None);
        assert_eq!(gap(0, None, Some(5), None), Some((1, 5)));
        assert_eq!(gap(5, None, Some(5), None), None);
        assert_eq!(gap(9, Some(4), Some(5), None), None);
        assert_eq!(gap(u64::MAX, Some(4), Some(5), None), None);
    }
}

//! The NATS JetStream store (`--store nats://HOST:PORT[,HOST:PORT...]`), for ledgers served by
//! several stateless front ends (`docs/DESIGN.md` §3.7; `docs/DEPLOYMENT.md`).
//!
//! The ledger is one stream on one subject: entry id = stream sequence, entry time = the
//! stream's timestamp, `max_age` = the lifetime, file storage, replicas as configured. An append
//! is a publish whose acknowledgement (the stored sequence) is what the ledger answers with, so
//! an entry is acknowledged only after JetStream acknowledged it. The publish carries
//! `Nats-Msg-Id` = SHA-256 of the entry, so a retried append within the stream's duplicate
//! window gets the original id back instead of a second copy.
//!
//! Every front end follows the stream with an ordered consumer and feeds its push subscribers
//! from it, so an entry appended through one front end is pushed by all, with the same id.
//! Reads are direct gets of the sequences asked for, many in flight at once. When NATS is
//! unreachable, appends and reads fail with `Unavailable` (503 with Retry-After); the client
//! reconnects by itself and the front end recovers without a restart.
//!
//! A read never skips an id it cannot prove gone: the ledger tells a reader that the ids it skips
//! expired, and the reader moves past them for good. So every read starts from the stream's
//! state as NATS reports it at that moment, not from what this front end remembers; a state that
//! has not caught up with ids already acknowledged (a `nats-server` still restoring after a
//! restart) is not believed, and the read answers `Unavailable` instead; and an id the stream
//! should hold but does not return is `Unavailable` too, unless a second look at the stream shows
//! that it expired in between.
//!
//! The ledger's [`LedgerId`] is kept in the stream's metadata under [`LEDGER_ID_KEY`], drawn at
//! random by the front end that creates the stream, so every front end of the stream reports the
//! same id, and a stream deleted and made again is a new ledger. A stream made before the key
//! existed gets an id derived from its name and creation time, which every front end derives
//! alike, and stores it there.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer, stream, Context};
use async_trait::async_trait;
use bytes::Bytes;
use deaddrop_api::Backoff;
use futures_util::{StreamExt, TryStreamExt};
use tokio::sync::{broadcast, Notify};

use super::{Appended, Bounds, EntryId, LedgerId, Record, Store, StoreError};

/// Settings of the JetStream store.
#[derive(Clone, Debug)]
pub struct JetStreamConfig {
    /// NATS servers, `nats://host:port` each.
    pub servers: Vec<String>,
    /// The stream's name.
    pub stream: String,
    /// Replicas (1 or 3 make sense).
    pub replicas: usize,
    /// The initial `max_age`.
    pub lifetime: Duration,
    /// The length of every entry.
    pub entry_len: usize,
}

/// The key of the stream's metadata that holds the ledger's [`LedgerId`].
pub const LEDGER_ID_KEY: &str = "deaddrop_ledger_id";

/// The JetStream store.
pub struct JetStreamStore {
    client: async_nats::Client,
    js: Context,
    stream_name: String,
    subject: String,
    entry_len: usize,
    known: Arc<Mutex<Known>>,
    /// The stream's ledger id, as its metadata last said.
    ledger_id: Arc<Mutex<LedgerId>>,
    /// Wakes the refresher before its next tick (when this front end learns of an id it cannot
    /// place).
    wake: Arc<Notify>,
    lifetime: Mutex<(Duration, std::time::Instant)>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("NATS JetStream: {what}: {e}"))
}

/// How long a stream may report fewer ids than this front end saw acknowledged before the front
/// end stops waiting for it to catch up and believes it (NATS then lost acknowledged entries).
const BEHIND_PATIENCE: Duration = Duration::from_secs(30);

/// What this front end knows of the stream's ids.
#[derive(Debug, Default)]
struct Known {
    bounds: Bounds,
    /// Since when the stream has reported fewer ids than were seen acknowledged.
    behind_since: Option<Instant>,
}

impl Known {
    /// Takes `state`, fresh from NATS, as the truth if it has caught up with every id this front
    /// end has seen assigned; returns the bounds it describes, or `None` if it is behind (a
    /// restoring `nats-server` reports a partial state for a while). A state behind for longer
    /// than [`BEHIND_PATIENCE`] is believed: NATS lost entries it had acknowledged.
    fn adopt(&mut self, state: &stream::State) -> Option<Bounds> {
        self.adopt_ids(state.messages, state.first_sequence, state.last_sequence)
    }

    /// [`Known::adopt`] for a state of `messages` held, `first` and `last` sequence.
    fn adopt_ids(&mut self, messages: u64, first: u64, last: u64) -> Option<Bounds> {
        let fresh = Bounds {
            oldest: (messages > 0).then_some(EntryId(first)),
            newest: (last > 0).then_some(EntryId(last)),
        };
        let known = self.bounds.newest.map_or(0, EntryId::get);
        if last < known {
            let since = *self.behind_since.get_or_insert_with(Instant::now);
            if since.elapsed() < BEHIND_PATIENCE {
                return None;
            }
            tracing::error!(
                stream_last_id = last,
                acknowledged_id = known,
                "the JetStream stream holds fewer ids than were acknowledged; NATS lost entries"
            );
        }
        self.behind_since = None;
        self.bounds = Bounds {
            oldest: fresh.oldest,
            newest: fresh.newest.max(self.bounds.newest),
        };
        Some(fresh)
    }

    /// Notes an id assigned or seen; returns whether the oldest id held is still unknown.
    fn note(&mut self, id: EntryId) -> bool {
        let before = self.bounds.newest;
        self.bounds.newest = Some(before.map_or(id, |n| n.max(id)));
        if self.bounds.oldest.is_none() {
            // Nothing was held up to `before` (a state that caught up said so): if `id` comes
            // right after it, it is the oldest. Otherwise other front ends assigned ids in
            // between, which may be held: guessing would hide them behind a false gap.
            if before.map_or(0, EntryId::get) + 1 == id.get() {
                self.bounds.oldest = Some(id);
            } else {
                return true;
            }
        }
        false
    }
}

/// The ledger id in a stream's metadata, if it holds a valid one.
fn stream_ledger_id(config: &stream::Config) -> Option<LedgerId> {
    config.metadata.get(LEDGER_ID_KEY)?.parse().ok()
}

/// The id of a stream made before ledger ids were kept: the same for every front end (from the
/// stream's name and creation time), and different for a stream deleted and made again.
fn derived_ledger_id(name: &str, created: time::OffsetDateTime) -> LedgerId {
    let mut input = b"deaddrop ledger id\0".to_vec();
    input.extend_from_slice(name.as_bytes());
    input.push(0);
    input.extend_from_slice(&created.unix_timestamp_nanos().to_be_bytes());
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input);
    let mut id = [0u8; 16];
    id.copy_from_slice(&d.as_ref()[..16]);
    LedgerId::from_bytes(id)
}

fn millis(t: time::OffsetDateTime) -> u64 {
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

impl JetStreamStore {
    /// Connects and creates the stream if it does not exist (an existing stream keeps its
    /// settings, except `max_age`, which the lifetime rule manages).
    pub async fn connect(cfg: JetStreamConfig) -> Result<Arc<JetStreamStore>, StoreError> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .name("deaddrop-ledger")
            .connect(cfg.servers.clone())
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot reach NATS at {}: {e}; is `nats-server -js` running there?",
                    cfg.servers.join(",")
                ))
            })?;
        let js = jetstream::new(client.clone());
        let subject = format!("deaddrop.{}.entries", cfg.stream);
        let config = stream::Config {
            name: cfg.stream.clone(),
            subjects: vec![subject.clone()],
            max_age: cfg.lifetime,
            storage: stream::StorageType::File,
            num_replicas: cfg.replicas,
            discard: stream::DiscardPolicy::Old,
            allow_direct: true,
            duplicate_window: Duration::from_secs(120),
            metadata: HashMap::from([(LEDGER_ID_KEY.to_string(), super::new_ledger_id().to_hex())]),
            ..Default::default()
        };
        let mut s = match js.get_or_create_stream(config).await {
            Ok(s) => s,
            // Another front end made it at the same moment (with another random id): use theirs.
            Err(e) => js
                .get_stream(&cfg.stream)
                .await
                .map_err(|_| unavailable("creating the stream", e))?,
        };
        let info = s
            .info()
            .await
            .map_err(|e| unavailable("reading the stream", e))?;
        let ledger_id = match stream_ledger_id(&info.config) {
            Some(id) => id,
            None => {
                let id = derived_ledger_id(&cfg.stream, info.created);
                let mut config = info.config.clone();
                config
                    .metadata
                    .insert(LEDGER_ID_KEY.to_string(), id.to_hex());
                if let Err(e) = js.update_stream(config).await {
                    tracing::warn!(error = %e, "cannot store the ledger id in the stream's metadata; every front end derives the same one anyway");
                }
                id
            }
        };
        let store = Arc::new(JetStreamStore {
            client,
            js,
            stream_name: cfg.stream,
            subject,
            entry_len: cfg.entry_len,
            known: Arc::new(Mutex::new(Known {
                bounds: bounds_of(&info.state),
                behind_since: None,
            })),
            ledger_id: Arc::new(Mutex::new(ledger_id)),
            wake: Arc::new(Notify::new()),
            lifetime: Mutex::new((cfg.lifetime, std::time::Instant::now())),
            tasks: Mutex::new(Vec::new()),
        });
        let refresher = {
            let js = store.js.clone();
            let name = store.stream_name.clone();
            let known = store.known.clone();
            let wake = store.wake.clone();
            let ledger_id = store.ledger_id.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                        _ = wake.notified() => {}
                    }
                    // `get_stream` fetches the stream's info: its state is fresh.
                    if let Ok(s) = js.get_stream(&name).await {
                        lock(&known).adopt(&s.cached_info().state);
                        // A stream deleted and made again by another front end is a new ledger.
                        if let Some(id) = stream_ledger_id(&s.cached_info().config) {
                            *ledger_id.lock().unwrap_or_else(|e| e.into_inner()) = id;
                        }
                    }
                }
            })
        };
        store
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(refresher);
        Ok(store)
    }

    async fn stream(&self) -> Result<stream::Stream, StoreError> {
        self.js
            .get_stream(&self.stream_name)
            .await
            .map_err(|e| unavailable("opening the stream", e))
    }

    fn note_id(&self, id: u64) {
        if lock(&self.known).note(EntryId(id)) {
            self.wake.notify_one();
        }
    }

    /// The stream's state now, as NATS reports it, if it has caught up with every id this
    /// front end has seen assigned.
    fn confirmed(&self, state: &stream::State) -> Result<Bounds, StoreError> {
        lock(&self.known).adopt(state).ok_or_else(|| {
            StoreError::Unavailable(
                "NATS JetStream: the stream has not yet caught up with acknowledged entries \
                 (restoring after a restart?)"
                    .into(),
            )
        })
    }
}

fn lock(known: &Mutex<Known>) -> std::sync::MutexGuard<'_, Known> {
    known.lock().unwrap_or_else(|e| e.into_inner())
}

fn bounds_of(state: &stream::State) -> Bounds {
    let mut k = Known::default();
    k.adopt(state).unwrap_or_default()
}

#[async_trait]
impl Store for JetStreamStore {
    fn kind(&self) -> &'static str {
        "jetstream"
    }

    fn ledger_id(&self) -> LedgerId {
        *self.ledger_id.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn append(&self, entry: Bytes, now_ms: u64) -> Result<Appended, StoreError> {
        if entry.len() != self.entry_len {
            return Err(StoreError::Unavailable(format!(
                "entry of {} bytes where {} are expected",
                entry.len(),
                self.entry_len
            )));
        }
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &entry);
        let msg_id: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        let ack = self
            .js
            .send_publish(
                self.subject.clone(),
                jetstream::context::Publish::build()
                    .payload(entry)
                    .message_id(msg_id),
            )
            .await
            .map_err(|e| unavailable("publishing", e))?
            .await
            .map_err(|e| unavailable("waiting for the acknowledgement", e))?;
        self.note_id(ack.sequence);
        // The stream's own timestamp is the entry's time (what reads and pushes return); the
        // acknowledgement does not carry it, so fetch it. Only if that fails (the entry is stored
        // all the same) does the answer fall back to this front end's clock.
        let stored = async {
            let s = self.js.get_stream_no_info(&self.stream_name).await.ok()?;
            s.direct_get(ack.sequence).await.ok()
        };
        let time_ms = match tokio::time::timeout(Duration::from_secs(2), stored).await {
            Ok(Some(m)) if m.sequence == ack.sequence => millis(m.time),
            _ => now_ms,
        };
        Ok(Appended {
            id: EntryId(ack.sequence),
            time_ms,
        })
    }

    async fn read(&self, after: EntryId, limit: usize) -> Result<Vec<Record>, StoreError> {
        // `get_stream` fetches the stream's info: the state the read goes by is fresh.
        let s = self.stream().await?;
        let b = self.confirmed(&s.cached_info().state)?;
        let (Some(oldest), Some(newest)) = (b.oldest, b.newest) else {
            // A state that caught up says nothing is held: every id so far expired.
            return Ok(Vec::new());
        };
        let from = after.get().saturating_add(1).max(oldest.get());
        let newest = newest.get();
        if from > newest || limit == 0 {
            return Ok(Vec::new());
        }
        let last = newest.min(from.saturating_add(limit as u64 - 1));
        let got: Vec<(u64, Option<Record>)> = futures_util::stream::iter(from..=last)
            .map(|seq| {
                let s = s.clone();
                async move {
                    match s.direct_get(seq).await {
                        Ok(m) => Ok((
                            seq,
                            Some(Record {
                                id: EntryId(m.sequence),
                                time_ms: millis(m.time),
                                entry: m.payload,
                            }),
                        )),
                        Err(e) if e.kind() == stream::DirectGetErrorKind::NotFound => {
                            Ok((seq, None))
                        }
                        Err(e) => Err(unavailable("reading", e)),
                    }
                }
            })
            .buffered(64)
            .try_collect()
            .await?;
        let entry_len = self.entry_len;
        let entries = |records: Vec<Record>| -> Vec<Record> {
            // Anything else published on the subject is not an entry.
            records
                .into_iter()
                .filter(|r| r.entry.len() == entry_len)
                .collect()
        };
        if got.iter().all(|(_, r)| r.is_some()) {
            return Ok(entries(got.into_iter().filter_map(|(_, r)| r).collect()));
        }
        // An id the state above counted as held was not returned. Only expiry in between may
        // explain it, and then a second look at the stream shows it below the oldest id held.
        // An id removed on its own (`nats stream rmm`) is listed as deleted.
        let info = s
            .info_builder()
            .with_deleted(true)
            .fetch()
            .await
            .map_err(|e| unavailable("reading the stream", e))?
            .info;
        let now = self.confirmed(&info.state)?;
        let first_held = now
            .oldest
            .map_or(info.state.last_sequence.saturating_add(1), EntryId::get);
        let deleted = info.state.deleted.unwrap_or_default();
        let gone = |seq: u64| seq < first_held || deleted.contains(&seq);
        let mut out = Vec::new();
        for (seq, r) in got {
            match r {
                Some(r) => out.push(r),
                None if out.is_empty() && !gone(seq) => {
                    return Err(StoreError::Unavailable(format!(
                        "NATS JetStream: id {seq} is held but could not be read"
                    )));
                }
                // Gone before anything was returned: the ledger names the gap before the first
                // id returned.
                None if out.is_empty() => {}
                // End the page before it: the next read starts there and names its gap (or
                // finds it held), instead of skipping it inside this page.
                None => break,
            }
        }
        Ok(entries(out))
    }

    fn bounds(&self) -> Bounds {
        lock(&self.known).bounds
    }

    fn shared_with_other_writers(&self) -> bool {
        true
    }

    async fn expire(&self, _cutoff_ms: u64) -> Result<u64, StoreError> {
        // JetStream removes old entries itself (max_age); the lifetime rule sets max_age.
        Ok(0)
    }

    async fn set_lifetime(&self, lifetime: Duration) -> Result<(), StoreError> {
        {
            let mut l = self.lifetime.lock().unwrap_or_else(|e| e.into_inner());
            let (current, since) = *l;
            let diff = current.as_secs_f64() - lifetime.as_secs_f64();
            // Update the stream only on a real change, and not more than every ten seconds.
            if diff.abs() < current.as_secs_f64() * 0.02
                || since.elapsed() < Duration::from_secs(10)
            {
                return Ok(());
            }
            *l = (lifetime, std::time::Instant::now());
        }
        let mut s = self.stream().await?;
        let mut config = s
            .info()
            .await
            .map_err(|e| unavailable("reading the stream", e))?
            .config
            .clone();
        config.max_age = lifetime;
        self.js
            .update_stream(config)
            .await
            .map_err(|e| unavailable("setting max_age", e))?;
        Ok(())
    }

    fn spawn_feed(&self, tx: broadcast::Sender<Record>) {
        let js = self.js.clone();
        let client = self.client.clone();
        let name = self.stream_name.clone();
        let start = self.bounds().newest.map_or(0, EntryId::get) + 1;
        let entry_len = self.entry_len;
        let known = self.known.clone();
        let wake = self.wake.clone();
        let task = tokio::spawn(async move {
            let mut next = start;
            let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
            loop {
                let run = async {
                    let s = js.get_stream(&name).await.map_err(|e| e.to_string())?;
                    let c = s
                        .create_consumer(consumer::pull::OrderedConfig {
                            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                                start_sequence: next,
                            },
                            ..Default::default()
                        })
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut msgs = c.messages().await.map_err(|e| e.to_string())?;
                    // A restarted nats-server has lost the ephemeral consumer, and the ordered
                    // consumer notices only after its own retries (some 15 s without pushes):
                    // follow again from `next` as soon as the connection is back.
                    let mut watch = tokio::time::interval(Duration::from_millis(100));
                    let mut was_connected = true;
                    loop {
                        let m = tokio::select! {
                            m = msgs.next() => match m {
                                Some(m) => m,
                                None => break,
                            },
                            _ = watch.tick() => {
                                let connected = client.connection_state()
                                    == async_nats::connection::State::Connected;
                                if connected && !was_connected {
                                    tracing::info!("reconnected to NATS; following the stream again");
                                    break;
                                }
                                was_connected = connected;
                                continue;
                            }
                        };
                        let m = m.map_err(|e| e.to_string())?;
                        let Ok(info) = m.info() else { continue };
                        let (id, time_ms) = (info.stream_sequence, millis(info.published));
                        next = id + 1;
                        if lock(&known).note(EntryId(id)) {
                            wake.notify_one();
                        }
                        if m.payload.len() == entry_len {
                            let _ = tx.send(Record {
                                id: EntryId(id),
                                time_ms,
                                entry: m.payload.clone(),
                            });
                        }
                    }
                    Ok::<(), String>(())
                };
                match run.await {
                    Ok(()) => backoff.reset(),
                    Err(e) => {
                        tracing::warn!(error = %e, "following the JetStream stream failed; retrying")
                    }
                }
                backoff.wait().await;
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(task);
    }

    fn healthy(&self) -> Result<(), StoreError> {
        match self.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            _ => Err(StoreError::Unavailable(
                "not connected to NATS; reconnecting".into(),
            )),
        }
    }

    async fn close(&self) -> Result<(), StoreError> {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{derived_ledger_id, Bounds, EntryId, Known};

    #[test]
    fn a_derived_ledger_id_depends_on_the_stream_and_its_creation() {
        let t = time::OffsetDateTime::from_unix_timestamp(1_700_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let later = t + time::Duration::nanoseconds(1);
        assert_eq!(derived_ledger_id("a", t), derived_ledger_id("a", t));
        assert_ne!(derived_ledger_id("a", t), derived_ledger_id("b", t));
        assert_ne!(derived_ledger_id("a", t), derived_ledger_id("a", later));
    }

    fn bounds(oldest: Option<u64>, newest: Option<u64>) -> Bounds {
        Bounds {
            oldest: oldest.map(EntryId),
            newest: newest.map(EntryId),
        }
    }

    #[test]
    fn a_state_behind_acknowledged_ids_is_not_believed() {
        let mut k = Known::default();
        assert_eq!(k.adopt_ids(5, 1, 5), Some(bounds(Some(1), Some(5))));
        // A restoring stream that reports nothing, or fewer ids, changes nothing.
        assert_eq!(k.adopt_ids(0, 0, 0), None);
        assert_eq!(k.adopt_ids(2, 1, 2), None);
        assert_eq!(k.bounds, bounds(Some(1), Some(5)));
        // Once it has caught up it is the truth, expiry included.
        assert_eq!(k.adopt_ids(2, 4, 5), Some(bounds(Some(4), Some(5))));
        assert_eq!(k.adopt_ids(0, 6, 5), Some(bounds(None, Some(5))));
        assert_eq!(k.bounds, bounds(None, Some(5)));
    }

    #[test]
    fn the_oldest_id_is_guessed_only_right_after_a_stream_known_empty() {
        // A fresh stream: the first id assigned is the oldest.
        let mut k = Known::default();
        assert!(!k.note(EntryId(1)));
        assert_eq!(k.bounds, bounds(Some(1), Some(1)));
        // Another front end appended id 1 unseen: 2 is not the oldest, ask the stream.
        let mut k = Known::default();
        assert!(k.note(EntryId(2)));
        assert_eq!(k.bounds, bounds(None, Some(2)));
        // Everything up to 7 expired: 8 is the oldest; 9 after 7 is not known to be.
        let mut k = Known::default();
        k.adopt_ids(0, 8, 7);
        assert!(!k.note(EntryId(8)));
        assert_eq!(k.bounds.oldest, Some(EntryId(8)));
        let mut k = Known::default();
        k.adopt_ids(0, 8, 7);
        assert!(k.note(EntryId(9)));
        assert_eq!(k.bounds.oldest, None);
        // With the oldest known, noting an id only moves the newest.
        assert!(!Known {
            bounds: bounds(Some(3), Some(4)),
            behind_since: None
        }
        .note(EntryId(6)));
    }
}

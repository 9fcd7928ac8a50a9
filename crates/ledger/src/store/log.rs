//! The embedded durable store (`--store embedded`, the default): an append-only log of
//! fixed-size records in segment files, with group commit.
//!
//! Entries of a suite all have one length, so a record's place in its segment follows from its
//! id and no index is needed: `offset = (id - first_id) * record_len`. A record is
//! `id (8) || time_ms (8) || entry || crc32 (4)`, big-endian, the CRC over everything before it.
//! Segment `seg-<first id, 20 digits>.log` holds up to [`SEGMENT_RECORDS`] records with
//! consecutive ids. A mirror may have to skip ids (its upstream expired them before the mirror
//! saw them): the skip ends the segment and the next one starts at the new id, so ids stay
//! consecutive inside every segment.
//!
//! Appends go to one writer thread. It takes every append waiting in its queue, writes them
//! with one `write`, calls `fdatasync` once, and only then acknowledges them and lets readers
//! see them. Many concurrent appends therefore share one sync, and an acknowledged entry
//! survives `kill -9` and power loss (as far as the disk honours `fdatasync`).
//!
//! Recovery checks every record of the newest segment and cuts the file at the first one whose
//! CRC or id is wrong: those were never acknowledged. The newest segment is never deleted by
//! expiry, so ids continue above the old ones even when everything expired.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use async_trait::async_trait;
use bytes::Bytes;
use deaddrop_proto::codec::{Reader, Writer as _};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{Appended, Bounds, EntryId, MirrorStore, Record, Store, StoreError};

/// Records per segment file.
pub const SEGMENT_RECORDS: u64 = 4096;
/// The most appends one sync covers.
const MAX_BATCH: usize = 4096;
/// Appends waiting for the writer before senders wait.
const QUEUE: usize = 16 * 1024;
const HEADER: usize = 16;
const CRC: usize = 4;

/// The embedded store. Cheap to share behind an `Arc`.
pub struct LogStore {
    /// Held while the store exists: one process per data directory.
    _lock: super::lock::DirLock,
    shared: Arc<Shared>,
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    dir: PathBuf,
    entry_len: usize,
    record_len: usize,
    state: RwLock<State>,
    /// Push feed, set by [`Store::spawn_feed`]: the writer sends each batch in id order once
    /// it is synced, so concurrent appends never reach subscribers out of order.
    feed: Mutex<Option<broadcast::Sender<Record>>>,
}

/// What readers see: only synced records.
#[derive(Default)]
struct State {
    /// Segments by first id, with the number of synced records each holds.
    segments: BTreeMap<u64, Seg>,
    oldest: Option<u64>,
    newest: Option<u64>,
}

#[derive(Clone)]
struct Seg {
    file: Arc<Segment>,
    count: u64,
}

struct Segment {
    first_id: u64,
    path: PathBuf,
    file: File,
}

struct Request {
    entry: Bytes,
    now_ms: u64,
    /// For mirrors: the id and time the upstream assigned.
    at: Option<(u64, u64)>,
    reply: oneshot::Sender<Result<Appended, StoreError>>,
}

/// The writer thread's own state.
struct Writer {
    shared: Arc<Shared>,
    /// The segment being appended to: first id, file, records in it.
    active: Option<(u64, File, u64)>,
    next_id: u64,
    last_time: u64,
}

impl LogStore {
    /// Opens (or creates) the store in `dir` for entries of `entry_len` bytes, recovering from
    /// any crash, and starts the writer thread.
    pub fn open(dir: &Path, entry_len: usize) -> Result<LogStore, StoreError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| StoreError::io(format!("creating {}", dir.display()), e))?;
        let lock = super::lock::DirLock::acquire(dir)?;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            entry_len,
            record_len: HEADER + entry_len + CRC,
            state: RwLock::new(State::default()),
            feed: Mutex::new(None),
        });
        let (state, writer) = recover(&shared)?;
        *shared.state.write().unwrap_or_else(|e| e.into_inner()) = state;
        let (tx, rx) = mpsc::channel(QUEUE);
        let handle = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::io("starting the writer thread", e))?;
        Ok(LogStore {
            _lock: lock,
            shared,
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
        })
    }

    /// The writer's queue, or `Unavailable` once the store is closed.
    fn sender(&self) -> Result<mpsc::Sender<Request>, StoreError> {
        self.tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the store is closed".into()))
    }

    async fn submit(
        &self,
        entry: Bytes,
        now_ms: u64,
        at: Option<(u64, u64)>,
    ) -> Result<Appended, StoreError> {
        let tx = self.sender()?;
        let (reply, rx) = oneshot::channel();
        tx.send(Request {
            entry,
            now_ms,
            at,
            reply,
        })
        .await
        .map_err(|_| StoreError::Unavailable("the writer stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the writer stopped".into()))?
    }
}

fn segment_name(first_id: u64) -> String {
    format!("seg-{first_id:020}.log")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    name.strip_prefix("seg-")?
        .strip_suffix(".log")?
        .parse()
        .ok()
}

fn corrupt(path: &Path, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        path: path.display().to_string(),
        detail: detail.into(),
    }
}

/// Reads the segment list, checks it, and repairs the newest segment's tail.
fn recover(shared: &Arc<Shared>) -> Result<(State, Writer), StoreError> {
    let dir = &shared.dir;
    let mut firsts = Vec::new();
    for item in
        fs::read_dir(dir).map_err(|e| StoreError::io(format!("listing {}", dir.display()), e))?
    {
        let item = item.map_err(|e| StoreError::io(format!("listing {}", dir.display()), e))?;
        if let Some(first) = item.file_name().to_str().and_then(parse_segment_name) {
            firsts.push(first);
        }
    }
    firsts.sort_unstable();
    let rl = shared.record_len as u64;
    let mut state = State::default();
    let mut writer = Writer {
        shared: shared.clone(),
        active: None,
        next_id: 1,
        last_time: 0,
    };
    let mut end = 0u64; // one past the last id of the previous segment
    for (i, &first) in firsts.iter().enumerate() {
        let path = dir.join(segment_name(first));
        if first == 0 || first < end {
            return Err(corrupt(
                &path,
                format!("segment overlaps the one before it (which ends before id {end})"),
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| StoreError::io(format!("opening {}", path.display()), e))?;
        let len = file
            .metadata()
            .map_err(|e| StoreError::io(format!("reading {}", path.display()), e))?
            .len();
        let last = i + 1 == firsts.len();
        let count = if last {
            repair_tail(shared, &file, &path, first, len)?
        } else if len == 0 {
            // Created just before a crash and never written: nothing to keep.
            let _ = fs::remove_file(&path);
            continue;
        } else {
            if len % rl != 0 || len / rl > SEGMENT_RECORDS {
                return Err(corrupt(&path, "an old segment has a partial record"));
            }
            len / rl
        };
        if state.oldest.is_none() && count > 0 {
            state.oldest = Some(first);
        }
        end = first + count;
        if last {
            writer.next_id = first + count;
            if count > 0 {
                writer.last_time = read_record(shared, &file, &path, first, count - 1)?.time_ms;
            } else if let Some(&prev) = i.checked_sub(1).and_then(|p| firsts.get(p)) {
                // An empty newest segment (created just before a crash): ids continue from it,
                // times from the segment before.
                if let Some(seg) = state.segments.get(&prev) {
                    if seg.count > 0 {
                        writer.last_time = read_record(
                            shared,
                            &seg.file.file,
                            &seg.file.path,
                            prev,
                            seg.count - 1,
                        )?
                        .time_ms;
                    }
                }
            }
            let append = OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(|e| StoreError::io(format!("opening {}", path.display()), e))?;
            if count < SEGMENT_RECORDS {
                writer.active = Some((first, append, count));
            }
        }
        state.segments.insert(
            first,
            Seg {
                file: Arc::new(Segment {
                    first_id: first,
                    path,
                    file,
                }),
                count,
            },
        );
    }
    state.newest = writer.next_id.checked_sub(1).filter(|&n| n > 0);
    Ok((state, writer))
}

/// Cuts the newest segment after its last good record; returns how many records it keeps.
fn repair_tail(
    shared: &Shared,
    file: &File,
    path: &Path,
    first: u64,
    len: u64,
) -> Result<u64, StoreError> {
    let rl = shared.record_len as u64;
    let whole = (len / rl).min(SEGMENT_RECORDS);
    let mut good = 0;
    while good < whole {
        match read_record(shared, file, path, first, good) {
            Ok(_) => good += 1,
            Err(StoreError::Corrupt { .. }) => break,
            Err(e) => return Err(e),
        }
    }
    if good * rl != len {
        file.set_len(good * rl)
            .and_then(|_| file.sync_all())
            .map_err(|e| {
                StoreError::io(format!("cutting the torn tail of {}", path.display()), e)
            })?;
    }
    Ok(good)
}

/// Reads and checks record `index` of a segment.
fn read_record(
    shared: &Shared,
    file: &File,
    path: &Path,
    first: u64,
    index: u64,
) -> Result<Record, StoreError> {
    let mut buf = vec![0u8; shared.record_len];
    file.read_exact_at(&mut buf, index * shared.record_len as u64)
        .map_err(|e| StoreError::io(format!("reading {}", path.display()), e))?;
    decode(shared, &buf, first + index)
        .ok_or_else(|| corrupt(path, format!("record {} is damaged", first + index)))
}

fn decode(shared: &Shared, buf: &[u8], expect_id: u64) -> Option<Record> {
    let mut r = Reader::new(buf);
    let id = r.u64().ok()?;
    let time_ms = r.u64().ok()?;
    let entry = r.take(shared.entry_len).ok()?;
    let covered = r.consumed();
    let crc = r.u32().ok()?;
    r.expect_empty().ok()?;
    (crc32fast::hash(covered) == crc && id == expect_id).then(|| Record {
        id: EntryId(id),
        time_ms,
        entry: Bytes::copy_from_slice(entry),
    })
}

fn encode(out: &mut Vec<u8>, id: u64, time_ms: u64, entry: &[u8]) {
    let start = out.len();
    out.put_u64(id);
    out.put_u64(time_ms);
    out.put_slice(entry);
    let crc = crc32fast::hash(&out[start..]);
    out.put_u32(crc);
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Request>) {
        while let Some(first) = rx.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            // Requests whose caller gave up are still written: the client may already have
            // sent the entry, and storing it unacknowledged is better than dropping it.
            let results = self.write_batch(&batch);
            let feed = self
                .shared
                .feed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let mut synced = Vec::new();
            for (req, r) in batch.into_iter().zip(results) {
                if let (Some(_), Ok(a)) = (&feed, &r) {
                    synced.push(Record {
                        id: a.id,
                        time_ms: a.time_ms,
                        entry: req.entry.clone(),
                    });
                }
                let _ = req.reply.send(r);
            }
            if let Some(feed) = feed {
                for record in synced {
                    let _ = feed.send(record);
                }
            }
        }
    }

    /// Writes a batch with one sync per touched segment. Returns one result per request:
    /// requests refused on their own (a mirror record with an id not above the newest) fail
    /// alone; an I/O failure fails the whole batch and leaves the log as it was.
    fn write_batch(&mut self, batch: &[Request]) -> Vec<Result<Appended, StoreError>> {
        let shared = self.shared.clone();
        let start = (self.next_id, self.last_time);
        let mut results: Vec<Option<Result<Appended, StoreError>>> =
            (0..batch.len()).map(|_| None).collect();
        let outcome = (|| {
            let mut buf = Vec::new();
            for (i, req) in batch.iter().enumerate() {
                if req.entry.len() != shared.entry_len {
                    results[i] = Some(Err(StoreError::Unavailable(format!(
                        "entry of {} bytes where {} are expected",
                        req.entry.len(),
                        shared.entry_len
                    ))));
                    continue;
                }
                let (id, time_ms) = match req.at {
                    None => (self.next_id, req.now_ms.max(self.last_time)),
                    Some((id, _)) if id < self.next_id => {
                        results[i] = Some(Err(StoreError::Unavailable(format!(
                            "id {id} is not above the newest id {}",
                            self.next_id - 1
                        ))));
                        continue;
                    }
                    Some((id, t)) => (id, t.max(self.last_time)),
                };
                // A skipped id, or a full segment, closes the active segment.
                let fits = matches!(&self.active, Some((first, _, count)) if first + count == id && *count < SEGMENT_RECORDS);
                if !fits {
                    self.flush(&mut buf, true)?;
                    self.drop_empty_active();
                    self.open_segment(id)?;
                }
                encode(&mut buf, id, time_ms, &req.entry);
                if let Some((_, _, count)) = self.active.as_mut() {
                    *count += 1;
                }
                self.next_id = id + 1;
                self.last_time = time_ms;
                results[i] = Some(Ok(Appended {
                    id: EntryId(id),
                    time_ms,
                }));
            }
            self.flush(&mut buf, true)
        })();
        if let Err(e) = outcome {
            self.next_id = start.0;
            self.last_time = start.1;
            self.active = None;
            self.rollback();
            let msg = e.to_string();
            return (0..batch.len())
                .map(|_| Err(StoreError::Unavailable(msg.clone())))
                .collect();
        }
        let mut st = shared.state.write().unwrap_or_else(|e| e.into_inner());
        if self.next_id > start.0 {
            st.newest = Some(self.next_id - 1);
        }
        let first_written = results
            .iter()
            .flatten()
            .flatten()
            .map(|a| a.id.get())
            .next();
        if st.oldest.is_none() {
            st.oldest = first_written;
        }
        if let Some((first, _, count)) = &self.active {
            if let Some(seg) = st.segments.get_mut(first) {
                seg.count = *count;
            }
        }
        drop(st);
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(StoreError::Unavailable("not written".into()))))
            .collect()
    }

    /// Writes `buf` to the active segment and syncs it; with `publish`, records the segment's
    /// count for readers when it is closed.
    fn flush(&mut self, buf: &mut Vec<u8>, _publish: bool) -> Result<(), StoreError> {
        if buf.is_empty() {
            return Ok(());
        }
        let Some((first, file, count)) = self.active.as_mut() else {
            return Err(StoreError::Unavailable("no active segment".into()));
        };
        file.write_all(buf)
            .and_then(|_| file.sync_data())
            .map_err(|e| StoreError::io("appending to the ledger log", e))?;
        buf.clear();
        let (first, count) = (*first, *count);
        let mut st = self.shared.state.write().unwrap_or_else(|e| e.into_inner());
        // Readers may not see these records yet (newest moves at the end of the batch), but
        // the count must be right before the segment is closed and forgotten here.
        if let Some(seg) = st.segments.get_mut(&first) {
            seg.count = count;
        }
        Ok(())
    }

    /// After a failed write, cuts every segment back to what readers may see.
    fn rollback(&mut self) {
        let shared = self.shared.clone();
        let mut st = shared.state.write().unwrap_or_else(|e| e.into_inner());
        let newest = st.newest.unwrap_or(0);
        let mut drop_firsts = Vec::new();
        for (first, seg) in st.segments.iter_mut() {
            let keep = (newest + 1)
                .saturating_sub(*first)
                .min(seg.count)
                .min(SEGMENT_RECORDS);
            seg.count = keep;
            let _ = seg.file.file.set_len(keep * shared.record_len as u64);
            if keep == 0 && *first > newest {
                drop_firsts.push(*first);
            }
        }
        for f in drop_firsts {
            if let Some(seg) = st.segments.remove(&f) {
                let _ = fs::remove_file(&seg.file.path);
            }
        }
    }

    /// Removes the active segment if it holds nothing, so no empty segment is left behind a
    /// newer one (recovery treats that as damage).
    fn drop_empty_active(&mut self) {
        if let Some((first, _, 0)) = &self.active {
            let first = *first;
            self.active = None;
            let mut st = self.shared.state.write().unwrap_or_else(|e| e.into_inner());
            if let Some(seg) = st.segments.remove(&first) {
                let _ = fs::remove_file(&seg.file.path);
            }
        }
    }

    /// Starts a new segment whose first id is `first`.
    fn open_segment(&mut self, first: u64) -> Result<(), StoreError> {
        let shared = self.shared.clone();
        let path = shared.dir.join(segment_name(first));
        let append = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| StoreError::io(format!("creating {}", path.display()), e))?;
        File::open(&shared.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::io(format!("syncing {}", shared.dir.display()), e))?;
        let read = File::open(&path)
            .map_err(|e| StoreError::io(format!("opening {}", path.display()), e))?;
        shared
            .state
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .segments
            .insert(
                first,
                Seg {
                    file: Arc::new(Segment {
                        first_id: first,
                        path,
                        file: read,
                    }),
                    count: 0,
                },
            );
        self.active = Some((first, append, 0));
        Ok(())
    }
}

impl Shared {
    fn read_range(&self, after: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        let (from, newest, segments) = {
            let st = self.state.read().unwrap_or_else(|e| e.into_inner());
            let (Some(oldest), Some(newest)) = (st.oldest, st.newest) else {
                return Ok(Vec::new());
            };
            let from = after.saturating_add(1).max(oldest);
            if from > newest || limit == 0 {
                return Ok(Vec::new());
            }
            // The segment holding `from` (if any) and those after it.
            let start = st
                .segments
                .range(..=from)
                .next_back()
                .map_or(from, |(&f, _)| f);
            let segs: Vec<Seg> = st
                .segments
                .range(start..=newest)
                .map(|(_, s)| s.clone())
                .collect();
            (from, newest, segs)
        };
        let mut out = Vec::with_capacity(limit.min(1024));
        let rl = self.record_len;
        for seg in segments {
            let remaining = limit - out.len();
            if remaining == 0 {
                break;
            }
            if seg.count == 0 {
                continue;
            }
            let first = seg.file.first_id;
            let lo = from.max(first);
            let hi = newest
                .min(first + seg.count - 1)
                .min(lo.saturating_add(remaining as u64 - 1));
            if lo > hi {
                continue;
            }
            let n = (hi - lo + 1) as usize;
            let mut buf = vec![0u8; n * rl];
            seg.file
                .file
                .read_exact_at(&mut buf, (lo - first) * rl as u64)
                .map_err(|e| StoreError::io(format!("reading {}", seg.file.path.display()), e))?;
            for (i, chunk) in buf.chunks_exact(rl).enumerate() {
                let id = lo + i as u64;
                out.push(
                    decode(self, chunk, id).ok_or_else(|| {
                        corrupt(&seg.file.path, format!("record {id} is damaged"))
                    })?,
                );
            }
        }
        Ok(out)
    }

    fn time_at(&self, seg: &Seg, index: u64) -> Result<u64, StoreError> {
        let mut t = [0u8; 8];
        seg.file
            .file
            .read_exact_at(&mut t, index * self.record_len as u64 + 8)
            .map_err(|e| StoreError::io(format!("reading {}", seg.file.path.display()), e))?;
        Ok(u64::from_be_bytes(t))
    }

    fn expire(&self, cutoff_ms: u64) -> Result<u64, StoreError> {
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        let (Some(oldest), Some(newest)) = (st.oldest, st.newest) else {
            return Ok(0);
        };
        // Times never decrease with id. Find the first live record: whole segments first, then
        // a binary search inside the segment where the cutoff falls.
        let mut new_oldest = None;
        let mut removed = 0u64;
        let mut doomed = Vec::new();
        let newest_first = st.segments.range(..=newest).next_back().map(|(&f, _)| f);
        for (&first, seg) in st.segments.iter() {
            let visible_end = (first + seg.count).min(newest + 1);
            if visible_end <= first.max(oldest) {
                if Some(first) != newest_first && first + seg.count <= oldest {
                    doomed.push(first);
                }
                continue;
            }
            let lo_idx = oldest.saturating_sub(first);
            let n = visible_end - first;
            if self.time_at(seg, n - 1)? < cutoff_ms {
                removed += n - lo_idx;
                if Some(first) != newest_first {
                    doomed.push(first);
                }
                continue;
            }
            let (mut lo, mut hi) = (lo_idx, n - 1);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if self.time_at(seg, mid)? < cutoff_ms {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            removed += lo - lo_idx;
            new_oldest = Some(first + lo);
            break;
        }
        st.oldest = new_oldest;
        for f in doomed {
            if let Some(seg) = st.segments.remove(&f) {
                fs::remove_file(&seg.file.path).map_err(|e| {
                    StoreError::io(format!("removing {}", seg.file.path.display()), e)
                })?;
            }
        }
        Ok(removed)
    }
}

#[async_trait]
impl Store for LogStore {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    async fn append(&self, entry: Bytes, now_ms: u64) -> Result<Appended, StoreError> {
        self.submit(entry, now_ms, None).await
    }

    async fn read(&self, after: EntryId, limit: usize) -> Result<Vec<Record>, StoreError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.read_range(after.get(), limit))
            .await
            .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?
    }

    fn bounds(&self) -> Bounds {
        let st = self.shared.state.read().unwrap_or_else(|e| e.into_inner());
        Bounds {
            oldest: st.oldest.map(EntryId),
            newest: st.newest.map(EntryId),
        }
    }

    async fn expire(&self, cutoff_ms: u64) -> Result<u64, StoreError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.expire(cutoff_ms))
            .await
            .map_err(|e| StoreError::Unavailable(format!("expiry task failed: {e}")))?
    }

    fn spawn_feed(&self, tx: broadcast::Sender<Record>) {
        *self.shared.feed.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    }

    async fn close(&self) -> Result<(), StoreError> {
        drop(self.tx.lock().unwrap_or_else(|e| e.into_inner()).take());
        let handle = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            tokio::task::spawn_blocking(move || h.join())
                .await
                .map_err(|e| StoreError::Unavailable(format!("joining the writer: {e}")))?
                .map_err(|_| StoreError::Unavailable("the writer thread panicked".into()))?;
        }
        Ok(())
    }
}

#[async_trait]
impl MirrorStore for LogStore {
    async fn insert(&self, record: Record) -> Result<(), StoreError> {
        self.submit(
            record.entry,
            record.time_ms,
            Some((record.id.get(), record.time_ms)),
        )
        .await
        .map(|_| ())
    }

    async fn insert_many(&self, records: Vec<Record>) -> Result<(), StoreError> {
        let tx = self.sender()?;
        // Queue every record before waiting for any answer, in order, so the writer takes
        // them in one batch with one sync.
        let mut replies = Vec::with_capacity(records.len());
        for r in records {
            let (reply, rx) = oneshot::channel();
            let req = Request {
                entry: r.entry,
                now_ms: r.time_ms,
                at: Some((r.id.get(), r.time_ms)),
                reply,
            };
            tx.send(req)
                .await
                .map_err(|_| StoreError::Unavailable("the writer stopped".into()))?;
            replies.push(rx);
        }
        for rx in replies {
            rx.await
                .map_err(|_| StoreError::Unavailable("the writer stopped".into()))??;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(entry_len: usize) -> Shared {
        Shared {
            dir: PathBuf::new(),
            entry_len,
            record_len: HEADER + entry_len + CRC,
            state: RwLock::new(State::default()),
            feed: Mutex::new(None),
        }
    }

    /// The on-disk record layout, pinned byte for byte (CRC-32 from an independent
    /// implementation, Python's `zlib.crc32`).
    #[test]
    fn record_layout_is_pinned() {
        let mut out = Vec::new();
        encode(&mut out, 1, 2, &[0xaa, 0xbb, 0xcc]);
        #[rustfmt::skip]
        let expected = [
            0, 0, 0, 0, 0, 0, 0, 1, // id
            0, 0, 0, 0, 0, 0, 0, 2, // time_ms
            0xaa, 0xbb, 0xcc, // entry
            0xaa, 0xa8, 0x6c, 0xd5, // crc32 of the above
        ];
        assert_eq!(out, expected);
        let sh = shared(3);
        assert_eq!(out.len(), sh.record_len);
        let r = decode(&sh, &out, 1).unwrap();
        assert_eq!(
            (r.id, r.time_ms, &r.entry[..]),
            (EntryId(1), 2, &[0xaa, 0xbb, 0xcc][..])
        );
        assert!(decode(&sh, &out, 2).is_none(), "wrong id");
        for i in 0..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 0x40;
            assert!(decode(&sh, &bad, 1).is_none(), "flipped byte {i}");
        }
        for cut in 0..out.len() {
            assert!(decode(&sh, &out[..cut], 1).is_none(), "cut at {cut}");
        }
    }
}

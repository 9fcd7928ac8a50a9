//! The embedded durable store (`--store embedded`, the default): an append-only log of
//! fixed-size records in segment files, with group commit.
//!
//! Entries of a suite all have one length, so a record's place in its segment follows from its
//! id and no index is needed: `offset = (id - first_id) * record_len`. A record is
//! `id (8) || time_ms (8) || entry || crc32 (4)`, big-endian, the CRC over everything before it.
//! Segment `seg-<first id, 20 digits>.log` holds [`SEGMENT_RECORDS`] records.
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
use tokio::sync::{mpsc, oneshot};

use super::{Appended, Bounds, Record, Store, StoreError};

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
    shared: Arc<Shared>,
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    dir: PathBuf,
    entry_len: usize,
    record_len: usize,
    state: RwLock<State>,
}

#[derive(Default)]
struct State {
    segments: BTreeMap<u64, Arc<Segment>>,
    oldest: Option<u64>,
    newest: Option<u64>,
}

struct Segment {
    first_id: u64,
    path: PathBuf,
    file: File,
}

struct Request {
    entry: Bytes,
    now_ms: u64,
    reply: oneshot::Sender<Result<Appended, StoreError>>,
}

/// The writer thread's own state.
struct Writer {
    shared: Arc<Shared>,
    active: Option<(u64, File)>,
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
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            entry_len,
            record_len: HEADER + entry_len + CRC,
            state: RwLock::new(State::default()),
        });
        let (state, writer) = recover(&shared)?;
        *shared.state.write().unwrap_or_else(|e| e.into_inner()) = state;
        let (tx, rx) = mpsc::channel(QUEUE);
        let handle = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| StoreError::io("starting the writer thread", e))?;
        Ok(LogStore {
            shared,
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(handle)),
        })
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
    for (i, &first) in firsts.iter().enumerate() {
        let path = dir.join(segment_name(first));
        if first == 0 {
            return Err(corrupt(&path, "segment ids start at 1"));
        }
        if let Some(&prev) = i.checked_sub(1).and_then(|p| firsts.get(p)) {
            if prev + SEGMENT_RECORDS != first {
                return Err(corrupt(
                    &path,
                    format!("segment does not follow segment {prev}"),
                ));
            }
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
        } else {
            if len != SEGMENT_RECORDS * rl {
                return Err(corrupt(
                    &path,
                    format!("an old segment must hold {SEGMENT_RECORDS} records"),
                ));
            }
            SEGMENT_RECORDS
        };
        if state.oldest.is_none() && count > 0 {
            state.oldest = Some(first);
        }
        if last {
            writer.next_id = first + count;
            if count > 0 {
                let rec = read_record(shared, &file, &path, first, count - 1)?;
                writer.last_time = rec.time_ms;
            }
            let append = OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(|e| StoreError::io(format!("opening {}", path.display()), e))?;
            if count < SEGMENT_RECORDS {
                writer.active = Some((first, append));
            }
        }
        state.segments.insert(
            first,
            Arc::new(Segment {
                first_id: first,
                path,
                file,
            }),
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
    let body_len = HEADER + shared.entry_len;
    let (body, crc) = buf.split_at(body_len);
    if crc32fast::hash(body).to_be_bytes() != crc {
        return None;
    }
    let id = u64::from_be_bytes(body[..8].try_into().ok()?);
    let time_ms = u64::from_be_bytes(body[8..16].try_into().ok()?);
    (id == expect_id).then(|| Record {
        id,
        time_ms,
        entry: Bytes::copy_from_slice(&body[HEADER..]),
    })
}

fn encode(out: &mut Vec<u8>, id: u64, time_ms: u64, entry: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&time_ms.to_be_bytes());
    out.extend_from_slice(entry);
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
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
            // Requests whose caller gave up still get written: the caller may have been
            // cancelled after the client already sent the entry, and dropping it silently
            // would be worse than storing an unacknowledged entry.
            match self.write_batch(&batch) {
                Ok(assigned) => {
                    for (req, a) in batch.into_iter().zip(assigned) {
                        let _ = req.reply.send(Ok(a));
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    for req in batch {
                        let _ = req.reply.send(Err(StoreError::Unavailable(msg.clone())));
                    }
                }
            }
        }
    }

    fn write_batch(&mut self, batch: &[Request]) -> Result<Vec<Appended>, StoreError> {
        let shared = self.shared.clone();
        let rl = shared.record_len;
        let mut assigned = Vec::with_capacity(batch.len());
        let mut pending = batch.iter().peekable();
        let start_id = self.next_id;
        let start_time = self.last_time;
        let result = (|| {
            while pending.peek().is_some() {
                let (first, room) = self.ensure_active()?;
                let mut buf = Vec::with_capacity(rl * room.min(batch.len()));
                let mut n = 0;
                while n < room {
                    let Some(req) = pending.next() else { break };
                    if req.entry.len() != shared.entry_len {
                        return Err(StoreError::Unavailable(format!(
                            "entry of {} bytes where {} are expected",
                            req.entry.len(),
                            shared.entry_len
                        )));
                    }
                    let id = self.next_id;
                    let time_ms = req.now_ms.max(self.last_time);
                    encode(&mut buf, id, time_ms, &req.entry);
                    assigned.push(Appended { id, time_ms });
                    self.next_id += 1;
                    self.last_time = time_ms;
                    n += 1;
                }
                let Some((_, file)) = self.active.as_mut() else {
                    return Err(StoreError::Unavailable("no active segment".into()));
                };
                file.write_all(&buf)
                    .map_err(|e| StoreError::io("appending to the ledger log", e))?;
                if self.next_id - first >= SEGMENT_RECORDS {
                    file.sync_data()
                        .map_err(|e| StoreError::io("syncing the ledger log", e))?;
                    self.active = None;
                }
            }
            if let Some((_, file)) = self.active.as_mut() {
                file.sync_data()
                    .map_err(|e| StoreError::io("syncing the ledger log", e))?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            // Undo: cut every touched segment back so ids stay dense and nothing
            // unacknowledged is served; the ids are handed out again.
            self.next_id = start_id;
            self.last_time = start_time;
            self.active = None;
            self.rollback(start_id);
            return Err(e);
        }
        let mut st = shared.state.write().unwrap_or_else(|e| e.into_inner());
        st.newest = Some(self.next_id - 1);
        if st.oldest.is_none() {
            st.oldest = Some(start_id);
        }
        Ok(assigned)
    }

    /// After a failed write, cuts the log back to hold exactly the ids below `next_id`.
    fn rollback(&mut self, next_id: u64) {
        let shared = self.shared.clone();
        let st = shared.state.read().unwrap_or_else(|e| e.into_inner());
        for seg in st.segments.values() {
            let keep = next_id.saturating_sub(seg.first_id).min(SEGMENT_RECORDS);
            let _ = seg.file.set_len(keep * shared.record_len as u64);
        }
    }

    /// The segment to append to and how many records still fit: the segment that holds
    /// `next_id` if there is one (after a rollback), else a new one starting at `next_id`.
    fn ensure_active(&mut self) -> Result<(u64, usize), StoreError> {
        if let Some((first, _)) = &self.active {
            let used = self.next_id - first;
            return Ok((*first, (SEGMENT_RECORDS - used) as usize));
        }
        let shared = self.shared.clone();
        let next = self.next_id;
        let existing = shared
            .state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .segments
            .range(..=next)
            .next_back()
            .filter(|(&f, _)| f + SEGMENT_RECORDS > next)
            .map(|(&f, s)| (f, s.path.clone()));
        let (first, path, new) = match existing {
            Some((f, p)) => (f, p, false),
            None => (next, shared.dir.join(segment_name(next)), true),
        };
        let append = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| StoreError::io(format!("opening {}", path.display()), e))?;
        if new {
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
                    Arc::new(Segment {
                        first_id: first,
                        path,
                        file: read,
                    }),
                );
        }
        self.active = Some((first, append));
        Ok((first, (SEGMENT_RECORDS - (next - first)) as usize))
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
            let segs: Vec<Arc<Segment>> = st
                .segments
                .range(..=newest)
                .filter(|(&f, _)| f + SEGMENT_RECORDS > from)
                .map(|(_, s)| s.clone())
                .collect();
            (from, newest, segs)
        };
        let last = newest.min(from.saturating_add(limit as u64 - 1));
        let mut out = Vec::with_capacity((last - from + 1) as usize);
        let rl = self.record_len;
        for seg in segments {
            let lo = from.max(seg.first_id);
            let hi = last.min(seg.first_id + SEGMENT_RECORDS - 1);
            if lo > hi {
                continue;
            }
            let n = (hi - lo + 1) as usize;
            let mut buf = vec![0u8; n * rl];
            seg.file
                .read_exact_at(&mut buf, (lo - seg.first_id) * rl as u64)
                .map_err(|e| StoreError::io(format!("reading {}", seg.path.display()), e))?;
            for (i, chunk) in buf.chunks_exact(rl).enumerate() {
                let id = lo + i as u64;
                out.push(
                    decode(self, chunk, id)
                        .ok_or_else(|| corrupt(&seg.path, format!("record {id} is damaged")))?,
                );
            }
        }
        Ok(out)
    }

    fn time_of(&self, segments: &BTreeMap<u64, Arc<Segment>>, id: u64) -> Result<u64, StoreError> {
        let seg = segments
            .range(..=id)
            .next_back()
            .map(|(_, s)| s.clone())
            .ok_or_else(|| corrupt(&self.dir, format!("no segment holds id {id}")))?;
        let mut t = [0u8; 8];
        seg.file
            .read_exact_at(&mut t, (id - seg.first_id) * self.record_len as u64 + 8)
            .map_err(|e| StoreError::io(format!("reading {}", seg.path.display()), e))?;
        Ok(u64::from_be_bytes(t))
    }

    fn expire(&self, cutoff_ms: u64) -> Result<u64, StoreError> {
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        let (Some(oldest), Some(newest)) = (st.oldest, st.newest) else {
            return Ok(0);
        };
        // Times never decrease with id: binary search for the first id still alive.
        let (mut lo, mut hi) = (oldest, newest + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.time_of(&st.segments, mid)? < cutoff_ms {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let removed = lo - oldest;
        st.oldest = (lo <= newest).then_some(lo);
        let doomed: Vec<u64> = st
            .segments
            .keys()
            .copied()
            .filter(|&f| f + SEGMENT_RECORDS <= lo && f + SEGMENT_RECORDS <= newest)
            .collect();
        for f in doomed {
            if let Some(seg) = st.segments.remove(&f) {
                fs::remove_file(&seg.path)
                    .map_err(|e| StoreError::io(format!("removing {}", seg.path.display()), e))?;
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
        let tx = self
            .tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| StoreError::Unavailable("the store is closed".into()))?;
        let (reply, rx) = oneshot::channel();
        tx.send(Request {
            entry,
            now_ms,
            reply,
        })
        .await
        .map_err(|_| StoreError::Unavailable("the writer stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("the writer stopped".into()))?
    }

    async fn read(&self, after: u64, limit: usize) -> Result<Vec<Record>, StoreError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.read_range(after, limit))
            .await
            .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?
    }

    fn bounds(&self) -> Bounds {
        let st = self.shared.state.read().unwrap_or_else(|e| e.into_inner());
        Bounds {
            oldest: st.oldest,
            newest: st.newest,
        }
    }

    async fn expire(&self, cutoff_ms: u64) -> Result<u64, StoreError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || shared.expire(cutoff_ms))
            .await
            .map_err(|e| StoreError::Unavailable(format!("expiry task failed: {e}")))?
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

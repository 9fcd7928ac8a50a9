//! The embedded durable store (`--store embedded`, the default): an append-only log of
//! fixed-size records in segment files, with group commit.
//!
//! Entries of a suite all have one length, so a record's place in its segment follows from its
//! id and no index is needed: `offset = (id - first_id) * record_len`. A record is
//! `id (8) || time_ms (8) || entry || crc32 (4)`, big-endian, the CRC over everything before it.
//! Segment `seg-<first id, 20 digits>.log` holds up to [`SEGMENT_RECORDS`] records with
//! consecutive ids, and spans at most a quarter of the lifetime last given to
//! [`Store::set_lifetime`]: a record later than that starts a new segment. A mirror may have to
//! skip ids (its upstream expired them before the mirror saw them): the skip ends the segment
//! and the next one starts at the new id, so ids stay consecutive inside every segment.
//!
//! Appends go to one writer thread. It takes every append waiting in its queue, writes them
//! with one `write`, calls `fdatasync` once, and only then acknowledges them and lets readers
//! see them. Many concurrent appends therefore share one sync, and an acknowledged entry
//! survives `kill -9` and power loss (as far as the disk honours `fdatasync`). A failed write
//! (a full disk, an I/O error) fails its whole batch and cuts the files back, through a
//! writable handle, to what was acknowledged; until that cut succeeds nothing else is written.
//!
//! Expiry deletes every segment whose records have all expired, the newest one included, so an
//! expired entry leaves the disk at most a quarter of a lifetime (plus one tick) after it
//! expired. Before it deletes anything it writes the small `marks` file
//! (`"DDM1" || oldest live id (8) || next id (8) || crc32 (4)`, replaced atomically): recovery
//! never serves an id below the first and never assigns one below the second, whatever the
//! lifetime after a restart.
//!
//! Recovery checks every record of the newest segment independently (each CRC and id). Bad
//! records at its very end, after the last good one, are a write torn by a crash and were never
//! acknowledged: they are cut. A bad record with good ones after it is damage: its bytes are
//! copied to `quarantine/<id>.bad`, it is logged, and reads skip its id (a gap). Older segments
//! are checked as they are read, with the same result; a partial record at the end of an older
//! segment is cut, and ids that no segment holds are logged as missing.
//!
//! The data directory's [`LedgerId`] is in the file `ledger-id` (32 hex digits and a newline),
//! written once when the directory is first opened and replaced only when a mirror adopts its
//! upstream's ([`MirrorStore::adopt_ledger_id`]). A data directory wiped and made anew gets a new
//! id, which is how clients tell the new ledger from the one it replaced.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;

use async_trait::async_trait;
use bytes::Bytes;
use deaddrop_proto::codec::{Reader, Writer as _};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{Appended, Bounds, EntryId, LedgerId, MirrorStore, Record, Store, StoreError};

/// Records per segment file.
pub const SEGMENT_RECORDS: u64 = 4096;
/// The most appends one sync covers.
const MAX_BATCH: usize = 4096;
/// Appends waiting for the writer before senders wait.
const QUEUE: usize = 16 * 1024;
/// A segment spans at most the lifetime divided by this.
const SPANS_PER_LIFETIME: u64 = 4;
const HEADER: usize = 16;
const CRC: usize = 4;
const MARKS: &str = "marks";
const MARKS_MAGIC: &[u8; 4] = b"DDM1";
const MARKS_LEN: usize = 4 + 8 + 8 + CRC;
const QUARANTINE: &str = "quarantine";
/// The file holding the data directory's [`LedgerId`].
pub const LEDGER_ID_FILE: &str = "ledger-id";

/// The embedded store. Cheap to share behind an `Arc`.
pub struct LogStore {
    /// Held while the store exists: one process per data directory.
    _lock: super::lock::DirLock,
    shared: Arc<Shared>,
    tx: Mutex<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The data's id, as in [`LEDGER_ID_FILE`].
    id: Mutex<LedgerId>,
}

struct Shared {
    dir: PathBuf,
    entry_len: usize,
    record_len: usize,
    state: RwLock<State>,
    /// The writer's state. The writer holds it for a whole batch; expiry takes it (before
    /// `state`) when it deletes the segment being appended to.
    core: Mutex<Core>,
    /// The lifetime in force, in milliseconds (0: not told yet, segments roll by size only).
    lifetime_ms: AtomicU64,
    /// Ids whose records are damaged (reads skip them), each logged once.
    damaged: Mutex<BTreeSet<u64>>,
    /// Push feed, set by [`Store::spawn_feed`]: the writer sends each batch in id order once
    /// it is synced, so concurrent appends never reach subscribers out of order.
    feed: Mutex<Option<broadcast::Sender<Record>>>,
}

impl Shared {
    /// The state of a log in `dir` before recovery: nothing held, no writer, no feed.
    fn new(dir: PathBuf, entry_len: usize) -> Shared {
        Shared {
            dir,
            entry_len,
            record_len: HEADER + entry_len + CRC,
            state: RwLock::new(State::default()),
            core: Mutex::new(Core::default()),
            lifetime_ms: AtomicU64::new(0),
            damaged: Mutex::new(BTreeSet::new()),
            feed: Mutex::new(None),
        }
    }
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

/// The segment being appended to.
struct Active {
    first: u64,
    file: File,
    count: u64,
    /// The time of its first record: later records beyond the span start a new segment.
    first_time: u64,
}

/// The writer's state.
#[derive(Default)]
struct Core {
    active: Option<Active>,
    next_id: u64,
    last_time: u64,
    /// A failed write could not be cut back yet: nothing is written until it is.
    uncut: bool,
    /// The marks last written (oldest live id, next id).
    marks: (u64, u64),
}

/// The writer thread.
struct Writer {
    shared: Arc<Shared>,
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
        let id = match read_ledger_id(dir)? {
            Some(id) => id,
            None => {
                let id = super::new_ledger_id();
                write_ledger_id(dir, id)?;
                id
            }
        };
        let shared = Arc::new(Shared::new(dir.to_path_buf(), entry_len));
        let (state, core) = recover(&shared)?;
        *shared.state.write().unwrap_or_else(|e| e.into_inner()) = state;
        *shared.lock_core() = core;
        let writer = Writer {
            shared: shared.clone(),
        };
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
            id: Mutex::new(id),
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

fn quarantine_name(id: u64) -> String {
    format!("{id:020}.bad")
}

fn corrupt(path: &Path, detail: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        path: path.display().to_string(),
        detail: detail.into(),
    }
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(format!("syncing {}", dir.display()), e))
}

/// The [`LedgerId`] kept in `dir`, or `None` when the directory has none yet. A file that holds
/// no id is damage, reported rather than replaced: a new id would make every client read the
/// whole ledger again.
fn read_ledger_id(dir: &Path) -> Result<Option<LedgerId>, StoreError> {
    let path = dir.join(LEDGER_ID_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io(format!("reading {}", path.display()), e)),
    };
    text.trim().parse().map(Some).map_err(|_| {
        corrupt(
            &path,
            "it does not hold a ledger id (32 hex digits); remove it to give this ledger a new              id (its clients then read it again from its oldest entry)",
        )
    })
}

/// Writes `id` as the [`LedgerId`] of `dir`, atomically and durably.
fn write_ledger_id(dir: &Path, id: LedgerId) -> Result<(), StoreError> {
    let path = dir.join(LEDGER_ID_FILE);
    let tmp = dir.join(format!("{LEDGER_ID_FILE}.tmp"));
    (|| {
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        writeln!(f, "{id}")?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    })()
    .map_err(|e| {
        let _ = fs::remove_file(&tmp);
        StoreError::io(format!("writing {}", path.display()), e)
    })?;
    sync_dir(dir)
}

/// Reads the marks file: (oldest live id, next id), or zeros if there is none or it is damaged.
fn read_marks(dir: &Path) -> (u64, u64) {
    let path = dir.join(MARKS);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (0, 0),
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e,
                "cannot read the marks file; expired ids may be served again and ids after a \
                 fully expired log may be reused");
            return (0, 0);
        }
    };
    let parsed = (|| {
        let mut r = Reader::new(&bytes);
        let magic = r.take(4).ok()?;
        let oldest = r.u64().ok()?;
        let next = r.u64().ok()?;
        let covered = r.consumed();
        let crc = r.u32().ok()?;
        r.expect_empty().ok()?;
        (magic == MARKS_MAGIC && crc32fast::hash(covered) == crc).then_some((oldest, next))
    })();
    parsed.unwrap_or_else(|| {
        tracing::error!(path = %path.display(),
            "the marks file is damaged (bad CRC or length) and is ignored; expired ids may be \
             served again and ids after a fully expired log may be reused");
        (0, 0)
    })
}

/// Replaces the marks file atomically and durably.
fn write_marks(dir: &Path, oldest: u64, next: u64) -> Result<(), StoreError> {
    let mut buf = Vec::with_capacity(MARKS_LEN);
    buf.put_slice(MARKS_MAGIC);
    buf.put_u64(oldest);
    buf.put_u64(next);
    let crc = crc32fast::hash(&buf);
    buf.put_u32(crc);
    let tmp = dir.join("marks.tmp");
    let path = dir.join(MARKS);
    (|| {
        let mut f = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&buf)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)
    })()
    .map_err(|e| {
        let _ = fs::remove_file(&tmp);
        StoreError::io(format!("writing {}", path.display()), e)
    })?;
    sync_dir(dir)
}

impl Shared {
    fn lock_core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Handles a damaged record found at `id`: copies its bytes to the quarantine, remembers
    /// the id so reads skip it, and logs it, all once per id.
    fn quarantine(&self, path: &Path, id: u64, bytes: &[u8]) {
        if !self
            .damaged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id)
        {
            return;
        }
        let qdir = self.dir.join(QUARANTINE);
        let qpath = qdir.join(quarantine_name(id));
        let saved = fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&qdir)
            .and_then(|_| {
                let mut f = OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&qpath)?;
                f.write_all(bytes)?;
                f.sync_all()
            });
        match saved {
            Ok(()) => tracing::error!(
                segment = %path.display(), id, copy = %qpath.display(),
                "record {id} is damaged (its CRC or id does not match): its bytes were copied \
                 to the quarantine and reads skip it; the records around it are served"
            ),
            Err(e) => tracing::error!(
                segment = %path.display(), id, error = %e,
                "record {id} is damaged (its CRC or id does not match) and reads skip it; \
                 copying it to the quarantine failed"
            ),
        }
    }

    fn is_damaged(&self, id: u64) -> bool {
        self.damaged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&id)
    }

    /// The longest time one segment may span, in milliseconds.
    fn span_ms(&self) -> u64 {
        match self.lifetime_ms.load(Ordering::Relaxed) {
            0 => u64::MAX,
            l => (l / SPANS_PER_LIFETIME).max(1),
        }
    }

    /// Removes quarantined copies of records below `oldest`: they expired with their ids.
    fn drop_quarantine_below(&self, oldest: u64) {
        let qdir = self.dir.join(QUARANTINE);
        let Ok(items) = fs::read_dir(&qdir) else {
            return;
        };
        for item in items.flatten() {
            let id = item
                .file_name()
                .to_str()
                .and_then(|n| n.strip_suffix(".bad"))
                .and_then(|n| n.parse::<u64>().ok());
            if id.is_some_and(|id| id < oldest) {
                if let Err(e) = fs::remove_file(item.path()) {
                    tracing::warn!(path = %item.path().display(), error = %e,
                        "cannot remove an expired quarantined record");
                }
            }
        }
    }
}

/// Reads the segment list and the marks, checks them, repairs the newest segment's tail and
/// quarantines damaged records in it.
fn recover(shared: &Arc<Shared>) -> Result<(State, Core), StoreError> {
    let dir = &shared.dir;
    let (floor, next_min) = read_marks(dir);
    let _ = fs::remove_file(dir.join("marks.tmp"));
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
    let mut core = Core {
        next_id: 1,
        marks: (floor, next_min),
        ..Core::default()
    };
    let mut end = 0u64; // one past the last id of the previous segment
    let mut newest_seg: Option<(u64, u64)> = None; // first, count
    for (i, &first) in firsts.iter().enumerate() {
        let path = dir.join(segment_name(first));
        if first > u64::MAX / 2 {
            return Err(corrupt(&path, "the segment's first id is out of range"));
        }
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
            repair_newest(shared, &file, &path, first, len)?
        } else {
            if len / rl > SEGMENT_RECORDS {
                return Err(corrupt(
                    &path,
                    format!("an old segment holds more than {SEGMENT_RECORDS} records"),
                ));
            }
            if len % rl != 0 {
                // Left by a write that failed and could not be cut back: never acknowledged.
                tracing::warn!(segment = %path.display(), bytes = len % rl,
                    "an older segment ends in a partial record (a failed write); cutting it");
                file.set_len(len - len % rl)
                    .and_then(|_| file.sync_all())
                    .map_err(|e| {
                        StoreError::io(format!("cutting a partial record of {}", path.display()), e)
                    })?;
            }
            len / rl
        };
        if !last && (count == 0 || first + count <= floor) {
            // Created just before a crash and never written, or expired before the crash
            // but not yet deleted.
            let _ = fs::remove_file(&path);
            continue;
        }
        if end > 0 && first > end {
            tracing::warn!(dir = %dir.display(), from = end, to = first - 1,
                "ids {end}..={} are missing: no segment holds them (a segment file was \
                 deleted, or a mirror skipped them); reads skip them", first - 1);
        } else if end == 0 && floor > 0 && first > floor && count > 0 {
            tracing::error!(dir = %dir.display(), from = floor, to = first - 1,
                "ids {floor}..={} are missing: they had not expired, but no segment holds \
                 them (a segment file was deleted); reads skip them", first - 1);
        }
        end = first + count;
        if last {
            newest_seg = Some((first, count));
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
    // Times: from the last readable record, newest first.
    'outer: for (&first, seg) in state.segments.iter().rev() {
        for index in (0..seg.count).rev() {
            if let Ok(r) = read_record(shared, &seg.file.file, &seg.file.path, first, index) {
                core.last_time = r.time_ms;
                break 'outer;
            }
        }
    }
    core.next_id = end.max(next_min).max(1);
    if let Some((first, count)) = newest_seg {
        if first + count == core.next_id && count < SEGMENT_RECORDS {
            let seg = &state.segments[&first];
            let first_time = (0..count)
                .find_map(|i| read_record(shared, &seg.file.file, &seg.file.path, first, i).ok())
                .map_or(core.last_time, |r| r.time_ms);
            let path = dir.join(segment_name(first));
            let file = OpenOptions::new()
                .append(true)
                .open(&path)
                .map_err(|e| StoreError::io(format!("opening {}", path.display()), e))?;
            core.active = Some(Active {
                first,
                file,
                count,
                first_time,
            });
        }
    }
    state.oldest = state
        .segments
        .iter()
        .filter(|(&f, s)| s.count > 0 && f + s.count > floor)
        .map(|(&f, _)| f.max(floor))
        .next();
    state.newest = core.next_id.checked_sub(1).filter(|&n| n > 0);
    shared.drop_quarantine_below(state.oldest.unwrap_or(core.next_id));
    Ok((state, core))
}

/// Checks every record of the newest segment: cuts the torn tail after its last good record,
/// quarantines damaged records before it. Returns how many record slots it keeps.
fn repair_newest(
    shared: &Shared,
    file: &File,
    path: &Path,
    first: u64,
    len: u64,
) -> Result<u64, StoreError> {
    let rl = shared.record_len as u64;
    let whole = (len / rl).min(SEGMENT_RECORDS);
    let mut bad = Vec::new();
    let mut keep = 0;
    let mut buf = vec![0u8; shared.record_len];
    for index in 0..whole {
        file.read_exact_at(&mut buf, index * rl)
            .map_err(|e| StoreError::io(format!("reading {}", path.display()), e))?;
        if decode(shared, &buf, first + index).is_some() {
            keep = index + 1;
        } else {
            bad.push(index);
        }
    }
    for &index in bad.iter().filter(|&&i| i < keep) {
        file.read_exact_at(&mut buf, index * rl)
            .map_err(|e| StoreError::io(format!("reading {}", path.display()), e))?;
        shared.quarantine(path, first + index, &buf);
    }
    if keep * rl != len {
        tracing::warn!(segment = %path.display(), kept = keep, cut_bytes = len - keep * rl,
            "cutting the torn tail of the newest segment after its last good record (a write \
             a crash interrupted, never acknowledged; records failing their CRC there are cut)");
        file.set_len(keep * rl)
            .and_then(|_| file.sync_all())
            .map_err(|e| {
                StoreError::io(format!("cutting the torn tail of {}", path.display()), e)
            })?;
    }
    Ok(keep)
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
    fn run(self, mut rx: mpsc::Receiver<Request>) {
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
            let results = {
                let mut core = self.shared.lock_core();
                write_batch(&self.shared, &mut core, &batch)
            };
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
}

/// Writes a batch with one sync per touched segment. Returns one result per request:
/// requests refused on their own (a mirror record with an id not above the newest) fail
/// alone; an I/O failure fails the whole batch and leaves the log as it was.
fn write_batch(
    shared: &Shared,
    core: &mut Core,
    batch: &[Request],
) -> Vec<Result<Appended, StoreError>> {
    let fail_all = |msg: String| {
        (0..batch.len())
            .map(|_| Err(StoreError::Unavailable(msg.clone())))
            .collect()
    };
    if core.uncut {
        if let Err(e) = rollback(shared, core) {
            return fail_all(format!("an earlier failed write is not cut back yet: {e}"));
        }
    }
    let start = (core.next_id, core.last_time);
    let mut results: Vec<Option<Result<Appended, StoreError>>> =
        (0..batch.len()).map(|_| None).collect();
    let span = shared.span_ms();
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
                None => (core.next_id, req.now_ms.max(core.last_time)),
                Some((id, _)) if id < core.next_id => {
                    results[i] = Some(Err(StoreError::Unavailable(format!(
                        "id {id} is not above the newest id {}",
                        core.next_id - 1
                    ))));
                    continue;
                }
                Some((id, t)) => (id, t.max(core.last_time)),
            };
            // A skipped id, a full segment or one spanning too long closes the active one.
            let fits = matches!(&core.active, Some(a) if a.first + a.count == id
                && a.count < SEGMENT_RECORDS
                && (a.count == 0 || time_ms.saturating_sub(a.first_time) <= span));
            if !fits {
                flush(shared, core, &mut buf)?;
                drop_empty_active(shared, core);
                open_segment(shared, core, id, time_ms)?;
            }
            encode(&mut buf, id, time_ms, &req.entry);
            if let Some(a) = core.active.as_mut() {
                if a.count == 0 {
                    a.first_time = time_ms;
                }
                a.count += 1;
            }
            core.next_id = id + 1;
            core.last_time = time_ms;
            results[i] = Some(Ok(Appended {
                id: EntryId(id),
                time_ms,
            }));
        }
        flush(shared, core, &mut buf)
    })();
    if let Err(e) = outcome {
        core.next_id = start.0;
        core.last_time = start.1;
        core.uncut = true;
        let cut = rollback(shared, core);
        let msg = match cut {
            Ok(()) => e.to_string(),
            Err(c) => format!("{e}; cutting the failed write back failed too: {c}"),
        };
        tracing::warn!(error = %msg, "a write to the ledger log failed; its appends are refused");
        return fail_all(msg);
    }
    let mut st = shared.state.write().unwrap_or_else(|e| e.into_inner());
    if core.next_id > start.0 {
        st.newest = Some(core.next_id - 1);
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
    if let Some(a) = &core.active {
        if let Some(seg) = st.segments.get_mut(&a.first) {
            seg.count = a.count;
        }
    }
    drop(st);
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(StoreError::Unavailable("not written".into()))))
        .collect()
}

/// Writes `buf` to the active segment and syncs it, recording the segment's count so it is
/// right when the segment is closed.
fn flush(shared: &Shared, core: &mut Core, buf: &mut Vec<u8>) -> Result<(), StoreError> {
    if buf.is_empty() {
        return Ok(());
    }
    let Some(a) = core.active.as_mut() else {
        return Err(StoreError::Unavailable("no active segment".into()));
    };
    a.file
        .write_all(buf)
        .and_then(|_| a.file.sync_data())
        .map_err(|e| StoreError::io("appending to the ledger log", e))?;
    buf.clear();
    let mut st = shared.state.write().unwrap_or_else(|e| e.into_inner());
    // Readers may not see these records yet (newest moves at the end of the batch), but
    // the count must be right before the segment is closed and forgotten here.
    if let Some(seg) = st.segments.get_mut(&a.first) {
        seg.count = a.count;
    }
    Ok(())
}

/// After a failed write, cuts every segment back to what readers may see, through writable
/// handles, and reopens the segment to append to. On failure `core.uncut` stays set and the
/// next batch tries again first.
fn rollback(shared: &Shared, core: &mut Core) -> Result<(), StoreError> {
    core.active = None;
    let rl = shared.record_len as u64;
    let mut st = shared.state.write().unwrap_or_else(|e| e.into_inner());
    let newest = st.newest.unwrap_or(0);
    let mut drop_firsts = Vec::new();
    let mut result = Ok(());
    for (first, seg) in st.segments.iter_mut() {
        let keep = (newest + 1)
            .saturating_sub(*first)
            .min(seg.count)
            .min(SEGMENT_RECORDS);
        seg.count = keep;
        if keep == 0 && *first > newest {
            drop_firsts.push(*first);
            continue;
        }
        let cut = (|| {
            let f = OpenOptions::new().write(true).open(&seg.file.path)?;
            if f.metadata()?.len() != keep * rl {
                f.set_len(keep * rl)?;
                f.sync_all()?;
            }
            Ok(())
        })();
        if let Err(e) = cut {
            result = Err(StoreError::io(
                format!("cutting {} back", seg.file.path.display()),
                e,
            ));
        }
    }
    for f in drop_firsts {
        if let Some(seg) = st.segments.get(&f) {
            match fs::remove_file(&seg.file.path) {
                Ok(()) => {
                    st.segments.remove(&f);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    st.segments.remove(&f);
                }
                Err(e) => {
                    result = Err(StoreError::io(
                        format!("removing {}", seg.file.path.display()),
                        e,
                    ))
                }
            }
        }
    }
    result?;
    // Append to the newest segment again if the ids continue there.
    if let Some((&first, seg)) = st.segments.iter().next_back() {
        if first + seg.count == core.next_id && seg.count < SEGMENT_RECORDS {
            let file = OpenOptions::new()
                .append(true)
                .open(&seg.file.path)
                .map_err(|e| StoreError::io(format!("opening {}", seg.file.path.display()), e))?;
            let first_time = if seg.count == 0 {
                core.last_time
            } else {
                read_record(shared, &seg.file.file, &seg.file.path, first, 0)
                    .map_or(core.last_time, |r| r.time_ms)
            };
            core.active = Some(Active {
                first,
                file,
                count: seg.count,
                first_time,
            });
        }
    }
    core.uncut = false;
    Ok(())
}

/// Removes the active segment if it holds nothing, so no empty segment is left behind a
/// newer one (recovery treats that as damage).
fn drop_empty_active(shared: &Shared, core: &mut Core) {
    if let Some(a) = &core.active {
        if a.count == 0 {
            let first = a.first;
            core.active = None;
            let mut st = shared.state.write().unwrap_or_else(|e| e.into_inner());
            if let Some(seg) = st.segments.remove(&first) {
                let _ = fs::remove_file(&seg.file.path);
            }
        }
    }
}

/// Starts a new segment whose first id is `first`.
fn open_segment(
    shared: &Shared,
    core: &mut Core,
    first: u64,
    first_time: u64,
) -> Result<(), StoreError> {
    let path = shared.dir.join(segment_name(first));
    let append = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| StoreError::io(format!("creating {}", path.display()), e))?;
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
                    path: path.clone(),
                    file: File::open(&path)
                        .map_err(|e| StoreError::io(format!("opening {}", path.display()), e))?,
                }),
                count: 0,
            },
        );
    core.active = Some(Active {
        first,
        file: append,
        count: 0,
        first_time,
    });
    sync_dir(&shared.dir)?;
    Ok(())
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
            if seg.count == 0 {
                continue;
            }
            let first = seg.file.first_id;
            let mut lo = from.max(first);
            let end = newest.min(first + seg.count - 1);
            // Damaged records are skipped, so a page may need more than one read to fill.
            while out.len() < limit && lo <= end {
                let remaining = (limit - out.len()) as u64;
                let hi = end.min(lo.saturating_add(remaining - 1));
                let n = (hi - lo + 1) as usize;
                let mut buf = vec![0u8; n * rl];
                seg.file
                    .file
                    .read_exact_at(&mut buf, (lo - first) * rl as u64)
                    .map_err(|e| {
                        StoreError::io(format!("reading {}", seg.file.path.display()), e)
                    })?;
                for (i, chunk) in buf.chunks_exact(rl).enumerate() {
                    let id = lo + i as u64;
                    match decode(self, chunk, id) {
                        Some(r) => out.push(r),
                        None if self.is_damaged(id) => {}
                        None => self.quarantine(&seg.file.path, id, chunk),
                    }
                }
                lo = hi + 1;
            }
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// The time of record `index` of `seg`, or `None` if the record is damaged.
    fn time_at(&self, seg: &Seg, index: u64) -> Result<Option<u64>, StoreError> {
        let mut buf = vec![0u8; self.record_len];
        seg.file
            .file
            .read_exact_at(&mut buf, index * self.record_len as u64)
            .map_err(|e| StoreError::io(format!("reading {}", seg.file.path.display()), e))?;
        let id = seg.file.first_id + index;
        Ok(match decode(self, &buf, id) {
            Some(r) => Some(r.time_ms),
            None => {
                self.quarantine(&seg.file.path, id, &buf);
                None
            }
        })
    }

    /// Whether record `index` of `seg` has expired. A damaged record's time is unknown: it
    /// counts as expired when the next good record (here or in `later`) has, as times never
    /// decrease with id.
    fn expired_at(
        &self,
        seg: &Seg,
        index: u64,
        last: u64,
        later: &[(u64, Seg)],
        cutoff_ms: u64,
    ) -> Result<bool, StoreError> {
        for i in index..=last {
            if let Some(t) = self.time_at(seg, i)? {
                return Ok(t < cutoff_ms);
            }
        }
        for (_, s) in later {
            for i in 0..s.count {
                if let Some(t) = self.time_at(s, i)? {
                    return Ok(t < cutoff_ms);
                }
            }
        }
        Ok(false)
    }

    fn expire(&self, cutoff_ms: u64) -> Result<u64, StoreError> {
        let mut core = self.lock_core();
        let mut st = self.state.write().unwrap_or_else(|e| e.into_inner());
        let (Some(oldest), Some(newest)) = (st.oldest, st.newest) else {
            return Ok(0);
        };
        // Times never decrease with id. Find the first live record: whole segments first, then
        // a binary search inside the segment where the cutoff falls.
        let mut new_oldest = None;
        let mut removed = 0u64;
        let mut doomed = Vec::new();
        let all: Vec<(u64, Seg)> = st.segments.iter().map(|(&f, s)| (f, s.clone())).collect();
        for (k, (first, seg)) in all.iter().enumerate() {
            let (first, later) = (*first, &all[k + 1..]);
            let visible_end = (first + seg.count).min(newest + 1);
            if visible_end <= first.max(oldest) {
                if first + seg.count <= oldest {
                    doomed.push(first);
                }
                continue;
            }
            let lo_idx = oldest.saturating_sub(first);
            let n = visible_end - first;
            if self.expired_at(seg, n - 1, n - 1, later, cutoff_ms)? {
                removed += n - lo_idx;
                doomed.push(first);
                continue;
            }
            let (mut lo, mut hi) = (lo_idx, n - 1);
            while lo < hi {
                let mid = lo + (hi - lo) / 2;
                if self.expired_at(seg, mid, n - 1, later, cutoff_ms)? {
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
        let floor = new_oldest.unwrap_or(newest + 1);
        if removed == 0 && doomed.is_empty() {
            return Ok(0);
        }
        // The marks go first: once a file is gone, they are what keeps its ids from being
        // served or assigned again.
        let marks = (floor, core.next_id);
        let marked = if core.marks != marks {
            write_marks(&self.dir, marks.0, marks.1).map(|()| core.marks = marks)
        } else {
            Ok(())
        };
        let newest_first = st.segments.keys().next_back().copied();
        for f in doomed {
            if marked.is_err() && Some(f) == newest_first {
                // Without the marks, this file is what keeps the next id.
                continue;
            }
            if let Some(seg) = st.segments.remove(&f) {
                if core.active.as_ref().is_some_and(|a| a.first == f) {
                    core.active = None;
                }
                fs::remove_file(&seg.file.path).map_err(|e| {
                    StoreError::io(format!("removing {}", seg.file.path.display()), e)
                })?;
            }
        }
        drop(st);
        drop(core);
        self.drop_quarantine_below(floor);
        self.damaged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|&id| id >= floor);
        marked?;
        Ok(removed)
    }
}

#[async_trait]
impl Store for LogStore {
    fn kind(&self) -> &'static str {
        "embedded"
    }

    fn ledger_id(&self) -> LedgerId {
        *self.id.lock().unwrap_or_else(|e| e.into_inner())
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

    async fn set_lifetime(&self, lifetime: std::time::Duration) -> Result<(), StoreError> {
        let ms = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
        self.shared.lifetime_ms.store(ms, Ordering::Relaxed);
        Ok(())
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
    async fn adopt_ledger_id(&self, id: LedgerId) -> Result<(), StoreError> {
        if self.ledger_id() == id {
            return Ok(());
        }
        let dir = self.shared.dir.clone();
        tokio::task::spawn_blocking(move || write_ledger_id(&dir, id))
            .await
            .map_err(|e| StoreError::Unavailable(format!("writing the ledger id: {e}")))??;
        *self.id.lock().unwrap_or_else(|e| e.into_inner()) = id;
        Ok(())
    }

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
        Shared::new(PathBuf::new(), entry_len)
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

//! One conformance suite, run against every store backend (one storage trait, interchangeable
//! backends, one shared suite), plus crash-recovery tests for the log.
//!
//! Every backend keeps the promises of `every_store!`; the groups after it hold for the
//! backends named with them. The JetStream store runs against a real `nats-server` started for
//! each test; where none can be found (or installed), its tests are skipped, saying why.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Once};
use std::time::Duration;

use bytes::Bytes;
use deaddrop_harness::nats::{find_nats_server, Nats};
use deaddrop_ledger::store::jetstream::{JetStreamConfig, JetStreamStore};
use deaddrop_ledger::store::log::{LogStore, SEGMENT_RECORDS};
use deaddrop_ledger::store::memory::MemoryStore;
use deaddrop_ledger::store::{EntryId, LedgerId, MirrorStore, Record, Store};

const LEN: usize = 64;

fn entry(n: u64) -> Bytes {
    let mut b = vec![0u8; LEN];
    b[..8].copy_from_slice(&n.to_be_bytes());
    Bytes::from(b)
}

/// Whose clock an append's time comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Clock {
    /// The caller's `now_ms`, or the previous time if that was later (memory, embedded).
    Caller,
    /// The backend's own, never below the caller's `now_ms` (JetStream: the stream's time).
    Own,
}

impl Clock {
    /// Checks the time an append got, given the `now_ms` it was called with and the time of the
    /// append before it (0 for the first).
    fn assert_time(self, got: u64, now_ms: u64, previous: u64) {
        match self {
            Clock::Caller => assert_eq!(got, now_ms.max(previous)),
            Clock::Own => assert!(
                got >= now_ms && got >= previous,
                "time {got} after {previous}, called at {now_ms}"
            ),
        }
    }
}

/// A store under test, and what must live as long as it.
struct Subject {
    store: Arc<dyn Store>,
    /// The same store as a mirror's, for the backends that can hold one.
    mirror: Option<Arc<dyn MirrorStore>>,
    _nats: Option<Nats>,
}

async fn open_memory(_dir: &Path) -> Option<Subject> {
    let store = Arc::new(MemoryStore::new());
    Some(Subject {
        store: store.clone(),
        mirror: Some(store),
        _nats: None,
    })
}

async fn open_embedded(dir: &Path) -> Option<Subject> {
    let store = Arc::new(LogStore::open(dir, LEN).unwrap());
    Some(Subject {
        store: store.clone(),
        mirror: Some(store),
        _nats: None,
    })
}

/// A JetStream store on a `nats-server -js` of its own in `dir`, or `None` (the test is
/// skipped) if there is no nats-server to run.
async fn open_jetstream(dir: &Path) -> Option<Subject> {
    let bin = match find_nats_server() {
        Ok(bin) => bin,
        Err(why) => {
            static SAID: Once = Once::new();
            // Straight to stderr, past the test harness's capture: a skip must be seen.
            SAID.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "store_conformance: the jetstream tests are SKIPPED: {why}"
                );
            });
            return None;
        }
    };
    let nats = Nats::start_with(bin, dir).await;
    let store = JetStreamStore::connect(jetstream_config(&nats))
        .await
        .unwrap();
    Some(Subject {
        store,
        mirror: None,
        _nats: Some(nats),
    })
}

/// The settings of the conformance stream on `nats`.
fn jetstream_config(nats: &Nats) -> JetStreamConfig {
    JetStreamConfig {
        servers: vec![nats.url()],
        stream: "conformance".into(),
        replicas: 1,
        // At least the stream's two-minute duplicate window.
        lifetime: Duration::from_secs(48 * 3600),
        entry_len: LEN,
    }
}

/// A module `$name` of tests of the store `$open` makes, whose times come from `$clock`:
/// those of `every_store!`, then of each group named.
macro_rules! conformance {
    ($name:ident, $open:path, $clock:expr $(, $group:ident)*) => {
        mod $name {
            use super::*;

            const CLOCK: Clock = $clock;

            /// The store under test in `dir`, or `None` to skip the test.
            async fn make(dir: &Path) -> Option<Subject> {
                $open(dir).await
            }

            every_store!();
            $($group!();)*
        }
    };
}

/// What every store promises (`crates/ledger/src/store/mod.rs`).
macro_rules! every_store {
    () => {
        #[tokio::test]
        async fn a_store_keeps_one_ledger_id_and_new_data_gets_another() {
            let dir = tempfile::tempdir().unwrap();
            let Some(subject) = make(dir.path()).await else {
                return;
            };
            let other = tempfile::tempdir().unwrap();
            let Some(fresh) = make(other.path()).await else {
                return;
            };
            let id = subject.store.ledger_id();
            subject.store.append(entry(1), 1).await.unwrap();
            assert_eq!(subject.store.ledger_id(), id);
            assert_ne!(fresh.store.ledger_id(), id, "two stores' data got one id");
        }

        #[tokio::test]
        async fn ids_start_at_one_and_increase() {
            let dir = tempfile::tempdir().unwrap();
            let Some(subject) = make(dir.path()).await else {
                return;
            };
            let s = &subject.store;
            let mut previous = 0;
            for i in 1..=10u64 {
                let a = s.append(entry(i), 1000 + i).await.unwrap();
                assert_eq!(a.id, i);
                CLOCK.assert_time(a.time_ms, 1000 + i, previous);
                previous = a.time_ms;
            }
            let b = s.bounds();
            assert_eq!((b.oldest, b.newest), (Some(EntryId(1)), Some(EntryId(10))));
        }

        #[tokio::test]
        async fn time_never_goes_backwards() {
            let dir = tempfile::tempdir().unwrap();
            let Some(subject) = make(dir.path()).await else {
                return;
            };
            let s = &subject.store;
            let first = s.append(entry(1), 5000).await.unwrap();
            let a = s.append(entry(2), 4000).await.unwrap();
            CLOCK.assert_time(a.time_ms, 4000, first.time_ms);
        }

        #[tokio::test]
        async fn read_after_pages_in_id_order() {
            let dir = tempfile::tempdir().unwrap();
            let Some(subject) = make(dir.path()).await else {
                return;
            };
            let s = &subject.store;
            for i in 1..=25u64 {
                s.append(entry(i), i).await.unwrap();
            }
            let all = s.read(EntryId(0), 1000).await.unwrap();
            assert_eq!(all.len(), 25);
            assert!(all
                .iter()
                .enumerate()
                .all(|(i, r)| r.id == i as u64 + 1 && r.entry == entry(r.id.get())));
            let page = s.read(EntryId(10), 5).await.unwrap();
            assert_eq!(
                page.iter().map(|r| r.id.get()).collect::<Vec<_>>(),
                vec![11, 12, 13, 14, 15]
            );
            assert!(s.read(EntryId(25), 10).await.unwrap().is_empty());
            assert!(s.read(EntryId(u64::MAX), 10).await.unwrap().is_empty());
            assert!(s.read(EntryId(0), 0).await.unwrap().is_empty());
        }

        #[tokio::test]
        async fn concurrent_appends_get_distinct_dense_ids() {
            let dir = tempfile::tempdir().unwrap();
            let Some(subject) = make(dir.path()).await else {
                return;
            };
            let s = &subject.store;
            let mut tasks = Vec::new();
            for t in 0..8u64 {
                let s = s.clone();
                tasks.push(tokio::spawn(async move {
                    let mut ids = Vec::new();
                    for i in 0..50u64 {
                        ids.push(s.append(entry(t * 1000 + i), 1).await.unwrap().id.get());
                    }
                    ids
                }));
            }
            let mut ids = Vec::new();
            for t in tasks {
                ids.extend(t.await.unwrap());
            }
            ids.sort_unstable();
            assert_eq!(ids, (1..=400).collect::<Vec<_>>());
        }
    };
}

/// Stores that expire entries when the ledger asks (`Store::expire`); JetStream expires them
/// itself (`max_age`).
macro_rules! expires_on_call {
    () => {
        #[tokio::test]
        async fn expiry_removes_oldest_first_and_ids_are_not_reused() {
            let dir = tempfile::tempdir().unwrap();
            let Some(subject) = make(dir.path()).await else {
                return;
            };
            let s = &subject.store;
            for i in 1..=10u64 {
                s.append(entry(i), i * 100).await.unwrap();
            }
            assert_eq!(s.expire(450).await.unwrap(), 4);
            assert_eq!(s.bounds().oldest, Some(EntryId(5)));
            assert_eq!(s.read(EntryId(0), 100).await.unwrap()[0].id, 5);
            assert_eq!(s.expire(10_000).await.unwrap(), 6);
            let b = s.bounds();
            assert_eq!((b.oldest, b.newest, b.held()), (None, Some(EntryId(10)), 0));
            assert!(s.read(EntryId(0), 100).await.unwrap().is_empty());
            assert_eq!(s.append(entry(11), 20_000).await.unwrap().id, 11);
            assert_eq!(s.bounds().oldest, Some(EntryId(11)));
        }
    };
}

/// Stores a mirror can keep its copy in (`Store::insert`); `deaddrop serve` refuses a mirror
/// on JetStream.
macro_rules! mirrors {
    () => {
        #[tokio::test]
        async fn mirrored_records_keep_their_ids_and_may_skip_ids() {
            let dir = tempfile::tempdir().unwrap();
            let Some(subject) = make(dir.path()).await else {
                return;
            };
            let s = subject.mirror.as_ref().expect("a store that can mirror");
            let rec = |id: u64, t: u64| Record {
                id: EntryId(id),
                time_ms: t,
                entry: entry(id),
            };
            s.insert(rec(5, 100)).await.unwrap();
            s.insert(rec(6, 101)).await.unwrap();
            s.insert(rec(40, 150)).await.unwrap();
            assert!(s.insert(rec(40, 160)).await.is_err(), "ids must increase");
            assert!(s.insert(rec(7, 160)).await.is_err(), "ids must increase");
            let all = s.read(EntryId(0), 10).await.unwrap();
            assert_eq!(
                all.iter().map(|r| r.id.get()).collect::<Vec<_>>(),
                vec![5, 6, 40]
            );
            assert_eq!(s.read(EntryId(6), 10).await.unwrap()[0].id, 40);
            assert_eq!(s.read(EntryId(10), 1).await.unwrap()[0].id, 40);
            let b = s.bounds();
            assert_eq!((b.oldest, b.newest), (Some(EntryId(5)), Some(EntryId(40))));
            assert_eq!(s.expire(120).await.unwrap(), 2);
            assert_eq!(s.bounds().oldest, Some(EntryId(40)));
            assert_eq!(s.read(EntryId(0), 10).await.unwrap().len(), 1);
        }

        #[tokio::test]
        async fn a_mirror_store_takes_its_upstreams_ledger_id() {
            let dir = tempfile::tempdir().unwrap();
            let Some(subject) = make(dir.path()).await else {
                return;
            };
            let s = subject.mirror.as_ref().expect("a store that can mirror");
            let upstream = LedgerId::from_bytes([7; 16]);
            assert_ne!(s.ledger_id(), upstream);
            s.adopt_ledger_id(upstream).await.unwrap();
            assert_eq!(s.ledger_id(), upstream);
            assert_eq!(subject.store.ledger_id(), upstream);
        }
    };
}

/// Stores whose `close` refuses later appends, as `Store::close` documents; JetStream's close
/// only stops its background tasks so far.
macro_rules! refuses_after_close {
    () => {
        #[tokio::test]
        async fn closed_store_refuses_appends() {
            let dir = tempfile::tempdir().unwrap();
            let Some(subject) = make(dir.path()).await else {
                return;
            };
            let s = &subject.store;
            s.append(entry(1), 1).await.unwrap();
            s.close().await.unwrap();
            assert!(s.append(entry(2), 2).await.is_err());
        }
    };
}

conformance!(
    memory,
    open_memory,
    Clock::Caller,
    expires_on_call,
    mirrors,
    refuses_after_close
);
conformance!(
    embedded,
    open_embedded,
    Clock::Caller,
    expires_on_call,
    mirrors,
    refuses_after_close
);
conformance!(jetstream, open_jetstream, Clock::Own);

#[tokio::test]
async fn log_survives_reopen_and_continues_ids() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = LogStore::open(dir.path(), LEN).unwrap();
        for i in 1..=5u64 {
            s.append(entry(i), i).await.unwrap();
        }
        s.close().await.unwrap();
    }
    let s = LogStore::open(dir.path(), LEN).unwrap();
    assert_eq!(s.bounds().newest, Some(EntryId(5)));
    assert_eq!(s.read(EntryId(0), 10).await.unwrap().len(), 5);
    let a = s.append(entry(6), 1).await.unwrap();
    assert_eq!(
        (a.id.get(), a.time_ms),
        (6, 5),
        "ids continue and time stays monotonic"
    );
}

#[tokio::test]
async fn log_keeps_its_ledger_id_across_reopens_and_a_wiped_directory_gets_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let s = LogStore::open(dir.path(), LEN).unwrap();
        s.append(entry(1), 1).await.unwrap();
        let id = s.ledger_id();
        s.close().await.unwrap();
        id
    };
    let s = LogStore::open(dir.path(), LEN).unwrap();
    assert_eq!(s.ledger_id(), first);
    // A mirror's adopted id is kept across a restart too.
    let upstream = LedgerId::from_bytes([9; 16]);
    s.adopt_ledger_id(upstream).await.unwrap();
    s.close().await.unwrap();
    drop(s);
    let s = LogStore::open(dir.path(), LEN).unwrap();
    assert_eq!(s.ledger_id(), upstream);
    s.close().await.unwrap();
    drop(s);
    // The same directory wiped and opened again: new data, a new id.
    std::fs::remove_dir_all(dir.path()).unwrap();
    let s = LogStore::open(dir.path(), LEN).unwrap();
    assert_ne!(s.ledger_id(), first);
    assert_ne!(s.ledger_id(), upstream);
}

#[tokio::test]
async fn log_refuses_a_damaged_ledger_id_file_saying_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    LogStore::open(dir.path(), LEN)
        .unwrap()
        .close()
        .await
        .unwrap();
    let file = dir.path().join(deaddrop_ledger::store::log::LEDGER_ID_FILE);
    std::fs::write(&file, "not an id\n").unwrap();
    let e = LogStore::open(dir.path(), LEN)
        .err()
        .expect("a damaged id is refused");
    let text = e.to_string();
    assert!(
        text.contains("ledger-id") && text.contains("remove it"),
        "{text}"
    );
}

#[tokio::test]
async fn log_cuts_a_torn_tail_on_recovery() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = LogStore::open(dir.path(), LEN).unwrap();
        for i in 1..=5u64 {
            s.append(entry(i), i).await.unwrap();
        }
        s.close().await.unwrap();
    }
    let seg = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let len = std::fs::metadata(&seg).unwrap().len();
    let record = len / 5;
    // A half-written sixth record, then damage inside the fifth.
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend_from_slice(&vec![0xAB; (record / 2) as usize]);
    bytes[(4 * record + 20) as usize] ^= 0xFF;
    std::fs::write(&seg, &bytes).unwrap();
    let s = LogStore::open(dir.path(), LEN).unwrap();
    assert_eq!(s.bounds().newest, Some(EntryId(4)));
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), 4 * record);
    assert_eq!(s.append(entry(5), 9).await.unwrap().id, 5);
}

#[tokio::test]
async fn log_rolls_segments_and_expiry_deletes_every_expired_file() {
    let dir = tempfile::tempdir().unwrap();
    let s = LogStore::open(dir.path(), LEN).unwrap();
    let n = SEGMENT_RECORDS * 2 + 10;
    for i in 1..=n {
        s.append(entry(i), i).await.unwrap();
    }
    let files = || segment_files(dir.path()).len();
    assert_eq!(files(), 3);
    let across = s.read(EntryId(SEGMENT_RECORDS - 3), 6).await.unwrap();
    assert_eq!(
        across.iter().map(|r| r.id.get()).collect::<Vec<_>>(),
        (SEGMENT_RECORDS - 2..=SEGMENT_RECORDS + 3).collect::<Vec<_>>()
    );
    s.expire(SEGMENT_RECORDS + 5).await.unwrap();
    assert_eq!(files(), 2);
    s.expire(u64::MAX).await.unwrap();
    assert_eq!(files(), 0, "everything expired, so no segment is left");
    s.close().await.unwrap();
    drop(s);
    let s = LogStore::open(dir.path(), LEN).unwrap();
    assert_eq!(s.append(entry(0), n + 1).await.unwrap().id, n + 1);
}

#[tokio::test]
async fn log_refuses_overlapping_segments() {
    let dir = tempfile::tempdir().unwrap();
    let record = 16 + LEN as u64 + 4;
    // Segment 1 claims ids 1 and 2; segment 2 would hold id 2 again.
    std::fs::write(
        dir.path().join("seg-00000000000000000001.log"),
        vec![0u8; 2 * record as usize],
    )
    .unwrap();
    std::fs::write(
        dir.path().join("seg-00000000000000000002.log"),
        vec![0u8; 0],
    )
    .unwrap();
    let err = LogStore::open(dir.path(), LEN)
        .err()
        .expect("an overlap must be refused");
    assert!(err.to_string().contains("damaged"), "{err}");
}

#[tokio::test]
async fn log_keeps_skipped_ids_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = LogStore::open(dir.path(), LEN).unwrap();
        for (id, t) in [(3u64, 10u64), (4, 11), (9000, 12), (9001, 13)] {
            s.insert(Record {
                id: EntryId(id),
                time_ms: t,
                entry: entry(id),
            })
            .await
            .unwrap();
        }
        s.close().await.unwrap();
    }
    let s = LogStore::open(dir.path(), LEN).unwrap();
    let ids: Vec<u64> = s
        .read(EntryId(0), 100)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id.get())
        .collect();
    assert_eq!(ids, vec![3, 4, 9000, 9001]);
    s.insert(Record {
        id: EntryId(9002),
        time_ms: 14,
        entry: entry(9002),
    })
    .await
    .unwrap();
    assert_eq!(s.bounds().newest, Some(EntryId(9002)));
}

/// One process per data directory: a second open of a held directory is refused, naming the
/// holder, and succeeds once the first store is gone.
#[tokio::test]
async fn log_refuses_a_second_open_of_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let first = LogStore::open(dir.path(), LEN).unwrap();
    first.append(entry(1), 1).await.unwrap();
    let err = LogStore::open(dir.path(), LEN)
        .err()
        .expect("a second open must be refused");
    let text = err.to_string();
    assert!(
        text.contains(&dir.path().display().to_string())
            && text.contains(&format!("pid {}", std::process::id())),
        "{text}"
    );
    first.close().await.unwrap();
    drop(first);
    let again = LogStore::open(dir.path(), LEN).unwrap();
    assert_eq!(again.bounds().newest, Some(EntryId(1)));
}

/// The segment files in `dir`, oldest first.
fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seg-") && n.ends_with(".log"))
        })
        .collect();
    v.sort();
    v
}

/// Everything logged through `tracing` by this test binary, so tests can check what the store
/// said about their data directory.
fn logs() -> String {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let sub = tracing_subscriber::fmt()
            .with_writer(|| LogBuf)
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        tracing::subscriber::set_global_default(sub).unwrap();
    });
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

struct LogBuf;

impl Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The log lines that mention `needle`.
fn lines_with(needle: &str) -> Vec<String> {
    logs()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

const RECORD: u64 = 16 + LEN as u64 + 4;

fn flip(path: &Path, at: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at as usize] ^= 0xFF;
    std::fs::write(path, &bytes).unwrap();
}

fn ids(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| r.id.get()).collect()
}

#[tokio::test]
async fn log_damage_in_the_newest_segment_loses_only_the_damaged_record() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    {
        let s = LogStore::open(dir.path(), LEN).unwrap();
        for i in 1..=10u64 {
            s.append(entry(i), i).await.unwrap();
        }
        s.close().await.unwrap();
    }
    let seg = segment_files(dir.path()).remove(0);
    flip(&seg, 4 * RECORD + 30); // inside record 5
    let s = LogStore::open(dir.path(), LEN).unwrap();
    assert_eq!(
        s.bounds().newest,
        Some(EntryId(10)),
        "newest_id never goes back"
    );
    let all = s.read(EntryId(0), 100).await.unwrap();
    assert_eq!(ids(&all), vec![1, 2, 3, 4, 6, 7, 8, 9, 10]);
    assert!(all.iter().all(|r| r.entry == entry(r.id.get())));
    // A page that starts at the damaged record skips it rather than ending early.
    assert_eq!(ids(&s.read(EntryId(4), 1).await.unwrap()), vec![6]);
    assert_eq!(
        s.append(entry(11), 20).await.unwrap().id,
        11,
        "no id is reused"
    );
    let quarantined: Vec<_> = std::fs::read_dir(dir.path().join("quarantine"))
        .expect("a quarantine directory")
        .collect();
    assert_eq!(quarantined.len(), 1);
    let said = lines_with(&dir.path().display().to_string()).join("\\n");
    assert!(said.contains("damaged") && said.contains("CRC"), "{said}");
    assert!(said.contains("WARN") || said.contains("ERROR"), "{said}");
    s.close().await.unwrap();
    // Still right after another restart, with the new record after the damaged one.
    drop(s);
    let s = LogStore::open(dir.path(), LEN).unwrap();
    assert_eq!(
        ids(&s.read(EntryId(0), 100).await.unwrap()),
        vec![1, 2, 3, 4, 6, 7, 8, 9, 10, 11]
    );
}

fn rec(id: u64) -> Record {
    Record {
        id: EntryId(id),
        time_ms: id,
        entry: entry(id),
    }
}

#[tokio::test]
async fn log_damage_in_an_older_segment_is_a_gap_logged_once() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    {
        let s = LogStore::open(dir.path(), LEN).unwrap();
        s.insert_many((1..=SEGMENT_RECORDS + 5).map(rec).collect())
            .await
            .unwrap();
        s.close().await.unwrap();
    }
    let segs = segment_files(dir.path());
    assert_eq!(segs.len(), 2);
    flip(&segs[0], 99 * RECORD + 30); // inside record 100
    let s = LogStore::open(dir.path(), LEN).unwrap();
    for _ in 0..3 {
        let page = s.read(EntryId(98), 3).await.unwrap();
        assert_eq!(ids(&page), vec![99, 101, 102]);
    }
    let all = s.read(EntryId(0), 10_000).await.unwrap();
    assert_eq!(all.len() as u64, SEGMENT_RECORDS + 4);
    let said = lines_with(&segs[0].display().to_string());
    let about_100: Vec<_> = said.iter().filter(|l| l.contains("100")).collect();
    assert_eq!(about_100.len(), 1, "logged once: {said:?}");
    assert!(about_100[0].contains("damaged") && about_100[0].contains("CRC"));
}

#[tokio::test]
async fn log_reports_a_missing_segment_at_startup() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    {
        let s = LogStore::open(dir.path(), LEN).unwrap();
        s.insert_many((1..=2 * SEGMENT_RECORDS + 5).map(rec).collect())
            .await
            .unwrap();
        s.close().await.unwrap();
    }
    let segs = segment_files(dir.path());
    std::fs::remove_file(&segs[1]).unwrap();
    let s = LogStore::open(dir.path(), LEN).unwrap();
    assert_eq!(s.bounds().newest, Some(EntryId(2 * SEGMENT_RECORDS + 5)));
    let said = lines_with(&dir.path().display().to_string()).join("\\n");
    assert!(said.contains("missing"), "{said}");
}

#[tokio::test]
async fn log_expiry_removes_the_newest_segment_too_and_ids_continue() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = LogStore::open(dir.path(), LEN).unwrap();
        s.set_lifetime(Duration::from_secs(8)).await.unwrap();
        for i in 1..=5u64 {
            s.append(entry(i), 1000 + i).await.unwrap();
        }
        assert_eq!(s.expire(10_000).await.unwrap(), 5);
        assert!(
            segment_files(dir.path()).is_empty(),
            "expired entries stay on disk"
        );
        s.close().await.unwrap();
    }
    let s = LogStore::open(dir.path(), LEN).unwrap();
    let b = s.bounds();
    assert_eq!((b.oldest, b.newest), (None, Some(EntryId(5))));
    assert!(s.read(EntryId(0), 10).await.unwrap().is_empty());
    let a = s.append(entry(6), 20_000).await.unwrap();
    assert_eq!(a.id, 6);
}

#[tokio::test]
async fn log_rolls_segments_by_time_so_expired_entries_leave_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let s = LogStore::open(dir.path(), LEN).unwrap();
    s.set_lifetime(Duration::from_secs(8)).await.unwrap();
    // A segment spans at most a quarter of the lifetime (2 s here).
    for (i, t) in [(1u64, 0u64), (2, 1000), (3, 1500), (4, 3000), (5, 9000)] {
        assert_eq!(s.append(entry(i), t).await.unwrap().id, i);
    }
    assert_eq!(segment_files(dir.path()).len(), 3);
    assert_eq!(s.expire(2000).await.unwrap(), 3);
    assert_eq!(segment_files(dir.path()).len(), 2);
    assert_eq!(ids(&s.read(EntryId(0), 10).await.unwrap()), vec![4, 5]);
}

#[tokio::test]
async fn log_restart_does_not_bring_back_expired_entries() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = LogStore::open(dir.path(), LEN).unwrap();
        for i in 1..=10u64 {
            s.append(entry(i), i * 100).await.unwrap();
        }
        assert_eq!(s.expire(450).await.unwrap(), 4);
        s.close().await.unwrap();
    }
    // A longer lifetime after the restart must not serve ids 1..=4 again.
    let s = LogStore::open(dir.path(), LEN).unwrap();
    s.set_lifetime(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(s.bounds().oldest, Some(EntryId(5)));
    assert_eq!(s.read(EntryId(0), 100).await.unwrap()[0].id, 5);
}

/// A tmpfs of 3 MiB mounted on a fresh directory, unmounted on drop; `None` (the test is
/// skipped, saying why) where mounting is not allowed.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount() -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs(dir)),
            Ok(o) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "log_full_disk test SKIPPED: cannot mount a tmpfs: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                let _ = writeln!(
                    std::io::stderr(),
                    "log_full_disk test SKIPPED: cannot run mount: {e}"
                );
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.0.path())
            .status();
    }
}

#[tokio::test]
async fn log_full_disk_refuses_appends_then_resumes_and_keeps_every_acknowledged_entry() {
    let Some(fs) = Tmpfs::mount() else {
        return;
    };
    const BIG: usize = 1000;
    let big = |n: u64| {
        let mut b = vec![0x5Au8; BIG];
        b[..8].copy_from_slice(&n.to_be_bytes());
        Bytes::from(b)
    };
    let data = fs.0.path().join("data");
    let filler = fs.0.path().join("filler");
    {
        // Fill the disk, leaving room for a few records only.
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        drop(f);
        let len = std::fs::metadata(&filler).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&filler)
            .unwrap()
            .set_len(len - 5 * 4096)
            .unwrap();
    }
    let s = LogStore::open(&data, BIG).unwrap();
    let mut acked = Vec::new();
    let mut refused = 0;
    for i in 1..=200u64 {
        match s.append(big(i), i).await {
            Ok(a) => acked.push((a.id.get(), i)),
            Err(_) => {
                refused += 1;
                if refused == 10 {
                    break;
                }
            }
        }
    }
    assert!(refused > 0, "the disk never filled");
    assert!(!acked.is_empty());
    std::fs::remove_file(&filler).unwrap();
    for i in 1000..1005u64 {
        let a = s
            .append(big(i), i)
            .await
            .expect("appends resume once there is room");
        acked.push((a.id.get(), i));
    }
    s.close().await.unwrap();
    drop(s);
    let s = LogStore::open(&data, BIG).expect("the next start accepts the files");
    let all = s.read(EntryId(0), 10_000).await.unwrap();
    let got: Vec<(u64, u64)> = all
        .iter()
        .map(|r| {
            let mut n = [0u8; 8];
            n.copy_from_slice(&r.entry[..8]);
            (r.id.get(), u64::from_be_bytes(n))
        })
        .collect();
    assert_eq!(got, acked);
}

#[tokio::test]
async fn log_opens_despite_garbage_marks_and_refuses_absurd_segment_names() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("marks"), b"not marks at all").unwrap();
    let s = LogStore::open(dir.path(), LEN).unwrap();
    assert_eq!(s.append(entry(1), 1).await.unwrap().id, 1);
    s.close().await.unwrap();
    drop(s);
    std::fs::write(
        dir.path().join("seg-18446744073709551615.log"),
        vec![0u8; RECORD as usize],
    )
    .unwrap();
    let err = LogStore::open(dir.path(), LEN).err().expect("refused");
    assert!(err.to_string().contains("damaged"), "{err}");
}

/// A JetStream read skips only ids that are gone, and names them: a page ends before an id
/// removed from the middle of the stream, and the next one starts after it (so the ledger names
/// the id as a gap rather than skipping it inside a page).
#[tokio::test]
async fn jetstream_pages_end_before_an_id_removed_from_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let Some(subject) = open_jetstream(dir.path()).await else {
        return;
    };
    let s = &subject.store;
    for i in 1..=4u64 {
        assert_eq!(s.append(entry(i), i).await.unwrap().id, i);
    }
    let nats = subject._nats.as_ref().unwrap();
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let stream = js.get_stream("conformance").await.unwrap();
    assert!(stream.delete_message(3).await.unwrap());
    let ids = |r: Vec<Record>| r.iter().map(|r| r.id.get()).collect::<Vec<_>>();
    assert_eq!(ids(s.read(EntryId(0), 10).await.unwrap()), vec![1, 2]);
    assert_eq!(ids(s.read(EntryId(2), 10).await.unwrap()), vec![4]);
    // The first id removed too: the page starts after it.
    assert!(stream.delete_message(1).await.unwrap());
    assert_eq!(ids(s.read(EntryId(0), 10).await.unwrap()), vec![2]);
}

/// Every front end of one stream reports the id kept in the stream's metadata; a stream made
/// before the id existed gets one every front end derives alike; a stream deleted and made again
/// is a new ledger, which a running front end notices.
#[tokio::test]
async fn jetstream_front_ends_of_one_stream_report_one_ledger_id() {
    use deaddrop_ledger::store::jetstream::LEDGER_ID_KEY;
    let dir = tempfile::tempdir().unwrap();
    let Some(subject) = open_jetstream(dir.path()).await else {
        return;
    };
    let nats = subject._nats.as_ref().unwrap();
    let first = subject.store.ledger_id();
    let second = JetStreamStore::connect(jetstream_config(nats))
        .await
        .unwrap();
    assert_eq!(second.ledger_id(), first);
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap());
    let info = js
        .get_stream("conformance")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(
        info.config.metadata.get(LEDGER_ID_KEY),
        Some(&first.to_hex())
    );

    // A stream of an older version: no id in its metadata.
    let mut config = info.config.clone();
    config.metadata.remove(LEDGER_ID_KEY);
    js.update_stream(config).await.unwrap();
    let (third, fourth) = tokio::join!(
        JetStreamStore::connect(jetstream_config(nats)),
        JetStreamStore::connect(jetstream_config(nats))
    );
    let derived = third.unwrap().ledger_id();
    assert_eq!(fourth.unwrap().ledger_id(), derived);
    let info = js
        .get_stream("conformance")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(
        info.config.metadata.get(LEDGER_ID_KEY),
        Some(&derived.to_hex())
    );
    // The running front ends take the id the stream holds now.
    deaddrop_harness::wait_until(
        "the front ends take the stream's id",
        Duration::from_secs(10),
        || {
            let ok = subject.store.ledger_id() == derived && second.ledger_id() == derived;
            async move { ok }
        },
    )
    .await;

    // Deleted and made again: new data, a new id, noticed by a front end that keeps running.
    js.delete_stream("conformance").await.unwrap();
    let fifth = JetStreamStore::connect(jetstream_config(nats))
        .await
        .unwrap();
    assert_ne!(fifth.ledger_id(), derived);
    let renewed = fifth.ledger_id();
    deaddrop_harness::wait_until(
        "a running front end notices the new stream",
        Duration::from_secs(10),
        || {
            let ok = second.ledger_id() == renewed;
            async move { ok }
        },
    )
    .await;
}

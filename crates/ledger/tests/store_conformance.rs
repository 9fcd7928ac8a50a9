//! One conformance suite, run against every store backend (STYLE.md: a storage trait with
//! interchangeable backends and one shared suite), plus crash-recovery tests for the log.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use bytes::Bytes;
use deaddrop_ledger::store::log::{LogStore, SEGMENT_RECORDS};
use deaddrop_ledger::store::memory::MemoryStore;
use deaddrop_ledger::store::{Record, Store};

const LEN: usize = 64;

fn entry(n: u64) -> Bytes {
    let mut b = vec![0u8; LEN];
    b[..8].copy_from_slice(&n.to_be_bytes());
    Bytes::from(b)
}

macro_rules! conformance {
    ($name:ident, $make:expr) => {
        mod $name {
            use super::*;

            #[allow(unused_variables)]
            fn make(dir: &std::path::Path) -> Arc<dyn Store> {
                let f: &dyn Fn(&std::path::Path) -> Arc<dyn Store> = &$make;
                f(dir)
            }

            #[tokio::test]
            async fn ids_start_at_one_and_increase() {
                let dir = tempfile::tempdir().unwrap();
                let s = make(dir.path());
                for i in 1..=10u64 {
                    let a = s.append(entry(i), 1000 + i).await.unwrap();
                    assert_eq!(a.id, i);
                    assert_eq!(a.time_ms, 1000 + i);
                }
                let b = s.bounds();
                assert_eq!((b.oldest, b.newest), (Some(1), Some(10)));
            }

            #[tokio::test]
            async fn time_never_goes_backwards() {
                let dir = tempfile::tempdir().unwrap();
                let s = make(dir.path());
                s.append(entry(1), 5000).await.unwrap();
                let a = s.append(entry(2), 4000).await.unwrap();
                assert_eq!(a.time_ms, 5000);
            }

            #[tokio::test]
            async fn read_after_pages_in_id_order() {
                let dir = tempfile::tempdir().unwrap();
                let s = make(dir.path());
                for i in 1..=25u64 {
                    s.append(entry(i), i).await.unwrap();
                }
                let all = s.read(0, 1000).await.unwrap();
                assert_eq!(all.len(), 25);
                assert!(all
                    .iter()
                    .enumerate()
                    .all(|(i, r)| r.id == i as u64 + 1 && r.entry == entry(r.id)));
                let page = s.read(10, 5).await.unwrap();
                assert_eq!(
                    page.iter().map(|r| r.id).collect::<Vec<_>>(),
                    vec![11, 12, 13, 14, 15]
                );
                assert!(s.read(25, 10).await.unwrap().is_empty());
                assert!(s.read(u64::MAX, 10).await.unwrap().is_empty());
                assert!(s.read(0, 0).await.unwrap().is_empty());
            }

            #[tokio::test]
            async fn expiry_removes_oldest_first_and_ids_are_not_reused() {
                let dir = tempfile::tempdir().unwrap();
                let s = make(dir.path());
                for i in 1..=10u64 {
                    s.append(entry(i), i * 100).await.unwrap();
                }
                assert_eq!(s.expire(450).await.unwrap(), 4);
                assert_eq!(s.bounds().oldest, Some(5));
                assert_eq!(s.read(0, 100).await.unwrap()[0].id, 5);
                assert_eq!(s.expire(10_000).await.unwrap(), 6);
                let b = s.bounds();
                assert_eq!((b.oldest, b.newest, b.held()), (None, Some(10), 0));
                assert!(s.read(0, 100).await.unwrap().is_empty());
                assert_eq!(s.append(entry(11), 20_000).await.unwrap().id, 11);
                assert_eq!(s.bounds().oldest, Some(11));
            }

            #[tokio::test]
            async fn concurrent_appends_get_distinct_dense_ids() {
                let dir = tempfile::tempdir().unwrap();
                let s = make(dir.path());
                let mut tasks = Vec::new();
                for t in 0..8u64 {
                    let s = s.clone();
                    tasks.push(tokio::spawn(async move {
                        let mut ids = Vec::new();
                        for i in 0..50u64 {
                            ids.push(s.append(entry(t * 1000 + i), 1).await.unwrap().id);
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

            #[tokio::test]
            async fn mirrored_records_keep_their_ids_and_may_skip_ids() {
                let dir = tempfile::tempdir().unwrap();
                let s = make(dir.path());
                let rec = |id: u64, t: u64| Record {
                    id,
                    time_ms: t,
                    entry: entry(id),
                };
                s.insert(rec(5, 100)).await.unwrap();
                s.insert(rec(6, 101)).await.unwrap();
                s.insert(rec(40, 150)).await.unwrap();
                assert!(s.insert(rec(40, 160)).await.is_err(), "ids must increase");
                assert!(s.insert(rec(7, 160)).await.is_err(), "ids must increase");
                let all = s.read(0, 10).await.unwrap();
                assert_eq!(all.iter().map(|r| r.id).collect::<Vec<_>>(), vec![5, 6, 40]);
                assert_eq!(s.read(6, 10).await.unwrap()[0].id, 40);
                assert_eq!(s.read(10, 1).await.unwrap()[0].id, 40);
                let b = s.bounds();
                assert_eq!((b.oldest, b.newest), (Some(5), Some(40)));
                assert_eq!(s.expire(120).await.unwrap(), 2);
                assert_eq!(s.bounds().oldest, Some(40));
                assert_eq!(s.read(0, 10).await.unwrap().len(), 1);
            }

            #[tokio::test]
            async fn closed_store_refuses_appends() {
                let dir = tempfile::tempdir().unwrap();
                let s = make(dir.path());
                s.append(entry(1), 1).await.unwrap();
                s.close().await.unwrap();
                assert!(s.append(entry(2), 2).await.is_err());
            }
        }
    };
}

conformance!(memory, |_dir| Arc::new(MemoryStore::new()));
conformance!(embedded, |dir| Arc::new(LogStore::open(dir, LEN).unwrap()));

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
    assert_eq!(s.bounds().newest, Some(5));
    assert_eq!(s.read(0, 10).await.unwrap().len(), 5);
    let a = s.append(entry(6), 1).await.unwrap();
    assert_eq!(
        (a.id, a.time_ms),
        (6, 5),
        "ids continue and time stays monotonic"
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
    assert_eq!(s.bounds().newest, Some(4));
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), 4 * record);
    assert_eq!(s.append(entry(5), 9).await.unwrap().id, 5);
}

#[tokio::test]
async fn log_rolls_segments_and_expiry_deletes_old_files_but_keeps_the_newest() {
    let dir = tempfile::tempdir().unwrap();
    let s = LogStore::open(dir.path(), LEN).unwrap();
    let n = SEGMENT_RECORDS * 2 + 10;
    for i in 1..=n {
        s.append(entry(i), i).await.unwrap();
    }
    let files = || std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(files(), 3);
    let across = s.read(SEGMENT_RECORDS - 3, 6).await.unwrap();
    assert_eq!(
        across.iter().map(|r| r.id).collect::<Vec<_>>(),
        (SEGMENT_RECORDS - 2..=SEGMENT_RECORDS + 3).collect::<Vec<_>>()
    );
    s.expire(SEGMENT_RECORDS + 5).await.unwrap();
    assert_eq!(files(), 2);
    s.expire(u64::MAX).await.unwrap();
    assert_eq!(
        files(),
        1,
        "the newest segment stays so ids are never reused"
    );
    s.close().await.unwrap();
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
                id,
                time_ms: t,
                entry: entry(id),
            })
            .await
            .unwrap();
        }
        s.close().await.unwrap();
    }
    let s = LogStore::open(dir.path(), LEN).unwrap();
    let ids: Vec<u64> = s.read(0, 100).await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(ids, vec![3, 4, 9000, 9001]);
    s.insert(Record {
        id: 9002,
        time_ms: 14,
        entry: entry(9002),
    })
    .await
    .unwrap();
    assert_eq!(s.bounds().newest, Some(9002));
}

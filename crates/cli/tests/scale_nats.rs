//! Several stateless `deaddrop serve` front ends on one NATS JetStream stream (docs/DESIGN.md §3.7), run
//! as real processes against a real `nats-server -js` started here: one ledger seen through any
//! front end (same ids, times and bytes, pushed by all), dense ids across front ends, and
//! acknowledged appends surviving a SIGKILL of nats-server, with the front ends recovering by
//! themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deaddrop_harness::api::{random_entry, Refusal};
use deaddrop_harness::{
    expect_problem, temp_dir, wait_for, wait_until, Api, Deaddrop, Nats, Rec, Serve, WAIT,
};
use reqwest::StatusCode;

const DEADDROP: Deaddrop = Deaddrop::new(env!("CARGO_BIN_EXE_deaddrop"));

/// Two front ends on the stream `stream` of `nats`, logging into `dir`.
async fn front_ends(dir: &std::path::Path, nats: &Nats, stream: &str) -> (Serve, Serve) {
    let store = nats.url();
    let args = [
        "--store",
        store.as_str(),
        "--nats-stream",
        stream,
        "--nats-replicas",
        "1",
        "--pow-bits",
        "0",
    ];
    let start = |name: &str| DEADDROP.serve().name(name).dir(dir).args(&args).start();
    let f1 = start("F1").await;
    let f2 = start("F2").await;
    (f1, f2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn front_ends_on_one_stream_serve_and_push_the_same_entries_with_dense_ids() {
    let dir = temp_dir("deaddrop-scale-nats");
    let nats = Nats::start(dir.path()).await;
    let (f1, f2) = front_ends(dir.path(), &nats, "shared").await;
    let (a1, a2) = (f1.api(), f2.api());
    for fe in [a1, a2] {
        let u = fe.base();
        let i = fe.info().await;
        assert_eq!(i.store, "jetstream", "{u}: {i:?}");
        assert_eq!(i.mirror_of, None);
        assert_eq!(
            i.newest_id.map(u64::from),
            None,
            "a fresh stream has assigned no id"
        );
    }
    let mut sub = a2.subscribe(0).await;
    assert_eq!(sub.hello.newest_id.map(u64::from), None);

    // One entry appended through F1 is read through F2, and pushed by F2.
    let first = random_entry();
    let a = a1.append(&first).await;
    assert_eq!(a.id.get(), 1, "the stream sequence is the id, from 1");
    let query = format!("?after={}&limit=1", a.id.get() - 1);
    let through_f2 = wait_for("F2 serves the entry appended through F1", WAIT, || async {
        let records = a2.read_page(&query).await.records;
        (!records.is_empty()).then_some(records)
    })
    .await;
    let through_f1 = a1.read_page(&query).await.records;
    assert_eq!(through_f2.len(), 1);
    let read = through_f2[0].clone();
    assert_eq!((read.id, &read.entry), (a.id.get(), &first));
    assert_eq!(
        through_f1, through_f2,
        "both front ends serve the same id, time and bytes"
    );
    assert_eq!(
        read.time_ms, a.time,
        "the time in the 201 answer is the time readers get"
    );
    assert_eq!(sub.next().await, read, "F2 pushes what F1 appended");

    // Appends alternating between the front ends get strictly increasing, dense ids.
    let mut appended = vec![(a.id.get(), first)];
    let mut times = vec![a.time];
    for i in 0..12 {
        let entry = random_entry();
        let through = if i % 2 == 0 { a2 } else { a1 };
        let got = through.append(&entry).await;
        let prev = appended.last().unwrap().0;
        assert_eq!(
            got.id.get(),
            prev + 1,
            "append {i} through {} after id {prev}",
            through.base()
        );
        appended.push((got.id.get(), entry));
        times.push(got.time);
    }

    // The subscriber of F2 got every one of them, in order, as both front ends serve them.
    let mut pushed = vec![read];
    while pushed.len() < appended.len() {
        pushed.push(sub.next().await);
    }
    let newest = appended.last().unwrap().0;
    let mut all = Vec::new();
    for fe in [a1, a2] {
        let u = fe.base();
        all = wait_for(&format!("{u} serves every id"), WAIT, || async {
            let all = fe.read_all().await;
            all.last().is_some_and(|r| r.id == newest).then_some(all)
        })
        .await;
        assert_eq!(all, pushed, "{u} serves what F2 pushed");
    }
    let read_times: Vec<u64> = all.iter().map(|r| r.time_ms).collect();
    assert_eq!(
        read_times, times,
        "every 201 answer carries the entry's time"
    );
    let got: Vec<(u64, Vec<u8>)> = all.iter().map(|r| (r.id, r.entry.clone())).collect();
    assert_eq!(got, appended, "ids and bytes as appended");
    assert!(
        all.windows(2).all(|w| w[0].time_ms <= w[1].time_ms),
        "times never decrease with id"
    );
    let body1 = a1.read_page("?after=0").await.body;
    let body2 = a2.read_page("?after=0").await.body;
    assert_eq!(
        body1, body2,
        "GET /v1/entries?after=0 is the same bytes through both"
    );
    for fe in [a1, a2] {
        let i = fe.info().await;
        assert_eq!(
            (
                i.oldest_id.map(u64::from),
                i.newest_id.map(u64::from),
                i.entries
            ),
            (Some(1), Some(newest), newest)
        );
    }
}

/// What the appenders saw.
#[derive(Default)]
struct Outcomes {
    /// Acknowledged appends: id → bytes.
    acked: BTreeMap<u64, Vec<u8>>,
    /// 503 store-unavailable answers (each checked for Retry-After).
    unavailable: usize,
    /// Anything else: a failure of the test.
    unexpected: Vec<String>,
}

/// Appends random entries through `front_end` until `stop`, recording each outcome.
async fn keep_appending(front_end: Api, out: Arc<Mutex<Outcomes>>, stop: Arc<AtomicBool>) {
    let url = front_end.base();
    while !stop.load(Ordering::Relaxed) {
        let entry = random_entry();
        match front_end.post_entry(&entry).await {
            Ok(res) if res.status() == StatusCode::CREATED => {
                let a: deaddrop_api::Accepted = res.json().await.unwrap();
                let mut o = out.lock().unwrap();
                if o.acked.insert(a.id.get(), entry).is_some() {
                    o.unexpected
                        .push(format!("id {} acknowledged twice", a.id.get()));
                }
            }
            Ok(res) if res.status() == StatusCode::SERVICE_UNAVAILABLE => {
                let retry = res.headers().get(reqwest::header::RETRY_AFTER).cloned();
                let text = res.text().await.unwrap_or_default();
                {
                    let mut o = out.lock().unwrap();
                    if retry.is_none() || !text.contains("urn:deaddrop:problem:store-unavailable") {
                        o.unexpected.push(format!(
                            "503 without Retry-After or store-unavailable: {text}"
                        ));
                    }
                    o.unavailable += 1;
                }
                // Back off as a client told to retry would, without spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(res) => {
                let status = res.status();
                let text = res.text().await.unwrap_or_default();
                out.lock()
                    .unwrap()
                    .unexpected
                    .push(format!("{url}: {status}: {text}"));
            }
            Err(e) => out
                .lock()
                .unwrap()
                .unexpected
                .push(format!("{url}: the front end did not answer: {e}")),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_a_nats_sigkill_and_front_ends_recover_by_themselves() {
    let dir = temp_dir("deaddrop-scale-nats");
    let mut nats = Nats::start(dir.path()).await;
    let (f1, f2) = front_ends(dir.path(), &nats, "durable").await;
    let (a1, a2) = (f1.api(), f2.api());
    let mut sub = a2.subscribe(0).await;
    let t0 = Instant::now();

    let out = Arc::new(Mutex::new(Outcomes::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let appenders: Vec<_> = [a1, a2, a1, a2]
        .into_iter()
        .map(|fe| tokio::spawn(keep_appending(fe.clone(), out.clone(), stop.clone())))
        .collect();
    let acked = || out.lock().unwrap().acked.len();
    wait_until("40 appends are acknowledged", WAIT, || async {
        acked() >= 40
    })
    .await;

    // Mid-run, nats-server dies without a chance to flush anything of its own.
    nats.kill9();
    let acked_before_kill = acked();
    eprintln!(
        "{:?}: nats-server killed after {acked_before_kill} acknowledged appends",
        t0.elapsed()
    );
    // Appends while it is down are refused with 503 and Retry-After, and nothing is claimed.
    let (e1, e2) = (random_entry(), random_entry());
    let (r1, r2) = tokio::join!(a1.post_entry(&e1), a2.post_entry(&e2));
    for r in [r1, r2] {
        let Refusal {
            problem: p,
            headers,
        } = expect_problem(r.unwrap(), 503, "store-unavailable").await;
        let retry = headers
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        assert!(
            retry.is_some_and(|s| s >= 1),
            "Retry-After in seconds: {headers:?}"
        );
        assert!(!p.detail.is_empty());
    }
    eprintln!(
        "{:?}: appends through both front ends refused with 503",
        t0.elapsed()
    );
    nats.restart().await;
    let back = Instant::now();
    eprintln!("{:?}: nats-server restarted", t0.elapsed());

    // Each front end accepts a new append within a bounded time, without a restart.
    for fe in [a1, a2] {
        let u = fe.base();
        let (id, entry) = wait_for(&format!("{u} accepts appends again"), WAIT, || async {
            let entry = random_entry();
            let res = fe.post_entry(&entry).await.unwrap();
            if res.status() == StatusCode::CREATED {
                let a: deaddrop_api::Accepted = res.json().await.unwrap();
                return Some((a.id.get(), entry));
            }
            let status = res.status();
            let text = res.text().await.unwrap_or_default();
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
            None
        })
        .await;
        out.lock().unwrap().acked.insert(id, entry);
        eprintln!(
            "{u} accepted again {:?} after nats-server came back",
            back.elapsed()
        );
    }
    let acked_after_recovery = acked();
    wait_until(
        "more appends are acknowledged after the restart",
        WAIT,
        || async { acked() >= acked_after_recovery + 20 },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for a in appenders {
        a.await.unwrap();
    }

    eprintln!("{:?}: appenders stopped", t0.elapsed());
    let out = std::mem::take(&mut *out.lock().unwrap());
    assert!(out.unexpected.is_empty(), "{:?}", out.unexpected);
    assert!(acked_before_kill >= 40);
    eprintln!(
        "{} appends acknowledged, {} refused with 503 while nats-server was down",
        out.acked.len(),
        out.unavailable
    );
    let newest = *out.acked.keys().next_back().unwrap();

    // Every acknowledged append is there, with its id and bytes, through both front ends.
    let mut views = Vec::new();
    for fe in [a1, a2] {
        let u = fe.base();
        let all = wait_for(&format!("{u} serves id {newest}"), WAIT, || async {
            let all = fe.read_all().await;
            all.last().is_some_and(|r| r.id >= newest).then_some(all)
        })
        .await;
        let by_id: BTreeMap<u64, &Rec> = all.iter().map(|r| (r.id, r)).collect();
        assert_eq!(by_id.len(), all.len(), "{u}: no id twice");
        assert!(
            all.windows(2).all(|w| w[0].id < w[1].id),
            "{u}: ids increase"
        );
        assert!(
            all.windows(2).all(|w| w[0].time_ms <= w[1].time_ms),
            "{u}: times never decrease with id"
        );
        for (id, entry) in &out.acked {
            let rec = by_id
                .get(id)
                .unwrap_or_else(|| panic!("{u}: acknowledged id {id} is lost"));
            assert_eq!(&rec.entry, entry, "{u}: id {id} has other bytes");
        }
        views.push(all);
    }
    let shortest = views[0].len().min(views[1].len());
    assert_eq!(
        views[0][..shortest],
        views[1][..shortest],
        "both front ends serve the same entries"
    );

    eprintln!("{:?}: every acknowledged append read back", t0.elapsed());
    // F2 went on pushing across the outage: its subscriber got every entry, in order.
    let mut pushed: Vec<Rec> = Vec::new();
    while pushed
        .last()
        .is_none_or(|r| r.id < views[1].last().unwrap().id)
    {
        pushed.push(sub.next().await);
    }
    assert_eq!(pushed, views[1][..pushed.len()], "pushed as read");
    eprintln!("{:?}: every entry pushed by F2", t0.elapsed());
}

/// A front end that learns of ids only from its own appends must not take the first one it
/// appends for the oldest id held: another front end may have appended before it. Reading
/// through it from the start must return every id, with no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_front_end_never_names_a_gap_for_ids_another_appended() {
    let dir = temp_dir("deaddrop-scale-nats");
    let nats = Nats::start(dir.path()).await;
    let (f1, f2) = front_ends(dir.path(), &nats, "neighbours").await;
    let (a1, a2) = (f1.api(), f2.api());
    // F1 appends first; F2 appends at once, before it has had a reason to look at the stream.
    let first = a1.append(&random_entry()).await;
    let second = a2.append(&random_entry()).await;
    assert_eq!((first.id.get(), second.id.get()), (1, 2));
    let page = a2.read(0, 100).await;
    assert_eq!(
        (page.ids(), page.gap()),
        (vec![1, 2], None),
        "F2 serves both ids and names no gap (oldest {:?})",
        page.oldest()
    );
    assert_eq!(page.oldest(), Some(1), "the oldest id held is 1");
    let info = a2.info().await;
    assert_eq!(info.oldest_id.map(u64::from), Some(1));
}

/// While one front end appends, a reader polling another from the start is never told that
/// ids expired: none has (the lifetime is hours). The second front end learns of new ids from
/// its feed before it learns of the oldest one held; a read in between must not take the ids it
/// knows of for gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_through_another_front_end_never_sees_a_false_gap_while_entries_arrive() {
    let dir = temp_dir("deaddrop-scale-nats");
    let nats = Nats::start(dir.path()).await;
    let (f1, f2) = front_ends(dir.path(), &nats, "arrivals").await;
    let (a1, a2) = (f1.api(), f2.api());
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (a2, stop) = (a2.clone(), stop.clone());
        tokio::spawn(async move {
            let mut pages = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let res = a2
                    .http()
                    .get(a2.endpoint(&format!("{}?after=0", deaddrop_api::path::ENTRIES)))
                    .send()
                    .await
                    .unwrap();
                if res.status() == StatusCode::OK {
                    let gap = res
                        .headers()
                        .get(deaddrop_api::header::GAP)
                        .map(|v| v.to_str().unwrap().to_string());
                    pages.push(gap);
                } else {
                    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
                }
            }
            pages
        })
    };
    for _ in 0..20 {
        a1.append(&random_entry()).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let pages = reader.await.unwrap();
    let gaps: Vec<_> = pages.iter().flatten().collect();
    assert!(pages.len() >= 10, "only {} pages read", pages.len());
    assert!(
        gaps.is_empty(),
        "{} of {} pages named a gap, though nothing expired: {:?}...",
        gaps.len(),
        pages.len(),
        &gaps[..gaps.len().min(5)]
    );
}

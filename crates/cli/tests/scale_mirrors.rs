//! Mirrors (`deaddrop serve --mirror-of URL`, docs/DESIGN.md §3.7), run as real processes in a chain:
//! a central ledger C, a mirror M1 of C, and a mirror M2 of M1, each with its own data
//! directory. Mirrors serve the central entries byte for byte with the same ids and times, push
//! them, forward appends (and the upstream's refusals), catch up after a `kill -9`, never invent
//! ids, and pass on the gap of ids that expired before they saw them.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::time::{Duration, Instant};

use deaddrop_harness::api::random_entry;
use deaddrop_harness::{
    expect_problem, temp_dir, wait_for, wait_until, Api, Deaddrop, Rec, Serve, WAIT,
};

const DEADDROP: Deaddrop = Deaddrop::new(env!("CARGO_BIN_EXE_deaddrop"));

/// A ledger named `name` with its logs in `dir`, its data in `dir/name`, and `args`.
async fn ledger(dir: &Path, name: &str, args: &[&str]) -> Serve {
    DEADDROP
        .serve()
        .name(name)
        .dir(dir)
        .data(&dir.join(name))
        .args(&["--pow-bits", "0"])
        .args(args)
        .start()
        .await
}

/// C, M1 (mirror of C) and M2 (mirror of M1).
async fn chain(dir: &Path, central_args: &[&str]) -> (Serve, Serve, Serve) {
    let c = ledger(dir, "C", central_args).await;
    let m1 = ledger(dir, "M1", &["--mirror-of", &c.url()]).await;
    let m2 = ledger(dir, "M2", &["--mirror-of", &m1.url()]).await;
    (c, m1, m2)
}

/// Waits until `mirror` serves exactly the body `GET /v1/entries?after=0` of `central` serves
/// now.
async fn wait_same_entries(central: &Api, mirror: &Api) -> Vec<u8> {
    let want = central.read_page("?after=0").await.body;
    wait_for(
        &format!(
            "{} serves the same entries as {}",
            mirror.base(),
            central.base()
        ),
        WAIT,
        || async {
            let got = mirror.read_page("?after=0").await.body;
            (got == want).then_some(got)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_of_a_mirror_serves_pushes_and_forwards_like_the_central_ledger() {
    let dir = temp_dir("deaddrop-scale-mirrors");
    let (c, m1, m2) = chain(dir.path(), &[]).await;
    let (uc, u1) = (c.url(), m1.url());
    let (ac, a1, a2) = (c.api(), m1.api(), m2.api());
    let mut sub = a2.subscribe(0).await;

    let mut appended = Vec::new();
    for _ in 0..10 {
        let entry = random_entry();
        let a = ac.append(&entry).await;
        appended.push((a.id.get(), entry));
    }
    let body = wait_same_entries(ac, a2).await;
    let central = ac.read_all().await;
    let got: Vec<(u64, Vec<u8>)> = central.iter().map(|r| (r.id, r.entry.clone())).collect();
    assert_eq!(got, appended);
    assert!(!body.is_empty());
    assert_eq!(a1.read_page("?after=0").await.body, body, "M1 too");

    // An append sent to M2 is forwarded up the chain; C assigns the id and serves it.
    let entry = random_entry();
    let a = a2.append(&entry).await;
    assert_eq!(a.id.get(), 11, "the central ledger assigns the next id");
    let at_c = ac.read_page("?after=10").await.records;
    assert_eq!(at_c.len(), 1);
    assert_eq!(
        (at_c[0].id, at_c[0].time_ms, &at_c[0].entry),
        (a.id.get(), a.time, &entry)
    );
    wait_same_entries(ac, a2).await;

    // A bad append to M1 gets C's refusal passed through, problem type and all.
    let short = vec![7u8; 100];
    let from_c = ac.post_entry(&short).await.unwrap();
    let want = expect_problem(from_c, 400, "entry-size").await.problem;
    for a in [a1, a2] {
        let res = a.post_entry(&short).await.unwrap();
        let got = expect_problem(res, 400, "entry-size").await.problem;
        let u = a.base();
        assert_eq!(got, want, "{u} passes on the central ledger's problem");
    }
    assert_eq!(
        ac.info().await.newest_id.map(u64::from),
        Some(11),
        "a refused append assigns no id"
    );

    // M2's subscriber got every entry, the forwarded one too, as C serves them.
    let central = ac.read_all().await;
    let mut pushed: Vec<Rec> = Vec::new();
    while pushed.len() < central.len() {
        pushed.push(sub.next().await);
    }
    assert_eq!(
        pushed, central,
        "M2 pushes C's entries with C's ids and times"
    );

    // Each mirror says what it mirrors, and catches up to zero behind.
    for (a, up) in [(a1, &uc), (a2, &u1)] {
        let u = a.base();
        let i = wait_for(&format!("{u} is 0 behind"), WAIT, || async {
            let i = a.info().await;
            (i.behind == Some(0) && i.upstream_newest_id.map(u64::from) == Some(11)).then_some(i)
        })
        .await;
        assert_eq!(i.mirror_of.as_deref(), Some(up.as_str()), "{i:?}");
        assert_eq!(
            (
                i.oldest_id.map(u64::from),
                i.newest_id.map(u64::from),
                i.entries
            ),
            (Some(1), Some(11), 11)
        );
    }
    let ic = ac.info().await;
    assert_eq!((ic.mirror_of, ic.behind), (None, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_killed_midway_catches_up_and_passes_everything_on_without_inventing_ids() {
    let dir = temp_dir("deaddrop-scale-mirrors");
    let (c, mut m1, m2) = chain(dir.path(), &[]).await;
    let u1 = m1.url();
    let (ac, a1, a2) = (c.api(), m1.api().clone(), m2.api());
    for _ in 0..5 {
        ac.append(&random_entry()).await;
    }
    wait_same_entries(ac, a2).await;

    m1.kill9();
    // M2 cannot forward while its upstream is gone, and says so with Retry-After.
    let res = a2.post_entry(&random_entry()).await.unwrap();
    let headers = expect_problem(res, 503, "store-unavailable").await.headers;
    assert!(headers.contains_key(reqwest::header::RETRY_AFTER));

    let mut appended = Vec::new();
    for _ in 0..50 {
        let entry = random_entry();
        appended.push((ac.append(&entry).await.id.get(), entry));
    }
    let newest = appended.last().unwrap().0;
    assert_eq!(newest, 55);

    m1.restart().await;
    assert_eq!(m1.url(), u1, "M1 is back on its port");
    let started = Instant::now();
    let body = wait_same_entries(ac, &a1).await;
    eprintln!("M1 caught up {:?} after its restart", started.elapsed());
    wait_same_entries(ac, a2).await;
    eprintln!("M2 caught up {:?} after M1's restart", started.elapsed());

    let central = ac.read_all().await;
    assert_eq!(central.len(), 55);
    let tail: Vec<(u64, Vec<u8>)> = central[5..]
        .iter()
        .map(|r| (r.id, r.entry.clone()))
        .collect();
    assert_eq!(tail, appended);
    for a in [&a1, a2] {
        let u = a.base();
        assert_eq!(a.read_page("?after=0").await.body, body);
        assert_eq!(a.read_all().await, central, "{u}: ids, times and bytes");
        let i = a.info().await;
        assert_eq!(
            (
                i.oldest_id.map(u64::from),
                i.newest_id.map(u64::from),
                i.entries
            ),
            (Some(1), Some(newest), newest),
            "{u} holds exactly C's ids: {i:?}"
        );
        let past = a.read_page(&format!("?after={newest}")).await;
        assert!(
            past.records.is_empty() && past.gap().is_none(),
            "{u}: nothing beyond C"
        );
    }
    // The chain still carries new entries.
    let entry = random_entry();
    let a = a2.append(&entry).await;
    assert_eq!(a.id.get(), newest + 1);
    wait_same_entries(ac, a2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_started_after_entries_expired_upstream_tells_readers_the_gap() {
    let dir = temp_dir("deaddrop-scale-mirrors");
    let c = ledger(
        dir.path(),
        "C",
        &["--lifetime", "2s", "--min-lifetime", "1s"],
    )
    .await;
    let uc = c.url();
    let mut m1 = ledger(dir.path(), "M1", &["--mirror-of", &uc]).await;
    let (ac, a1) = (c.api(), m1.api().clone());
    assert_eq!(a1.info().await.mirror_of.as_deref(), Some(uc.as_str()));
    m1.kill9();

    for _ in 0..5 {
        ac.append(&random_entry()).await;
    }
    wait_until("ids 1-5 expire on C", WAIT, || async {
        let i = ac.info().await;
        i.entries == 0 || i.oldest_id.map(u64::from).is_some_and(|o| o > 5)
    })
    .await;
    let before_later = Instant::now();
    let mut later = Vec::new();
    for _ in 0..3 {
        let entry = random_entry();
        later.push((ac.append(&entry).await.id.get(), entry));
    }
    assert_eq!(later.iter().map(|l| l.0).collect::<Vec<_>>(), [6, 7, 8]);

    m1.restart().await;
    let page = wait_for("M1 catches up to id 8", WAIT, || async {
        let p = a1.read_page("?after=0").await;
        (p.newest() == Some(8)).then_some(p)
    })
    .await;
    let read_within = before_later.elapsed();
    eprintln!(
        "M1 read {read_within:?} after the later appends began: gap {:?}",
        page.gap()
    );
    let at_c = ac.read_page("?after=0").await;

    // The reader of M1 is told ids 1-5 expired unseen, as a reader of C is; if ids 6-8 expired
    // too by now (a slow machine), they are part of the gap, on both.
    let (first, last) = page
        .gap()
        .expect("M1 names the expired ids in deaddrop-gap");
    assert_eq!(first, 1, "{page:?}");
    assert!(last >= 5, "ids 1-5 expired: {page:?}");
    let served: Vec<(u64, Vec<u8>)> = page
        .records
        .iter()
        .map(|r| (r.id, r.entry.clone()))
        .collect();
    assert_eq!(
        served,
        later[(last - 5) as usize..],
        "M1 serves what is left"
    );
    assert_eq!(page.next_after(), 8);
    if read_within < Duration::from_millis(1800) {
        // Nothing appended after the expiry can have expired yet (lifetime 2 s).
        assert_eq!((first, last), (1, 5));
        assert_eq!(page.records.len(), 3);
    }
    let (cf, cl) = at_c.gap().expect("C names the expired ids too");
    assert_eq!(cf, 1);
    assert!(cl >= last, "C's gap {cf}-{cl}, M1's {first}-{last}");

    let sub = a1.subscribe(0).await;
    let g = sub.hello.gap.expect("the push stream names the gap too");
    let (gf, gl) = (g.first().get(), g.last().get());
    assert_eq!(gf, 1);
    assert!(gl >= 5);
}

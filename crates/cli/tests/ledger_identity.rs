//! The ledger's identity (`ledger_id` in `/v1/info`, docs/API.md), on real `deaddrop serve`
//! processes: an embedded ledger keeps its id across restarts and gets a new one with new data; a
//! memory ledger gets a new one each run; every front end of one JetStream stream reports the
//! stream's; mirrors, mirrors of mirrors included, report their upstream's, also after a restart
//! while the upstream is down.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;

use deaddrop_api::LedgerId;
use deaddrop_harness::{temp_dir, wait_for, Deaddrop, Nats, Serve, WAIT};

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

async fn id_of(s: &Serve) -> LedgerId {
    s.info()
        .await
        .ledger_id
        .unwrap_or_else(|| panic!("{} reports no ledger_id", s.url()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_ledger_keeps_its_id_across_restarts_and_new_data_gets_a_new_one() {
    let dir = temp_dir("deaddrop-ledger-id");
    let mut l = ledger(dir.path(), "L", &[]).await;
    let first = id_of(&l).await;
    assert_eq!(first.to_hex().len(), 32);
    l.append(&deaddrop_harness::api::random_entry()).await;
    l.kill9();
    l.restart().await;
    assert_eq!(id_of(&l).await, first, "kill -9 and restart");
    l.terminate();
    l.wait_exit(WAIT).await;
    l.restart().await;
    assert_eq!(id_of(&l).await, first, "SIGTERM and restart");
    // The data directory wiped: another ledger at the same address.
    l.kill9();
    std::fs::remove_dir_all(dir.path().join("L")).unwrap();
    l.restart().await;
    assert_ne!(id_of(&l).await, first);

    // A memory ledger keeps nothing, its id neither.
    let mut m = ledger(dir.path(), "M", &["--store", "memory"]).await;
    let before = id_of(&m).await;
    m.kill9();
    m.restart().await;
    assert_ne!(id_of(&m).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn front_ends_of_one_stream_report_one_id_and_keep_it_across_restarts() {
    let dir = temp_dir("deaddrop-ledger-id-nats");
    let nats = Nats::start(dir.path()).await;
    let store = nats.url();
    let front = |name: &'static str, stream: &'static str| {
        let store = store.clone();
        let dir = dir.path().to_path_buf();
        async move {
            DEADDROP
                .serve()
                .name(name)
                .dir(&dir)
                .args(&[
                    "--store",
                    &store,
                    "--nats-stream",
                    stream,
                    "--nats-replicas",
                    "1",
                    "--pow-bits",
                    "0",
                ])
                .start()
                .await
        }
    };
    let mut f1 = front("F1", "shared").await;
    let f2 = front("F2", "shared").await;
    let id = id_of(&f1).await;
    assert_eq!(id_of(&f2).await, id);
    f1.kill9();
    f1.restart().await;
    assert_eq!(
        id_of(&f1).await,
        id,
        "a restarted front end reports the stream's id"
    );
    // Another stream on the same NATS is another ledger.
    let other = front("F3", "other").await;
    assert_ne!(id_of(&other).await, id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrors_report_their_upstreams_id_also_while_it_is_down() {
    let dir = temp_dir("deaddrop-ledger-id-mirrors");
    let mut c = ledger(dir.path(), "C", &[]).await;
    let central = id_of(&c).await;
    let mut m1 = ledger(dir.path(), "M1", &["--mirror-of", &c.url()]).await;
    let m2 = ledger(dir.path(), "M2", &["--mirror-of", &m1.url()]).await;
    for m in [&m1, &m2] {
        wait_for(
            &format!("{} reports the central ledger's id", m.url()),
            WAIT,
            || async { (m.info().await.ledger_id == Some(central)).then_some(()) },
        )
        .await;
    }
    // The mirror keeps it with its copy: restarted while the central ledger is down, it still
    // reports it.
    c.kill9();
    m1.kill9();
    m1.restart().await;
    assert_eq!(id_of(&m1).await, central);
    c.restart().await;
    assert_eq!(id_of(&c).await, central);
}

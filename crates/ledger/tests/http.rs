//! The HTTP API of `docs/API.md`, served in-process by [`deaddrop_ledger::run`] on
//! `127.0.0.1:0` and used over real sockets: appends and paged reads, gaps after expiry,
//! refusals of bad input, proof of work, WebSocket push (with a stalled subscriber) and the
//! metrics. What needs the real binary (a `kill -9`, SIGTERM, the process's log) is tested
//! black-box in `crates/cli/tests/ledger_server.rs`. Every test has its own ledger and waits on
//! conditions with timeouts, never on fixed sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use deaddrop_api::{frames, Accepted, CLOSE_LAGGED};
use deaddrop_harness::api::{entry, entry_len, metric_value};
use deaddrop_harness::{expect_problem, wait_until, Api, WAIT};
use deaddrop_ledger::store::log::LogStore;
use deaddrop_ledger::store::memory::MemoryStore;
use deaddrop_ledger::store::Store;
use deaddrop_ledger::{Config, Ledger};
use deaddrop_proto::{pow, Entry, Stamp, Suite};
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

/// The store behind an in-process ledger.
enum Backing {
    /// The embedded log store, in a temporary directory.
    Embedded,
    /// The memory store.
    Memory,
}

/// A ledger served by `deaddrop_ledger::run` in this process; asked to shut down when dropped.
struct InProcess {
    api: Api,
    stop: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl InProcess {
    /// Serves a ledger with `config` (as `deaddrop serve` resolves its flags) on
    /// `127.0.0.1:0`.
    async fn start(config: Config, backing: Backing) -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = match backing {
            Backing::Embedded => {
                Arc::new(LogStore::open(dir.path(), config.suite.layout().entry_len).unwrap())
            }
            Backing::Memory => Arc::new(MemoryStore::new()),
        };
        let ledger = Ledger::new(config, store).expect("a valid config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            deaddrop_ledger::run(listener, ledger, shutdown)
                .await
                .unwrap();
        });
        InProcess {
            api: Api::new(&format!("http://{addr}")),
            stop: Some(stop),
            _dir: dir,
        }
    }
}

impl Deref for InProcess {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `deaddrop serve`'s settings with proof of work at `bits` (`--pow-bits`).
fn config(pow_bits: u8) -> Config {
    Config {
        pow_bits,
        ..Config::default()
    }
}

/// One bad request and the refusal it must get.
struct Case {
    name: &'static str,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    reason: &'static str,
}

impl Case {
    fn new(
        name: &'static str,
        (method, path): (Method, &str),
        (content_type, body): (Option<&'static str>, Vec<u8>),
        (status, reason): (u16, &'static str),
    ) -> Case {
        Case {
            name,
            method,
            path: path.to_string(),
            content_type,
            body,
            status,
            reason,
        }
    }
}

/// Bytes of an xwing entry whose stamp is `0` and does not meet `bits`.
fn unstamped_entry(bits: u8, from_tag: u64) -> Entry {
    (from_tag..)
        .map(|tag| {
            let mut e = Entry::parse(Suite::XWing, &entry(tag)).unwrap();
            e.set_stamp(Stamp(0));
            e
        })
        .find(|e| !pow::verify(e, bits))
        .unwrap()
}

/// Bytes of an xwing entry stamped for `bits`.
fn stamped_entry(bits: u8, tag: u64) -> Vec<u8> {
    let mut e = unstamped_entry(bits, tag);
    assert!(pow::solve(&mut e, bits, tag.wrapping_mul(7919)));
    assert!(pow::verify(&e, bits));
    e.as_bytes().to_vec()
}

/// Appends from `tasks` concurrent clients, each sending `per_task` entries; returns what was
/// acknowledged, as `(id, bytes)`.
async fn append_concurrently(api: &Api, tasks: u64, per_task: u64) -> Vec<(u64, Vec<u8>)> {
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let api = api.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for seq in 0..per_task {
                    let bytes = entry((t << 32) | seq);
                    let a: Accepted = api.append(&bytes).await;
                    acked.push((a.id.get(), bytes));
                }
                acked
            })
        })
        .collect();
    let mut acked = Vec::new();
    for h in handles {
        acked.extend(h.await.unwrap());
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_get_increasing_ids_and_read_back_in_pages() {
    let server = InProcess::start(config(0), Backing::Embedded).await;
    assert_eq!(server.info().await.newest_id.map(u64::from), None);

    let mut sent = Vec::new();
    for tag in 0..5 {
        let bytes = entry(tag);
        let a = server.append(&bytes).await;
        sent.push((a, bytes));
    }
    let ids: Vec<u64> = sent.iter().map(|(a, _)| a.id.get()).collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 5]);
    assert!(sent.windows(2).all(|w| w[0].0.time <= w[1].0.time));
    assert!(sent.iter().all(|(a, _)| a.expires_at > a.time));

    let mut after = 0;
    let mut got = Vec::new();
    let mut pages = 0;
    loop {
        let page = server.read(after, 2).await;
        assert_eq!(page.gap(), None);
        assert_eq!(page.oldest(), Some(1));
        assert_eq!(page.newest(), Some(5));
        if page.records.is_empty() {
            assert_eq!(page.next_after(), after, "an empty page keeps the position");
            break;
        }
        assert!(page.records.len() <= 2);
        assert_eq!(page.next_after(), *page.ids().last().unwrap());
        after = page.next_after();
        got.extend(page.records);
        pages += 1;
    }
    assert_eq!(pages, 3);
    assert_eq!(got.len(), 5);
    for (r, (a, sent_bytes)) in got.iter().zip(&sent) {
        assert_eq!((r.id, r.time_ms), (a.id.get(), a.time));
        assert!(
            &r.entry == sent_bytes,
            "entry {} reads back unchanged",
            r.id
        );
    }

    let middle = server.read(3, 1024).await;
    assert_eq!(middle.ids(), vec![4, 5]);
    let default_limit = server.read_query("").await;
    assert_eq!(default_limit.ids(), vec![1, 2, 3, 4, 5]);

    let info = server.info().await;
    assert_eq!(
        (
            info.oldest_id.map(u64::from),
            info.newest_id.map(u64::from),
            info.entries
        ),
        (Some(1), Some(5), 5)
    );
    assert_eq!(info.entry_bytes, entry_len());
    assert_eq!(info.suite, "xwing");
    assert_eq!(info.store, "embedded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_entries_are_reported_as_an_exact_gap() {
    // `--lifetime 2s --min-lifetime 1s`.
    let short = Config {
        lifetime: Duration::from_secs(2),
        min_lifetime: Duration::from_secs(1),
        ..config(0)
    };
    let server = InProcess::start(short, Backing::Embedded).await;
    for tag in 0..3 {
        server.append(&entry(tag)).await;
    }
    wait_until("the three entries expired", WAIT, || async {
        server.info().await.entries == 0
    })
    .await;

    let info = server.info().await;
    assert_eq!(
        (info.oldest_id.map(u64::from), info.newest_id.map(u64::from)),
        (None, Some(3))
    );
    let page = server.read(0, 100).await;
    assert!(page.records.is_empty());
    assert_eq!(page.gap(), Some((1, 3)));
    assert_eq!(page.next_after(), 3, "a reader resumes past the gap");
    assert_eq!((page.oldest(), page.newest()), (None, Some(3)));
    assert_eq!(server.read(1, 100).await.gap(), Some((2, 3)));
    assert_eq!(server.read(3, 100).await.gap(), None);

    // New entries after the gap: the gap still names exactly the expired ids.
    let a = server.append(&entry(10)).await;
    let b = server.append(&entry(11)).await;
    assert_eq!((a.id.get(), b.id.get()), (4, 5));
    let page = server.read(0, 100).await;
    assert_eq!(page.gap(), Some((1, 3)));
    assert_eq!(page.ids(), vec![4, 5]);
    assert_eq!(page.next_after(), 5);
    assert_eq!((page.oldest(), page.newest()), (Some(4), Some(5)));
    let info = server.info().await;
    assert_eq!(
        (
            info.oldest_id.map(u64::from),
            info.newest_id.map(u64::from),
            info.entries
        ),
        (Some(4), Some(5), 2)
    );
    assert_eq!((info.lifetime_s, info.min_lifetime_s), (2, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_typed_problems_and_the_server_keeps_serving() {
    let server = InProcess::start(config(8), Backing::Embedded).await;
    let first = stamped_entry(8, 1);
    assert_eq!(server.append(&first).await.id, 1);

    let octets = Some("application/octet-stream");
    let good_size_no_work = unstamped_entry(8, 100).as_bytes().to_vec();
    let rsa_size = vec![0x5a; Suite::RsaOaep.layout().entry_len];
    assert_ne!(rsa_size.len(), entry_len());
    let max = u64::MAX;
    #[rustfmt::skip]
    let cases = vec![
        Case::new("empty body", (Method::POST, "/v1/entries"), (octets, vec![]), (400, "entry-size")),
        Case::new("truncated entry", (Method::POST, "/v1/entries"), (octets, first[..entry_len() - 1].to_vec()), (400, "entry-size")),
        Case::new("one byte", (Method::POST, "/v1/entries"), (octets, vec![1]), (400, "entry-size")),
        Case::new("rsa-oaep size on xwing", (Method::POST, "/v1/entries"), (octets, rsa_size), (400, "entry-size")),
        Case::new("one byte too many", (Method::POST, "/v1/entries"), (octets, [first.as_slice(), &[0]].concat()), (413, "body-too-large")),
        Case::new("two entries", (Method::POST, "/v1/entries"), (octets, [first.as_slice(), &first].concat()), (413, "body-too-large")),
        Case::new("64 KiB", (Method::POST, "/v1/entries"), (octets, vec![0; 64 << 10]), (413, "body-too-large")),
        Case::new("no proof of work", (Method::POST, "/v1/entries"), (octets, good_size_no_work), (400, "pow-insufficient")),
        Case::new("text/plain", (Method::POST, "/v1/entries"), (Some("text/plain"), first.clone()), (415, "unsupported-media-type")),
        Case::new("json", (Method::POST, "/v1/entries"), (Some("application/json"), first.clone()), (415, "unsupported-media-type")),
        Case::new("no content type", (Method::POST, "/v1/entries"), (None, first.clone()), (415, "unsupported-media-type")),
        Case::new("after above u64", (Method::GET, "/v1/entries?after=18446744073709551616"), (None, vec![]), (400, "bad-query")),
        Case::new("huge after", (Method::GET, &format!("/v1/entries?after={max}0")), (None, vec![]), (400, "bad-query")),
        Case::new("negative after", (Method::GET, "/v1/entries?after=-1"), (None, vec![]), (400, "bad-query")),
        Case::new("word after", (Method::GET, "/v1/entries?after=latest"), (None, vec![]), (400, "bad-query")),
        Case::new("fractional after", (Method::GET, "/v1/entries?after=1.5"), (None, vec![]), (400, "bad-query")),
        Case::new("limit 0", (Method::GET, "/v1/entries?limit=0"), (None, vec![]), (400, "bad-query")),
        Case::new("negative limit", (Method::GET, "/v1/entries?after=0&limit=-5"), (None, vec![]), (400, "bad-query")),
        Case::new("absurd limit", (Method::GET, "/v1/entries?limit=99999999999999999999999999"), (None, vec![]), (400, "bad-query")),
        Case::new("not utf-8", (Method::GET, "/v1/entries?after=%FF"), (None, vec![]), (400, "bad-query")),
        Case::new("DELETE entries", (Method::DELETE, "/v1/entries"), (None, vec![]), (405, "method-not-allowed")),
        Case::new("PUT entries", (Method::PUT, "/v1/entries"), (octets, first.clone()), (405, "method-not-allowed")),
        Case::new("POST info", (Method::POST, "/v1/info"), (octets, first.clone()), (405, "method-not-allowed")),
        Case::new("POST healthz", (Method::POST, "/healthz"), (None, vec![]), (405, "method-not-allowed")),
        Case::new("DELETE metrics", (Method::DELETE, "/metrics"), (None, vec![]), (405, "method-not-allowed")),
        Case::new("POST stream", (Method::POST, "/v1/stream"), (None, vec![]), (405, "method-not-allowed")),
        Case::new("root", (Method::GET, "/"), (None, vec![]), (404, "not-found")),
        Case::new("entry by id", (Method::GET, "/v1/entries/1"), (None, vec![]), (404, "not-found")),
        Case::new("other version", (Method::GET, "/v2/info"), (None, vec![]), (404, "not-found")),
        Case::new("unknown POST", (Method::POST, "/v1/delete-everything"), (octets, first.clone()), (404, "not-found")),
        Case::new("stream without upgrade", (Method::GET, "/v1/stream?after=0"), (None, vec![]), (400, "not-websocket")),
        Case::new("stream with bad after", (Method::GET, "/v1/stream?after=-1"), (None, vec![]), (400, "bad-query")),
    ];
    for case in cases {
        let mut req = server
            .http()
            .request(case.method, server.endpoint(&case.path));
        if let Some(c) = case.content_type {
            req = req.header("content-type", c);
        }
        if !case.body.is_empty() {
            req = req.body(case.body);
        }
        let name = case.name;
        let res = req.send().await.unwrap_or_else(|e| panic!("{name}: {e:?}"));
        expect_problem(res, case.status, case.reason).await;
    }

    // A limit above the page size is capped, not refused.
    let capped = server.read_query(&format!("?after=0&limit={max}")).await;
    assert_eq!(capped.status, StatusCode::OK);
    assert_eq!(capped.ids(), vec![1]);

    // Still serving, nothing stored changed, and a valid append still works.
    let health = server
        .http()
        .get(server.endpoint("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.unwrap(), "ok\n");
    let info = server.info().await;
    assert_eq!(
        (info.oldest_id.map(u64::from), info.newest_id.map(u64::from)),
        (Some(1), Some(1))
    );
    let second = stamped_entry(8, 2);
    assert_eq!(server.append(&second).await.id, 2);
    let stored: BTreeMap<u64, Vec<u8>> = server.read_all_by_id().await;
    assert_eq!(stored, BTreeMap::from([(1, first), (2, second)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stamped_entry_is_accepted_and_unstamped_one_refused() {
    let server = InProcess::start(config(10), Backing::Memory).await;
    let res = server
        .http()
        .get(server.endpoint("/v1/info"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers().get("deaddrop-pow-bits").unwrap(), "10");
    let bits = server.info().await.pow_bits;
    assert_eq!(bits, 10);

    let mut e = unstamped_entry(bits, 500);
    let res = server.post_entry(e.as_bytes()).await.unwrap();
    let p = expect_problem(res, 400, "pow-insufficient").await.problem;
    assert!(p.detail.contains("10 bits"), "{}", p.detail);

    assert!(pow::solve(&mut e, bits, 0x0123_4567_89ab_cdef));
    let a = server.append(e.as_bytes()).await;
    assert_eq!(a.id.get(), 1);
    assert!(server.read(0, 10).await.records[0].entry == e.as_bytes());

    // The stamp is bound to the bytes: the same stamp on other bytes does not carry over.
    let mut other = e.as_bytes().to_vec();
    other[0] ^= 1;
    let other = Entry::parse(Suite::XWing, &other).unwrap();
    assert!(!pow::verify(&other, bits), "pick other bytes for this test");
    let res = server.post_entry(other.as_bytes()).await.unwrap();
    expect_problem(res, 400, "pow-insufficient").await;
    assert_eq!(server.info().await.entries, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_sends_hello_backlog_then_live_entries_in_order() {
    let server = InProcess::start(config(0), Backing::Memory).await;
    let mut sent = Vec::new();
    for tag in 0..3 {
        let bytes = entry(tag);
        sent.push((server.append(&bytes).await.id, bytes));
    }

    let mut ws = server.subscribe(0).await;
    let hello = &ws.hello;
    assert_eq!(
        (
            hello.oldest_id.map(u64::from),
            hello.newest_id.map(u64::from),
            hello.gap
        ),
        (Some(1), Some(3), None)
    );

    for (id, bytes) in &sent {
        let got = ws.next().await;
        assert_eq!(*id, got.id, "backlog in id order");
        assert!(&got.entry == bytes);
    }

    // Live: appended after the subscriber connected; it only waits on the socket.
    let mut live = Vec::new();
    for tag in 10..15 {
        let bytes = entry(tag);
        let a = server.append(&bytes).await;
        live.push((a.id.get(), a.time, bytes));
    }
    for (id, time, bytes) in &live {
        let got = ws.next().await;
        assert_eq!(
            (got.id, got.time_ms),
            (*id, *time),
            "live entries in id order"
        );
        assert!(&got.entry == bytes);
    }

    // A second subscriber from the middle gets only what follows.
    let mut mid = server.subscribe(4).await;
    for want in 5..=8 {
        assert_eq!(mid.next().await.id, want);
    }
    ws.close().await;
    mid.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_of_concurrent_appends_is_complete_and_in_id_order() {
    let server = InProcess::start(config(0), Backing::Embedded).await;
    let mut ws = server.subscribe(0).await;

    // Concurrent appends share a group commit and finish in any order; the stream may not.
    let acked: BTreeMap<u64, Vec<u8>> = append_concurrently(&server, 8, 50)
        .await
        .into_iter()
        .collect();
    assert_eq!(acked.len(), 400);
    for (id, bytes) in &acked {
        let got = ws.next().await;
        assert_eq!(got.id, *id, "pushed in id order, none left out");
        assert!(&got.entry == bytes);
    }
    ws.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_subscriber_is_cut_loose_while_a_reading_one_gets_everything() {
    let small_ring = Config {
        subscriber_buffer: 64,
        ..config(0)
    };
    let server = InProcess::start(small_ring, Backing::Memory).await;

    // The stalled subscriber: a small receive buffer, and it never reads after the handshake.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let addr = server.base().trim_start_matches("http://").parse().unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (mut stalled, _) =
        tokio_tungstenite::client_async(server.ws_url("/v1/stream?after=0"), stream)
            .await
            .unwrap();

    // Far more than the kernel buffers of the stalled connection and the 64-entry ring hold;
    // the reading subscriber is kept within the ring so that only the stalled one lags.
    const TOTAL: u64 = 2_000;

    // The reading subscriber records every id it gets.
    let (mut reader, _) = tokio_tungstenite::connect_async(server.ws_url("/v1/stream?after=0"))
        .await
        .unwrap();
    let (seen_tx, seen_rx) = tokio::sync::watch::channel(0u64);
    let reading = tokio::spawn(async move {
        let mut ids = Vec::new();
        while (ids.len() as u64) < TOTAL {
            let msg = reader.next().await.expect("the stream stays open");
            match msg.expect("a WebSocket message") {
                Message::Binary(data) => {
                    for f in frames(&data, entry_len()) {
                        ids.push(f.unwrap().id.get());
                    }
                    let _ = seen_tx.send(*ids.last().unwrap());
                }
                Message::Close(frame) => panic!("the reading subscriber was closed: {frame:?}"),
                _ => {}
            }
        }
        reader.close(None).await.unwrap();
        ids
    });

    wait_until("both subscribers are connected", WAIT, || async {
        server.metric("deaddrop_subscribers").await == Some(2.0)
    })
    .await;

    for tag in 1..=TOTAL {
        let a = server.append(&entry(tag)).await;
        assert_eq!(a.id.get(), tag);
        if tag % 32 == 0 {
            let mut rx = seen_rx.clone();
            tokio::time::timeout(WAIT, rx.wait_for(|&id| id >= tag))
                .await
                .expect("the reading subscriber keeps up")
                .unwrap();
        }
    }
    wait_until(
        "the stalled subscriber is cut loose",
        Duration::from_secs(40),
        || async { server.metric("deaddrop_subscribers").await == Some(1.0) },
    )
    .await;

    // What the stalled one gets when it finally reads: part of the stream, then the end.
    let mut got = 0u64;
    let mut close_code = None;
    loop {
        match tokio::time::timeout(WAIT, stalled.next()).await.unwrap() {
            Some(Ok(Message::Binary(_))) => got += 1,
            Some(Ok(Message::Close(frame))) => {
                close_code = frame.map(|f| f.code);
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    assert!(got < TOTAL, "the stalled subscriber was not cut loose");
    if let Some(code) = close_code {
        assert_eq!(code, CloseCode::from(CLOSE_LAGGED));
    }

    let mut rx = seen_rx.clone();
    tokio::time::timeout(WAIT, rx.wait_for(|&id| id >= TOTAL))
        .await
        .unwrap()
        .unwrap();
    let ids = reading.await.unwrap();
    assert_eq!(ids, (1..=TOTAL).collect::<Vec<_>>(), "everything, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_appends_and_rejections_by_reason() {
    let server = InProcess::start(config(0), Backing::Memory).await;
    for tag in 0..3 {
        server.append(&entry(tag)).await;
    }
    for body in [vec![], vec![7u8; 100]] {
        let res = server.post_entry(&body).await.unwrap();
        expect_problem(res, 400, "entry-size").await;
    }
    let res = server
        .http()
        .post(server.endpoint("/v1/entries"))
        .header("content-type", "text/plain")
        .body(entry(9))
        .send()
        .await
        .unwrap();
    expect_problem(res, 415, "unsupported-media-type").await;
    server.read(0, 10).await;

    let res = server
        .http()
        .get(server.endpoint("/metrics"))
        .send()
        .await
        .unwrap();
    assert!(res
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = res.text().await.unwrap();
    let m = |s: &str| metric_value(&text, s);
    assert_eq!(m("deaddrop_appends_total"), Some(3.0), "{text}");
    assert_eq!(
        m("deaddrop_append_bytes_total"),
        Some(3.0 * entry_len() as f64)
    );
    assert_eq!(
        m(r#"deaddrop_rejections_total{reason="entry-size"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        m(r#"deaddrop_rejections_total{reason="unsupported-media-type"}"#),
        Some(1.0)
    );
    assert_eq!(
        m(r#"deaddrop_rejections_total{reason="pow-insufficient"}"#),
        None
    );
    assert_eq!(m("deaddrop_read_entries_total"), Some(3.0));
    assert_eq!(m("deaddrop_append_seconds_count"), Some(3.0));
    assert!(!text.contains("127.0.0.1"));
}

/// A repeat of bytes the ledger holds is answered `200` with the first id, stores nothing and
/// does not move `newest_id`, also when the repeats race each other, on every store; once the
/// entry expired, the same bytes are a new entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_are_answered_with_the_first_id_and_stored_once() {
    for backing in [Backing::Embedded, Backing::Memory] {
        let server = InProcess::start(config(0), backing).await;
        for tag in 0..5 {
            server.append(&entry(tag)).await;
        }
        let (status, first) = server.append_answer(&entry(1)).await;
        assert_eq!(
            (status, first.id.get(), first.repeat),
            (StatusCode::OK, 2, true)
        );
        let stored = server.read(0, 100).await;
        assert_eq!(first.time, stored.records[1].time_ms, "the first time, too");

        // Eight racing repeats of a new entry: one is stored, all get its id.
        let fresh = entry(99);
        let answers = futures_util::future::join_all(
            (0..8).map(|_| async { server.append_answer(&fresh).await }),
        )
        .await;
        let ids: std::collections::BTreeSet<u64> =
            answers.iter().map(|(_, a)| a.id.get()).collect();
        assert_eq!(ids.len(), 1, "{answers:?}");
        assert_eq!(
            answers
                .iter()
                .filter(|(s, _)| *s == StatusCode::CREATED)
                .count(),
            1
        );
        let info = server.info().await;
        assert_eq!((info.newest_id.map(u64::from), info.entries), (Some(6), 6));
        assert_eq!(server.read(0, 100).await.ids(), vec![1, 2, 3, 4, 5, 6]);
        let repeats = server.metric("deaddrop_repeated_appends_total").await;
        assert_eq!(repeats, Some(8.0), "1 + 7 repeats");
    }

    // Expired bytes are new again.
    let short = Config {
        lifetime: Duration::from_secs(2),
        min_lifetime: Duration::from_secs(1),
        ..config(0)
    };
    let server = InProcess::start(short, Backing::Embedded).await;
    server.append(&entry(1)).await;
    wait_until("the entry expired", WAIT, || async {
        server.info().await.entries == 0
    })
    .await;
    let (status, again) = server.append_answer(&entry(1)).await;
    assert_eq!((status, again.id.get()), (StatusCode::CREATED, 2));
}

/// Entries stored before a restart are repeats after it: the set is rebuilt from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeats_of_entries_stored_before_a_restart_are_recognised() {
    let dir = tempfile::tempdir().unwrap();
    let len = Suite::XWing.layout().entry_len;
    let serve = |store: Arc<dyn Store>| async move {
        let ledger = Ledger::new(config(0), store).expect("a valid config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = Api::new(&format!("http://{}", listener.local_addr().unwrap()));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(deaddrop_ledger::run(listener, ledger, async move {
            let _ = stopped.await;
        }));
        (api, stop, task)
    };
    let (api, stop, task) = serve(Arc::new(LogStore::open(dir.path(), len).unwrap())).await;
    for tag in 0..3 {
        api.append(&entry(tag)).await;
    }
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();

    let (api, _stop, _task) = serve(Arc::new(LogStore::open(dir.path(), len).unwrap())).await;
    let (status, a) = api.append_answer(&entry(2)).await;
    assert_eq!((status, a.id.get()), (StatusCode::OK, 3));
    assert_eq!(api.info().await.newest_id.map(u64::from), Some(3));
}

/// A store whose appends fail on demand the way a full disk fails them, naming a path and the
/// OS error (a fault-injection seam: the log store itself is tested on a full disk elsewhere).
struct Failing {
    inner: MemoryStore,
    fail: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl Store for Failing {
    fn kind(&self) -> &'static str {
        "failing"
    }
    fn ledger_id(&self) -> deaddrop_ledger::store::LedgerId {
        self.inner.ledger_id()
    }
    async fn append(
        &self,
        entry: bytes::Bytes,
        now_ms: u64,
    ) -> Result<deaddrop_ledger::store::Appended, deaddrop_ledger::store::StoreError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(deaddrop_ledger::store::StoreError::Io {
                context: "writing /srv/secret-data-path/seg-00000000000000000001.log".into(),
                source: std::io::Error::from_raw_os_error(28),
            });
        }
        self.inner.append(entry, now_ms).await
    }
    async fn read(
        &self,
        after: deaddrop_ledger::store::EntryId,
        limit: usize,
    ) -> Result<Vec<deaddrop_ledger::store::Record>, deaddrop_ledger::store::StoreError> {
        self.inner.read(after, limit).await
    }
    fn bounds(&self) -> deaddrop_ledger::store::Bounds {
        self.inner.bounds()
    }
    async fn expire(&self, cutoff_ms: u64) -> Result<u64, deaddrop_ledger::store::StoreError> {
        self.inner.expire(cutoff_ms).await
    }
    fn spawn_feed(&self, tx: tokio::sync::broadcast::Sender<deaddrop_ledger::store::Record>) {
        self.inner.spawn_feed(tx)
    }
    async fn close(&self) -> Result<(), deaddrop_ledger::store::StoreError> {
        self.inner.close().await
    }
}

/// Store failures are visible: appends get `503 store-unavailable` whose detail names no path
/// and no OS error, `/readyz` says `503` while the store fails and `200` once it works again,
/// `/healthz` stays `200` (liveness), and a metric counts the failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_failures_are_visible_but_reveal_nothing_to_clients() {
    let store = Arc::new(Failing {
        inner: MemoryStore::new(),
        fail: std::sync::atomic::AtomicBool::new(false),
    });
    let ledger = Ledger::new(config(0), store.clone()).expect("a valid config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = Api::new(&format!("http://{}", listener.local_addr().unwrap()));
    let (_stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(deaddrop_ledger::run(listener, ledger, async move {
        let _ = stopped.await;
    }));
    let readyz = || async {
        api.http()
            .get(api.endpoint("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
    };
    api.append(&entry(1)).await;
    assert_eq!(readyz().await, StatusCode::OK);

    store.fail.store(true, std::sync::atomic::Ordering::SeqCst);
    for tag in 2..5 {
        let res = api.post_entry(&entry(tag)).await.unwrap();
        let refusal = expect_problem(res, 503, "store-unavailable").await;
        let detail = format!("{:?}", refusal.problem);
        assert!(
            !detail.contains("secret-data-path") && !detail.contains("No space"),
            "the detail reveals the server's path or OS error: {detail}"
        );
    }
    assert_eq!(readyz().await, StatusCode::SERVICE_UNAVAILABLE);
    let health = api
        .http()
        .get(api.endpoint("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK, "liveness is not readiness");
    assert_eq!(api.metric("deaddrop_store_errors_total").await, Some(3.0));

    store.fail.store(false, std::sync::atomic::Ordering::SeqCst);
    api.append(&entry(5)).await;
    assert_eq!(
        readyz().await,
        StatusCode::OK,
        "ready again after a success"
    );
}

/// Readers that stop reading cannot starve the others: page bodies count against one memory
/// budget, and a reader that takes nothing for the write-stall limit (15 s) is disconnected,
/// which frees its share; an honest reader then gets its page within the request time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_readers_are_cut_off_and_cannot_starve_others() {
    use tokio::io::AsyncWriteExt;
    let server = InProcess::start(config(0), Backing::Memory).await;
    // 1024 entries of 4 KiB: a full page is 4 MiB, so 20 stalled pages are more than the
    // 64 MiB budget.
    append_concurrently(&server, 8, 128).await;
    let addr: std::net::SocketAddr = server.base().trim_start_matches("http://").parse().unwrap();
    let mut stalled = Vec::new();
    for _ in 0..20 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut s = socket.connect(addr).await.unwrap();
        s.write_all(b"GET /v1/entries?after=0&limit=1024 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        stalled.push(s);
    }
    wait_until("the stalled readers hold the budget", WAIT, || async {
        server.metric("deaddrop_reads_total").await >= Some(15.0)
    })
    .await;
    let started = std::time::Instant::now();
    let page = server.read(0, 1024).await;
    assert_eq!(page.records.len(), 1024);
    assert!(
        started.elapsed() < Duration::from_secs(29),
        "the honest read waited {:?}",
        started.elapsed()
    );
    drop(stalled);
}

/// `max_bytes` is a hard bound on the bytes held: concurrent appends cannot together pass it,
/// the one that would is refused `503 ledger-full`, and the lifetime then shortens so that
/// appends are taken again once older entries expired, the bound holding throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_bytes_is_a_hard_bound_and_the_lifetime_makes_room() {
    let bound = 10;
    let len = entry_len() as u64;
    for backing in [Backing::Embedded, Backing::Memory] {
        // No adaption possible: full stays full.
        let fixed = Config {
            max_bytes: bound * len,
            lifetime: Duration::from_secs(3600),
            min_lifetime: Duration::from_secs(3600),
            ..config(0)
        };
        let server = InProcess::start(fixed, backing).await;
        let api: &Api = &server;
        let answers = futures_util::future::join_all(
            (0..25).map(|tag| async move { api.post_entry(&entry(tag)).await.unwrap() }),
        )
        .await;
        let mut created = 0;
        for res in answers {
            if res.status() == StatusCode::CREATED {
                created += 1;
            } else {
                let r = expect_problem(res, 503, "ledger-full").await;
                assert!(r.headers.contains_key(reqwest::header::RETRY_AFTER));
            }
        }
        assert_eq!(
            created, bound,
            "exactly max_bytes / entry_bytes appends fit"
        );
        assert_eq!(server.info().await.entries, bound);
        let res = server.post_entry(&entry(100)).await.unwrap();
        expect_problem(res, 503, "ledger-full").await;
    }

    // With room to adapt, the lifetime shortens and the ledger takes appends again.
    let adaptive = Config {
        max_bytes: bound * len,
        lifetime: Duration::from_secs(4),
        min_lifetime: Duration::from_secs(1),
        ..config(0)
    };
    let server = InProcess::start(adaptive, Backing::Embedded).await;
    for tag in 0..bound {
        server.append(&entry(tag)).await;
    }
    let res = server.post_entry(&entry(200)).await.unwrap();
    expect_problem(res, 503, "ledger-full").await;
    let mut tag = 300;
    wait_until("an append is taken again", WAIT, || {
        tag += 1;
        let e = entry(tag);
        let server = &server;
        async move {
            let status = server.post_entry(&e).await.unwrap().status();
            assert!(server.info().await.entries <= bound, "past max_bytes");
            status == StatusCode::CREATED
        }
    })
    .await;
    assert!(
        server.info().await.lifetime_s < 4,
        "the lifetime shortened to make room"
    );
}

//! `deaddrop serve`, run as the real binary on a loopback port, against the contract in
//! `docs/API.md`: appends and paged reads, gaps after expiry, durability across `kill -9` and
//! SIGTERM, refusals of bad input, proof of work, WebSocket push (with a stalled subscriber),
//! privacy of the logs and the metrics. Every test has its own data directory and waits on
//! conditions with timeouts, never on fixed sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deaddrop_api::{frames, StreamHello, CLOSE_LAGGED};
use deaddrop_proto::{pow, Entry, Stamp, Suite};
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use support::{entry, entry_len, expect_problem, wait_until, Home, Server};

const WAIT: Duration = Duration::from_secs(20);

/// `(id, bytes)` of every append that got its `201`.
type Acked = Arc<Mutex<Vec<(u64, Vec<u8>)>>>;

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

/// The next binary message of a push stream, decoded as exactly one frame.
async fn next_frame<S>(ws: &mut S) -> (u64, u64, Vec<u8>)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let msg = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("a pushed entry in time")
        .expect("the stream stays open")
        .expect("a WebSocket message");
    let Message::Binary(data) = msg else {
        panic!("expected a binary frame, got {msg:?}");
    };
    let mut it = frames(&data, entry_len());
    let f = it.next().expect("one frame").expect("a well-formed frame");
    assert!(it.next().is_none(), "one frame per message");
    (f.id.get(), f.time_ms, f.entry.to_vec())
}

/// Appends from `tasks` concurrent clients until `stop` is set or a request fails (the server
/// went away), each sending at most `per_task` entries; returns what was acknowledged.
fn spawn_appenders(
    server: &Server,
    tasks: u64,
    per_task: u64,
    acked: Acked,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..tasks)
        .map(|t| {
            let http = server.http.clone();
            let url = server.url("/v1/entries");
            let acked = acked.clone();
            tokio::spawn(async move {
                for seq in 0..per_task {
                    let bytes = entry((t << 32) | seq);
                    let res = http
                        .post(&url)
                        .header("content-type", "application/octet-stream")
                        .body(bytes.clone())
                        .send()
                        .await;
                    let Ok(res) = res else { return };
                    if res.status() != StatusCode::CREATED {
                        return;
                    }
                    let Ok(body) = res.bytes().await else { return };
                    let a: deaddrop_api::Accepted = serde_json::from_slice(&body).unwrap();
                    acked.lock().unwrap().push((a.id.get(), bytes));
                }
            })
        })
        .collect()
}

/// Restarts on the same data dir and checks every acknowledged entry is there, byte for byte,
/// that ids are dense, and that a new append gets an id above every old one.
async fn assert_acknowledged_entries_survive(home: &Home, acked: &[(u64, Vec<u8>)]) {
    let server = home.serve(&["--pow-bits", "0"]).await;
    let stored = server.read_all().await;
    let newest = stored.keys().next_back().copied().unwrap_or(0);
    assert_eq!(
        stored.keys().copied().collect::<Vec<_>>(),
        (1..=newest).collect::<Vec<_>>(),
        "ids are dense from 1"
    );
    for (id, bytes) in acked {
        let got = stored
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged id {id} lost"));
        assert!(got == bytes, "acknowledged id {id} changed");
    }
    let max_acked = acked.iter().map(|a| a.0).max().unwrap();
    assert!(newest >= max_acked);
    let info = server.info().await;
    assert_eq!(info.newest_id.map(u64::from), Some(newest));
    let next = server.append(&entry(u64::MAX)).await;
    assert_eq!(next.id, newest + 1, "ids continue above the old ones");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_get_increasing_ids_and_read_back_in_pages() {
    let home = Home::new();
    let server = home.serve(&["--pow-bits", "0"]).await;
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
    for ((id, time, bytes), (a, sent_bytes)) in got.iter().zip(&sent) {
        assert_eq!((*id, *time), (a.id.get(), a.time));
        assert!(bytes == sent_bytes, "entry {id} reads back unchanged");
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
    let home = Home::new();
    let server = home
        .serve(&[
            "--pow-bits",
            "0",
            "--lifetime",
            "2s",
            "--min-lifetime",
            "1s",
        ])
        .await;
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
    assert_eq!(page.gap().as_deref(), Some("1-3"));
    assert_eq!(page.next_after(), 3, "a reader resumes past the gap");
    assert_eq!((page.oldest(), page.newest()), (None, Some(3)));
    assert_eq!(server.read(1, 100).await.gap().as_deref(), Some("2-3"));
    assert_eq!(server.read(3, 100).await.gap(), None);

    // New entries after the gap: the gap still names exactly the expired ids.
    let a = server.append(&entry(10)).await;
    let b = server.append(&entry(11)).await;
    assert_eq!((a.id.get(), b.id.get()), (4, 5));
    let page = server.read(0, 100).await;
    assert_eq!(page.gap().as_deref(), Some("1-3"));
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
async fn acknowledged_appends_survive_kill_9_and_ids_continue() {
    let home = Home::new();
    let mut server = home.serve(&["--pow-bits", "0"]).await;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let tasks = spawn_appenders(&server, 8, 5_000, acked.clone());
    wait_until("200 appends were acknowledged", WAIT, || async {
        acked.lock().unwrap().len() >= 200
    })
    .await;
    server.kill9();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 200);
    let mut ids: Vec<u64> = acked.iter().map(|a| a.0).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), acked.len(), "no id acknowledged twice");
    assert_acknowledged_entries_survive(&home, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_appends_in_flight_exits_cleanly_and_loses_nothing() {
    let home = Home::new();
    let mut server = home.serve(&["--pow-bits", "0"]).await;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let tasks = spawn_appenders(&server, 8, 5_000, acked.clone());
    wait_until("100 appends were acknowledged", WAIT, || async {
        acked.lock().unwrap().len() >= 100
    })
    .await;
    server.terminate();
    let status = server.wait_exit(WAIT).await;
    assert!(status.success(), "{status}:\n{}", server.stderr());
    assert!(server.stderr().contains("deaddrop ledger stopped"));
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert_acknowledged_entries_survive(&home, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_typed_problems_and_the_server_keeps_serving() {
    let home = Home::new();
    let server = home.serve(&["--pow-bits", "8"]).await;
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
        let mut req = server.http.request(case.method, server.url(&case.path));
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
        .http
        .get(server.url("/healthz"))
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
    let stored = server.read_all().await;
    assert_eq!(stored, BTreeMap::from([(1, first), (2, second)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stamped_entry_is_accepted_and_unstamped_one_refused() {
    let home = Home::new();
    let server = home.serve(&["--pow-bits", "10", "--store", "memory"]).await;
    let res = server
        .http
        .get(server.url("/v1/info"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers().get("deaddrop-pow-bits").unwrap(), "10");
    let bits = server.info().await.pow_bits;
    assert_eq!(bits, 10);

    let mut e = unstamped_entry(bits, 500);
    let res = server.post_entry(e.as_bytes()).await.unwrap();
    let p = expect_problem(res, 400, "pow-insufficient").await;
    assert!(p.detail.contains("10 bits"), "{}", p.detail);

    assert!(pow::solve(&mut e, bits, 0x0123_4567_89ab_cdef));
    let a = server.append(e.as_bytes()).await;
    assert_eq!(a.id.get(), 1);
    assert!(server.read(0, 10).await.records[0].2 == e.as_bytes());

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
    let home = Home::new();
    let server = home.serve(&["--pow-bits", "0", "--store", "memory"]).await;
    let mut sent = Vec::new();
    for tag in 0..3 {
        let bytes = entry(tag);
        sent.push((server.append(&bytes).await.id, bytes));
    }

    let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url("/v1/stream?after=0"))
        .await
        .expect("a WebSocket connection");
    let hello = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let Message::Text(hello) = hello else {
        panic!("expected the hello text message, got {hello:?}");
    };
    let hello: StreamHello = serde_json::from_str(&hello).unwrap();
    assert_eq!(hello.kind, "hello");
    assert_eq!(
        (
            hello.oldest_id.map(u64::from),
            hello.newest_id.map(u64::from),
            hello.gap
        ),
        (Some(1), Some(3), None)
    );

    for (id, bytes) in &sent {
        let (got_id, _, got) = next_frame(&mut ws).await;
        assert_eq!(*id, got_id, "backlog in id order");
        assert!(&got == bytes);
    }

    // Live: appended after the subscriber connected; it only waits on the socket.
    let mut live = Vec::new();
    for tag in 10..15 {
        let bytes = entry(tag);
        let a = server.append(&bytes).await;
        live.push((a.id.get(), a.time, bytes));
    }
    for (id, time, bytes) in &live {
        let got = next_frame(&mut ws).await;
        assert_eq!((got.0, got.1), (*id, *time), "live entries in id order");
        assert!(&got.2 == bytes);
    }

    // A second subscriber from the middle gets only what follows.
    let (mut mid, _) = tokio_tungstenite::connect_async(server.ws_url("/v1/stream?after=4"))
        .await
        .unwrap();
    let hello = tokio::time::timeout(WAIT, mid.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(hello.is_text());
    for want in 5..=8 {
        assert_eq!(next_frame(&mut mid).await.0, want);
    }
    ws.close(None).await.unwrap();
    mid.close(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_of_concurrent_appends_is_complete_and_in_id_order() {
    let home = Home::new();
    let server = home.serve(&["--pow-bits", "0"]).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url("/v1/stream?after=0"))
        .await
        .unwrap();
    let hello = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(hello.is_text());

    // Concurrent appends share a group commit and finish in any order; the stream may not.
    let acked = Arc::new(Mutex::new(Vec::new()));
    let tasks = spawn_appenders(&server, 8, 50, acked.clone());
    for t in tasks {
        t.await.unwrap();
    }
    let acked: BTreeMap<u64, Vec<u8>> = acked.lock().unwrap().iter().cloned().collect();
    assert_eq!(acked.len(), 400);
    for (id, bytes) in &acked {
        let (got, _, entry) = next_frame(&mut ws).await;
        assert_eq!(got, *id, "pushed in id order, none left out");
        assert!(&entry == bytes);
    }
    ws.close(None).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_subscriber_is_cut_loose_while_a_reading_one_gets_everything() {
    let home = Home::new();
    let config = home.write("ledger.toml", "subscriber_buffer = 64\n");
    let server = home
        .serve(&[
            "--pow-bits",
            "0",
            "--store",
            "memory",
            "--config",
            config.to_str().unwrap(),
        ])
        .await;

    // The stalled subscriber: a small receive buffer, and it never reads after the handshake.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.addr).await.unwrap();
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
async fn debug_logs_name_no_client_address_or_user_agent() {
    let home = Home::new();
    let mut server = home
        .serve_with_env(&["--pow-bits", "0"], &[("RUST_LOG", "debug")])
        .await;
    let probe = "deaddrop-privacy-probe/1.0";
    let http = reqwest::Client::builder()
        .no_proxy()
        .user_agent(probe)
        .build()
        .unwrap();
    let a = http
        .post(server.url("/v1/entries"))
        .header("content-type", "application/octet-stream")
        .body(entry(1))
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), StatusCode::CREATED);
    for path in [
        "/v1/info",
        "/v1/entries?after=0",
        "/v1/entries?limit=0",
        "/nope",
        "/metrics",
    ] {
        http.get(server.url(path)).send().await.unwrap();
    }
    http.post(server.url("/v1/entries"))
        .body(vec![0u8; 3])
        .send()
        .await
        .unwrap();
    http.get(server.url("/v1/stream")).send().await.unwrap();

    // A WebSocket subscriber from a port we know.
    let stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let client_port = stream.local_addr().unwrap().port();
    let (mut ws, _) = tokio_tungstenite::client_async(server.ws_url("/v1/stream?after=0"), stream)
        .await
        .unwrap();
    let hello = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(hello.is_text());
    assert_eq!(next_frame(&mut ws).await.0, 1);
    ws.close(None).await.unwrap();

    server.terminate();
    assert!(server.wait_exit(WAIT).await.success());
    let log = server.stderr();
    assert!(log.contains("DEBUG"), "debug logging is on:\n{log}");
    assert!(
        !log.contains(&format!("127.0.0.1:{client_port}")),
        "the log names a client address:\n{log}"
    );
    let listen = format!("http://{}", server.addr);
    assert!(
        !log.replace(&listen, "").contains("127.0.0.1"),
        "the log names an address other than its own:\n{log}"
    );
    let lower = log.to_ascii_lowercase();
    assert!(!lower.contains("user-agent"), "{log}");
    assert!(!lower.contains("privacy-probe"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_appends_and_rejections_by_reason() {
    let home = Home::new();
    let server = home.serve(&["--pow-bits", "0", "--store", "memory"]).await;
    for tag in 0..3 {
        server.append(&entry(tag)).await;
    }
    for body in [vec![], vec![7u8; 100]] {
        let res = server.post_entry(&body).await.unwrap();
        expect_problem(res, 400, "entry-size").await;
    }
    let res = server
        .http
        .post(server.url("/v1/entries"))
        .header("content-type", "text/plain")
        .body(entry(9))
        .send()
        .await
        .unwrap();
    expect_problem(res, 415, "unsupported-media-type").await;
    server.read(0, 10).await;

    let res = server
        .http
        .get(server.url("/metrics"))
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
    let m = |s: &str| support::metric_value(&text, s);
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

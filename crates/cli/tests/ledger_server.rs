//! `deaddrop serve`, run as the real binary on a loopback port, where only a process will do:
//! durability across `kill -9` and SIGTERM (restarting on the same port and data directory),
//! and the privacy of its log. The rest of the HTTP API is tested in-process in
//! `crates/ledger/tests/http.rs`. Every test has its own data directory and waits on conditions
//! with timeouts, never on fixed sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use deaddrop_harness::api::entry;
use deaddrop_harness::{wait_until, Api, Deaddrop, Serve, Subscriber, WAIT};
use reqwest::StatusCode;
use tokio_tungstenite::MaybeTlsStream;

const DEADDROP: Deaddrop = Deaddrop::new(env!("CARGO_BIN_EXE_deaddrop"));

/// `(id, bytes)` of every append that got its `201`.
type Acked = Arc<Mutex<Vec<(u64, Vec<u8>)>>>;

/// Appends from `tasks` concurrent clients until a request fails (the server went away), each
/// sending at most `per_task` entries; records what was acknowledged.
fn spawn_appenders(
    api: &Api,
    tasks: u64,
    per_task: u64,
    acked: Acked,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..tasks)
        .map(|t| {
            let api = api.clone();
            let acked = acked.clone();
            tokio::spawn(async move {
                for seq in 0..per_task {
                    let bytes = entry((t << 32) | seq);
                    let Ok(res) = api.post_entry(&bytes).await else {
                        return;
                    };
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

/// Restarts the stopped `server` (same port, same data directory) and checks every
/// acknowledged entry is there, byte for byte, that ids are dense, and that a new append gets
/// an id above every old one.
async fn assert_acknowledged_entries_survive(server: &mut Serve, acked: &[(u64, Vec<u8>)]) {
    server.restart().await;
    let stored: BTreeMap<u64, Vec<u8>> = server.read_all_by_id().await;
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
async fn acknowledged_appends_survive_kill_9_and_ids_continue() {
    let mut server = DEADDROP.serve().args(&["--pow-bits", "0"]).start().await;
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
    assert_acknowledged_entries_survive(&mut server, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_appends_in_flight_exits_cleanly_and_loses_nothing() {
    let mut server = DEADDROP.serve().args(&["--pow-bits", "0"]).start().await;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let tasks = spawn_appenders(&server, 8, 5_000, acked.clone());
    wait_until("100 appends were acknowledged", WAIT, || async {
        acked.lock().unwrap().len() >= 100
    })
    .await;
    server.terminate();
    let status = server.wait_exit(WAIT).await;
    assert!(status.success(), "{status}:\n{}", server.log());
    assert!(server.log().contains("deaddrop ledger stopped"));
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert_acknowledged_entries_survive(&mut server, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_name_no_client_address_or_user_agent() {
    let mut server = DEADDROP
        .serve()
        .args(&["--pow-bits", "0"])
        .env("RUST_LOG", "trace")
        .start()
        .await;
    let probe = "deaddrop-privacy-probe/1.0";
    let http = reqwest::Client::builder()
        .no_proxy()
        .user_agent(probe)
        .build()
        .unwrap();
    let a = http
        .post(server.endpoint("/v1/entries"))
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
        http.get(server.endpoint(path)).send().await.unwrap();
    }
    http.post(server.endpoint("/v1/entries"))
        .body(vec![0u8; 3])
        .send()
        .await
        .unwrap();
    http.get(server.endpoint("/v1/stream"))
        .send()
        .await
        .unwrap();

    // A WebSocket subscriber from a port we know.
    let stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let client_port = stream.local_addr().unwrap().port();
    let (ws, _) = tokio_tungstenite::client_async(
        server.ws_url("/v1/stream?after=0"),
        MaybeTlsStream::Plain(stream),
    )
    .await
    .unwrap();
    let mut ws = Subscriber::on(ws).await;
    assert_eq!(ws.next().await.id, 1);
    ws.close().await;

    server.terminate();
    assert!(server.wait_exit(WAIT).await.success());
    let log = server.log();
    assert!(log.contains("TRACE"), "trace logging is on:\n{log}");
    assert!(
        !log.contains(&format!("127.0.0.1:{client_port}")),
        "the log names a client address:\n{log}"
    );
    let listen = server.endpoint("");
    assert!(
        !log.replace(&listen, "").contains("127.0.0.1"),
        "the log names an address other than its own:\n{log}"
    );
    let lower = log.to_ascii_lowercase();
    assert!(!lower.contains("user-agent"), "{log}");
    assert!(!lower.contains("privacy-probe"), "{log}");
}

/// `--ready-file` holds the URL of the first stdout line (the real port of `127.0.0.1:0`) by the
/// time that line is printed, written whole (no temporary file left beside it), and the ledger
/// answers there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_file_holds_the_announced_url_once_listening() {
    let run = deaddrop_harness::temp_dir("deaddrop-ready");
    let ready = run.path().join("url");
    let server = DEADDROP
        .serve()
        .args(&["--store", "memory", "--ready-file", ready.to_str().unwrap()])
        .start()
        .await;
    assert_ne!(server.port(), 0);
    let text = std::fs::read_to_string(&ready).unwrap();
    assert_eq!(text, format!("{}\n", server.url()));
    let files: Vec<_> = std::fs::read_dir(run.path()).unwrap().collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(server.info().await.store, "memory");
}

/// Two servers never share one `--data`: the second exits non-zero at once, naming the
/// directory and the process that holds it, and the first keeps serving what it acknowledged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_data_refuses_to_start() {
    let server = DEADDROP.serve().args(&["--pow-bits", "0"]).start().await;
    let a = server.append(&entry(1)).await;
    let data = server.dir().join("data");
    assert!(data.is_dir(), "the harness keeps the data in DIR/data");

    let mut second = DEADDROP.command();
    second.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--pow-bits",
        "0",
        "--data",
    ]);
    second.arg(&data);
    let out = tokio::task::spawn_blocking(move || {
        deaddrop_harness::cli::run_command(second, None, std::time::Duration::from_secs(10))
    })
    .await
    .unwrap();
    assert!(!out.status.success(), "the second server ran: {out:?}");
    assert!(
        out.stderr.contains(&data.display().to_string())
            && out.stderr.contains(&format!("pid {}", server.pid())),
        "the refusal names the directory and the holder: {}",
        out.stderr
    );
    assert_eq!(server.read(0, 10).await.ids(), vec![a.id.get()]);
}

/// The value of the sample `name` (with its labels, exactly) in a metrics text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_carry_the_process_and_the_build() {
    let server = DEADDROP
        .serve()
        .args(&["--store", "memory", "--pow-bits", "0"])
        .start()
        .await;
    let text = server.metrics().await;
    let version = format!(
        "deaddrop_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(sample(&text, &version), Some(1.0), "{text}");
    let rss = sample(&text, "process_resident_memory_bytes").unwrap_or(0.0);
    assert!(rss > 1e6, "resident memory {rss}: {text}");
    let fds = sample(&text, "process_open_fds").unwrap_or(0.0);
    let max = sample(&text, "process_max_fds").unwrap_or(0.0);
    assert!(fds >= 4.0 && max >= fds, "fds {fds} of {max}: {text}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = sample(&text, "process_start_time_seconds").unwrap_or(0.0);
    assert!(
        (now - started).abs() < 600.0,
        "started {started}, now {now}"
    );
    let cpu = sample(&text, "process_cpu_seconds_total");
    assert!(cpu.is_some_and(|c| c >= 0.0), "{text}");
    assert!(
        text.contains("# TYPE process_cpu_seconds counter"),
        "{text}"
    );
    // The ledger's own metrics keep their names.
    assert!(sample(&text, "deaddrop_appends_total").is_some(), "{text}");
    // CPU time only grows.
    for _ in 0..50 {
        server.metrics().await;
    }
    let later = sample(&server.metrics().await, "process_cpu_seconds_total").unwrap_or(0.0);
    assert!(later >= cpu.unwrap_or(0.0));
}

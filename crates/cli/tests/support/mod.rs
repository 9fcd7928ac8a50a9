//! Shared by the ledger tests: the real `deaddrop serve` binary on a loopback port, started in a
//! temporary directory of its own and killed when dropped, and a small HTTP client for the API
//! of `docs/API.md`.
//!
//! The server listens on `127.0.0.1:0`; its address is read from the line it prints on stderr,
//! and readiness is a condition (`GET /healthz` answers 200), waited for with a timeout.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use deaddrop_api::header::{
    GAP as HEADER_GAP, NEWEST as HEADER_NEWEST, NEXT_AFTER as HEADER_NEXT_AFTER,
    OLDEST as HEADER_OLDEST,
};
use deaddrop_api::{frames, Accepted, Info, Problem};
use deaddrop_proto::Suite;
use reqwest::StatusCode;

/// The length of every entry on the xwing ledgers these tests run.
pub fn entry_len() -> usize {
    Suite::XWing.layout().entry_len
}

/// Deterministic, distinct entry bytes for `tag` (any bytes of the right length are an entry).
pub fn entry(tag: u64) -> Vec<u8> {
    let mut state = tag ^ 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(entry_len() + 8);
    while out.len() < entry_len() {
        // SplitMix64: enough to make every tag's bytes differ everywhere.
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_be_bytes());
    }
    out.truncate(entry_len());
    out
}

/// Waits until `check` returns true, asking again every 20 ms, or panics after `timeout`
/// naming `what`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A temporary directory for one test: the ledger's data, config files and server logs.
pub struct Home {
    dir: tempfile::TempDir,
    runs: AtomicUsize,
}

impl Default for Home {
    fn default() -> Self {
        Self::new()
    }
}

impl Home {
    /// A fresh, empty directory.
    pub fn new() -> Home {
        Home {
            dir: tempfile::Builder::new()
                .prefix("deaddrop-ledger-test")
                .tempdir()
                .expect("a temp dir"),
            runs: AtomicUsize::new(0),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The embedded store's data directory.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Writes `text` to a file in the directory and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("writing a test file");
        path
    }

    /// Starts `deaddrop serve` with `args` on `127.0.0.1:0` and this directory's data dir.
    pub async fn serve(&self, args: &[&str]) -> Server {
        self.serve_with_env(args, &[]).await
    }

    /// Like [`Home::serve`], with extra environment variables.
    pub async fn serve_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Server {
        let run = self.runs.fetch_add(1, Ordering::Relaxed);
        let stderr_path = self.dir.path().join(format!("serve-{run}.stderr"));
        let stderr = std::fs::File::create(&stderr_path).expect("a stderr file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_deaddrop"));
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data")
            .arg(self.data())
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("the deaddrop binary starts");
        let mut server = Server {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr_path,
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("an HTTP client"),
        };
        server.wait_ready().await;
        server
    }
}

/// A running `deaddrop serve`, killed (SIGKILL) when dropped.
pub struct Server {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    stderr_path: PathBuf,
    /// A client for requests the helpers below do not cover.
    pub http: reqwest::Client,
}

/// One read response, decoded.
#[derive(Debug)]
pub struct Page {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    /// `(id, time_ms, entry)` in the order received.
    pub records: Vec<(u64, u64, Vec<u8>)>,
}

impl Page {
    fn header_u64(&self, name: &str) -> Option<u64> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().parse().unwrap())
    }

    /// `deaddrop-next-after`.
    pub fn next_after(&self) -> u64 {
        self.header_u64(HEADER_NEXT_AFTER)
            .expect("every read names the next `after`")
    }

    /// `deaddrop-oldest-id`.
    pub fn oldest(&self) -> Option<u64> {
        self.header_u64(HEADER_OLDEST)
    }

    /// `deaddrop-newest-id`.
    pub fn newest(&self) -> Option<u64> {
        self.header_u64(HEADER_NEWEST)
    }

    /// `deaddrop-gap`, as written.
    pub fn gap(&self) -> Option<String> {
        self.headers
            .get(HEADER_GAP)
            .map(|v| v.to_str().unwrap().to_string())
    }

    /// The ids returned.
    pub fn ids(&self) -> Vec<u64> {
        self.records.iter().map(|r| r.0).collect()
    }
}

impl Server {
    async fn wait_ready(&mut self) {
        let started = Instant::now();
        let timeout = Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("polling the server") {
                panic!("deaddrop serve exited early ({status}):\n{}", self.stderr());
            }
            if self.addr.port() == 0 {
                if let Some(addr) = listening_address(&self.stderr()) {
                    self.addr = addr;
                }
            }
            if self.addr.port() != 0 {
                let ok = self
                    .http
                    .get(self.url("/healthz"))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == StatusCode::OK);
                if ok {
                    return;
                }
            }
            assert!(
                started.elapsed() < timeout,
                "deaddrop serve was not ready within {timeout:?}:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `http://127.0.0.1:PORT/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `ws://127.0.0.1:PORT/<path>`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// `kill -9`, and waits for the process to be gone.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit, at most `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("polling the server") {
                return status;
            }
            assert!(
                started.elapsed() < timeout,
                "deaddrop serve did not exit within {timeout:?}:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `POST /v1/entries` with the right content type.
    pub async fn post_entry(&self, bytes: &[u8]) -> reqwest::Result<reqwest::Response> {
        self.http
            .post(self.url("/v1/entries"))
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
    }

    /// Appends and expects `201 Created`.
    pub async fn append(&self, bytes: &[u8]) -> Accepted {
        let res = self.post_entry(bytes).await.expect("the append request");
        let status = res.status();
        let body = res.bytes().await.expect("the append response");
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).expect("an Accepted document")
    }

    /// `GET /v1/entries` with the given query parameters (raw, so tests can send nonsense).
    pub async fn read_query(&self, query: &str) -> Page {
        let res = self
            .http
            .get(self.url(&format!("/v1/entries{query}")))
            .send()
            .await
            .expect("the read request");
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.bytes().await.expect("the read response");
        let mut records = Vec::new();
        if status == StatusCode::OK {
            assert_eq!(
                headers.get("content-type").unwrap(),
                deaddrop_api::ENTRIES_MEDIA_TYPE
            );
            for f in frames(&body, entry_len()) {
                let f = f.expect("well-formed frames");
                records.push((f.id.get(), f.time_ms, f.entry.to_vec()));
            }
        }
        Page {
            status,
            headers,
            records,
        }
    }

    /// `GET /v1/entries?after=..&limit=..`, expecting 200.
    pub async fn read(&self, after: u64, limit: usize) -> Page {
        let page = self
            .read_query(&format!("?after={after}&limit={limit}"))
            .await;
        assert_eq!(page.status, StatusCode::OK);
        page
    }

    /// Every entry held, by id, read page by page as a client would.
    pub async fn read_all(&self) -> BTreeMap<u64, Vec<u8>> {
        let mut all = BTreeMap::new();
        let mut after = 0;
        loop {
            let page = self.read(after, 1024).await;
            if page.records.is_empty() {
                return all;
            }
            for (id, _, bytes) in page.records.iter().cloned() {
                assert!(id > after, "ids increase");
                assert!(all.insert(id, bytes).is_none(), "id {id} twice");
            }
            after = page.next_after();
        }
    }

    /// `GET /v1/info`.
    pub async fn info(&self) -> Info {
        let res = self
            .http
            .get(self.url("/v1/info"))
            .send()
            .await
            .expect("the info request");
        assert_eq!(res.status(), StatusCode::OK);
        serde_json::from_slice(&res.bytes().await.unwrap()).expect("an Info document")
    }

    /// `GET /metrics`, as text.
    pub async fn metrics(&self) -> String {
        let res = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("the metrics request");
        assert_eq!(res.status(), StatusCode::OK);
        res.text().await.unwrap()
    }

    /// The value of one sample in `/metrics`, e.g. `deaddrop_appends_total` or
    /// `deaddrop_rejections_total{reason="entry-size"}`.
    pub async fn metric(&self, sample: &str) -> Option<f64> {
        metric_value(&self.metrics().await, sample)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in the server's `listening on http://ADDR` line.
fn listening_address(stderr: &str) -> Option<SocketAddr> {
    let rest = stderr.split("listening on http://").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// The value of `sample` (name and labels exactly as exported) in a metrics text.
pub fn metric_value(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .filter_map(|l| l.strip_prefix(sample))
        .filter_map(|rest| rest.strip_prefix(' '))
        .find_map(|v| v.split_whitespace().next()?.parse().ok())
}

/// Decodes a problem+json response and checks its content type, status and type.
pub async fn expect_problem(res: reqwest::Response, status: u16, reason: &str) -> Problem {
    let got = res.status().as_u16();
    let ctype = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let body = res.bytes().await.expect("the error response");
    let text = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(got, status, "{reason}: {text}");
    assert_eq!(
        ctype.as_deref(),
        Some("application/problem+json"),
        "{reason}: {text}"
    );
    let p: Problem = serde_json::from_slice(&body).expect("a problem document");
    assert_eq!(
        p.kind.uri(),
        format!("urn:deaddrop:problem:{reason}"),
        "{text}"
    );
    assert_eq!(p.status, status, "{text}");
    assert!(!p.detail.is_empty() && !p.title.is_empty(), "{text}");
    p
}

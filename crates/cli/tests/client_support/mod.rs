//! Shared by the client tests (`tests/client_*.rs`): the real `deaddrop serve` binary on a
//! loopback port, people (a temporary home each) who run the real `deaddrop` client commands,
//! a follower of `deaddrop --json watch`, an appender of raw entries, and a tiny SOCKS5 proxy.
//!
//! Every child process is killed when its handle drops, and nothing waits a fixed time: waits
//! are conditions polled with a deadline.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use deaddrop_proto::rng::SystemRng;
use rand_core::RngCore;
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_deaddrop");
/// The passphrase every test person uses, distinctive enough to search files for.
pub const PASSPHRASE: &str = "pass-Kq7vW2xLmZ9rT4-phrase";
/// How long one command may take before the test fails (debug builds on a busy machine).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Polls `check` every 5 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < timeout,
            "timed out after {timeout:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A child process that is killed (and reaped) when dropped.
pub struct Running {
    pub child: Child,
}

impl Running {
    /// `kill -9` and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Drains a pipe line by line into a channel, from a thread of its own, so the child never
/// blocks on a full pipe.
fn lines_of(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                // Nobody listens any more; keep draining so the child is not blocked.
                continue;
            }
        }
    });
    rx
}

/// A command with a clean environment: nothing from the test runner's `DEADDROP_*` leaks in.
pub fn bare_command() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear();
    for keep in ["RUST_BACKTRACE", "TMPDIR"] {
        if let Ok(v) = std::env::var(keep) {
            cmd.env(keep, v);
        }
    }
    cmd
}

/// A ledger: `deaddrop serve` on `127.0.0.1:0` with its own data directory.
pub struct Ledger {
    pub url: String,
    pub port: u16,
    process: Running,
    dir: tempfile::TempDir,
}

impl Ledger {
    /// Starts `deaddrop serve` with `args` added (e.g. `--pow-bits 0`, `--suite rsa-oaep`) and
    /// waits until it says where it listens.
    pub fn start(args: &[&str]) -> Ledger {
        let dir = tempfile::Builder::new()
            .prefix("deaddrop-client-ledger")
            .tempdir()
            .expect("a temp dir");
        let mut cmd = bare_command();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path().join("data"))
            .args(args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("deaddrop serve starts");
        let stderr = lines_of(child.stderr.take().expect("piped stderr"));
        let mut process = Running { child };
        let started = Instant::now();
        let mut seen = Vec::new();
        let url = loop {
            match stderr.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => {
                    if let Some(at) = line.find("listening on http://") {
                        break line[at + "listening on ".len()..].trim().to_string();
                    }
                    seen.push(line);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("deaddrop serve {args:?} exited: {}", seen.join("\n"))
                }
            }
            assert!(
                process.running(),
                "deaddrop serve {args:?} exited: {seen:?}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "deaddrop serve did not say where it listens: {seen:?}"
            );
        };
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("a port in the URL");
        Ledger {
            url,
            port,
            process,
            dir,
        }
    }

    /// The ledger's data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server (`kill -9`).
    pub fn stop(&mut self) {
        self.process.kill();
    }
}

/// What a finished command left.
#[derive(Debug)]
pub struct Out {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// `{"error", "hint"}`, as every failing command prints it on stderr with `--json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorJson {
    pub error: String,
    pub hint: String,
}

impl Out {
    /// Panics with everything the command printed unless it succeeded.
    pub fn ok(self) -> Out {
        assert!(
            self.status.success(),
            "`{}` failed ({}):\nstdout: {}\nstderr: {}",
            self.what,
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Stdout as one JSON document of type `T`.
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_str(self.stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "`{}` printed no JSON of the expected shape ({e}):\n{}",
                self.what, self.stdout
            )
        })
    }

    /// Checks the command failed with `{"error", "hint"}` (both non-empty) as the only thing on
    /// stderr, and nothing on stdout; returns it.
    pub fn json_error(&self) -> ErrorJson {
        assert!(
            !self.status.success(),
            "`{}` should have failed:\nstdout: {}\nstderr: {}",
            self.what,
            self.stdout,
            self.stderr
        );
        assert!(
            self.stdout.trim().is_empty(),
            "`{}` failed but printed on stdout: {}",
            self.what,
            self.stdout
        );
        let e: ErrorJson = serde_json::from_str(self.stderr.trim()).unwrap_or_else(|e| {
            panic!(
                "`{}` did not print {{\"error\", \"hint\"}} on stderr ({e}):\n{}",
                self.what, self.stderr
            )
        });
        assert!(
            !e.error.trim().is_empty() && !e.hint.trim().is_empty(),
            "{e:?}"
        );
        e
    }
}

/// Runs `cmd` to its end with `input` on stdin, failing the test after `timeout`.
pub fn run_command(mut cmd: Command, input: Option<Vec<u8>>, timeout: Duration) -> Out {
    let what = format!("{cmd:?}");
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let mut stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut running = Running { child };
    let started = Instant::now();
    let status = loop {
        if let Some(status) = running.child.try_wait().expect("waiting for a child") {
            break status;
        }
        if started.elapsed() > timeout {
            running.kill();
            panic!("{what} did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    Out {
        what,
        status,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// `deaddrop card --json` and `init --json`: the parts the tests use.
#[derive(Debug, Deserialize)]
pub struct CardJson {
    pub card: String,
    pub fingerprint: String,
}

/// `deaddrop send --json`.
#[derive(Debug, Deserialize)]
pub struct SendJson {
    pub message_id: String,
    pub parts: usize,
    pub ids: Vec<u64>,
}

/// `deaddrop sync --json`: the contract's fields.
#[derive(Debug, Deserialize)]
pub struct SyncJson {
    pub scanned: u64,
    pub messages: u64,
    pub requests: u64,
    pub rejected: u64,
    pub gap: Option<[u64; 2]>,
}

/// One message of `deaddrop read NAME --json`.
#[derive(Debug, Deserialize)]
pub struct MessageJson {
    pub direction: String,
    pub text: String,
    pub time: u64,
    pub id: i64,
    pub verified: bool,
}

/// One request of `deaddrop requests --json`.
#[derive(Debug, Deserialize)]
pub struct RequestJson {
    pub id: i64,
    pub fingerprint: String,
    pub text: String,
    pub time: u64,
}

/// One row of `deaddrop inbox --json`: a conversation, or a pending request (`contact` null).
#[derive(Debug, Deserialize)]
pub struct InboxJson {
    pub contact: Option<String>,
    pub unread: u64,
    pub last_time: Option<u64>,
}

/// One line of `deaddrop --json watch`.
#[derive(Debug, Clone, Deserialize)]
pub struct WatchEventJson {
    pub event: String,
    pub contact: Option<String>,
    pub text: Option<String>,
    pub verified: Option<bool>,
    pub last_id: Option<u64>,
    pub why: Option<String>,
}

/// One user: a home directory of their own and the ledger (and proxy) they use.
pub struct Person {
    pub name: String,
    pub home: PathBuf,
    pub ledger: String,
    pub proxy: Option<String>,
    pub passphrase: Option<String>,
    dir: tempfile::TempDir,
}

impl Person {
    /// Someone who will use `ledger`; no identity yet (see [`Person::init`]).
    pub fn new(name: &str, ledger: &str) -> Person {
        let dir = tempfile::Builder::new()
            .prefix("deaddrop-client-home")
            .tempdir()
            .expect("a temp dir");
        Person {
            name: name.to_string(),
            // A directory `init` creates itself, so its mode is deaddrop's choice.
            home: dir.path().join("home"),
            ledger: ledger.to_string(),
            proxy: None,
            passphrase: Some(PASSPHRASE.to_string()),
            dir,
        }
    }

    /// `deaddrop --home H --ledger L [--proxy P] ARGS`, with the passphrase in the environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = bare_command();
        cmd.arg("--home")
            .arg(&self.home)
            .arg("--ledger")
            .arg(&self.ledger);
        if let Some(p) = &self.proxy {
            cmd.arg("--proxy").arg(p);
        }
        if let Some(p) = &self.passphrase {
            cmd.env("DEADDROP_PASSPHRASE", p);
        }
        cmd.args(args);
        cmd
    }

    /// Runs a command to its end.
    pub fn run(&self, args: &[&str]) -> Out {
        run_command(self.command(args), None, COMMAND_TIMEOUT)
    }

    /// Runs a command with `input` on stdin.
    pub fn run_with_input(&self, args: &[&str], input: Vec<u8>) -> Out {
        run_command(self.command(args), Some(input), COMMAND_TIMEOUT)
    }

    /// Runs `--json ARGS`, requires success, and parses stdout.
    pub fn json<T: DeserializeOwned>(&self, args: &[&str]) -> T {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.run(&all).ok().json()
    }

    /// `init --name NAME --suite SUITE`.
    pub fn init(&self, suite: &str) -> CardJson {
        self.json(&["init", "--name", &self.name, "--suite", suite])
    }

    /// `card --json`'s card.
    pub fn card(&self) -> String {
        self.json::<CardJson>(&["card"]).card
    }

    /// `contact add CARD --name NAME`.
    pub fn add(&self, card: &str, name: &str) {
        self.json::<serde_json::Value>(&["contact", "add", card, "--name", name]);
    }

    /// `send NAME TEXT`.
    pub fn send(&self, to: &str, text: &str) -> SendJson {
        self.json(&["send", to, text])
    }

    /// `sync`.
    pub fn sync(&self) -> SyncJson {
        self.json(&["sync"])
    }

    /// `read NAME`.
    pub fn read(&self, name: &str) -> Vec<MessageJson> {
        self.json(&["read", name])
    }

    /// `requests`.
    pub fn requests(&self) -> Vec<RequestJson> {
        self.json(&["requests"])
    }

    /// `inbox`.
    pub fn inbox(&self) -> Vec<InboxJson> {
        self.json(&["inbox"])
    }

    /// Starts `deaddrop --json watch`.
    pub fn watch(&self) -> Watcher {
        let mut cmd = self.command(&["--json", "watch"]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("deaddrop watch starts");
        let stdout = lines_of(child.stdout.take().expect("piped stdout"));
        let stderr = lines_of(child.stderr.take().expect("piped stderr"));
        Watcher {
            process: Running { child },
            stdout,
            stderr,
            seen: Vec::new(),
        }
    }
}

/// Two people on `ledger` who have each other as contacts (`b` and `a`).
pub fn pair(ledger: &str, suite: &str) -> (Person, Person) {
    let a = Person::new("alice", ledger);
    let b = Person::new("bob", ledger);
    std::thread::scope(|s| {
        s.spawn(|| a.init(suite));
        s.spawn(|| b.init(suite));
    });
    a.add(&b.card(), "b");
    b.add(&a.card(), "a");
    (a, b)
}

/// A running `deaddrop --json watch`.
pub struct Watcher {
    pub process: Running,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    /// Every line it printed so far.
    pub seen: Vec<String>,
}

impl Watcher {
    /// Waits for an event matching `want`, failing after `timeout`.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        want: impl Fn(&WatchEventJson) -> bool,
    ) -> WatchEventJson {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    let ev: WatchEventJson = serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("watch printed a non-event ({e}): {line}"));
                    if want(&ev) {
                        return ev;
                    }
                }
                Err(_) => {
                    let err: Vec<String> = self.stderr.try_iter().collect();
                    panic!(
                        "watch: no {what} within {timeout:?}; stdout so far: {:?}; stderr: {err:?}",
                        self.seen
                    )
                }
            }
        }
    }
}

/// Appends entries to the ledger at `url` over HTTP, `concurrency` at a time, and returns their
/// ids in the order given.
pub fn append_entries(url: &str, entries: Vec<Vec<u8>>, concurrency: usize) -> Vec<u64> {
    use futures_util::StreamExt;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let ledger = deaddrop_client::connect(url, None).expect("a ledger client");
    rt.block_on(async {
        futures_util::stream::iter(entries.into_iter().map(|e| {
            let l = ledger.clone();
            async move {
                l.append(e)
                    .await
                    .expect("the ledger accepts the entry")
                    .id
                    .get()
            }
        }))
        .buffered(concurrency)
        .collect::<Vec<u64>>()
        .await
    })
}

/// `n` random entries of `len` bytes: any bytes of the right length are an entry no one can
/// open, just like someone else's.
pub fn random_entries(n: usize, len: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| {
            let mut e = vec![0u8; len];
            SystemRng.fill_bytes(&mut e);
            e
        })
        .collect()
}

/// Where a SOCKS5 client asked to be connected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// ATYP 3: a name the proxy resolves.
    Domain(String, u16),
    /// ATYP 1 or 4: an address resolved by the client.
    Ip(SocketAddr),
}

/// A SOCKS5 proxy (RFC 1928: no authentication, CONNECT only, IPv4, IPv6 and domain targets)
/// on `127.0.0.1:0`, with names of its own it resolves (as Tor resolves `.onion` names no one
/// else can), recording every connection it makes.
pub struct Socks5 {
    pub port: u16,
    seen: Arc<Mutex<Vec<Target>>>,
    accepted: Arc<AtomicUsize>,
    refusing: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
    rt: Option<tokio::runtime::Runtime>,
}

impl Socks5 {
    /// Starts the proxy. `names` are resolved by it alone; other names by the system.
    pub fn start(names: &[(&str, IpAddr)]) -> Socks5 {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("the proxy binds");
        let port = listener.local_addr().expect("an address").port();
        let names: Arc<HashMap<String, IpAddr>> = Arc::new(
            names
                .iter()
                .map(|(n, ip)| (n.to_ascii_lowercase(), *ip))
                .collect(),
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let refusing = Arc::new(AtomicBool::new(false));
        let refused = Arc::new(AtomicUsize::new(0));
        let rules = Rules {
            names,
            seen: seen.clone(),
            refusing: refusing.clone(),
            refused: refused.clone(),
        };
        let a = accepted.clone();
        rt.spawn(async move {
            let rules = Arc::new(rules);
            while let Ok((conn, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                let rules = rules.clone();
                tokio::spawn(async move {
                    let _ = socks5_session(conn, &rules).await;
                });
            }
        });
        Socks5 {
            port,
            seen,
            accepted,
            refusing,
            refused,
            rt: Some(rt),
        }
    }

    /// `socks5h://127.0.0.1:PORT` (names resolved by the proxy).
    pub fn url_remote_dns(&self) -> String {
        format!("socks5h://127.0.0.1:{}", self.port)
    }

    /// `socks5://127.0.0.1:PORT` (names resolved by the client).
    pub fn url_local_dns(&self) -> String {
        format!("socks5://127.0.0.1:{}", self.port)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// While set, every CONNECT is answered "not allowed by ruleset" (and counted).
    pub fn refuse(&self, on: bool) {
        self.refusing.store(on, Ordering::SeqCst);
    }

    /// CONNECTs refused so far.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }

    /// Every CONNECT target asked for so far.
    pub fn targets(&self) -> Vec<Target> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops listening and drops every connection.
    pub fn stop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

impl Drop for Socks5 {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Rules {
    names: Arc<HashMap<String, IpAddr>>,
    seen: Arc<Mutex<Vec<Target>>>,
    refusing: Arc<AtomicBool>,
    refused: Arc<AtomicUsize>,
}

async fn socks5_session(mut conn: tokio::net::TcpStream, rules: &Rules) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    // Greeting: VER NMETHODS METHODS...
    let mut head = [0u8; 2];
    conn.read_exact(&mut head).await?;
    if head[0] != 5 {
        return Err(bad("not SOCKS5"));
    }
    let mut methods = vec![0u8; usize::from(head[1])];
    conn.read_exact(&mut methods).await?;
    if !methods.contains(&0) {
        conn.write_all(&[5, 0xff]).await?;
        return Err(bad("no acceptable method"));
    }
    conn.write_all(&[5, 0]).await?;
    // Request: VER CMD RSV ATYP DST.ADDR DST.PORT
    let mut req = [0u8; 4];
    conn.read_exact(&mut req).await?;
    let reply = |code: u8| [5, code, 0, 1, 0, 0, 0, 0, 0, 0];
    if req[0] != 5 || req[1] != 1 {
        conn.write_all(&reply(7)).await?;
        return Err(bad("only CONNECT"));
    }
    let target = match req[3] {
        1 => {
            let mut b = [0u8; 6];
            conn.read_exact(&mut b).await?;
            let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            Target::Ip(SocketAddr::new(ip.into(), u16::from_be_bytes([b[4], b[5]])))
        }
        4 => {
            let mut b = [0u8; 18];
            conn.read_exact(&mut b).await?;
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&b[..16]);
            Target::Ip(SocketAddr::new(
                Ipv6Addr::from(ip).into(),
                u16::from_be_bytes([b[16], b[17]]),
            ))
        }
        3 => {
            let mut len = [0u8; 1];
            conn.read_exact(&mut len).await?;
            let mut name = vec![0u8; usize::from(len[0])];
            conn.read_exact(&mut name).await?;
            let mut port = [0u8; 2];
            conn.read_exact(&mut port).await?;
            Target::Domain(
                String::from_utf8_lossy(&name).into_owned(),
                u16::from_be_bytes(port),
            )
        }
        _ => {
            conn.write_all(&reply(8)).await?;
            return Err(bad("unknown address type"));
        }
    };
    rules
        .seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(target.clone());
    if rules.refusing.load(Ordering::SeqCst) {
        rules.refused.fetch_add(1, Ordering::SeqCst);
        conn.write_all(&reply(2)).await?;
        return Ok(());
    }
    let addrs: Vec<SocketAddr> = match &target {
        Target::Ip(a) => vec![*a],
        Target::Domain(name, port) => match rules.names.get(&name.to_ascii_lowercase()) {
            Some(ip) => vec![SocketAddr::new(*ip, *port)],
            None => match tokio::net::lookup_host((name.as_str(), *port)).await {
                Ok(a) => a.collect(),
                Err(_) => Vec::new(),
            },
        },
    };
    let Ok(mut upstream) = tokio::net::TcpStream::connect(&addrs[..]).await else {
        conn.write_all(&reply(4)).await?;
        return Err(bad("target unreachable"));
    };
    conn.write_all(&reply(0)).await?;
    tokio::io::copy_bidirectional(&mut conn, &mut upstream).await?;
    Ok(())
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("an address").port()
}

/// The newest id the ledger at `url` assigned, asked directly (not through any proxy).
pub fn newest_id(url: &str) -> Option<u64> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let ledger = deaddrop_client::connect(url, None).expect("a ledger client");
    rt.block_on(ledger.info())
        .expect("the ledger answers")
        .newest_id
        .map(|id| id.get())
}

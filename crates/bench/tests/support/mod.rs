//! Shared by the tests of `deaddrop-bench`: the real binary run to its end with a deadline, in a
//! clean environment. Copied from the `deaddrop` command's test support (only what these tests
//! use) until the workspace has one shared test harness.
//!
//! None of these tests needs the `deaddrop` binary: every benchmark starts its ledger in its
//! own process.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_deaddrop-bench");

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
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
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

/// Runs `deaddrop-bench args` to its end, with the test runner's environment.
pub fn bench(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("the deaddrop-bench binary runs")
}

/// What a finished command left.
#[derive(Debug)]
pub struct Out {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
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
}

/// Runs `cmd` to its end, failing the test after `timeout`.
pub fn run_command(mut cmd: Command, timeout: Duration) -> Out {
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
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

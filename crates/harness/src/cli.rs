//! The real `deaddrop` client commands: a person is a home directory of their own; their
//! commands run with `--json` and are read back as the structs of [`deaddrop_client::output`],
//! the same the command prints. Also a follower of `deaddrop --json watch`, and appenders of raw
//! entries.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use deaddrop_client::output::{
    CardJson, ContactAddedJson, ErrorJson, InboxRowJson, InitJson, MessageJson, RequestJson,
    SendJson, SyncJson, WatchEventJson,
};
use serde::de::DeserializeOwned;

use crate::{wait_until_blocking, Deaddrop};

/// The passphrase every test person uses, distinctive enough to search files for.
pub const PASSPHRASE: &str = "pass-Kq7vW2xLmZ9rT4-phrase";
/// How long one command may take before the test fails (debug builds on a busy machine).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A child process that is killed (and reaped) when dropped.
pub struct Running {
    /// The process.
    pub child: Child,
}

impl Running {
    /// `kill -9`, and reaps it.
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
            // Once nobody listens, keep draining so the child is not blocked.
            let _ = tx.send(line);
        }
    });
    rx
}

/// What a finished command left.
#[derive(Debug)]
pub struct Out {
    /// The command, for failure messages.
    pub what: String,
    /// How it exited.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
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
    // Killed by its drop if the wait fails.
    let mut running = Running { child };
    let mut status = None;
    wait_until_blocking(&format!("{what} finished"), timeout, || {
        status = running.child.try_wait().expect("waiting for a child");
        status.is_some()
    });
    Out {
        status: status.expect("it finished"),
        what,
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
    }
}

/// One user: a home directory of their own and the ledger (and proxy) they use.
pub struct Person {
    bin: Deaddrop,
    /// The name they give themselves at `init`.
    pub name: String,
    /// `--home`.
    pub home: PathBuf,
    /// `--ledger`.
    pub ledger: String,
    /// `--proxy`, if any.
    pub proxy: Option<String>,
    /// `--ca-file`, if any.
    pub ca_file: Option<PathBuf>,
    /// `DEADDROP_PASSPHRASE`, if any ([`PASSPHRASE`] unless changed).
    pub passphrase: Option<String>,
    _dir: tempfile::TempDir,
}

impl Person {
    /// Someone who will use `ledger`; no identity yet (see [`Person::init`]).
    pub fn new(bin: Deaddrop, name: &str, ledger: &str) -> Person {
        let dir = crate::temp_dir("deaddrop-client-home");
        Person {
            bin,
            name: name.to_string(),
            // A directory `init` creates itself, so its mode is deaddrop's choice.
            home: dir.path().join("home"),
            ledger: ledger.to_string(),
            proxy: None,
            ca_file: None,
            passphrase: Some(PASSPHRASE.to_string()),
            _dir: dir,
        }
    }

    /// `deaddrop --home H --ledger L [--proxy P] [--ca-file F] ARGS`, with the passphrase in the
    /// environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = self.bin.command();
        cmd.arg("--home")
            .arg(&self.home)
            .arg("--ledger")
            .arg(&self.ledger);
        if let Some(p) = &self.proxy {
            cmd.arg("--proxy").arg(p);
        }
        if let Some(f) = &self.ca_file {
            cmd.arg("--ca-file").arg(f);
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
    pub fn init(&self, suite: &str) -> InitJson {
        self.json(&["init", "--name", &self.name, "--suite", suite])
    }

    /// `card`'s card.
    pub fn card(&self) -> String {
        self.json::<CardJson>(&["card"]).card
    }

    /// `contact add CARD --name NAME`.
    pub fn add(&self, card: &str, name: &str) -> ContactAddedJson {
        self.json(&["contact", "add", card, "--name", name])
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
    pub fn inbox(&self) -> Vec<InboxRowJson> {
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

/// Two people on `ledger` who have each other as contacts (see [`Deaddrop::pair`]).
pub fn pair(bin: Deaddrop, ledger: &str, suite: &str) -> (Person, Person) {
    let a = Person::new(bin, "alice", ledger);
    let b = Person::new(bin, "bob", ledger);
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
    /// The process.
    pub process: Running,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    /// Every line it printed so far.
    pub seen: Vec<String>,
}

impl Watcher {
    /// Waits for an event matching `want`, failing after `timeout`; every line must be an
    /// event.
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

/// Appends entries to the ledger at `url` through the client library, `concurrency` at a
/// time, and returns their ids in the order given. For code outside an async runtime.
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

/// The newest id the ledger at `url` assigned, asked directly (not through any proxy). For
/// code outside an async runtime.
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

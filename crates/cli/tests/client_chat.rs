//! `deaddrop chat` as the real binary: it refuses an unknown contact and a missing terminal
//! before touching the terminal, and in a real pseudo-terminal (`script` gives it one) it shows
//! a message as it arrives, sends what is typed on Enter, and quits with status 0 on Ctrl-C.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deaddrop_harness::cli::PASSPHRASE;
use deaddrop_harness::{wait_until_blocking, Deaddrop, Person, Serve};

const DEADDROP: Deaddrop = Deaddrop::new(env!("CARGO_BIN_EXE_deaddrop"));

/// What a terminal would take as a control sequence: the screen was touched.
fn touched_terminal(s: &str) -> bool {
    s.contains('\u{1b}')
}

#[test]
fn chat_with_an_unknown_name_fails_before_the_screen_opens() {
    // No ledger is needed to find that out; this one does not even listen.
    let url = format!("http://127.0.0.1:{}", deaddrop_harness::closed_port());
    let a = Person::new(DEADDROP, "a", &url);
    a.init("xwing");
    let out = a.run(&["chat", "nobody"]);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        out.stderr.contains("no contact named `nobody`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("contact list"),
        "a hint: {}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(!touched_terminal(&out.stderr), "{:?}", out.stderr);
    // Scripts get it as JSON like any error.
    let e = a.run(&["--json", "chat", "nobody"]).json_error();
    assert!(e.error.contains("nobody"), "{e:?}");
}

#[test]
fn chat_without_a_terminal_refuses_and_points_at_watch_and_send() {
    let url = format!("http://127.0.0.1:{}", deaddrop_harness::closed_port());
    let a = Person::new(DEADDROP, "a", &url);
    a.init("xwing");
    // Standard input is not a terminal here (and standard output a pipe).
    let out = a.run(&["chat"]);
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stderr.contains("needs a terminal"), "{}", out.stderr);
    assert!(out.stderr.contains("deaddrop watch"), "{}", out.stderr);
    assert!(out.stderr.contains("deaddrop send"), "{}", out.stderr);
    assert!(!touched_terminal(&out.stderr), "{:?}", out.stderr);
}

/// The chat in a pseudo-terminal of 100x30 made by util-linux `script`; what it draws
/// collects in a buffer, keys go in through `script`'s standard input.
struct Pty {
    child: std::process::Child,
    screen: Arc<Mutex<Vec<u8>>>,
}

impl Pty {
    fn start(p: &Person, args: &str) -> Option<Pty> {
        let quote = |s: &std::path::Path| format!("'{}'", s.display());
        let inner = format!(
            "stty rows 30 cols 100; exec {} --home {} --ledger '{}' {args}",
            quote(DEADDROP.path()),
            quote(&p.home),
            p.ledger
        );
        let mut cmd = Command::new("script");
        cmd.args(["-qfec", &inner, "/dev/null"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("TERM", "xterm-256color")
            .env("DEADDROP_PASSPHRASE", PASSPHRASE)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("skipped: cannot run `script` (util-linux) for a pseudo-terminal: {e}");
                return None;
            }
        };
        let screen = Arc::new(Mutex::new(Vec::new()));
        let mut stdout = child.stdout.take().unwrap();
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Some(Pty { child, screen })
    }

    fn shown(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    fn wait_for(&self, what: &str, text: &str) {
        wait_until_blocking(what, Duration::from_secs(30), || {
            self.shown().contains(text)
        });
    }

    fn keys(&mut self, bytes: &[u8]) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn chat_in_a_terminal_shows_what_arrives_sends_what_is_typed_and_quits_cleanly() {
    let ledger: Serve = DEADDROP
        .serve()
        .args(&["--pow-bits", "0", "--store", "memory"])
        .start_blocking();
    let url = ledger.url();
    let (a, b) = DEADDROP.pair(&url, "xwing");
    let Some(mut chat) = Pty::start(&b, "chat a") else {
        return;
    };
    // ratatui moves the cursor over blank cells instead of writing spaces: look for words.
    chat.wait_for("the chat drew its screen", "Chats");
    a.send("b", "ping-from-alice");
    chat.wait_for("the message arrived in the chat", "ping-from-alice");
    chat.keys(b"pong-from-bob\r");
    wait_until_blocking("bob's reply reached alice", Duration::from_secs(30), || {
        a.sync();
        a.read("b").iter().any(|m| m.text == "pong-from-bob")
    });
    // Ctrl-C: raw mode turns it into a key, and the chat leaves with 0.
    chat.keys(b"\x03");
    let mut status = None;
    wait_until_blocking("the chat quit", Duration::from_secs(10), || {
        status = chat.child.try_wait().unwrap();
        status.is_some()
    });
    let mut err = String::new();
    if let Some(mut e) = chat.child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.unwrap().success(), "{status:?}: {err}");
    // The terminal was given back: the alternate screen left, raw mode off (`script` shows
    // the sequences as they went out).
    let shown = chat.shown();
    assert!(
        shown.contains("\u{1b}[?1049h"),
        "entered the alternate screen"
    );
    assert!(shown.contains("\u{1b}[?1049l"), "left the alternate screen");
}

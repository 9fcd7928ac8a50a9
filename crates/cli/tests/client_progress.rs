//! Long work as a person sees it: a sync draws its progress on a terminal and nothing in a pipe
//! or with `--json`; Ctrl-C stops it between pages, says where, exits 130, and the next sync
//! resumes there losing and doubling nothing; a new identity is not warned about entries that
//! expired before it existed, an older one is.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use deaddrop_client::db::Db;
use deaddrop_client::keystore::Passphrase;
use deaddrop_harness::api::random_entries;
use deaddrop_harness::cli::{append_entries, Running, COMMAND_TIMEOUT, PASSPHRASE};
use deaddrop_harness::{wait_until_blocking, Deaddrop, Person, Serve};
use deaddrop_proto::Suite;

const DEADDROP: Deaddrop = Deaddrop::new(env!("CARGO_BIN_EXE_deaddrop"));

/// A ledger whose pages hold at most `page` entries.
fn ledger(page: usize, extra: &[&str]) -> (Serve, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ledger.toml");
    std::fs::write(&config, format!("max_page = {page}\n")).unwrap();
    let mut args = vec!["--pow-bits", "0", "--store", "memory", "--config"];
    args.push(config.to_str().unwrap());
    args.extend_from_slice(extra);
    (DEADDROP.serve().args(&args).start_blocking(), dir)
}

fn fill(url: &str, n: usize) {
    append_entries(url, random_entries(n, Suite::XWing.layout().entry_len), 16);
}

/// Whether `s` holds what redraws a line on a terminal.
fn redraws(s: &str) -> usize {
    let cr = s.matches('\r').count() - s.matches("\r\n").count();
    cr + ["\x1b[2K", "\x1b[1A", "\x1b[1G", "\x1b[K", "\x1b[0G"]
        .iter()
        .map(|e| s.matches(e).count())
        .sum::<usize>()
}

/// Runs `sh -c SCRIPT` on a pseudo-terminal (util-linux `script`), or `None` without one.
fn on_a_terminal(script: &str) -> Option<(i32, String)> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tty.out");
    let status = std::process::Command::new("script")
        .args(["-qefc", script, log.to_str().unwrap()])
        .env("DEADDROP_PASSPHRASE", PASSPHRASE)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    Some((
        status.code().unwrap_or(-1),
        std::fs::read_to_string(&log).unwrap_or_default(),
    ))
}

fn sync_script(p: &Person, args: &str) -> String {
    format!(
        "'{}' --home '{}' --ledger '{}' {args}",
        DEADDROP.path().display(),
        p.home.display(),
        p.ledger
    )
}

#[test]
fn sync_progress_is_drawn_on_a_terminal_and_nowhere_else() {
    let (ledger, _dir) = ledger(100, &[]);
    let url = ledger.url();
    fill(&url, 3000);
    let piped = DEADDROP.person("piped", &url);
    piped.init("xwing");
    let out = piped.run(&["sync"]).ok();
    assert_eq!(redraws(&out.stderr) + redraws(&out.stdout), 0, "{out:?}");
    assert!(!out.stderr.contains("\x1b["), "{out:?}");

    let tty = DEADDROP.person("tty", &url);
    tty.init("xwing");
    let Some((status, text)) = on_a_terminal(&sync_script(&tty, "sync")) else {
        eprintln!("skipped the terminal half: no `script`");
        return;
    };
    assert_eq!(status, 0, "{text}");
    assert!(redraws(&text) >= 1, "no progress drawn: {text:?}");
    assert!(text.contains("entries"), "{text:?}");
    assert!(text.contains("Scanned 3000 entries"), "{text:?}");

    // `--json` on a terminal: one document, nothing drawn.
    let j = DEADDROP.person("json", &url);
    j.init("xwing");
    let (status, text) = on_a_terminal(&sync_script(&j, "--json sync")).unwrap();
    assert_eq!(status, 0, "{text}");
    assert_eq!(redraws(&text), 0, "{text:?}");
    assert!(text.contains("{\"duplicates\""), "{text:?}");
}

#[test]
fn ctrl_c_stops_a_sync_between_pages_and_the_next_resumes_there() {
    let (ledger, _dir) = ledger(20, &[]);
    let url = ledger.url();
    let (a, b) = DEADDROP.pair(&url, "xwing");
    let mut sent = Vec::new();
    for i in 0..5 {
        fill(&url, 2000);
        let text = format!("message {i} between the noise");
        a.send("b", &text);
        sent.push(text);
    }
    let newest = deaddrop_harness::cli::newest_id(&url).unwrap();

    let db = Db::open(&b.home, &mut || Ok(Passphrase::new(PASSPHRASE.into()))).unwrap();
    // Kept under the ledger's id, which the sync records for the URL.
    let position = || db.known_position(&url, None).unwrap().1;
    let mut cmd = b.command(&["sync"]);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut sync = Running {
        child: cmd.spawn().unwrap(),
    };
    wait_until_blocking("the sync committed a page", COMMAND_TIMEOUT, || {
        position() > 0 || !sync.running()
    });
    let pid = sync.child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut status = None;
    wait_until_blocking("the interrupted sync exited", COMMAND_TIMEOUT, || {
        status = sync.child.try_wait().unwrap();
        status.is_some()
    });
    let status = status.unwrap();
    let mut stderr = String::new();
    sync.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let at = position();
    assert!(
        at < newest,
        "the sync ended before the interrupt ({at} of {newest})"
    );
    assert_eq!(status.code(), Some(130), "{stderr}");
    let said = format!("stopped at entry {at} of {newest}");
    assert!(stderr.contains(&said), "{said}: {stderr}");
    assert!(
        stderr.contains("the next sync resumes from there"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // The next sync goes on from there, and every message arrives once.
    let s = b.sync();
    assert_eq!(s.last_id, newest);
    assert!(s.scanned <= newest - at + 1, "{s:?} after {at}");
    let read = b.read("a");
    let texts: Vec<&str> = read.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, sent, "{read:?}");
}

#[test]
fn only_an_identity_that_existed_is_warned_about_expired_entries() {
    let (ledger, _dir) = ledger(1024, &["--lifetime", "8s"]);
    let url = ledger.url();
    let old = DEADDROP.person("old", &url);
    old.init("xwing");
    fill(&url, 30);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = deaddrop_client::connect(&url, None).unwrap();
    wait_until_blocking("the entries expired", Duration::from_secs(60), || {
        rt.block_on(client.info()).unwrap().entries == 0
    });

    // Made after every entry of the gap was gone: nothing in it can have been for it.
    let mut new = DEADDROP.person("new", &url);
    new.passphrase = None;
    new.run(&["init", "--name", "new", "--no-passphrase"]).ok();
    let out = new.run(&["sync"]).ok();
    assert!(!out.stderr.contains("expired"), "{}", out.stderr);
    let mut new2 = DEADDROP.person("new2", &url);
    new2.passphrase = None;
    new2.run(&["init", "--name", "new2", "--no-passphrase"])
        .ok();
    let j: deaddrop_client::output::SyncJson = new2.json(&["sync"]);
    assert_eq!(j.gap, None, "{j:?}");
    assert_eq!(j.gap_before_identity, Some([1, 30]), "{j:?}");

    // Made before them: they could have been for it, and it is told.
    let out = old.run(&["sync"]).ok();
    assert!(
        out.stderr.contains("entries 1 to 30 expired"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_mirror_draws_its_catch_up_on_a_terminal() {
    let (upstream, _dir) = ledger(1024, &[]);
    let url = upstream.url();
    fill(&url, 15_000);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tty.out");
    let serve = format!(
        "timeout 60 '{}' serve --listen 127.0.0.1:0 --store memory --mirror-of '{url}'",
        DEADDROP.path().display()
    );
    let mut script = match std::process::Command::new("script")
        .args(["-qefc", &serve, log.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(child) => Running { child },
        Err(_) => {
            eprintln!("skipped: no `script` to run a terminal");
            return;
        }
    };
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_until_blocking("the mirror caught up", COMMAND_TIMEOUT, || {
        read().contains("caught up with the upstream") || !script.running()
    });
    let text = read();
    script.kill();
    assert!(
        text.contains("caught up with the upstream at entry 15000"),
        "{text:?}"
    );
    assert!(text.contains("catching up"), "{text:?}");
    assert!(redraws(&text) >= 1, "{text:?}");
}

#[test]
fn a_long_send_draws_its_parts_on_a_terminal() {
    let (ledger, _dir) = ledger(1024, &[]);
    let (a, b) = DEADDROP.pair(&ledger.url(), "xwing");
    let text = "x".repeat(20_000);
    let Some((status, out)) = on_a_terminal(&sync_script(&a, &format!("send b {text}"))) else {
        eprintln!("skipped: no `script` to run a terminal");
        return;
    };
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("parts"), "{out:?}");
    assert!(redraws(&out) >= 1, "{out:?}");
    let parts: usize = out
        .split("Sent to b: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(parts > 1, "{out:?}");
    // In a pipe, nothing drawn.
    let piped = a.run(&["send", "b", &text]).ok();
    assert_eq!(redraws(&piped.stderr), 0, "{piped:?}");
    b.sync();
    assert_eq!(b.read("a").len(), 2);
}

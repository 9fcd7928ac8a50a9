//! A home that knows its ledger, and what the client does when the ledger is away or the URL
//! cannot work: `init --ledger` and `config` (settings kept in the encrypted database, checked
//! before they are stored, overridden by --ledger and DEADDROP_LEDGER); sync positions kept per
//! ledger id (two URLs of one ledger read it once; a ledger wiped at the same URL is read from
//! its start); `status`; `send` queueing at once when the ledger is down, and `outbox flush`,
//! `sync` and `watch` sending what waits, exactly once even when a flush is killed, a part
//! refused for good set aside without holding the others; URLs that cannot work refused at once
//! with the fix; and client options kept away from `serve`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use deaddrop_client::db::{position_key, Db};
use deaddrop_client::keystore::Passphrase;
use deaddrop_client::output::{
    CardJson, ConfigJson, FlushJson, InitJson, QueuedJson, SendJson, SettingJson, StatusJson,
    SyncJson, WatchEventJson,
};
use deaddrop_harness::api::random_entries;
use deaddrop_harness::cli::{
    append_entries, newest_id, run_command, Running, COMMAND_TIMEOUT, PASSPHRASE,
};
use deaddrop_harness::{closed_port, wait_until_blocking, Deaddrop, Out, Person, Serve};
use deaddrop_proto::Suite;

const DEADDROP: Deaddrop = Deaddrop::new(env!("CARGO_BIN_EXE_deaddrop"));

/// `deaddrop serve ARGS` on a loopback port (embedded store, so it can restart with its data).
fn ledger(args: &[&str]) -> Serve {
    DEADDROP
        .serve()
        .args(&["--pow-bits", "0"])
        .args(args)
        .start_blocking()
}

/// The id the ledger at `url` reports, in hex.
fn ledger_id_of(url: &str) -> Option<String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = deaddrop_client::connect(url, None).unwrap();
    rt.block_on(client.info())
        .unwrap()
        .ledger_id
        .map(|i| i.to_hex())
}

/// `deaddrop --home H ARGS` for `p`, without `--ledger`: the home's own ledger, unless `env`
/// names one.
fn bare(p: &Person, env: &[(&str, &str)], args: &[&str]) -> Out {
    let mut cmd = DEADDROP.command();
    cmd.arg("--home").arg(&p.home);
    if let Some(pass) = &p.passphrase {
        cmd.env("DEADDROP_PASSPHRASE", pass);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args);
    run_command(cmd, None, COMMAND_TIMEOUT)
}

/// [`bare`] with `--json`, which must succeed; its output parsed.
fn bare_json<T: serde::de::DeserializeOwned>(p: &Person, args: &[&str]) -> T {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    bare(p, &[], &all).ok().json()
}

/// Someone with a home but no identity yet, who will be told the ledger at `init`.
fn newcomer(name: &str) -> Person {
    // The harness's ledger is never passed: `bare` leaves it out.
    DEADDROP.person(name, "http://harness-ledger-unused.invalid:1")
}

fn init_with_ledger(p: &Person, url: &str) -> InitJson {
    bare_json(p, &["init", "--name", &p.name, "--ledger", url])
}

#[test]
fn init_remembers_its_ledger_and_every_command_uses_it_unless_told_otherwise() {
    let l = ledger(&["--store", "memory"]);
    let url = l.url();
    let (a, b) = (newcomer("alice"), newcomer("bob"));
    init_with_ledger(&a, &url);
    init_with_ledger(&b, &url);
    let card: deaddrop_client::output::CardJson = bare_json(&b, &["card"]);
    bare_json::<deaddrop_client::output::ContactAddedJson>(
        &a,
        &["contact", "add", &card.card, "--name", "b"],
    );
    let sent: SendJson = bare_json(&a, &["send", "b", "remembered"]);
    assert!(!sent.queued && sent.ids.len() == 1, "{sent:?}");
    let got: SyncJson = bare_json(&b, &["sync"]);
    assert_eq!(got.requests, 1, "{got:?}");

    let stored: SettingJson = bare_json(&a, &["config", "get", "ledger"]);
    assert_eq!(stored.value.as_deref(), Some(url.as_str()));
    let out = bare(&a, &[], &["config", "get", "ledger"]).ok();
    assert_eq!(out.stdout.trim(), url);
    let status: StatusJson = bare_json(&a, &["status"]);
    assert_eq!(
        (status.ledger.url.as_str(), status.ledger.source.as_str()),
        (url.as_str(), "home")
    );

    // --ledger and DEADDROP_LEDGER win over the home's, for one command.
    let elsewhere = format!("http://127.0.0.1:{}", closed_port());
    let e = bare(&a, &[], &["--json", "--ledger", &elsewhere, "sync"]).json_error();
    assert!(e.error.contains(&elsewhere), "{e:?}");
    let e = bare(&a, &[("DEADDROP_LEDGER", &elsewhere)], &["--json", "sync"]).json_error();
    assert!(e.error.contains(&elsewhere), "{e:?}");
    let out = bare(
        &a,
        &[("DEADDROP_LEDGER", &elsewhere)],
        &["--json", "status"],
    )
    .ok();
    let status: StatusJson = out.json();
    assert_eq!(status.ledger.source, "environment");
    let out = bare(&a, &[], &["--json", "status", "--ledger", &elsewhere]).ok();
    let status: StatusJson = out.json();
    assert_eq!(
        (status.ledger.url.as_str(), status.ledger.source.as_str()),
        (elsewhere.as_str(), "flag")
    );

    // Unset: the built-in default, and nothing else.
    let unset: SettingJson = bare_json(&a, &["config", "unset", "ledger"]);
    assert_eq!(unset.value, None);
    let status: StatusJson = bare_json(&a, &["status"]);
    assert_eq!(
        (status.ledger.url.as_str(), status.ledger.source.as_str()),
        ("http://127.0.0.1:8470", "default")
    );
    // Set again: used again.
    bare_json::<SettingJson>(&a, &["config", "set", "ledger", &url]);
    let sent: SendJson = bare_json(&a, &["send", "b", "again"]);
    assert!(!sent.queued, "{sent:?}");
}

#[test]
fn config_refuses_what_cannot_work_and_keeps_settings_encrypted() {
    let a = newcomer("alice");
    let url = format!("http://127.0.0.1:{}", closed_port());
    init_with_ledger(&a, &url);
    let refused = |args: &[&str]| {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        bare(&a, &[], &all).json_error()
    };
    let e = refused(&["config", "set", "ledger", "127.0.0.1:8470"]);
    assert!(
        e.hint
            .contains("add http:// or https://: http://127.0.0.1:8470"),
        "{e:?}"
    );
    let e = refused(&["config", "set", "ledger", "http://127.0.0.1:8470/v1"]);
    assert!(
        e.hint
            .contains("give the ledger's base URL without /v1: http://127.0.0.1:8470"),
        "{e:?}"
    );
    let e = refused(&["config", "set", "proxy", "http://127.0.0.1:9050"]);
    assert!(e.error.contains("socks5h://"), "{e:?}");
    let e = refused(&["config", "set", "ca_file", "/nonexistent/ca.pem"]);
    assert!(e.error.contains("/nonexistent/ca.pem"), "{e:?}");
    let e = refused(&["config", "set", "colour", "red"]);
    assert!(e.error.contains("no setting `colour`"), "{e:?}");
    let e = refused(&["init", "--name", "again", "--ledger", "localhost:1/v1"]);
    assert!(e.hint.contains("http://localhost:1"), "{e:?}");
    // Nothing of that was stored.
    let all: ConfigJson = bare_json(&a, &["config", "list"]);
    assert_eq!(
        all,
        ConfigJson {
            ca_file: None,
            ledger: Some(url.clone()),
            proxy: None
        }
    );

    // A proxy with a password: exact for scripts, the password hidden from people.
    let proxy = "socks5h://me:pa55word@127.0.0.1:9050";
    bare_json::<SettingJson>(&a, &["config", "set", "proxy", proxy]);
    let all: ConfigJson = bare_json(&a, &["config", "get"]);
    assert_eq!(all.proxy.as_deref(), Some(proxy));
    let out = bare(&a, &[], &["config", "list"]).ok();
    assert!(
        out.stdout.contains("socks5h://me:…@127.0.0.1:9050") && !out.stdout.contains("pa55word"),
        "{}",
        out.stdout
    );
    // The settings are in the encrypted database: no file of the home shows them.
    for entry in std::fs::read_dir(&a.home).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap_or_default();
        for needle in [url.as_bytes(), proxy.as_bytes(), b"pa55word".as_slice()] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle),
                "{} holds a setting in the clear",
                path.display()
            );
        }
    }
    let unset: SettingJson = bare_json(&a, &["config", "unset", "proxy"]);
    assert_eq!((unset.key.as_str(), unset.value), ("proxy", None));
}

#[test]
fn two_urls_of_one_ledger_share_one_position_and_it_is_read_once() {
    let l = ledger(&["--store", "memory"]);
    let (a, mut b) = DEADDROP.pair(&l.url(), "xwing");
    append_entries(
        &l.url(),
        random_entries(40, Suite::XWing.layout().entry_len),
        8,
    );
    a.send("b", "one");
    let first = b.sync();
    assert_eq!((first.messages, first.scanned), (1, 41), "{first:?}");
    let id = first.ledger_id.clone().expect("the ledger reports its id");
    b.ledger = format!("http://localhost:{}", l.port());
    let again = b.sync();
    assert_eq!(
        again.scanned, 0,
        "the same ledger under another URL was read again"
    );
    assert_eq!(again.ledger_id.as_deref(), Some(id.as_str()));
    a.send("b", "two");
    let next = b.sync();
    assert_eq!((next.messages, next.scanned), (1, 1), "{next:?}");
}

#[test]
fn a_position_kept_under_the_url_moves_to_the_ledger_id() {
    let l = ledger(&["--store", "memory"]);
    let url = l.url();
    let (a, b) = DEADDROP.pair(&url, "xwing");
    a.send("b", "old news");
    append_entries(&url, random_entries(9, Suite::XWing.layout().entry_len), 4);
    let newest = newest_id(&url).unwrap();
    {
        // What a client of the previous version left: its position kept under the URL.
        let mut db = Db::open(&b.home, &mut || Ok(Passphrase::new(PASSPHRASE.into()))).unwrap();
        db.apply_batch(&url, newest, Vec::new()).unwrap();
    }
    let s = b.sync();
    assert_eq!(s.scanned, 0, "{s:?}");
    assert_eq!(s.last_id, newest);
    let db = Db::open(&b.home, &mut || Ok(Passphrase::new(PASSPHRASE.into()))).unwrap();
    let id: deaddrop_api::LedgerId = s.ledger_id.unwrap().parse().unwrap();
    assert_eq!(db.last_id(&position_key(&url, Some(&id))).unwrap(), newest);
    assert_eq!(db.last_id(&url).unwrap(), 0, "the URL's position was moved");
}

#[test]
fn a_ledger_wiped_at_the_same_url_is_read_from_its_start() {
    let mut l = ledger(&[]);
    let url = l.url();
    let (a, b) = DEADDROP.pair(&url, "xwing");
    append_entries(&url, random_entries(30, Suite::XWing.layout().entry_len), 8);
    a.send("b", "before the wipe");
    let before = b.sync();
    assert_eq!((before.messages, before.last_id), (1, 31), "{before:?}");
    let old_id = before.ledger_id.clone().unwrap();

    // Its data wiped, the ledger starts again at id 1, at the same address.
    l.kill9();
    std::fs::remove_dir_all(l.dir().join("data")).unwrap();
    l.restart_blocking();
    a.send("b", "after the wipe");
    let out = b.run(&["sync"]).ok();
    assert!(
        out.stderr
            .contains("not the one this home read there before"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("after the wipe"), "{}", out.stdout);
    let texts: Vec<String> = b.read("a").into_iter().map(|m| m.text).collect();
    assert_eq!(texts, ["before the wipe", "after the wipe"]);

    // Told once: the next sync reads on from there.
    a.send("b", "and again");
    let s = b.sync();
    assert_eq!(
        (s.messages, s.previous_ledger_id.as_deref()),
        (1, None),
        "{s:?}"
    );
    assert_ne!(s.ledger_id.as_deref(), Some(old_id.as_str()));
}

#[test]
fn status_shows_the_home_its_ledger_its_position_and_what_waits() {
    let l = ledger(&["--store", "memory"]);
    let url = l.url();
    let (a, b) = DEADDROP.pair(&url, "xwing");
    // A contact whose name would restyle a terminal printed raw.
    let c = DEADDROP.person("carol", &url);
    c.init("xwing");
    let evil = "c\u{1b}[2J\u{202e}";
    b.add(&c.card(), evil);
    c.add(&b.card(), "b");
    a.send("b", "one");
    a.send("b", "two");
    c.send("b", "three");
    let s: StatusJson = b.json(&["status"]);
    let newest = newest_id(&url).unwrap();
    assert!(s.ledger.reachable && s.ledger.error.is_none(), "{s:?}");
    assert_eq!(s.ledger.url, url);
    assert_eq!(s.ledger.last_id, Some(newest));
    assert_eq!(s.ledger.ledger_id, ledger_id_of(&url));
    assert!(s.ledger.lifetime_s.is_some_and(|t| t > 0));
    assert_eq!((s.synced_id, s.behind), (0, Some(newest)));
    assert_eq!((s.suite.as_str(), s.encrypted), ("xwing", true));
    assert_eq!(s.home, b.home.display().to_string());
    assert_eq!(s.fingerprint, b.json::<CardJson>(&["card"]).fingerprint);
    b.sync();
    let s: StatusJson = b.json(&["status"]);
    assert_eq!((s.synced_id, s.behind), (newest, Some(0)));
    assert_eq!(s.unread.total, 3);
    assert_eq!(s.unread.contacts.get("a"), Some(&2));
    assert_eq!(s.unread.contacts.get(evil), Some(&1));
    assert_eq!((s.requests, s.outbox.messages), (0, 0));
    // A stranger's first message is a request.
    let d = DEADDROP.person("dave", &url);
    d.init("xwing");
    d.add(&b.card(), "b");
    d.send("b", "hello?");
    b.sync();
    let s: StatusJson = b.json(&["status"]);
    assert_eq!(s.requests, 1);
    // For people: every line, the contact's name escaped.
    let out = b.run(&["status"]).ok();
    for want in [
        "home",
        "identity",
        "ledger",
        "reachable",
        "unread    3",
        "requests  1",
    ] {
        assert!(out.stdout.contains(want), "{want}: {}", out.stdout);
    }
    assert!(
        !out.stdout.contains('\u{1b}') && !out.stdout.contains('\u{202e}'),
        "{:?}",
        out.stdout
    );
    assert!(out.stdout.contains("\\x1b"), "{}", out.stdout);
}

#[test]
fn status_answers_at_once_when_the_ledger_is_down_or_hangs() {
    let closed = format!("http://127.0.0.1:{}", closed_port());
    // Accepts connections (the kernel does) and never answers.
    let hung = TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_url = format!("http://{}", hung.local_addr().unwrap());
    for url in [closed, hung_url] {
        let p = DEADDROP.person("alice", &url);
        p.init("xwing");
        let started = Instant::now();
        let s: StatusJson = p.json(&["status"]);
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(6),
            "status took {took:?} for {url}"
        );
        assert!(!s.ledger.reachable, "{s:?}");
        assert!(
            s.ledger.error.as_deref().is_some_and(|e| e.contains(&url)),
            "{s:?}"
        );
        assert_eq!((s.behind, s.ledger.last_id), (None, None));
        let out = p.run(&["status"]).ok();
        assert!(out.stdout.contains("NOT reachable"), "{}", out.stdout);
    }
    drop(hung);
}

/// `outbox --json`.
fn outbox(p: &Person) -> Vec<QueuedJson> {
    p.json(&["outbox"])
}

#[test]
fn send_with_the_ledger_down_queues_at_once_and_outbox_flush_delivers_it_once() {
    let mut l = ledger(&[]);
    let url = l.url();
    let (a, b) = DEADDROP.pair(&url, "xwing");
    l.kill9();

    let started = Instant::now();
    let sent: SendJson = a.json(&["send", "b", "while away"]);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "send took {took:?}");
    assert!(sent.queued && sent.ids.is_empty(), "{sent:?}");
    assert!(
        sent.away
            .as_deref()
            .is_some_and(|w| w.contains("not reachable")),
        "{sent:?}"
    );
    let out = a.run(&["send", "b", "also while away"]).ok();
    assert!(
        out.stdout
            .contains(&format!("queued: the ledger at {url} is not reachable"))
            && out.stdout.contains("`deaddrop outbox flush`"),
        "{}",
        out.stdout
    );
    assert_eq!(
        out.stdout.matches("not reachable").count(),
        1,
        "said once: {}",
        out.stdout
    );
    // People read when it was queued in their own zone, or in UTC if they ask.
    for (args, zone) in [
        (&["outbox"][..], " IST"),
        (&["outbox", "--utc"], " UTC"),
        (&["status"], " IST"),
        (&["status", "--utc"], " UTC"),
    ] {
        let mut cmd = a.command(args);
        cmd.env("TZ", "IST-5:30");
        let shown = run_command(cmd, None, COMMAND_TIMEOUT).ok().stdout;
        let line = shown
            .lines()
            .find(|l| l.contains("since "))
            .unwrap_or_else(|| panic!("{args:?}: {shown}"));
        assert!(line.contains(zone), "{args:?}: {line}");
    }
    let q = outbox(&a);
    assert_eq!(q.len(), 2, "{q:?}");
    assert!(q
        .iter()
        .all(|m| m.contact == "b" && m.parts == 1 && m.refused == 0 && m.since > 0));
    let s: StatusJson = a.json(&["status"]);
    assert_eq!((s.outbox.messages, s.outbox.parts), (2, 2));
    // Flushing while it is still down fails at once and keeps both.
    let started = Instant::now();
    let e = a.run(&["--json", "outbox", "flush"]).json_error();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        e.error.contains("not reachable") && e.error.contains("2 part(s) stay in the outbox"),
        "{e:?}"
    );
    assert_eq!(outbox(&a).len(), 2);

    l.restart_blocking();
    let f: FlushJson = a.json(&["outbox", "flush"]);
    assert_eq!((f.sent, f.pending, f.refused.len()), (2, 0, 0), "{f:?}");
    assert!(outbox(&a).is_empty());
    let f: FlushJson = a.json(&["outbox", "flush"]);
    assert_eq!(f.sent, 0);
    assert_eq!(b.sync().messages, 2);
    let texts: Vec<String> = b.read("a").into_iter().map(|m| m.text).collect();
    assert_eq!(texts, ["while away", "also while away"]);
    // The sender's conversation shows each once too.
    assert_eq!(a.read("b").len(), 2);
}

#[test]
fn sync_and_watch_send_what_waits() {
    let mut l = ledger(&[]);
    let (a, b) = DEADDROP.pair(&l.url(), "xwing");
    l.kill9();
    assert!(a.send("b", "sent by sync").queued);
    l.restart_blocking();
    let s = a.sync();
    assert_eq!((s.flushed, s.queued), (1, 0), "{s:?}");
    assert_eq!(b.sync().messages, 1);

    l.kill9();
    assert!(a.send("b", "sent by watch").queued);
    let mut w = a.watch();
    w.wait_for("a reconnect", Duration::from_secs(30), |e| {
        matches!(e, WatchEventJson::Reconnecting { .. })
    });
    l.restart_blocking();
    w.wait_for("listening", Duration::from_secs(60), |e| {
        matches!(e, WatchEventJson::Listening { .. })
    });
    assert!(outbox(&a).is_empty());
    drop(w);
    let s = b.sync();
    assert_eq!(s.messages, 1, "{s:?}");
    let texts: Vec<String> = b.read("a").into_iter().map(|m| m.text).collect();
    assert_eq!(texts, ["sent by sync", "sent by watch"]);
}

#[test]
fn a_flush_killed_midway_leaves_no_duplicate_at_the_receiver() {
    let mut l = ledger(&[]);
    let url = l.url();
    let (a, b) = DEADDROP.pair(&url, "xwing");
    let mut midway = 0;
    let mut texts = Vec::new();
    for round in 0..4 {
        l.kill9();
        // Long enough for dozens of parts.
        let text = format!("round {round} ") + &"long message text ".repeat(12_000);
        let sent: SendJson = a
            .run_with_input(&["--json", "send", "b", "-"], text.clone().into_bytes())
            .ok()
            .json();
        assert!(sent.queued && sent.parts > 20, "{}", sent.parts);
        texts.push(text);
        l.restart_blocking();
        let before = newest_id(&url).unwrap_or(0);
        let mut cmd = a.command(&["outbox", "flush"]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut flush = Running {
            child: cmd.spawn().unwrap(),
        };
        wait_until_blocking("the flush appended a part", COMMAND_TIMEOUT, || {
            newest_id(&url).unwrap_or(0) > before || !flush.running()
        });
        flush.kill();
        let at = newest_id(&url).unwrap_or(0);
        eprintln!(
            "round {round}: {} of {} parts in when killed",
            at - before,
            sent.parts
        );
        if at > before && at < before + sent.parts as u64 {
            midway += 1;
        }
        // The rest (and perhaps a part the ledger took but the home did not record).
        let f: FlushJson = a.json(&["outbox", "flush"]);
        assert_eq!(f.pending, 0, "{f:?}");
        assert!(outbox(&a).is_empty());
    }
    assert!(
        midway >= 1,
        "no kill landed part-way; the test tested nothing"
    );
    let s = b.sync();
    assert_eq!(s.messages, 4, "{s:?}");
    let got: Vec<String> = b.read("a").into_iter().map(|m| m.text).collect();
    assert_eq!(got, texts, "each message exactly once, whole");
}

/// Replaces the bytes of the outbox part of `p`'s message `message` (its row id) with `bytes`,
/// as disk damage would, through the database's key.
fn damage_part(p: &Person, message: i64, bytes: &[u8]) {
    let kf = deaddrop_client::home::KeyFile::read(&p.home)
        .unwrap()
        .unwrap();
    let key = kf
        .keys(Some(&Passphrase::new(PASSPHRASE.into())))
        .unwrap()
        .remove(0);
    let hex: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let conn = rusqlite::Connection::open(p.home.join("deaddrop.sqlite3")).unwrap();
    conn.pragma_update(None, "key", format!("x'{hex}'"))
        .unwrap();
    let n = conn
        .execute(
            "UPDATE outbox SET entry = ?1 WHERE message_row = ?2",
            rusqlite::params![bytes, message],
        )
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn a_part_that_can_never_be_sent_is_set_aside_and_the_others_go_out() {
    let mut l = ledger(&[]);
    let (a, b) = DEADDROP.pair(&l.url(), "xwing");
    l.kill9();
    a.send("b", "damaged on disk");
    a.send("b", "fine");
    let q = outbox(&a);
    assert_eq!(q.len(), 2);
    damage_part(&a, q[0].id, b"not an entry");
    l.restart_blocking();
    // The next sync sends the good one and sets the damaged one aside, saying so.
    let out = a.run(&["sync"]).ok();
    assert!(
        out.stderr.contains("refused for good") && out.stderr.contains("damaged"),
        "{}",
        out.stderr
    );
    assert_eq!(b.sync().messages, 1);
    let texts: Vec<String> = b.read("a").into_iter().map(|m| m.text).collect();
    assert_eq!(texts, ["fine"]);
    let q = outbox(&a);
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].refused, 1);
    assert!(
        q[0].reason
            .as_deref()
            .is_some_and(|r| r.contains("damaged")),
        "{q:?}"
    );
    let s: StatusJson = a.json(&["status"]);
    assert_eq!((s.outbox.messages, s.outbox.refused), (1, 1));
    // Later sends are not held by it.
    assert!(!a.send("b", "later").queued);
    assert_eq!(b.sync().messages, 1);
    // `outbox flush` tries it again and reports it, without failing the command.
    let f: FlushJson = a.json(&["outbox", "flush"]);
    assert_eq!((f.sent, f.refused.len()), (0, 1), "{f:?}");
    assert_eq!(f.refused[0].contact, "b");
}

#[test]
fn a_ledger_that_refuses_every_part_is_reported_and_the_message_goes_out_elsewhere() {
    // An xwing mirror of an rsa-oaep ledger: its info says xwing, but every append forwarded
    // upstream is refused (wrong size) for good.
    let upstream = ledger(&["--store", "memory", "--suite", "rsa-oaep"]);
    let wrong = ledger(&["--store", "memory", "--mirror-of", &upstream.url()]);
    let good = ledger(&["--store", "memory"]);
    let (mut a, b) = DEADDROP.pair(&good.url(), "xwing");
    a.ledger = wrong.url();
    let e = a
        .run(&["--json", "send", "b", "refused at first"])
        .json_error();
    assert!(
        e.error.contains("refused") && e.error.contains("outbox"),
        "{e:?}"
    );
    assert!(e.hint.contains("outbox flush"), "{e:?}");
    let q = outbox(&a);
    assert_eq!((q.len(), q[0].refused), (1, 1), "{q:?}");
    // Elsewhere, later messages go out at once; the refused one waits for `outbox flush`.
    a.ledger = good.url();
    assert!(!a.send("b", "sent elsewhere").queued);
    assert_eq!(outbox(&a).len(), 1);
    let f: FlushJson = a.json(&["outbox", "flush"]);
    assert_eq!((f.sent, f.refused.len()), (1, 0), "{f:?}");
    b.sync();
    let mut texts: Vec<String> = b.read("a").into_iter().map(|m| m.text).collect();
    texts.sort();
    assert_eq!(texts, ["refused at first", "sent elsewhere"]);
}

#[test]
fn urls_that_cannot_work_fail_at_once_with_the_fix_in_the_hint() {
    let l = ledger(&["--store", "memory"]);
    let port = l.port();
    let http = format!("http://127.0.0.1:{port}");
    let (mut a, _b) = DEADDROP.pair(&http, "xwing");
    let quick = |a: &Person, args: &[&str]| {
        let started = Instant::now();
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let e = a.run(&all).json_error();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "{args:?} took {took:?}");
        e
    };
    // https:// to a ledger that speaks plain HTTP.
    a.ledger = format!("https://127.0.0.1:{port}");
    for args in [
        &["sync"][..],
        &["send", "b", "x"],
        &["watch"],
        &["outbox", "flush"],
    ] {
        let e = quick(&a, args);
        assert!(e.error.contains("speaks plain HTTP"), "{args:?}: {e:?}");
        assert!(e.hint.contains(&format!("use {http}")), "{args:?}: {e:?}");
    }
    assert!(
        outbox(&a).is_empty(),
        "a send to a URL that cannot work queued"
    );
    // A path: the API's own, or any.
    for path in ["/v1", "/v1/info", "/ledger/"] {
        a.ledger = format!("{http}{path}");
        let e = quick(&a, &["sync"]);
        assert!(
            e.hint.contains("give the ledger's base URL without") && e.hint.contains(&http),
            "{path}: {e:?}"
        );
    }
    // No scheme.
    a.ledger = format!("127.0.0.1:{port}");
    let e = quick(&a, &["sync"]);
    assert!(
        e.hint.contains(&format!("add http:// or https://: {http}")),
        "{e:?}"
    );
    // The error says what is wrong, the hint what to write: not both the same.
    assert!(
        e.error.contains("no scheme") && !e.error.contains("add http://"),
        "{e:?}"
    );
    a.ledger = http;
    a.sync();
}

#[test]
fn serve_neither_shows_nor_takes_client_options() {
    let help = run_command(
        {
            let mut c = DEADDROP.command();
            c.args(["serve", "--help"]);
            c
        },
        None,
        COMMAND_TIMEOUT,
    )
    .ok();
    assert!(help.stdout.contains("--data"), "{}", help.stdout);
    for flag in [
        "--home",
        "--ledger",
        "--proxy",
        "--passphrase-file",
        "--passphrase-fd",
        "--ca-file",
    ] {
        assert!(!help.stdout.contains(flag), "serve --help offers {flag}");
    }
    for args in [
        &["serve", "--home", "x"][..],
        &["--home", "x", "serve"],
        &["serve", "--ledger", "http://127.0.0.1:1"],
        &["--json", "serve", "--ca-file", "x.pem"],
    ] {
        let out = run_command(
            {
                let mut c = DEADDROP.command();
                c.args(args);
                c
            },
            None,
            COMMAND_TIMEOUT,
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(
            out.stderr.contains("does not take --") && out.stderr.contains("client commands"),
            "{args:?}: {}",
            out.stderr
        );
    }
    // The environment of a client does not stop a ledger.
    let l = DEADDROP
        .serve()
        .env("DEADDROP_HOME", "/nonexistent")
        .env("DEADDROP_LEDGER", "http://127.0.0.1:1")
        .args(&["--store", "memory"])
        .start_blocking();
    // Client options go before or after a client command.
    let p = DEADDROP.person("alice", &l.url());
    p.init("xwing");
    let before = p.run(&["card"]).ok();
    let mut after = DEADDROP.command();
    after
        .args(["card", "--home"])
        .arg(&p.home)
        .env("DEADDROP_PASSPHRASE", PASSPHRASE);
    let after = run_command(after, None, COMMAND_TIMEOUT).ok();
    assert_eq!(before.stdout, after.stdout);
    let help = run_command(
        {
            let mut c = DEADDROP.command();
            c.arg("--help");
            c
        },
        None,
        COMMAND_TIMEOUT,
    )
    .ok();
    assert!(
        help.stdout.contains("Client options") && help.stdout.contains("--home"),
        "{}",
        help.stdout
    );
}

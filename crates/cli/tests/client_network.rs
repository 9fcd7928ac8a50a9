//! The client on the network: `watch` follows the ledger's push stream closely enough to show a
//! message within a second of its `send`, and every network call (`send`, `sync`, `watch`'s
//! catch-up and push stream) honours `--proxy`, never going around it; an `https://` ledger
//! with a private CA is trusted through `--ca-file` by HTTP and WebSocket alike, also through
//! the proxy; and every command, and every part of a send, gets SOCKS credentials of its own.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use deaddrop_client::output::WatchEventJson;
use deaddrop_harness::cli::newest_id;
use deaddrop_harness::socks5::{Credentials, Session, Socks5, Target};
use deaddrop_harness::{Deaddrop, Serve, TlsFront};

const DEADDROP: Deaddrop = Deaddrop::new(env!("CARGO_BIN_EXE_deaddrop"));

/// `deaddrop serve ARGS` on a loopback port.
fn ledger(args: &[&str]) -> Serve {
    DEADDROP.serve().args(args).start_blocking()
}

/// Whether `e` is the message `text`.
fn is_message(e: &WatchEventJson, text: &str) -> bool {
    matches!(e, WatchEventJson::Message { text: t, .. } if t == text)
}

#[test]
fn watch_shows_a_message_soon_after_the_ledger_acknowledges_it() {
    let ledger = ledger(&["--pow-bits", "8", "--store", "memory"]);
    let (a, b) = DEADDROP.pair(&ledger.url(), "xwing");
    // Something to catch up on first.
    a.send("b", "before watching");
    let mut w = b.watch();
    let ev = w.wait_for("the catch-up message", Duration::from_secs(30), |e| {
        matches!(e, WatchEventJson::Message { .. })
    });
    let WatchEventJson::Message { text, contact, .. } = ev else {
        unreachable!()
    };
    assert_eq!(text, "before watching");
    assert_eq!(contact.as_deref(), Some("a"));
    w.wait_for("listening", Duration::from_secs(30), |e| {
        matches!(e, WatchEventJson::Listening { .. })
    });
    for i in 0..3 {
        let text = format!("ping {i}");
        let started = Instant::now();
        a.send("b", &text);
        let acknowledged = Instant::now();
        w.wait_for("the message", Duration::from_secs(10), |e| {
            is_message(e, &text)
        });
        let total = started.elapsed();
        let after_ack = acknowledged.elapsed();
        eprintln!("ping {i}: shown {total:?} after send started, {after_ack:?} after the ledger acknowledged it");
        // How fast is measured by `deaddrop-bench ledger` (push latency); here the message must
        // come over the push stream, which on a loaded machine still takes well under the
        // seconds a poll-and-sync would: a generous bound that does not flake.
        assert!(
            after_ack < Duration::from_secs(3),
            "watch showed the message {after_ack:?} after the ledger acknowledged it"
        );
    }
    // What watch showed is stored: a sync afterwards finds nothing new, and read has it all.
    drop(w);
    assert_eq!(b.sync().messages, 0);
    assert_eq!(b.read("a").len(), 4);
}

/// A host name only the test's proxy can resolve (`.invalid` never resolves anywhere else,
/// RFC 6761), so a client that went around the proxy could not even find the ledger.
const HIDDEN: &str = "ledger.deaddrop-test.invalid";

#[test]
fn every_network_call_goes_through_the_proxy() {
    let ledger = ledger(&["--pow-bits", "4", "--store", "memory"]);
    let mut proxy = Socks5::start(&[(HIDDEN, IpAddr::V4(Ipv4Addr::LOCALHOST))]);
    let hidden_url = format!("http://{HIDDEN}:{}", ledger.port());
    let (mut a, mut b) = DEADDROP.pair(&hidden_url, "xwing");
    a.proxy = Some(proxy.url_remote_dns());
    b.proxy = Some(proxy.url_remote_dns());
    let only_hidden = |targets: &[Target]| {
        targets
            .iter()
            .all(|t| *t == Target::Domain(HIDDEN.into(), ledger.port()))
    };

    // watch: its catch-up sync and its push stream.
    let mut w = b.watch();
    w.wait_for("listening", Duration::from_secs(30), |e| {
        matches!(e, WatchEventJson::Listening { .. })
    });
    assert!(proxy.connections() >= 2, "{:?}", proxy.targets());

    // send, seen live by watch through the proxy.
    let before = proxy.connections();
    a.send("b", "through the proxy");
    assert!(proxy.connections() > before);
    w.wait_for("the message", Duration::from_secs(10), |e| {
        is_message(e, "through the proxy")
    });
    drop(w);

    // sync.
    let before = proxy.connections();
    b.send("a", "and back");
    let s = a.sync();
    assert_eq!(s.messages, 1, "{s:?}");
    assert!(proxy.connections() >= before + 2);
    assert!(only_hidden(&proxy.targets()), "{:?}", proxy.targets());

    // socks5:// resolves names locally and hands the proxy an address.
    let mut c = DEADDROP.person("carol", &ledger.url());
    c.init("xwing");
    c.proxy = Some(proxy.url_local_dns());
    let s = c.sync();
    assert_eq!(s.scanned, 2, "{s:?}");
    let direct = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), ledger.port());
    assert!(
        proxy.targets().contains(&Target::Ip(direct)),
        "{:?}",
        proxy.targets()
    );

    // A proxy that refuses: send asks once, through the proxy only, and queues the message at
    // once; the ledger gets nothing until the proxy lets it through and the next sync sends it.
    let newest = newest_id(&ledger.url());
    proxy.refuse(true);
    let refused = proxy.refused();
    let sent = a.send("b", "held back");
    assert!(sent.queued, "{sent:?}");
    assert!(proxy.refused() > refused, "send went around the proxy");
    assert_eq!(
        newest_id(&ledger.url()),
        newest,
        "send went around the proxy"
    );
    proxy.refuse(false);
    assert_eq!(a.sync().flushed, 1);
    assert_eq!(b.sync().messages, 1);

    // No proxy at all: every command fails (or retries) saying the ledger is unreachable,
    // rather than going direct.
    proxy.stop();
    let e = a.run(&["--json", "sync"]).json_error();
    assert!(
        e.error.contains(&hidden_url) && e.error.contains("not reachable"),
        "{e:?}"
    );
    let e = c.run(&["--json", "sync"]).json_error();
    assert!(e.error.contains("not reachable"), "{e:?}");
    let mut w = b.watch();
    let ev = w.wait_for("a reconnect", Duration::from_secs(30), |e| {
        matches!(
            e,
            WatchEventJson::Reconnecting { .. } | WatchEventJson::Listening { .. }
        )
    });
    let WatchEventJson::Reconnecting { why, .. } = &ev else {
        panic!("watch went around the proxy: {ev:?}");
    };
    assert!(why.contains("not reachable"), "{ev:?}");
}

/// What a command printed on failure, with `--json`: the error and its hint in one string.
fn failure(out: &deaddrop_harness::Out) -> String {
    let e = out.json_error();
    format!("{} / hint: {}", e.error, e.hint)
}

#[test]
fn a_private_ca_ledger_is_synced_and_watched_with_its_ca_file_and_refused_without() {
    let ledger = ledger(&["--pow-bits", "4", "--store", "memory"]);
    let front = TlsFront::start(ledger.port(), &["localhost"]);
    let (mut a, mut b) = DEADDROP.pair(&front.url("localhost"), "xwing");

    // Without the CA: every command stops at once, saying the certificate is not trusted and
    // what to do, instead of retrying (or reconnecting) forever.
    let out = b.run(&["--json", "sync"]);
    let why = failure(&out);
    assert!(
        why.contains("certificate") && why.contains("--ca-file"),
        "{why}"
    );
    let out = b.run(&["--json", "watch"]);
    let why = failure(&out);
    assert!(
        why.contains("certificate") && why.contains("--ca-file"),
        "{why}"
    );
    let out = a.run(&["--json", "send", "b", "not sent"]);
    let why = failure(&out);
    assert!(why.contains("certificate"), "{why}");

    // With it: sync and watch (HTTP and WebSocket) both trust the private CA.
    a.ca_file = Some(front.ca_file().to_path_buf());
    b.ca_file = Some(front.ca_file().to_path_buf());
    a.send("b", "first, over TLS");
    let s = b.sync();
    assert_eq!(s.messages, 1, "{s:?}");
    let mut w = b.watch();
    w.wait_for("listening", Duration::from_secs(30), |e| {
        matches!(e, WatchEventJson::Listening { .. })
    });
    a.send("b", "pushed over TLS");
    w.wait_for("the message", Duration::from_secs(10), |e| {
        is_message(e, "pushed over TLS")
    });
    drop(w);
    assert_eq!(b.read("a").len(), 2);

    // A CA file that holds no certificate is refused, naming it.
    let dir = deaddrop_harness::temp_dir("deaddrop-bad-ca");
    let bad = dir.path().join("not-a-ca.pem");
    std::fs::write(&bad, "no certificate here\n").unwrap();
    b.ca_file = Some(bad.clone());
    let why = failure(&b.run(&["--json", "sync"]));
    assert!(
        why.contains(&bad.display().to_string()) && why.contains("--ca-file"),
        "{why}"
    );
}

#[test]
fn watch_through_a_socks_proxy_speaks_tls_to_an_https_ledger() {
    let ledger = ledger(&["--pow-bits", "4", "--store", "memory"]);
    let front = TlsFront::start(ledger.port(), &[HIDDEN]);
    let proxy = Socks5::start(&[(HIDDEN, IpAddr::V4(Ipv4Addr::LOCALHOST))]);
    let (mut a, mut b) = DEADDROP.pair(&front.url(HIDDEN), "xwing");
    for p in [&mut a, &mut b] {
        p.proxy = Some(proxy.url_remote_dns());
        p.ca_file = Some(front.ca_file().to_path_buf());
    }

    let mut w = b.watch();
    w.wait_for("listening", Duration::from_secs(30), |e| {
        matches!(e, WatchEventJson::Listening { .. })
    });
    a.send("b", "through the proxy, over TLS");
    w.wait_for("the message", Duration::from_secs(10), |e| {
        is_message(e, "through the proxy, over TLS")
    });
    drop(w);

    // Everything went through the proxy to the TLS endpoint, and every connection began with
    // a TLS handshake: no request, the WebSocket upgrade included, crossed the proxy in the
    // clear.
    let sessions = proxy.sessions();
    assert!(sessions.len() >= 3, "{sessions:?}");
    for s in &sessions {
        assert_eq!(s.target, Target::Domain(HIDDEN.into(), front.port));
        assert_eq!(
            s.sent.first(),
            Some(&0x16),
            "a connection through the proxy did not start with a TLS handshake: {:?}",
            String::from_utf8_lossy(&s.sent[..s.sent.len().min(200)])
        );
        assert_eq!(
            s.count_sent(b"GET /v1/"),
            0,
            "cleartext request through the proxy"
        );
        assert_eq!(s.count_sent(b"Upgrade: websocket"), 0);
    }
    assert_eq!(front.refused(), 0, "a connection failed its TLS handshake");
}

/// The distinct credentials of `sessions`, each with its sessions.
fn by_credentials(sessions: &[Session]) -> BTreeMap<Credentials, Vec<&Session>> {
    let mut map: BTreeMap<Credentials, Vec<&Session>> = BTreeMap::new();
    for s in sessions {
        let c = s
            .credentials
            .clone()
            .unwrap_or_else(|| panic!("a connection without SOCKS credentials: {s:?}"));
        map.entry(c).or_default().push(s);
    }
    map
}

/// How many appends `sessions` carried.
fn appends(sessions: &[&Session]) -> usize {
    sessions
        .iter()
        .map(|s| s.count_sent(b"POST /v1/entries"))
        .sum()
}

#[test]
fn each_command_and_each_part_of_a_send_has_its_own_socks_credentials() {
    let ledger = ledger(&["--pow-bits", "4", "--store", "memory"]);
    let proxy = Socks5::start(&[(HIDDEN, IpAddr::V4(Ipv4Addr::LOCALHOST))]);
    let hidden_url = format!("http://{HIDDEN}:{}", ledger.port());
    let (mut a, mut b) = DEADDROP.pair(&hidden_url, "xwing");
    a.proxy = Some(proxy.url_remote_dns());
    b.proxy = Some(proxy.url_remote_dns());
    let since = |n: usize| proxy.sessions().split_off(n);

    // A message of several parts: each part's append goes out with credentials of its own, and
    // the command's own requests (the ledger's info) with others again.
    let text = "a long message in several parts. ".repeat(400);
    let n = proxy.sessions().len();
    let sent = a.send("b", &text);
    assert!(sent.parts >= 3, "{sent:?}");
    let send_sessions = since(n);
    let send_creds = by_credentials(&send_sessions);
    let part_creds: Vec<&Credentials> = send_creds
        .iter()
        .filter(|(_, s)| appends(s) > 0)
        .map(|(c, _)| c)
        .collect();
    for (c, s) in &send_creds {
        assert!(appends(s) <= 1, "two parts shared credentials {c:?}");
    }
    assert_eq!(part_creds.len(), sent.parts, "{send_creds:?}");
    assert_eq!(
        send_creds.len(),
        sent.parts + 1,
        "the send's info request should have credentials of its own"
    );

    // A sync: one set of credentials for all its requests, none of the send's.
    let n = proxy.sessions().len();
    assert_eq!(b.sync().messages, 1);
    let sync_sessions = since(n);
    let sync_creds = by_credentials(&sync_sessions);
    assert_eq!(sync_creds.len(), 1, "{sync_creds:?}");
    assert!(sync_creds.keys().all(|c| !send_creds.contains_key(c)));

    // A watch: its catch-up and its push stream share the command's credentials, new ones.
    let n = proxy.sessions().len();
    let mut w = b.watch();
    w.wait_for("listening", Duration::from_secs(30), |e| {
        matches!(e, WatchEventJson::Listening { .. })
    });
    drop(w);
    let watch_sessions = since(n);
    let watch_creds = by_credentials(&watch_sessions);
    assert_eq!(watch_creds.len(), 1, "{watch_creds:?}");
    assert!(watch_creds
        .keys()
        .all(|c| !send_creds.contains_key(c) && !sync_creds.contains_key(c)));

    // The credentials are long random strings, not a counter or the user's name.
    for c in send_creds.keys().chain(sync_creds.keys()) {
        assert!(c.username.len() >= 16 && c.password.len() >= 16, "{c:?}");
    }

    // Credentials written in the proxy URL are the user's choice: every connection uses them.
    let mine = Credentials {
        username: "alice".into(),
        password: "s3cret:x".into(),
    };
    a.proxy = Some(format!(
        "socks5h://alice:s3cret%3Ax@127.0.0.1:{}",
        proxy.port
    ));
    let n = proxy.sessions().len();
    let sent = a.send("b", &text);
    b.proxy = a.proxy.clone();
    assert_eq!(b.sync().messages, 1);
    let mut w = b.watch();
    w.wait_for("listening", Duration::from_secs(30), |e| {
        matches!(e, WatchEventJson::Listening { .. })
    });
    drop(w);
    let given_sessions = since(n);
    let given = by_credentials(&given_sessions);
    assert_eq!(given.keys().collect::<Vec<_>>(), vec![&mine], "{given:?}");
    assert_eq!(appends(&given[&mine]), sent.parts);
}

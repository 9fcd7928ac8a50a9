//! The client on the network: `watch` follows the ledger's push stream closely enough to show a
//! message within a second of its `send`, and every network call (`send`, `sync`, `watch`'s
//! catch-up and push stream) honours `--proxy`, never going around it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use deaddrop_client::output::WatchEventJson;
use deaddrop_harness::cli::newest_id;
use deaddrop_harness::socks5::{Socks5, Target};
use deaddrop_harness::{wait_until_blocking, Deaddrop, Serve};

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
fn watch_shows_a_message_within_a_second_of_send() {
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
        assert!(
            total < Duration::from_secs(1),
            "watch showed the message {total:?} after send started"
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

    // A proxy that refuses: send keeps retrying, only through the proxy; the ledger gets
    // nothing until the proxy lets it through.
    let newest = newest_id(&ledger.url());
    proxy.refuse(true);
    std::thread::scope(|s| {
        let sending = s.spawn(|| a.send("b", "held back"));
        wait_until_blocking(
            "send retried through the refusing proxy",
            Duration::from_secs(30),
            || proxy.refused() >= 2,
        );
        assert_eq!(
            newest_id(&ledger.url()),
            newest,
            "send went around the proxy"
        );
        proxy.refuse(false);
        sending.join().unwrap();
    });
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

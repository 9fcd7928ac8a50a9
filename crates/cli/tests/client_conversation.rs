//! Conversations through the real `deaddrop` binary: two people on one ledger of each suite,
//! first contact through a request, a spoofed sender, and a long message. Every person has a
//! real SQLite home in a temporary directory; the ledger is `deaddrop serve` on a loopback port.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use deaddrop_client::output::{AcceptJson, MessageJson, SendJson, SyncJson};
use deaddrop_harness::{Deaddrop, Person, Serve};
use deaddrop_proto::rng::SystemRng;
use deaddrop_proto::{seal, CheckKey, ContactCard, PairKeys};

const DEADDROP: Deaddrop = Deaddrop::new(env!("CARGO_BIN_EXE_deaddrop"));

/// `deaddrop serve ARGS` on a loopback port.
fn ledger(args: &[&str]) -> Serve {
    DEADDROP.serve().args(args).start_blocking()
}

fn texts(msgs: &[MessageJson], direction: &str) -> Vec<String> {
    msgs.iter()
        .filter(|m| m.direction == direction)
        .map(|m| m.text.clone())
        .collect()
}

/// A sends, B syncs and reads it, B replies, A reads the reply; then A writes once more and
/// that message is verified. Returns the pair for further checks.
fn converse(ledger: &Serve, suite: &str) -> (Person, Person) {
    let (a, b) = DEADDROP.pair(&ledger.url(), suite);

    let sent = a.send("b", "meet at noon");
    assert_eq!(sent.parts, 1);
    assert_eq!(sent.ids.len(), 1);
    assert_eq!(sent.message_id.len(), 32, "{sent:?}");

    let s = b.sync();
    assert_eq!((s.messages, s.requests, s.rejected), (1, 0, 0), "{s:?}");
    assert_eq!(s.gap, None);
    let read = b.read("a");
    assert_eq!(read.len(), 1, "{read:?}");
    assert_eq!(read[0].direction, "in");
    assert_eq!(read[0].text, "meet at noon");
    assert!(read[0].time > 0 && read[0].id > 0);

    b.send("a", "noon it is");
    let s = a.sync();
    assert_eq!((s.messages, s.requests, s.rejected), (1, 0, 0), "{s:?}");
    let read = a.read("b");
    assert_eq!(texts(&read, "out"), ["meet at noon"]);
    assert_eq!(texts(&read, "in"), ["noon it is"]);
    // B replied with the key A issued in its first message: A knows it is B.
    assert!(read.iter().all(|m| m.verified), "{read:?}");

    a.send("b", "see you");
    assert_eq!(b.sync().messages, 1);
    let read = b.read("a");
    assert_eq!(texts(&read, "in"), ["meet at noon", "see you"]);
    assert_eq!(texts(&read, "out"), ["noon it is"]);
    let last = read.iter().find(|m| m.text == "see you").unwrap();
    assert!(last.verified, "{read:?}");
    (a, b)
}

#[test]
fn two_people_talk_and_a_third_sees_nothing_xwing() {
    let ledger = ledger(&["--pow-bits", "8", "--store", "memory"]);
    let (_a, b) = converse(&ledger, "xwing");

    let c = DEADDROP.person("carol", &ledger.url());
    c.init("xwing");
    c.add(&b.card(), "b");
    // The contract's fields, all present (`gap` too, as null).
    let raw: serde_json::Value = c.json(&["sync"]);
    for key in ["scanned", "messages", "requests", "rejected", "gap"] {
        assert!(raw.get(key).is_some(), "sync --json lacks {key}: {raw}");
    }
    assert!(raw["gap"].is_null(), "{raw}");
    let s: SyncJson = serde_json::from_value(raw).unwrap();
    assert_eq!(s.scanned, 3, "{s:?}");
    assert_eq!(s.messages + s.requests + s.rejected, 0, "{s:?}");
    assert!(c.read("b").is_empty());
    assert!(c.requests().is_empty());
    // A second sync starts after the last id seen: nothing is scanned twice.
    assert_eq!(b.sync().scanned, 0);
}

#[test]
fn two_people_talk_rsa_oaep() {
    let ledger = ledger(&[
        "--pow-bits",
        "8",
        "--store",
        "memory",
        "--suite",
        "rsa-oaep",
    ]);
    converse(&ledger, "rsa-oaep");
}

#[test]
fn first_contact_lands_in_requests_and_flows_after_accept() {
    let ledger = ledger(&["--pow-bits", "8", "--store", "memory"]);
    let a = DEADDROP.person("alice", &ledger.url());
    let b = DEADDROP.person("bob", &ledger.url());
    let a_fp = a.init("xwing").fingerprint;
    b.init("xwing");
    // Only A has B's card.
    a.add(&b.card(), "b");
    a.send("b", "hello, it's alice");

    let s = b.sync();
    assert_eq!((s.messages, s.requests, s.rejected), (0, 1, 0), "{s:?}");
    let reqs = b.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].text, "hello, it's alice");
    assert_eq!(reqs[0].fingerprint, a_fp);
    assert!(reqs[0].time > 0);
    let inbox = b.inbox();
    assert!(
        inbox
            .iter()
            .any(|r| r.contact.is_none() && r.unread == 1 && r.last_time == Some(reqs[0].time)),
        "the inbox shows the pending request: {inbox:?}"
    );

    let id = reqs[0].id.to_string();
    let accepted: AcceptJson = b.json(&["accept", &id, "--name", "alice"]);
    assert_eq!(accepted.name, "alice");
    assert!(b.requests().is_empty());
    let read = b.read("alice");
    assert_eq!(texts(&read, "in"), ["hello, it's alice"]);
    let inbox = b.inbox();
    assert!(
        inbox.iter().any(|r| r.contact.as_deref() == Some("alice")),
        "{inbox:?}"
    );

    b.send("alice", "hi alice, got it");
    let s = a.sync();
    assert_eq!((s.messages, s.requests), (1, 0), "{s:?}");
    let read = a.read("b");
    let reply = read.iter().find(|m| m.direction == "in").unwrap();
    assert_eq!(reply.text, "hi alice, got it");
    assert!(reply.verified, "{read:?}");

    a.send("b", "now we are contacts");
    let s = b.sync();
    assert_eq!((s.messages, s.requests), (1, 0), "{s:?}");
    let read = b.read("alice");
    assert_eq!(
        texts(&read, "in"),
        ["hello, it's alice", "now we are contacts"]
    );
    let later = read
        .iter()
        .find(|m| m.text == "now we are contacts")
        .unwrap();
    assert!(later.verified, "{read:?}");
    assert!(b.requests().is_empty());
}

#[test]
fn spoofed_sender_is_rejected_not_shown() {
    let ledger = ledger(&["--pow-bits", "0", "--store", "memory"]);
    let (a, b) = converse(&ledger, "xwing");

    // The spoofer knows A's address and B's card, but not the keys A and B agreed.
    let a_card = ContactCard::parse(&a.card()).unwrap();
    let b_card = ContactCard::parse(&b.card()).unwrap();
    let guessed = CheckKey::generate(&mut SystemRng);
    let reply = CheckKey::generate(&mut SystemRng);
    let mut spoofs = Vec::new();
    for (text, check) in [
        ("send the money (guessed key)", Some(&guessed)),
        ("send the money (no key)", None),
    ] {
        let keys = PairKeys {
            check,
            reply: &reply,
        };
        let entries = seal(a_card.address(), &b_card, keys, text.as_bytes(), None, 1).unwrap();
        spoofs.extend(entries.into_iter().map(|e| e.as_bytes().to_vec()));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = deaddrop_client::connect(&ledger.url(), None).unwrap();
    for e in spoofs {
        rt.block_on(client.append(e)).unwrap();
    }

    let s = b.sync();
    assert_eq!(s.rejected, 2, "{s:?}");
    assert_eq!((s.messages, s.requests), (0, 0), "{s:?}");
    let read = b.read("a");
    assert!(
        read.iter().all(|m| !m.text.contains("money")),
        "a spoof is shown as from A: {read:?}"
    );
    assert_eq!(read.len(), 3);
    assert!(b.requests().is_empty());
}

#[test]
fn long_message_from_stdin_arrives_whole() {
    let ledger = ledger(&["--pow-bits", "4", "--store", "memory"]);
    let (a, b) = DEADDROP.pair(&ledger.url(), "xwing");
    // 100 KiB of numbered lines, so a lost, doubled or swapped part shows.
    let mut text = String::new();
    let mut n = 0;
    while text.len() < 100 * 1024 {
        text.push_str(&format!("line {n:06} of the long message\n"));
        n += 1;
    }
    text.truncate(100 * 1024);
    let out = a
        .run_with_input(&["--json", "send", "b", "-"], text.clone().into_bytes())
        .ok();
    let sent: SendJson = out.json();
    assert!(sent.parts > 20, "{sent:?}");
    assert_eq!(sent.ids.len(), sent.parts);

    let s = b.sync();
    assert_eq!(s.messages, 1, "{s:?}");
    let read = b.read("a");
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].text.len(), text.len());
    assert!(read[0].text == text, "the long message arrived altered");
}

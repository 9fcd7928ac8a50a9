//! What other people can do to a client's view of its peers, through the real `deaddrop` binary:
//! a forged first contact claiming someone's address (in every order against the genuine one),
//! a check-string rotation that must reach contacts, and replays of a removed contact's old
//! entries. Each test drives real homes against a real `deaddrop serve`; the attacker seals real
//! entries with `deaddrop-proto`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use deaddrop_client::db::Db;
use deaddrop_client::ops::now_ms;
use deaddrop_client::output::{MessageJson, SendJson, SyncJson};
use deaddrop_harness::cli::append_entries;
use deaddrop_harness::{Deaddrop, Person, Serve};
use deaddrop_proto::rng::SystemRng;
use deaddrop_proto::{seal, CheckKey, CheckString, ContactCard, PairKeys};
use serde_json::Value;

const DEADDROP: Deaddrop = Deaddrop::new(env!("CARGO_BIN_EXE_deaddrop"));

/// `deaddrop serve` without proof of work, in memory, on a loopback port.
fn ledger() -> Serve {
    DEADDROP
        .serve()
        .args(&["--pow-bits", "0", "--store", "memory"])
        .start_blocking()
}

fn texts(msgs: &[MessageJson], direction: &str) -> Vec<String> {
    msgs.iter()
        .filter(|m| m.direction == direction)
        .map(|m| m.text.clone())
        .collect()
}

/// Someone who knows carol's address (anyone carol ever gave her card to, or who saw it
/// anywhere) and bob's card, and claims to be carol: the `from` of a first contact cannot be
/// verified, so the forged introduction carries carol's address with the forger's own check
/// string and reply key.
struct Forger {
    carol: ContactCard,
    bob: ContactCard,
    reply: CheckKey,
    check: CheckString,
    url: String,
}

impl Forger {
    fn new(url: &str, carol: &Person, bob: &Person) -> Forger {
        Forger {
            carol: ContactCard::parse(&carol.card()).unwrap(),
            bob: ContactCard::parse(&bob.card()).unwrap(),
            reply: CheckKey::generate(&mut SystemRng),
            check: CheckString::generate(&mut SystemRng),
            url: url.to_string(),
        }
    }

    /// Appends `text` as from carol to bob: with `intro`, a first contact carrying the forger's
    /// check string; `check` is the key the entry's `check` is computed under, if any.
    fn send(&self, text: &str, check: Option<&CheckKey>, intro: bool) {
        let keys = PairKeys {
            check,
            reply: &self.reply,
        };
        let entries = seal(
            self.carol.address(),
            &self.bob,
            keys,
            text.as_bytes(),
            intro.then_some(&self.check),
            now_ms(),
        )
        .unwrap();
        append_entries(
            &self.url,
            entries.into_iter().map(|e| e.as_bytes().to_vec()).collect(),
            1,
        );
    }
}

#[derive(Clone, Copy, Debug)]
enum Order {
    ForgedFirst,
    GenuineFirst,
    /// Bob accepts the forged request before carol's genuine first message arrives.
    GenuineAfterAccept,
}

const FORGED: &str = "hi bob, it's carol; write to me here";
const GENUINE: &str = "hi bob, it's really carol";

/// Whatever the order of a forged and a genuine introduction for carol's address, bob's accept
/// and reply reach carol, her verified answer settles which introduction was hers, and the
/// forger is shut out from then on.
fn forged_first_contact(order: Order) {
    let ledger = ledger();
    let url = ledger.url();
    let bob = DEADDROP.person("bob", &url);
    let carol = DEADDROP.person("carol", &url);
    bob.init("xwing");
    let carol_fp = carol.init("xwing").fingerprint;
    carol.add(&bob.card(), "b");
    let forger = Forger::new(&url, &carol, &bob);

    match order {
        Order::ForgedFirst => {
            forger.send(FORGED, None, true);
            carol.send("b", GENUINE);
        }
        Order::GenuineFirst => {
            carol.send("b", GENUINE);
            forger.send(FORGED, None, true);
        }
        Order::GenuineAfterAccept => forger.send(FORGED, None, true),
    }
    let s = bob.sync();
    assert_eq!(s.messages, 0, "{order:?}: {s:?}");
    let reqs: Vec<Value> = bob.json(&["requests"]);
    assert!(!reqs.is_empty(), "{order:?}");
    for q in &reqs {
        assert_eq!(q["fingerprint"], carol_fp.as_str(), "{order:?}: {q}");
        // Anyone who knows the address could have sent it: the request says so.
        assert_eq!(q["unverified"], true, "{order:?}: {q}");
    }
    if !matches!(order, Order::GenuineAfterAccept) {
        assert_eq!(reqs.len(), 2, "{order:?}: both first messages are shown");
        assert!(
            reqs.iter().all(|q| q["introductions"] == 2),
            "{order:?}: {reqs:?}"
        );
    }
    let id = reqs[0]["id"].to_string();
    bob.run(&["accept", &id, "--name", "carol"]).ok();
    if matches!(order, Order::GenuineAfterAccept) {
        carol.send("b", GENUINE);
        let s = bob.sync();
        assert_eq!(s.messages, 1, "{order:?}: {s:?}");
    }
    let both = texts(&bob.read("carol"), "in");
    assert!(
        both.contains(&GENUINE.to_string()) && both.contains(&FORGED.to_string()),
        "{order:?}: {both:?}"
    );

    // Bob replies: a copy to each introduction, every one sealed to carol's address, so only
    // carol opens any.
    let first: SendJson = bob.send("carol", "hello carol, bob here");
    assert_eq!(first.copies, 2, "{order:?}: {first:?}");
    let s = carol.sync();
    assert_eq!(s.messages, 1, "{order:?}: carol gets bob's reply: {s:?}");
    let at_carol = carol.read("b");
    assert_eq!(
        texts(&at_carol, "in"),
        ["hello carol, bob here"],
        "{order:?}"
    );
    assert!(
        at_carol.iter().all(|m| m.verified),
        "{order:?}: {at_carol:?}"
    );

    // Carol answers; her answer verifies at bob and settles which introduction was hers.
    carol.send("b", "got it, carol here");
    let s = bob.sync();
    assert_eq!((s.messages, s.rejected), (1, 0), "{order:?}: {s:?}");
    let read = bob.read("carol");
    let answer = read
        .iter()
        .find(|m| m.text == "got it, carol here")
        .unwrap();
    assert!(answer.verified, "{order:?}: {read:?}");
    let show: Value = bob.json(&["contact", "show", "carol"]);
    assert_eq!(show["verified"], true, "{order:?}: {show}");
    assert_eq!(
        show["introductions"], 1,
        "{order:?}: the forged introduction is gone: {show}"
    );

    // The forger, with its own reply key as the check key or with none, is not carol any more.
    forger.send("carol again: the meeting moved", Some(&forger.reply), false);
    forger.send("carol again, introducing myself", None, true);
    let s = bob.sync();
    assert_eq!(
        (s.messages, s.requests, s.rejected),
        (0, 0, 2),
        "{order:?}: {s:?}"
    );
    assert!(
        bob.read("carol")
            .iter()
            .all(|m| !m.text.starts_with("carol again")),
        "{order:?}"
    );

    // The conversation goes on both ways, one entry per message again.
    let sent: SendJson = bob.send("carol", "see you");
    assert_eq!(sent.ids.len(), 1, "{order:?}: {sent:?}");
    assert_eq!(carol.sync().messages, 1, "{order:?}");
    assert!(texts(&carol.read("b"), "in").contains(&"see you".to_string()));
    carol.send("b", "see you too");
    assert_eq!(bob.sync().messages, 1, "{order:?}");
    let last = bob.read("carol");
    assert!(
        last.iter().any(|m| m.text == "see you too" && m.verified),
        "{order:?}: {last:?}"
    );
}

#[test]
fn forged_first_contact_then_genuine_reaches_the_real_sender() {
    forged_first_contact(Order::ForgedFirst);
}

#[test]
fn genuine_first_contact_then_forged_reaches_the_real_sender() {
    forged_first_contact(Order::GenuineFirst);
}

#[test]
fn genuine_first_contact_after_accepting_a_forged_one_reaches_the_real_sender() {
    forged_first_contact(Order::GenuineAfterAccept);
}

const DAY_MS: u64 = 24 * 3600 * 1000;

/// Alice starts a new check string and stops accepting the old one at once, as 8 days after a
/// `check-string rotate` (the grace is 7 days): the database is told the rotation happened then.
fn rotate_past_grace(a: &Person) -> String {
    let mut db = Db::open(&a.home, &mut || {
        Ok(deaddrop_client::keystore::Passphrase::new(
            deaddrop_harness::cli::PASSPHRASE.into(),
        ))
    })
    .unwrap();
    db.rotate_check(
        &CheckString::generate(&mut SystemRng),
        now_ms() - 8 * DAY_MS,
    )
    .unwrap();
    drop(db);
    a.card()
}

/// Two people who have written to each other, so each holds the other's key.
fn talking(url: &str) -> (Person, Person) {
    let (a, b) = DEADDROP.pair(url, "xwing");
    a.send("b", "one");
    assert_eq!(b.sync().messages, 1);
    b.send("a", "two");
    assert_eq!(a.sync().messages, 1);
    (a, b)
}

#[test]
fn a_rotated_check_string_reaches_contacts_in_verified_messages() {
    let ledger = ledger();
    let (a, b) = talking(&ledger.url());
    rotate_past_grace(&a);

    // B still seals with the old string: A rejects it, and says so.
    b.send("a", "sealed with the old check string");
    let raw: Value = a.json(&["sync"]);
    assert_eq!(raw["rejected"], 1, "{raw}");
    assert_eq!(raw["rejected_check_string"], 1, "{raw}");
    b.send("a", "again with the old check string");
    let out = a.run(&["sync"]).ok();
    assert!(
        out.stdout.contains("check string you no longer accept"),
        "{}",
        out.stdout
    );

    // A writes to B: the new check string travels inside the verified message.
    a.send("b", "my check string changed");
    let s = b.sync();
    assert_eq!((s.messages, s.rejected), (1, 0), "{s:?}");
    let read = b.read("a");
    assert!(
        read.iter()
            .any(|m| m.text == "my check string changed" && m.verified),
        "{read:?}"
    );
    b.send("a", "sealed with the new check string");
    let s: SyncJson = a.sync();
    assert_eq!((s.messages, s.rejected), (1, 0), "{s:?}");
    assert!(texts(&a.read("b"), "in").contains(&"sealed with the new check string".to_string()));

    // Once B has used it, A stops carrying it: A's messages are plain again and still arrive.
    a.send("b", "plain again");
    assert_eq!(b.sync().messages, 1);
}

#[test]
fn contact_update_takes_a_new_card() {
    let ledger = ledger();
    let (a, b) = talking(&ledger.url());
    let new_card = rotate_past_grace(&a);

    let updated: Value = b.json(&["contact", "update", &new_card]);
    assert_eq!(updated["name"], "a", "{updated}");
    b.send("a", "through the new card");
    let s = a.sync();
    assert_eq!((s.messages, s.rejected), (1, 0), "{s:?}");
    // The keys stay: the message is verified.
    let read = a.read("b");
    assert!(
        read.iter()
            .any(|m| m.text == "through the new card" && m.verified),
        "{read:?}"
    );

    // A card of someone who is not a contact is refused, saying what to do.
    let c = DEADDROP.person("carol", &ledger.url());
    c.init("xwing");
    let e = b
        .run(&["--json", "contact", "update", &c.card()])
        .json_error();
    assert!(e.hint.contains("contact add"), "{e:?}");
}

#[test]
fn a_replay_after_remove_and_re_add_is_a_duplicate() {
    let ledger = ledger();
    let url = ledger.url();
    let (a, b) = DEADDROP.pair(&url, "xwing");
    let sent = a.send("b", "said only once");
    assert_eq!(b.sync().messages, 1);
    assert_eq!(b.read("a").len(), 1);

    b.run(&["contact", "remove", "a"]).ok();
    b.add(&a.card(), "a");
    assert!(b.read("a").is_empty());

    // Anyone can append the entry again with another stamp: new bytes to the ledger, the same
    // sealed message to B.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let id = sent.ids[0];
    let rec = rt
        .block_on(deaddrop_harness::Api::new(&url).read(id - 1, 1))
        .records
        .remove(0);
    assert_eq!(rec.id, id);
    let mut replay = rec.entry.clone();
    let stamp = replay.len() - 8;
    replay[stamp] ^= 0xff;
    append_entries(&url, vec![replay], 1);

    let s = b.sync();
    assert_eq!((s.messages, s.duplicates), (0, 1), "{s:?}");
    assert!(b.read("a").is_empty(), "the replay came back as new");
    assert!(b.inbox().iter().all(|r| r.unread == 0));
}

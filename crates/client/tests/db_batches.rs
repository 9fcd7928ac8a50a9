//! The local database's promise to the sync engine (DESIGN §3.9): a batch's parts and the new
//! position commit together, so replaying entries (a sync that was interrupted and re-reads a
//! page, a ledger that stores an entry twice, an attacker who re-posts one) never makes a second
//! message, and a message split across batches, even across a reopen of the database, arrives
//! once and whole.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::PathBuf;

use deaddrop_client::db::{Db, FoundEntry};
use deaddrop_proto::rng::SystemRng;
use deaddrop_proto::testkit::Person;
use deaddrop_proto::{
    open, seal, CheckKey, CheckString, ContactCard, Entry, Identity, Opened, PairKeys, Suite,
};

const LEDGER: &str = "http://ledger.test:8470";

/// A temporary home, removed when dropped.
struct Home(PathBuf);

impl Home {
    fn new(tag: &str) -> Home {
        let mut bytes = [0u8; 8];
        rand_core::RngCore::fill_bytes(&mut SystemRng, &mut bytes);
        let name: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Home(std::env::temp_dir().join(format!("deaddrop-client-test-{tag}-{name}")))
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn person() -> Person {
    Person::generate(Suite::XWing, None, &mut SystemRng).unwrap()
}

/// My database with my identity; returns it and my card.
fn my_db(home: &Home, me: &Identity) -> (Db, ContactCard) {
    let mut db = Db::open(&home.0).unwrap();
    let sealed = deaddrop_client::keystore::seal(me, None).unwrap();
    db.create_identity(
        me.address(),
        Some("me"),
        &sealed,
        &CheckString::generate(&mut SystemRng),
        1,
    )
    .unwrap();
    let card = db.my_card(1).unwrap();
    (db, card)
}

/// Opens `entries` as the database's identity would during a sync, numbering them from
/// `first_id`.
fn found(db: &Db, me: &Identity, first_id: u64, entries: &[Entry]) -> Vec<FoundEntry> {
    let accepted = db.accepted_checks(2).unwrap();
    let book = db.book().unwrap();
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| FoundEntry {
            id: first_id + i as u64,
            time_ms: 1000 + i as u64,
            opened: open(me, &accepted, &book, e),
        })
        .collect()
}

#[test]
fn a_message_split_across_batches_and_a_reopen_arrives_once() {
    let home = Home::new("split");
    let me = Identity::generate(Suite::XWing, &mut SystemRng).unwrap();
    let (mut db, my_card) = my_db(&home, &me);
    let sender = person();
    let issued = CheckKey::generate(&mut SystemRng);
    db.add_contact("sender", &sender.card, &issued, 1).unwrap();

    let capacity = Suite::XWing.layout().part_capacity(false);
    let text: String = (0..capacity * 2 + 10)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let reply = CheckKey::generate(&mut SystemRng);
    let keys = PairKeys {
        check: Some(&issued),
        reply: &reply,
    };
    let parts = seal(&sender.id, &my_card, keys, text.as_bytes(), None, 5).unwrap();
    assert_eq!(parts.len(), 3);

    // First page: parts 0 and 1. The message is not complete yet.
    let batch = found(&db, &me, 1, &parts[..2]);
    assert!(batch.iter().all(|f| matches!(f.opened, Opened::Message(_))));
    let stats = db.apply_batch(LEDGER, 2, batch).unwrap();
    assert_eq!((stats.messages, stats.partial), (0, 2), "{stats:?}");
    assert_eq!(db.last_id(LEDGER).unwrap(), 2);

    // The process dies here; a new one opens the database and re-reads from its position,
    // getting part 1 again (a ledger that stored it twice) and part 2.
    drop(db);
    let mut db = Db::open(&home.0).unwrap();
    let again = [parts[1].clone(), parts[2].clone()];
    let batch = found(&db, &me, 3, &again);
    let stats = db.apply_batch(LEDGER, 4, batch).unwrap();
    assert_eq!((stats.messages, stats.duplicates), (1, 1), "{stats:?}");
    assert_eq!(stats.new.len(), 1);
    assert_eq!(stats.new[0].text, text);
    assert!(stats.new[0].verified);

    // Every part replayed later changes nothing.
    let batch = found(&db, &me, 5, &parts);
    let stats = db.apply_batch(LEDGER, 7, batch).unwrap();
    assert_eq!(stats.messages, 0, "{stats:?}");
    assert_eq!(stats.duplicates, 3, "{stats:?}");
    let conversation = db.conversation("sender").unwrap();
    assert_eq!(conversation.len(), 1);
    assert_eq!(conversation[0].text, text);
    assert_eq!(db.last_id(LEDGER).unwrap(), 7);
}

#[test]
fn a_replayed_request_is_one_request_and_the_position_never_goes_back() {
    let home = Home::new("request");
    let me = Identity::generate(Suite::XWing, &mut SystemRng).unwrap();
    let (mut db, my_card) = my_db(&home, &me);
    let stranger = person();
    let reply = CheckKey::generate(&mut SystemRng);
    let keys = PairKeys {
        check: None,
        reply: &reply,
    };
    let entry = seal(
        &stranger.id,
        &my_card,
        keys,
        b"hello, you don't know me",
        Some(&stranger.card.checks()[0]),
        5,
    )
    .unwrap()
    .pop()
    .unwrap();

    let stats = db
        .apply_batch(
            LEDGER,
            10,
            found(&db, &me, 10, std::slice::from_ref(&entry)),
        )
        .unwrap();
    assert_eq!(stats.requests, 1, "{stats:?}");
    // An older page applied late (or a replay) neither adds a request nor moves the position
    // back.
    let stats = db
        .apply_batch(LEDGER, 5, found(&db, &me, 5, &[entry]))
        .unwrap();
    assert_eq!((stats.requests, stats.duplicates), (0, 1), "{stats:?}");
    assert_eq!(db.last_id(LEDGER).unwrap(), 10);
    let requests = db.requests().unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].text, "hello, you don't know me");
    assert_eq!(requests[0].fingerprint, stranger.id.address().fingerprint());
}

//! The local database's promise to the sync (docs/DESIGN.md §3.9): a batch's parts and the new
//! position commit together, so replaying entries (a sync that was interrupted and re-reads a
//! page, a ledger that stores an entry twice, an attacker who re-posts one) never makes a second
//! message, and a message split across batches, even across a reopen of the database, arrives
//! once and whole.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use deaddrop_client::db::{Db, FoundEntry};
use deaddrop_proto::message::MessageId;
use deaddrop_proto::rng::SystemRng;
use deaddrop_proto::testkit::Person;
use deaddrop_proto::{
    open, seal, seal_with_parts, CheckKey, CheckString, ContactCard, Encapsulation, Entry,
    EntryParts, Identity, Opened, PairKeys, Part, Suite,
};
use zeroize::Zeroizing;

mod common;
use common::Home;

const LEDGER: &str = "http://ledger.test:8470";

fn person() -> Person {
    Person::generate(Suite::XWing, None, &mut SystemRng).unwrap()
}

/// My database with my identity; returns it and my card.
fn my_db(home: &Home, me: &Identity) -> (Db, ContactCard) {
    let mut db = Db::create(&home.0, None).unwrap();
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
    let mut db = Db::open(&home.0, &mut || unreachable!("no passphrase")).unwrap();
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

#[test]
fn a_spoof_after_a_verified_entry_of_the_same_batch_is_rejected_not_shown() {
    let home = Home::new("spoof");
    let me = Identity::generate(Suite::XWing, &mut SystemRng).unwrap();
    let (mut db, my_card) = my_db(&home, &me);
    let sender = person();
    let issued = CheckKey::generate(&mut SystemRng);
    db.add_contact("sender", &sender.card, &issued, 1).unwrap();
    let reply = CheckKey::generate(&mut SystemRng);
    let keys = PairKeys {
        check: Some(&issued),
        reply: &reply,
    };
    let genuine = seal(&sender.id, &my_card, keys, b"it is me", None, 5)
        .unwrap()
        .pop()
        .unwrap();
    // The spoofer knows the sender's address and my card, not the key I issued to the sender.
    let guess = CheckKey::generate(&mut SystemRng);
    let spoof_reply = CheckKey::generate(&mut SystemRng);
    let keys = PairKeys {
        check: Some(&guess),
        reply: &spoof_reply,
    };
    let spoof = seal(sender.id.address(), &my_card, keys, b"send money", None, 6)
        .unwrap()
        .pop()
        .unwrap();

    // Both are opened with the contact book from before the batch, where the sender has not
    // proven its key yet, so `open` calls the spoof unverified. The genuine entry comes first on
    // the ledger and confirms the sender; from then on a failing check is a spoof
    // (PROTOCOL.md §8.3), wherever the page boundaries fall.
    let batch = found(&db, &me, 1, &[genuine, spoof]);
    assert!(matches!(&batch[1].opened, Opened::Message(m) if !m.verified));
    let stats = db.apply_batch(LEDGER, 2, batch).unwrap();
    assert_eq!((stats.messages, stats.rejected), (1, 1), "{stats:?}");
    let conversation = db.conversation("sender").unwrap();
    assert_eq!(
        conversation.len(),
        1,
        "the spoof is shown: {conversation:?}"
    );
    assert_eq!(conversation[0].text, "it is me");
    assert!(conversation[0].verified);
    let contact = db.contact("sender").unwrap();
    assert!(contact.confirmed);
    assert_eq!(
        contact.their_key.map(|k| k.export_bytes()),
        Some(reply.export_bytes())
    );
    assert!(db
        .counters()
        .unwrap()
        .contains(&("rejected-check".to_string(), 1)));
}

/// One part of message `id` from `from` to `to`, with every field given.
fn part(
    from: &Person,
    to: &ContactCard,
    check: Option<&CheckKey>,
    id: MessageId,
    (index, count): (u16, u16),
    text: &[u8],
) -> Entry {
    let reply = CheckKey::generate(&mut SystemRng);
    let parts = EntryParts {
        part: Part {
            message_id: id,
            index,
            count,
            sent_at_ms: 5,
            text: Zeroizing::new(text.to_vec()),
        },
        random_check: [7; 32],
        intro: None,
    };
    let kem = Encapsulation::new(to.address(), &mut SystemRng).unwrap();
    let keys = PairKeys {
        check,
        reply: &reply,
    };
    seal_with_parts(&from.id, to, keys, &parts, &kem).unwrap()
}

#[test]
fn parts_that_disagree_are_joined_by_the_first_count_to_complete_and_shown_as_utf8() {
    let home = Home::new("disagree");
    let me = Identity::generate(Suite::XWing, &mut SystemRng).unwrap();
    let (mut db, my_card) = my_db(&home, &me);
    let sender = person();
    let issued = CheckKey::generate(&mut SystemRng);
    db.add_contact("sender", &sender.card, &issued, 1).unwrap();

    // Message A: part 0 unverified, part 1 verified, and "é" (c3 a9) split between them,
    // followed by a byte that is not UTF-8.
    let a = MessageId::generate(&mut SystemRng);
    // Message B: part 0 of 2, part 2 of 3, part 0 of 3 (same key as the first: a duplicate),
    // part 1 of 2 (completes B as two parts), part 1 of 3 (B is complete: a duplicate).
    let b = MessageId::generate(&mut SystemRng);
    let entries = [
        part(&sender, &my_card, None, a, (0, 2), b"caf\xc3"),
        part(&sender, &my_card, Some(&issued), a, (1, 2), b"\xa9 \xff!"),
        part(&sender, &my_card, Some(&issued), b, (0, 2), b"one "),
        part(&sender, &my_card, Some(&issued), b, (2, 3), b"three"),
        part(&sender, &my_card, Some(&issued), b, (0, 3), b"ONE "),
        part(&sender, &my_card, Some(&issued), b, (1, 2), b"two"),
        part(&sender, &my_card, Some(&issued), b, (1, 3), b"TWO "),
    ];
    let mut stats = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        let id = 1 + i as u64;
        let batch = found(&db, &me, id, std::slice::from_ref(e));
        stats.push(db.apply_batch(LEDGER, id, batch).unwrap());
    }
    let duplicates: u64 = stats.iter().map(|s| s.duplicates).sum();
    assert_eq!(duplicates, 2, "{stats:?}");
    let conversation = db.conversation("sender").unwrap();
    let shown: Vec<(&str, bool)> = conversation
        .iter()
        .map(|m| (m.text.as_str(), m.verified))
        .collect();
    assert_eq!(shown, [("café \u{fffd}!", false), ("one two", true)]);
}

/// A contact's check string changes only through a verified entry (PROTOCOL.md §8.3): an
/// unverified `INTRO` carrying another one (anyone who knows the address can send that) changes
/// nothing we hold; a verified one is the contact telling us its new check string, and a replay
/// of an older verified entry does not roll it back.
#[test]
fn a_contacts_intro_with_another_check_string_changes_the_card_only_when_verified() {
    let home = Home::new("intro");
    let me = Identity::generate(Suite::XWing, &mut SystemRng).unwrap();
    let (mut db, my_card) = my_db(&home, &me);
    let sender = person();
    let issued = CheckKey::generate(&mut SystemRng);
    db.add_contact("sender", &sender.card, &issued, 1).unwrap();
    let reply = CheckKey::generate(&mut SystemRng);
    let sealed = |check: Option<&CheckKey>, text: &str, carried: &CheckString| {
        let keys = PairKeys {
            check,
            reply: &reply,
        };
        seal(
            &sender.id,
            &my_card,
            keys,
            text.as_bytes(),
            Some(carried),
            5,
        )
        .unwrap()
        .pop()
        .unwrap()
    };

    let forged = CheckString::generate(&mut SystemRng);
    let batch = found(&db, &me, 1, &[sealed(None, "new card?", &forged)]);
    assert!(
        matches!(&batch[0].opened, Opened::Message(m) if !m.verified && m.sender_check == Some(forged.clone()))
    );
    let stats = db.apply_batch(LEDGER, 1, batch).unwrap();
    assert_eq!(stats.messages, 1, "{stats:?}");
    assert_eq!(
        db.contact("sender").unwrap().card,
        sender.card,
        "an unverified entry changed the card (PROTOCOL.md §8.3)"
    );

    let rotated = CheckString::generate(&mut SystemRng);
    let first = sealed(Some(&issued), "my check string changed", &rotated);
    let batch = found(&db, &me, 2, std::slice::from_ref(&first));
    assert!(matches!(&batch[0].opened, Opened::Message(m) if m.verified));
    db.apply_batch(LEDGER, 2, batch).unwrap();
    let card = db.contact("sender").unwrap().card;
    assert_eq!(card.address(), sender.card.address());
    assert_eq!(
        card.checks()[0],
        rotated,
        "the verified check string was not taken"
    );
    assert!(card.checks().contains(&sender.card.checks()[0]));

    let again = CheckString::generate(&mut SystemRng);
    let batch = found(&db, &me, 3, &[sealed(Some(&issued), "and again", &again)]);
    db.apply_batch(LEDGER, 3, batch).unwrap();
    // A replay of the older entry is a duplicate: it does not bring the older string back.
    let batch = found(&db, &me, 4, &[first]);
    let stats = db.apply_batch(LEDGER, 4, batch).unwrap();
    assert_eq!(stats.duplicates, 1, "{stats:?}");
    assert_eq!(db.contact("sender").unwrap().card.checks()[0], again);
}

//! What the local database keeps about peers, and its bounds (docs/PROTOCOL.md §7.3, §8.5):
//! introductions of one address are kept up to [`MAX_INTRODUCTIONS`], the least recently seen
//! dropped, and the verified answer under the key issued to one of them settles which was
//! genuine; message ids outlive a removed contact for a bounded time, and a part sealed longer
//! ago than that is stale.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use deaddrop_client::db::{Db, FoundEntry, MAX_INTRODUCTIONS, STALE_MS};
use deaddrop_proto::rng::SystemRng;
use deaddrop_proto::testkit::Person;
use deaddrop_proto::{open, seal, CheckKey, CheckString, ContactCard, Entry, Identity, Suite};
use deaddrop_proto::{Opened, PairKeys, RejectReason};

mod common;
use common::Home;

const LEDGER: &str = "http://ledger.test:8470";
const DAY_MS: u64 = 24 * 3600 * 1000;
/// A ledger time well after the epoch, at the start of a day.
const T: u64 = 20_000 * DAY_MS;

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

/// Opens `entry` as the database's identity would and stores it as ledger id `id` at `time_ms`.
fn apply(
    db: &mut Db,
    me: &Identity,
    id: u64,
    time_ms: u64,
    entry: &Entry,
) -> deaddrop_client::db::BatchStats {
    let accepted = db.accepted_checks(2).unwrap();
    let book = db.book().unwrap();
    let opened = open(me, &accepted, &book, entry);
    db.apply_batch(
        LEDGER,
        id,
        vec![FoundEntry {
            id,
            time_ms,
            opened,
        }],
    )
    .unwrap()
}

/// One entry from `from`'s address to `to`, sealed at `sent_at`.
fn entry(
    from: &Person,
    to: &ContactCard,
    check: Option<&CheckKey>,
    reply: &CheckKey,
    intro: Option<&CheckString>,
    text: &str,
    sent_at: u64,
) -> Entry {
    let keys = PairKeys { check, reply };
    seal(from.id.address(), to, keys, text.as_bytes(), intro, sent_at)
        .unwrap()
        .pop()
        .unwrap()
}

#[test]
fn introductions_of_an_address_are_bounded_and_the_owners_answer_settles_them() {
    let home = Home::new("intros");
    let me = Identity::generate(Suite::XWing, &mut SystemRng).unwrap();
    let (mut db, my_card) = my_db(&home, &me);
    let owner = Person::generate(Suite::XWing, None, &mut SystemRng).unwrap();
    let owner_check = owner.card.checks()[0].clone();
    let owner_reply = CheckKey::generate(&mut SystemRng);
    let genuine = |text: &str| {
        entry(
            &owner,
            &my_card,
            None,
            &owner_reply,
            Some(&owner_check),
            text,
            5,
        )
    };
    // Forgers: the owner's address with their own check strings and reply keys.
    let forged = |text: &str| {
        entry(
            &owner,
            &my_card,
            None,
            &CheckKey::generate(&mut SystemRng),
            Some(&CheckString::generate(&mut SystemRng)),
            text,
            5,
        )
    };

    let mut id = 1;
    let s = apply(&mut db, &me, id, 1000, &genuine("it's me"));
    assert_eq!(s.requests, 1, "{s:?}");
    // A flood of forged introductions pushes the genuine one out...
    for i in 0..MAX_INTRODUCTIONS + 2 {
        id += 1;
        apply(&mut db, &me, id, 1000, &forged(&format!("forged {i}")));
    }
    let reqs = db.requests().unwrap();
    assert!(reqs
        .iter()
        .all(|q| q.introductions == MAX_INTRODUCTIONS as u64));
    // ...until the owner writes again (every first message carries its introduction).
    id += 1;
    apply(&mut db, &me, id, 1000, &genuine("it's still me"));
    // One more forgery after it: the newest introduction is a forged one.
    id += 1;
    apply(&mut db, &me, id, 1000, &forged("the newest"));
    let reqs = db.requests().unwrap();
    assert!(reqs
        .iter()
        .all(|q| q.introductions == MAX_INTRODUCTIONS as u64));

    let issued = CheckKey::generate(&mut SystemRng);
    let contact = db.accept_request(reqs[0].id, "owner", &issued, 1).unwrap();
    assert_eq!(
        db.introductions(&contact).unwrap(),
        MAX_INTRODUCTIONS as u64
    );
    let recipients = db.recipients(&contact).unwrap();
    assert_eq!(recipients.len(), MAX_INTRODUCTIONS);
    // Every copy goes to the owner's address; each issues its own key.
    assert!(recipients
        .iter()
        .all(|r| r.card.address() == owner.card.address()));
    let mut keys: Vec<[u8; 32]> = recipients.iter().map(|r| r.reply.export_bytes()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), MAX_INTRODUCTIONS);
    let theirs = recipients
        .iter()
        .find(|r| r.check.as_ref() == Some(&owner_reply))
        .expect("the owner's introduction is one of them");
    assert_eq!(theirs.card.checks()[0], owner_check);
    assert_ne!(
        contact.card.checks()[0],
        owner_check,
        "the newest is forged"
    );

    // The owner opens its copy and answers under the key issued in it.
    let answer_reply = CheckKey::generate(&mut SystemRng);
    id += 1;
    let answer = entry(
        &owner,
        &my_card,
        Some(&theirs.reply),
        &answer_reply,
        None,
        "got your reply",
        5,
    );
    let s = apply(&mut db, &me, id, 1000, &answer);
    assert_eq!((s.messages, s.rejected), (1, 0), "{s:?}");
    let contact = db.contact("owner").unwrap();
    assert!(contact.confirmed);
    assert_eq!(contact.card.checks(), std::slice::from_ref(&owner_check));
    assert_eq!(contact.issued_key, theirs.reply);
    assert_eq!(contact.their_key.as_ref(), Some(&answer_reply));
    assert_eq!(db.introductions(&contact).unwrap(), 1);
    assert_eq!(db.recipients(&contact).unwrap().len(), 1);

    // A forger's entry, with or without an introduction, is not the owner's any more.
    for intro in [None, Some(CheckString::generate(&mut SystemRng))] {
        id += 1;
        let forger_reply = CheckKey::generate(&mut SystemRng);
        let e = entry(
            &owner,
            &my_card,
            Some(&forger_reply),
            &forger_reply,
            intro.as_ref(),
            "believe me",
            5,
        );
        let s = apply(&mut db, &me, id, 1000, &e);
        assert_eq!((s.messages, s.rejected), (0, 1), "{s:?}");
    }
    assert_eq!(db.introductions(&contact).unwrap(), 1);
}

#[test]
fn an_unconfirmed_contacts_other_introductions_are_kept_for_replies() {
    let home = Home::new("contact-intros");
    let me = Identity::generate(Suite::XWing, &mut SystemRng).unwrap();
    let (mut db, my_card) = my_db(&home, &me);
    let owner = Person::generate(Suite::XWing, None, &mut SystemRng).unwrap();
    // Added by card; a forger's introduction arrives first and its reply key is held.
    let issued = CheckKey::generate(&mut SystemRng);
    db.add_contact("owner", &owner.card, &issued, 1).unwrap();
    let forger_reply = CheckKey::generate(&mut SystemRng);
    let forged = entry(
        &owner,
        &my_card,
        None,
        &forger_reply,
        Some(&CheckString::generate(&mut SystemRng)),
        "forged",
        5,
    );
    apply(&mut db, &me, 1, 1000, &forged);
    let contact = db.contact("owner").unwrap();
    assert_eq!(contact.their_key.as_ref(), Some(&forger_reply));
    assert_eq!(
        contact.card, owner.card,
        "an unverified entry changed the card"
    );
    // The owner's own introduction: kept beside it, with a key of its own.
    let owner_reply = CheckKey::generate(&mut SystemRng);
    let genuine = entry(
        &owner,
        &my_card,
        None,
        &owner_reply,
        Some(&owner.card.checks()[0]),
        "genuine",
        5,
    );
    let s = apply(&mut db, &me, 2, 1000, &genuine);
    assert_eq!(s.messages, 1);
    let recipients = db.recipients(&contact).unwrap();
    assert_eq!(recipients.len(), 2);
    assert!(recipients
        .iter()
        .any(|r| r.check.as_ref() == Some(&owner_reply)));
    // The card and the key held did not change: only a verified entry changes them.
    let contact = db.contact("owner").unwrap();
    assert_eq!(contact.card, owner.card);
    assert_eq!(contact.their_key.as_ref(), Some(&forger_reply));
}

#[test]
fn a_part_sealed_before_what_is_remembered_is_stale() {
    let home = Home::new("stale");
    let me = Identity::generate(Suite::XWing, &mut SystemRng).unwrap();
    let (mut db, my_card) = my_db(&home, &me);
    let sender = Person::generate(Suite::XWing, None, &mut SystemRng).unwrap();
    let issued = CheckKey::generate(&mut SystemRng);
    db.add_contact("sender", &sender.card, &issued, 1).unwrap();
    let reply = CheckKey::generate(&mut SystemRng);
    let old = entry(
        &sender,
        &my_card,
        Some(&issued),
        &reply,
        None,
        "from long ago",
        1000,
    );
    let s = apply(&mut db, &me, 1, 1000 + STALE_MS + 1, &old);
    assert_eq!((s.messages, s.rejected), (0, 1), "{s:?}");
    assert!(db
        .counters()
        .unwrap()
        .contains(&("rejected-stale".to_string(), 1)));
    // Sealed just within the bound: a message.
    let recent = entry(
        &sender,
        &my_card,
        Some(&issued),
        &reply,
        None,
        "a month late",
        1000,
    );
    let s = apply(&mut db, &me, 2, 1000 + STALE_MS, &recent);
    assert_eq!(s.messages, 1, "{s:?}");
}

#[test]
fn seen_ids_outlive_a_removed_contact_until_they_expire() {
    let home = Home::new("seen");
    let me = Identity::generate(Suite::XWing, &mut SystemRng).unwrap();
    let (mut db, my_card) = my_db(&home, &me);
    let sender = Person::generate(Suite::XWing, None, &mut SystemRng).unwrap();
    let issued = CheckKey::generate(&mut SystemRng);
    db.add_contact("sender", &sender.card, &issued, 1).unwrap();
    let reply = CheckKey::generate(&mut SystemRng);
    let e = entry(
        &sender,
        &my_card,
        None,
        &reply,
        Some(&sender.card.checks()[0]),
        "once",
        T - 5,
    );
    assert_eq!(apply(&mut db, &me, 1, T, &e).messages, 1);

    db.remove_contact("sender").unwrap();
    db.add_contact("sender", &sender.card, &issued, 1).unwrap();
    let s = apply(&mut db, &me, 2, T + 1000, &e);
    assert_eq!((s.messages, s.duplicates), (0, 1), "{s:?}");
    assert!(db.conversation("sender").unwrap().is_empty());

    // A rejected request's ids are remembered too.
    let stranger = Person::generate(Suite::XWing, None, &mut SystemRng).unwrap();
    let q = entry(
        &stranger,
        &my_card,
        None,
        &reply,
        Some(&stranger.card.checks()[0]),
        "hello",
        T - 5,
    );
    assert_eq!(apply(&mut db, &me, 3, T, &q).requests, 1);
    let id = db.requests().unwrap()[0].id;
    db.reject_request(id).unwrap();
    db.add_contact("stranger", &stranger.card, &issued, 1)
        .unwrap();
    let s = apply(&mut db, &me, 4, T + 1000, &q);
    assert_eq!((s.messages, s.duplicates), (0, 1), "{s:?}");

    // Past the retention the ids are forgotten (sync does this with the ledger's lifetime).
    assert_eq!(db.forget_seen_before(T + DAY_MS).unwrap(), 2);
    db.remove_contact("sender").unwrap();
    db.add_contact("sender", &sender.card, &issued, 1).unwrap();
    let s = apply(&mut db, &me, 5, T + 2 * DAY_MS, &e);
    assert_eq!(s.messages, 1, "{s:?}");
}

#[test]
fn a_check_string_we_no_longer_accept_is_counted_apart() {
    let home = Home::new("old-check");
    let me = Identity::generate(Suite::XWing, &mut SystemRng).unwrap();
    let (mut db, my_card) = my_db(&home, &me);
    let sender = Person::generate(Suite::XWing, None, &mut SystemRng).unwrap();
    let issued = CheckKey::generate(&mut SystemRng);
    db.add_contact("sender", &sender.card, &issued, 1).unwrap();
    // Rotated long ago: the old string's grace is over.
    db.rotate_check(&CheckString::generate(&mut SystemRng), 0)
        .unwrap();
    let accepted = db
        .accepted_checks(deaddrop_client::db::CHECK_GRACE_MS + 1)
        .unwrap();
    assert_eq!(accepted.len(), 1);
    let reply = CheckKey::generate(&mut SystemRng);
    let e = entry(&sender, &my_card, None, &reply, None, "old card", 5);
    let opened = open(&me, &accepted, &db.book().unwrap(), &e);
    assert!(matches!(
        opened,
        Opened::Rejected(RejectReason::CheckString)
    ));
    let s = db
        .apply_batch(
            LEDGER,
            1,
            vec![FoundEntry {
                id: 1,
                time_ms: 1000,
                opened,
            }],
        )
        .unwrap();
    assert_eq!((s.rejected, s.rejected_check_string), (1, 1), "{s:?}");
}

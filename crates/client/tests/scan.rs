//! The batch scan finds exactly the entries sealed to the scanner, in index order, whether it
//! runs on one thread or on a pool of several.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use deaddrop_client::scan::{scan, scan_parallel, thread_pool, Found};
use deaddrop_proto::rng::SystemRng;
use deaddrop_proto::testkit::Person;
use deaddrop_proto::{seal, CheckKey, Entry, Opened, PairKeys, Suite};

fn person() -> Person {
    Person::generate(Suite::XWing, None, &mut SystemRng).unwrap()
}

fn seal_one(from: &Person, to: &Person, text: &str) -> Entry {
    let reply = CheckKey::generate(&mut SystemRng);
    let keys = PairKeys {
        check: None,
        reply: &reply,
    };
    let mut entries = seal(
        &from.id,
        &to.card,
        keys,
        text.as_bytes(),
        Some(&from.checks[0]),
        1,
    )
    .unwrap();
    assert_eq!(entries.len(), 1);
    entries.pop().unwrap()
}

/// Index and text of every request found.
fn requests(found: &Found) -> Vec<(usize, String)> {
    found
        .iter()
        .map(|(i, opened)| match opened {
            Opened::Request(r) => (*i, String::from_utf8(r.part.text.to_vec()).unwrap()),
            other => panic!("entry {i}: {other:?}"),
        })
        .collect()
}

#[test]
fn one_thread_and_a_pool_find_exactly_my_entries_in_order() {
    let [me, a, b] = [person(), person(), person()];
    let mine = [3, 17, 18, 39];
    let entries: Vec<Entry> = (0..40)
        .map(|i| {
            let text = format!("entry {i}");
            if mine.contains(&i) {
                seal_one(&a, &me, &text)
            } else {
                seal_one(&a, &b, &text)
            }
        })
        .collect();
    let expected: Vec<(usize, String)> = mine.iter().map(|&i| (i, format!("entry {i}"))).collect();

    assert_eq!(requests(&scan(&me.id, &me.checks, &(), &entries)), expected);
    for threads in [1, 3] {
        let pool = thread_pool(threads).unwrap();
        let found = pool.install(|| scan_parallel(&me.id, &me.checks, &(), &entries));
        assert_eq!(requests(&found), expected, "{threads} threads");
    }
    let b_found = scan_parallel(&b.id, &b.checks, &(), &entries);
    assert_eq!(b_found.len(), entries.len() - mine.len());
}

#[test]
fn an_empty_batch_finds_nothing() {
    let me = person();
    assert!(scan(&me.id, &me.checks, &(), &[]).is_empty());
    assert!(scan_parallel(&me.id, &me.checks, &(), &[]).is_empty());
}

//! Runs the fuzz targets' seed corpus (`fuzz/corpus/<target>/`) through the same functions the
//! fuzz targets call (`fuzz/targets_common.rs`), so every CI run exercises them without
//! cargo-fuzz. The seed files and the fixtures the targets open entries with are generated here
//! from the vector identities and checked byte for byte; `DEADDROP_REGENERATE_VECTORS=1`
//! rewrites them. Files a fuzzing run adds to the corpus directories are run too.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod fixtures;

include!("../../../fuzz/targets_common.rs");

use std::path::Path;

use deaddrop_proto::{
    seal_with_parts, CheckKey, CheckString, ContactCard, EntryParts, MessageId, PairKeys, Part,
    Suite,
};
use fixtures::{bytes, check_or_write, encapsulate, fuzz_dir, people, rng};
use rand_chacha::rand_core::RngCore;
use zeroize::Zeroizing;

const TARGETS: [&str; 3] = ["entry", "card", "address"];

/// A generated file under `fuzz/`, and for corpus seeds the label its target must return.
struct Seed {
    path: String,
    content: Vec<u8>,
    expect: Option<&'static str>,
}

fn corpus(target: &str, name: &str, content: Vec<u8>, expect: &'static str) -> Seed {
    Seed {
        path: format!("corpus/{target}/{name}"),
        content,
        expect: Some(expect),
    }
}

fn fixture_file(name: &str, content: Vec<u8>) -> Seed {
    Seed {
        path: format!("fixtures/{name}"),
        content,
        expect: None,
    }
}

/// The card the fixture receiver (Bob) hands out: the check string the targets accept.
fn receiver_card(suite: Suite) -> ContactCard {
    ContactCard::new(
        people(suite)[1].id.address().clone(),
        vec![CheckString::from_bytes(targets::ACCEPTED_CHECK_STRING)],
        Some("bob".into()),
    )
    .unwrap()
}

/// One entry from `from` (index into the vector people) sealed to `to`'s card.
fn entry_bytes(suite: Suite, from: usize, to: &ContactCard, confirmed: bool, seed: u64) -> Vec<u8> {
    let mut r = rng(seed);
    let issued = CheckKey::from_bytes(targets::ISSUED_CHECK_KEY);
    let reply = CheckKey::generate(&mut r);
    let parts = EntryParts {
        part: Part {
            message_id: MessageId::generate(&mut r),
            index: 0,
            count: 1,
            sent_at_ms: 1,
            text: Zeroizing::new(b"fuzz seed".to_vec()),
        },
        random_check: bytes::<32>(&mut r),
        intro: (!confirmed).then(|| people(suite)[from].checks[0].clone()),
    };
    let (kem, _) = encapsulate(to.address(), &mut r);
    let keys = PairKeys {
        check: confirmed.then_some(&issued),
        reply: &reply,
    };
    seal_with_parts(&people(suite)[from].id, to, keys, &parts, &kem)
        .unwrap()
        .as_bytes()
        .to_vec()
}

fn random(len: usize, seed: u64) -> Vec<u8> {
    let mut b = vec![0u8; len];
    rng(seed).fill_bytes(&mut b);
    b
}

fn generate() -> Vec<Seed> {
    let mut out = Vec::new();
    for (i, suite) in Suite::ALL.into_iter().enumerate() {
        let s = suite.name();
        let [alice, bob, carol] = people(suite);
        out.push(fixture_file(
            &format!("{s}-receiver.ddid"),
            bob.id.export_secret().to_vec(),
        ));
        out.push(fixture_file(
            &format!("{s}-contact.txt"),
            format!("{}\n", alice.id.address().to_text()).into_bytes(),
        ));

        let seed = 500 + 10 * i as u64;
        let card = receiver_card(suite);
        let message = entry_bytes(suite, 0, &card, true, seed);
        let mut tampered = message.clone();
        tampered[suite.layout().cipher_at() + 5] ^= 0x40;
        out.push(corpus("entry", &format!("{s}-message"), message, "message"));
        out.push(corpus(
            "entry",
            &format!("{s}-request"),
            entry_bytes(suite, 2, &card, false, seed + 1),
            "request",
        ));
        out.push(corpus(
            "entry",
            &format!("{s}-tampered"),
            tampered,
            "rejected",
        ));
        out.push(corpus(
            "entry",
            &format!("{s}-for-carol"),
            entry_bytes(suite, 0, &carol.card, true, seed + 2),
            "not-for-me",
        ));
        out.push(corpus(
            "entry",
            &format!("{s}-random"),
            random(suite.layout().entry_len, seed + 3),
            "not-for-me",
        ));

        let text = card.to_text();
        out.push(corpus(
            "card",
            &format!("{s}-valid"),
            text.clone().into_bytes(),
            "valid",
        ));
        let wrapped: Vec<String> = text
            .as_bytes()
            .chunks(64)
            .map(|l| String::from_utf8(l.to_vec()).unwrap())
            .collect();
        out.push(corpus(
            "card",
            &format!("{s}-wrapped"),
            (wrapped.join("\n") + "\n").into_bytes(),
            "valid",
        ));
        out.push(corpus(
            "card",
            &format!("{s}-binary"),
            card.to_bytes(),
            "not-utf8",
        ));
        let mut typo = text.clone().into_bytes();
        typo[60] = if typo[60] == b'A' { b'B' } else { b'A' };
        out.push(corpus("card", &format!("{s}-typo"), typo, "rejected"));
        out.push(corpus(
            "card",
            &format!("{s}-truncated"),
            text.as_bytes()[..text.len() - 9].to_vec(),
            "rejected",
        ));

        let addr = bob.id.address().to_text();
        out.push(corpus(
            "address",
            &format!("{s}-valid"),
            addr.clone().into_bytes(),
            "valid",
        ));
        let mut typo = addr.clone().into_bytes();
        typo[40] = if typo[40] == b'A' { b'B' } else { b'A' };
        out.push(corpus("address", &format!("{s}-typo"), typo, "rejected"));
        out.push(corpus(
            "address",
            &format!("{s}-raw-key"),
            bob.id.address().key_bytes().to_vec(),
            "not-utf8",
        ));
    }
    out.push(corpus("entry", "empty", Vec::new(), "not-an-entry"));
    out.push(corpus("entry", "short", random(100, 590), "not-an-entry"));
    out.push(corpus(
        "card",
        "not-a-card",
        b"deaddrop-address-v1:xwing:AAAA".to_vec(),
        "rejected",
    ));
    out.push(corpus("card", "random", random(64, 591), "not-utf8"));
    out.push(corpus(
        "address",
        "unknown-suite",
        b"deaddrop-address-v1:kyber:AAAA".to_vec(),
        "rejected",
    ));
    out.push(corpus("address", "random", random(64, 592), "not-utf8"));
    out
}

fn run(target: &str, data: &[u8]) -> &'static str {
    match target {
        "entry" => targets::entry(data),
        "card" => targets::card(data),
        "address" => targets::address(data),
        other => panic!("unknown fuzz target {other}"),
    }
}

#[test]
fn seed_corpus_and_fixtures_match_the_generator() {
    let seeds = generate();
    // All files first: the targets read the fixtures, so a stale one must not stop the rewrite.
    for seed in &seeds {
        check_or_write(&fuzz_dir().join(&seed.path), &seed.content);
    }
    if fixtures::regenerating() {
        // The targets compiled into this binary hold the fixtures as they were before the
        // rewrite; the next plain run checks the new ones.
        return;
    }
    for seed in seeds {
        if let (Some(expect), Some(target)) = (
            seed.expect,
            seed.path
                .strip_prefix("corpus/")
                .and_then(|p| p.split('/').next()),
        ) {
            // The generated seed means what its name says.
            assert_eq!(run(target, &seed.content), expect, "{}", seed.path);
        }
    }
}

#[test]
fn every_corpus_file_runs_through_its_target() {
    let expected: std::collections::HashMap<String, &'static str> = generate()
        .into_iter()
        .filter_map(|s| s.expect.map(|e| (s.path, e)))
        .collect();
    if fixtures::regenerating() {
        return; // see seed_corpus_and_fixtures_match_the_generator
    }
    let mut ran = 0;
    for target in TARGETS {
        let dir = fuzz_dir().join("corpus").join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "{} is empty", dir.display());
        for path in files {
            let data = std::fs::read(&path).unwrap();
            let outcome = run(target, &data);
            let name = path.file_name().unwrap().to_string_lossy();
            if let Some(want) = expected.get(&format!("corpus/{target}/{name}")) {
                assert_eq!(outcome, *want, "{}", Path::new(&path).display());
            }
            ran += 1;
        }
    }
    assert!(ran >= expected.len());
}

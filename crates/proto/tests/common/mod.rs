//! Shared fixtures for the proto tests. RSA-3072 key generation takes about half a second in a
//! debug build, so identities are made once per test binary and shared.
#![allow(dead_code, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::OnceLock;

use deaddrop_proto::{
    CheckKey, CheckString, ContactCard, Contacts, Fingerprint, Identity, KnownSender, Suite,
};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// A person: an identity, the check strings they accept, their card.
pub struct Person {
    pub id: Identity,
    pub checks: Vec<CheckString>,
    pub card: ContactCard,
}

fn make(suite: Suite, seed: u64) -> Person {
    let mut r = rng(seed);
    let id = Identity::generate(suite, &mut r).unwrap();
    let checks = vec![CheckString::generate(&mut r)];
    let card = ContactCard::new(
        id.address().clone(),
        checks.clone(),
        Some(format!("p{seed}")),
    )
    .unwrap();
    Person { id, checks, card }
}

/// Three people per suite, made once: index 0, 1, 2.
pub fn people(suite: Suite) -> &'static [Person; 3] {
    static XW: OnceLock<[Person; 3]> = OnceLock::new();
    static RSA: OnceLock<[Person; 3]> = OnceLock::new();
    let cell = match suite {
        Suite::XWing => &XW,
        _ => &RSA,
    };
    cell.get_or_init(|| [make(suite, 1), make(suite, 2), make(suite, 3)])
}

/// A contact book for tests.
#[derive(Default)]
pub struct Book {
    pub known: HashMap<Fingerprint, (Vec<CheckKey>, bool)>,
}

impl Book {
    pub fn with(mut self, fp: Fingerprint, issued: Vec<CheckKey>, require: bool) -> Self {
        self.known.insert(fp, (issued, require));
        self
    }
}

impl Contacts for Book {
    fn known_sender(&self, fp: &Fingerprint) -> Option<KnownSender<'_>> {
        self.known.get(fp).map(|(issued, require)| KnownSender {
            issued,
            require_check: *require,
        })
    }
}

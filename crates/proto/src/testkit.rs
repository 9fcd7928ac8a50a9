//! Fixtures shared by the tests and benchmarks of every crate: people (an identity, the check
//! strings they accept, their card), a contact book, and the pinned `rsa-oaep` identities.
//!
//! Only with the `testkit` feature, which is off by default: no user binary carries this
//! module. Tests enable it through a dev-dependency (`deaddrop-proto = { .., features =
//! ["testkit"] }`), and the `deaddrop-bench` crate through its dependency.
//!
//! RSA-3072 key generation takes a fraction of a second in a release build and about half a
//! second in a debug one, so tests take their `rsa-oaep` people from [`people`], which imports
//! the fixed keys of `docs/test-vectors/rsa-identities.json` (generated once, an input of the
//! test vectors, never regenerated) instead of generating new ones. Benchmarks that need more
//! people than that, or fresh keys, use [`Person::generate`].
//!
//! Like the rest of this crate it does no I/O and keeps no state: randomness comes in as an
//! argument, and the pinned keys are compiled in.

use std::collections::HashMap;

use data_encoding::HEXLOWER_PERMISSIVE;
use rand_core::CryptoRng;
use serde::Deserialize;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::{
    CardError, CheckKey, CheckString, ContactCard, Contacts, Fingerprint, Identity, IdentityError,
    KnownSender, Suite,
};

/// The names of the three people of the tests and the test vectors, in order.
pub const NAMES: [&str; 3] = ["alice", "bob", "carol"];

/// `docs/test-vectors/rsa-identities.json`: the one copy of the pinned `rsa-oaep` keys.
const PINNED_RSA: &str = include_str!("../../../docs/test-vectors/rsa-identities.json");

/// A fixture could not be made.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FixtureError {
    /// An identity could not be generated or imported.
    #[error("cannot make a fixture identity: {0}")]
    Identity(#[from] IdentityError),
    /// A card could not be made (a name too long for a card, for instance).
    #[error("cannot make a fixture card: {0}")]
    Card(#[from] CardError),
    /// `rsa-identities.json` holds no identity of that name.
    #[error("docs/test-vectors/rsa-identities.json holds no identity called {0:?}")]
    NoPinned(String),
    /// `rsa-identities.json` cannot be read.
    #[error("docs/test-vectors/rsa-identities.json is damaged: {0}")]
    PinnedFile(String),
}

/// A person: an identity, the check strings they accept (one), and the card they hand out.
#[derive(Debug)]
pub struct Person {
    /// The identity, with its private key.
    pub id: Identity,
    /// The check strings this person accepts; the card carries the same.
    pub checks: Vec<CheckString>,
    /// The card this person hands out.
    pub card: ContactCard,
}

impl Person {
    /// A person with a new identity of `suite`, one check string drawn from `rng`, and a card
    /// with `name` on it.
    pub fn generate(
        suite: Suite,
        name: Option<&str>,
        rng: &mut impl CryptoRng,
    ) -> Result<Person, FixtureError> {
        let id = Identity::generate(suite, rng)?;
        Person::with_identity(id, name, rng)
    }

    /// A person with the identity `id`, one check string drawn from `rng`, and a card with
    /// `name` on it.
    pub fn with_identity(
        id: Identity,
        name: Option<&str>,
        rng: &mut impl CryptoRng,
    ) -> Result<Person, FixtureError> {
        let checks = vec![CheckString::generate(rng)];
        let card = ContactCard::new(id.address().clone(), checks.clone(), name.map(Into::into))?;
        Ok(Person { id, checks, card })
    }
}

/// Alice, Bob and Carol of `suite` ([`NAMES`]), with their names on their cards. `xwing`
/// identities are generated (quick); `rsa-oaep` ones are the pinned keys of [`pinned_rsa`], so
/// no test waits for RSA key generation. Check strings come from `rng`.
pub fn people(suite: Suite, rng: &mut impl CryptoRng) -> Result<[Person; 3], FixtureError> {
    let person = |name: &str, rng: &mut _| match suite {
        Suite::XWing => Person::generate(suite, Some(name), rng),
        _ => Person::with_identity(pinned_rsa(name)?, Some(name), rng),
    };
    Ok([
        person(NAMES[0], rng)?,
        person(NAMES[1], rng)?,
        person(NAMES[2], rng)?,
    ])
}

/// The pinned `rsa-oaep` identity called `name` (one of [`NAMES`]).
pub fn pinned_rsa(name: &str) -> Result<Identity, FixtureError> {
    Ok(Identity::import_secret(&pinned_rsa_secret(name)?)?)
}

/// The exported secret (`Identity::export_secret`, `docs/PROTOCOL.md` §4.4) of the pinned
/// `rsa-oaep` identity called `name`.
pub fn pinned_rsa_secret(name: &str) -> Result<Zeroizing<Vec<u8>>, FixtureError> {
    #[derive(Deserialize)]
    struct File {
        identities: Vec<Pinned>,
    }
    #[derive(Deserialize)]
    struct Pinned {
        name: String,
        secret: String,
    }
    let file: File =
        serde_json::from_str(PINNED_RSA).map_err(|e| FixtureError::PinnedFile(e.to_string()))?;
    let pinned = file
        .identities
        .iter()
        .find(|i| i.name == name)
        .ok_or_else(|| FixtureError::NoPinned(name.into()))?;
    HEXLOWER_PERMISSIVE
        .decode(pinned.secret.as_bytes())
        .map(Zeroizing::new)
        .map_err(|e| FixtureError::PinnedFile(format!("the secret of {name}: {e}")))
}

/// A contact book: for each contact's fingerprint, the check keys issued to them and whether
/// their entries must carry a valid check.
#[derive(Debug, Default)]
pub struct Book {
    known: HashMap<Fingerprint, (Vec<CheckKey>, bool)>,
}

impl Book {
    /// This book with one more contact: the one with fingerprint `fp`, to whom `issued` were
    /// issued; `require_check` as in [`KnownSender`].
    pub fn with(mut self, fp: Fingerprint, issued: Vec<CheckKey>, require_check: bool) -> Self {
        self.known.insert(fp, (issued, require_check));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SystemRng;

    #[test]
    fn every_pinned_identity_imports_as_rsa_oaep() {
        for name in NAMES {
            assert_eq!(pinned_rsa(name).unwrap().suite(), Suite::RsaOaep, "{name}");
        }
        assert_eq!(
            pinned_rsa("mallory").unwrap_err(),
            FixtureError::NoPinned("mallory".into())
        );
    }

    #[test]
    fn people_carry_their_names_and_checks_on_their_cards() {
        for suite in Suite::ALL {
            let people = people(suite, &mut SystemRng).unwrap();
            for (p, name) in people.iter().zip(NAMES) {
                assert_eq!(p.card.name(), Some(name));
                assert_eq!(p.card.address(), p.id.address());
                assert_eq!(p.card.checks().len(), p.checks.len());
                assert_eq!(p.id.suite(), suite);
            }
        }
    }
}

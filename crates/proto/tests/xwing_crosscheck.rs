//! Our `xwing` suite (aws-lc-rs primitives, expanded private keys) against the RustCrypto
//! `x-wing` crate and the draft-connolly-cfrg-xwing-kem-06 test vectors: the same public key
//! from the same seed, and shared secrets that agree in both directions.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod fixtures;

use deaddrop_proto::{
    open, seal_with_parts, CheckKey, CheckString, ContactCard, Encapsulation, EntryParts, Identity,
    MessageId, Opened, PairKeys, Part, Suite,
};
use fixtures::{bytes, people, rng, xwing_encapsulate, xwing_identity};
use serde::Deserialize;
use x_wing::{Decapsulate, Decapsulator, KeyExport};
use zeroize::Zeroizing;

/// Seeds for the cross-checks: six drawn from a fixed generator, and two extreme values.
fn seeds() -> Vec<[u8; 32]> {
    let mut r = rng(0x0c05_5c4e);
    let mut s: Vec<[u8; 32]> = (0..6).map(|_| bytes::<32>(&mut r)).collect();
    s.push([0u8; 32]);
    s.push([0xffu8; 32]);
    s
}

fn x_wing_key(seed: &[u8; 32]) -> x_wing::DecapsulationKey {
    x_wing::DecapsulationKey::from(*seed)
}

/// Seals one part from Alice to `receiver` with `kem` and opens it as `receiver`.
fn seal_to_and_open(receiver: &Identity, kem: &Encapsulation, text: &[u8]) -> Opened {
    let alice = &people(Suite::XWing)[0];
    let mut r = rng(7);
    let checks = vec![CheckString::generate(&mut r)];
    let card = ContactCard::new(receiver.address().clone(), checks.clone(), None).unwrap();
    let reply = CheckKey::generate(&mut r);
    let parts = EntryParts {
        part: Part {
            message_id: MessageId::generate(&mut r),
            index: 0,
            count: 1,
            sent_at_ms: 1,
            text: Zeroizing::new(text.to_vec()),
        },
        random_check: bytes::<32>(&mut r),
        intro: Some(alice.checks[0].clone()),
    };
    let keys = PairKeys {
        check: None,
        reply: &reply,
    };
    let entry = seal_with_parts(&alice.id, &card, keys, &parts, kem).unwrap();
    open(receiver, &checks, &(), &entry)
}

fn assert_request_with(opened: Opened, text: &[u8]) {
    match opened {
        Opened::Request(req) => {
            assert_eq!(&req.part.text[..], text);
            assert_eq!(&req.sender, people(Suite::XWing)[0].id.address());
        }
        other => panic!("expected a request, got {other:?}"),
    }
}

#[test]
fn address_key_equals_the_x_wing_encapsulation_key_for_the_same_seed() {
    for seed in seeds() {
        let ours = xwing_identity(&seed);
        let theirs = x_wing_key(&seed);
        assert_eq!(
            ours.address().key_bytes(),
            &theirs.encapsulation_key().to_bytes()[..],
            "seed {}",
            hex::encode(seed)
        );
    }
}

#[test]
fn x_wing_crate_encapsulation_opens_with_our_identity() {
    let mut r = rng(0x0c05_5c4f);
    for seed in seeds() {
        let me = xwing_identity(&seed);
        let (ct, ss) = xwing_encapsulate(me.address(), &bytes::<64>(&mut r));
        // Our decapsulation must reproduce the x-wing crate's shared secret, or the key
        // commitment fails and the entry is not for us.
        assert_request_with(
            seal_to_and_open(&me, &Encapsulation::from_parts(ct.to_vec(), ss), b"hi"),
            b"hi",
        );
        // The same ciphertext with any other secret is not for us: the check above is real.
        let mut wrong = ss;
        wrong[31] ^= 1;
        assert!(matches!(
            seal_to_and_open(&me, &Encapsulation::from_parts(ct.to_vec(), wrong), b"hi"),
            Opened::NotForMe
        ));
    }
}

#[test]
fn our_encapsulation_decapsulates_to_the_same_secret_in_the_x_wing_crate() {
    let mut r = rng(0x0c05_5c50);
    for seed in seeds() {
        let me = xwing_identity(&seed);
        let theirs = x_wing_key(&seed);
        for _ in 0..3 {
            let kem = Encapsulation::new(me.address(), &mut r).unwrap();
            let ct = x_wing::Ciphertext::try_from(kem.phrase()).unwrap();
            let ss = theirs.decapsulate(&ct);
            assert_eq!(&ss[..], &kem.export_shared_secret()[..]);
            assert_request_with(seal_to_and_open(&me, &kem, b"round trip"), b"round trip");
        }
    }
}

#[derive(Deserialize)]
struct DraftFile {
    vectors: Vec<DraftVector>,
}

#[derive(Deserialize)]
struct DraftVector {
    seed: String,
    sk: String,
    pk: String,
    eseed: String,
    ct: String,
    ss: String,
}

#[test]
fn draft06_vectors_hold_for_our_keys_and_decapsulation() {
    let file: DraftFile = serde_json::from_str(include_str!("data/xwing-draft06.json")).unwrap();
    assert!(!file.vectors.is_empty());
    for v in file.vectors {
        let seed: [u8; 32] = hex::decode(&v.seed).unwrap().try_into().unwrap();
        let eseed: [u8; 64] = hex::decode(&v.eseed).unwrap().try_into().unwrap();
        let pk = hex::decode(&v.pk).unwrap();
        let ct = hex::decode(&v.ct).unwrap();
        let ss: [u8; 32] = hex::decode(&v.ss).unwrap().try_into().unwrap();
        // In draft-06 the private key is the seed itself.
        assert_eq!(hex::decode(&v.sk).unwrap(), seed);

        // Key generation: our SHAKE256 expansion, ML-KEM seed keygen and X25519 give the draft's
        // public key.
        let me = xwing_identity(&seed);
        assert_eq!(me.address().key_bytes(), &pk[..]);

        // The harness's deterministic encapsulation reproduces the draft's ciphertext...
        let (our_ct, our_ss) = xwing_encapsulate(me.address(), &eseed);
        assert_eq!(&our_ct[..], &ct[..]);
        assert_eq!(our_ss, ss);
        // ...and our decapsulation of the draft's ciphertext yields the draft's secret.
        assert_request_with(
            seal_to_and_open(&me, &Encapsulation::from_parts(ct, ss), b"draft"),
            b"draft",
        );
    }
}

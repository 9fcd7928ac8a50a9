//! The test vectors in `docs/test-vectors/` (`docs/PROTOCOL.md` §13).
//!
//! [`generate`] builds every file from fixed seeds. Normally the test regenerates them in memory
//! and compares byte for byte with the files, so a change to the format shows up as a failing
//! test and then as a diff; with `DEADDROP_REGENERATE_VECTORS=1` it rewrites them. Each vector
//! carries its expected result in `expect`, in the style of age's testkit. The other tests read
//! the files back as an independent implementation would: from the JSON alone they re-derive,
//! re-seal and open everything and check the recorded results.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod fixtures;

use std::collections::HashMap;

use aws_lc_rs::digest;
use deaddrop_proto::address::ADDRESS_PREFIX;
use deaddrop_proto::card::{CARD_PREFIX, MAX_CHECK_STRINGS, MAX_NAME_LEN};
use deaddrop_proto::suite::CHECK_STRING_LEN;
use deaddrop_proto::testkit::Book;
use deaddrop_proto::{
    open, seal_with_parts, Address, AddressError, CardError, CheckKey, CheckString, ContactCard,
    Encapsulation, Entry, EntryParts, Fingerprint, Identity, MessageId, Opened, PairKeys, Part,
    RejectReason, Suite, PROTOCOL,
};
use fixtures::{
    bytes, check_or_write, encapsulate, people, rng, vectors_dir, xwing_encapsulate, xwing_expand,
    xwing_secret_from_seed, KemInputs, Person,
};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

// =============================================================================================
// File formats. Hex is lowercase; optional fields are left out when they do not apply.

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct IdentitiesFile {
    description: String,
    identities: Vec<IdentityVector>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct IdentityVector {
    name: String,
    suite: String,
    /// The 32-byte X-Wing seed (draft-06 private key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    xwing_seed: Option<String>,
    /// `SHAKE256(xwing_seed, 96)`: ML-KEM `d`, `z`, then the X25519 scalar.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    xwing_expanded: Option<String>,
    /// The identity export format (`docs/PROTOCOL.md` §4.4).
    secret: String,
    address: String,
    /// The check strings this identity accepts (its card's), newest first.
    check_strings: Vec<String>,
    card: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct AddressesFile {
    description: String,
    vectors: Vec<AddressVector>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct AddressVector {
    description: String,
    text: String,
    /// `valid` or `rejected: <reason>`.
    expect: String,
    /// The suite and key bytes a valid text decodes to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    suite: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct FingerprintsFile {
    description: String,
    vectors: Vec<FingerprintVector>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct FingerprintVector {
    description: String,
    suite: String,
    key: String,
    expect: String,
    /// `label("fingerprint") || suite_id`, the bytes hashed before the key.
    hash_prefix: String,
    fingerprint: String,
    short: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct CardsFile {
    description: String,
    vectors: Vec<CardVector>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct CardVector {
    description: String,
    text: String,
    /// `valid` or `rejected: <reason>`.
    expect: String,
    /// The binary form, when the text's base64url decodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    binary: Option<String>,
    /// What a valid card holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    card: Option<CardContent>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct CardContent {
    address: String,
    check_strings: Vec<String>,
    name: Option<String>,
    /// The canonical printable form (what `to_text` gives back).
    text: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct EntriesFile {
    description: String,
    suite: String,
    entry_len: usize,
    vectors: Vec<EntryVector>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct EntryVector {
    description: String,
    seal: SealInputs,
    /// A change applied to the sealed entry before it is opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tamper: Option<Tamper>,
    /// The full entry as opened (stamp zero), hex.
    entry: String,
    open: OpenInputs,
    /// `message`, `request`, `not-for-me` or `rejected: <reason>`.
    expect: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    opened: Option<OpenedPart>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct SealInputs {
    sender: String,
    /// The receiver's card as the sender holds it; its first check string goes in the header.
    receiver_card: String,
    /// The check key the receiver issued to the sender, if the sender has one.
    check_key: Option<String>,
    /// The check key the sender issues to the receiver (the body's reply key).
    reply_key: String,
    /// First contact: the sender's current check string, carried with its address (`intro`);
    /// `null` for an entry without them.
    intro_check_string: Option<String>,
    message_id: String,
    index: u16,
    count: u16,
    sent_at_ms: u64,
    text: String,
    /// The `check` field used when there is no check key.
    random_check: String,
    /// When present: the body sealed in `cipher` instead of the one §7.1 makes from the fields
    /// above (a deliberately broken sealer); `check` is computed over the entry with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    kem: KemVector,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct KemVector {
    /// `xwing`: the 64 bytes of encapsulation randomness (ML-KEM `m`, then the X25519 ephemeral).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    eseed: Option<String>,
    /// `rsa-oaep`: the 32-byte OAEP seed (RFC 8017 §7.1.1 step 2d) that encrypted the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    oaep_seed: Option<String>,
    /// `rsa-oaep`: the OAEP ciphertext `c` before the key-private expansion (`phrase mod N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    oaep_ciphertext: Option<String>,
    /// `rsa-oaep`: the random strings drawn for `k` (§3.2 step 2), before their high bits are
    /// cleared; every one but the last was rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k_draws: Option<Vec<String>>,
    /// `rsa-oaep`: the multiple of `N` added to `c`, big-endian, as long as a draw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<String>,
    shared_secret: String,
    phrase: String,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Tamper {
    field: String,
    /// Offset in the entry.
    offset: usize,
    xor: u8,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct OpenInputs {
    identity: String,
    accepted_check_strings: Vec<String>,
    contacts: Vec<ContactVector>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct ContactVector {
    name: String,
    fingerprint: String,
    /// Check keys the opener issued to this contact, current first.
    issued: Vec<String>,
    require_check: bool,
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct OpenedPart {
    sender_fingerprint: String,
    /// For a message: whether `check` verified, and under which issued key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_index: Option<usize>,
    /// The sender's address and current check string when the part carries them (always for
    /// a request).
    sender_address: Option<String>,
    sender_check_string: Option<String>,
    message_id: String,
    index: u16,
    count: u16,
    sent_at_ms: u64,
    text: String,
    reply_key: String,
}

// =============================================================================================
// Shared helpers: labels for results, and the encodings rebuilt independently of proto.

fn address_error(e: &AddressError) -> String {
    match e {
        AddressError::NotAnAddress => "not-an-address",
        AddressError::UnknownSuite(_) => "unknown-suite",
        AddressError::Encoding => "encoding",
        AddressError::Checksum => "checksum",
        AddressError::Length { .. } => "length",
        AddressError::InvalidKey(_) => "invalid-key",
        other => panic!("no vector label for {other:?}"),
    }
    .into()
}

fn card_error(e: &CardError) -> String {
    match e {
        CardError::NotACard => "not-a-card".into(),
        CardError::Encoding => "encoding".into(),
        CardError::Checksum => "checksum".into(),
        CardError::Truncated => "truncated".into(),
        CardError::TrailingBytes => "trailing-bytes".into(),
        CardError::CheckStrings { .. } => "check-strings".into(),
        CardError::Name { .. } => "name".into(),
        CardError::Address(a) => format!("address: {}", address_error(a)),
        other => panic!("no vector label for {other:?}"),
    }
}

fn reject_reason(r: RejectReason) -> &'static str {
    match r {
        RejectReason::Header => "header",
        RejectReason::CheckString => "check-string",
        RejectReason::From => "from",
        RejectReason::Cipher => "cipher",
        RejectReason::Body => "body",
        RejectReason::Address => "address",
        RejectReason::UnknownSender => "unknown-sender",
        RejectReason::Check => "check",
        other => panic!("no vector label for {other:?}"),
    }
}

/// `expect` and `opened` for an outcome.
fn describe(opened: &Opened) -> (String, Option<OpenedPart>) {
    let part_of = |sender: &Fingerprint,
                   verified: Option<bool>,
                   key_index: Option<usize>,
                   intro: Option<(&Address, &CheckString)>,
                   part: &Part,
                   reply: &CheckKey| OpenedPart {
        sender_fingerprint: sender.to_hex(),
        verified,
        key_index,
        sender_address: intro.map(|(a, _)| a.to_text()),
        sender_check_string: intro.map(|(_, c)| hex::encode(c.export_bytes())),
        message_id: part.message_id.to_hex(),
        index: part.index,
        count: part.count,
        sent_at_ms: part.sent_at_ms,
        text: String::from_utf8(part.text.to_vec()).unwrap(),
        reply_key: hex::encode(reply.export_bytes()),
    };
    match opened {
        Opened::NotForMe => ("not-for-me".into(), None),
        Opened::Message(m) => (
            "message".into(),
            Some(part_of(
                &m.sender,
                Some(m.verified),
                m.key_index,
                m.sender_address.as_ref().zip(m.sender_check.as_ref()),
                &m.part,
                &m.reply_key,
            )),
        ),
        Opened::Request(r) => (
            "request".into(),
            Some(part_of(
                &r.sender.fingerprint(),
                None,
                None,
                Some((&r.sender, &r.sender_check)),
                &r.part,
                &r.reply_key,
            )),
        ),
        Opened::Rejected(reason) => (format!("rejected: {}", reject_reason(*reason)), None),
    }
}

fn label(name: &str) -> Vec<u8> {
    format!("{PROTOCOL} {name}").into_bytes()
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    ctx.finish().as_ref().try_into().unwrap()
}

/// An address text with a correct checksum over whatever key bytes are given.
fn address_text(suite_name: &str, suite_id: u8, key: &[u8]) -> String {
    use data_encoding::BASE64URL_NOPAD;
    let sum = sha256(&[&label("address checksum"), &[suite_id], key]);
    let mut payload = key.to_vec();
    payload.extend_from_slice(&sum[..4]);
    format!(
        "{ADDRESS_PREFIX}{suite_name}:{}",
        BASE64URL_NOPAD.encode(&payload)
    )
}

/// A card's binary form built field by field, checksum appended.
fn card_binary(suite_id: u8, key: &[u8], checks: &[[u8; 16]], name: &[u8]) -> Vec<u8> {
    let mut b = vec![suite_id];
    b.extend_from_slice(key);
    b.push(checks.len() as u8);
    for c in checks {
        b.extend_from_slice(c);
    }
    b.push(name.len() as u8);
    b.extend_from_slice(name);
    with_card_checksum(b)
}

fn with_card_checksum(mut body: Vec<u8>) -> Vec<u8> {
    let sum = sha256(&[&label("card checksum"), &body]);
    body.extend_from_slice(&sum[..4]);
    body
}

fn card_text(binary: &[u8]) -> String {
    format!(
        "{CARD_PREFIX}{}",
        data_encoding::BASE64URL_NOPAD.encode(binary)
    )
}

// ---------------------------------------------------------------------------------------------
// §3.2, §5, §7.1 and §8.1 written again from PROTOCOL.md, with aws-lc-rs primitives and
// num-bigint only, so the vectors check the text and not just the library against itself.

/// `K(name)` for `commit`, `header`, `from`, `cipher` (§5).
struct FieldKeys {
    commit: [u8; 32],
    header: [u8; 32],
    from: [u8; 32],
    cipher: [u8; 32],
}

fn field_keys(suite: Suite, ss: &[u8; 32], receiver_key: &[u8], phrase: &[u8]) -> FieldKeys {
    use aws_lc_rs::hkdf;
    let fp_r = sha256(&[&label("fingerprint"), &[suite.id()], receiver_key]);
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &label("entry")).extract(ss);
    let mut ctx = vec![suite.id()];
    ctx.extend_from_slice(&fp_r);
    ctx.extend_from_slice(&sha256(&[phrase]));
    assert_eq!(ctx.len(), 65);
    let k = |name: &str| {
        let l = label(name);
        let info: [&[u8]; 3] = [&l, &[0], &ctx];
        let mut out = [0u8; 32];
        prk.expand(&info, hkdf::HKDF_SHA256)
            .unwrap()
            .fill(&mut out)
            .unwrap();
        out
    };
    FieldKeys {
        commit: k("commit"),
        header: k("header"),
        from: k("from"),
        cipher: k("cipher"),
    }
}

fn gcm_key(key: &[u8; 32]) -> aws_lc_rs::aead::LessSafeKey {
    use aws_lc_rs::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).unwrap())
}

/// `seal_k(p)`: AES-256-GCM, nonce of 12 zero bytes, no associated data, tag appended (§2).
fn gcm_seal(key: &[u8; 32], plaintext: &[u8]) -> Vec<u8> {
    use aws_lc_rs::aead::{Aad, Nonce};
    let mut buf = plaintext.to_vec();
    gcm_key(key)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::empty(),
            &mut buf,
        )
        .unwrap();
    buf
}

fn gcm_open(key: &[u8; 32], sealed: &[u8]) -> Option<Vec<u8>> {
    use aws_lc_rs::aead::{Aad, Nonce};
    let mut buf = sealed.to_vec();
    let n = gcm_key(key)
        .open_in_place(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::empty(),
            &mut buf,
        )
        .ok()?
        .len();
    buf.truncate(n);
    Some(buf)
}

/// The `check` field under `key` for the sealed bytes of an entry (§8.1 step 5).
fn check_field(suite: Suite, key: &[u8], sealed: &[u8]) -> Vec<u8> {
    use aws_lc_rs::hmac;
    let l = suite.layout();
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(&label("check"));
    ctx.update(&sealed[..l.check_at()]);
    ctx.update(&sealed[l.from_at()..l.sealed_len()]);
    ctx.sign().as_ref().to_vec()
}

/// The fields of a body (§7.1).
struct BodyFields<'a> {
    intro: Option<(&'a [u8], &'a [u8])>,
    message_id: &'a [u8],
    index: u16,
    count: u16,
    sent_at_ms: u64,
    reply_key: &'a [u8],
    text: &'a [u8],
}

fn body_bytes(suite: Suite, f: &BodyFields) -> Vec<u8> {
    let mut b = vec![0u8; suite.layout().body_len()];
    b[0] = 1;
    b[1] = u8::from(f.intro.is_some());
    b[2..18].copy_from_slice(f.message_id);
    b[18..20].copy_from_slice(&f.index.to_be_bytes());
    b[20..22].copy_from_slice(&f.count.to_be_bytes());
    b[22..30].copy_from_slice(&f.sent_at_ms.to_be_bytes());
    b[30..62].copy_from_slice(f.reply_key);
    b[62..64].copy_from_slice(&(f.text.len() as u16).to_be_bytes());
    let mut at = 64;
    if let Some((key, check)) = f.intro {
        b[at..at + key.len()].copy_from_slice(key);
        at += key.len();
        b[at..at + 16].copy_from_slice(check);
        at += 16;
    }
    b[at..at + f.text.len()].copy_from_slice(f.text);
    b
}

/// MGF1 with SHA-256 (RFC 8017 B.2.1).
fn mgf1(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut counter = 0u32;
    while out.len() < len {
        out.extend_from_slice(&sha256(&[seed, &counter.to_be_bytes()]));
        counter += 1;
    }
    out.truncate(len);
    out
}

/// RSAES-OAEP-ENCRYPT with SHA-256, MGF1-SHA-256, an empty label and the given seed (RFC 8017
/// §7.1.1), `e = 65537`: the 384-byte `c`.
fn oaep_encrypt(modulus: &[u8], message: &[u8], seed: &[u8; 32]) -> Vec<u8> {
    use num_bigint::BigUint;
    let k = modulus.len();
    let mut db = sha256(&[b""]).to_vec();
    db.resize(k - message.len() - 32 - 2, 0);
    db.push(0x01);
    db.extend_from_slice(message);
    assert_eq!(db.len(), k - 32 - 1);
    let masked_db: Vec<u8> = db
        .iter()
        .zip(mgf1(seed, db.len()))
        .map(|(a, b)| a ^ b)
        .collect();
    let masked_seed: Vec<u8> = seed
        .iter()
        .zip(mgf1(&masked_db, 32))
        .map(|(a, b)| a ^ b)
        .collect();
    let em = [&[0u8][..], &masked_seed, &masked_db].concat();
    let n = BigUint::from_bytes_be(modulus);
    let c = BigUint::from_bytes_be(&em).modpow(&BigUint::from(65_537u32), &n);
    let c = c.to_bytes_be();
    [vec![0u8; k - c.len()], c].concat()
}

/// Replaces the character at `at` with one that differs.
fn change_char(text: &str, at: usize) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut s = serde_json::to_string_pretty(value).unwrap();
    s.push('\n');
    s.into_bytes()
}

/// True while `DEADDROP_REGENERATE_VECTORS=1` rewrites the files: the tests that read them
/// would race with the writer, so they wait for the next plain run.
fn rewriting() -> bool {
    fixtures::regenerating()
}

fn read<T: for<'de> Deserialize<'de>>(file: &str) -> T {
    let path = vectors_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const SUITE_FILES: [(Suite, &str); 2] = [
    (Suite::XWing, "entries-xwing.json"),
    (Suite::RsaOaep, "entries-rsa-oaep.json"),
];

// =============================================================================================
// Generation.

fn identities_file() -> IdentitiesFile {
    let mut identities = Vec::new();
    for suite in Suite::ALL {
        for p in people(suite) {
            identities.push(IdentityVector {
                name: p.name.into(),
                suite: suite.name().into(),
                xwing_seed: p.xwing_seed.map(hex::encode),
                xwing_expanded: p.xwing_seed.map(|s| hex::encode(xwing_expand(&s))),
                secret: hex::encode(p.id.export_secret().as_slice()),
                address: p.id.address().to_text(),
                check_strings: p
                    .checks
                    .iter()
                    .map(|c| hex::encode(c.export_bytes()))
                    .collect(),
                card: p.card.to_text(),
            });
        }
    }
    IdentitiesFile {
        description: "The identities the other vector files refer to by name. xwing: secret is \
                      derived from xwing_seed as in draft-connolly-cfrg-xwing-kem-06 \
                      (SHAKE256(seed, 96) = d || z || sk_X; dk_M = ML-KEM-768.KeyGen_internal(d, \
                      z)). rsa-oaep: copied from rsa-identities.json (fixed inputs). secret is the \
                      export format of PROTOCOL.md §4.4."
            .into(),
        identities,
    }
}

type ValidAddress<'a> = Option<(&'a Address, &'static str)>;

fn addresses_file() -> AddressesFile {
    let mut vectors = Vec::new();
    for suite in Suite::ALL {
        for p in people(suite) {
            let a = p.id.address();
            vectors.push(AddressVector {
                description: format!("{}'s {} address", p.name, suite.name()),
                text: a.to_text(),
                expect: "valid".into(),
                suite: Some(suite.name().into()),
                key: Some(hex::encode(a.key_bytes())),
            });
        }
    }
    let xw = people(Suite::XWing)[0].id.address();
    let rsa = people(Suite::RsaOaep)[0].id.address();
    let xw_text = xw.to_text();
    let payload_at = ADDRESS_PREFIX.len() + "xwing:".len();
    // Keys at the edges of what the suites accept (§3.1, §3.2), built from Alice's.
    let mut q_minus_1 = xw.key_bytes().to_vec();
    set_first_coefficient(&mut q_minus_1, 3328);
    let q_minus_1 = Address::from_key(Suite::XWing, &q_minus_1).unwrap();
    let mut zero_x25519 = xw.key_bytes().to_vec();
    zero_x25519[1184..].fill(0);
    let zero_x25519 = Address::from_key(Suite::XWing, &zero_x25519).unwrap();
    let mut composite = vec![0u8; 384];
    composite[0] = 0x80;
    composite[383] = 0x01;
    let composite = Address::from_key(Suite::RsaOaep, &composite).unwrap();
    let payload = &xw_text[payload_at..];
    // The payload is 1220 bytes: 1627 characters, the last of which carries 2 unused bits.
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = alphabet.find(xw_text.chars().last().unwrap()).unwrap();
    let non_canonical = format!(
        "{}{}",
        &xw_text[..xw_text.len() - 1],
        &alphabet[last ^ 1..(last ^ 1) + 1]
    );
    let mut even = rsa.key_bytes().to_vec();
    *even.last_mut().unwrap() &= 0xfe;
    let mut low = rsa.key_bytes().to_vec();
    low[0] &= 0x7f;
    // (description, text, expected result, the address and suite name a valid text gives)
    let invalid: Vec<(&str, String, &str, ValidAddress)> = vec![
        (
            "white space around the text is ignored",
            format!("  {xw_text}\n"),
            "valid",
            Some((xw, "xwing")),
        ),
        (
            "empty text",
            String::new(),
            "rejected: not-an-address",
            None,
        ),
        (
            "another version's prefix",
            xw_text.replace("-v1:", "-v2:"),
            "rejected: not-an-address",
            None,
        ),
        (
            "a contact card is not an address",
            people(Suite::XWing)[0].card.to_text(),
            "rejected: not-an-address",
            None,
        ),
        (
            "unknown suite name",
            xw_text.replacen(":xwing:", ":kyber:", 1),
            "rejected: unknown-suite",
            None,
        ),
        (
            "suite names are case-sensitive",
            xw_text.replacen(":xwing:", ":XWing:", 1),
            "rejected: unknown-suite",
            None,
        ),
        (
            "character outside base64url",
            format!(
                "{}+{}",
                &xw_text[..payload_at + 10],
                &xw_text[payload_at + 11..]
            ),
            "rejected: encoding",
            None,
        ),
        (
            "one character changed (a typo)",
            change_char(&xw_text, payload_at + 100),
            "rejected: checksum",
            None,
        ),
        (
            "xwing key one byte short, checksum correct",
            address_text("xwing", 1, &xw.key_bytes()[1..]),
            "rejected: length",
            None,
        ),
        (
            "xwing key under the rsa-oaep suite name, checksum correct",
            address_text("rsa-oaep", 2, xw.key_bytes()),
            "rejected: length",
            None,
        ),
        (
            "rsa-oaep modulus that is even, checksum correct",
            address_text("rsa-oaep", 2, &even),
            "rejected: invalid-key",
            None,
        ),
        (
            "rsa-oaep modulus without its top bit, checksum correct",
            address_text("rsa-oaep", 2, &low),
            "rejected: invalid-key",
            None,
        ),
        (
            "Unicode white space around the text (tab, U+00A0, U+3000, U+2028, CR LF) is ignored",
            format!("\t\u{a0}{xw_text}\u{3000}\u{2028}\r\n"),
            "valid",
            Some((xw, "xwing")),
        ),
        (
            "a zero-width space (U+200B) is not white space",
            format!("\u{200b}{xw_text}"),
            "rejected: not-an-address",
            None,
        ),
        (
            "white space inside the text is not ignored",
            format!("{} {payload}", &xw_text[..payload_at]),
            "rejected: encoding",
            None,
        ),
        (
            "the prefix is case-sensitive",
            xw_text.replacen("deaddrop-address", "Deaddrop-Address", 1),
            "rejected: not-an-address",
            None,
        ),
        (
            "no colon after the suite name",
            format!("{ADDRESS_PREFIX}xwing{payload}"),
            "rejected: not-an-address",
            None,
        ),
        (
            "an unknown suite name is reported before a payload that is not base64url",
            format!("{ADDRESS_PREFIX}kyber:%%%"),
            "rejected: unknown-suite",
            None,
        ),
        (
            "an empty suite name",
            format!("{ADDRESS_PREFIX}:{payload}"),
            "rejected: unknown-suite",
            None,
        ),
        (
            "base64url with `=` padding",
            format!("{xw_text}="),
            "rejected: encoding",
            None,
        ),
        (
            "base64url of a length that is 1 modulo 4",
            xw_text[..xw_text.len() - 2].to_string(),
            "rejected: encoding",
            None,
        ),
        (
            "non-canonical base64url: an unused trailing bit set",
            non_canonical,
            "rejected: encoding",
            None,
        ),
        (
            "a `:` in the payload",
            format!("{ADDRESS_PREFIX}xwing:{}:{}", &payload[..4], &payload[4..]),
            "rejected: encoding",
            None,
        ),
        (
            "an empty payload",
            format!("{ADDRESS_PREFIX}xwing:"),
            "rejected: checksum",
            None,
        ),
        (
            "a payload shorter than the checksum (3 bytes)",
            format!("{ADDRESS_PREFIX}xwing:AAAA"),
            "rejected: checksum",
            None,
        ),
        (
            "a key one byte short with a wrong checksum: the checksum is checked first",
            change_char(&address_text("xwing", 1, &xw.key_bytes()[1..]), payload_at + 100),
            "rejected: checksum",
            None,
        ),
        (
            "xwing ML-KEM key with a coefficient of q = 3329 (FIPS 203 modulus check), checksum \
             correct",
            address_text("xwing", 1, &invalid_key(Suite::XWing, xw.key_bytes())),
            "rejected: invalid-key",
            None,
        ),
        (
            "xwing ML-KEM key with a coefficient of q - 1 = 3328 is valid",
            q_minus_1.to_text(),
            "valid",
            Some((&q_minus_1, "xwing")),
        ),
        (
            "xwing key whose X25519 half is all zero: not checked when parsing (sealing to it fails)",
            zero_x25519.to_text(),
            "valid",
            Some((&zero_x25519, "xwing")),
        ),
        (
            "rsa-oaep modulus 2^3071 + 1: divisible by 3, but only the length, the top bit and \
             oddness are checked",
            composite.to_text(),
            "valid",
            Some((&composite, "rsa-oaep")),
        ),
    ];
    for (description, text, intended, valid) in invalid {
        let expect = match Address::parse(&text) {
            Ok(a) => {
                let (want, suite) = valid.unwrap_or_else(|| panic!("{description}: accepted"));
                assert_eq!(&a, want, "{description}");
                assert_eq!(a.suite().name(), suite);
                "valid".to_string()
            }
            Err(e) => format!("rejected: {}", address_error(&e)),
        };
        assert_eq!(expect, intended, "{description}");
        vectors.push(AddressVector {
            description: description.into(),
            text,
            expect,
            suite: valid.map(|(_, s)| s.to_string()),
            key: valid.map(|(a, _)| hex::encode(a.key_bytes())),
        });
    }
    AddressesFile {
        description: "Printable addresses (PROTOCOL.md §4.1): text, the expected parse result, \
                      and for valid ones the suite and key bytes."
            .into(),
        vectors,
    }
}

fn fingerprints_file() -> FingerprintsFile {
    let mut vectors = Vec::new();
    for suite in Suite::ALL {
        for p in people(suite) {
            let a = p.id.address();
            let mut prefix = label("fingerprint");
            prefix.push(suite.id());
            let fp = a.fingerprint();
            assert_eq!(fp.0, sha256(&[&prefix, a.key_bytes()]));
            vectors.push(FingerprintVector {
                description: format!("{}'s {} fingerprint", p.name, suite.name()),
                suite: suite.name().into(),
                key: hex::encode(a.key_bytes()),
                expect: "valid".into(),
                hash_prefix: hex::encode(&prefix),
                fingerprint: fp.to_hex(),
                short: fp.short(),
            });
        }
    }
    FingerprintsFile {
        description: "Fingerprints (PROTOCOL.md §4.2): SHA-256(hash_prefix || key), and the short \
                      form people compare."
            .into(),
        vectors,
    }
}

fn cards_file() -> CardsFile {
    let xw = &people(Suite::XWing);
    let rsa = &people(Suite::RsaOaep);
    let mut r = rng(0xca4d);
    let mut checks = |n: usize| -> Vec<[u8; CHECK_STRING_LEN]> {
        (0..n).map(|_| bytes::<CHECK_STRING_LEN>(&mut r)).collect()
    };
    let card = |p: &Person, checks: &[[u8; 16]], name: Option<&str>| {
        ContactCard::new(
            p.id.address().clone(),
            checks.iter().map(|c| CheckString::from_bytes(*c)).collect(),
            name.map(str::to_owned),
        )
        .unwrap()
    };
    let name64 = "n".repeat(MAX_NAME_LEN);
    let carol_name = "Carol Ärger ✉";
    let valid = [
        (
            "xwing, one check string, no name",
            card(&xw[0], &checks(1), None),
        ),
        (
            "xwing, two check strings (newest first) and a name",
            card(&xw[1], &checks(2), Some("Bob")),
        ),
        (
            "rsa-oaep, four check strings and a UTF-8 name",
            card(&rsa[2], &checks(MAX_CHECK_STRINGS), Some(carol_name)),
        ),
        (
            "rsa-oaep, a name of exactly 64 bytes",
            card(&rsa[0], &checks(1), Some(&name64)),
        ),
    ];
    let mut vectors = Vec::new();
    let content = |c: &ContactCard| CardContent {
        address: c.address().to_text(),
        check_strings: c
            .checks()
            .iter()
            .map(|s| hex::encode(s.export_bytes()))
            .collect(),
        name: c.name().map(str::to_owned),
        text: c.to_text(),
    };
    for (description, c) in &valid {
        // The binary form rebuilt field by field matches the library's.
        let rebuilt = card_binary(
            c.address().suite().id(),
            c.address().key_bytes(),
            &c.checks()
                .iter()
                .map(CheckString::export_bytes)
                .collect::<Vec<_>>(),
            c.name().unwrap_or("").as_bytes(),
        );
        assert_eq!(rebuilt, c.to_bytes(), "{description}");
        vectors.push((description.to_string(), c.to_text(), Some(c)));
    }
    // A card wrapped by a mail program: line breaks and indentation anywhere are ignored.
    let wrapped: String = {
        let t = valid[3].1.to_text();
        let lines: Vec<String> = t
            .as_bytes()
            .chunks(72)
            .map(|l| format!("    {}", String::from_utf8(l.to_vec()).unwrap()))
            .collect();
        lines.join("\r\n") + "\n"
    };
    vectors.push((
        "the same card wrapped over lines by a mail program".into(),
        wrapped,
        Some(&valid[3].1),
    ));
    let t = valid[0].1.to_text();
    vectors.push((
        "white space is removed everywhere, the prefix included, Unicode white space too \
         (U+00A0, U+2028, U+3000)"
            .into(),
        format!(
            "dead drop-card-v1:\u{a0}{}\u{2028}{}\u{3000}",
            &t[CARD_PREFIX.len()..100],
            &t[100..]
        ),
        Some(&valid[0].1),
    ));

    // Damaged cards, built on Alice's xwing key.
    let key = xw[0].id.address().key_bytes();
    let c1 = checks(1);
    let good = card_binary(1, key, &c1, b"alice");
    let good_text = card_text(&good);
    let body = &good[..good.len() - 4];
    let five = checks(5);
    let bad_utf8_name = card_binary(1, key, &c1, &[0x61, 0xff, 0x62]);
    let mut even = rsa[0].id.address().key_bytes().to_vec();
    *even.last_mut().unwrap() &= 0xfe;
    // The good card is 1244 bytes: 1659 characters, the last of which carries 2 unused bits.
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = alphabet.find(good_text.chars().last().unwrap()).unwrap();
    let non_canonical = format!(
        "{}{}",
        &good_text[..good_text.len() - 1],
        &alphabet[last ^ 1..(last ^ 1) + 1]
    );
    // A name of 65 bytes announced, 3 present; five check strings announced, one present.
    let long_name_short = with_card_checksum([&body[..body.len() - 6], &[65], b"abc"].concat());
    let five_announced = {
        let mut b = vec![1];
        b.extend_from_slice(key);
        b.push(5);
        b.extend_from_slice(&c1[0]);
        b.push(0);
        with_card_checksum(b)
    };
    let damaged: Vec<(&str, String, &str)> =
        vec![
        ("empty text", String::new(), "rejected: not-a-card"),
        (
            "an address is not a card",
            xw[0].id.address().to_text(),
            "rejected: not-a-card",
        ),
        (
            "character outside base64url",
            format!("{CARD_PREFIX}/{}", &good_text[CARD_PREFIX.len() + 1..]),
            "rejected: encoding",
        ),
        (
            "one character changed (a typo)",
            change_char(&good_text, CARD_PREFIX.len() + 200),
            "rejected: checksum",
        ),
        (
            "text cut off",
            good_text[..good_text.len() - 40].to_string(),
            "rejected: checksum",
        ),
        (
            "shorter than a checksum",
            format!("{CARD_PREFIX}AAA"),
            "rejected: truncated",
        ),
        (
            "name cut short, checksum correct",
            card_text(&with_card_checksum(body[..body.len() - 1].to_vec())),
            "rejected: truncated",
        ),
        (
            "a byte after the name, checksum correct",
            card_text(&with_card_checksum([body, &[0]].concat())),
            "rejected: trailing-bytes",
        ),
        (
            "no check string, checksum correct",
            card_text(&card_binary(1, key, &[], b"alice")),
            "rejected: check-strings",
        ),
        (
            "five check strings, checksum correct",
            card_text(&card_binary(1, key, &five, b"alice")),
            "rejected: check-strings",
        ),
        (
            "a name of 65 bytes, checksum correct",
            card_text(&card_binary(1, key, &c1, "n".repeat(65).as_bytes())),
            "rejected: name",
        ),
        (
            "a name that is not UTF-8, checksum correct",
            card_text(&bad_utf8_name),
            "rejected: name",
        ),
        (
            "unknown suite id 3, checksum correct",
            card_text(&card_binary(3, key, &c1, b"alice")),
            "rejected: address: unknown-suite",
        ),
        (
            "rsa-oaep modulus that is even, checksum correct",
            card_text(&card_binary(2, &even, &c1, b"alice")),
            "rejected: address: invalid-key",
        ),
        (
            "xwing ML-KEM key with a coefficient of q = 3329, checksum correct",
            card_text(&card_binary(1, &invalid_key(Suite::XWing, key), &c1, b"alice")),
            "rejected: address: invalid-key",
        ),
        (
            "base64url with `=` padding",
            format!("{good_text}="),
            "rejected: encoding",
        ),
        (
            "non-canonical base64url: an unused trailing bit set",
            non_canonical,
            "rejected: encoding",
        ),
        (
            "a zero-width space (U+200B) is not white space",
            format!("{CARD_PREFIX}\u{200b}{}", &good_text[CARD_PREFIX.len()..]),
            "rejected: encoding",
        ),
        (
            "nothing after the prefix",
            CARD_PREFIX.to_string(),
            "rejected: truncated",
        ),
        (
            "key cut short, checksum correct",
            card_text(&with_card_checksum([&[1u8][..], &key[..100]].concat())),
            "rejected: truncated",
        ),
        (
            "unknown suite id 0 and nothing else, checksum correct",
            card_text(&with_card_checksum(vec![0])),
            "rejected: address: unknown-suite",
        ),
        (
            "five check strings announced, one present: the count is checked before the strings \
             are read",
            card_text(&five_announced),
            "rejected: check-strings",
        ),
        (
            "a name of 65 bytes announced, 3 present: the length is checked before the name is \
             read",
            card_text(&long_name_short),
            "rejected: name",
        ),
        (
            "a name that is not UTF-8 followed by a byte: the name is checked first",
            card_text(&with_card_checksum(
                [&bad_utf8_name[..bad_utf8_name.len() - 4], &[0]].concat(),
            )),
            "rejected: name",
        ),
    ];
    assert!(ContactCard::parse(&good_text).is_ok());
    let mut out = Vec::new();
    for (description, text, card) in vectors {
        let parsed = ContactCard::parse(&text).unwrap();
        assert_eq!(&parsed, card.unwrap(), "{description}");
        out.push(CardVector {
            binary: Some(hex::encode(parsed.to_bytes())),
            description,
            text,
            expect: "valid".into(),
            card: Some(content(&parsed)),
        });
    }
    for (description, text, intended) in damaged {
        let expect = match ContactCard::parse(&text) {
            Ok(_) => panic!("{description}: accepted"),
            Err(e) => format!("rejected: {}", card_error(&e)),
        };
        assert_eq!(expect, intended, "{description}");
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let binary = compact
            .strip_prefix(CARD_PREFIX)
            .and_then(|b| data_encoding::BASE64URL_NOPAD.decode(b.as_bytes()).ok())
            .map(hex::encode);
        out.push(CardVector {
            description: description.into(),
            text,
            expect,
            binary,
            card: None,
        });
    }
    CardsFile {
        description:
            "Contact cards (PROTOCOL.md §4.3): text, the expected parse result, the binary \
                      form when the base64url decodes, and what a valid card holds."
                .into(),
        vectors: out,
    }
}

/// Which check key the sender seals with.
#[derive(Clone, Copy)]
enum CheckMode {
    /// None yet: `check` is random.
    None,
    /// The key the receiver issued, by index in its issued list (0 = current).
    Issued(usize),
    /// A key the receiver never issued (a spoofer).
    Guess,
}

/// What the opener knows of the sender.
#[derive(Clone, Copy)]
enum Known {
    Stranger,
    Contact { require_check: bool },
}

struct Case {
    description: &'static str,
    check: CheckMode,
    intro: bool,
    /// The `INTRO` carries a check string of the sender's other than the one on its card (it
    /// rotated since).
    intro_new: bool,
    text: &'static str,
    index: u16,
    count: u16,
    known: Known,
    /// The opener accepts a check string other than the one in its card (rotated).
    rotated: bool,
    /// 2 = Carol opens instead of Bob.
    opener: usize,
    /// Field name and offset inside it.
    tamper: Option<(&'static str, usize)>,
    /// A body no correct sealer makes, sealed in `cipher` instead of the right one.
    body: Option<BodyChange>,
    expect: &'static str,
}

/// How a deliberately broken sealer changes the body (§7.1) before sealing it.
#[derive(Clone, Copy)]
enum BodyChange {
    /// Body version 2.
    Version,
    /// Flag bit 1 set.
    UnknownFlag,
    /// Part count 0 (index 0).
    CountZero,
    /// Part index equal to the count.
    IndexNotBelowCount,
    /// `len` one more than the part capacity.
    LenOverCapacity,
    /// The last padding byte is 1.
    Padding,
    /// `INTRO` carrying the address key of the person with this index, not the sender's.
    IntroAddressOf(usize),
    /// `INTRO` carrying the sender's key made invalid for the suite (§3.1, §3.2).
    IntroInvalidKey,
}

/// A key of the suite's length that the suite rejects, made from a valid one: `xwing` with its
/// first ML-KEM coefficient set to q = 3329, `rsa-oaep` with an even modulus.
fn invalid_key(suite: Suite, valid: &[u8]) -> Vec<u8> {
    let mut k = valid.to_vec();
    match suite {
        Suite::XWing => set_first_coefficient(&mut k, 3329),
        _ => *k.last_mut().unwrap() &= 0xfe,
    }
    k
}

/// Sets the first 12-bit coefficient of an ML-KEM-768 encapsulation key (FIPS 203 ByteEncode12:
/// little-endian, bits 0..12 are `b0` and the low nibble of `b1`).
fn set_first_coefficient(key: &mut [u8], value: u16) {
    key[0] = (value & 0xff) as u8;
    key[1] = (key[1] & 0xf0) | (value >> 8) as u8;
}

const CONFIRMED: Known = Known::Contact {
    require_check: true,
};
const UNCONFIRMED: Known = Known::Contact {
    require_check: false,
};

fn cases() -> Vec<Case> {
    let base = Case {
        description: "",
        check: CheckMode::Issued(0),
        intro: false,
        intro_new: false,
        text: "",
        index: 0,
        count: 1,
        known: CONFIRMED,
        rotated: false,
        opener: 1,
        tamper: None,
        body: None,
        expect: "message",
    };
    vec![
        Case {
            description: "verified message from a contact",
            text: "Meet me at the usual place at nine.",
            ..base
        },
        Case {
            description: "message verified by an older check key still honoured",
            check: CheckMode::Issued(1),
            text: "Sent with the key you gave me last month.",
            ..base
        },
        Case {
            description: "verified message that carries the sender's address",
            intro: true,
            text: "Still carrying my address until you write back.",
            ..base
        },
        Case {
            description: "part 2 of 2 of a verified message",
            text: "...and bring the documents.",
            index: 1,
            count: 2,
            ..base
        },
        Case {
            description: "empty message",
            text: "",
            ..base
        },
        Case {
            description: "unverified message from a contact that has not proven its key yet",
            check: CheckMode::None,
            text: "I have no check key from you yet.",
            known: UNCONFIRMED,
            ..base
        },
        Case {
            description: "request from a stranger, with intro",
            check: CheckMode::None,
            intro: true,
            text: "Hello, we met at the conference. — Alice",
            known: Known::Stranger,
            expect: "request",
            ..base
        },
        Case {
            description: "stranger without intro cannot be answered",
            check: CheckMode::None,
            text: "Guess who.",
            known: Known::Stranger,
            expect: "rejected: unknown-sender",
            ..base
        },
        Case {
            description: "check string rotated away by the receiver",
            text: "Written with your old card.",
            rotated: true,
            expect: "rejected: check-string",
            ..base
        },
        Case {
            description: "spoofed sender: check fails for a confirmed contact",
            check: CheckMode::Guess,
            text: "Please send money to this account.",
            expect: "rejected: check",
            ..base
        },
        Case {
            description: "same spoof seen by a receiver that has not confirmed the contact",
            check: CheckMode::Guess,
            text: "Please send money to this account.",
            known: UNCONFIRMED,
            ..base
        },
        Case {
            description: "tampered cipher byte",
            text: "Tamper with me.",
            tamper: Some(("cipher", 100)),
            expect: "rejected: cipher",
            ..base
        },
        Case {
            description: "tampered byte of the sealed check string in the header",
            text: "Tamper with me.",
            tamper: Some(("header", 40)),
            expect: "rejected: header",
            ..base
        },
        Case {
            description: "tampered from byte",
            text: "Tamper with me.",
            tamper: Some(("from", 7)),
            expect: "rejected: from",
            ..base
        },
        Case {
            description: "tampered check byte",
            text: "Tamper with me.",
            tamper: Some(("check", 0)),
            expect: "rejected: check",
            ..base
        },
        Case {
            description: "tampered key commitment byte",
            text: "Tamper with me.",
            tamper: Some(("header", 3)),
            expect: "not-for-me",
            ..base
        },
        Case {
            description: "tampered phrase byte",
            text: "Tamper with me.",
            tamper: Some(("phrase", 17)),
            expect: "not-for-me",
            ..base
        },
        Case {
            description: "opened by a third identity",
            text: "Meet me at the usual place at nine.",
            opener: 2,
            known: Known::Stranger,
            expect: "not-for-me",
            ..base
        },
        Case {
            description: "body version 2",
            text: "From the future.",
            body: Some(BodyChange::Version),
            expect: "rejected: body",
            ..base
        },
        Case {
            description: "body with an unknown flag bit (bit 1) set",
            text: "What does this flag mean?",
            body: Some(BodyChange::UnknownFlag),
            expect: "rejected: body",
            ..base
        },
        Case {
            description: "body with part count 0",
            text: "Part 0 of 0.",
            body: Some(BodyChange::CountZero),
            expect: "rejected: body",
            ..base
        },
        Case {
            description: "body with part index equal to the count",
            text: "Part 1 of 1.",
            body: Some(BodyChange::IndexNotBelowCount),
            expect: "rejected: body",
            ..base
        },
        Case {
            description: "body whose len is one more than the part capacity",
            text: "Longer than it can be.",
            body: Some(BodyChange::LenOverCapacity),
            expect: "rejected: body",
            ..base
        },
        Case {
            description: "body with a non-zero padding byte",
            text: "Something hidden in the padding.",
            body: Some(BodyChange::Padding),
            expect: "rejected: body",
            ..base
        },
        Case {
            description: "intro carrying another person's address (its fingerprint is not from)",
            text: "I am Carol, really.",
            body: Some(BodyChange::IntroAddressOf(2)),
            expect: "rejected: address",
            ..base
        },
        Case {
            description: "intro carrying a key the suite rejects",
            text: "My key is a little off.",
            body: Some(BodyChange::IntroInvalidKey),
            expect: "rejected: address",
            ..base
        },
        // Last, so that adding it changed no earlier vector's seed.
        Case {
            description: "verified message carrying a new check string of the sender's (it \
                          rotated): the receiver takes it for its card of the sender (§8.3)",
            intro: true,
            intro_new: true,
            text: "New check string, same me.",
            ..base
        },
    ]
}

fn field_offset(suite: Suite, field: &str) -> usize {
    let l = suite.layout();
    match field {
        "phrase" => 0,
        "header" => l.header_at(),
        "check" => l.check_at(),
        "from" => l.from_at(),
        "cipher" => l.cipher_at(),
        other => panic!("unknown field {other}"),
    }
}

/// What a broken sealer does with `body`: seals it as `cipher` under `K("cipher")` and computes
/// `check` again over the changed entry.
fn reseal_body(
    suite: Suite,
    entry: &mut [u8],
    kem: &Encapsulation,
    receiver_key: &[u8],
    body: &[u8],
    check_key: Option<&CheckKey>,
) {
    let l = suite.layout();
    let keys = field_keys(
        suite,
        &kem.export_shared_secret(),
        receiver_key,
        kem.phrase(),
    );
    entry[l.cipher_at()..l.sealed_len()].copy_from_slice(&gcm_seal(&keys.cipher, body));
    if let Some(key) = check_key {
        let check = check_field(suite, &key.export_bytes(), entry);
        entry[l.check_at()..l.from_at()].copy_from_slice(&check);
    }
}

fn kem_vector(kem: &Encapsulation, inputs: &KemInputs) -> KemVector {
    let mut v = KemVector {
        eseed: None,
        oaep_seed: None,
        oaep_ciphertext: None,
        k_draws: None,
        k: None,
        shared_secret: hex::encode(kem.export_shared_secret()),
        phrase: hex::encode(kem.phrase()),
    };
    match inputs {
        KemInputs::XWing { eseed } => v.eseed = Some(hex::encode(eseed)),
        KemInputs::Rsa {
            shared_secret,
            oaep_seed,
            oaep_ciphertext,
            k_draws,
            k,
            ..
        } => {
            assert_eq!(shared_secret, &kem.export_shared_secret());
            v.oaep_seed = Some(hex::encode(oaep_seed));
            v.oaep_ciphertext = Some(hex::encode(oaep_ciphertext));
            v.k_draws = Some(k_draws.iter().map(hex::encode).collect());
            v.k = Some(hex::encode(k));
        }
    }
    v
}

fn entries_file(suite: Suite) -> EntriesFile {
    let [alice, bob, carol] = people(suite);
    let mut vectors = Vec::new();
    for (n, case) in cases().into_iter().enumerate() {
        let mut r = rng(10_000 * u64::from(suite.id()) + n as u64);
        let issued = vec![CheckKey::generate(&mut r), CheckKey::generate(&mut r)];
        let guess = CheckKey::generate(&mut r);
        let reply = CheckKey::generate(&mut r);
        let rotated = CheckString::generate(&mut r);
        let check = match case.check {
            CheckMode::None => None,
            CheckMode::Issued(i) => Some(&issued[i]),
            CheckMode::Guess => Some(&guess),
        };
        let parts = EntryParts {
            part: Part {
                message_id: MessageId::generate(&mut r),
                index: case.index,
                count: case.count,
                sent_at_ms: 1_795_000_000_000 + n as u64 * 60_000,
                text: Zeroizing::new(case.text.as_bytes().to_vec()),
            },
            random_check: bytes::<32>(&mut r),
            intro: case.intro.then(|| {
                if case.intro_new {
                    rotated.clone()
                } else {
                    alice.checks[0].clone()
                }
            }),
        };
        let (kem, inputs) = encapsulate(bob.id.address(), &mut r);
        let keys = PairKeys {
            check,
            reply: &reply,
        };
        let sealed = seal_with_parts(&alice.id, &bob.card, keys, &parts, &kem).unwrap();
        let mut bytes = sealed.as_bytes().to_vec();
        let body = case.body.map(|change| {
            let people = [alice, bob, carol];
            let broken_key;
            let intro = match change {
                BodyChange::IntroAddressOf(i) => Some(people[i].id.address().key_bytes()),
                BodyChange::IntroInvalidKey => {
                    broken_key = invalid_key(suite, alice.id.address().key_bytes());
                    Some(&broken_key[..])
                }
                _ => None,
            };
            let check_string = alice.checks[0].export_bytes();
            let mut body = body_bytes(
                suite,
                &BodyFields {
                    intro: intro.map(|k| (k, &check_string[..])),
                    message_id: &parts.part.message_id.0,
                    index: case.index,
                    count: case.count,
                    sent_at_ms: parts.part.sent_at_ms,
                    reply_key: &reply.export_bytes(),
                    text: case.text.as_bytes(),
                },
            );
            let last = body.len() - 1;
            match change {
                BodyChange::Version => body[0] = 2,
                BodyChange::UnknownFlag => body[1] |= 0x02,
                BodyChange::CountZero => body[20..22].copy_from_slice(&[0, 0]),
                BodyChange::IndexNotBelowCount => body[18..20].copy_from_slice(&[0, 1]),
                BodyChange::LenOverCapacity => {
                    let over = suite.layout().part_capacity(false) as u16 + 1;
                    body[62..64].copy_from_slice(&over.to_be_bytes());
                }
                BodyChange::Padding => body[last] = 1,
                BodyChange::IntroAddressOf(_) | BodyChange::IntroInvalidKey => {}
            }
            reseal_body(
                suite,
                &mut bytes,
                &kem,
                bob.id.address().key_bytes(),
                &body,
                check,
            );
            body
        });
        let tamper = case.tamper.map(|(field, at)| {
            let offset = field_offset(suite, field) + at;
            bytes[offset] ^= 0x01;
            Tamper {
                field: field.into(),
                offset,
                xor: 0x01,
            }
        });
        let entry = Entry::parse(suite, &bytes).unwrap();
        let opener = [alice, bob, carol][case.opener];
        let accepted = if case.rotated {
            vec![rotated]
        } else {
            opener.checks.clone()
        };
        let (book, contacts) = match case.known {
            Known::Stranger => (Book::default(), vec![]),
            Known::Contact { require_check } => (
                Book::default().with(
                    alice.id.address().fingerprint(),
                    issued.clone(),
                    require_check,
                ),
                vec![ContactVector {
                    name: alice.name.into(),
                    fingerprint: alice.id.address().fingerprint().to_hex(),
                    issued: issued
                        .iter()
                        .map(|k| hex::encode(k.export_bytes()))
                        .collect(),
                    require_check,
                }],
            ),
        };
        let (expect, opened) = describe(&open(&opener.id, &accepted, &book, &entry));
        assert_eq!(
            expect, case.expect,
            "{suite}: {}: unexpected result",
            case.description
        );
        if let Some(o) = &opened {
            assert_eq!(o.text, case.text);
            assert_eq!(
                o.sender_fingerprint,
                alice.id.address().fingerprint().to_hex()
            );
            let carried = parts.intro.as_ref().map(|c| hex::encode(c.export_bytes()));
            assert_eq!(o.sender_check_string, carried);
            if case.intro_new {
                assert_ne!(parts.intro.as_ref(), alice.card.checks().first());
            }
        }
        vectors.push(EntryVector {
            description: case.description.into(),
            seal: SealInputs {
                sender: alice.name.into(),
                receiver_card: bob.card.to_text(),
                check_key: check.map(|k| hex::encode(k.export_bytes())),
                reply_key: hex::encode(reply.export_bytes()),
                intro_check_string: parts.intro.as_ref().map(|c| hex::encode(c.export_bytes())),
                message_id: parts.part.message_id.to_hex(),
                index: case.index,
                count: case.count,
                sent_at_ms: parts.part.sent_at_ms,
                text: case.text.into(),
                random_check: hex::encode(parts.random_check),
                body: body.as_ref().map(hex::encode),
                kem: kem_vector(&kem, &inputs),
            },
            tamper,
            entry: hex::encode(&bytes),
            open: OpenInputs {
                identity: opener.name.into(),
                accepted_check_strings: accepted
                    .iter()
                    .map(|c| hex::encode(c.export_bytes()))
                    .collect(),
                contacts,
            },
            expect,
            opened,
        });
    }
    EntriesFile {
        description: format!(
            "Sealed entries of suite {} (PROTOCOL.md §6–§8) with every input of sealing, the \
             entry, the opener's state, and the expected result of open. Identities are in \
             identities.json. The stamp is zero.",
            suite.name()
        ),
        suite: suite.name().into(),
        entry_len: suite.layout().entry_len,
        vectors,
    }
}

/// Every generated file, by name.
fn generate() -> Vec<(&'static str, Vec<u8>)> {
    let mut files = vec![
        ("identities.json", json(&identities_file())),
        ("addresses.json", json(&addresses_file())),
        ("fingerprints.json", json(&fingerprints_file())),
        ("cards.json", json(&cards_file())),
    ];
    for (suite, name) in SUITE_FILES {
        files.push((name, json(&entries_file(suite))));
    }
    files
}

#[test]
fn vector_files_match_the_generator_byte_for_byte() {
    let files = generate();
    // Generating twice gives the same bytes: nothing depends on the system's randomness.
    assert_eq!(files, generate());
    for (name, content) in files {
        check_or_write(&vectors_dir().join(name), &content);
    }
}

// =============================================================================================
// Reading the files back, as another implementation would.

fn identities_by_name(suite: Suite) -> HashMap<String, Identity> {
    let file: IdentitiesFile = read("identities.json");
    file.identities
        .iter()
        .filter(|i| i.suite == suite.name())
        .map(|i| {
            let secret = hex::decode(&i.secret).unwrap();
            if let Some(seed) = &i.xwing_seed {
                // The secret is exactly what the draft's key derivation gives for the seed.
                let seed: [u8; 32] = hex::decode(seed).unwrap().try_into().unwrap();
                assert_eq!(secret, xwing_secret_from_seed(&seed), "{}", i.name);
                assert_eq!(
                    i.xwing_expanded.as_deref(),
                    Some(hex::encode(xwing_expand(&seed)).as_str())
                );
            }
            let id = Identity::import_secret(&secret).unwrap();
            assert_eq!(id.address().to_text(), i.address);
            let card = ContactCard::parse(&i.card).unwrap();
            assert_eq!(card.address(), id.address());
            (i.name.clone(), id)
        })
        .collect()
}

fn check_string(h: &str) -> CheckString {
    CheckString::from_bytes(hex::decode(h).unwrap().try_into().unwrap())
}

fn check_key(h: &str) -> CheckKey {
    CheckKey::from_bytes(hex::decode(h).unwrap().try_into().unwrap())
}

#[test]
fn address_vectors_parse_as_expected() {
    if rewriting() {
        return;
    }
    let file: AddressesFile = read("addresses.json");
    assert!(file.vectors.iter().any(|v| v.expect == "valid"));
    assert!(file.vectors.iter().any(|v| v.expect != "valid"));
    for v in &file.vectors {
        match Address::parse(&v.text) {
            Ok(a) => {
                assert_eq!(v.expect, "valid", "{}", v.description);
                assert_eq!(v.suite.as_deref(), Some(a.suite().name()));
                assert_eq!(v.key.as_deref(), Some(hex::encode(a.key_bytes()).as_str()));
                // Canonical text round trips.
                assert_eq!(Address::parse(&a.to_text()).unwrap(), a);
            }
            Err(e) => assert_eq!(
                v.expect,
                format!("rejected: {}", address_error(&e)),
                "{}",
                v.description
            ),
        }
    }
}

#[test]
fn fingerprint_vectors_hash_as_expected() {
    if rewriting() {
        return;
    }
    let file: FingerprintsFile = read("fingerprints.json");
    assert!(!file.vectors.is_empty());
    for v in &file.vectors {
        assert_eq!(v.expect, "valid");
        let suite: Suite = v.suite.parse().unwrap();
        let key = hex::decode(&v.key).unwrap();
        let fp = Address::from_key(suite, &key).unwrap().fingerprint();
        assert_eq!(fp.to_hex(), v.fingerprint, "{}", v.description);
        assert_eq!(fp.short(), v.short, "{}", v.description);
        let prefix = hex::decode(&v.hash_prefix).unwrap();
        assert_eq!(hex::encode(sha256(&[&prefix, &key])), v.fingerprint);
        // The short form is the first 10 bytes in base32, grouped by four.
        let b32 = data_encoding::BASE32_NOPAD.encode(&fp.0[..10]);
        assert_eq!(v.short.replace('-', ""), b32);
        assert_eq!(v.short.len(), 19);
    }
}

#[test]
fn card_vectors_parse_as_expected() {
    if rewriting() {
        return;
    }
    let file: CardsFile = read("cards.json");
    assert!(file.vectors.iter().any(|v| v.expect == "valid"));
    for v in &file.vectors {
        match ContactCard::parse(&v.text) {
            Ok(c) => {
                assert_eq!(v.expect, "valid", "{}", v.description);
                let want = v.card.as_ref().unwrap();
                assert_eq!(c.address().to_text(), want.address);
                let checks: Vec<String> = c
                    .checks()
                    .iter()
                    .map(|s| hex::encode(s.export_bytes()))
                    .collect();
                assert_eq!(checks, want.check_strings);
                assert_eq!(c.name(), want.name.as_deref());
                assert_eq!(c.to_text(), want.text);
                assert_eq!(
                    v.binary.as_deref(),
                    Some(hex::encode(c.to_bytes()).as_str())
                );
                assert_eq!(ContactCard::from_bytes(&c.to_bytes()).unwrap(), c);
            }
            Err(e) => {
                assert_eq!(
                    v.expect,
                    format!("rejected: {}", card_error(&e)),
                    "{}",
                    v.description
                );
                if let Some(b) = &v.binary {
                    let b = hex::decode(b).unwrap();
                    assert_eq!(
                        ContactCard::from_bytes(&b).map(|_| ()),
                        Err(e),
                        "{}: binary form gives the same error",
                        v.description
                    );
                }
            }
        }
    }
}

/// Re-seals each vector from the inputs written in the file and checks the entry, then opens
/// the entry with the opener's state from the file and checks `expect` and `opened`.
fn check_entry_file(suite: Suite, name: &str) {
    let file: EntriesFile = read(name);
    assert_eq!(file.suite, suite.name());
    assert_eq!(file.entry_len, suite.layout().entry_len);
    let ids = identities_by_name(suite);
    let mut seen = std::collections::BTreeSet::new();
    for v in &file.vectors {
        let what = format!("{name}: {}", v.description);
        seen.insert(v.expect.clone());
        let s = &v.seal;
        let sender = &ids[&s.sender];
        let card = ContactCard::parse(&s.receiver_card).unwrap();
        let phrase = hex::decode(&s.kem.phrase).unwrap();
        let ss: [u8; 32] = hex::decode(&s.kem.shared_secret)
            .unwrap()
            .try_into()
            .unwrap();
        check_kem(suite, &card, &ids, s, &phrase, &ss, &what);
        let kem = Encapsulation::from_parts(phrase, ss);
        let check = s.check_key.as_deref().map(check_key);
        let reply = check_key(&s.reply_key);
        let parts = EntryParts {
            part: Part {
                message_id: MessageId(hex::decode(&s.message_id).unwrap().try_into().unwrap()),
                index: s.index,
                count: s.count,
                sent_at_ms: s.sent_at_ms,
                text: Zeroizing::new(s.text.as_bytes().to_vec()),
            },
            random_check: hex::decode(&s.random_check).unwrap().try_into().unwrap(),
            intro: s.intro_check_string.as_deref().map(check_string),
        };
        let keys = PairKeys {
            check: check.as_ref(),
            reply: &reply,
        };
        let mut bytes = seal_with_parts(sender, &card, keys, &parts, &kem)
            .unwrap()
            .as_bytes()
            .to_vec();
        if let Some(body) = &s.body {
            let body = hex::decode(body).unwrap();
            let receiver = card.address().key_bytes();
            reseal_body(suite, &mut bytes, &kem, receiver, &body, check.as_ref());
        }
        check_fields(suite, &bytes, s, &card, sender, &ss, &what);
        if let Some(t) = &v.tamper {
            assert!(t.offset >= field_offset(suite, &t.field));
            bytes[t.offset] ^= t.xor;
        }
        assert_eq!(
            hex::encode(&bytes),
            v.entry,
            "{what}: re-sealed entry differs"
        );

        let o = &v.open;
        let mut book = Book::default();
        for c in &o.contacts {
            let fp = ids[&c.name].address().fingerprint();
            assert_eq!(fp.to_hex(), c.fingerprint);
            book = book.with(
                fp,
                c.issued.iter().map(|k| check_key(k)).collect(),
                c.require_check,
            );
        }
        let accepted: Vec<CheckString> = o
            .accepted_check_strings
            .iter()
            .map(|c| check_string(c))
            .collect();
        let entry = Entry::parse(suite, &hex::decode(&v.entry).unwrap()).unwrap();
        let (expect, opened) = describe(&open(&ids[&o.identity], &accepted, &book, &entry));
        assert_eq!(expect, v.expect, "{what}");
        assert_eq!(opened, v.opened, "{what}");
    }
    for required in [
        "message",
        "request",
        "not-for-me",
        "rejected: header",
        "rejected: check-string",
        "rejected: from",
        "rejected: cipher",
        "rejected: body",
        "rejected: address",
        "rejected: unknown-sender",
        "rejected: check",
    ] {
        assert!(
            seen.contains(required),
            "{name} lacks a `{required}` vector"
        );
    }
}

/// Opens the entry as sealed (before any tampering) with the key schedule written from §5 and
/// checks every field against the sealing inputs of the vector (§6, §7.1, §8.1).
fn check_fields(
    suite: Suite,
    entry: &[u8],
    s: &SealInputs,
    card: &ContactCard,
    sender: &Identity,
    ss: &[u8; 32],
    what: &str,
) {
    let l = suite.layout();
    let phrase = &entry[..l.header_at()];
    assert_eq!(hex::encode(phrase), s.kem.phrase, "{what}: phrase");
    let keys = field_keys(suite, ss, card.address().key_bytes(), phrase);
    let header = &entry[l.header_at()..l.check_at()];
    assert_eq!(header[..32], keys.commit, "{what}: key commitment");
    let check_string = card.checks()[0].export_bytes();
    assert_eq!(
        gcm_open(&keys.header, &header[32..]).as_deref(),
        Some(&check_string[..]),
        "{what}: header"
    );
    let sender_key = sender.address().key_bytes();
    let fp_s = sha256(&[&label("fingerprint"), &[suite.id()], sender_key]);
    assert_eq!(
        gcm_open(&keys.from, &entry[l.from_at()..l.cipher_at()]).as_deref(),
        Some(&fp_s[..]),
        "{what}: from"
    );
    let body = match &s.body {
        Some(b) => hex::decode(b).unwrap(),
        None => {
            let intro_check = s
                .intro_check_string
                .as_deref()
                .map(|c| hex::decode(c).unwrap());
            body_bytes(
                suite,
                &BodyFields {
                    intro: intro_check.as_deref().map(|c| (sender_key, c)),
                    message_id: &hex::decode(&s.message_id).unwrap(),
                    index: s.index,
                    count: s.count,
                    sent_at_ms: s.sent_at_ms,
                    reply_key: &hex::decode(&s.reply_key).unwrap(),
                    text: s.text.as_bytes(),
                },
            )
        }
    };
    assert_eq!(
        gcm_open(&keys.cipher, &entry[l.cipher_at()..l.sealed_len()]),
        Some(body),
        "{what}: cipher"
    );
    let check = match &s.check_key {
        Some(k) => check_field(suite, &hex::decode(k).unwrap(), entry),
        None => hex::decode(&s.random_check).unwrap(),
    };
    assert_eq!(entry[l.check_at()..l.from_at()], check[..], "{what}: check");
    assert!(
        entry[l.sealed_len()..].iter().all(|&b| b == 0),
        "{what}: stamp"
    );
}

/// Checks the KEM values of a vector: for `xwing`, the RustCrypto `x-wing` crate with the
/// recorded `eseed`; for `rsa-oaep`, OAEP written from RFC 8017 with the recorded seed, `k` from
/// its draws by §3.2, `phrase = c + k·N`, and the `rsa` crate's decryption of `c`.
fn check_kem(
    suite: Suite,
    card: &ContactCard,
    ids: &HashMap<String, Identity>,
    s: &SealInputs,
    phrase: &[u8],
    ss: &[u8; 32],
    what: &str,
) {
    match suite {
        Suite::XWing => {
            let eseed: [u8; 64] = hex::decode(s.kem.eseed.as_ref().unwrap())
                .unwrap()
                .try_into()
                .unwrap();
            let (ct, ss2) = xwing_encapsulate(card.address(), &eseed);
            assert_eq!(&ct[..], phrase, "{what}: phrase");
            assert_eq!(&ss2, ss, "{what}: shared secret");
        }
        _ => {
            use num_bigint::BigUint;
            use rsa::pkcs8::DecodePrivateKey;
            let modulus = card.address().key_bytes();
            let seed: [u8; 32] = hex::decode(s.kem.oaep_seed.as_ref().unwrap())
                .unwrap()
                .try_into()
                .unwrap();
            let c = hex::decode(s.kem.oaep_ciphertext.as_ref().unwrap()).unwrap();
            assert_eq!(
                oaep_encrypt(modulus, ss, &seed),
                c,
                "{what}: c from the OAEP seed"
            );
            // §3.2 step 2 from the recorded draws, then step 3.
            let n = BigUint::from_bytes_be(modulus);
            let bound = (BigUint::from(1u8) << 3200u32) / &n;
            let bits = bound.bits() as usize;
            let k = hex::decode(s.kem.k.as_ref().unwrap()).unwrap();
            let draws = s.kem.k_draws.as_ref().unwrap();
            assert!(!draws.is_empty(), "{what}: no draw for k");
            for (i, draw) in draws.iter().enumerate() {
                let mut d = hex::decode(draw).unwrap();
                assert_eq!(d.len(), bits.div_ceil(8), "{what}: draw {i} length");
                d[0] &= 0xff >> (8 * d.len() - bits);
                let accepted = BigUint::from_bytes_be(&d) < bound;
                assert_eq!(accepted, i + 1 == draws.len(), "{what}: draw {i}");
                if accepted {
                    assert_eq!(d, k, "{what}: k is the accepted draw");
                }
            }
            let expanded =
                (BigUint::from_bytes_be(&c) + BigUint::from_bytes_be(&k) * &n).to_bytes_be();
            assert!(expanded.len() <= 400, "{what}: c + k·N fits 400 bytes");
            let expanded = [vec![0u8; 400 - expanded.len()], expanded].concat();
            assert_eq!(expanded, phrase, "{what}: phrase = c + k·N");
            let reduced = BigUint::from_bytes_be(phrase) % &n;
            assert_eq!(reduced, BigUint::from_bytes_be(&c), "{what}");
            let receiver = ids
                .values()
                .find(|i| i.address() == card.address())
                .unwrap();
            let der = receiver.export_secret()[6..].to_vec();
            let sk = rsa::PrivateKey::from_pkcs8_der(&der).unwrap();
            let decrypted = sk
                .oaep_decrypt::<rsa::sha2::Sha256>(&c)
                .unwrap_or_else(|e| panic!("{what}: rsa crate OAEP decrypt: {e}"));
            assert_eq!(&decrypted[..], ss, "{what}");
        }
    }
}

#[test]
fn xwing_entry_vectors_reseal_and_open_as_expected() {
    if rewriting() {
        return;
    }
    check_entry_file(Suite::XWing, SUITE_FILES[0].1);
}

#[test]
fn rsa_oaep_entry_vectors_reseal_and_open_as_expected() {
    if rewriting() {
        return;
    }
    check_entry_file(Suite::RsaOaep, SUITE_FILES[1].1);
}

#[test]
fn rsa_identities_input_matches_identities_file() {
    if rewriting() {
        return;
    }
    let input: fixtures::RsaIdentitiesFile = read("rsa-identities.json");
    let all: IdentitiesFile = read("identities.json");
    for i in input.identities {
        let copy = all
            .identities
            .iter()
            .find(|v| v.suite == "rsa-oaep" && v.name == i.name)
            .unwrap();
        assert_eq!(copy.secret, i.secret);
    }
}

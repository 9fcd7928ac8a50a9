//! Sealing and opening entries (paper IV, V.4; `docs/PROTOCOL.md` §8).
//!
//! Opening is trial decryption: one decapsulation per entry decides "for me or not" through a
//! key commitment, and only then is anything else decrypted. [`open`] never fails; it returns
//! an [`Opened`], where "not for me" is the normal case and "for me but wrong" is
//! [`Opened::Rejected`] with a reason meant for local counters, never for the wire.

use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::address::{Address, Fingerprint};
use crate::card::{CheckString, ContactCard};
use crate::entry::Entry;
use crate::error::SealError;
use crate::identity::Identity;
use crate::kdf::{aead_open, aead_seal, hmac_sha256, label, EntryKeys, Field};
use crate::message::{decode_body, encode_body, MessageId, Part, MAX_PARTS};
use crate::rng::SystemRng;
use crate::secret::CheckKey;
use crate::suite::{rsa, xwing, Suite, CHECK_LEN, CHECK_STRING_LEN, FINGERPRINT_LEN};

/// The per-contact keys a sender uses.
#[derive(Clone, Copy, Debug)]
pub struct PairKeys<'a> {
    /// The check key the receiver issued to us, learnt from a message it sent us. `None` until
    /// the receiver has written to us; the `check` field is then random and the receiver sees
    /// the message as unverified.
    pub check: Option<&'a CheckKey>,
    /// The check key we issue to the receiver; every message carries it so the receiver can
    /// authenticate what it sends back.
    pub reply: &'a CheckKey,
}

/// The result of a KEM encapsulation: the `phrase` and the shared secret.
pub struct Encapsulation {
    phrase: Vec<u8>,
    shared: Zeroizing<[u8; 32]>,
}

impl Encapsulation {
    /// Encapsulates to `address`.
    pub fn new(address: &Address, rng: &mut impl CryptoRng) -> Result<Self, SealError> {
        let (phrase, shared) = match address.suite() {
            Suite::XWing => xwing::encapsulate(address.key_bytes(), rng)?,
            Suite::RsaOaep => rsa::encapsulate(address.key_bytes(), rng)?,
        };
        Ok(Encapsulation { phrase, shared })
    }

    /// Rebuilds an encapsulation from its parts (test vectors pin it this way, because aws-lc
    /// draws ML-KEM's and OAEP's randomness itself).
    pub fn from_parts(phrase: Vec<u8>, shared: [u8; 32]) -> Self {
        Encapsulation {
            phrase,
            shared: Zeroizing::new(shared),
        }
    }

    /// Builds an `rsa-oaep` encapsulation from an OAEP ciphertext made elsewhere (test vectors
    /// make it with a seeded OAEP), applying the key-private expansion with `rng`.
    pub fn from_rsa_ciphertext(
        address: &Address,
        oaep_ciphertext: &[u8],
        shared: [u8; 32],
        rng: &mut impl CryptoRng,
    ) -> Result<Self, SealError> {
        if address.suite() != Suite::RsaOaep {
            return Err(SealError::BadReceiverKey("rsa-oaep"));
        }
        let phrase = rsa::expand(address.key_bytes(), oaep_ciphertext, rng)
            .ok_or(SealError::BadReceiverKey("rsa-oaep"))?;
        Ok(Encapsulation {
            phrase,
            shared: Zeroizing::new(shared),
        })
    }

    /// The KEM ciphertext.
    pub fn phrase(&self) -> &[u8] {
        &self.phrase
    }

    /// The shared secret, for test vectors only.
    pub fn export_shared_secret(&self) -> [u8; 32] {
        *self.shared
    }
}

impl core::fmt::Debug for Encapsulation {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Encapsulation({} byte phrase, ..)", self.phrase.len())
    }
}

/// Everything random in one entry besides the encapsulation, so vectors can pin it.
#[derive(Clone, Debug)]
pub struct EntryParts {
    /// The part to carry.
    pub part: Part,
    /// The `check` value used when no check key is known yet.
    pub random_check: [u8; CHECK_LEN],
    /// The sender's current check string, to carry with its address (first contact), or
    /// `None`.
    pub intro: Option<CheckString>,
}

/// Seals `text` from `sender` (an [`Identity`] or just its [`Address`]: sealing needs no
/// private key) to the holder of `to`, with the operating system's randomness.
/// Returns one entry per part; stamps are zero until [`crate::pow::solve`] fills them.
///
/// `intro` (the sender's current check string) carries the sender's full address and that check
/// string in every part, so a receiver who does not know the sender can reply (paper II.2);
/// clients set it until the receiver has written back.
pub fn seal(
    sender: &impl AsRef<Address>,
    to: &ContactCard,
    keys: PairKeys<'_>,
    text: &[u8],
    intro: Option<&CheckString>,
    sent_at_ms: u64,
) -> Result<Vec<Entry>, SealError> {
    seal_with_rng(sender, to, keys, text, intro, sent_at_ms, &mut SystemRng)
}

/// [`seal`] with the randomness given (except ML-KEM's and OAEP's, which aws-lc draws).
#[allow(clippy::too_many_arguments)]
pub fn seal_with_rng(
    sender: &impl AsRef<Address>,
    to: &ContactCard,
    keys: PairKeys<'_>,
    text: &[u8],
    intro: Option<&CheckString>,
    sent_at_ms: u64,
    rng: &mut impl CryptoRng,
) -> Result<Vec<Entry>, SealError> {
    let message_id = MessageId::generate(rng);
    seal_message_with_rng(sender, to, keys, text, intro, sent_at_ms, message_id, rng)
}

/// [`seal_with_rng`] with the message id given, for clients that record the id before sending.
#[allow(clippy::too_many_arguments)]
pub fn seal_message_with_rng(
    sender: &impl AsRef<Address>,
    to: &ContactCard,
    keys: PairKeys<'_>,
    text: &[u8],
    intro: Option<&CheckString>,
    sent_at_ms: u64,
    message_id: MessageId,
    rng: &mut impl CryptoRng,
) -> Result<Vec<Entry>, SealError> {
    let suite = check_suites(sender.as_ref(), to)?;
    let cap = suite.layout().part_capacity(intro.is_some());
    let count = text.len().div_ceil(cap).max(1);
    if count > MAX_PARTS {
        return Err(SealError::TooLong {
            len: text.len(),
            max_parts: MAX_PARTS,
        });
    }
    let mut entries = Vec::with_capacity(count);
    for index in 0..count {
        let chunk = &text[(index * cap).min(text.len())..((index + 1) * cap).min(text.len())];
        let mut random_check = [0u8; CHECK_LEN];
        rng.fill_bytes(&mut random_check);
        let parts = EntryParts {
            part: Part {
                message_id,
                index: index as u16,
                count: count as u16,
                sent_at_ms,
                text: Zeroizing::new(chunk.to_vec()),
            },
            random_check,
            intro: intro.cloned(),
        };
        let kem = Encapsulation::new(to.address(), rng)?;
        entries.push(seal_with_parts(sender, to, keys, &parts, &kem)?);
    }
    Ok(entries)
}

fn check_suites(sender: &Address, to: &ContactCard) -> Result<Suite, SealError> {
    let suite = sender.suite();
    if to.address().suite() != suite {
        return Err(SealError::SuiteMismatch {
            sender: suite.name(),
            receiver: to.address().suite().name(),
        });
    }
    Ok(suite)
}

/// Seals one part with every input given: the deterministic core of [`seal`].
pub fn seal_with_parts(
    sender: &impl AsRef<Address>,
    to: &ContactCard,
    keys: PairKeys<'_>,
    parts: &EntryParts,
    kem: &Encapsulation,
) -> Result<Entry, SealError> {
    let sender = sender.as_ref();
    let suite = check_suites(sender, to)?;
    let layout = suite.layout();
    if parts.part.text.len() > layout.part_capacity(parts.intro.is_some())
        || kem.phrase.len() != layout.phrase_len
    {
        return Err(SealError::Crypto);
    }
    // A card always holds at least one check string.
    let check_string = to.checks().first().ok_or(SealError::Crypto)?;
    let receiver_fp = to.address().fingerprint();
    let k = EntryKeys::new(suite, &kem.shared, &receiver_fp.0, &kem.phrase);

    let mut out = vec![0u8; layout.sealed_len()];
    out[..layout.header_at()].copy_from_slice(&kem.phrase);
    let h = layout.header_at();
    out[h..h + 32].copy_from_slice(k.derive(Field::Commit).as_ref());
    let ok_header = aead_seal(
        &k.derive(Field::Header),
        check_string.as_bytes(),
        &mut out[h + 32..layout.check_at()],
    );
    let ok_from = aead_seal(
        &k.derive(Field::From),
        &sender.fingerprint().0,
        &mut out[layout.from_at()..layout.cipher_at()],
    );
    let intro = parts.intro.as_ref().map(|c| (sender.key_bytes(), c));
    let body = encode_body(&layout, &parts.part, keys.reply, intro);
    let ok_cipher = aead_seal(
        &k.derive(Field::Cipher),
        &body,
        &mut out[layout.cipher_at()..],
    );
    if !(ok_header && ok_from && ok_cipher) {
        return Err(SealError::Crypto);
    }
    let check = match keys.check {
        Some(key) => check_tag(key, &out, &layout),
        None => parts.random_check,
    };
    out[layout.check_at()..layout.from_at()].copy_from_slice(&check);
    Ok(Entry::from_sealed(suite, out))
}

/// `HMAC-SHA256(key, "deaddrop/1 check" || phrase || header || from || cipher)`.
fn check_tag(key: &CheckKey, sealed: &[u8], layout: &crate::suite::Layout) -> [u8; CHECK_LEN] {
    hmac_sha256(
        key.as_bytes(),
        &[
            &label("check"),
            &sealed[..layout.check_at()],
            &sealed[layout.from_at()..layout.sealed_len()],
        ],
    )
}

/// What the receiver knows about a sender it has as a contact.
#[derive(Clone, Copy, Debug)]
pub struct KnownSender<'a> {
    /// The check keys we issued to this contact (current first, then older ones still honoured).
    pub issued: &'a [CheckKey],
    /// Once the contact has proven it holds a key we issued, unauthenticated entries claiming
    /// to come from it are rejected as spoofed rather than shown as unverified.
    pub require_check: bool,
}

/// The receiver's contact book, as [`open`] needs it.
pub trait Contacts {
    /// What we know of the sender with this fingerprint, if it is a contact.
    fn known_sender(&self, fingerprint: &Fingerprint) -> Option<KnownSender<'_>>;
}

/// An empty contact book.
impl Contacts for () {
    fn known_sender(&self, _: &Fingerprint) -> Option<KnownSender<'_>> {
        None
    }
}

/// A part from a sender the receiver has as a contact.
#[derive(Debug)]
pub struct Received {
    /// The sender's fingerprint.
    pub sender: Fingerprint,
    /// True when the `check` field verified under a key we issued to the sender (IV.2): only
    /// the holder of the sender's private key can have sent it.
    pub verified: bool,
    /// Which of the issued keys verified it (0 = current), when verified.
    pub key_index: Option<usize>,
    /// The issued key that verified it, when verified: which of several keys issued to one
    /// sender (one per introduction still unconfirmed, `docs/PROTOCOL.md` §8.5) it answered.
    pub verified_by: Option<CheckKey>,
    /// Which of our accepted check strings the header carried: once a verified entry carries
    /// our newest, the sender has our current card (§8.3).
    pub header_check: CheckString,
    /// The part.
    pub part: Part,
    /// The check key the sender issues to us: use it for [`PairKeys::check`] when replying.
    pub reply_key: CheckKey,
    /// The sender's address, when the part carries it.
    pub sender_address: Option<Address>,
    /// The sender's current check string, when the part carries it.
    pub sender_check: Option<CheckString>,
}

/// A part from a sender the receiver does not know (paper II.2): the first message of a new
/// contact, or a stranger.
#[derive(Debug)]
pub struct Request {
    /// The sender's address, so the receiver can reply after accepting.
    pub sender: Address,
    /// The sender's current check string, for the header of a reply.
    pub sender_check: CheckString,
    /// The part.
    pub part: Part,
    /// The check key the sender issues to us.
    pub reply_key: CheckKey,
}

/// Why an entry that was for us was not accepted. Count these locally; never report them to
/// anyone, or they become an oracle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// The commitment matched but the sealed check string did not open: tampered.
    Header,
    /// The header opened but carries a check string we do not accept (rotated away, or a
    /// sender who only knows the bare address).
    CheckString,
    /// The `from` field did not open: tampered.
    From,
    /// The `cipher` field did not open: tampered.
    Cipher,
    /// The body decoded to something malformed.
    Body,
    /// The carried address does not match the `from` fingerprint, or is not a valid key.
    Address,
    /// An unknown sender that did not carry its address: we could never reply.
    UnknownSender,
    /// A known contact's `check` failed after it had proven its key: spoofed.
    Check,
}

/// The outcome of trying to open one entry.
#[derive(Debug)]
pub enum Opened {
    /// The entry was sealed to someone else (or its phrase or commitment was altered).
    NotForMe,
    /// A part from a known contact.
    Message(Received),
    /// A part from an unknown sender.
    Request(Request),
    /// Sealed to us but not acceptable.
    Rejected(RejectReason),
}

impl Opened {
    /// True for everything but [`Opened::NotForMe`].
    pub fn is_for_me(&self) -> bool {
        !matches!(self, Opened::NotForMe)
    }
}

/// Tries to open `entry` as `me` (paper V.4): decapsulate, check the key commitment, open the
/// header and compare the check string with those we accept, open `from` and `cipher`, then
/// verify the sender's `check` against the keys we issued to it.
pub fn open(
    me: &Identity,
    accepted: &[CheckString],
    contacts: &impl Contacts,
    entry: &Entry,
) -> Opened {
    let suite = me.suite();
    if entry.suite() != suite {
        return Opened::NotForMe;
    }
    let layout = suite.layout();
    let Some(ss) = me.decapsulate(entry.phrase()) else {
        return Opened::NotForMe;
    };
    let k = EntryKeys::new(suite, &ss, &me.address().fingerprint().0, entry.phrase());
    let header = entry.header();
    if !bool::from(k.derive(Field::Commit).as_ref().ct_eq(&header[..32])) {
        return Opened::NotForMe;
    }
    let Some(check_string) = aead_open(&k.derive(Field::Header), &header[32..]) else {
        return Opened::Rejected(RejectReason::Header);
    };
    let mut cs = [0u8; CHECK_STRING_LEN];
    cs.copy_from_slice(&check_string);
    let cs = CheckString::from_bytes(cs);
    if !accepted.iter().any(|a| bool::from(a.ct_eq(&cs))) {
        return Opened::Rejected(RejectReason::CheckString);
    }
    let Some(from) = aead_open(&k.derive(Field::From), entry.from_field()) else {
        return Opened::Rejected(RejectReason::From);
    };
    let mut fp = [0u8; FINGERPRINT_LEN];
    fp.copy_from_slice(&from);
    let sender = Fingerprint(fp);
    let Some(body) = aead_open(&k.derive(Field::Cipher), entry.cipher()) else {
        return Opened::Rejected(RejectReason::Cipher);
    };
    let Some(body) = decode_body(&layout, &body) else {
        return Opened::Rejected(RejectReason::Body);
    };
    let (sender_address, sender_check) = match body.intro {
        Some((key, check)) => match Address::from_key(suite, &key) {
            Ok(a) if a.fingerprint() == sender => (Some(a), Some(check)),
            _ => return Opened::Rejected(RejectReason::Address),
        },
        None => (None, None),
    };
    match contacts.known_sender(&sender) {
        Some(known) => {
            let tag = check_tag_of(entry, &layout);
            let key_index = known
                .issued
                .iter()
                .position(|key| bool::from(check_tag(key, entry.sealed(), &layout).ct_eq(&tag)));
            if key_index.is_none() && known.require_check {
                return Opened::Rejected(RejectReason::Check);
            }
            Opened::Message(Received {
                sender,
                verified: key_index.is_some(),
                verified_by: key_index.and_then(|i| known.issued.get(i).cloned()),
                key_index,
                header_check: cs,
                part: body.part,
                reply_key: body.reply_key,
                sender_address,
                sender_check,
            })
        }
        None => match (sender_address, sender_check) {
            (Some(sender), Some(sender_check)) => Opened::Request(Request {
                sender,
                sender_check,
                part: body.part,
                reply_key: body.reply_key,
            }),
            _ => Opened::Rejected(RejectReason::UnknownSender),
        },
    }
}

fn check_tag_of(entry: &Entry, layout: &crate::suite::Layout) -> [u8; CHECK_LEN] {
    let mut t = [0u8; CHECK_LEN];
    t.copy_from_slice(&entry.as_bytes()[layout.check_at()..layout.from_at()]);
    t
}

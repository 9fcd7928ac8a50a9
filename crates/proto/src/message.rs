//! The message body inside `cipher`, parts, and reassembly (`docs/PROTOCOL.md` §7).
//!
//! Every entry of a suite has the same size, so a message longer than one body is split into
//! parts that share a random message id; the receiver reassembles them. The id also lets the
//! receiver recognise a replayed or duplicated entry.

use core::fmt;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::card::CheckString;
use crate::error::MessageError;
use crate::secret::CheckKey;
use crate::suite::{Layout, BODY_FIXED_LEN, CHECK_STRING_LEN};

/// Body format version, the first byte of every body.
pub const BODY_VERSION: u8 = 1;
/// Flag: the sender's address and check string follow the fixed fields.
pub const FLAG_INTRO: u8 = 0x01;
/// The most parts one message may have.
pub const MAX_PARTS: usize = u16::MAX as usize;

/// A random 16-byte id shared by the parts of one message.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    /// Draws a fresh id.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut b = [0u8; 16];
        rng.fill_bytes(&mut b);
        MessageId(b)
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", self.to_hex())
    }
}

/// One part of a message as it came out of an entry.
#[derive(Clone, PartialEq, Eq)]
pub struct Part {
    /// The message's id.
    pub message_id: MessageId,
    /// This part's index, below `count`.
    pub index: u16,
    /// How many parts the message has (at least 1).
    pub count: u16,
    /// When the sender sealed it, in milliseconds since the Unix epoch, by the sender's clock.
    pub sent_at_ms: u64,
    /// This part's bytes of the message.
    pub text: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Part")
            .field("message_id", &self.message_id)
            .field("index", &self.index)
            .field("count", &self.count)
            .field("sent_at_ms", &self.sent_at_ms)
            .field("text_len", &self.text.len())
            .finish()
    }
}

/// The decoded body of one entry.
pub(crate) struct Body {
    pub(crate) part: Part,
    pub(crate) reply_key: CheckKey,
    /// The sender's address key and current check string, when it introduced itself.
    pub(crate) intro: Option<(Vec<u8>, CheckString)>,
}

/// Body layout offsets (`docs/PROTOCOL.md` §7.1).
const AT_FLAGS: usize = 1;
const AT_ID: usize = 2;
const AT_INDEX: usize = 18;
const AT_COUNT: usize = 20;
const AT_SENT: usize = 22;
const AT_REPLY: usize = 30;
const AT_LEN: usize = 62;

/// Writes a body of exactly `layout.body_len()` bytes, zero padded. The caller guarantees the
/// text fits the part capacity.
pub(crate) fn encode_body(
    layout: &Layout,
    part: &Part,
    reply_key: &CheckKey,
    intro: Option<(&[u8], &CheckString)>,
) -> Zeroizing<Vec<u8>> {
    let mut b = Zeroizing::new(vec![0u8; layout.body_len()]);
    b[0] = BODY_VERSION;
    b[AT_FLAGS] = if intro.is_some() { FLAG_INTRO } else { 0 };
    b[AT_ID..AT_INDEX].copy_from_slice(&part.message_id.0);
    b[AT_INDEX..AT_COUNT].copy_from_slice(&part.index.to_be_bytes());
    b[AT_COUNT..AT_SENT].copy_from_slice(&part.count.to_be_bytes());
    b[AT_SENT..AT_REPLY].copy_from_slice(&part.sent_at_ms.to_be_bytes());
    b[AT_REPLY..AT_LEN].copy_from_slice(reply_key.as_bytes());
    b[AT_LEN..BODY_FIXED_LEN].copy_from_slice(&(part.text.len() as u16).to_be_bytes());
    let mut at = BODY_FIXED_LEN;
    if let Some((addr, check)) = intro {
        b[at..at + addr.len()].copy_from_slice(addr);
        at += addr.len();
        b[at..at + CHECK_STRING_LEN].copy_from_slice(check.as_bytes());
        at += CHECK_STRING_LEN;
    }
    b[at..at + part.text.len()].copy_from_slice(&part.text);
    b
}

/// Reads a body; `None` if any field is out of range or the padding is not zero.
pub(crate) fn decode_body(layout: &Layout, b: &[u8]) -> Option<Body> {
    if b.len() != layout.body_len() || b[0] != BODY_VERSION || b[AT_FLAGS] & !FLAG_INTRO != 0 {
        return None;
    }
    let intro = b[AT_FLAGS] & FLAG_INTRO != 0;
    let u16_at = |at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
    let index = u16_at(AT_INDEX);
    let count = u16_at(AT_COUNT);
    if count == 0 || index >= count {
        return None;
    }
    let len = usize::from(u16_at(AT_LEN));
    if len > layout.part_capacity(intro) {
        return None;
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&b[AT_ID..AT_INDEX]);
    let mut sent = [0u8; 8];
    sent.copy_from_slice(&b[AT_SENT..AT_REPLY]);
    let mut reply = [0u8; 32];
    reply.copy_from_slice(&b[AT_REPLY..AT_LEN]);
    let mut at = BODY_FIXED_LEN;
    let intro = intro.then(|| {
        let a = b[at..at + layout.address_len].to_vec();
        at += layout.address_len;
        let mut c = [0u8; CHECK_STRING_LEN];
        c.copy_from_slice(&b[at..at + CHECK_STRING_LEN]);
        at += CHECK_STRING_LEN;
        (a, CheckString::from_bytes(c))
    });
    let text = Zeroizing::new(b[at..at + len].to_vec());
    if b[at + len..].iter().any(|&x| x != 0) {
        return None;
    }
    Some(Body {
        part: Part {
            message_id: MessageId(id),
            index,
            count,
            sent_at_ms: u64::from_be_bytes(sent),
            text,
        },
        reply_key: CheckKey::from_bytes(reply),
        intro,
    })
}

/// Joins the parts of one message, in any order, into its bytes. Every part must share the
/// message id and count, and each index must appear exactly once.
pub fn assemble(parts: &[Part]) -> Result<Zeroizing<Vec<u8>>, MessageError> {
    let first = parts.first().ok_or(MessageError::Empty)?;
    if parts
        .iter()
        .any(|p| p.message_id != first.message_id || p.count != first.count)
    {
        return Err(MessageError::Mixed);
    }
    let mut slots: Vec<Option<&Part>> = vec![None; usize::from(first.count)];
    for p in parts {
        let slot = slots
            .get_mut(usize::from(p.index))
            .ok_or(MessageError::Missing(p.index))?;
        if slot.replace(p).is_some() {
            return Err(MessageError::Missing(p.index));
        }
    }
    let mut out = Zeroizing::new(Vec::new());
    for (i, slot) in slots.iter().enumerate() {
        let p = slot.ok_or(MessageError::Missing(i as u16))?;
        out.extend_from_slice(&p.text);
    }
    Ok(out)
}

//! The message body inside `cipher`, parts, and reassembly (`docs/PROTOCOL.md` §7).
//!
//! Every entry of a suite has the same size, so a message longer than one body is split into
//! parts that share a random message id; the receiver reassembles them. The id also lets the
//! receiver recognise a replayed or duplicated entry.

use core::fmt;

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::card::CheckString;
use crate::codec::{Reader, Writer};
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

/// Writes a body of exactly `layout.body_len()` bytes, zero padded (`docs/PROTOCOL.md` §7.1):
/// `version (1) || flags (1) || message id (16) || index (u16) || count (u16) ||
/// sent_at_ms (u64) || reply key (32) || text length (u16) || [address || check string] ||
/// text || zero padding`. The caller guarantees the text fits the part capacity.
pub(crate) fn encode_body(
    layout: &Layout,
    part: &Part,
    reply_key: &CheckKey,
    intro: Option<(&[u8], &CheckString)>,
) -> Zeroizing<Vec<u8>> {
    // Allocated once at full size, so no reallocation leaves an unzeroized copy behind.
    let mut b = Zeroizing::new(Vec::with_capacity(layout.body_len()));
    b.put_u8(BODY_VERSION);
    b.put_u8(if intro.is_some() { FLAG_INTRO } else { 0 });
    b.put_slice(&part.message_id.0);
    b.put_u16(part.index);
    b.put_u16(part.count);
    b.put_u64(part.sent_at_ms);
    b.put_slice(reply_key.as_bytes());
    b.put_u16(part.text.len() as u16);
    debug_assert_eq!(b.len(), BODY_FIXED_LEN);
    if let Some((addr, check)) = intro {
        b.put_slice(addr);
        b.put_slice(check.as_bytes());
    }
    b.put_slice(&part.text);
    debug_assert!(b.len() <= layout.body_len());
    b.resize(layout.body_len(), 0);
    b
}

/// Reads a body; `None` if any field is out of range or the padding is not zero.
pub(crate) fn decode_body(layout: &Layout, b: &[u8]) -> Option<Body> {
    if b.len() != layout.body_len() {
        return None;
    }
    let mut r = Reader::new(b);
    let version = r.u8().ok()?;
    let flags = r.u8().ok()?;
    if version != BODY_VERSION || flags & !FLAG_INTRO != 0 {
        return None;
    }
    let intro = flags & FLAG_INTRO != 0;
    let id = r.take_array().ok()?;
    let index = r.u16().ok()?;
    let count = r.u16().ok()?;
    let sent_at_ms = r.u64().ok()?;
    let reply = r.take_array().ok()?;
    let len = usize::from(r.u16().ok()?);
    if count == 0 || index >= count || len > layout.part_capacity(intro) {
        return None;
    }
    let intro = if intro {
        let address = r.take(layout.address_len).ok()?.to_vec();
        let check = CheckString::from_bytes(r.take_array::<CHECK_STRING_LEN>().ok()?);
        Some((address, check))
    } else {
        None
    };
    let text = Zeroizing::new(r.take(len).ok()?.to_vec());
    if r.rest().iter().any(|&x| x != 0) {
        return None;
    }
    Some(Body {
        part: Part {
            message_id: MessageId(id),
            index,
            count,
            sent_at_ms,
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

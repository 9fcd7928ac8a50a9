//! What the client keeps about its peers beyond their cards (docs/PROTOCOL.md §7.3, §8.3, §8.5):
//!
//! - **Introductions.** The `from` of a first contact cannot be verified, so anyone who knows an
//!   address can introduce themselves under it with their own check string and reply key. Every
//!   distinct introduction (told apart by its reply key, which only its author knows) of an
//!   address not yet confirmed is kept, at most [`MAX_INTRODUCTIONS`], the least recently seen
//!   dropped first. A contact made from them is sealed to once per introduction, each copy to
//!   the real address, so only its owner opens any; the first verified answer names the
//!   introduction it answered (each copy issues its own key) and the others are dropped.
//! - **Seen message ids** per sender, kept when a contact is removed (as a digest with the day,
//!   not the fingerprint), so a replay of its old entries after it is added again is a
//!   duplicate, not a new message.
//! - **Check-string acknowledgements**: which of my check strings each contact last used in a
//!   verified entry. Until a contact uses my newest, my messages to it carry my check string
//!   (`INTRO`), so a rotation reaches contacts without a new card.
//!
//! Everything here runs only for entries that opened, never on the scan's hot path.

use deaddrop_proto::card::MAX_CHECK_STRINGS;
use deaddrop_proto::rng::SystemRng;
use deaddrop_proto::{CheckKey, CheckString, ContactCard, Fingerprint, Received};
use rusqlite::{params, OptionalExtension, Transaction};
use zeroize::Zeroizing;

use super::{check_key, parse_card, Contact, Db};
use crate::error::ClientError;

/// The most introductions kept for one address: a pending request's, or an unconfirmed
/// contact's counting the one its card holds. Past it the least recently seen is dropped, so a
/// flood of forged introductions can push the genuine one out only until its owner writes again
/// (every first message carries it), never for good; refusing new ones instead would let a
/// forger who came first lock the owner out.
pub const MAX_INTRODUCTIONS: usize = 8;

/// How long before its ledger time a part may have been sealed (by the sender's clock) and still
/// be taken as new when its message id is not remembered: an older one cannot be told from a
/// replay of a message whose id was forgotten (docs/PROTOCOL.md §7.3).
pub const STALE_MS: u64 = 30 * 24 * 3600 * 1000;

/// How long the message ids seen are remembered for a ledger whose entries live at most
/// `max_lifetime_s`: past the lifetime, so an entry read again (from a mirror, or after a
/// removed contact is added again) is still known, and past [`STALE_MS`], so a replay made after
/// the id was forgotten is stale by then.
pub fn seen_retention_ms(max_lifetime_s: u64) -> u64 {
    max_lifetime_s
        .saturating_mul(1000)
        .max(STALE_MS)
        .saturating_add(STALE_MS)
}

fn check_string(b: Vec<u8>) -> Result<CheckString, ClientError> {
    let b: [u8; 16] = b.try_into().map_err(|_| ClientError::Damaged {
        what: "check string",
        detail: None,
    })?;
    Ok(CheckString::from_bytes(b))
}

/// A key's bytes for a statement, wiped when the statement is done.
fn key_bytes(k: &CheckKey) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(k.export_bytes())
}

fn check_bytes(c: &CheckString) -> Zeroizing<[u8; 16]> {
    Zeroizing::new(c.export_bytes())
}

/// Records an introduction of `fp` (its check string and reply key) carried by the entry with
/// ledger id `id`. A new one gets `issued` as the key we issue to it (an unconfirmed contact's;
/// `None` while the address is a pending request); one seen before is refreshed, taking the
/// check string of the entry with the higher id. Keeps the `keep` most recently seen.
pub(super) fn record_introduction(
    tx: &Transaction<'_>,
    fp: &Fingerprint,
    check: &CheckString,
    reply: &CheckKey,
    id: u64,
    issued: Option<&CheckKey>,
    keep: usize,
) -> Result<(), ClientError> {
    let issued = issued.map(key_bytes);
    tx.execute(
        "INSERT INTO introductions (fingerprint, reply_key, check_string, issued_key, last_id)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (fingerprint, reply_key) DO UPDATE SET
             check_string = CASE WHEN excluded.last_id > last_id THEN excluded.check_string ELSE check_string END,
             last_id = max(last_id, excluded.last_id)",
        params![
            &fp.0[..],
            &key_bytes(reply)[..],
            &check_bytes(check)[..],
            issued.as_ref().map(|k| &k[..]),
            id as i64
        ],
    )?;
    tx.execute(
        "DELETE FROM introductions WHERE fingerprint = ?1 AND rowid NOT IN
             (SELECT rowid FROM introductions WHERE fingerprint = ?1 ORDER BY last_id DESC, rowid DESC LIMIT ?2)",
        params![&fp.0[..], keep as i64],
    )?;
    Ok(())
}

/// The newest introduction of a pending address: its reply key and check string.
pub(super) fn newest_introduction(
    conn: &rusqlite::Connection,
    fp: &[u8],
) -> Result<Option<(CheckKey, CheckString)>, ClientError> {
    let row: Option<(Vec<u8>, Vec<u8>)> = conn
        .query_row(
            "SELECT reply_key, check_string FROM introductions WHERE fingerprint = ?1 AND issued_key IS NULL
             ORDER BY last_id DESC, rowid DESC LIMIT 1",
            [fp],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    row.map(|(k, c)| Ok((check_key(k)?, check_string(c)?)))
        .transpose()
}

/// Makes a pending address's introductions those of the contact just made from it: the newest
/// one's reply key is the contact's (returned), every other one gets a key of its own that we
/// issue, and is sealed to as well until an answer verifies.
pub(super) fn adopt_introductions(
    tx: &Transaction<'_>,
    fp: &Fingerprint,
) -> Result<Option<CheckKey>, ClientError> {
    let Some((primary, _)) = newest_introduction(tx, &fp.0)? else {
        return Ok(None);
    };
    tx.execute(
        "DELETE FROM introductions WHERE fingerprint = ?1 AND reply_key = ?2",
        params![&fp.0[..], &key_bytes(&primary)[..]],
    )?;
    let others: Vec<Vec<u8>> = {
        let mut st = tx.prepare(
            "SELECT reply_key FROM introductions WHERE fingerprint = ?1 AND issued_key IS NULL",
        )?;
        let rows = st.query_map([&fp.0[..]], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    for reply in others {
        let issued = CheckKey::generate(&mut SystemRng);
        tx.execute(
            "UPDATE introductions SET issued_key = ?3 WHERE fingerprint = ?1 AND reply_key = ?2",
            params![&fp.0[..], reply, &key_bytes(&issued)[..]],
        )?;
    }
    Ok(Some(primary))
}

/// An entry from contact `cid` verified: if it answered one of the contact's other
/// introductions, that one's check string and key become the contact's; then every other
/// introduction is dropped. The contact's check string and keys change only here and in
/// [`take_check_string`], both for verified entries.
pub(super) fn settle_introductions(
    tx: &Transaction<'_>,
    cid: i64,
    m: &Received,
) -> Result<(), ClientError> {
    let Some(by) = &m.verified_by else {
        return Ok(());
    };
    let rows: Vec<(Vec<u8>, Vec<u8>)> = {
        let mut st = tx.prepare(
            "SELECT check_string, issued_key FROM introductions WHERE fingerprint = ?1 AND issued_key IS NOT NULL",
        )?;
        let rows = st.query_map([&m.sender.0[..]], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    if rows.is_empty() {
        return Ok(());
    }
    let mut answered = None;
    for (check, issued) in rows {
        let issued = check_key(issued)?;
        if issued == *by {
            answered = Some((check_string(check)?, issued));
        }
    }
    if let Some((check, issued)) = answered {
        let card = contact_card(tx, cid)?;
        let card = ContactCard::new(
            card.address().clone(),
            vec![check],
            card.name().map(str::to_string),
        )
        .map_err(|e| ClientError::damaged("contact card", e))?;
        tx.execute(
            "UPDATE contacts SET card = ?2, issued_key = ?3 WHERE id = ?1",
            params![cid, card.to_text(), &key_bytes(&issued)[..]],
        )?;
    }
    tx.execute(
        "DELETE FROM introductions WHERE fingerprint = ?1",
        [&m.sender.0[..]],
    )?;
    Ok(())
}

fn contact_card(tx: &Transaction<'_>, cid: i64) -> Result<ContactCard, ClientError> {
    let text: String = tx.query_row("SELECT card FROM contacts WHERE id = ?1", [cid], |r| {
        r.get(0)
    })?;
    parse_card(&text)
}

/// A new verified message from contact `cid` carried its check string: it becomes the first on
/// the contact's card (the one we seal with), the others kept after it.
pub(super) fn take_check_string(
    tx: &Transaction<'_>,
    cid: i64,
    check: &CheckString,
) -> Result<(), ClientError> {
    let card = contact_card(tx, cid)?;
    if card.checks().first() == Some(check) {
        return Ok(());
    }
    let mut checks = vec![check.clone()];
    checks.extend(card.checks().iter().filter(|c| *c != check).cloned());
    checks.truncate(MAX_CHECK_STRINGS);
    let card = ContactCard::new(
        card.address().clone(),
        checks,
        card.name().map(str::to_string),
    )
    .map_err(|e| ClientError::damaged("contact card", e))?;
    tx.execute(
        "UPDATE contacts SET card = ?2 WHERE id = ?1",
        params![cid, card.to_text()],
    )?;
    Ok(())
}

/// A verified entry from `fp` carried `check` (one of ours) in its header.
pub(super) fn record_ack(
    tx: &Transaction<'_>,
    fp: &Fingerprint,
    check: &CheckString,
) -> Result<(), ClientError> {
    tx.execute(
        "INSERT INTO check_acks (fingerprint, check_string) VALUES (?1, ?2)
         ON CONFLICT (fingerprint) DO UPDATE SET check_string = excluded.check_string",
        params![&fp.0[..], &check_bytes(check)[..]],
    )?;
    Ok(())
}

/// Before a rotation: every contact not yet known to use a check string of ours is taken to use
/// the current one, so that after the rotation each is told the new one until it uses it.
pub(super) fn before_rotation(tx: &Transaction<'_>) -> Result<(), ClientError> {
    tx.execute(
        "INSERT OR IGNORE INTO check_acks (fingerprint, check_string)
         SELECT c.fingerprint, s.value FROM contacts c,
             (SELECT value FROM check_strings WHERE retired_ms IS NULL ORDER BY created_ms DESC, id DESC LIMIT 1) s",
        [],
    )?;
    Ok(())
}

const DAY_MS: u64 = 24 * 3600 * 1000;

/// What is kept of a message seen: a digest of its sender and id, not the two (a removed
/// conversation leaves no fingerprint behind; whoever can test a guess needs the message id,
/// which only the sealed entries hold), and the day of its ledger time.
fn seen_digest(sender: &[u8], message_id: &[u8]) -> [u8; 16] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"deaddrop client seen message");
    ctx.update(sender);
    ctx.update(message_id);
    let d = ctx.finish();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d.as_ref()[..16]);
    out
}

fn insert_seen(
    tx: &Transaction<'_>,
    sender: &[u8],
    message_id: &[u8],
    time_ms: u64,
) -> Result<(), ClientError> {
    tx.execute(
        "INSERT OR IGNORE INTO seen_messages (digest, day) VALUES (?1, ?2)",
        params![
            &seen_digest(sender, message_id)[..],
            (time_ms / DAY_MS) as i64
        ],
    )?;
    Ok(())
}

/// Remembers the ids of the incoming messages `which` selects (an SQL condition on `messages`
/// with `?1` bound to `arg`) before they are deleted.
pub(super) fn remember_seen(
    tx: &Transaction<'_>,
    which: &str,
    arg: &dyn rusqlite::ToSql,
) -> Result<(), ClientError> {
    let rows: Vec<(Vec<u8>, Vec<u8>, i64)> = {
        let mut st = tx.prepare(&format!(
            "SELECT sender_fp, message_id, time_ms FROM messages WHERE direction = 'in' AND {which}"
        ))?;
        let rows = st.query_map([arg], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    for (sender, id, time) in rows {
        insert_seen(tx, &sender, &id, time.max(0) as u64)?;
    }
    Ok(())
}

/// Whether a message with this sender and id was seen before, kept or not.
pub(super) fn seen(
    tx: &Transaction<'_>,
    sender: &Fingerprint,
    message_id: &[u8],
) -> Result<bool, ClientError> {
    Ok(tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM messages WHERE direction = 'in' AND sender_fp = ?1 AND message_id = ?2)
             OR EXISTS (SELECT 1 FROM seen_messages WHERE digest = ?3)",
        params![&sender.0[..], message_id, &seen_digest(&sender.0, message_id)[..]],
        |r| r.get(0),
    )?)
}

/// Records a completed message's id.
pub(super) fn mark_seen(
    tx: &Transaction<'_>,
    sender: &Fingerprint,
    message_id: &[u8],
    time_ms: u64,
) -> Result<(), ClientError> {
    insert_seen(tx, &sender.0, message_id, time_ms)
}

/// One copy of a message to a contact: the card to seal to and the keys to use.
#[derive(Debug, Clone)]
pub struct Recipient {
    /// The contact's address with the check string of this copy.
    pub card: ContactCard,
    /// The check key held for this copy, if any (none: the copy carries `INTRO`).
    pub check: Option<CheckKey>,
    /// The key we issue in this copy.
    pub reply: CheckKey,
}

impl Db {
    /// Whom a message to `contact` is sealed to: its card with the keys held, and, while it is
    /// unconfirmed, every other introduction of its address with the key issued to that one.
    pub fn recipients(&self, contact: &Contact) -> Result<Vec<Recipient>, ClientError> {
        let mut out = vec![Recipient {
            card: contact.card.clone(),
            check: contact.their_key.clone(),
            reply: contact.issued_key.clone(),
        }];
        if contact.confirmed {
            return Ok(out);
        }
        let fp = contact.card.address().fingerprint();
        let mut st = self.conn.prepare(
            "SELECT reply_key, check_string, issued_key FROM introductions
             WHERE fingerprint = ?1 AND issued_key IS NOT NULL ORDER BY last_id DESC, rowid DESC",
        )?;
        let rows = st.query_map([&fp.0[..]], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })?;
        for row in rows {
            let (reply, check, issued) = row?;
            let card = ContactCard::new(
                contact.card.address().clone(),
                vec![check_string(check)?],
                contact.card.name().map(str::to_string),
            )
            .map_err(|e| ClientError::damaged("introduction", e))?;
            out.push(Recipient {
                card,
                check: Some(check_key(reply)?),
                reply: check_key(issued)?,
            });
        }
        Ok(out)
    }

    /// How many introductions a message to `contact` goes to: 1, or more while introductions
    /// of its address are contested.
    pub fn introductions(&self, contact: &Contact) -> Result<u64, ClientError> {
        let fp = contact.card.address().fingerprint();
        let extra: i64 = self.conn.query_row(
            "SELECT COUNT(*) FROM introductions WHERE fingerprint = ?1 AND issued_key IS NOT NULL",
            [&fp.0[..]],
            |r| r.get(0),
        )?;
        Ok(1 + extra as u64)
    }

    /// Whether a message to `contact` should carry `newest`, my newest check string: it has
    /// used another of mine in a verified entry since I rotated, and not this one yet.
    pub fn should_tell_check(
        &self,
        contact: &Contact,
        newest: &CheckString,
    ) -> Result<bool, ClientError> {
        let fp = contact.card.address().fingerprint();
        let known: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT check_string FROM check_acks WHERE fingerprint = ?1",
                [&fp.0[..]],
                |r| r.get(0),
            )
            .optional()?;
        Ok(match known {
            Some(k) => check_string(k)? != *newest,
            None => false,
        })
    }

    /// Replaces a contact's card with a newer one of the same address (given out of band, e.g.
    /// after they rotated their check string). Keys and conversation stay. Returns the contact
    /// and whether anything changed.
    pub fn update_contact_card(
        &mut self,
        card: &ContactCard,
    ) -> Result<(Contact, bool), ClientError> {
        let fp = card.address().fingerprint();
        let name: Option<String> = self
            .conn
            .query_row(
                "SELECT name FROM contacts WHERE fingerprint = ?1",
                [&fp.0[..]],
                |r| r.get(0),
            )
            .optional()?;
        let Some(name) = name else {
            return Err(ClientError::NotAContact {
                fingerprint: fp.short(),
            });
        };
        let old = self.contact(&name)?;
        let changed = old.card != *card;
        if changed {
            self.conn.execute(
                "UPDATE contacts SET card = ?2 WHERE id = ?1",
                params![old.id, card.to_text()],
            )?;
        }
        Ok((self.contact(&name)?, changed))
    }

    /// Forgets the message ids seen on days (of ledger time) wholly before `cutoff_ms`;
    /// returns how many.
    pub fn forget_seen_before(&self, cutoff_ms: u64) -> Result<u64, ClientError> {
        Ok(self.conn.execute(
            "DELETE FROM seen_messages WHERE day < ?1",
            [(cutoff_ms / DAY_MS) as i64],
        )? as u64)
    }
}

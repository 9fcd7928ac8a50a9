//! The client's operations over a [`Db`] and a [`LedgerClient`]: send (seal, record, solve the
//! proof of work, append with retries; or queue the message when the ledger is away), flush
//! (send what the outbox holds), sync (send what is queued, read every entry after the last seen
//! id, trial-decrypt on all cores, store what is ours with the new position in one transaction),
//! and watch (follow the push stream).
//!
//! **The outbox.** A message is sealed and recorded before anything goes on the wire; its parts
//! wait in the outbox until a ledger acknowledges them. Sealing needs nothing from the ledger
//! (the proof of work is solved when a part is sent, at the difficulty the ledger asks then), so
//! `send` with the ledger unreachable records the message at once and says it is queued;
//! [`flush`] sends it later, from `deaddrop outbox flush`, `sync` and `watch` (and anything else
//! that calls it). A part a ledger refuses for good is set aside with the reason
//! ([`crate::db::RefusedPart`]) and the rest go on.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deaddrop_api::client::retry;
use deaddrop_api::{
    frames, Backoff, EntryId, Frame, Info, LedgerClient, LedgerError, LedgerId, ProblemKind,
    PushEvent,
};
use deaddrop_proto::message::MessageId;
use deaddrop_proto::rng::SystemRng;
use deaddrop_proto::{pow, seal_message_with_rng, Entry, Identity, PairKeys, Suite};
use rand_core::RngCore;
use rayon::prelude::*;

use crate::db::{seen_retention_ms, Db, FoundEntry, NewMessage, RefusedPart};
use crate::error::ClientError;
use crate::scan::scan_parallel;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// How long a send keeps retrying a ledger that is down or busy.
pub const SEND_PATIENCE: Duration = Duration::from_secs(60);
/// The largest message `send` accepts (about 64 MiB): past that, use another tool.
pub const MAX_MESSAGE: usize = 64 << 20;

/// How long a send, or a sync about to read, keeps trying to get queued parts to a ledger that
/// answered a moment ago but now fails or is busy: enough to ride out a restart.
pub const SYNC_FLUSH_PATIENCE: Duration = Duration::from_secs(5);

/// How long a quick look at the ledger (`send`'s first contact, `status`) may take to connect:
/// a ledger that is down is noticed at once, instead of after a long retry.
pub const QUICK_CONNECT: Duration = Duration::from_secs(3);
/// [`QUICK_CONNECT`] through a proxy: Tor may take several seconds to build a circuit.
pub const QUICK_CONNECT_PROXY: Duration = Duration::from_secs(15);

/// What a send did.
#[derive(Debug, Clone)]
pub struct SendReport {
    /// The message id, hex.
    pub message_id: String,
    /// Parts (entries) the message took, all copies together.
    pub parts: usize,
    /// Copies sealed: 1, or one per introduction of an unconfirmed contact's address while
    /// several claim it (`docs/PROTOCOL.md` §8.5).
    pub copies: usize,
    /// Ledger ids of every part appended by this call (including parts of earlier,
    /// interrupted sends that this call finished).
    pub ids: Vec<u64>,
    /// Whether parts of this message wait in the outbox: the ledger is away (see `away`).
    pub queued: bool,
    /// Why the outbox could not be sent now (the ledger unreachable or busy), if it could not.
    pub away: Option<String>,
    /// Whether that was because the ledger could not be reached at all (rather than busy).
    pub unreachable: bool,
}

/// What sending the outbox did.
#[derive(Debug, Default)]
pub struct FlushReport {
    /// The ledger ids of the parts acknowledged now, in order.
    pub ids: Vec<u64>,
    /// Parts still waiting (the ledger went away or stayed busy), not counting those set aside.
    pub pending: usize,
    /// Parts the ledger refused for good now, set aside with the reason.
    pub refused: Vec<RefusedPart>,
    /// Why parts still wait, if they do: the last error from the ledger (unreachable, busy).
    pub away: Option<ClientError>,
}

/// How [`flush`] sends.
#[derive(Clone, Copy, Debug)]
pub struct Flush {
    /// The proof-of-work difficulty the ledger asked for last (its `info`).
    pub bits: u8,
    /// How long to keep retrying a ledger that is down or busy before leaving the rest queued.
    pub patience: Duration,
    /// Also try the parts a ledger refused before (`deaddrop outbox flush`: the user may have
    /// fixed the cause, e.g. chosen another ledger).
    pub retry_refused: bool,
}

/// What a sync did.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// Entries tried.
    pub scanned: u64,
    /// Complete messages from contacts.
    pub messages: u64,
    /// Complete messages from strangers.
    pub requests: u64,
    /// Entries for us that were rejected.
    pub rejected: u64,
    /// Of those, entries with a check string we no longer (or never) accepted.
    pub rejected_check_string: u64,
    /// Duplicates and replays ignored.
    pub duplicates: u64,
    /// Ids that expired before we read them, first and last (all gaps of this sync together),
    /// that could have held entries for this identity: not all older than the identity.
    pub gap: Option<(u64, u64)>,
    /// Ids that expired unread but were all appended before this identity was created, so
    /// none of them can have been for it (a first sync of a new identity on an old ledger).
    pub gap_before_identity: Option<(u64, u64)>,
    /// The last id seen when the sync began.
    pub first_id: u64,
    /// The last id seen now.
    pub last_id: u64,
    /// The newest id the ledger has assigned, as it last said (0 while it holds none).
    pub newest_id: u64,
    /// The sync was stopped before it caught up (`stop` resolved); `last_id` is where the
    /// next one resumes.
    pub stopped: bool,
    /// The messages that arrived.
    pub new: Vec<NewMessage>,
    /// The ledger's id, if it reports one.
    pub ledger_id: Option<LedgerId>,
    /// Where the position is kept ([`crate::db::position_key`]).
    pub position_key: String,
    /// The ledger that answered at this URL before, when this one is another this home never
    /// read ([`crate::db::Position::replaced`]): read from its start.
    pub replaced: Option<LedgerId>,
    /// Queued parts sent before reading (the outbox, [`flush`]).
    pub flushed: u64,
    /// Queued parts still waiting after that, and those a ledger refused for good.
    pub queued: u64,
    /// Parts the ledger refused for good during this sync.
    pub refused: Vec<RefusedPart>,
}

/// Checks that the ledger carries `suite` and returns its info.
pub async fn check_ledger(ledger: &LedgerClient, suite: Suite) -> Result<Info, ClientError> {
    let info = ledger.info().await?;
    if info.suite != suite.name() {
        return Err(ClientError::SuiteMismatch {
            url: ledger.url().to_string(),
            ledger: info.suite,
            mine: suite.name().into(),
        });
    }
    if info.entry_bytes != suite.layout().entry_len {
        return Err(ClientError::Protocol {
            url: ledger.url().to_string(),
            detail: format!(
                "it says {} entries are {} bytes, this client knows them as {}",
                suite,
                info.entry_bytes,
                suite.layout().entry_len
            ),
        });
    }
    Ok(info)
}

fn retryable(e: &ClientError) -> bool {
    matches!(e, ClientError::Ledger(l) if l.is_transient())
}

/// The schedule of a send's retries: from 100 ms doubling up to 5 s, within `patience`.
fn send_backoff(patience: Duration) -> Backoff {
    Backoff::new(Duration::from_millis(100), Duration::from_secs(5)).with_patience(patience)
}

/// How long a send waits for a ledger that cannot be reached at all before it starts: long enough
/// to ride out a restart, short enough that a wrong `--ledger` is reported promptly.
pub const CONNECT_PATIENCE: Duration = Duration::from_secs(15);

/// [`check_ledger`], retrying a ledger that is down or busy for [`CONNECT_PATIENCE`].
pub async fn check_ledger_patiently(
    ledger: &LedgerClient,
    suite: Suite,
) -> Result<Info, ClientError> {
    retry(send_backoff(CONNECT_PATIENCE), retryable, || {
        check_ledger(ledger, suite)
    })
    .await
}

/// How far a send is, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendProgress {
    /// Solving the proof of work of this many parts.
    Stamping {
        /// Parts to stamp.
        parts: usize,
    },
    /// `done` of `total` parts are on the ledger.
    Posted {
        /// Parts acknowledged so far.
        done: usize,
        /// Parts to append.
        total: usize,
    },
}

/// Seals `text` to contact `name`, records it, and sends the outbox (this message's parts and
/// any queued before). One quick look at the ledger first ([`check_ledger`], one attempt): a
/// ledger that cannot be used for good (another suite, an untrusted certificate) fails the send
/// before anything is recorded; one that is unreachable or busy does not stop it: the message is
/// recorded and stays queued ([`SendReport::queued`]), for [`flush`] to send later. A part the
/// ledger refuses for good fails the send with [`ClientError::Refused`], the part set aside.
///
/// Give it a client with a short connect timeout ([`QUICK_CONNECT`]) so that a ledger that is
/// down is noticed at once.
pub async fn send(
    db: &mut Db,
    ledger: &LedgerClient,
    name: &str,
    text: &str,
) -> Result<SendReport, ClientError> {
    send_with_progress(db, ledger, name, text, &mut |_| {}).await
}

/// [`send`], telling `progress` how far it is.
pub async fn send_with_progress(
    db: &mut Db,
    ledger: &LedgerClient,
    name: &str,
    text: &str,
    progress: &mut (dyn FnMut(SendProgress) + Send),
) -> Result<SendReport, ClientError> {
    check_size(text)?;
    let contact = db.contact(name)?;
    let suite = db.identity()?.address.suite();
    let info = match check_ledger(ledger, suite).await {
        Ok(info) => Ok(info),
        Err(e) if retryable(&e) => Err(e),
        Err(e) => return Err(e),
    };
    let queued = queue(db, &contact.name, text)?;
    let report = match info {
        Ok(info) => {
            flush_with_progress(
                db,
                ledger,
                suite,
                Flush {
                    bits: info.pow_bits,
                    patience: SEND_PATIENCE,
                    retry_refused: false,
                },
                progress,
            )
            .await?
        }
        Err(away) => FlushReport {
            pending: db.pending_outbox()?.len(),
            away: Some(away),
            ..Default::default()
        },
    };
    if let Some(r) = report.refused.iter().find(|r| r.message == queued.row) {
        return Err(ClientError::Refused {
            url: ledger.url().to_string(),
            reason: r.reason.clone(),
        });
    }
    let still_queued = db.queued_messages()?.iter().any(|m| m.id == queued.row);
    Ok(SendReport {
        message_id: queued.message_id,
        parts: queued.parts,
        copies: queued.copies,
        ids: report.ids,
        queued: still_queued,
        unreachable: matches!(
            report.away,
            Some(ClientError::Ledger(LedgerError::Unreachable { .. }))
        ),
        away: report.away.map(|e| e.to_string()),
    })
}

fn check_size(text: &str) -> Result<(), ClientError> {
    if text.len() > MAX_MESSAGE {
        return Err(ClientError::Input(format!(
            "the message is {} bytes; deaddrop sends at most {MAX_MESSAGE}",
            text.len()
        )));
    }
    Ok(())
}

/// A message sealed and recorded with its parts in the outbox, not yet on the wire.
#[derive(Debug, Clone)]
pub struct Queued {
    /// The message's row in the database (as [`crate::db::MessageView::id`]).
    pub row: i64,
    /// The message id, hex.
    pub message_id: String,
    /// Parts (entries) the message took, all copies together.
    pub parts: usize,
    /// Copies sealed (see [`SendReport::copies`]).
    pub copies: usize,
}

/// Seals `text` to contact `name` and records it with its parts in the outbox, without touching
/// the network: [`flush_outbox`] sends it. What `deaddrop chat` does, so a message typed while
/// the ledger is unreachable waits in the outbox instead of being lost.
pub fn queue(db: &mut Db, name: &str, text: &str) -> Result<Queued, ClientError> {
    check_size(text)?;
    let contact = db.contact(name)?;
    let me = db.identity()?;
    let now = now_ms();
    let my_checks = db.accepted_checks(now)?;
    let newest = my_checks.first();
    // Carry our newest check string to a contact that has not used it yet (we rotated since).
    let tell = match newest {
        Some(c) => db.should_tell_check(&contact, c)?,
        None => false,
    };
    let recipients = db.recipients(&contact)?;
    let mut rng = SystemRng;
    let message_id = MessageId::generate(&mut rng);
    let mut entries = Vec::new();
    // One copy per introduction of the contact's address while several claim it, each sealed to
    // the real address: only its owner opens any, and its answer settles which was genuine.
    for r in &recipients {
        // Introduce ourselves until the contact has written to us: until then they may not
        // know us.
        let intro = if r.check.is_none() || tell {
            newest
        } else {
            None
        };
        let keys = PairKeys {
            check: r.check.as_ref(),
            reply: &r.reply,
        };
        entries.extend(seal_message_with_rng(
            &me.address,
            &r.card,
            keys,
            text.as_bytes(),
            intro,
            now,
            message_id,
            &mut rng,
        )?);
    }
    let bytes: Vec<Vec<u8>> = entries.iter().map(|e| e.as_bytes().to_vec()).collect();
    let row = db.record_outgoing(&contact, &message_id, text, now, &bytes)?;
    Ok(Queued {
        row,
        message_id: message_id.to_hex(),
        parts: entries.len(),
        copies: recipients.len(),
    })
}

/// Solves the proof of work of every entry at `bits`, on all cores.
fn stamp_all<'a>(
    entries: impl Iterator<Item = &'a mut Entry>,
    bits: u8,
) -> Result<(), ClientError> {
    if bits > pow::MAX_BITS {
        return Err(ClientError::PowTooHard {
            asked: bits,
            max: pow::MAX_BITS,
        });
    }
    let mut entries: Vec<&mut Entry> = entries.collect();
    entries.par_iter_mut().for_each(|e| {
        pow::solve(e, bits, SystemRng.next_u64());
    });
    Ok(())
}

/// Appends every pending outbox part, retrying a ledger that is down or busy for
/// [`SEND_PATIENCE`], and returns the ledger ids acknowledged; fails with the ledger's error if
/// parts are left waiting, or with [`ClientError::Refused`] for a part refused for good (set
/// aside; the others went on). [`flush`] says more.
pub async fn flush_outbox(
    db: &mut Db,
    ledger: &LedgerClient,
    suite: Suite,
    bits: u8,
) -> Result<Vec<u64>, ClientError> {
    flush_outbox_within(db, ledger, suite, bits, SEND_PATIENCE).await
}

/// [`flush_outbox`], retrying a ledger that is down or busy for `patience` only (`deaddrop
/// chat` gives up sooner and tries again later, so that it can say the ledger is unreachable).
pub async fn flush_outbox_within(
    db: &mut Db,
    ledger: &LedgerClient,
    suite: Suite,
    bits: u8,
    patience: Duration,
) -> Result<Vec<u64>, ClientError> {
    let report = flush(
        db,
        ledger,
        suite,
        Flush {
            bits,
            patience,
            retry_refused: false,
        },
    )
    .await?;
    if let Some(e) = report.away {
        return Err(e);
    }
    if let Some(r) = report.refused.into_iter().next() {
        return Err(ClientError::Refused {
            url: ledger.url().to_string(),
            reason: r.reason,
        });
    }
    Ok(report.ids)
}

/// Sends the outbox: appends every queued part, oldest first, each stamped at `how.bits` (and
/// again at the ledger's new difficulty if it asks for more), retrying a ledger that is down or
/// busy for `how.patience`, after which the rest stay queued ([`FlushReport::away`]). The same
/// bytes are re-sent, so a retry (or a flush killed after an append and run again) can at worst
/// store a second entry, which the receiver recognises by its message id: it never makes a
/// second message.
///
/// A part refused for good (by the ledger, or damaged on disk) is set aside with the reason and
/// the next one goes on; one that cannot be used at all (an untrusted certificate, an answer
/// this client does not understand) fails the flush, everything left queued.
///
/// Each part goes out through a client of its own ([`LedgerClient::isolated`]): through Tor,
/// its own circuit, so the exit and the ledger cannot tell that the parts belong together
/// (nor to the command's other requests).
pub async fn flush(
    db: &mut Db,
    ledger: &LedgerClient,
    suite: Suite,
    how: Flush,
) -> Result<FlushReport, ClientError> {
    flush_with_progress(db, ledger, suite, how, &mut |_| {}).await
}

/// [`flush`], telling `progress` how far it is.
pub async fn flush_with_progress(
    db: &mut Db,
    ledger: &LedgerClient,
    suite: Suite,
    how: Flush,
    progress: &mut (dyn FnMut(SendProgress) + Send),
) -> Result<FlushReport, ClientError> {
    let queued = db.queued_parts(how.retry_refused)?;
    let mut report = FlushReport::default();
    let mut parts = Vec::with_capacity(queued.len());
    for item in queued {
        match Entry::parse(suite, &item.entry) {
            Ok(e) => parts.push((item, e)),
            Err(e) => {
                let why = format!("the part stored in the outbox is damaged ({e})");
                report
                    .refused
                    .push(db.outbox_refused(item.id, &why, now_ms())?);
            }
        }
    }
    let mut bits = how.bits;
    progress(SendProgress::Stamping { parts: parts.len() });
    if let Err(e) = stamp_all(parts.iter_mut().map(|(_, e)| e), bits) {
        report.pending = parts.len();
        report.away = Some(e);
        return Ok(report);
    }
    let mut backoff = send_backoff(how.patience);
    let mut left = parts.len();
    let total = parts.len();
    let mut fatal = None;
    for (item, entry) in parts.iter_mut() {
        let client = ledger.isolated()?;
        let outcome = loop {
            match client.append(entry.as_bytes().to_vec()).await {
                Ok(a) => break Ok(a.id.get()),
                // The difficulty rose since the stamp: stamp again at the new one. Not a refusal
                // for good, even once patience has run out: the part waits.
                Err(e) if e.problem() == Some(&ProblemKind::PowInsufficient) => {
                    if backoff.exhausted() {
                        break Err(Stop::Away(e.into()));
                    }
                    match check_ledger(&client, suite).await {
                        Ok(info) => bits = info.pow_bits,
                        Err(e) if retryable(&e) && backoff.wait().await => continue,
                        Err(e) if retryable(&e) => break Err(Stop::Away(e)),
                        Err(e) => break Err(Stop::Fatal(e)),
                    }
                    if let Err(e) = stamp_all(std::iter::once(&mut *entry), bits) {
                        break Err(Stop::Away(e));
                    }
                }
                Err(e) if e.is_transient() => {
                    if !backoff.wait().await {
                        break Err(Stop::Away(e.into()));
                    }
                }
                Err(LedgerError::Refused { problem, .. }) => {
                    break Err(Stop::Refused(format!(
                        "the ledger at {} refused it: {} {}: {}",
                        ledger.url(),
                        problem.status,
                        problem.title,
                        problem.detail
                    )))
                }
                Err(e) => break Err(Stop::Fatal(e.into())),
            }
        };
        match outcome {
            Ok(id) => {
                db.outbox_sent(item.id)?;
                report.ids.push(id);
                backoff.reset();
                progress(SendProgress::Posted {
                    done: report.ids.len(),
                    total,
                });
            }
            Err(Stop::Refused(why)) => {
                report
                    .refused
                    .push(db.outbox_refused(item.id, &why, now_ms())?);
            }
            Err(Stop::Away(e)) => {
                report.pending = left;
                report.away = Some(e);
                break;
            }
            Err(Stop::Fatal(e)) => {
                fatal = Some(e);
                break;
            }
        }
        left -= 1;
    }
    // The acknowledged parts' rows were deleted: out of the write-ahead log too.
    if !report.ids.is_empty() {
        db.forget_deleted()?;
    }
    match fatal {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

/// Why a part was not sent.
enum Stop {
    /// The ledger refused it for good: why.
    Refused(String),
    /// The ledger is away or busy: the part and those after it wait.
    Away(ClientError),
    /// The ledger cannot be used at all (an untrusted certificate, answers this client does
    /// not understand): everything left waits, and the flush fails.
    Fatal(ClientError),
}

/// Reads and opens every entry after the last seen id, page by page; each page's messages and
/// the new position commit together. The next page downloads while this one is scanned.
pub async fn sync(
    db: &mut Db,
    ledger: &LedgerClient,
    me: &Identity,
    progress: impl FnMut(&SyncReport),
) -> Result<SyncReport, ClientError> {
    sync_until(db, ledger, me, progress, std::future::pending()).await
}

/// Merges the id range `a..=b` into `into`.
fn widen(into: &mut Option<(u64, u64)>, (a, b): (u64, u64)) {
    *into = Some(match *into {
        Some((a0, b0)) => (a0.min(a), b0.max(b)),
        None => (a, b),
    });
}

/// [`sync`] until it caught up or `stop` resolves, whichever comes first. `stop` is heeded
/// only between pages, never inside one: each page commits with its position, so a stopped
/// sync reports `stopped` and its `last_id` is exactly where the next one resumes.
pub async fn sync_until(
    db: &mut Db,
    ledger: &LedgerClient,
    me: &Identity,
    mut progress: impl FnMut(&SyncReport),
    stop: impl std::future::Future<Output = ()>,
) -> Result<SyncReport, ClientError> {
    tokio::pin!(stop);
    let suite = me.suite();
    let info = check_ledger(ledger, suite).await?;
    let entry_len = suite.layout().entry_len;
    let limit = info.max_page.clamp(1, 1024);
    // What waits in the outbox goes first: the ledger is here now. A failure to send never
    // keeps this home from reading: the parts stay queued.
    let sent = match flush(
        db,
        ledger,
        suite,
        Flush {
            bits: info.pow_bits,
            patience: SYNC_FLUSH_PATIENCE,
            retry_refused: false,
        },
    )
    .await
    {
        Ok(sent) => sent,
        Err(e @ ClientError::Ledger(_)) | Err(e @ ClientError::PowTooHard { .. }) => FlushReport {
            away: Some(e),
            ..Default::default()
        },
        Err(e) => return Err(e),
    };
    let position = db.ledger_position(ledger.url(), info.ledger_id)?;
    let created_ms = db.identity_created_ms()?;
    let first_id = position.last_id;
    let mut report = SyncReport {
        first_id,
        last_id: first_id,
        newest_id: info.newest_id.map_or(0, |n| n.get()).max(first_id),
        ledger_id: info.ledger_id,
        replaced: position.replaced,
        position_key: position.key,
        flushed: sent.ids.len() as u64,
        queued: db.queued_parts(true)?.len() as u64,
        refused: sent.refused,
        ..Default::default()
    };
    let key = report.position_key.clone();
    progress(&report);
    let book = db.book()?;
    let accepted = db.accepted_checks(now_ms())?;
    let fetch = |after: u64| {
        let l = ledger.clone();
        tokio::spawn(async move { l.read(EntryId(after), limit).await })
    };
    let mut next = Some(fetch(report.last_id));
    while let Some(mut pending) = next.take() {
        let page = tokio::select! {
            biased;
            () = &mut stop => {
                pending.abort();
                report.stopped = true;
                break;
            }
            page = &mut pending => page??,
        };
        let next_after = page.meta.next_after.get();
        let frames = decode_frames(ledger, &page.body, entry_len)?;
        let full = frames.len() >= limit;
        if full {
            next = Some(fetch(next_after));
        }
        if let Some(g) = page.meta.gap {
            let ids = (g.first().get(), g.last().get());
            let first_after = frames.first().map(|f| f.time_ms);
            if expired_before(first_after, info.min_lifetime_s, now_ms()) < created_ms {
                widen(&mut report.gap_before_identity, ids);
            } else {
                widen(&mut report.gap, ids);
            }
        }
        if let Some(n) = page.meta.newest {
            report.newest_id = report.newest_id.max(n.get());
        }
        let mut entries = Vec::with_capacity(frames.len());
        let mut meta = Vec::with_capacity(frames.len());
        for f in &frames {
            // A frame of the wrong size cannot be an entry of ours; skip it rather than stop.
            if let Ok(e) = Entry::parse(suite, f.entry) {
                entries.push(e);
                meta.push((f.id.get(), f.time_ms));
            }
        }
        let found = scan_parallel(me, &accepted, &book, &entries);
        let found: Vec<FoundEntry> = found
            .into_iter()
            .map(|(i, opened)| FoundEntry {
                id: meta[i].0,
                time_ms: meta[i].1,
                opened,
            })
            .collect();
        let stats = db.apply_batch(&key, next_after, found)?;
        report.scanned += frames.len() as u64;
        report.messages += stats.messages;
        report.requests += stats.requests;
        report.rejected += stats.rejected;
        report.rejected_check_string += stats.rejected_check_string;
        report.duplicates += stats.duplicates;
        report.new.extend(stats.new);
        report.last_id = report.last_id.max(next_after);
        report.newest_id = report.newest_id.max(report.last_id);
        progress(&report);
    }
    if !report.stopped {
        // Message ids are kept past the longest life an entry has on this ledger (db::peers).
        db.forget_seen_before(now_ms().saturating_sub(seen_retention_ms(info.max_lifetime_s)))?;
    }
    Ok(report)
}

/// A time no entry of a gap was appended after (ms since the Unix epoch, ledger clock): the
/// gap's ids all come before `first_after`, the time of the first entry after the gap, and
/// each expired at least the ledger's shortest lifetime after it was appended. A gap bounded
/// by a time before the identity's creation held nothing for it, since nobody could seal to an
/// address before it existed. The client's and the ledger's clocks are compared here: a skew
/// of s could hide a gap only if someone had the new card and wrote within s of its creation.
fn expired_before(first_after: Option<u64>, min_lifetime_s: u64, now_ms: u64) -> u64 {
    let by_expiry = now_ms.saturating_sub(min_lifetime_s.saturating_mul(1000));
    first_after.map_or(by_expiry, |t| t.min(by_expiry))
}

/// An event while watching.
#[derive(Debug)]
pub enum WatchEvent {
    /// Caught up and listening.
    Listening {
        /// The last id seen.
        last_id: u64,
    },
    /// A message arrived.
    Message(NewMessage),
    /// Entries expired before we read them.
    Gap(u64, u64),
    /// The connection dropped; reconnecting after the delay.
    Reconnecting(Duration, String),
}

/// Follows the ledger's push stream until `stop` resolves: catches up with a sync (which sends
/// the outbox first), then opens each pushed entry as it arrives. Reconnects with backoff; after
/// falling behind, or when the ledger is back, it syncs again.
pub async fn watch(
    db: &mut Db,
    ledger: &LedgerClient,
    me: Arc<Identity>,
    mut on_event: impl FnMut(WatchEvent),
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), ClientError> {
    tokio::pin!(stop);
    let suite = me.suite();
    let entry_len = suite.layout().entry_len;
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    loop {
        let session = async {
            let r = sync(db, ledger, &me, |_| {}).await?;
            if let Some((a, b)) = r.gap {
                on_event(WatchEvent::Gap(a, b));
            }
            for m in r.new {
                on_event(WatchEvent::Message(m));
            }
            let key = r.position_key;
            let mut cursor = r.last_id;
            let mut stream = ledger.stream(EntryId(cursor)).await?;
            on_event(WatchEvent::Listening { last_id: cursor });
            let mut book = db.book()?;
            let mut accepted = db.accepted_checks(now_ms())?;
            let mut version = db.data_version()?;
            while let Some(event) = stream.next().await {
                match event? {
                    PushEvent::Frames(data) => {
                        // Another connection changed the database (a request accepted there,
                        // a check string rotated): open with its contacts, not ours from before.
                        let current = db.data_version()?;
                        if current != version {
                            book = db.book()?;
                            accepted = db.accepted_checks(now_ms())?;
                            version = current;
                        }
                        let mut found = Vec::new();
                        let mut last = cursor;
                        for f in decode_frames(ledger, &data, entry_len)? {
                            last = last.max(f.id.get());
                            if let Ok(e) = Entry::parse(suite, f.entry) {
                                let opened = deaddrop_proto::open(&me, &accepted, &book, &e);
                                if opened.is_for_me() {
                                    found.push(FoundEntry {
                                        id: f.id.get(),
                                        time_ms: f.time_ms,
                                        opened,
                                    });
                                }
                            }
                        }
                        let changed = !found.is_empty();
                        let stats = db.apply_batch(&key, last, found)?;
                        cursor = last;
                        // What we opened may have confirmed a contact or added an
                        // introduction's key: open the next entries with the book as it is now.
                        if changed {
                            book = db.book()?;
                            accepted = db.accepted_checks(now_ms())?;
                        }
                        for m in stats.new {
                            on_event(WatchEvent::Message(m));
                        }
                    }
                    PushEvent::Closed { lagged, .. } => {
                        return Ok::<_, ClientError>(if lagged {
                            "fell behind; catching up".to_string()
                        } else {
                            "the ledger closed the stream".to_string()
                        });
                    }
                    PushEvent::Hello(_) => {}
                }
            }
            Ok("the stream ended".to_string())
        };
        let outcome = tokio::select! {
            r = session => r,
            _ = &mut stop => return Ok(()),
        };
        let why = match outcome {
            Ok(why) => {
                backoff.reset();
                why
            }
            Err(ClientError::Ledger(e)) if e.is_transient() || e.problem().is_some() => {
                e.to_string()
            }
            Err(e) => return Err(e),
        };
        // Without patience the schedule never ends.
        let delay = backoff.next_delay().unwrap_or(Duration::from_secs(30));
        on_event(WatchEvent::Reconnecting(delay, why));
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = &mut stop => return Ok(()),
        }
    }
}

/// The frames of a page or push message, refusing frames longer than `entry_len`: a ledger that
/// sends such is not speaking this protocol.
fn decode_frames<'a>(
    ledger: &LedgerClient,
    data: &'a [u8],
    entry_len: usize,
) -> Result<Vec<Frame<'a>>, ClientError> {
    frames(data, entry_len)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ClientError::Protocol {
            url: ledger.url().to_string(),
            detail: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::expired_before;

    #[test]
    fn a_gap_is_bounded_by_the_entry_after_it_and_by_the_shortest_lifetime() {
        // The entry after the gap came at 5,000; the shortest lifetime puts expired ones before
        // 7,000: nothing in the gap is younger than 5,000.
        assert_eq!(expired_before(Some(5_000), 3, 10_000), 5_000);
        // An empty page: only the lifetime bounds it.
        assert_eq!(expired_before(None, 3, 10_000), 7_000);
        assert_eq!(expired_before(Some(9_000), 3, 10_000), 7_000);
        assert_eq!(expired_before(None, u64::MAX, 10), 0);
    }
}

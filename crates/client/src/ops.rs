//! The client's operations over a [`Db`] and a [`LedgerClient`]: send (seal, record, solve the
//! proof of work, append with retries), sync (read every entry after the last seen id, trial-
//! decrypt on all cores, store what is ours with the new position in one transaction), and
//! watch (follow the push stream).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deaddrop_api::client::retry;
use deaddrop_api::{frames, Backoff, EntryId, Frame, Info, LedgerClient, ProblemKind, PushEvent};
use deaddrop_proto::message::MessageId;
use deaddrop_proto::rng::SystemRng;
use deaddrop_proto::{pow, seal_message_with_rng, Entry, Identity, PairKeys, Suite};
use rand_core::RngCore;
use rayon::prelude::*;

use crate::db::{seen_retention_ms, Db, FoundEntry, NewMessage};
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
    /// Ids that expired before we read them, first and last (all gaps of this sync together).
    pub gap: Option<(u64, u64)>,
    /// The last id seen now.
    pub last_id: u64,
    /// The messages that arrived.
    pub new: Vec<NewMessage>,
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

/// Seals `text` to contact `name`, records it, and appends every part.
pub async fn send(
    db: &mut Db,
    ledger: &LedgerClient,
    name: &str,
    text: &str,
) -> Result<SendReport, ClientError> {
    check_size(text)?;
    let contact = db.contact(name)?;
    let suite = db.identity()?.address.suite();
    // The ledger first: a send that cannot reach it leaves nothing queued behind.
    let info = check_ledger_patiently(ledger, suite).await?;
    let queued = queue(db, &contact.name, text)?;
    let ids = flush_outbox(db, ledger, suite, info.pow_bits).await?;
    Ok(SendReport {
        message_id: queued.message_id,
        parts: queued.parts,
        copies: queued.copies,
        ids,
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

fn stamp_all(entries: &mut [Entry], bits: u8) -> Result<(), ClientError> {
    if bits > pow::MAX_BITS {
        return Err(ClientError::PowTooHard {
            asked: bits,
            max: pow::MAX_BITS,
        });
    }
    entries.par_iter_mut().for_each(|e| {
        pow::solve(e, bits, SystemRng.next_u64());
    });
    Ok(())
}

/// Appends every pending outbox part, retrying a ledger that is down or busy for
/// [`SEND_PATIENCE`]. The same bytes are re-sent, so a retry can at worst store a duplicate
/// entry, which the receiver recognises by its message id; it never makes a second message.
///
/// Each part goes out through a client of its own ([`LedgerClient::isolated`]): through Tor,
/// its own circuit, so the exit and the ledger cannot tell that the parts belong together
/// (nor to the command's other requests).
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
    mut bits: u8,
    patience: Duration,
) -> Result<Vec<u64>, ClientError> {
    let pending = db.pending_outbox()?;
    let mut entries = pending
        .iter()
        .map(|p| Entry::parse(suite, &p.entry).map_err(|e| ClientError::damaged("queued part", e)))
        .collect::<Result<Vec<_>, _>>()?;
    stamp_all(&mut entries, bits)?;
    let mut ids = Vec::with_capacity(entries.len());
    for (item, entry) in pending.iter().zip(entries.iter_mut()) {
        let ledger = ledger.isolated()?;
        let mut backoff = send_backoff(patience);
        loop {
            match ledger.append(entry.as_bytes().to_vec()).await {
                Ok(a) => {
                    db.outbox_sent(item.id)?;
                    ids.push(a.id.get());
                    break;
                }
                Err(e)
                    if e.problem() == Some(&ProblemKind::PowInsufficient)
                        && !backoff.exhausted() =>
                {
                    bits = check_ledger_patiently(&ledger, suite).await?.pow_bits;
                    stamp_all(std::slice::from_mut(entry), bits)?;
                }
                Err(e) if e.is_transient() => {
                    if !backoff.wait().await {
                        return Err(e.into());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    if !pending.is_empty() {
        db.forget_deleted()?;
    }
    Ok(ids)
}

/// Reads and opens every entry after the last seen id, page by page; each page's messages and
/// the new position commit together. The next page downloads while this one is scanned.
pub async fn sync(
    db: &mut Db,
    ledger: &LedgerClient,
    me: &Identity,
    mut progress: impl FnMut(&SyncReport),
) -> Result<SyncReport, ClientError> {
    let suite = me.suite();
    let info = check_ledger(ledger, suite).await?;
    let entry_len = suite.layout().entry_len;
    let limit = info.max_page.clamp(1, 1024);
    let url = ledger.url().to_string();
    let mut report = SyncReport {
        last_id: db.last_id(&url)?,
        ..Default::default()
    };
    let book = db.book()?;
    let accepted = db.accepted_checks(now_ms())?;
    let fetch = |after: u64| {
        let l = ledger.clone();
        tokio::spawn(async move { l.read(EntryId(after), limit).await })
    };
    let mut next = Some(fetch(report.last_id));
    while let Some(pending) = next.take() {
        let page = pending.await??;
        let next_after = page.meta.next_after.get();
        let frames = decode_frames(ledger, &page.body, entry_len)?;
        let full = frames.len() >= limit;
        if full {
            next = Some(fetch(next_after));
        }
        if let Some(g) = page.meta.gap {
            let (a, b) = (g.first().get(), g.last().get());
            report.gap = Some(match report.gap {
                Some((a0, b0)) => (a0.min(a), b0.max(b)),
                None => (a, b),
            });
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
        let stats = db.apply_batch(&url, next_after, found)?;
        report.scanned += frames.len() as u64;
        report.messages += stats.messages;
        report.requests += stats.requests;
        report.rejected += stats.rejected;
        report.rejected_check_string += stats.rejected_check_string;
        report.duplicates += stats.duplicates;
        report.new.extend(stats.new);
        report.last_id = report.last_id.max(next_after);
        progress(&report);
    }
    // Message ids are kept past the longest life an entry has on this ledger (db::peers).
    db.forget_seen_before(now_ms().saturating_sub(seen_retention_ms(info.max_lifetime_s)))?;
    Ok(report)
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

/// Follows the ledger's push stream until `stop` resolves: catches up with a sync, then opens
/// each pushed entry as it arrives. Reconnects with backoff; after falling behind it syncs
/// again.
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
    let url = ledger.url().to_string();
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
                        let stats = db.apply_batch(&url, last, found)?;
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

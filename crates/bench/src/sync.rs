//! `deaddrop-bench sync`: how fast a client follows a ledger end to end (download, trial
//! decryption, storing), against the scan-only limit measured in the same run.
//!
//! The ledger runs in this process ([`deaddrop_ledger::run`] on `127.0.0.1:0`, embedded store in
//! a temporary directory, proof of work off). It is filled through the store API with
//! `--entries` entries sealed to a small pool of other identities and `--for-me` messages to the
//! measured identity from one of its contacts, spread evenly among them, sealed on all cores a
//! chunk at a time so that preparing the ledger costs little memory. Then:
//!
//! 1. **sync**: one [`ops::sync`] from id 0 in a fresh home with a real SQLite database, over
//!    HTTP on loopback, exactly as `deaddrop sync` runs it. Every message for me must arrive
//!    exactly once, or the benchmark fails. Before the first sync the peak RSS is reset
//!    (`/proc/self/clear_refs`), so its growth during that sync is the sync's own memory, which
//!    must not grow with the ledger.
//! 2. **scan only**: [`scan_parallel`] on all cores over the same entries, read back from the
//!    store into memory a chunk at a time, timing only the scans: the limit.
//!
//! The two take turns for `--rounds` rounds and the best of each counts, so that another
//! process taking a core for a while weighs on neither figure alone.
//!
//! The ratio `sync ÷ scan only` says what downloading and storing cost on top of the trial
//! decryption that bounds receiving. The ledger server shares this machine's cores with the
//! client during the sync (it does in real life only when both run on one machine).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context};
use bytes::Bytes;
use clap::Args;
use deaddrop_client::db::Db;
use deaddrop_client::keystore;
use deaddrop_client::ops;
use deaddrop_client::scan::scan_parallel;
use deaddrop_ledger::store::log::LogStore;
use deaddrop_ledger::store::{EntryId, Store};
use deaddrop_ledger::{Config, Ledger};
use deaddrop_proto::rng::SystemRng;
use deaddrop_proto::testkit::Person;
use deaddrop_proto::{seal, CheckKey, CheckString, ContactCard, Entry, Identity, PairKeys, Suite};
use rayon::prelude::*;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::measure::{rate, round, suite_parser};
use crate::Global;

/// Identities the entries for others are sealed to (and sent from).
const POOL: usize = 4;
/// Entries sealed and appended per step while preparing the ledger.
const CHUNK: usize = 4096;
/// Entries per scan in the scan-only measurement.
const SCAN_CHUNK: usize = 4096;
/// The scan-only measurement repeats whole passes until at least this long.
const MIN_SCAN: Duration = Duration::from_secs(1);
/// The contact's name in the measured identity's database.
const CONTACT: &str = "sender";

/// `deaddrop-bench sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Entries for others on the ledger.
    #[arg(long, default_value_t = 100_000)]
    entries: u32,

    /// Messages for the measured identity among them, from one of its contacts.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    for_me: u32,

    /// Rounds of (one sync from id 0 in a fresh home, one scan-only pass); the best of each
    /// counts.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,

    /// The suite of the ledger and the identities.
    #[arg(long, default_value_t = Suite::default(), value_parser = suite_parser())]
    suite: Suite,
}

/// The result, as `--json` prints it.
#[derive(Debug, Serialize)]
struct SyncReport {
    suite: &'static str,
    /// Entries on the ledger, all scanned by the sync: for others and for me.
    entries: u64,
    entries_for_others: u64,
    entries_for_me: u64,
    /// Bytes of entries on the ledger.
    ledger_mib: f64,
    /// Threads of the rayon pool both scans run on.
    threads: usize,
    /// Rounds of (sync, scan only); the best of each counts.
    rounds: u32,
    /// Seconds the fastest sync from id 0 took.
    sync_s: f64,
    /// Entries per second, end to end: download, trial decryption, storing.
    sync_per_s: f64,
    /// Entries per second of `scan_parallel` alone over the same entries in memory.
    scan_only_per_s: f64,
    /// `sync_per_s / scan_only_per_s`.
    ratio: f64,
    /// Highest resident memory of the whole run (ledger preparation included), MiB.
    peak_rss_mib: f64,
    /// Resident memory just before the sync, MiB.
    rss_before_sync_mib: f64,
    /// Peak resident memory during the sync minus `rss_before_sync_mib`: what the sync
    /// itself needed.
    sync_rss_growth_mib: f64,
    /// Entries sealed and stored per second while preparing the ledger.
    prepare_per_s: f64,
}

/// Runs the benchmark and prints its report.
pub fn run(global: Global, args: SyncArgs) -> anyhow::Result<()> {
    let suite = args.suite;
    let progress = |what: &str| {
        if !global.json {
            eprintln!("{what}");
        }
    };
    let others = u64::from(args.entries);
    let for_me = u64::from(args.for_me);
    let total = others + for_me;
    let threads = rayon::current_num_threads();
    let dir = tempfile::Builder::new()
        .prefix("deaddrop-bench-sync")
        .tempdir()
        .context("cannot make a temporary directory")?;

    progress(&format!("generating {} {suite} identities", POOL + 2));
    let fixture = Fixture::generate(suite)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let entry_len = suite.layout().entry_len;
    let store: Arc<dyn Store> = Arc::new(
        LogStore::open(&dir.path().join("ledger"), entry_len)
            .context("cannot open the ledger store")?,
    );

    progress(&format!(
        "sealing and storing {total} entries ({for_me} for me) on {threads} threads"
    ));
    let started = Instant::now();
    let plan = Plan { total, for_me };
    let mut next = 0;
    while next < total {
        let end = (next + CHUNK as u64).min(total);
        let chunk = (next..end)
            .into_par_iter()
            .map(|i| fixture.seal_one(&plan, i))
            .collect::<anyhow::Result<Vec<Bytes>>>()?;
        rt.block_on(async {
            let appends = chunk.into_iter().map(|b| store.append(b, now_ms()));
            futures_util::future::try_join_all(appends).await
        })
        .context("the store refused an entry")?;
        next = end;
    }
    let prepare_per_s = rate(total, started.elapsed());

    let config = Config {
        suite,
        pow_bits: 0,
        // Nothing may expire or be refused while the benchmark runs.
        max_bytes: 1 << 42,
        ..Config::default()
    };
    let ledger = Ledger::new(config, store.clone())?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .context("cannot listen on 127.0.0.1")?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = rt.spawn(deaddrop_ledger::run(listener, ledger, async move {
        let _ = stopped.await;
    }));
    let client = deaddrop_client::connect(&format!("http://{addr}"), None)?;

    // Sync and scan take turns, round by round, and the best round of each counts: another
    // process that takes a core for a while (this machine may be shared) then weighs on
    // neither figure alone.
    let mut best_sync = Duration::MAX;
    let mut best_scan = 0f64;
    let mut memory_of_first = None;
    for round in 0..args.rounds {
        progress(&format!(
            "round {} of {}: syncing from id 0",
            round + 1,
            args.rounds
        ));
        let mut db = fixture.home(&dir.path().join(format!("home-{round}")))?;
        // The first sync runs before the scan-only pass has grown the heap, so its growth is
        // its own.
        let first = round == 0;
        let peak_before = memory("VmHWM")?;
        if first {
            reset_peak_rss();
        }
        let rss_before = memory("VmRSS")?;
        let started = Instant::now();
        let report = rt.block_on(ops::sync(&mut db, &client, &fixture.me, |_| {}))?;
        let took = started.elapsed();
        if first {
            memory_of_first = Some((peak_before, rss_before, memory("VmHWM")?));
        }
        check_sync(&report, &mut db, total, for_me)?;
        best_sync = best_sync.min(took);

        progress(&format!(
            "round {} of {}: scanning the same entries in memory",
            round + 1,
            args.rounds
        ));
        let accepted = db.accepted_checks(now_ms())?;
        let book = db.book()?;
        let mut scan_time = Duration::ZERO;
        let mut scanned = 0u64;
        while scan_time < MIN_SCAN || scanned < total {
            let mut after = EntryId::START;
            let mut found = 0;
            loop {
                let records = rt.block_on(store.read(after, SCAN_CHUNK))?;
                let Some(last) = records.last() else { break };
                after = last.id;
                let entries = records
                    .iter()
                    .map(|r| Entry::parse(suite, &r.entry))
                    .collect::<Result<Vec<_>, _>>()?;
                drop(records);
                let t = Instant::now();
                found += scan_parallel(&fixture.me, &accepted, &book, &entries).len() as u64;
                scan_time += t.elapsed();
                scanned += entries.len() as u64;
            }
            ensure!(
                found == for_me,
                "the scan found {found} entries for me of {for_me}"
            );
        }
        best_scan = best_scan.max(rate(scanned, scan_time));
    }
    let _ = stop.send(());
    rt.block_on(server)
        .context("the ledger task failed")?
        .context("the ledger failed")?;
    let peak_end = memory("VmHWM")?;
    let (peak_before, rss_before_sync, peak_sync) = memory_of_first.context("no round ran")?;

    let sync_per_s = rate(total, best_sync);
    let r = SyncReport {
        suite: suite.name(),
        entries: total,
        entries_for_others: others,
        entries_for_me: for_me,
        ledger_mib: round(mib(total * entry_len as u64), 1),
        threads,
        rounds: args.rounds,
        sync_s: round(best_sync.as_secs_f64(), 3),
        sync_per_s: round(sync_per_s, 1),
        scan_only_per_s: round(best_scan, 1),
        ratio: round(sync_per_s / best_scan, 3),
        peak_rss_mib: round(mib(peak_before.max(peak_sync).max(peak_end)), 1),
        rss_before_sync_mib: round(mib(rss_before_sync), 1),
        sync_rss_growth_mib: round(mib(peak_sync.saturating_sub(rss_before_sync)), 1),
        prepare_per_s: round(prepare_per_s, 1),
    };
    if global.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        print_human(&r);
    }
    Ok(())
}

/// Fails unless the sync scanned every entry and stored every message for me exactly once.
fn check_sync(
    report: &ops::SyncReport,
    db: &mut Db,
    total: u64,
    for_me: u64,
) -> anyhow::Result<()> {
    ensure!(
        report.scanned == total,
        "the sync scanned {} entries of {total}",
        report.scanned
    );
    ensure!(
        report.messages == for_me && report.rejected == 0 && report.requests == 0,
        "the sync found {} messages, {} requests, {} rejected; {for_me} messages were sent",
        report.messages,
        report.requests,
        report.rejected
    );
    let conversation = db.conversation(CONTACT)?;
    for k in 0..for_me {
        let text = text_of(k);
        let n = conversation.iter().filter(|m| m.text == text).count();
        ensure!(n == 1, "message {k} is in the conversation {n} times");
    }
    ensure!(
        conversation.iter().all(|m| m.verified),
        "a message from the contact was not verified"
    );
    Ok(())
}

fn print_human(r: &SyncReport) {
    println!(
        "deaddrop-bench sync: suite {}, {} entries ({} MiB; {} for me), {} threads",
        r.suite, r.entries, r.ledger_mib, r.entries_for_me, r.threads
    );
    println!(
        "  sync from id 0     {:>9.0} /s   {:.2} s end to end (download, scan, store); best of {}",
        r.sync_per_s, r.sync_s, r.rounds
    );
    println!(
        "  scan only          {:>9.0} /s   the limit, same entries in memory",
        r.scan_only_per_s
    );
    println!("  ratio              {:>9.3}      goal ≥ 0.8", r.ratio);
    println!(
        "  memory             {:>9.1} MiB peak RSS of the run; the sync grew it by {:.1} MiB (from {:.1})",
        r.peak_rss_mib, r.sync_rss_growth_mib, r.rss_before_sync_mib
    );
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A `/proc/self/status` memory figure (`VmRSS`, `VmHWM`), in bytes.
fn memory(field: &str) -> anyhow::Result<u64> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("cannot read /proc/self/status")?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .with_context(|| format!("/proc/self/status has no {field}"))?;
    let kib: u64 = line
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("cannot read {field} in /proc/self/status"))?;
    Ok(kib * 1024)
}

/// Resets `VmHWM` to the current RSS (Linux ≥ 4.0); without it the growth is measured from the
/// peak of the preparation and reads low.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn text_of(k: u64) -> String {
    format!("deaddrop bench sync message {k}")
}

/// Which of the `total` entries are for me: `for_me` of them, spread evenly.
struct Plan {
    total: u64,
    for_me: u64,
}

impl Plan {
    /// The message number if entry `i` is for me.
    fn message_at(&self, i: u64) -> Option<u64> {
        // Entry `(2k + 1) · total / (2 · for_me)` carries message k.
        let k = (2 * i * self.for_me + self.for_me) / (2 * self.total);
        ((2 * k + 1) * self.total / (2 * self.for_me) == i).then_some(k)
    }
}

/// The measured identity, its contact, and the pool the other entries go to.
struct Fixture {
    me: Identity,
    /// The check string on my card, the same in every fresh home.
    my_check: CheckString,
    my_card: ContactCard,
    sender: Person,
    others: Vec<Person>,
    /// The key the measured identity issued to its contact.
    issued: CheckKey,
    /// The key the contact issues back.
    reply: CheckKey,
}

impl Fixture {
    fn generate(suite: Suite) -> anyhow::Result<Fixture> {
        let mut people = (0..POOL + 2)
            .into_par_iter()
            .map(|_| {
                Person::generate(suite, None, &mut SystemRng)
                    .with_context(|| format!("cannot generate a {suite} identity"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let me = people.remove(0);
        let sender = people.remove(0);
        let my_check = me.checks[0].clone();
        Ok(Fixture {
            me: me.id,
            my_check,
            my_card: me.card,
            sender,
            others: people,
            issued: CheckKey::generate(&mut SystemRng),
            reply: CheckKey::generate(&mut SystemRng),
        })
    }

    /// A fresh home in `dir` holding my identity and my one contact, as `deaddrop init` and
    /// `deaddrop contact add` would leave it.
    fn home(&self, dir: &std::path::Path) -> anyhow::Result<Db> {
        let mut db = Db::create(dir, None)?;
        let now = now_ms();
        db.create_identity(
            self.me.address(),
            Some("me"),
            &keystore::seal(&self.me, None)?,
            &self.my_check,
            now,
        )?;
        db.add_contact(CONTACT, &self.sender.card, &self.issued, now)?;
        Ok(db)
    }

    /// Entry `i` of the ledger, sealed.
    fn seal_one(&self, plan: &Plan, i: u64) -> anyhow::Result<Bytes> {
        let sent_at = now_ms();
        let mut sealed = match plan.message_at(i) {
            Some(k) => {
                let keys = PairKeys {
                    check: Some(&self.issued),
                    reply: &self.reply,
                };
                seal(
                    &self.sender.id,
                    &self.my_card,
                    keys,
                    text_of(k).as_bytes(),
                    None,
                    sent_at,
                )
            }
            None => {
                let to = i as usize % POOL;
                let from = &self.others[(to + 1) % POOL];
                let keys = PairKeys {
                    check: None,
                    reply: &self.reply,
                };
                let text = format!("deaddrop bench sync entry {i} for someone else");
                seal(
                    &from.id,
                    &self.others[to].card,
                    keys,
                    text.as_bytes(),
                    Some(&from.card.checks()[0]),
                    sent_at,
                )
            }
        }
        .with_context(|| format!("cannot seal entry {i}"))?;
        match (sealed.pop(), sealed.is_empty()) {
            (Some(entry), true) => Ok(Bytes::from(entry.into_bytes())),
            _ => bail!("entry {i} did not seal to exactly one part"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Plan;

    #[test]
    fn plan_spreads_exactly_for_me_entries() {
        for (total, for_me) in [(100, 100), (2100, 100), (100_100, 100), (7, 3), (1, 1)] {
            let plan = Plan { total, for_me };
            let at: Vec<u64> = (0..total).filter_map(|i| plan.message_at(i)).collect();
            assert_eq!(at, (0..for_me).collect::<Vec<_>>(), "{total} {for_me}");
        }
    }
}

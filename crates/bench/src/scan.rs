//! `deaddrop-bench scan`: how fast one identity can trial-decrypt a ledger, against the limit.
//!
//! Receiving costs one private-key operation per entry (paper V.2), so the limit is the suite's
//! raw decapsulation rate. In one run this measures that rate on one thread, then scans the same
//! entries with [`deaddrop_client::scan::scan_parallel`] on a pool of one thread and on a pool
//! of all cores, and prints both rates with `scan ÷ raw` and `all ÷ one thread`.
//!
//! The entries are sealed to a small pool of other identities (RSA-3072 keys take a fraction of
//! a second each to generate), except a few that are sealed to the scanning identity: half from
//! a contact who authenticates with a check key, half from a stranger who introduces itself.
//! Every scan must find exactly those, with the right outcome, or the benchmark fails.

use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context};
use clap::Args;
use deaddrop_client::scan::{scan_parallel, thread_pool, Found};
use deaddrop_proto::rng::SystemRng;
use deaddrop_proto::testkit::{Book, Person};
use deaddrop_proto::{seal, CheckKey, Entry, Identity, Opened, PairKeys, Suite};
use rayon::prelude::*;
use serde::Serialize;

use crate::measure::{rate, round, suite_parser};
use crate::Global;

/// Identities the noise entries are sealed to (and sent from).
const POOL: usize = 4;
/// Entries sealed to the scanning identity; half from a contact, half from a stranger.
const FOR_ME: usize = 4;
/// Fewest entries a run accepts: enough to hold the [`FOR_ME`] entries among noise.
const MIN_ENTRIES: u32 = 10;
/// Each measurement runs whole passes over the entries until at least this long.
const MIN_MEASURE: Duration = Duration::from_secs(1);
/// Entries in the warm-up pass of each measurement.
const WARM_UP: usize = 200;

/// `deaddrop-bench scan`.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// The suite to measure.
    #[arg(long, default_value_t = Suite::default(), value_parser = suite_parser())]
    suite: Suite,

    /// How many entries to seal and scan [default: 20000 for xwing, 2000 for rsa-oaep].
    #[arg(long, value_parser = clap::value_parser!(u32).range(i64::from(MIN_ENTRIES)..))]
    entries: Option<u32>,

    /// Threads for the all-cores scan [default: one per core].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,
}

fn default_entries(suite: Suite) -> u32 {
    match suite {
        Suite::XWing => 20_000,
        // RSA-3072 decryption is about 30 times slower than X-Wing decapsulation.
        _ => 2_000,
    }
}

/// The result, as `--json` prints it.
#[derive(Debug, Serialize)]
struct ScanReport {
    suite: &'static str,
    /// Bytes of one entry on the wire.
    entry_bytes: usize,
    /// Text bytes one entry carries.
    part_capacity: usize,
    /// Text bytes one entry carries when it also carries the sender's address.
    part_capacity_intro: usize,
    /// `entry_bytes - part_capacity`: what a one-part message costs beyond its text.
    overhead_bytes: usize,
    /// The same for a first-contact message, which carries the sender's address.
    overhead_intro_bytes: usize,
    entries: usize,
    /// Of those, sealed to the scanning identity (and found by every scan).
    entries_for_me: usize,
    /// Threads of the all-cores scan.
    threads: usize,
    /// Cores the operating system offers this process.
    cores: usize,
    /// Bare decapsulations per second on one thread: the limit.
    raw_decaps_per_s: f64,
    /// Microseconds per decapsulation.
    raw_decaps_us: f64,
    scan_1thread_per_s: f64,
    scan_all_per_s: f64,
    /// `scan_1thread_per_s / raw_decaps_per_s`.
    ratio_1thread: f64,
    /// `scan_all_per_s / scan_1thread_per_s`.
    speedup_all: f64,
    /// Entries sealed per second on all threads while preparing the run.
    seal_all_per_s: f64,
}

/// Runs the benchmark and prints its report.
pub fn run(global: Global, args: ScanArgs) -> anyhow::Result<()> {
    let suite = args.suite;
    let n = args.entries.unwrap_or_else(|| default_entries(suite)) as usize;
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let threads = args.threads.map_or(cores, usize::from);
    let one = thread_pool(1).context("cannot start a scan thread")?;
    let all = thread_pool(threads).with_context(|| format!("cannot start {threads} threads"))?;

    let progress = |what: &str| {
        if !global.json {
            eprintln!("{what}");
        }
    };
    progress(&format!("generating {} {suite} identities", POOL + 1));
    let fixture = all.install(|| Fixture::generate(suite))?;
    progress(&format!("sealing {n} entries on {threads} threads"));
    let started = Instant::now();
    let plan = Plan::new(n);
    let entries = all.install(|| fixture.seal_all(&plan))?;
    let seal_all_per_s = rate(n as u64, started.elapsed());

    progress("measuring");
    let scan_with = |pool: &rayon::ThreadPool, entries: &[Entry]| -> Found {
        pool.install(|| scan_parallel(&fixture.me.id, &fixture.me.checks, &fixture.book, entries))
    };
    // Warm-up: fault in the entries' pages, spin up the pools' threads, fill the caches.
    let head = &entries[..n.min(WARM_UP)];
    one.install(|| raw_pass(&fixture.me.id, head));
    scan_with(&one, head);
    scan_with(&all, head);

    // The three measurements take turns, pass by pass, so that a drift of clock speed weighs on
    // all of them alike: the ratios between them are what matters. Another process that takes a
    // core during the run still lowers the all-cores figure alone; measure on a quiet machine.
    let mut raw = Meter::default();
    let mut one_thread = Meter::default();
    let mut all_threads = Meter::default();
    while [&raw, &one_thread, &all_threads]
        .iter()
        .any(|m| m.elapsed < MIN_MEASURE)
    {
        raw.time(n, || one.install(|| raw_pass(&fixture.me.id, &entries)));
        let found = one_thread.time(n, || scan_with(&one, &entries));
        plan.verify(&fixture, &found)
            .context("the one-thread scan got it wrong")?;
        let found = all_threads.time(n, || scan_with(&all, &entries));
        plan.verify(&fixture, &found)
            .with_context(|| format!("the {threads}-thread scan got it wrong"))?;
    }

    let layout = suite.layout();
    let raw_decaps_per_s = raw.rate();
    let scan_1thread_per_s = one_thread.rate();
    let scan_all_per_s = all_threads.rate();
    let report = ScanReport {
        suite: suite.name(),
        entry_bytes: layout.entry_len,
        part_capacity: layout.part_capacity(false),
        part_capacity_intro: layout.part_capacity(true),
        overhead_bytes: layout.entry_len - layout.part_capacity(false),
        overhead_intro_bytes: layout.entry_len - layout.part_capacity(true),
        entries: n,
        entries_for_me: FOR_ME,
        threads,
        cores,
        raw_decaps_per_s: round(raw_decaps_per_s, 1),
        raw_decaps_us: round(1e6 / raw_decaps_per_s, 2),
        scan_1thread_per_s: round(scan_1thread_per_s, 1),
        scan_all_per_s: round(scan_all_per_s, 1),
        ratio_1thread: round(scan_1thread_per_s / raw_decaps_per_s, 3),
        speedup_all: round(scan_all_per_s / scan_1thread_per_s, 3),
        seal_all_per_s: round(seal_all_per_s, 1),
    };
    if global.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_human(&report);
    }
    Ok(())
}

fn print_human(r: &ScanReport) {
    println!(
        "deaddrop-bench scan: suite {}, {} entries ({} for me), {} of {} cores",
        r.suite, r.entries, r.entries_for_me, r.threads, r.cores
    );
    println!("  entry size            {:>8} bytes", r.entry_bytes);
    println!(
        "  text per entry        {:>8} bytes   (first contact, with the sender's address: {})",
        r.part_capacity, r.part_capacity_intro
    );
    println!(
        "  overhead per message  {:>8} bytes   (first contact: {})",
        r.overhead_bytes, r.overhead_intro_bytes
    );
    println!(
        "  raw decapsulation     {:>8.0} /s      {:.1} µs each, 1 thread: the limit",
        r.raw_decaps_per_s, r.raw_decaps_us
    );
    println!(
        "  scan, 1 thread        {:>8.0} /s      ratio to raw {:.3}",
        r.scan_1thread_per_s, r.ratio_1thread
    );
    println!(
        "  scan, {} thread{}       {:>8.0} /s      speedup over 1 thread {:.3}",
        r.threads,
        if r.threads == 1 { " " } else { "s" },
        r.scan_all_per_s,
        r.speedup_all
    );
}

/// One pass of bare decapsulations over every entry's phrase.
fn raw_pass(me: &Identity, entries: &[Entry]) -> usize {
    entries
        .iter()
        .filter(|e| me.decapsulate_only(black_box(e.phrase())))
        .count()
}

/// Accumulated time over whole passes.
#[derive(Default)]
struct Meter {
    entries: u64,
    elapsed: Duration,
}

impl Meter {
    fn time<T>(&mut self, entries: usize, f: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let out = black_box(f());
        self.elapsed += started.elapsed();
        self.entries += entries as u64;
        out
    }

    fn rate(&self) -> f64 {
        rate(self.entries, self.elapsed)
    }
}

/// The scanning identity, the pool the noise goes to, and the scanner's one contact.
struct Fixture {
    me: Person,
    others: Vec<Person>,
    /// The key the scanner issued to its contact `others[0]`, who authenticates with it.
    issued: CheckKey,
    /// The key `others[0]` issued to the scanner.
    reply: CheckKey,
    /// The scanner's contact book: `others[0]`, who has proven the key issued to it.
    book: Book,
}

impl Fixture {
    fn generate(suite: Suite) -> anyhow::Result<Fixture> {
        let mut people = (0..=POOL)
            .into_par_iter()
            .map(|_| {
                Person::generate(suite, None, &mut SystemRng)
                    .with_context(|| format!("cannot generate a {suite} identity"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let me = people.remove(0);
        let issued = CheckKey::generate(&mut SystemRng);
        let book = Book::default().with(
            people[0].id.address().fingerprint(),
            vec![issued.clone()],
            true,
        );
        Ok(Fixture {
            me,
            others: people,
            issued,
            reply: CheckKey::generate(&mut SystemRng),
            book,
        })
    }

    fn contact(&self) -> &Person {
        &self.others[0]
    }

    fn stranger(&self) -> &Person {
        &self.others[1]
    }

    /// Seals one entry per planned target, on the current rayon pool.
    fn seal_all(&self, plan: &Plan) -> anyhow::Result<Vec<Entry>> {
        let sent_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        plan.targets
            .par_iter()
            .enumerate()
            .map(|(index, target)| {
                let text = text_of(index);
                let (from, to, check, intro) = match *target {
                    Target::Other(i) => (
                        &self.others[(i + 1) % POOL],
                        &self.others[i],
                        None,
                        (i % 2 == 0).then(|| &self.others[(i + 1) % POOL].card.checks()[0]),
                    ),
                    Target::FromContact => (self.contact(), &self.me, Some(&self.issued), None),
                    Target::FromStranger => (
                        self.stranger(),
                        &self.me,
                        None,
                        Some(&self.stranger().card.checks()[0]),
                    ),
                };
                let keys = PairKeys {
                    check,
                    reply: &self.reply,
                };
                let mut sealed = seal(&from.id, &to.card, keys, text.as_bytes(), intro, sent_at_ms)
                    .with_context(|| format!("cannot seal entry {index}"))?;
                match (sealed.pop(), sealed.is_empty()) {
                    (Some(entry), true) => Ok(entry),
                    _ => bail!("entry {index} did not seal to exactly one part"),
                }
            })
            .collect()
    }
}

fn text_of(index: usize) -> String {
    format!("deaddrop bench scan entry {index}")
}

/// Whom each entry is sealed to.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// `others[i]`, from `others[i + 1]`.
    Other(usize),
    /// The scanner, from its contact, authenticated.
    FromContact,
    /// The scanner, from a stranger who carries its address.
    FromStranger,
}

struct Plan {
    targets: Vec<Target>,
}

impl Plan {
    /// `n` entries; [`FOR_ME`] of them, spread evenly, for the scanner.
    fn new(n: usize) -> Plan {
        let mut targets: Vec<Target> = (0..n).map(|i| Target::Other(i % POOL)).collect();
        for k in 0..FOR_ME {
            let at = (2 * k + 1) * n / (2 * FOR_ME);
            targets[at] = if k % 2 == 0 {
                Target::FromContact
            } else {
                Target::FromStranger
            };
        }
        Plan { targets }
    }

    /// Checks that a scan found exactly the entries sealed to the scanner, each with the
    /// outcome its sender should produce.
    fn verify(&self, fixture: &Fixture, found: &Found) -> anyhow::Result<()> {
        let expected: Vec<usize> = (0..self.targets.len())
            .filter(|&i| !matches!(self.targets[i], Target::Other(_)))
            .collect();
        let got: Vec<usize> = found.iter().map(|(i, _)| *i).collect();
        ensure!(
            got == expected,
            "it found entries {got:?} where exactly {expected:?} were for it"
        );
        for (index, opened) in found {
            let text = text_of(*index);
            let ok = match (self.targets[*index], opened) {
                (Target::FromContact, Opened::Message(m)) => {
                    m.verified
                        && m.sender == fixture.contact().id.address().fingerprint()
                        && m.part.text.as_slice() == text.as_bytes()
                }
                (Target::FromStranger, Opened::Request(r)) => {
                    &r.sender == fixture.stranger().id.address()
                        && r.part.text.as_slice() == text.as_bytes()
                }
                _ => false,
            };
            ensure!(
                ok,
                "entry {index} ({:?}) opened as {}",
                self.targets[*index],
                outcome(opened)
            );
        }
        Ok(())
    }
}

/// A short name for an outcome that shows no message content.
fn outcome(opened: &Opened) -> String {
    match opened {
        Opened::NotForMe => "not for me".into(),
        Opened::Message(m) => format!("a message (verified: {})", m.verified),
        Opened::Request(_) => "a request".into(),
        Opened::Rejected(reason) => format!("rejected ({reason:?})"),
    }
}

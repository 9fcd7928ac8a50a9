//! `deaddrop-bench sync`, run as the real binary on a small ledger. Speed is not asserted: the
//! benchmark prints its own ratio. This checks that it runs, checks that every message for the
//! measured identity arrived (it fails otherwise), and reports every field.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use deaddrop_harness::cli::run_command;
use deaddrop_harness::Deaddrop;
use serde::Deserialize;

/// `deaddrop-bench` with a clean environment.
fn bare_command() -> std::process::Command {
    Deaddrop::new(env!("CARGO_BIN_EXE_deaddrop-bench")).command()
}

#[derive(Debug, Deserialize)]
struct SyncBenchReport {
    suite: String,
    entries: u64,
    entries_for_others: u64,
    entries_for_me: u64,
    threads: usize,
    sync_s: f64,
    sync_per_s: f64,
    scan_only_per_s: f64,
    ratio: f64,
    peak_rss_mib: f64,
    rss_before_sync_mib: f64,
    sync_rss_growth_mib: f64,
}

#[test]
fn bench_sync_reports_every_field() {
    let mut cmd = bare_command();
    cmd.args(["--json", "sync", "--entries", "2000"]);
    let out = run_command(cmd, None, Duration::from_secs(120)).ok();
    assert_eq!(
        out.stdout.lines().count(),
        1,
        "one JSON object: {}",
        out.stdout
    );
    let r: SyncBenchReport = out.json();
    assert_eq!(r.suite, "xwing");
    assert_eq!(r.entries_for_others, 2000);
    assert_eq!(r.entries_for_me, 100);
    assert_eq!(r.entries, 2100);
    assert!(r.threads >= 1);
    for v in [
        r.sync_s,
        r.sync_per_s,
        r.scan_only_per_s,
        r.ratio,
        r.peak_rss_mib,
    ] {
        assert!(v.is_finite() && v > 0.0, "{r:?}");
    }
    assert!(
        r.rss_before_sync_mib > 0.0 && r.sync_rss_growth_mib >= 0.0,
        "{r:?}"
    );
    assert!(r.peak_rss_mib >= r.rss_before_sync_mib, "{r:?}");
    let ratio = r.sync_per_s / r.scan_only_per_s;
    assert!((ratio - r.ratio).abs() < 0.01, "{r:?}");
}

#[test]
fn bench_sync_human_report_names_the_ratio() {
    let mut cmd = bare_command();
    cmd.args(["sync", "--entries", "200", "--for-me", "10"]);
    let out = run_command(cmd, None, Duration::from_secs(120)).ok();
    for needle in ["sync from id 0", "scan only", "ratio", "peak RSS"] {
        assert!(out.stdout.contains(needle), "{needle}: {}", out.stdout);
    }
}

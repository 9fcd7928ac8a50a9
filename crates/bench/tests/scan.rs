//! `deaddrop-bench scan`, run as the real binary. Speed is not asserted here: the benchmark
//! itself prints its ratios; these tests check that it runs, checks its own result and reports
//! every field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde::Deserialize;
use std::process::{Command, Output};

/// Runs `deaddrop-bench args` to its end, with the test runner's environment.
fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deaddrop-bench"))
        .args(args)
        .output()
        .expect("the deaddrop-bench binary runs")
}

/// The fields the issue names, and those the bench adds; a missing one fails to parse.
#[derive(Debug, Deserialize)]
struct ScanReport {
    suite: String,
    entry_bytes: usize,
    part_capacity: usize,
    overhead_bytes: usize,
    entries: usize,
    threads: usize,
    cores: usize,
    raw_decaps_per_s: f64,
    scan_1thread_per_s: f64,
    scan_all_per_s: f64,
    ratio_1thread: f64,
    speedup_all: f64,
}

#[test]
fn json_scan_report_has_every_field_with_sane_values() {
    let out = bench(&["--json", "scan", "--suite", "xwing", "--entries", "300"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stdout.lines().count(), 1, "one JSON object: {stdout}");
    let r: ScanReport = serde_json::from_str(&stdout).unwrap();

    assert_eq!(r.suite, "xwing");
    assert_eq!(r.entries, 300);
    assert_eq!(r.entry_bytes, 4096);
    assert!(
        r.part_capacity > 0 && r.part_capacity < r.entry_bytes,
        "{r:?}"
    );
    assert_eq!(r.overhead_bytes, r.entry_bytes - r.part_capacity);
    assert!(r.cores >= 1 && r.threads == r.cores, "{r:?}");
    for rate in [r.raw_decaps_per_s, r.scan_1thread_per_s, r.scan_all_per_s] {
        assert!(rate.is_finite() && rate > 0.0, "{r:?}");
    }
    assert!(
        r.ratio_1thread.is_finite() && r.ratio_1thread > 0.0,
        "{r:?}"
    );
    assert!(r.speedup_all.is_finite() && r.speedup_all > 0.0, "{r:?}");
}

#[test]
fn human_scan_report_names_sizes_and_rates() {
    let out = bench(&["scan", "--entries", "50", "--threads", "2"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    for needle in [
        "suite xwing",
        "entry size",
        "overhead per message",
        "raw decapsulation",
        "scan, 1 thread",
        "scan, 2 threads",
    ] {
        assert!(
            stdout.contains(needle),
            "{needle:?} missing from:\n{stdout}"
        );
    }
}

#[test]
fn unknown_suite_is_refused_with_the_known_ones() {
    let out = bench(&["scan", "--suite", "rot13"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("invalid value 'rot13' for '--suite"),
        "{stderr}"
    );
    assert!(
        stderr.contains("xwing") && stderr.contains("rsa-oaep"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn too_few_entries_are_refused() {
    let out = bench(&["--json", "scan", "--entries", "3"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("--entries"), "{stderr}");
}

//! `deaddrop-bench ledger`, run as the real binary with a small load. Speed is not asserted:
//! the benchmark prints its figures next to their goals; this checks that it runs end to end
//! and reports every field with a sane value.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde::Deserialize;

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_deaddrop-bench");

/// The fields the issue names, and some the bench adds; a missing one fails to parse.
#[derive(Debug, Deserialize)]
struct LedgerReport {
    store: String,
    suite: String,
    entry_bytes: usize,
    appends: u64,
    appends_per_s: f64,
    append_clients: u32,
    append_p50_ms: f64,
    append_p99_ms: f64,
    read_clients: u32,
    read_entries: u64,
    read_entries_per_s: f64,
    read_mb_per_s: f64,
    push_p50_ms: f64,
    push_p99_ms: f64,
    push_appends: u64,
    subscribers: u32,
    delivery_per_s: f64,
    push_steps: Vec<PushStep>,
    jetstream_appends_per_s: Option<f64>,
    jetstream_ratio: Option<f64>,
    jetstream_skipped: Option<String>,
    jetstream_front_end_appends_per_s: Option<f64>,
    jetstream_front_end_read_entries_per_s: Option<f64>,
    jetstream_front_end_skipped: Option<String>,
    mirror_catchup_s: Option<f64>,
    mirror_catchup_entries: Option<u64>,
    mirror_catchup_per_s: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct PushStep {
    rate: f64,
    appends: u64,
    sustained: bool,
}

fn positive(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

#[test]
fn json_ledger_report_has_every_field_with_sane_values() {
    let out = Command::new(BIN)
        .args([
            "--json",
            "ledger",
            "--seconds",
            "1",
            "--clients",
            "4",
            "--readers",
            "1",
            "--subscribers",
            "5",
            "--rate",
            "20",
            "--mirror-entries",
            "300",
        ])
        .output()
        .expect("the deaddrop-bench binary runs");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stdout.lines().count(), 1, "one JSON object: {stdout}");
    let r: LedgerReport = serde_json::from_str(&stdout).unwrap();

    assert_eq!((r.store.as_str(), r.suite.as_str()), ("embedded", "xwing"));
    assert_eq!(r.entry_bytes, 4096);
    assert_eq!((r.append_clients, r.read_clients, r.subscribers), (4, 1, 5));
    assert!(r.appends > 0 && positive(r.appends_per_s), "{r:?}");
    assert!(r.append_p50_ms <= r.append_p99_ms, "{r:?}");
    // Every reader synced everything appended: the timed appends and one warm-up per client.
    assert_eq!(r.read_entries, r.appends + 4, "{r:?}");
    assert!(
        positive(r.read_entries_per_s) && positive(r.read_mb_per_s),
        "{r:?}"
    );
    let mb_per_entry = r.read_mb_per_s / r.read_entries_per_s;
    assert!(
        mb_per_entry > 0.004 && mb_per_entry < 0.0042,
        "MB/s and entries/s agree on 4096-byte entries plus framing: {r:?}"
    );
    assert_eq!(r.push_appends, 20, "20 appends/s for 1 s");
    assert!(
        positive(r.push_p50_ms) && r.push_p50_ms <= r.push_p99_ms,
        "{r:?}"
    );
    let first = &r.push_steps[0];
    assert_eq!((first.rate, first.appends), (20.0, 20));
    assert!(r
        .push_steps
        .windows(2)
        .all(|w| w[1].rate == 2.0 * w[0].rate));
    if r.push_steps.iter().any(|s| s.sustained) {
        assert!(positive(r.delivery_per_s), "{r:?}");
    }
    match (r.jetstream_appends_per_s, r.jetstream_ratio) {
        (Some(js), Some(ratio)) => assert!(positive(js) && positive(ratio), "{r:?}"),
        (None, None) => assert!(r.jetstream_skipped.is_some(), "{r:?}"),
        _ => panic!("JetStream figures come together: {r:?}"),
    }
    match (
        r.jetstream_front_end_appends_per_s,
        r.jetstream_front_end_read_entries_per_s,
    ) {
        (Some(appends), Some(reads)) => assert!(positive(appends) && positive(reads), "{r:?}"),
        (None, None) => assert!(r.jetstream_front_end_skipped.is_some(), "{r:?}"),
        _ => panic!("the front end on JetStream's figures come together: {r:?}"),
    }
    // The central ledger holds the bench's own entries, topped up to 300 if they are fewer.
    let entries = r.mirror_catchup_entries.expect("the mirror caught up");
    assert!(entries >= 300, "{r:?}");
    assert!(
        positive(r.mirror_catchup_s.unwrap()) && positive(r.mirror_catchup_per_s.unwrap()),
        "{r:?}"
    );
}

#[test]
fn mirror_catchup_can_be_skipped() {
    let out = Command::new(BIN)
        .env("PATH", "/nonexistent")
        .args([
            "--json",
            "ledger",
            "--store",
            "memory",
            "--seconds",
            "1",
            "--clients",
            "2",
            "--readers",
            "1",
            "--subscribers",
            "2",
            "--rate",
            "10",
            "--mirror-entries",
            "0",
        ])
        .output()
        .expect("the deaddrop-bench binary runs");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    let r: LedgerReport = serde_json::from_str(&stdout).unwrap();
    assert_eq!(r.store, "memory");
    assert!(r.mirror_catchup_s.is_none() && r.mirror_catchup_entries.is_none());
    assert!(r.jetstream_front_end_appends_per_s.is_none(), "{r:?}");
    assert!(r.jetstream_front_end_skipped.is_some(), "{r:?}");
}

#[test]
fn unknown_store_is_refused_with_the_known_ones() {
    let out = Command::new(BIN)
        .args(["ledger", "--store", "floppy"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("embedded") && stderr.contains("memory") && stderr.contains("nats://"),
        "{stderr}"
    );
}

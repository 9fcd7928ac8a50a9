//! `deaddrop demo`: with nothing set up (no home, no ledger, no passphrase), one command shows
//! two people talking both ways and a stranger's first message being accepted and answered, and
//! leaves nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;
use std::time::Duration;

use deaddrop_harness::cli::run_command;

const BIN: &str = env!("CARGO_BIN_EXE_deaddrop");

/// The demo's command in an empty world: a fresh HOME and TMPDIR, no deaddrop variables.
fn demo(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("HOME", dir.join("home"))
        .env("TMPDIR", dir.join("tmp"))
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    std::fs::create_dir_all(dir.join("home")).unwrap();
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    cmd
}

fn outputs_of(steps: &[serde_json::Value], who: &str, command: &str) -> Vec<String> {
    steps
        .iter()
        .filter(|s| s["who"] == who && s["command"] == command)
        .flat_map(|s| s["output"].as_array().cloned().unwrap_or_default())
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_demo_shows_both_directions_and_an_accepted_first_contact() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_command(
        demo(dir.path(), &["demo", "--json"]),
        None,
        Duration::from_secs(120),
    )
    .ok();
    let doc: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let steps = doc["steps"].as_array().unwrap().clone();
    assert!(doc["ledger"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    // bob reads alice's message; alice reads bob's answer, confirmed by his reply.
    let bob_reads = outputs_of(&steps, "bob", "deaddrop read alice");
    assert!(
        bob_reads
            .iter()
            .any(|l| l.contains("alice") && l.contains("Lunch at noon")),
        "{bob_reads:?}"
    );
    let alice_reads = outputs_of(&steps, "alice", "deaddrop read bob");
    assert!(
        alice_reads
            .iter()
            .any(|l| l.starts_with("bob: ") && l.contains("Noon works")),
        "bob's answer, confirmed: {alice_reads:?}"
    );
    // carol's first message waits as a request, is accepted, and alice's answer reaches her.
    let requests = outputs_of(&steps, "alice", "deaddrop requests");
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert!(
        requests[0].contains("Bob gave me your card"),
        "{requests:?}"
    );
    let carol_reads = outputs_of(&steps, "carol", "deaddrop read alice");
    assert!(
        carol_reads
            .iter()
            .any(|l| l.contains("alice") && l.contains("Welcome, Carol!")),
        "{carol_reads:?}"
    );
    assert_eq!(
        doc["entries_on_ledger"], 4,
        "three messages and one request"
    );
    // Nothing is left behind: no home in HOME, no temporary directory.
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("home")).unwrap().count(),
        0
    );
}

#[test]
fn the_demo_prints_each_command_and_what_each_person_sees() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_command(demo(dir.path(), &["demo"]), None, Duration::from_secs(120)).ok();
    for expected in [
        "alice $ deaddrop send bob \"Hi Bob! Lunch at noon?\"",
        "  bob $ deaddrop sync",
        "alice $ deaddrop requests",
        "carol $ deaddrop read alice",
        "Welcome, Carol!",
    ] {
        assert!(
            out.stdout.contains(expected),
            "missing {expected:?} in:\n{}",
            out.stdout
        );
    }
}

#[test]
fn the_demo_refuses_an_unknown_suite_before_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_command(
        demo(dir.path(), &["--json", "demo", "--suite", "rot13"]),
        None,
        Duration::from_secs(30),
    );
    let e = out.json_error();
    assert!(e.error.contains("--suite"), "{e:?}");
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
}

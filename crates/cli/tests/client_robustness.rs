//! What the client does when things go wrong: a sync killed with `kill -9` part-way, bad input
//! of every kind (each a non-zero exit and `{"error", "hint"}` on stderr with `--json`), and
//! what its files reveal.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use deaddrop_client::db::Db;
use deaddrop_client::keystore::{self, Passphrase};
use deaddrop_client::output::{ContactJson, WatchEventJson};
use deaddrop_harness::api::random_entries;
use deaddrop_harness::cli::{append_entries, run_command, Running, COMMAND_TIMEOUT, PASSPHRASE};
use deaddrop_harness::{closed_port, wait_until_blocking, Deaddrop, Person, Serve};
use deaddrop_proto::Suite;

const DEADDROP: Deaddrop = Deaddrop::new(env!("CARGO_BIN_EXE_deaddrop"));

/// `deaddrop serve ARGS` on a loopback port.
fn ledger(args: &[&str]) -> Serve {
    DEADDROP.serve().args(args).start_blocking()
}

/// Messages to B among the noise.
const MESSAGES: usize = 20;
/// Entries for others between two messages.
const NOISE_BETWEEN: usize = 150;

#[test]
fn sync_killed_midway_loses_nothing_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Small pages make many commit points, so kills land between and during them.
    let config = dir.path().join("ledger.toml");
    std::fs::write(&config, "max_page = 50\n").unwrap();
    let ledger = ledger(&[
        "--pow-bits",
        "0",
        "--store",
        "memory",
        "--config",
        config.to_str().unwrap(),
    ]);
    let url = ledger.url();
    let (a, b) = DEADDROP.pair(&url, "xwing");
    let entry_len = Suite::XWing.layout().entry_len;
    let mut sent = Vec::new();
    for i in 0..MESSAGES {
        append_entries(&url, random_entries(NOISE_BETWEEN, entry_len), 16);
        let text = format!("message {i:02} among the noise");
        a.send("b", &text);
        sent.push(text);
    }
    append_entries(&url, random_entries(NOISE_BETWEEN, entry_len), 16);
    let newest = (MESSAGES * (NOISE_BETWEEN + 1) + NOISE_BETWEEN) as u64;

    // The test watches B's sync position in B's own database while `deaddrop sync` runs: kept
    // under the ledger's id.
    let id = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(deaddrop_client::connect(&url, None).unwrap().info())
        .unwrap()
        .ledger_id;
    let key = deaddrop_client::db::position_key(&url, id.as_ref());
    let db = Db::open(&b.home, &mut || Ok(Passphrase::new(PASSPHRASE.into()))).unwrap();
    let position = || db.last_id(&key).unwrap();
    let mut midway_kills = 0;
    // Kill moments: at once (likely before any page), at the first committed page, after a
    // few hundred more entries, and at the first page again.
    let plans: [Option<u64>; 4] = [None, Some(1), Some(400), Some(1)];
    for plan in plans {
        let before = position();
        let mut cmd = b.command(&["sync"]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut sync = Running {
            child: cmd.spawn().unwrap(),
        };
        if let Some(progress) = plan {
            wait_until_blocking("the sync made progress or ended", COMMAND_TIMEOUT, || {
                position() >= before + progress || !sync.running()
            });
        }
        sync.kill();
        let at = position();
        eprintln!("kill planned at +{plan:?}: position {before} -> {at} of {newest}");
        if at > before && at < newest {
            midway_kills += 1;
        }
    }
    assert!(
        midway_kills >= 1,
        "no kill landed part-way; the test did not test anything"
    );
    // Then sync until it completes.
    let s = b.sync();
    assert_eq!(s.gap, None);
    assert_eq!(position(), newest);

    let read = b.read("a");
    let mut count: HashMap<&str, usize> = HashMap::new();
    for m in &read {
        assert_eq!(m.direction, deaddrop_client::Direction::In, "{m:?}");
        *count.entry(m.text.as_str()).or_default() += 1;
    }
    for text in &sent {
        assert_eq!(count.get(text.as_str()), Some(&1), "{text}: {read:?}");
    }
    assert_eq!(read.len(), MESSAGES, "{read:?}");
}

/// Someone with an identity on a ledger that need not exist.
fn someone(ledger: &str) -> Person {
    let p = DEADDROP.person("someone", ledger);
    p.init("xwing");
    p
}

#[test]
fn unknown_contact_is_an_error_with_a_hint() {
    let p = someone(&format!("http://127.0.0.1:{}", closed_port()));
    let e = p.run(&["--json", "send", "nobody", "hi"]).json_error();
    assert!(e.error.contains("nobody"), "{e:?}");
    assert!(e.hint.contains("contact"), "{e:?}");
    let e = p.run(&["--json", "read", "nobody"]).json_error();
    assert!(e.error.contains("nobody"), "{e:?}");
    // Without --json: the same, for people.
    let out = p.run(&["send", "nobody", "hi"]);
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("error:") && out.stderr.contains("hint:"),
        "{}",
        out.stderr
    );
}

#[test]
fn damaged_card_is_refused() {
    let p = someone("http://127.0.0.1:1");
    let other = someone("http://127.0.0.1:1");
    let card = other.card();
    // Flip one character in the middle of the card.
    let mut chars: Vec<char> = card.chars().collect();
    let at = chars.len() / 2;
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    let damaged: String = chars.into_iter().collect();
    let e = p
        .run(&["--json", "contact", "add", &damaged, "--name", "x"])
        .json_error();
    assert!(e.error.contains("card"), "{e:?}");
    let e = p
        .run(&["--json", "contact", "add", "not a card", "--name", "x"])
        .json_error();
    assert!(e.error.contains("card"), "{e:?}");
    // Nothing was added.
    let list: Vec<ContactJson> = p.json(&["contact", "list"]);
    assert!(list.is_empty(), "{list:?}");
}

#[test]
fn unreachable_ledger_is_named() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let p = someone(&url);
    let e = p.run(&["--json", "sync"]).json_error();
    assert!(e.error.contains(&url), "{e:?}");
    assert!(e.error.contains("not reachable"), "{e:?}");
    assert!(e.hint.contains("deaddrop serve"), "{e:?}");
    // `send` queues the message at once (tests/client_home.rs), and `watch` retries for ever,
    // saying why.
    let mut w = p.watch();
    let ev = w.wait_for("a reconnect", Duration::from_secs(30), |e| {
        matches!(e, WatchEventJson::Reconnecting { .. })
    });
    let WatchEventJson::Reconnecting { why, .. } = ev else {
        unreachable!()
    };
    assert!(why.contains(&url) && why.contains("not reachable"), "{why}");
}

#[test]
fn wrong_passphrase_is_refused() {
    let ledger = ledger(&["--pow-bits", "0", "--store", "memory"]);
    let mut p = someone(&ledger.url());
    p.passphrase = Some("not the passphrase".into());
    let e = p.run(&["--json", "sync"]).json_error();
    assert!(e.error.contains("passphrase"), "{e:?}");
    assert!(e.hint.contains("DEADDROP_PASSPHRASE"), "{e:?}");
    // No passphrase at all and no terminal to ask on.
    p.passphrase = None;
    let e = p.run(&["--json", "sync"]).json_error();
    assert!(e.error.contains("passphrase"), "{e:?}");
    p.passphrase = Some(PASSPHRASE.into());
    p.sync();
}

#[test]
fn ledger_of_another_suite_is_refused() {
    let ledger = ledger(&[
        "--pow-bits",
        "0",
        "--store",
        "memory",
        "--suite",
        "rsa-oaep",
    ]);
    let p = someone(&ledger.url());
    let e = p.run(&["--json", "sync"]).json_error();
    assert!(
        e.error.contains("rsa-oaep") && e.error.contains("xwing"),
        "{e:?}"
    );
    assert!(e.error.contains(&ledger.url()), "{e:?}");
    assert!(e.hint.contains("suite"), "{e:?}");
}

#[test]
fn init_twice_refuses_and_keeps_the_first_identity() {
    let p = DEADDROP.person("once", "http://127.0.0.1:1");
    let first = p.init("xwing");
    let e = p.run(&["--json", "init", "--name", "twice"]).json_error();
    assert!(e.error.contains("already exists"), "{e:?}");
    assert!(e.hint.contains("--home"), "{e:?}");
    assert_eq!(p.card(), first.card);
}

#[test]
fn init_without_passphrase_or_terminal_refuses_and_says_how() {
    let mut p = DEADDROP.person("nopass", "http://127.0.0.1:1");
    p.passphrase = None;
    // stdin is /dev/null: no terminal to ask on.
    let e = p.run(&["--json", "init", "--name", "x"]).json_error();
    assert!(e.error.contains("passphrase"), "{e:?}");
    assert!(
        e.hint.contains("--passphrase-file") && e.hint.contains("--no-passphrase"),
        "{e:?}"
    );
    // Nothing was created that would make the next init fail.
    p.passphrase = Some(PASSPHRASE.into());
    p.init("xwing");
}

/// Hex and base64 (standard and URL-safe, any alignment) forms of `bytes`, as a careless
/// printer might render them; each long enough that a match is no coincidence.
fn renderings(bytes: &[u8]) -> Vec<String> {
    const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b64 = |data: &[u8], url: bool| -> String {
        let mut out = String::new();
        for chunk in data.chunks(3) {
            let mut n = [0u8; 3];
            n[..chunk.len()].copy_from_slice(chunk);
            let v = u32::from(n[0]) << 16 | u32::from(n[1]) << 8 | u32::from(n[2]);
            for i in 0..=chunk.len() {
                let c = STD[((v >> (18 - 6 * i)) & 63) as usize];
                out.push(match (url, c) {
                    (true, b'+') => '-',
                    (true, b'/') => '_',
                    _ => c as char,
                });
            }
        }
        out
    };
    let mut out = vec![bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()];
    for skip in 0..3 {
        let window = &bytes[skip..(skip + 48).min(bytes.len())];
        // Drop the last characters, which depend on what follows the window.
        for url in [false, true] {
            let s = b64(window, url);
            out.push(s[..s.len() - 4].to_string());
        }
    }
    // Hex of a window too, in case only part of it is printed.
    out.push(bytes[..32].iter().map(|b| format!("{b:02x}")).collect());
    out
}

#[test]
fn files_are_private_and_hold_no_passphrase_and_json_no_key() {
    let ledger = ledger(&["--pow-bits", "0", "--store", "memory"]);
    let (a, b) = DEADDROP.pair(&ledger.url(), "xwing");
    let mut outputs = Vec::new();
    let mut run = |p: &Person, args: &[&str]| {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = p.run(&all).ok();
        outputs.push(out.stdout.clone());
        outputs.push(out.stderr);
    };
    run(&a, &["card"]);
    run(&a, &["send", "b", "hello"]);
    run(&b, &["sync"]);
    run(&b, &["read", "a"]);
    run(&b, &["send", "a", "hi"]);
    run(&a, &["sync"]);
    run(&a, &["read", "b"]);
    run(&a, &["inbox"]);
    run(&a, &["requests"]);
    run(&a, &["contact", "list"]);
    run(&a, &["contact", "show", "b"]);
    run(&a, &["check-string", "rotate"]);
    // init's output too, from a fresh home.
    let c = DEADDROP.person("carol", &ledger.url());
    let init = c.run(&["--json", "init", "--name", "carol"]).ok();
    outputs.push(init.stdout);

    for p in [&a, &c] {
        let home = std::fs::metadata(&p.home).unwrap().permissions().mode() & 0o777;
        assert_eq!(home, 0o700, "{}", p.home.display());
        for f in std::fs::read_dir(&p.home).unwrap() {
            let f = f.unwrap();
            let mode = f.metadata().unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", f.path().display());
            let bytes = std::fs::read(f.path()).unwrap();
            assert!(
                !bytes
                    .windows(PASSPHRASE.len())
                    .any(|w| w == PASSPHRASE.as_bytes()),
                "{} holds the passphrase",
                f.path().display()
            );
        }
        assert!(p.home.join("deaddrop.sqlite3").exists());

        let db = Db::open(&p.home, &mut || Ok(Passphrase::new(PASSPHRASE.into()))).unwrap();
        // The key is stored inside the encrypted database.
        let sealed = db.identity().unwrap().sealed_key;
        let secret = keystore::open(&sealed, None).unwrap().export_secret();
        // The key is encrypted at rest: its plain bytes are in no file.
        let plain = &secret[..64.min(secret.len())];
        for f in std::fs::read_dir(&p.home).unwrap() {
            let bytes = std::fs::read(f.unwrap().path()).unwrap();
            assert!(!bytes.windows(plain.len()).any(|w| w == plain));
        }
        for needle in renderings(&sealed).iter().chain(renderings(&secret).iter()) {
            for out in &outputs {
                assert!(!out.contains(needle.as_str()), "an output shows the key");
            }
        }
    }
}

#[test]
fn help_and_bad_flags_fail_cleanly() {
    // Not part of the JSON contract (clap prints usage), but never a panic.
    let out = run_command(
        {
            let mut c = DEADDROP.command();
            c.args(["--json", "send"]);
            c
        },
        None,
        Duration::from_secs(30),
    );
    assert!(!out.status.success());
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

/// `deaddrop bench ARGS` runs the `deaddrop-bench` beside it with the same arguments (and
/// `--json` passed on) and exits as it does; without one it says how to build it.
#[test]
fn bench_forwards_to_the_bench_binary_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("deaddrop");
    std::fs::copy(DEADDROP.path(), &copy).unwrap();
    let alone = Deaddrop::new(Box::leak(copy.display().to_string().into_boxed_str()));

    let mut cmd = alone.command();
    cmd.env("PATH", dir.path())
        .args(["--json", "bench", "scan"]);
    let out = run_command(cmd, None, COMMAND_TIMEOUT);
    assert!(!out.status.success());
    let err = out.json_error();
    assert!(
        err.error.contains("deaddrop-bench")
            && err
                .error
                .contains("cargo build --release -p deaddrop-bench"),
        "{err:?}"
    );

    // A stand-in that records its arguments and fails with its own code.
    let seen = dir.path().join("args");
    let script = dir.path().join("deaddrop-bench");
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho \"$@\" > '{}'\nexit 3\n", seen.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = alone.command();
    cmd.args([
        "--json",
        "bench",
        "scan",
        "--entries",
        "5",
        "--suite",
        "xwing",
    ]);
    let out = run_command(cmd, None, COMMAND_TIMEOUT);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap().trim(),
        "--json scan --entries 5 --suite xwing"
    );
}

/// A passphrase shorter than 8 characters is refused at `init` (whoever copies the key file can
/// guess offline) unless `--weak-passphrase` says it is meant.
#[test]
fn a_short_passphrase_needs_weak_passphrase() {
    let mut p = Person::new(DEADDROP, "p", "http://127.0.0.1:9");
    p.passphrase = Some("short".into());
    let refused = p.run(&["init", "--name", "p"]);
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        refused.stderr.contains("fewer than 8 characters")
            && refused.stderr.contains("--weak-passphrase"),
        "{}",
        refused.stderr
    );
    p.run(&["init", "--name", "p", "--weak-passphrase"]).ok();
    p.run(&["card"]).ok();
}

/// Deleted means deleted: once the ledger acknowledged a sent entry, neither its bytes nor its
/// ledger id stay in the home (they would prove which public entries the device wrote), and a
/// removed contact's conversation leaves no copy in the database or its write-ahead log.
#[test]
fn sent_entries_and_removed_conversations_leave_the_disk() {
    let ledger = ledger(&["--pow-bits", "0", "--store", "memory"]);
    let url = ledger.url();
    let (a, b) = DEADDROP.pair(&url, "xwing");
    let text = "a secret text that must not outlive its conversation";
    let sent = a.send("b", text);
    b.sync();
    // The database is encrypted: look at what its pages hold once decrypted, free pages and
    // the write-ahead log included (what someone with the passphrase could dig out).
    let home_bytes = |p: &Person| -> Vec<u8> { decrypted_pages(&p.home) };
    let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    // The entry as the ledger serves it: a slice of its ciphertext must not be in A's home.
    let id = sent.ids[0];
    let page = deaddrop_harness::Api::new(&url);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let rec = rt.block_on(page.read(id - 1, 1)).records.remove(0);
    assert_eq!(rec.id, id);
    let slice = &rec.entry[100..132];
    assert!(
        !contains(&home_bytes(&a), slice),
        "A's home keeps the sent entry"
    );

    // B removes A: the text leaves B's files.
    assert!(
        contains(&home_bytes(&b), b"a secret text"),
        "the test looks at the right files"
    );
    b.run(&["contact", "remove", "a"]).ok();
    assert!(
        !contains(&home_bytes(&b), b"a secret text"),
        "a removed conversation stays on disk"
    );
}

/// Every page of the home's database and of its write-ahead log, decrypted with the key its key
/// file holds (SQLCipher 4: 4,096-byte pages, AES-256-CBC over all but the last 80 bytes, the
/// IV in the 16 bytes after them, page 1 starting with the 16-byte salt in the clear).
fn decrypted_pages(home: &std::path::Path) -> Vec<u8> {
    use aws_lc_rs::cipher::{DecryptingKey, DecryptionContext, UnboundCipherKey, AES_256};
    let kf = deaddrop_client::home::KeyFile::read(home).unwrap().unwrap();
    let key = kf
        .keys(Some(&Passphrase::new(PASSPHRASE.into())))
        .unwrap()
        .remove(0);
    let page = |bytes: &[u8], first: bool| -> Vec<u8> {
        let cipher =
            DecryptingKey::cbc(UnboundCipherKey::new(&AES_256, key.as_bytes()).unwrap()).unwrap();
        let iv: [u8; 16] = bytes[4016..4032].try_into().unwrap();
        let mut data = bytes[if first { 16 } else { 0 }..4016].to_vec();
        cipher
            .decrypt(&mut data, DecryptionContext::Iv128(iv.into()))
            .unwrap();
        data
    };
    let mut out = Vec::new();
    let db = std::fs::read(home.join("deaddrop.sqlite3")).unwrap();
    assert_eq!(db.len() % 4096, 0);
    for (i, p) in db.chunks(4096).enumerate() {
        out.extend(page(p, i == 0));
    }
    if let Ok(wal) = std::fs::read(home.join("deaddrop.sqlite3-wal")) {
        for frame in wal.get(32..).unwrap_or_default().chunks(24 + 4096) {
            if frame.len() == 24 + 4096 {
                let pgno = u32::from_be_bytes(frame[..4].try_into().unwrap());
                out.extend(page(&frame[24..], pgno == 1));
            }
        }
    }
    out
}

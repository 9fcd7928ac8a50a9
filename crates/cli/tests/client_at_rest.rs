//! A home at rest: a copied home shows nothing without the passphrase (the database, its
//! write-ahead log and the key file while `watch` runs and after), a damaged key file is told
//! from a wrong passphrase, `passphrase change` re-keys, the passphrase comes from a file, a
//! descriptor or the kernel keyring (`unlock`), a home of the previous version is encrypted when
//! first opened, and a process holding the home is named.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::time::{Duration, Instant};

use deaddrop_client::output::WatchEventJson;
use deaddrop_harness::cli::{COMMAND_TIMEOUT, PASSPHRASE};
use deaddrop_harness::{Deaddrop, Serve};

const DEADDROP: Deaddrop = Deaddrop::new(env!("CARGO_BIN_EXE_deaddrop"));

fn ledger() -> Serve {
    DEADDROP
        .serve()
        .args(&["--pow-bits", "0", "--store", "memory"])
        .start_blocking()
}

/// Every file under `dir` that holds `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for f in std::fs::read_dir(dir).unwrap() {
        let path = f.unwrap().path();
        if path.is_dir() {
            hits.extend(files_holding(&path, needle));
        } else if let Ok(bytes) = std::fs::read(&path) {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(path.display().to_string());
            }
        }
    }
    hits
}

fn write_secret(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{text}\n")).unwrap();
    p
}

#[test]
fn a_copied_home_shows_nothing_without_the_passphrase() {
    let ledger = ledger();
    let url = ledger.url();
    let a = DEADDROP.person("alice", &url);
    let b = DEADDROP.person("bob", &url);
    a.init("xwing");
    b.init("xwing");
    let (b_card, a_card) = (b.card(), a.card());
    a.add(&b_card, "bob-contact-name-4711");
    b.add(&a_card, "alice-contact-name-4711");
    let first = "meet at the old mill at noon 83920";
    a.send("bob-contact-name-4711", first);
    b.sync();
    assert!(b
        .read("alice-contact-name-4711")
        .iter()
        .any(|m| m.text == first));

    // While `watch` runs the write-ahead log holds the newest pages: it is encrypted too.
    let mut watch = b.watch();
    watch.wait_for("listening", COMMAND_TIMEOUT, |e| {
        matches!(e, WatchEventJson::Listening { .. })
    });
    let second = "bring the second key 55107";
    a.send("bob-contact-name-4711", second);
    watch.wait_for(
        "the second message",
        COMMAND_TIMEOUT,
        |e| matches!(e, WatchEventJson::Message { text, .. } if text == second),
    );
    let secrets: [&[u8]; 6] = [
        first.as_bytes(),
        second.as_bytes(),
        b"bob-contact-name-4711",
        b"alice-contact-name-4711",
        // The cards hold the check strings and the addresses.
        a_card.as_bytes(),
        b_card.as_bytes(),
    ];
    let check = |when: &str| {
        for home in [&a.home, &b.home] {
            for s in secrets {
                let hits = files_holding(home, s);
                assert!(
                    hits.is_empty(),
                    "{when}: {:?} readable in {hits:?}",
                    String::from_utf8_lossy(s)
                );
            }
            let head = std::fs::read(home.join("deaddrop.sqlite3")).unwrap();
            assert!(
                !head.starts_with(b"SQLite format 3"),
                "{when}: a plain SQLite file"
            );
        }
    };
    check("while watch runs");
    drop(watch);
    check("after");
    // And the copy opens with the passphrase, nothing else.
    let copy = DEADDROP.person("copy", &url);
    copy_dir(&b.home, &copy.home);
    assert!(copy
        .read("alice-contact-name-4711")
        .iter()
        .any(|m| m.text == second));
    let mut thief = DEADDROP.person("thief", &url);
    copy_dir(&b.home, &thief.home);
    thief.passphrase = None;
    let e = thief
        .run(&["--json", "read", "alice-contact-name-4711"])
        .json_error();
    assert!(e.error.contains("no passphrase"), "{e:?}");
    thief.passphrase = Some("a wrong guess at it".into());
    let e = thief.run(&["--json", "inbox"]).json_error();
    assert_eq!(e.error, "wrong passphrase");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in std::fs::read_dir(from).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
    }
}

#[test]
fn a_damaged_key_file_is_not_a_wrong_passphrase() {
    let ledger = ledger();
    let a = DEADDROP.person("alice", &ledger.url());
    a.init("xwing");
    let key = a.home.join("deaddrop.key");
    let good = std::fs::read(&key).unwrap();
    let mut wrong = DEADDROP.person("alice", &ledger.url());
    wrong.home = a.home.clone();
    wrong.passphrase = Some("not the passphrase".into());
    assert_eq!(
        wrong.run(&["--json", "card"]).json_error().error,
        "wrong passphrase"
    );

    for (what, bytes) in [
        ("a flipped byte", {
            let mut b = good.clone();
            b[good.len() / 2] ^= 1;
            b
        }),
        ("a cut", good[..good.len() - 7].to_vec()),
        ("nothing", Vec::new()),
    ] {
        std::fs::write(&key, &bytes).unwrap();
        for p in [&a, &wrong] {
            let e = p.run(&["--json", "card"]).json_error();
            assert!(
                e.error.contains("key file is damaged") && !e.error.contains("wrong passphrase"),
                "{what}: {e:?}"
            );
            assert!(e.hint.contains("backup"), "{e:?}");
        }
    }
    std::fs::remove_file(&key).unwrap();
    let e = a.run(&["--json", "card"]).json_error();
    assert!(e.error.contains("missing"), "{e:?}");
    std::fs::write(&key, &good).unwrap();
    a.run(&["card"]).ok();
    // init never overwrites it.
    let e = a.run(&["--json", "init"]).json_error();
    assert!(e.error.contains("already exists"), "{e:?}");
}

#[test]
fn passphrase_change_rekeys_the_database() {
    let ledger = ledger();
    let (a, mut b) = DEADDROP.pair(&ledger.url(), "xwing");
    a.send("b", "before the change");
    b.sync();
    let dir = tempfile::tempdir().unwrap();
    let old_key_file = std::fs::read(b.home.join("deaddrop.key")).unwrap();
    let new = write_secret(dir.path(), "new", "a whole new passphrase here");
    let short = write_secret(dir.path(), "short", "short");
    let new_arg = new.to_str().unwrap();

    // A new passphrase under 8 characters is refused as at init.
    let out = b.run(&[
        "passphrase",
        "change",
        "--new-passphrase-file",
        short.to_str().unwrap(),
    ]);
    assert!(
        !out.status.success() && out.stderr.contains("fewer than 8"),
        "{}",
        out.stderr
    );

    // Not while another command uses the home: it is named.
    let mut watch = b.watch();
    watch.wait_for("listening", COMMAND_TIMEOUT, |e| {
        matches!(e, WatchEventJson::Listening { .. })
    });
    let e = b
        .run(&[
            "--json",
            "passphrase",
            "change",
            "--new-passphrase-file",
            new_arg,
        ])
        .json_error();
    let pid = watch.process.child.id();
    assert!(
        e.error.contains("in use")
            && e.error.contains(&format!("pid {pid}"))
            && e.error.contains("watch"),
        "{e:?}"
    );
    drop(watch);

    b.run(&["passphrase", "change", "--new-passphrase-file", new_arg])
        .ok();
    // The old passphrase opens nothing; the new one everything.
    assert_eq!(
        b.run(&["--json", "inbox"]).json_error().error,
        "wrong passphrase"
    );
    b.passphrase = None;
    let out = b.run(&["--passphrase-file", new_arg, "read", "a"]).ok();
    assert!(out.stdout.contains("before the change"), "{}", out.stdout);
    assert!(!out.stderr.contains("warning"), "{}", out.stderr);
    // The database is under a new key: the old key file with the old passphrase no longer
    // opens it (a copy of both from before the change is worth nothing against it).
    let now_key_file = std::fs::read(b.home.join("deaddrop.key")).unwrap();
    std::fs::write(b.home.join("deaddrop.key"), &old_key_file).unwrap();
    b.passphrase = Some(PASSPHRASE.into());
    let e = b.run(&["--json", "inbox"]).json_error();
    assert!(e.error.contains("database is damaged"), "{e:?}");
    std::fs::write(b.home.join("deaddrop.key"), &now_key_file).unwrap();

    // Removing the passphrase: commands need none, and the home says so.
    b.passphrase = None;
    let out = b
        .run(&[
            "--passphrase-file",
            new_arg,
            "passphrase",
            "change",
            "--no-passphrase",
        ])
        .ok();
    assert!(out.stderr.contains("NO passphrase"), "{}", out.stderr);
    let out = b.run(&["read", "a"]).ok();
    assert!(out.stdout.contains("before the change"));
    // And the conversation goes on.
    a.send("b", "after the change");
    assert_eq!(b.sync().messages, 1);
    assert_eq!(a.run(&["sync"]).ok().status.code(), Some(0));
}

#[test]
fn the_passphrase_comes_from_a_file_a_descriptor_or_the_keyring() {
    let ledger = ledger();
    let mut a = DEADDROP.person("alice", &ledger.url());
    a.init("xwing");
    a.passphrase = None;
    let dir = tempfile::tempdir().unwrap();
    let file = write_secret(dir.path(), "pass", PASSPHRASE);

    let e = a.run(&["--json", "card"]).json_error();
    assert!(
        e.error.contains("no passphrase") && e.hint.contains("--passphrase-file"),
        "{e:?}"
    );
    a.run(&["--passphrase-file", file.to_str().unwrap(), "card"])
        .ok();
    let mut cmd = std::process::Command::new("bash");
    cmd.arg("-c")
        .arg(r#""$0" --home "$1" --passphrase-fd 3 card 3<"$2""#)
        .arg(env!("CARGO_BIN_EXE_deaddrop"))
        .arg(&a.home)
        .arg(&file);
    let out = deaddrop_harness::cli::run_command(cmd, None, COMMAND_TIMEOUT).ok();
    assert!(
        out.stdout.starts_with("deaddrop-card-v1:"),
        "{}",
        out.stdout
    );
    // The environment still works, with a warning.
    a.passphrase = Some(PASSPHRASE.into());
    let out = a.run(&["card"]).ok();
    assert!(
        out.stderr.contains("warning: DEADDROP_PASSPHRASE"),
        "{}",
        out.stderr
    );
    a.passphrase = None;

    // Unlocked, commands need no passphrase; the key is in no file of the home.
    let out = a
        .run(&[
            "--passphrase-file",
            file.to_str().unwrap(),
            "unlock",
            "--timeout",
            "5m",
        ])
        .ok();
    assert!(out.stdout.contains("Unlocked"), "{}", out.stdout);
    let started = Instant::now();
    a.run(&["card"]).ok();
    let unlocked_ms = started.elapsed();
    a.run(&["inbox"]).ok();
    a.run(&["lock"]).ok();
    let e = a.run(&["--json", "card"]).json_error();
    assert!(e.error.contains("no passphrase"), "{e:?}");
    // An unlocked command skips the key derivation (64 MiB of Argon2id).
    assert!(unlocked_ms < Duration::from_secs(30));

    // A timeout ends it without `lock`.
    a.run(&[
        "--passphrase-file",
        file.to_str().unwrap(),
        "unlock",
        "--timeout",
        "1s",
    ])
    .ok();
    std::thread::sleep(Duration::from_millis(2500));
    let e = a.run(&["--json", "card"]).json_error();
    assert!(e.error.contains("no passphrase"), "{e:?}");
}

#[test]
fn a_home_of_the_previous_version_is_encrypted_when_first_opened() {
    let ledger = ledger();
    let mut b = DEADDROP.person("bob", &ledger.url());
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy-home");
    std::fs::create_dir_all(&b.home).unwrap();
    std::fs::copy(
        fixture.join("deaddrop.sqlite3"),
        b.home.join("deaddrop.sqlite3"),
    )
    .unwrap();
    let words = b"legacy-secret-words";
    assert!(
        !files_holding(&b.home, words).is_empty(),
        "the fixture is plain"
    );

    // A wrong passphrase changes nothing.
    b.passphrase = Some("not the passphrase".into());
    assert_eq!(
        b.run(&["--json", "read", "alice"]).json_error().error,
        "wrong passphrase"
    );
    assert!(!b.home.join("deaddrop.key").exists());
    assert!(!files_holding(&b.home, words).is_empty());

    b.passphrase = Some("correct horse battery staple".into());
    let msgs = b.read("alice");
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].text, "legacy-secret-words");
    assert!(b.home.join("deaddrop.key").exists());
    assert!(files_holding(&b.home, words).is_empty(), "still readable");
    assert!(
        files_holding(&b.home, b"alice").is_empty(),
        "the contact name is readable"
    );
    // It keeps working, and the old passphrase is the passphrase.
    assert_eq!(b.read("alice").len(), 1);
    b.passphrase = Some("not the passphrase".into());
    assert_eq!(
        b.run(&["--json", "inbox"]).json_error().error,
        "wrong passphrase"
    );
}

#[test]
fn a_command_names_the_process_holding_the_home() {
    let ledger = ledger();
    let a = DEADDROP.person("alice", &ledger.url());
    a.init("xwing");
    // What `passphrase change` holds while it re-keys: the home's lock, exclusively.
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(a.home.join("lock"))
        .unwrap();
    lock.lock().unwrap();
    let started = Instant::now();
    let e = a.run(&["--json", "card"]).json_error();
    let waited = started.elapsed();
    assert!(
        e.error.contains("in use") && e.error.contains(&format!("pid {}", std::process::id())),
        "{e:?}"
    );
    // It waited for the holder (a re-key takes well under a second) before giving up.
    assert!(waited >= Duration::from_secs(5), "{waited:?}");
    lock.unlock().unwrap();
    a.run(&["card"]).ok();
    // Many commands at once share the home.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                a.run(&["sync"]).ok();
                a.run(&["check-string", "rotate"]).ok();
            });
        }
    });
}

//! The command's everyday habits, against the real binary and a real ledger: exit codes that
//! tell failures apart, completions and man pages, a closed pipe, local times and conversation
//! windows, contacts renamed and verified in person, cards from standard input, files and QR
//! pictures, and the QR code drawn for a terminal too narrow for it.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Write;
use std::process::Stdio;

use deaddrop_client::output::{
    CardJson, ContactJson, ContactShowJson, ContactVerifiedJson, ErrorJson, ManJson, MessageJson,
};
use deaddrop_harness::cli::{run_command, COMMAND_TIMEOUT};
use deaddrop_harness::{closed_port, Deaddrop, Out, Person, Serve};

const DEADDROP: Deaddrop = Deaddrop::new(env!("CARGO_BIN_EXE_deaddrop"));

fn ledger() -> Serve {
    DEADDROP
        .serve()
        .args(&["--pow-bits", "0", "--store", "memory"])
        .start_blocking()
}

/// Someone with an identity of `suite` on `url`.
fn someone(name: &str, url: &str, suite: &str) -> Person {
    let p = DEADDROP.person(name, url);
    p.init(suite);
    p
}

fn code(out: &Out) -> Option<i32> {
    out.status.code()
}

/// `deaddrop ARGS` without a home or ledger.
fn bare(args: &[&str]) -> Out {
    let mut cmd = DEADDROP.command();
    cmd.args(args);
    run_command(cmd, None, COMMAND_TIMEOUT)
}

#[test]
fn exit_codes_tell_failures_apart() {
    let down = format!("http://127.0.0.1:{}", closed_port());
    let mut p = someone("p", &down, "xwing");

    // 0: done.
    assert_eq!(code(&p.run(&["card"])), Some(0));
    // 2: usage, from clap and from values the command cannot use.
    let out = p.run(&["--no-such-flag", "card"]);
    assert_eq!(code(&out), Some(2), "{out:?}");
    let out = p.run(&["read", "x", "--since", "the other day"]);
    assert_eq!(code(&out), Some(2), "{out:?}");
    assert!(out.stderr.contains("neither a duration"), "{}", out.stderr);
    let out = p.run(&["--json", "contact", "add", "not a card", "--name", "x"]);
    assert_eq!(code(&out), Some(2), "{out:?}");
    out.json_error();
    let mut bad_url = DEADDROP.person("u", "not a url");
    bad_url.home = p.home.clone();
    assert_eq!(code(&bad_url.run(&["sync"])), Some(2));
    // 3: the ledger cannot be reached.
    let out = p.run(&["--json", "sync"]);
    assert_eq!(code(&out), Some(3), "{out:?}");
    assert!(out.json_error().error.contains("not reachable"));
    // 4: a wrong passphrase, or none and no terminal to ask on.
    p.passphrase = Some("not the passphrase at all".into());
    let out = p.run(&["card"]);
    assert_eq!(code(&out), Some(4), "{out:?}");
    p.passphrase = None;
    assert_eq!(code(&p.run(&["card"])), Some(4));
    p.passphrase = Some(deaddrop_harness::cli::PASSPHRASE.into());
    // 5: local data: a home without an identity.
    let empty = DEADDROP.person("e", &down);
    let out = empty.run(&["--json", "card"]);
    assert_eq!(code(&out), Some(5), "{out:?}");
    assert!(out.json_error().hint.contains("init"));
    // 1: anything else, e.g. a contact that does not exist.
    let out = p.run(&["read", "nobody"]);
    assert_eq!(code(&out), Some(1), "{out:?}");

    // Listed where people look.
    let help = bare(&["--help"]).ok();
    for line in [
        "Exit status:",
        "  3    network",
        "  4    passphrase",
        "  130  interrupted",
    ] {
        assert!(help.stdout.contains(line), "{line}: {}", help.stdout);
    }
}

#[test]
fn completions_and_man_pages_come_from_the_command_line() {
    let bash = bare(&["completions", "bash"]).ok().stdout;
    for word in ["sync", "contact", "completions", "--qr-png", "--since"] {
        assert!(
            bash.contains(word),
            "{word} missing from the bash completion"
        );
    }
    for shell in ["zsh", "fish", "powershell"] {
        let s = bare(&["completions", shell]).ok().stdout;
        assert!(s.contains("deaddrop") && s.contains("sync"), "{shell}: {s}");
    }
    assert_eq!(code(&bare(&["completions", "tcsh-of-the-future"])), Some(2));

    let page = bare(&["man"]).ok().stdout;
    assert!(
        page.starts_with(".ie") || page.contains(".TH deaddrop"),
        "{page}"
    );
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man1");
    let mut cmd = DEADDROP.command();
    cmd.args(["--json", "man", "--out", out_dir.to_str().unwrap()]);
    let written: ManJson = run_command(cmd, None, COMMAND_TIMEOUT).ok().json();
    let names: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for want in [
        "deaddrop.1",
        "deaddrop-sync.1",
        "deaddrop-contact-add.1",
        "deaddrop-man.1",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    assert_eq!(written.files.len(), names.len());
    let groff = std::process::Command::new("groff")
        .arg("--version")
        .output()
        .is_ok();
    for name in &names {
        let path = out_dir.join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(".TH ") && text.contains(".SH NAME"),
            "{name}: {text}"
        );
        if groff {
            // Parsed by a real roff: no warnings, and the page says something.
            let o = std::process::Command::new("groff")
                .args(["-man", "-Tutf8", "-ww"])
                .arg(&path)
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success() && err.trim().is_empty(), "{name}: {err}");
            assert!(String::from_utf8_lossy(&o.stdout).contains("deaddrop"));
        }
    }
}

/// Runs `cmd` with its standard output a pipe whose reading end is already closed.
fn into_closed_pipe(mut cmd: std::process::Command) -> std::process::Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    drop(child.stdout.take());
    child.wait_with_output().unwrap()
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let p = someone("p", "http://127.0.0.1:1", "xwing");
    for args in [
        &["card"][..],
        &["--json", "card"],
        &["card", "--qr"],
        &["contact", "list"],
    ] {
        let out = into_closed_pipe(p.command(args));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
    let mut cmd = DEADDROP.command();
    cmd.args(["completions", "bash"]);
    let out = into_closed_pipe(cmd);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // `| head -c 10` as a shell runs it.
    let sh = format!(
        "'{}' --home '{}' card | head -c 10",
        DEADDROP.path().display(),
        p.home.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &sh])
        .env("DEADDROP_PASSPHRASE", deaddrop_harness::cli::PASSPHRASE)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "deaddrop-c");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}

#[test]
fn times_are_local_unless_utc_and_windows_pick_messages() {
    let ledger = ledger();
    let (a, b) = DEADDROP.pair(&ledger.url(), "xwing");
    for i in 1..=4 {
        a.send("b", &format!("message {i}"));
    }
    b.sync();
    // A zone without daylight saving and with a half-hour offset, as a POSIX TZ string (no
    // time zone database needed).
    let mut cmd = b.command(&["read", "a", "--last", "2"]);
    cmd.env("TZ", "IST-5:30");
    let local = run_command(cmd, None, COMMAND_TIMEOUT).ok().stdout;
    let lines: Vec<&str> = local.lines().collect();
    assert_eq!(lines.len(), 2, "{local}");
    assert!(
        lines[0].contains("message 3") && lines[1].contains("message 4"),
        "{local}"
    );
    assert!(lines.iter().all(|l| l.contains(" IST]")), "{local}");
    let mut cmd = b.command(&["read", "a", "--utc"]);
    cmd.env("TZ", "IST-5:30");
    let utc = run_command(cmd, None, COMMAND_TIMEOUT).ok().stdout;
    assert_eq!(utc.lines().count(), 4, "{utc}");
    assert!(utc.lines().all(|l| l.contains(" UTC]")), "{utc}");
    // Only the two shown by --last were marked read: the other two were new above.
    assert_eq!(
        utc.lines().filter(|l| l.starts_with("* ")).count(),
        2,
        "{utc}"
    );
    for args in [&["inbox", "--utc"][..], &["requests", "--utc"]] {
        b.run(args).ok();
    }

    // JSON keeps milliseconds.
    let all: Vec<MessageJson> = b.json(&["read", "a"]);
    assert_eq!(all.len(), 4);
    let newest = all[3].time;
    let since: Vec<MessageJson> = b.json(&["read", "a", "--since", "1h"]);
    assert_eq!(since.len(), 4);
    let future = "2999-01-01T00:00:00Z";
    let none: Vec<MessageJson> = b.json(&["read", "a", "--since", future]);
    assert!(none.is_empty(), "{none:?}");
    let at = jiff::Timestamp::from_millisecond(newest as i64)
        .unwrap()
        .to_string();
    let last: Vec<MessageJson> = b.json(&["read", "a", "--since", &at]);
    assert!(
        last.iter().all(|m| m.time >= newest) && !last.is_empty(),
        "{last:?}"
    );
    let e = b.run(&["--json", "read", "a", "--last", "-3"]).json_error();
    assert!(
        e.error.contains("-3") || e.error.contains("--last"),
        "{e:?}"
    );
}

#[test]
fn contacts_are_renamed_and_verified_in_person() {
    let ledger = ledger();
    let (a, b) = DEADDROP.pair(&ledger.url(), "xwing");
    let c = someone("carol", &ledger.url(), "xwing");
    a.add(&c.card(), "c");

    a.run(&["contact", "rename", "b", "bobby"]).ok();
    let list: Vec<ContactJson> = a.json(&["contact", "list"]);
    let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["bobby", "c"]);
    // To a name that is taken, from one that does not exist, to nothing: refused.
    let e = a.run(&["--json", "contact", "rename", "bobby", "c"]);
    assert_eq!(code(&e), Some(1));
    assert!(e.json_error().error.contains("already"), "{e:?}");
    let e = a.run(&["--json", "contact", "rename", "nobody", "x"]);
    assert!(e.json_error().error.contains("nobody"));
    assert_eq!(code(&a.run(&["contact", "rename", "bobby", "  "])), Some(2));
    // The conversation followed the name.
    a.send("bobby", "after the rename");
    b.sync();
    assert_eq!(b.read("a").len(), 1);
    b.send("a", "a reply");

    // A fingerprint read out wrong is refused and marks nothing.
    let show: ContactShowJson = a.json(&["contact", "show", "c"]);
    assert!(!show.verified && !show.verified_in_person, "{show:?}");
    let e = a.run(&[
        "--json",
        "contact",
        "verify",
        "c",
        "--fingerprint",
        "AAAA-BBBB",
    ]);
    assert_eq!(code(&e), Some(2));
    assert!(e.json_error().error.contains("not the one"));
    // Read out in lower case with spaces: the same fingerprint.
    let spoken = show.fingerprint.to_lowercase().replace('-', " ");
    let v: ContactVerifiedJson = a.json(&["contact", "verify", "c", "--fingerprint", &spoken]);
    assert!(v.verified_in_person && v.fingerprint == show.fingerprint);
    let show: ContactShowJson = a.json(&["contact", "show", "c"]);
    assert!(show.verified_in_person && !show.verified, "{show:?}");
    assert!(show.verified_in_person_at.is_some());
    // B replied earlier: confirmed by a reply, not verified in person.
    a.sync();
    let list: Vec<ContactJson> = a.json(&["contact", "list"]);
    let bobby = list.iter().find(|c| c.name == "bobby").unwrap();
    assert!(bobby.verified && !bobby.verified_in_person, "{bobby:?}");
    let human = a.run(&["contact", "show", "c"]).ok().stdout;
    assert!(human.contains("not yet confirmed by a reply"), "{human}");
    assert!(human.contains("fingerprint verified in person"), "{human}");
    let human = a.run(&["contact", "list"]).ok().stdout;
    assert!(human.contains("fingerprint verified in person"), "{human}");
    assert!(!human.contains(" verified\n"), "old wording: {human}");
    let undone: ContactVerifiedJson = a.json(&["contact", "verify", "c", "--undo"]);
    assert!(!undone.verified_in_person);
    assert_eq!(code(&a.run(&["contact", "verify", "nobody"])), Some(1));
}

#[test]
fn cards_come_from_stdin_files_and_text_pasted_across_lines() {
    let url = "http://127.0.0.1:1";
    let a = someone("a", url, "xwing");
    let b = someone("b", url, "xwing");
    let c = someone("c", url, "xwing");
    let card = b.card();
    // Broken into lines of 60, indented, with a trailing newline, as a mail client would.
    let pasted: String = card
        .as_bytes()
        .chunks(60)
        .map(|l| format!("   {}\r\n", std::str::from_utf8(l).unwrap()))
        .collect();
    let out = a.run_with_input(
        &["--json", "contact", "add", "-", "--name", "b"],
        pasted.into_bytes(),
    );
    out.ok();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("card.txt");
    std::fs::write(&file, format!("{}\n\n", c.card())).unwrap();
    a.json::<serde_json::Value>(&[
        "contact",
        "add",
        "--file",
        file.to_str().unwrap(),
        "--name",
        "c",
    ]);
    let list: Vec<ContactJson> = a.json(&["contact", "list"]);
    assert_eq!(list.len(), 2);

    // Nothing, garbage, too much, or two sources at once: refused, nothing added.
    let e = a.run_with_input(
        &["--json", "contact", "add", "-", "--name", "x"],
        Vec::new(),
    );
    assert_eq!(code(&e), Some(2), "{e:?}");
    e.json_error();
    let e = a.run_with_input(
        &["--json", "contact", "add", "-", "--name", "x"],
        vec![b'A'; 200_000],
    );
    assert_eq!(code(&e), Some(2), "{e:?}");
    let e = a.run(&[
        "contact",
        "add",
        "--file",
        "/nonexistent/card",
        "--name",
        "x",
    ]);
    assert_eq!(code(&e), Some(5), "{e:?}");
    let e = a.run(&[
        "contact",
        "add",
        &card,
        "--file",
        file.to_str().unwrap(),
        "--name",
        "x",
    ]);
    assert_eq!(code(&e), Some(2), "{e:?}");
    let e = a.run(&["contact", "add", "--name", "x"]);
    assert_eq!(code(&e), Some(2), "{e:?}");
    assert_eq!(a.json::<Vec<ContactJson>>(&["contact", "list"]).len(), 2);

    // `card` prints the fingerprint too: on standard error for people, in the JSON.
    let out = b.run(&["card"]).ok();
    let j: CardJson = b.json(&["card"]);
    assert_eq!(out.stdout.trim(), j.card);
    assert!(out.stderr.contains(&j.fingerprint), "{}", out.stderr);
}

/// Decodes the QR code in the PNG at `path` with a real decoder.
fn scan(path: &std::path::Path) -> String {
    let img = image::open(path).unwrap().into_luma8();
    let w = img.width() as usize;
    let mut prepared =
        rqrr::PreparedImage::prepare_from_greyscale(w, img.height() as usize, |x, y| {
            img.as_raw()[y * w + x]
        });
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in {}", path.display());
    grids[0].decode().unwrap().1
}

#[test]
fn qr_pictures_scan_back_into_contacts_in_both_suites() {
    let dir = tempfile::tempdir().unwrap();
    for suite in ["xwing", "rsa-oaep"] {
        let url = "http://127.0.0.1:1";
        let a = someone("a", url, suite);
        let b = someone("b", url, suite);
        let png = dir.path().join(format!("{suite}.png"));
        let j: CardJson = b.json(&["card", "--qr-png", png.to_str().unwrap()]);
        assert_eq!(j.qr_png.as_deref(), png.to_str());
        assert_eq!(scan(&png), j.card, "{suite}");
        let added: serde_json::Value = a.json(&[
            "contact",
            "add",
            "--qr-image",
            png.to_str().unwrap(),
            "--name",
            "b",
        ]);
        assert_eq!(added["fingerprint"], j.fingerprint.as_str(), "{suite}");
    }

    let a = someone("a", "http://127.0.0.1:1", "xwing");
    // A QR code that is not a card.
    let other = dir.path().join("hello.png");
    let code_ = qrcode::QrCode::new(b"https://example.invalid/hello").unwrap();
    let w = code_.width();
    let colors = code_.to_colors();
    let img = image::GrayImage::from_fn((w as u32 + 8) * 6, (w as u32 + 8) * 6, |x, y| {
        let (x, y) = ((x / 6) as usize, (y / 6) as usize);
        let dark = x >= 4
            && y >= 4
            && x - 4 < w
            && y - 4 < w
            && colors[(y - 4) * w + x - 4] == qrcode::Color::Dark;
        image::Luma([if dark { 0 } else { 255 }])
    });
    img.save(&other).unwrap();
    let e = a.run(&[
        "--json",
        "contact",
        "add",
        "--qr-image",
        other.to_str().unwrap(),
        "--name",
        "x",
    ]);
    assert_eq!(code(&e), Some(2), "{e:?}");
    assert!(e.json_error().error.contains("no deaddrop card"), "{e:?}");
    // A picture without any code, a file that is no picture, one far too large: refused (the
    // last by its size, before anything decodes it).
    let blank = dir.path().join("blank.png");
    image::GrayImage::from_pixel(200, 200, image::Luma([255]))
        .save(&blank)
        .unwrap();
    let not_png = dir.path().join("text.png");
    std::fs::write(&not_png, "this is not a picture").unwrap();
    let huge = dir.path().join("huge.png");
    let mut f = std::fs::File::create(&huge).unwrap();
    f.write_all(&std::fs::read(&blank).unwrap()).unwrap();
    f.set_len(17 << 20).unwrap();
    for (file, says) in [
        (&blank, "no readable QR code"),
        (&not_png, "not a picture"),
        (&huge, "bytes"),
    ] {
        let e = a.run(&[
            "--json",
            "contact",
            "add",
            "--qr-image",
            file.to_str().unwrap(),
            "--name",
            "x",
        ]);
        assert_eq!(code(&e), Some(2), "{e:?}");
        let ErrorJson { error, .. } = e.json_error();
        assert!(error.contains(says), "{says}: {error}");
    }
    assert!(a.json::<Vec<ContactJson>>(&["contact", "list"]).is_empty());
}

/// Runs `sh -c SCRIPT` on a pseudo-terminal (util-linux `script`), or `None` without one.
fn on_a_terminal(script: &str, env: &[(&str, &str)]) -> Option<(i32, String)> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("tty.out");
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qefc", script, log.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let status = cmd.status().ok()?;
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    Some((status.code().unwrap_or(-1), text))
}

#[test]
fn a_qr_code_too_wide_for_the_terminal_says_how_wide_it_must_be() {
    let p = someone("p", "http://127.0.0.1:1", "xwing");
    let sh = format!(
        "stty cols 80 rows 40; '{}' --home '{}' card --qr",
        DEADDROP.path().display(),
        p.home.display()
    );
    let Some((status, text)) = on_a_terminal(
        &sh,
        &[("DEADDROP_PASSPHRASE", deaddrop_harness::cli::PASSPHRASE)],
    ) else {
        eprintln!("skipped: no `script` to run a terminal");
        return;
    };
    assert_eq!(status, 2, "{text}");
    assert!(
        text.contains("columns wide") && text.contains("has 80"),
        "{text}"
    );
    assert!(text.contains("--qr-png"), "{text}");
    // Wide enough: drawn, black on white in explicit colours.
    let sh = sh.replace("cols 80", "cols 200");
    let (status, text) = on_a_terminal(
        &sh,
        &[("DEADDROP_PASSPHRASE", deaddrop_harness::cli::PASSPHRASE)],
    )
    .unwrap();
    assert_eq!(status, 0, "{text}");
    assert!(text.contains("\x1b[38;5;16;48;5;231m\u{2580}"), "{text}");
}

//! What others write cannot take over the reader's terminal or pose as someone else: a
//! stranger's text and a card's name full of escape sequences, carriage returns, fake headers
//! and bidi overrides come out of every human-readable command escaped, while `--json` keeps
//! the exact text.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use deaddrop_harness::{Deaddrop, Person, Serve};
use deaddrop_proto::ContactCard;

const DEADDROP: Deaddrop = Deaddrop::new(env!("CARGO_BIN_EXE_deaddrop"));

/// A name that retitles the terminal and erases the line.
const EVIL_NAME: &str = "Bob\u{1b}]0;PWNED\u{7}\u{1b}[2K";
/// A text that overwrites its own line with a fake message from someone else, paints, reverses
/// what follows, and starts a second line that looks like a header.
const EVIL_TEXT: &str = "hi\r[2026-01-01T00:00:00Z] alice: send me your passphrase \u{1b}[31mred\u{1b}[0m\u{202e}txt.exe\n[2026-01-01T00:00:01Z] alice: really";

/// The characters a terminal obeys instead of showing (as the acceptance journey counts them).
fn raw_controls(s: &str) -> Vec<char> {
    s.chars()
        .filter(|&c| {
            let u = u32::from(c);
            (u < 32 && c != '\n' && c != '\t')
                || u == 127
                || (0x80..0xA0).contains(&u)
                || (0x202A..=0x202E).contains(&u)
                || (0x2066..=0x2069).contains(&u)
        })
        .collect()
}

#[test]
fn a_hostile_name_and_text_reach_the_terminal_escaped() {
    let ledger: Serve = DEADDROP
        .serve()
        .args(&["--pow-bits", "0", "--store", "memory"])
        .start_blocking();
    let url = ledger.url();
    let b = Person::new(DEADDROP, "b", &url);
    b.init("xwing");
    let m = Person::new(DEADDROP, "m", &url);
    m.init("xwing");
    m.add(&b.card(), "b");
    m.send("b", EVIL_TEXT);

    let mut out = String::new();
    let mut take = |args: &[&str]| {
        let o = b.run(args).ok();
        out.push_str(&o.stdout);
        out.push_str(&o.stderr);
    };
    take(&["sync"]);
    take(&["requests"]);
    take(&["inbox"]);
    let id = b.requests()[0].id.to_string();
    take(&["accept", &id, "--name", "mallory"]);
    take(&["read", "mallory"]);

    // A card whose holder chose a hostile name.
    let n = Person::new(DEADDROP, "n", &url);
    n.init("xwing");
    let card = ContactCard::parse(&n.card()).unwrap();
    let evil = ContactCard::new(
        card.address().clone(),
        card.checks().to_vec(),
        Some(EVIL_NAME.into()),
    )
    .unwrap()
    .to_text();
    take(&["contact", "add", &evil, "--name", "nina"]);
    take(&["contact", "list"]);
    take(&["contact", "show", "nina"]);
    take(&["contact", "show", "mallory"]);

    assert_eq!(raw_controls(&out), Vec::<char>::new(), "{out}");
    assert!(out.contains("send me your passphrase"), "{out}");
    assert!(
        out.contains("\\x1b]0;PWNED"),
        "escapes are shown, visibly: {out}"
    );
    assert!(
        !out.lines()
            .any(|l| l.starts_with("[2026-01-01T00:00:01Z] alice")),
        "a line of the text posed as a message header: {out}"
    );

    // `--json` is exact.
    let read = b.read("mallory");
    assert_eq!(read[0].text, EVIL_TEXT);

    // One's own name cannot carry such characters.
    let o = Person::new(DEADDROP, "o", &url);
    let refused = o.run(&["init", "--name", EVIL_NAME, "--no-passphrase"]);
    assert!(!refused.status.success(), "{refused:?}");
    assert!(refused.stderr.contains("control"), "{}", refused.stderr);
}

//! `card` (with its QR code drawn or written as a PNG), `contact verify`, the two kinds of
//! trust a contact can have as people read them, and the progress of a long `send`.

use std::path::PathBuf;

use deaddrop_client::db::{Db, InPerson};
use deaddrop_client::ops::{now_ms, SendProgress};
use deaddrop_client::output::{CardJson, ContactVerifiedJson};
use deaddrop_client::{display, ClientError};

use crate::progress::Bar;

/// The terminal's width in columns, when standard output is one.
fn terminal_columns() -> Option<usize> {
    terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| usize::from(w.0))
}

/// `deaddrop card [--qr] [--qr-png FILE]`: the card on standard output (what others add), its
/// fingerprint on standard error (to compare in person; not part of the card).
pub fn card(db: &Db, json: bool, qr: bool, qr_png: Option<PathBuf>) -> anyhow::Result<()> {
    let card = db.my_card(now_ms())?;
    let text = card.to_text();
    let fingerprint = card.address().fingerprint().short();
    let code = if qr || qr_png.is_some() {
        Some(crate::qr::encode(&text)?)
    } else {
        None
    };
    // Checked before anything is printed: a QR code cut at the terminal's edge scans as nothing.
    if let (true, false, Some(code)) = (qr, json, &code) {
        let need = crate::qr::columns(code);
        if let Some(have) = terminal_columns().filter(|&have| have < need) {
            return Err(ClientError::Input(format!(
                "the QR code of your card needs a terminal {need} columns wide, and this one has \
                 {have}: widen the window or make its font smaller, or write a picture with \
                 `deaddrop card --qr-png FILE`"
            ))
            .into());
        }
    }
    let written = match (&qr_png, &code) {
        (Some(path), Some(code)) => Some((path, crate::qr::write_png(code, path)?)),
        _ => None,
    };
    if json {
        return crate::out::json(&CardJson {
            card: text,
            fingerprint,
            name: card.name().map(str::to_string),
            qr_png: qr_png.map(|p| p.display().to_string()),
            suite: card.address().suite().name().to_string(),
        });
    }
    println!("{text}");
    if let (true, Some(code)) = (qr, &code) {
        print!("{}", crate::qr::draw(code));
    }
    if let Some((path, side)) = written {
        eprintln!(
            "Wrote the QR code of your card to {} ({side}x{side} pixels).",
            path.display()
        );
    }
    eprintln!(
        "Your fingerprint: {fingerprint} (whoever adds this card sees it in `deaddrop contact show`; compare it in person)"
    );
    Ok(())
}

/// A contact's two kinds of trust, as a list shows them.
pub fn states(confirmed: bool, in_person: Option<InPerson>) -> String {
    let reply = if confirmed {
        "confirmed by a reply"
    } else {
        "not yet confirmed by a reply"
    };
    match in_person {
        Some(_) => format!("{reply}; fingerprint verified in person"),
        None => reply.to_string(),
    }
}

/// Fingerprints as people read them out: case, spaces, colons and dashes do not matter.
fn normalized_fingerprint(fp: &str) -> String {
    fp.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// `deaddrop contact verify NAME [--fingerprint FP] [--undo]`.
pub fn verify(
    db: &mut Db,
    json: bool,
    name: &str,
    read_out: Option<&str>,
    undo: bool,
) -> anyhow::Result<()> {
    let c = db.contact(name)?;
    let fp = c.card.address().fingerprint();
    if let Some(theirs) = read_out {
        let theirs = normalized_fingerprint(theirs);
        let matches = [fp.short(), fp.to_hex()]
            .iter()
            .any(|mine| normalized_fingerprint(mine) == theirs);
        if !matches {
            return Err(ClientError::Input(format!(
                "the fingerprint you were given is not the one on {}'s card ({}): the card you \
                 hold is not the one they gave out. Do not mark it; get their card again in person",
                display::line(name),
                fp.short()
            ))
            .into());
        }
    }
    let mark = db.mark_verified_in_person(name, !undo, now_ms())?;
    if json {
        return crate::out::json(&ContactVerifiedJson {
            fingerprint: fp.short(),
            name: c.name,
            verified_in_person: mark.is_some(),
        });
    }
    if mark.is_some() {
        println!(
            "Marked {} ({}) as fingerprint verified in person.",
            display::line(&c.name),
            fp.short()
        );
    } else {
        println!(
            "{} ({}) is no longer marked as verified in person.",
            display::line(&c.name),
            fp.short()
        );
    }
    Ok(())
}

/// The progress of a `send`, drawn once it has more than one part.
pub struct SendBar {
    json: bool,
    bar: Option<Bar>,
}

/// A progress display for a send with `--json` or not.
pub fn send_bar(json: bool) -> SendBar {
    SendBar { json, bar: None }
}

impl SendBar {
    /// Shows how far the send is.
    pub fn show(&mut self, p: SendProgress) {
        match p {
            SendProgress::Stamping { parts } if parts > 1 => {
                let bar = Bar::new(self.json, "sending", "parts", parts as u64);
                bar.note("(solving the proof of work)");
                self.bar = Some(bar);
            }
            SendProgress::Posted { done, total } => {
                if let Some(b) = &self.bar {
                    b.note("");
                    b.set(done as u64, total as u64);
                }
            }
            _ => {}
        }
    }
}

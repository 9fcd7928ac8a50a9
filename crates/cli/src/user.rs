//! The client subcommands: `init`, `card`, `contact`, `send`, `sync`, `inbox`, `read`,
//! `requests`, `accept`, `reject`, `watch`, `check-string` (and, in modules of their own,
//! `config`, `status`, `outbox`). Logic lives in `deaddrop-client`; this module parses
//! arguments, asks for passphrases and prints.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use clap::{Args, Subcommand};
use deaddrop_client::db::{Db, NewMessage};
use deaddrop_client::display;
use deaddrop_client::keystore::{self, Passphrase};
use deaddrop_client::ops::{self, now_ms, WatchEvent};
use deaddrop_client::output::{
    AcceptJson, ContactAddedJson, ContactJson, ContactRemovedJson, ContactRenamedJson,
    ContactShowJson, ContactUpdatedJson, InboxKind, InboxRowJson, InitJson, LockJson, MessageJson,
    PassphraseJson, RejectJson, RequestJson, RotateJson, SendJson, SyncJson, UnlockJson,
    WatchEventJson,
};
use deaddrop_client::settings::{Setting, Source};
use deaddrop_client::LedgerClient;
use deaddrop_client::{ClientError, Direction, RequestId};
use deaddrop_proto::rng::SystemRng;
use deaddrop_proto::{CheckKey, CheckString, ContactCard, Identity, Suite};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::card_input::{self, Source as CardSource};
use crate::when::{parse_since, Since, TimeOpts, Zone};
use crate::Global;

/// Options of every client subcommand.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Client options")]
pub struct ClientOpts {
    /// Where this identity's database lives [default: the platform data directory, e.g.
    /// ~/.local/share/deaddrop].
    #[arg(long, global = true, env = "DEADDROP_HOME")]
    pub home: Option<PathBuf>,
    /// The ledger to talk to for this command [default: the home's (`deaddrop config set
    /// ledger URL`, or `init --ledger URL`), else http://127.0.0.1:8470]. At `init`, stored in
    /// the home.
    #[arg(long, global = true, env = "DEADDROP_LEDGER")]
    pub ledger: Option<String>,
    /// A SOCKS5 proxy for every network call, e.g. socks5h://127.0.0.1:9050 for Tor. Each
    /// command, and each part of a message `send` posts, authenticates with random credentials
    /// of its own, so Tor (IsolateSOCKSAuth, its default) gives each its own circuit; with
    /// socks5h://USER:PASS@HOST:PORT every connection uses yours instead. [default: the
    /// home's (`deaddrop config set proxy URL`), else none; `--proxy ''` uses none]. At `init`,
    /// stored in the home.
    #[arg(long, global = true, env = "DEADDROP_PROXY")]
    pub proxy: Option<String>,
    /// Read the passphrase from the first line of FILE (keep it readable by you alone).
    #[arg(long, global = true, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
    /// Read the passphrase from the first line of file descriptor N (e.g. `3<secret`).
    #[arg(
        long,
        global = true,
        value_name = "N",
        conflicts_with = "passphrase_file"
    )]
    pub passphrase_fd: Option<u32>,
    /// Also trust the certificate authorities in this PEM file for an https:// ledger (one whose
    /// certificate comes from a private CA). Without it, the built-in web roots only. [default:
    /// the home's (`deaddrop config set ca_file PATH`)]. At `init`, stored in the home.
    #[arg(long, global = true, env = "DEADDROP_CA_FILE", value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// Where `ledger` came from, when it was given (set after parsing).
    #[arg(skip)]
    pub ledger_source: Option<Source>,
}

/// `deaddrop contact ...`.
#[derive(Debug, Subcommand)]
pub enum ContactCmd {
    /// Add someone from their card: given here, on standard input (`-`), in a file, or as a
    /// picture of its QR code. Spaces and line breaks inside the card are ignored.
    #[command(group(clap::ArgGroup::new("source").required(true).args(["card", "file", "qr_image"])))]
    Add {
        /// Their card (`deaddrop-card-v1:...`), as they gave it to you, or `-` to read it from
        /// standard input.
        card: Option<String>,
        /// Read the card from this text file.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Read the card from a picture (PNG or JPEG) of its QR code, as `deaddrop card
        /// --qr-png` writes it or a phone photographs it.
        #[arg(long, value_name = "FILE")]
        qr_image: Option<PathBuf>,
        /// The name you will use for them.
        #[arg(long)]
        name: String,
    },
    /// Give a contact another name; the conversation stays.
    Rename {
        /// Their name now.
        old: String,
        /// The name they get.
        new: String,
    },
    /// Mark that you compared a contact's fingerprint with them in person (or on a call you
    /// trust): their card is theirs, not someone else's posing as them.
    Verify {
        /// The contact's name.
        name: String,
        /// The fingerprint they read out to you: refused unless it is theirs.
        #[arg(long, value_name = "FP")]
        fingerprint: Option<String>,
        /// Take the mark back.
        #[arg(long, conflicts_with = "fingerprint")]
        undo: bool,
    },
    /// Take a newer card of a contact (same address, e.g. a new check string), given out of
    /// band. Keys and conversation stay.
    Update {
        /// Their new card (`deaddrop-card-v1:...`).
        card: String,
    },
    /// List your contacts.
    List,
    /// Remove a contact and your conversation with them.
    Remove {
        /// The contact's name.
        name: String,
    },
    /// Show a contact, with the fingerprint to compare in person.
    Show {
        /// The contact's name.
        name: String,
    },
}

/// `deaddrop check-string ...`.
#[derive(Debug, Subcommand)]
pub enum CheckStringCmd {
    /// Start a new check string; the old one stays accepted for 7 days. Hand out the new card.
    Rotate,
}

/// `deaddrop passphrase ...`.
#[derive(Debug, Subcommand)]
pub enum PassphraseCmd {
    /// Change the passphrase (asks for the current one) and re-key the database. Every other
    /// deaddrop command on this home must have ended.
    Change {
        /// Read the new passphrase from the first line of FILE instead of asking twice.
        #[arg(long, value_name = "FILE")]
        new_passphrase_file: Option<PathBuf>,
        /// Remove the passphrase: anyone who can read the home can then read everything.
        #[arg(long, conflicts_with = "new_passphrase_file")]
        no_passphrase: bool,
        /// Accept a new passphrase shorter than 8 characters (not recommended).
        #[arg(long)]
        weak_passphrase: bool,
    },
}

/// The subcommands that make, unlock and protect a home rather than use it.
#[derive(Debug, Subcommand)]
pub enum HomeCmd {
    /// Create your identity (locally; no server is involved).
    Init {
        /// Your display name, shown on your card.
        #[arg(long)]
        name: Option<String>,
        /// The suite: xwing (post-quantum hybrid, the default) or rsa-oaep.
        #[arg(long, default_value = "xwing")]
        suite: String,
        /// Store the private key unencrypted (not recommended).
        #[arg(long)]
        no_passphrase: bool,
        /// Accept a passphrase shorter than 8 characters (not recommended: whoever copies the
        /// key file can try guesses offline).
        #[arg(long)]
        weak_passphrase: bool,
    },
    /// Keep this home's database key in the kernel keyring of this login session for a while,
    /// so that commands do not ask for the passphrase. The key never touches the disk.
    Unlock {
        /// For how long (e.g. 30m, 2h).
        #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Forget the key `deaddrop unlock` kept: commands ask for the passphrase again.
    Lock,
    /// Manage the passphrase.
    #[command(subcommand)]
    Passphrase(PassphraseCmd),
}

/// The client subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create, unlock and protect the home.
    #[command(flatten)]
    Home(HomeCmd),
    /// Print your contact card: give it to the people who should be able to write to you.
    Card {
        /// Also draw it as a QR code in the terminal (it needs a wide one: about 161 columns
        /// for an xwing card).
        #[arg(long)]
        qr: bool,
        /// Write its QR code to FILE as a PNG picture, to show on screen or print.
        #[arg(long, value_name = "FILE")]
        qr_png: Option<PathBuf>,
    },
    /// Manage contacts.
    #[command(subcommand)]
    Contact(ContactCmd),
    /// Send a message (TEXT `-` reads standard input). Long messages go out as several entries.
    Send {
        /// The contact's name.
        name: String,
        /// The message, or `-` for standard input.
        text: String,
    },
    /// Fetch and open every new entry on the ledger.
    Sync,
    /// Conversations with unread counts, and pending requests.
    Inbox {
        #[command(flatten)]
        time: TimeOpts,
    },
    /// Show the conversation with a contact, oldest first.
    Read {
        /// The contact's name.
        name: String,
        /// Only the newest N messages.
        #[arg(long, value_name = "N")]
        last: Option<u64>,
        /// Only messages since then: a duration back from now (2h, 90min, 3days) or an RFC 3339
        /// time (2026-03-01T09:00:00+01:00).
        #[arg(long, value_name = "WHEN", value_parser = parse_since)]
        since: Option<Since>,
        #[command(flatten)]
        time: TimeOpts,
    },
    /// First messages from people who are not your contacts.
    Requests {
        #[command(flatten)]
        time: TimeOpts,
    },
    /// Accept a request: its sender becomes a contact you can reply to.
    Accept {
        /// The request's id (see `deaddrop requests`).
        id: RequestId,
        /// The name you will use for them.
        #[arg(long)]
        name: String,
    },
    /// Reject a request: its messages are deleted, later ones from the sender dropped.
    Reject {
        /// The request's id.
        id: RequestId,
    },
    /// Stay connected and print messages as they arrive (Ctrl-C to stop).
    Watch {
        #[command(flatten)]
        time: TimeOpts,
    },
    /// Chat in the terminal, full-screen: contacts and requests with unread counts, the
    /// conversation, messages sent as you type them and shown as they arrive. Enter sends,
    /// Alt-Enter starts a new line, F1 shows the fingerprint, Esc or Ctrl-C quits.
    Chat {
        /// Open the conversation with this contact.
        name: Option<String>,
        #[command(flatten)]
        time: TimeOpts,
    },
    /// Manage the check string on your card.
    #[command(subcommand)]
    CheckString(CheckStringCmd),
    /// Show or change this home's settings (its ledger, proxy, CA file), kept in its encrypted
    /// database.
    #[command(subcommand)]
    Config(crate::config::ConfigCmd),
    /// This home at a glance: identity, ledger (reachable?), how far it is read, unread
    /// messages, requests, and what waits in the outbox.
    Status {
        #[command(flatten)]
        time: TimeOpts,
    },
    /// Messages waiting for the ledger (sent while it was away); `outbox flush` sends them.
    Outbox(crate::outbox::OutboxArgs),
}

fn home_dir(opts: &ClientOpts) -> anyhow::Result<PathBuf> {
    match &opts.home {
        Some(h) => Ok(h.clone()),
        None => directories::ProjectDirs::from("", "", "deaddrop")
            .map(|d| d.data_dir().to_path_buf())
            .ok_or_else(|| {
                ClientError::Input(
                    "cannot find a data directory for this user: pass --home DIR".into(),
                )
                .into()
            }),
    }
}

/// Where the passphrase of this command comes from: `--passphrase-file`, `--passphrase-fd`,
/// `DEADDROP_PASSPHRASE` (with a warning), or the terminal; asked at most once per command.
pub(crate) struct Secrets {
    file: Option<PathBuf>,
    fd: Option<u32>,
    cached: Option<Passphrase>,
    /// `--json`: stderr carries nothing but an error document, so no warning.
    quiet: bool,
}

/// The longest passphrase read from a file or descriptor.
const MAX_PASSPHRASE_BYTES: u64 = 4096;

impl Secrets {
    fn new(opts: &ClientOpts, quiet: bool) -> Secrets {
        Secrets {
            file: opts.passphrase_file.clone(),
            fd: opts.passphrase_fd,
            cached: None,
            quiet,
        }
    }

    /// Whether the passphrase comes from somewhere other than the terminal.
    fn given(&self) -> bool {
        self.file.is_some() || self.fd.is_some() || env_passphrase_set()
    }

    /// The passphrase from a file, a descriptor or the environment, if one was given.
    fn given_passphrase(&self) -> Result<Option<Passphrase>, ClientError> {
        if let Some(path) = &self.file {
            return read_first_line(path, &format!("--passphrase-file {}", path.display()))
                .map(Some);
        }
        if let Some(fd) = self.fd {
            return read_first_line(
                &PathBuf::from(format!("/dev/fd/{fd}")),
                &format!("--passphrase-fd {fd}"),
            )
            .map(Some);
        }
        match std::env::var("DEADDROP_PASSPHRASE") {
            Ok(p) if !p.is_empty() => {
                let p = Passphrase::new(p);
                if !self.quiet {
                    eprintln!("warning: DEADDROP_PASSPHRASE can be read by other programs of this user; prefer --passphrase-file, --passphrase-fd or `deaddrop unlock`");
                }
                Ok(Some(p))
            }
            _ => Ok(None),
        }
    }

    /// The passphrase of an existing home.
    fn get(&mut self) -> Result<Passphrase, ClientError> {
        if let Some(p) = &self.cached {
            return Ok(p.clone());
        }
        let p = match self.given_passphrase()? {
            Some(p) => p,
            None if std::io::stdin().is_terminal() => Passphrase::new(
                rpassword::prompt_password("Passphrase: ")
                    .map_err(|e| ClientError::io("reading the passphrase", e))?,
            ),
            None => return Err(ClientError::NoPassphrase),
        };
        self.cached = Some(p.clone());
        Ok(p)
    }
}

fn env_passphrase_set() -> bool {
    std::env::var_os("DEADDROP_PASSPHRASE").is_some_and(|p| !p.is_empty())
}

/// The first line of `path` (without its line ending), read whole up to 4 KiB.
fn read_first_line(path: &std::path::Path, what: &str) -> Result<Passphrase, ClientError> {
    let f = std::fs::File::open(path)
        .map_err(|e| ClientError::io(format!("{what}: cannot open it"), e))?;
    let mut buf = Zeroizing::new(Vec::new());
    f.take(MAX_PASSPHRASE_BYTES)
        .read_to_end(&mut buf)
        .map_err(|e| ClientError::io(format!("{what}: cannot read it"), e))?;
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line)
        .map_err(|_| ClientError::Input(format!("{what}: the passphrase is not UTF-8 text")))?;
    if text.is_empty() {
        return Err(ClientError::Input(format!(
            "{what}: the first line is empty"
        )));
    }
    Ok(Passphrase::new(text.to_string()))
}

/// A new passphrase: from `file`, or else the command's passphrase source, or else asked twice
/// on the terminal; at least 8 characters unless `weak_ok`.
fn new_passphrase(
    secrets: &Secrets,
    file: Option<&std::path::Path>,
    weak_ok: bool,
) -> Result<Passphrase, ClientError> {
    let given = match file {
        Some(f) => Some(read_first_line(
            f,
            &format!("--new-passphrase-file {}", f.display()),
        )?),
        None => secrets.given_passphrase()?,
    };
    let pass = match given {
        Some(p) => p,
        None => {
            if !std::io::stdin().is_terminal() {
                return Err(ClientError::NoPassphrase);
            }
            // Every copy of the passphrase is wiped when dropped, the confirmation too.
            let a = Zeroizing::new(
                rpassword::prompt_password("New passphrase: ")
                    .map_err(|e| ClientError::io("reading the passphrase", e))?,
            );
            if a.is_empty() {
                return Err(ClientError::Input(
                    "the passphrase is empty; use --no-passphrase if you really want no passphrase"
                        .into(),
                ));
            }
            let b = Zeroizing::new(
                rpassword::prompt_password("Repeat the passphrase: ")
                    .map_err(|e| ClientError::io("reading the passphrase", e))?,
            );
            if *a != *b {
                return Err(ClientError::Input(
                    "the two passphrases differ; try again".into(),
                ));
            }
            Passphrase::new(a.to_string())
        }
    };
    if !weak_ok && pass.chars() < keystore::MIN_PASSPHRASE_CHARS {
        return Err(ClientError::Input(format!(
            "the passphrase has fewer than {} characters: whoever copies your home can try \
             guesses offline, and short ones fall first. Choose a longer one (several words), or \
             pass --weak-passphrase to keep it",
            keystore::MIN_PASSPHRASE_CHARS
        )));
    }
    Ok(pass)
}

/// The identity's private key, kept inside the encrypted database (homes of older versions
/// sealed it under the passphrase too).
pub(crate) fn unlock(db: &Db, secrets: &mut Secrets) -> anyhow::Result<Identity> {
    let row = db.identity()?;
    let pass = if keystore::is_encrypted(&row.sealed_key) {
        Some(secrets.get()?)
    } else {
        None
    };
    Ok(keystore::open(&row.sealed_key, pass.as_ref())?)
}

pub(crate) fn time_text(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// What `read` (and the demo) put after the name of an incoming message that did not verify.
pub(crate) const UNVERIFIED_MARK: &str = " [unverified: sent before they proved their key]";

/// Prints `v` as one line of JSON on standard output.
pub(crate) fn print_json(v: &impl Serialize) -> anyhow::Result<()> {
    crate::out::json(v)
}

pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// A new message as a line (more, indented, if its text has several), with everything that
/// came from someone else escaped ([`display`]).
pub(crate) fn message_line(m: &NewMessage, zone: &Zone) -> String {
    let from = match &m.contact {
        Some(c) => display::line(c),
        None => format!("request #{} (not a contact; see `deaddrop requests`)", m.id),
    };
    let mark = if m.verified || m.contact.is_none() {
        ""
    } else {
        " [unverified]"
    };
    format!(
        "[{}] {from}{mark}: {}",
        zone.show(m.time_ms),
        display::block(&m.text, TEXT_INDENT)
    )
}

/// Where the second and later lines of a message's text start: under its header, never where
/// a header could.
const TEXT_INDENT: &str = "    ";

/// Runs a client subcommand.
pub fn run(global: Global, opts: ClientOpts, cmd: UserCmd) -> anyhow::Result<()> {
    let home = home_dir(&opts)?;
    let json = global.json;
    let mut secrets = Secrets::new(&opts, json);
    let cmd = match cmd {
        UserCmd::Home(h) => return home_cmd(&home, &opts, json, &mut secrets, h),
        other => other,
    };
    let mut db = Db::open(&home, &mut || secrets.get())?;
    match cmd {
        UserCmd::Home(_) => {
            // Handled above, before the database is opened.
        }
        UserCmd::Config(c) => crate::config::run(&mut db, json, c)?,
        UserCmd::Status { time } => crate::status::run(&mut db, &opts, json, &Zone::new(time))?,
        UserCmd::Outbox(o) => crate::outbox::run(&mut db, &opts, json, o)?,
        UserCmd::Card { qr, qr_png } => crate::cards::card(&db, json, qr, qr_png)?,
        UserCmd::Contact(c) => contact(&mut db, json, c)?,
        UserCmd::Send { name, text } => {
            let text = if text == "-" {
                let mut buf = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut buf)
                    .map_err(|e| ClientError::io("reading the message from standard input", e))?;
                String::from_utf8(buf).map_err(|_| {
                    ClientError::Input("the message on standard input is not UTF-8 text".into())
                })?
            } else {
                text
            };
            let ledger = opts.resolve(&db)?.quick_client()?;
            let mut bar = crate::cards::send_bar(json);
            let report = runtime()?.block_on(ops::send_with_progress(
                &mut db,
                &ledger,
                &name,
                &text,
                &mut |p| bar.show(p),
            ))?;
            drop(bar);
            if json {
                print_json(&SendJson {
                    copies: report.copies,
                    message_id: report.message_id,
                    parts: report.parts,
                    ids: report.ids,
                    queued: report.queued,
                    away: report.away,
                })?;
            } else if report.queued {
                let why = match &report.away {
                    // Says which ledger and why ("the ledger at URL is not reachable (...)").
                    Some(away) if report.unreachable => display::line(away),
                    Some(away) => format!(
                        "the ledger at {} could not take it now ({})",
                        ledger.url(),
                        display::line(away)
                    ),
                    None => format!("the ledger at {} has not taken it yet", ledger.url()),
                };
                println!(
                    "queued: {why}; `deaddrop outbox flush` (or the next sync/watch/chat) sends it"
                );
            } else {
                let ids = match (report.ids.first(), report.ids.last()) {
                    (Some(a), Some(b)) if a != b => format!("ledger ids {a}..{b}"),
                    (Some(a), _) => format!("ledger id {a}"),
                    _ => "nothing new appended".into(),
                };
                println!(
                    "Sent to {}: {} part(s), {ids}",
                    display::line(&name),
                    report.parts
                );
                if report.copies > 1 {
                    println!(
                        "  {} different first messages claimed their address: a copy went to each, all to their \
                         address, so only its owner reads one; their answer will tell which was theirs",
                        report.copies
                    );
                }
            }
        }
        UserCmd::Sync => {
            let me = unlock(&db, &mut secrets)?;
            let ledger = opts.resolve(&db)?.client()?;
            let r = crate::sync_progress::run(&mut db, &ledger, &me, json)?;
            if let (Some(old), Some(new)) = (r.replaced, r.ledger_id) {
                eprintln!("warning: the ledger at {} is not the one this home read there before (ledger {old}; now {new}): its data was wiped, or another ledger answers at that address. It was read from its start; messages the old one held that this home had not read yet are not on it.", ledger.url());
            }
            for p in &r.refused {
                eprintln!(
                    "warning: a part of your message #{} to {} was refused for good and set aside: {}; see `deaddrop outbox`",
                    p.message,
                    display::line(&p.contact),
                    display::line(&p.reason)
                );
            }
            if let Some((a, b)) = r.gap {
                eprintln!("warning: entries {a} to {b} expired on the ledger before this client read them; messages in them are lost. Sync more often than the ledger's lifetime (`curl {}{}`).", ledger.url(), deaddrop_client::api::path::INFO);
            }
            if json {
                print_json(&SyncJson {
                    scanned: r.scanned,
                    messages: r.messages,
                    requests: r.requests,
                    rejected: r.rejected,
                    rejected_check_string: r.rejected_check_string,
                    gap: r.gap.map(|(a, b)| [a, b]),
                    gap_before_identity: r.gap_before_identity.map(|(a, b)| [a, b]),
                    duplicates: r.duplicates,
                    last_id: r.last_id,
                    flushed: r.flushed,
                    queued: r.queued,
                    ledger_id: r.ledger_id.map(|i| i.to_hex()),
                    previous_ledger_id: r.replaced.map(|i| i.to_hex()),
                })?;
            } else {
                if r.flushed > 0 {
                    println!("Sent {} queued part(s) from the outbox", r.flushed);
                }
                if r.queued > 0 {
                    println!(
                        "{} part(s) still wait in the outbox: see `deaddrop outbox`",
                        r.queued
                    );
                }
                println!(
                    "Scanned {} entries: {} new message(s), {} request(s), {} rejected",
                    r.scanned, r.messages, r.requests, r.rejected
                );
                if r.rejected_check_string > 0 {
                    println!(
                        "  {} of them carried a check string you no longer accept: someone with an old card of \
                         yours (or only your address). Give your contacts your current card (`deaddrop card`).",
                        r.rejected_check_string
                    );
                }
                let zone = Zone::new(TimeOpts::default());
                for m in &r.new {
                    println!("  {}", message_line(m, &zone));
                }
            }
        }
        UserCmd::Inbox { time } => {
            let zone = Zone::new(time);
            let rows = db.inbox()?;
            let reqs = db.requests()?;
            if json {
                let mut arr: Vec<InboxRowJson> = rows
                    .iter()
                    .map(|r| InboxRowJson {
                        kind: InboxKind::Conversation,
                        contact: Some(r.contact.clone()),
                        unread: r.unread,
                        last_time: r.last_time_ms,
                        id: None,
                        fingerprint: None,
                    })
                    .collect();
                arr.extend(reqs.iter().map(|q| InboxRowJson {
                    kind: InboxKind::Request,
                    contact: None,
                    id: Some(q.id),
                    fingerprint: Some(q.fingerprint.short()),
                    unread: 1,
                    last_time: Some(q.time_ms),
                }));
                print_json(&arr)?;
            } else {
                if rows.is_empty() {
                    println!(
                        "No contacts yet: add one with `deaddrop contact add CARD --name NAME`."
                    );
                }
                for r in &rows {
                    let last = r
                        .last_time_ms
                        .map(|t| zone.show(t))
                        .unwrap_or_else(|| "no messages".into());
                    println!(
                        "{:<20} {:>4} unread   {}",
                        display::line(&r.contact),
                        r.unread,
                        last
                    );
                }
                if !reqs.is_empty() {
                    println!("{} pending request(s) from people who are not your contacts: see `deaddrop requests`", reqs.len());
                }
            }
        }
        UserCmd::Read {
            name,
            last,
            since,
            time,
        } => {
            let zone = Zone::new(time);
            let window = deaddrop_client::db::Window {
                since_ms: since.map(|s| s.ms(now_ms())),
                last,
            };
            let msgs = db.conversation_window(&name, window)?;
            if json {
                let arr: Vec<MessageJson> = msgs
                    .into_iter()
                    .map(|m| MessageJson {
                        time_iso: time_text(m.time_ms),
                        direction: m.direction,
                        text: m.text,
                        time: m.time_ms,
                        id: m.id,
                        verified: m.verified,
                    })
                    .collect();
                print_json(&arr)?;
            } else {
                if msgs.is_empty() {
                    if window == Default::default() {
                        println!("No messages with {} yet.", display::line(&name));
                    } else {
                        println!("No messages with {} in that window.", display::line(&name));
                    }
                }
                for m in msgs {
                    let who = if m.direction == Direction::In {
                        display::line(&name)
                    } else {
                        "me".to_string()
                    };
                    let mark = if m.verified { "" } else { UNVERIFIED_MARK };
                    let new = if m.was_read { "" } else { "* " };
                    println!(
                        "{new}[{}] {who}{mark}: {}",
                        zone.show(m.time_ms),
                        display::block(&m.text, TEXT_INDENT)
                    );
                }
            }
        }
        UserCmd::Requests { time } => {
            let zone = Zone::new(time);
            let reqs = db.requests()?;
            if json {
                let arr: Vec<RequestJson> = reqs
                    .iter()
                    .map(|q| RequestJson {
                        id: q.id,
                        fingerprint: q.fingerprint.short(),
                        introductions: q.introductions,
                        text: q.text.clone(),
                        time: q.time_ms,
                        unverified: true,
                    })
                    .collect();
                print_json(&arr)?;
            } else {
                if reqs.is_empty() {
                    println!("No pending requests.");
                }
                for q in reqs {
                    let claims = if q.introductions > 1 {
                        format!(
                            "; {} different senders claim this address, accepting writes to each until one answers",
                            q.introductions
                        )
                    } else {
                        String::new()
                    };
                    println!(
                        "#{}  from {}, not a contact, unverified: anyone who knows this address could have sent it{claims}  [{}]: {}",
                        q.id,
                        q.fingerprint.short(),
                        zone.show(q.time_ms),
                        display::block(&q.text, TEXT_INDENT)
                    );
                }
            }
        }
        UserCmd::Accept { id, name } => {
            let c = db.accept_request(id, &name, &CheckKey::generate(&mut SystemRng), now_ms())?;
            if json {
                print_json(&AcceptJson {
                    name: c.name,
                    fingerprint: c.card.address().fingerprint().short(),
                })?;
            } else {
                let name = display::line(&c.name);
                println!(
                    "Accepted: {} is now your contact {name} ({}). Reply with `deaddrop send {name} TEXT`.",
                    id,
                    c.card.address().fingerprint().short(),
                );
            }
        }
        UserCmd::Reject { id } => {
            db.reject_request(id)?;
            if json {
                print_json(&RejectJson { rejected: id })?;
            } else {
                println!("Rejected request {id}; later messages from that sender will be dropped.");
            }
        }
        UserCmd::Watch { time } => {
            let zone = Zone::new(time);
            let me = Arc::new(unlock(&db, &mut secrets)?);
            let ledger = opts.resolve(&db)?.client()?;
            let stop = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            runtime()?.block_on(ops::watch(
                &mut db,
                &ledger,
                me,
                |ev| {
                    let _ = print_event(json, &ledger, &zone, ev);
                },
                stop,
            ))?;
            if !json {
                eprintln!("stopped watching");
            }
        }
        UserCmd::Chat { name, time } => {
            let me = unlock(&db, &mut secrets)?;
            let ledger = opts.resolve(&db)?.client()?;
            crate::chat::run(db, ledger, me, name, Zone::new(time))?;
        }
        UserCmd::CheckString(CheckStringCmd::Rotate) => {
            db.rotate_check(&CheckString::generate(&mut SystemRng), now_ms())?;
            let card = db.my_card(now_ms())?;
            if json {
                print_json(&RotateJson {
                    card: card.to_text(),
                })?;
            } else {
                println!("New check string. Your previous card stays valid for 7 more days. Your contacts learn the new one with your next message to each; hand this card to anyone else:");
                println!("{}", card.to_text());
            }
        }
    }
    Ok(())
}

fn print_event(
    json: bool,
    ledger: &LedgerClient,
    zone: &Zone,
    ev: WatchEvent,
) -> anyhow::Result<()> {
    match (json, ev) {
        // Through a `Value`, which sorts keys: the order watch lines have always had.
        (true, ev) => print_json(&serde_json::to_value(watch_json(ev))?)?,
        (false, WatchEvent::Message(m)) => {
            println!("{}", message_line(&m, zone));
            std::io::stdout().flush()?;
        }
        (false, WatchEvent::Listening { last_id }) => eprintln!("watching {} (after id {last_id}); Ctrl-C to stop", ledger.url()),
        (false, WatchEvent::Gap(a, b)) => eprintln!("warning: entries {a} to {b} expired before this client read them; messages in them are lost"),
        (false, WatchEvent::Reconnecting(d, why)) => eprintln!("{}; reconnecting in {:.1} s", display::line(&why), d.as_secs_f64()),
    }
    std::io::stdout().flush()?;
    Ok(())
}

fn watch_json(ev: WatchEvent) -> WatchEventJson {
    match ev {
        WatchEvent::Message(m) => WatchEventJson::Message {
            contact: m.contact,
            id: m.id,
            text: m.text,
            time: m.time_ms,
            verified: m.verified,
        },
        WatchEvent::Listening { last_id } => WatchEventJson::Listening { last_id },
        WatchEvent::Gap(a, b) => WatchEventJson::Gap { gap: [a, b] },
        WatchEvent::Reconnecting(d, why) => WatchEventJson::Reconnecting {
            in_ms: d.as_millis() as u64,
            why,
        },
    }
}

fn contact(db: &mut Db, json: bool, cmd: ContactCmd) -> anyhow::Result<()> {
    match cmd {
        ContactCmd::Add {
            card,
            file,
            qr_image,
            name,
        } => {
            let name = name.trim().to_string();
            if name.is_empty() {
                return Err(ClientError::Input("--name must not be empty".into()).into());
            }
            let source = match (card, file, qr_image) {
                (_, _, Some(img)) => CardSource::QrImage(img),
                (_, Some(f), _) => CardSource::File(f),
                (Some(text), _, _) => CardSource::Arg(text),
                // clap requires one of the three.
                (None, None, None) => {
                    return Err(ClientError::Input(
                        "give the card, `-` for standard input, --file FILE or --qr-image FILE"
                            .into(),
                    )
                    .into())
                }
            };
            let card = card_input::read(source)?;
            let c = db.add_contact(&name, &card, &CheckKey::generate(&mut SystemRng), now_ms())?;
            let fp = c.card.address().fingerprint().short();
            if json {
                print_json(&ContactAddedJson {
                    suite: c.card.address().suite().name().to_string(),
                    name: c.name,
                    fingerprint: fp,
                })?;
            } else {
                let name = display::line(&c.name);
                println!("Added {name} ({fp}). Compare this fingerprint with them in person: `deaddrop contact show {name}`");
            }
        }
        ContactCmd::Rename { old, new } => {
            db.rename_contact(&old, &new)?;
            let new = new.trim().to_string();
            if json {
                print_json(&ContactRenamedJson { from: old, to: new })?;
            } else {
                println!(
                    "Renamed {} to {}.",
                    display::line(&old),
                    display::line(&new)
                );
            }
        }
        ContactCmd::Verify {
            name,
            fingerprint,
            undo,
        } => crate::cards::verify(db, json, &name, fingerprint.as_deref(), undo)?,
        ContactCmd::Update { card } => {
            let card = ContactCard::parse(&card_input::squeeze(&card))
                .map_err(|e| ClientError::Card(e.to_string()))?;
            let (c, changed) = db.update_contact_card(&card)?;
            let fp = c.card.address().fingerprint().short();
            if json {
                print_json(&ContactUpdatedJson {
                    changed,
                    fingerprint: fp,
                    name: c.name,
                })?;
            } else if changed {
                println!("Updated the card of {} ({fp}).", display::line(&c.name));
            } else {
                println!(
                    "{} ({fp}) already has that card; nothing changed.",
                    display::line(&c.name)
                );
            }
        }
        ContactCmd::List => {
            let cs = db.contacts()?;
            if json {
                let arr = cs
                    .iter()
                    .map(|c| {
                        Ok(ContactJson {
                            name: c.name.clone(),
                            fingerprint: c.card.address().fingerprint().short(),
                            verified: c.confirmed,
                            verified_in_person: db.verified_in_person(&c.name)?.is_some(),
                            card_name: c.card.name().map(str::to_string),
                        })
                    })
                    .collect::<Result<Vec<_>, ClientError>>()?;
                print_json(&arr)?;
            } else {
                if cs.is_empty() {
                    println!(
                        "No contacts yet: add one with `deaddrop contact add CARD --name NAME`."
                    );
                }
                for c in cs {
                    let state = crate::cards::states(c.confirmed, db.verified_in_person(&c.name)?);
                    println!(
                        "{:<20} {}  {state}",
                        display::line(&c.name),
                        c.card.address().fingerprint().short()
                    );
                }
            }
        }
        ContactCmd::Remove { name } => {
            db.remove_contact(&name)?;
            if json {
                print_json(&ContactRemovedJson { removed: name })?;
            } else {
                println!(
                    "Removed {} and your conversation with them.",
                    display::line(&name)
                );
            }
        }
        ContactCmd::Show { name } => {
            let c = db.contact(&name)?;
            let fp = c.card.address().fingerprint();
            let introductions = db.introductions(&c)?;
            let in_person = db.verified_in_person(&c.name)?;
            if json {
                print_json(&ContactShowJson {
                    name: c.name,
                    fingerprint: fp.short(),
                    fingerprint_hex: fp.to_hex(),
                    introductions,
                    suite: c.card.address().suite().name().to_string(),
                    verified: c.confirmed,
                    verified_in_person: in_person.is_some(),
                    verified_in_person_at: in_person.map(|v| v.at_ms),
                    card: c.card.to_text(),
                    card_name: c.card.name().map(str::to_string),
                })?;
            } else {
                println!("{}", display::line(&c.name));
                println!(
                    "  fingerprint  {}  (compare in person: they see it with `deaddrop card`)",
                    fp.short()
                );
                println!("  full         {}", fp.to_hex());
                println!("  suite        {}", c.card.address().suite());
                println!(
                    "  reply        {}",
                    if c.confirmed {
                        "confirmed by a reply: their messages prove they hold the key of this card"
                    } else {
                        "not yet confirmed by a reply: confirmed once they reply to a message of yours"
                    }
                );
                let zone = Zone::new(TimeOpts::default());
                match in_person {
                    Some(v) => println!(
                        "  in person    fingerprint verified in person ({}): this card is theirs",
                        zone.show(v.at_ms)
                    ),
                    None => println!(
                        "  in person    fingerprint not verified in person: compare it with them, then `deaddrop contact verify {}`",
                        display::line(&c.name)
                    ),
                }
                if introductions > 1 {
                    println!(
                        "  claimed by   {introductions} different first messages: yours go to each until one answers"
                    );
                }
                if let Some(n) = c.card.name() {
                    println!(
                        "  card name    {}  (chosen by them: anyone can choose any name)",
                        display::line(n)
                    );
                }
            }
        }
    }
    Ok(())
}

/// `init`, `unlock`, `lock`, `passphrase change`: the commands that make or protect a home.
fn home_cmd(
    home: &std::path::Path,
    opts: &ClientOpts,
    json: bool,
    secrets: &mut Secrets,
    cmd: HomeCmd,
) -> anyhow::Result<()> {
    match cmd {
        HomeCmd::Init {
            name,
            suite,
            no_passphrase,
            weak_passphrase,
        } => {
            // Everything is checked and asked before anything is written: a failed `init`
            // leaves no home behind.
            let suite: Suite = suite
                .parse()
                .map_err(|e| ClientError::Input(format!("--suite: {e}")))?;
            if let Some(n) = &name {
                if n.chars().any(display::is_unsafe) {
                    return Err(ClientError::Input(
                        "--name may not hold control or bidi characters: others see it in their terminal"
                            .into(),
                    )
                    .into());
                }
                if n.len() > deaddrop_proto::card::MAX_NAME_LEN {
                    return Err(ClientError::Input(format!(
                        "--name may be at most {} bytes",
                        deaddrop_proto::card::MAX_NAME_LEN
                    ))
                    .into());
                }
            }
            // What the command line (or environment) names is kept in the home: checked first.
            let settings = crate::config::given_settings(opts)?;
            if home.join(deaddrop_client::home::KEY_FILE).exists() {
                return Err(ClientError::IdentityExists {
                    home: home.display().to_string(),
                }
                .into());
            }
            let pass = if no_passphrase {
                None
            } else {
                Some(new_passphrase(secrets, None, weak_passphrase)?)
            };
            let id = Identity::generate(suite, &mut SystemRng).map_err(ClientError::from)?;
            let mut db = Db::create(home, pass.as_ref())?;
            if pass.is_none() {
                eprintln!("warning: this home has NO passphrase: anyone who can read {} can read your messages and contacts and use your identity", home.display());
            }
            // The private key is stored inside the encrypted database.
            db.create_identity(
                id.address(),
                name.as_deref(),
                &keystore::seal(&id, None)?,
                &CheckString::generate(&mut SystemRng),
                now_ms(),
            )?;
            for (key, value) in &settings {
                db.set_setting(*key, value)?;
            }
            let card = db.my_card(now_ms())?;
            if json {
                print_json(&InitJson {
                    suite: suite.name().to_string(),
                    fingerprint: id.address().fingerprint().short(),
                    card: card.to_text(),
                    home: home.display().to_string(),
                    encrypted: pass.is_some(),
                })?;
            } else {
                println!("Created your {} identity in {}", suite, home.display());
                println!("Fingerprint: {}", id.address().fingerprint().short());
                println!("Your card (give it to the people who should write to you; `deaddrop card` prints it again):");
                println!("{}", card.to_text());
                for (key, value) in &settings {
                    if *key == Setting::Ledger {
                        println!("This home uses the ledger at {value} (`deaddrop config set ledger URL` changes it)");
                    }
                }
            }
        }
        HomeCmd::Unlock { timeout } => {
            let db = Db::open(home, &mut || secrets.get())?;
            let kf = deaddrop_client::home::KeyFile::read(home)?;
            if kf.is_some_and(|k| !k.needs_passphrase()) {
                return Err(ClientError::Input(format!(
                    "{} has no passphrase: there is nothing to unlock (set one with `deaddrop passphrase change`)",
                    home.display()
                ))
                .into());
            }
            deaddrop_client::keyring::store(db.home_id(), db.key(), timeout)?;
            let secs = timeout.as_secs().max(1);
            if json {
                print_json(&UnlockJson {
                    home: home.display().to_string(),
                    seconds: secs,
                })?;
            } else {
                println!(
                    "Unlocked {} for {} in this login session's kernel keyring; `deaddrop lock` forgets the key sooner",
                    home.display(),
                    humantime::format_duration(Duration::from_secs(secs))
                );
            }
        }
        HomeCmd::Lock => {
            let kf = deaddrop_client::home::KeyFile::read(home)?.ok_or_else(|| {
                ClientError::NoIdentity {
                    home: home.display().to_string(),
                }
            })?;
            let was = deaddrop_client::keyring::forget(&kf.id_hex())?;
            if json {
                print_json(&LockJson { locked: was })?;
            } else if was {
                println!(
                    "Locked: commands on {} ask for the passphrase again",
                    home.display()
                );
            } else {
                println!("{} was not unlocked", home.display());
            }
        }
        HomeCmd::Passphrase(PassphraseCmd::Change {
            new_passphrase_file,
            no_passphrase,
            weak_passphrase,
        }) => {
            let mut old = || secrets.get();
            // Ask for the current passphrase first, then the new one.
            let db = Db::open(home, &mut old)?;
            drop(db);
            let new = if no_passphrase {
                None
            } else if new_passphrase_file.is_none() && secrets.given() {
                return Err(ClientError::Input(
                    "give the new passphrase with --new-passphrase-file FILE (the other sources carry the current one)".into(),
                )
                .into());
            } else {
                // Nothing else carries a passphrase here: the file, or the terminal.
                let none = Secrets {
                    file: None,
                    fd: None,
                    cached: None,
                    quiet: true,
                };
                Some(new_passphrase(
                    &none,
                    new_passphrase_file.as_deref(),
                    weak_passphrase,
                )?)
            };
            Db::change_passphrase(home, &mut || secrets.get(), new.as_ref())?;
            if json {
                print_json(&PassphraseJson {
                    encrypted: new.is_some(),
                })?;
            } else if new.is_some() {
                println!("Passphrase changed and the database re-keyed; run `deaddrop unlock` again if you use it");
            } else {
                eprintln!("warning: this home has NO passphrase now: anyone who can read {} can read your messages and contacts and use your identity", home.display());
                println!("Passphrase removed and the database re-keyed");
            }
        }
    }
    Ok(())
}

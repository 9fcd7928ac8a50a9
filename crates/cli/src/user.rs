//! The client subcommands: `init`, `card`, `contact`, `send`, `sync`, `inbox`, `read`,
//! `requests`, `accept`, `reject`, `watch`, `check-string`. Logic lives in `deaddrop-client`;
//! this module parses arguments, asks for passphrases and prints.

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
    AcceptJson, CardJson, ContactAddedJson, ContactJson, ContactRemovedJson, ContactShowJson,
    ContactUpdatedJson, InboxKind, InboxRowJson, InitJson, MessageJson, RejectJson, RequestJson,
    RotateJson, SendJson, SyncJson, WatchEventJson,
};
use deaddrop_client::LedgerClient;
use deaddrop_client::{ClientError, Direction, RequestId};
use deaddrop_proto::rng::SystemRng;
use deaddrop_proto::{CheckKey, CheckString, ContactCard, Identity, Suite};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::Global;

/// Options of every client subcommand.
#[derive(Debug, Args, Clone)]
pub struct ClientOpts {
    /// Where this identity's database lives [default: the platform data directory, e.g.
    /// ~/.local/share/deaddrop].
    #[arg(long, global = true, env = "DEADDROP_HOME")]
    pub home: Option<PathBuf>,
    /// The ledger to talk to.
    #[arg(
        long,
        global = true,
        env = "DEADDROP_LEDGER",
        default_value = "http://127.0.0.1:8470"
    )]
    pub ledger: String,
    /// A SOCKS5 proxy for every network call, e.g. socks5h://127.0.0.1:9050 for Tor.
    #[arg(long, global = true, env = "DEADDROP_PROXY")]
    pub proxy: Option<String>,
}

/// `deaddrop contact ...`.
#[derive(Debug, Subcommand)]
pub enum ContactCmd {
    /// Add someone from their card.
    Add {
        /// Their card (`deaddrop-card-v1:...`), as they gave it to you.
        card: String,
        /// The name you will use for them.
        #[arg(long)]
        name: String,
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

/// The client subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCmd {
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
    /// Print your contact card: give it to the people who should be able to write to you.
    Card {
        /// Also draw it as a QR code in the terminal.
        #[arg(long)]
        qr: bool,
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
    Inbox,
    /// Show the conversation with a contact, oldest first.
    Read {
        /// The contact's name.
        name: String,
    },
    /// First messages from people who are not your contacts.
    Requests,
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
    Watch,
    /// Manage the check string on your card.
    #[command(subcommand)]
    CheckString(CheckStringCmd),
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

fn passphrase_from_env() -> Option<Passphrase> {
    std::env::var("DEADDROP_PASSPHRASE")
        .ok()
        .filter(|p| !p.is_empty())
        .map(Passphrase::new)
}

fn new_passphrase(weak_ok: bool) -> Result<Passphrase, ClientError> {
    let pass = match passphrase_from_env() {
        Some(p) => p,
        None => {
            if !std::io::stdin().is_terminal() {
                return Err(ClientError::NoPassphrase);
            }
            // Every copy of the passphrase is wiped when dropped, the confirmation too.
            let a = Zeroizing::new(
                rpassword::prompt_password("Passphrase for your key: ")
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
                    "the two passphrases differ; run init again".into(),
                ));
            }
            Passphrase::new(a.to_string())
        }
    };
    if !weak_ok && pass.chars() < keystore::MIN_PASSPHRASE_CHARS {
        return Err(ClientError::Input(format!(
            "the passphrase has fewer than {} characters: whoever copies your key file can try \
             guesses offline, and short ones fall first. Choose a longer one (several words), or \
             pass --weak-passphrase to keep it",
            keystore::MIN_PASSPHRASE_CHARS
        )));
    }
    Ok(pass)
}

fn unlock(db: &Db) -> anyhow::Result<Identity> {
    let row = db.identity()?;
    let pass = if keystore::is_encrypted(&row.sealed_key) {
        match passphrase_from_env() {
            Some(p) => Some(p),
            None if std::io::stdin().is_terminal() => Some(Passphrase::new(
                rpassword::prompt_password("Passphrase: ")
                    .map_err(|e| ClientError::io("reading the passphrase", e))?,
            )),
            None => return Err(ClientError::NoPassphrase.into()),
        }
    } else {
        None
    };
    Ok(keystore::open(&row.sealed_key, pass.as_ref())?)
}

fn time_text(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

fn print_json(v: &impl Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// A new message as a line (more, indented, if its text has several), with everything that
/// came from someone else escaped ([`display`]).
fn message_line(m: &NewMessage) -> String {
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
        time_text(m.time_ms),
        display::block(&m.text, TEXT_INDENT)
    )
}

/// Where the second and later lines of a message's text start: under its header, never where
/// a header could.
const TEXT_INDENT: &str = "    ";

/// Runs a client subcommand.
pub fn run(global: Global, opts: ClientOpts, cmd: UserCmd) -> anyhow::Result<()> {
    let home = home_dir(&opts)?;
    // Only `init` creates a home: a mistyped --home should say so, not leave an empty one.
    if !matches!(cmd, UserCmd::Init { .. }) && !home.join(deaddrop_client::db::DB_FILE).exists() {
        return Err(ClientError::NoIdentity {
            home: home.display().to_string(),
        }
        .into());
    }
    let mut db = Db::open(&home)?;
    let json = global.json;
    match cmd {
        UserCmd::Init {
            name,
            suite,
            no_passphrase,
            weak_passphrase,
        } => {
            let suite: Suite = suite
                .parse()
                .map_err(|e| ClientError::Input(format!("--suite: {e}")))?;
            if db.has_identity()? {
                return Err(ClientError::IdentityExists {
                    home: home.display().to_string(),
                }
                .into());
            }
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
            let pass = if no_passphrase {
                eprintln!("warning: your private key is stored UNENCRYPTED in {}; anyone who can read that file can read your messages", home.display());
                None
            } else {
                Some(new_passphrase(weak_passphrase)?)
            };
            let id = Identity::generate(suite, &mut SystemRng).map_err(ClientError::from)?;
            let sealed = keystore::seal(&id, pass.as_ref())?;
            db.create_identity(
                id.address(),
                name.as_deref(),
                &sealed,
                &CheckString::generate(&mut SystemRng),
                now_ms(),
            )?;
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
            }
        }
        UserCmd::Card { qr } => {
            let card = db.my_card(now_ms())?;
            if json {
                print_json(&CardJson {
                    card: card.to_text(),
                    fingerprint: card.address().fingerprint().short(),
                    suite: card.address().suite().name().to_string(),
                    name: card.name().map(str::to_string),
                })?;
            } else {
                println!("{}", card.to_text());
                if qr {
                    let code = qrcode::QrCode::with_error_correction_level(
                        card.to_text().as_bytes(),
                        qrcode::EcLevel::L,
                    )
                    .map_err(|e| {
                        ClientError::Input(format!("the card does not fit a QR code: {e}"))
                    })?;
                    let art = code
                        .render::<qrcode::render::unicode::Dense1x2>()
                        .quiet_zone(true)
                        .build();
                    println!("{art}");
                }
            }
        }
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
            let ledger = deaddrop_client::connect(&opts.ledger, opts.proxy.as_deref())?;
            let report = runtime()?.block_on(ops::send(&mut db, &ledger, &name, &text))?;
            if json {
                print_json(&SendJson {
                    copies: report.copies,
                    message_id: report.message_id,
                    parts: report.parts,
                    ids: report.ids,
                })?;
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
            let me = unlock(&db)?;
            let ledger = deaddrop_client::connect(&opts.ledger, opts.proxy.as_deref())?;
            let r = runtime()?.block_on(ops::sync(&mut db, &ledger, &me, |_| {}))?;
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
                    duplicates: r.duplicates,
                    last_id: r.last_id,
                })?;
            } else {
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
                for m in &r.new {
                    println!("  {}", message_line(m));
                }
            }
        }
        UserCmd::Inbox => {
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
                        .map(time_text)
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
        UserCmd::Read { name } => {
            let msgs = db.conversation(&name)?;
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
                    println!("No messages with {} yet.", display::line(&name));
                }
                for m in msgs {
                    let who = if m.direction == Direction::In {
                        display::line(&name)
                    } else {
                        "me".to_string()
                    };
                    let mark = if m.verified {
                        ""
                    } else {
                        " [unverified: sent before they proved their key]"
                    };
                    let new = if m.was_read { "" } else { "* " };
                    println!(
                        "{new}[{}] {who}{mark}: {}",
                        time_text(m.time_ms),
                        display::block(&m.text, TEXT_INDENT)
                    );
                }
            }
        }
        UserCmd::Requests => {
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
                        time_text(q.time_ms),
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
        UserCmd::Watch => {
            let me = Arc::new(unlock(&db)?);
            let ledger = deaddrop_client::connect(&opts.ledger, opts.proxy.as_deref())?;
            let stop = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            runtime()?.block_on(ops::watch(
                &mut db,
                &ledger,
                me,
                |ev| {
                    let _ = print_event(json, &ledger, ev);
                },
                stop,
            ))?;
            if !json {
                eprintln!("stopped watching");
            }
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

fn print_event(json: bool, ledger: &LedgerClient, ev: WatchEvent) -> anyhow::Result<()> {
    match (json, ev) {
        // Through a `Value`, which sorts keys: the order watch lines have always had.
        (true, ev) => print_json(&serde_json::to_value(watch_json(ev))?)?,
        (false, WatchEvent::Message(m)) => {
            println!("{}", message_line(&m));
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
        ContactCmd::Add { card, name } => {
            let name = name.trim().to_string();
            if name.is_empty() {
                return Err(ClientError::Input("--name must not be empty".into()).into());
            }
            let card = ContactCard::parse(&card).map_err(|e| ClientError::Card(e.to_string()))?;
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
        ContactCmd::Update { card } => {
            let card = ContactCard::parse(&card).map_err(|e| ClientError::Card(e.to_string()))?;
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
                let arr: Vec<ContactJson> = cs
                    .iter()
                    .map(|c| ContactJson {
                        name: c.name.clone(),
                        fingerprint: c.card.address().fingerprint().short(),
                        verified: c.confirmed,
                        card_name: c.card.name().map(str::to_string),
                    })
                    .collect();
                print_json(&arr)?;
            } else {
                if cs.is_empty() {
                    println!(
                        "No contacts yet: add one with `deaddrop contact add CARD --name NAME`."
                    );
                }
                for c in cs {
                    let state = if c.confirmed {
                        "verified"
                    } else {
                        "not yet verified"
                    };
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
            if json {
                print_json(&ContactShowJson {
                    name: c.name,
                    fingerprint: fp.short(),
                    fingerprint_hex: fp.to_hex(),
                    introductions,
                    suite: c.card.address().suite().name().to_string(),
                    verified: c.confirmed,
                    card: c.card.to_text(),
                    card_name: c.card.name().map(str::to_string),
                })?;
            } else {
                println!("{}", display::line(&c.name));
                println!("  fingerprint  {}  (compare in person: they see it with `deaddrop init` or `deaddrop card --json`)", fp.short());
                println!("  full         {}", fp.to_hex());
                println!("  suite        {}", c.card.address().suite());
                println!(
                    "  state        {}",
                    if c.confirmed {
                        "verified: their messages prove they hold the key"
                    } else {
                        "not yet verified: verified once they reply to a message of yours"
                    }
                );
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

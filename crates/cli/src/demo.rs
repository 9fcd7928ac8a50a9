//! `deaddrop demo`: the whole system in one command, with nothing set up. A real ledger runs in
//! this process on a loopback port (in memory), three throwaway identities live in a temporary
//! directory, and the same library code the commands run exchanges messages both ways and a
//! first-contact request. Each step prints the command a person would type and what they see.
//! Everything is deleted when the demo ends.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use deaddrop_client::db::Db;
use deaddrop_client::ops::{self, now_ms};
use deaddrop_client::{display, keystore, ClientError, Direction, LedgerClient};
use deaddrop_ledger::store::memory::MemoryStore;
use deaddrop_ledger::{Config, Ledger};
use deaddrop_proto::rng::SystemRng;
use deaddrop_proto::{CheckKey, CheckString, ContactCard, Identity, Suite};
use serde::Serialize;

use crate::Global;

/// `deaddrop demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The suite of the demo's ledger and identities: xwing (post-quantum hybrid) or rsa-oaep.
    #[arg(long, default_value = "xwing")]
    suite: String,
}

/// One thing a person did, and what they saw.
#[derive(Debug, Serialize)]
struct Step {
    /// Who: alice, bob or carol.
    who: &'static str,
    /// The command they would type.
    command: String,
    /// What it printed, line by line.
    output: Vec<String>,
}

/// The `--json` document: the ledger's URL and every step.
#[derive(Debug, Serialize)]
struct DemoJson {
    ledger: String,
    suite: String,
    steps: Vec<Step>,
    entries_on_ledger: u64,
}

/// One throwaway person: a home in the demo's temporary directory.
struct Person {
    name: &'static str,
    db: Db,
    me: Identity,
}

impl Person {
    fn create(dir: &Path, name: &'static str, suite: Suite) -> anyhow::Result<Person> {
        let home: PathBuf = dir.join(name);
        // A throwaway home deleted at the end: no passphrase to ask for.
        let mut db = Db::create(&home, None)?;
        let me = Identity::generate(suite, &mut SystemRng).map_err(ClientError::from)?;
        db.create_identity(
            me.address(),
            Some(name),
            &keystore::seal(&me, None)?,
            &CheckString::generate(&mut SystemRng),
            now_ms(),
        )?;
        Ok(Person { name, db, me })
    }

    fn card(&self) -> anyhow::Result<ContactCard> {
        Ok(self.db.my_card(now_ms())?)
    }
}

/// What the demo prints as it goes (or keeps for `--json`).
struct Transcript {
    json: bool,
    steps: Vec<Step>,
}

impl Transcript {
    fn heading(&self, text: &str) {
        if !self.json {
            println!(
                "\n── {text} {}",
                "─".repeat(66usize.saturating_sub(text.chars().count()))
            );
        }
    }

    fn step(&mut self, who: &'static str, command: String, output: Vec<String>) {
        if !self.json {
            println!("{who:>5} $ {command}");
            for line in &output {
                println!("        {line}");
            }
        }
        self.steps.push(Step {
            who,
            command,
            output,
        });
    }
}

/// Runs the demo.
pub fn run(global: Global, args: DemoArgs) -> anyhow::Result<()> {
    let suite: Suite = args
        .suite
        .parse()
        .map_err(|e| ClientError::Input(format!("--suite: {e}")))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(demo(global, suite))
}

async fn demo(global: Global, suite: Suite) -> anyhow::Result<()> {
    let config = Config {
        suite,
        ..Config::default()
    };
    let ledger = Ledger::new(config, Arc::new(MemoryStore::new()))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen on a loopback port for the demo's ledger")?;
    let url = format!("http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(deaddrop_ledger::run(listener, ledger.clone(), async move {
        let _ = stop_rx.await;
    }));
    let dir = tempfile::Builder::new()
        .prefix("deaddrop-demo-")
        .tempdir()
        .context("cannot make a temporary directory for the demo's homes")?;
    let client = deaddrop_client::connect(&url, None)?;
    let mut t = Transcript {
        json: global.json,
        steps: Vec::new(),
    };
    let result = conversation(&mut t, dir.path(), &client, suite).await;
    let held = ledger.info().entries;
    let _ = stop_tx.send(());
    let _ = server.await;
    result?;
    if global.json {
        crate::user::print_json(&DemoJson {
            ledger: url,
            suite: suite.name().to_string(),
            steps: t.steps,
            entries_on_ledger: held,
        })?;
    } else {
        println!(
            "\nThe ledger held {held} entries of {} bytes each. None names its sender or its \
             recipient: every client downloads them all and opens only its own.",
            suite.layout().entry_len
        );
        println!("The demo's ledger and homes are gone now. To start for real:");
        println!("  deaddrop serve                      # a ledger on http://127.0.0.1:8470");
        println!("  deaddrop init --name YOU            # your identity (asks for a passphrase)");
        println!("  deaddrop card                       # your card: give it to the people who should write to you");
    }
    Ok(())
}

/// The story: alice and bob swap cards and talk; carol, who only has alice's card, writes to
/// her first; alice accepts and answers.
async fn conversation(
    t: &mut Transcript,
    dir: &Path,
    ledger: &LedgerClient,
    suite: Suite,
) -> anyhow::Result<()> {
    if !t.json {
        println!(
            "deaddrop demo: a real ledger on {} (in memory, in this process) and three new {} \
             identities in {} — all deleted at the end. Each step shows the command a person \
             would type and what they see.",
            ledger.url(),
            suite,
            dir.display()
        );
    }
    let mut alice = Person::create(dir, "alice", suite)?;
    let mut bob = Person::create(dir, "bob", suite)?;
    let mut carol = Person::create(dir, "carol", suite)?;

    t.heading("1. alice and bob swap cards (in person, or over any channel)");
    let (a_card, b_card) = (alice.card()?, bob.card()?);
    for (p, card) in [(&alice, &a_card), (&bob, &b_card)] {
        let text = card.to_text();
        t.step(
            p.name,
            "deaddrop card".into(),
            vec![
                format!(
                    "{}… ({} characters)",
                    text.chars().take(40).collect::<String>(),
                    text.len()
                ),
                format!(
                    "fingerprint {} (compare it in person)",
                    card.address().fingerprint().short()
                ),
            ],
        );
    }
    add_contact(t, &mut alice, &b_card, "bob")?;
    add_contact(t, &mut bob, &a_card, "alice")?;

    t.heading("2. alice writes to bob; only bob can open it");
    send(t, &mut alice, ledger, "bob", "Hi Bob! Lunch at noon?").await?;
    sync(t, &mut bob, ledger).await?;
    read(t, &mut bob, "alice")?;

    t.heading("3. bob answers; his reply proves to alice that he holds his key");
    send(
        t,
        &mut bob,
        ledger,
        "alice",
        "Noon works. See you at the usual place.",
    )
    .await?;
    sync(t, &mut alice, ledger).await?;
    read(t, &mut alice, "bob")?;

    t.heading("4. carol, who only has alice's card, writes to her first");
    add_contact(t, &mut carol, &a_card, "alice")?;
    send(
        t,
        &mut carol,
        ledger,
        "alice",
        "Hello Alice, Bob gave me your card. Carol",
    )
    .await?;
    sync(t, &mut alice, ledger).await?;
    let reqs = alice.db.requests()?;
    let mut out = Vec::new();
    for q in &reqs {
        out.push(format!(
            "#{} from {}, not a contact, unverified: {}",
            q.id,
            q.fingerprint.short(),
            display::line(&q.text)
        ));
    }
    t.step("alice", "deaddrop requests".into(), out);
    let Some(q) = reqs.first() else {
        anyhow::bail!("carol's first message did not reach alice as a request");
    };
    let c =
        alice
            .db
            .accept_request(q.id, "carol", &CheckKey::generate(&mut SystemRng), now_ms())?;
    t.step(
        "alice",
        format!("deaddrop accept {} --name carol", q.id),
        vec![format!(
            "carol is now a contact ({})",
            c.card.address().fingerprint().short()
        )],
    );
    send(t, &mut alice, ledger, "carol", "Welcome, Carol!").await?;
    sync(t, &mut carol, ledger).await?;
    read(t, &mut carol, "alice")?;
    Ok(())
}

fn add_contact(
    t: &mut Transcript,
    p: &mut Person,
    card: &ContactCard,
    name: &str,
) -> anyhow::Result<()> {
    let c =
        p.db.add_contact(name, card, &CheckKey::generate(&mut SystemRng), now_ms())?;
    t.step(
        p.name,
        format!("deaddrop contact add CARD --name {name}"),
        vec![format!(
            "added {name} ({})",
            c.card.address().fingerprint().short()
        )],
    );
    Ok(())
}

async fn send(
    t: &mut Transcript,
    p: &mut Person,
    ledger: &LedgerClient,
    to: &str,
    text: &str,
) -> anyhow::Result<()> {
    let r = ops::send(&mut p.db, ledger, to, text).await?;
    let ids = r
        .ids
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    t.step(
        p.name,
        format!("deaddrop send {to} {text:?}"),
        vec![format!(
            "{} entry appended (ledger id {ids}): to everyone but {to}, random bytes",
            r.parts
        )],
    );
    Ok(())
}

async fn sync(t: &mut Transcript, p: &mut Person, ledger: &LedgerClient) -> anyhow::Result<()> {
    let r = ops::sync(&mut p.db, ledger, &p.me, |_| {}).await?;
    t.step(
        p.name,
        "deaddrop sync".into(),
        vec![format!(
            "scanned {} entries: {} new message(s), {} request(s)",
            r.scanned, r.messages, r.requests
        )],
    );
    Ok(())
}

fn read(t: &mut Transcript, p: &mut Person, with: &str) -> anyhow::Result<()> {
    let msgs = p.db.conversation(with)?;
    let out = msgs
        .iter()
        .map(|m| {
            let who = if m.direction == Direction::In {
                with
            } else {
                "me"
            };
            let mark = if m.verified {
                ""
            } else {
                crate::user::UNVERIFIED_MARK
            };
            format!("{who}{mark}: {}", display::line(&m.text))
        })
        .collect();
    t.step(p.name, format!("deaddrop read {with}"), out);
    Ok(())
}

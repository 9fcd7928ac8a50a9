//! `deaddrop status`: the home at a glance. The ledger is asked once, with a short timeout
//! ([`deaddrop_client::ops::QUICK_CONNECT`]), so the command answers at once when it is down;
//! everything else comes from the home.

use std::collections::BTreeMap;

use deaddrop_client::db::Db;
use deaddrop_client::display;
use deaddrop_client::home::KeyFile;
use deaddrop_client::output::{StatusJson, StatusLedgerJson, StatusOutboxJson, StatusUnreadJson};
use deaddrop_client::ClientError;

use crate::config::source_text;
use crate::user::{print_json, runtime, ClientOpts};
use crate::when::Zone;

/// Runs `deaddrop status`.
pub fn run(db: &mut Db, opts: &ClientOpts, json: bool, zone: &Zone) -> anyhow::Result<()> {
    let me = db.identity()?;
    let suite = me.address.suite();
    let encrypted = KeyFile::read(db.home())?.is_some_and(|k| k.needs_passphrase());
    let resolved = opts.resolve(db)?;
    let asked = match resolved.glance_client() {
        Ok(client) => runtime()?
            .block_on(client.info())
            .map_err(ClientError::from),
        Err(e) => Err(e),
    };
    let (info, error) = match asked {
        Ok(info) if info.suite != suite.name() => {
            let e = ClientError::SuiteMismatch {
                url: resolved.ledger.clone(),
                ledger: info.suite.clone(),
                mine: suite.name().into(),
            };
            (Some(info), Some(e.to_string()))
        }
        Ok(info) => (Some(info), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let (ledger_id, synced) = db.known_position(
        &deaddrop_client::api::client::ledger_url(&resolved.ledger).unwrap_or_default(),
        info.as_ref().and_then(|i| i.ledger_id),
    )?;
    let newest = info.as_ref().and_then(|i| i.newest_id).map(|i| i.get());
    let behind = info
        .as_ref()
        .map(|_| newest.unwrap_or(0).saturating_sub(synced));
    let contacts: BTreeMap<String, u64> = db
        .inbox()?
        .into_iter()
        .map(|r| (r.contact, r.unread))
        .collect();
    let total: u64 = contacts.values().sum();
    let requests = db.requests()?.len() as u64;
    let queued = db.queued_messages()?;
    let outbox = StatusOutboxJson {
        messages: queued.len() as u64,
        oldest: queued.iter().map(|q| q.since_ms).min(),
        parts: queued.iter().map(|q| q.parts).sum(),
        refused: queued.iter().map(|q| q.refused).sum(),
    };
    let status = StatusJson {
        behind,
        encrypted,
        fingerprint: me.address.fingerprint().short(),
        home: db.home().display().to_string(),
        ledger: StatusLedgerJson {
            error,
            last_id: newest,
            ledger_id: ledger_id.map(|i| i.to_hex()),
            lifetime_s: info.as_ref().map(|i| i.lifetime_s),
            reachable: info.is_some(),
            source: resolved.source.name().into(),
            url: resolved.ledger.clone(),
        },
        outbox,
        requests,
        suite: suite.name().into(),
        synced_id: synced,
        unread: StatusUnreadJson { contacts, total },
    };
    if json {
        return print_json(&status);
    }
    print_human(&status, resolved.source, zone);
    Ok(())
}

fn print_human(s: &StatusJson, source: deaddrop_client::settings::Source, zone: &Zone) {
    let lock = if s.encrypted {
        "encrypted with your passphrase"
    } else {
        "NOT protected by a passphrase"
    };
    println!("home      {}  ({lock})", display::line(&s.home));
    println!("identity  {}, fingerprint {}", s.suite, s.fingerprint);
    let l = &s.ledger;
    println!(
        "ledger    {}  ({})",
        display::line(&l.url),
        source_text(source)
    );
    if l.reachable {
        let life = l
            .lifetime_s
            .map(|t| humantime::format_duration(std::time::Duration::from_secs(t)).to_string())
            .unwrap_or_default();
        println!(
            "          reachable: id {}, entries live {life}, newest entry {}",
            l.ledger_id.as_deref().unwrap_or("(not reported)"),
            l.last_id
                .map_or("(none yet)".to_string(), |i| i.to_string())
        );
    } else {
        println!("          NOT reachable");
    }
    if let Some(e) = &l.error {
        println!("          {}", display::line(e));
    }
    match s.behind {
        Some(0) => println!("read      up to id {}: up to date", s.synced_id),
        Some(n) => println!(
            "read      up to id {}: {n} entries behind (`deaddrop sync`)",
            s.synced_id
        ),
        None => println!("read      up to id {}", s.synced_id),
    }
    if s.unread.total == 0 {
        println!("unread    none");
    } else {
        let who: Vec<String> = s
            .unread
            .contacts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(c, n)| format!("{} {n}", display::line(c)))
            .collect();
        println!("unread    {}: {}", s.unread.total, who.join(", "));
    }
    if s.requests == 0 {
        println!("requests  none");
    } else {
        println!("requests  {} pending (`deaddrop requests`)", s.requests);
    }
    let o = &s.outbox;
    if o.messages == 0 {
        println!("outbox    empty");
    } else {
        let since = o.oldest.map(|t| zone.show(t)).unwrap_or_default();
        println!(
            "outbox    {} message(s), {} part(s) waiting since {since} (`deaddrop outbox`)",
            o.messages, o.parts
        );
        if o.refused > 0 {
            println!(
                "          {} part(s) refused by a ledger for good: `deaddrop outbox` says why",
                o.refused
            );
        }
    }
}

//! `deaddrop outbox`: the messages waiting for the ledger, and `outbox flush`, which sends them
//! (parts a ledger refused for good included: the user may have fixed the cause).

use clap::{Args, Subcommand};
use deaddrop_client::db::Db;
use deaddrop_client::display;
use deaddrop_client::ops::{self, Flush, SEND_PATIENCE};
use deaddrop_client::output::{FlushJson, QueuedJson, RefusedJson};

use crate::user::{print_json, runtime, ClientOpts};
use crate::when::{TimeOpts, Zone};

/// `deaddrop outbox [list | flush]`.
#[derive(Debug, Args)]
pub struct OutboxArgs {
    #[command(subcommand)]
    action: Option<OutboxAction>,
    #[command(flatten)]
    time: TimeOpts,
}

/// What `deaddrop outbox` does.
#[derive(Debug, Subcommand)]
pub enum OutboxAction {
    /// The messages waiting: to whom, since when, how many parts (the default).
    List,
    /// Send what waits now, also parts a ledger refused before; fails if the ledger is still
    /// away.
    Flush,
}

/// Runs `deaddrop outbox ...`.
pub fn run(db: &mut Db, opts: &ClientOpts, json: bool, args: OutboxArgs) -> anyhow::Result<()> {
    match args.action.unwrap_or(OutboxAction::List) {
        OutboxAction::List => list(db, json, &Zone::new(args.time)),
        OutboxAction::Flush => flush(db, opts, json),
    }
}

fn list(db: &Db, json: bool, zone: &Zone) -> anyhow::Result<()> {
    let queued = db.queued_messages()?;
    if json {
        let arr: Vec<QueuedJson> = queued
            .into_iter()
            .map(|q| QueuedJson {
                contact: q.contact,
                id: q.id,
                parts: q.parts,
                reason: q.reason,
                refused: q.refused,
                since: q.since_ms,
            })
            .collect();
        return print_json(&arr);
    }
    if queued.is_empty() {
        println!("The outbox is empty: everything you sent reached a ledger.");
        return Ok(());
    }
    for q in &queued {
        println!(
            "#{:<5} to {:<16} since {}  {} part(s) waiting",
            q.id,
            display::line(&q.contact),
            zone.show(q.since_ms),
            q.parts
        );
        if q.refused > 0 {
            println!(
                "       {} of them refused for good: {}",
                q.refused,
                display::line(q.reason.as_deref().unwrap_or(""))
            );
        }
    }
    println!("`deaddrop outbox flush` sends them now; `sync` and `watch` send them too (not the refused ones).");
    Ok(())
}

fn flush(db: &mut Db, opts: &ClientOpts, json: bool) -> anyhow::Result<()> {
    let suite = db.identity()?.address.suite();
    let ledger = opts.resolve(db)?.quick_client()?;
    let waiting = db.queued_parts(true)?.len();
    let report = runtime()?.block_on(async {
        let info = ops::check_ledger(&ledger, suite).await?;
        ops::flush(
            db,
            &ledger,
            suite,
            Flush {
                bits: info.pow_bits,
                patience: SEND_PATIENCE,
                retry_refused: true,
            },
        )
        .await
    });
    let report = match report {
        Ok(r) => r,
        // The error's hint stays reachable through the context (`report` downcasts).
        Err(e) if waiting > 0 => {
            return Err(
                anyhow::Error::new(e).context(format!("{waiting} part(s) stay in the outbox"))
            )
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(away) = report.away {
        return Err(anyhow::Error::new(away).context(format!(
            "{} part(s) stay in the outbox ({} sent)",
            report.pending,
            report.ids.len()
        )));
    }
    for r in &report.refused {
        if !json {
            eprintln!(
                "warning: message #{} to {} was refused for good and stays in the outbox: {}",
                r.message,
                display::line(&r.contact),
                display::line(&r.reason)
            );
        }
    }
    if json {
        print_json(&FlushJson {
            sent: report.ids.len() as u64,
            ids: report.ids,
            pending: report.pending as u64,
            refused: report
                .refused
                .into_iter()
                .map(|r| RefusedJson {
                    contact: r.contact,
                    message: r.message,
                    reason: r.reason,
                })
                .collect(),
        })?;
    } else if waiting == 0 {
        println!("The outbox is empty: nothing to send.");
    } else {
        println!(
            "Sent {} part(s) to {}{}",
            report.ids.len(),
            ledger.url(),
            if report.refused.is_empty() {
                String::new()
            } else {
                format!("; {} refused (see above)", report.refused.len())
            }
        );
    }
    Ok(())
}

//! `deaddrop bench ...`: benchmarks that print their result next to the limit measured in the
//! same run (docs/DESIGN.md §4: every claim about speed is a ratio against the limit).

mod ledger;
mod scan;
mod sync;

use clap::{Args, Subcommand};

use crate::Global;

/// `deaddrop bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Trial decryption: entries scanned per second against raw decapsulations per second,
    /// on one thread and on all cores.
    Scan(scan::ScanArgs),
    /// The ledger server: durable appends, reads and push latency on loopback, against NATS
    /// JetStream when `nats-server` is on the PATH.
    Ledger(ledger::LedgerArgs),
    /// Following a ledger end to end (download, scan, store) against scanning alone.
    Sync(sync::SyncArgs),
}

/// Runs a `deaddrop bench` subcommand.
pub fn run(global: Global, args: BenchArgs) -> anyhow::Result<()> {
    match args.command {
        BenchCommand::Scan(args) => scan::run(global, args),
        BenchCommand::Ledger(args) => ledger::run(global, args),
        BenchCommand::Sync(args) => sync::run(global, args),
    }
}

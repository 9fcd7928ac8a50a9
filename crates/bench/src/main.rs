//! `deaddrop-bench`: benchmarks that print their result next to the limit measured in the same
//! run, because a claim about speed means something only as a ratio against that limit.
//!
//! A binary of its own so that the user's `deaddrop` carries none of this code or its
//! dependencies. This file only parses the command line and dispatches; each benchmark lives in
//! its own module. `--json` replaces the human-readable output with one JSON object for
//! scripts.
#![forbid(unsafe_code)]
// Printing results is this binary's job.
#![allow(clippy::print_stdout)]

mod ledger;
mod measure;
mod scan;
mod sync;

use clap::{Parser, Subcommand};

/// Measure how fast this machine can do what deaddrop needs.
#[derive(Debug, Parser)]
#[command(name = "deaddrop-bench", version)]
struct Cli {
    /// Print one JSON object instead of human-readable output.
    #[arg(long, global = true)]
    json: bool,

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

/// Options every benchmark can read.
#[derive(Clone, Copy, Debug)]
pub struct Global {
    /// `--json`: print one JSON object.
    pub json: bool,
}

/// Prints an error as `error: ...`, or with `--json` as one JSON object `{"error", "hint"}` on
/// standard error, as `deaddrop` does.
fn report(json: bool, error: &str, hint: &str) {
    if json {
        eprintln!("{}", serde_json::json!({"error": error, "hint": hint}));
    } else {
        eprintln!("error: {error}\nhint: {hint}");
    }
}

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // With --json, scripts get usage errors as JSON too; help and version print as usual.
            let wants_json = std::env::args().any(|a| a == "--json");
            if wants_json && e.use_stderr() {
                let detail = e.to_string();
                let first = detail
                    .lines()
                    .take_while(|l| !l.starts_with("Usage:"))
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
                report(
                    true,
                    first.trim_start_matches("error: "),
                    "see `deaddrop-bench help` or `deaddrop-bench COMMAND --help`",
                );
                return std::process::ExitCode::from(2);
            }
            e.exit()
        }
    };
    let global = Global { json: cli.json };
    let result = match cli.command {
        BenchCommand::Scan(args) => scan::run(global, args),
        BenchCommand::Ledger(args) => ledger::run(global, args),
        BenchCommand::Sync(args) => sync::run(global, args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            report(
                global.json,
                &format!("{e:#}"),
                "see `deaddrop-bench help` or `deaddrop-bench COMMAND --help`",
            );
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}

//! The `deaddrop` command: client subcommands and `deaddrop serve`. The benchmarks are a binary
//! of their own, `deaddrop-bench` (crates/bench), so that this one stays lean.
//!
//! This file only parses the command line and dispatches; each subcommand lives in its own
//! module. Every subcommand honours the global `--json`, which replaces the human-readable
//! output with one JSON object for scripts.
#![forbid(unsafe_code)]
// Printing results is this binary's job.
#![allow(clippy::print_stdout)]

mod chat;
mod serve;
mod user;

use clap::{Parser, Subcommand};

/// Anonymous messaging over a public ledger.
#[derive(Debug, Parser)]
#[command(name = "deaddrop", version)]
struct Cli {
    /// Print one JSON object instead of human-readable output.
    #[arg(long, global = true)]
    json: bool,

    #[command(flatten)]
    client: user::ClientOpts,

    #[command(subcommand)]
    command: Command,
}

// Parsed once per process; boxing the larger variant would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    #[command(flatten)]
    User(user::UserCmd),
    /// Run a ledger: the public, append-only, expiring list of entries.
    Serve(serve::ServeArgs),
    /// Measure this machine: runs `deaddrop-bench` (installed next to `deaddrop`) with the same
    /// arguments, e.g. `deaddrop bench scan`.
    Bench {
        /// What `deaddrop-bench` takes: `scan`, `ledger`, `sync`, their options, `--help`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

/// Options every subcommand can read.
#[derive(Clone, Copy, Debug)]
pub struct Global {
    /// `--json`: print one JSON object.
    pub json: bool,
}

/// Logs to stderr; `RUST_LOG` adjusts the level (default `info`). Nothing logged anywhere in
/// deaddrop carries a client address or a secret.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a terminal: a log file or journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

/// Prints an error as `error: ...` and `hint: ...`, or with `--json` as one JSON object
/// `{"error", "hint"}` on standard error.
fn report(json: bool, e: &anyhow::Error) {
    use deaddrop_ledger::store::StoreError;
    let hint = if let Some(c) = e.downcast_ref::<deaddrop_client::ClientError>() {
        c.hint()
    } else if let Some(StoreError::Locked { holder, .. }) = e.downcast_ref::<StoreError>() {
        match holder {
            Some(pid) => format!(
                "stop the other ledger (`kill {pid}`), or start this one with another --data DIR"
            ),
            None => "stop the other ledger, or start this one with another --data DIR".to_string(),
        }
    } else {
        "see `deaddrop help`".to_string()
    };
    let msg = format!("{e:#}");
    if json {
        print_json_error(msg, hint);
    } else {
        // An error may quote what a ledger or a peer sent: escaped like any foreign text.
        eprintln!(
            "error: {}\nhint: {}",
            deaddrop_client::display::block(&msg, "  "),
            deaddrop_client::display::line(&hint)
        );
    }
}

/// Prints `{"error", "hint"}` on standard error.
fn print_json_error(error: String, hint: String) {
    let e = deaddrop_client::output::ErrorJson { error, hint };
    // Two strings always serialize; the plain form is only a fallback that cannot happen.
    match serde_json::to_string(&e) {
        Ok(line) => eprintln!("{line}"),
        Err(_) => eprintln!("error: {}\nhint: {}", e.error, e.hint),
    }
}

/// `deaddrop bench ARGS`: runs `deaddrop-bench ARGS` from the directory this binary is in, or
/// from the `PATH`, and exits as it does.
fn bench(global: Global, args: Vec<std::ffi::OsString>) -> anyhow::Result<()> {
    use anyhow::Context;
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("deaddrop-bench")))
        .filter(|p| p.is_file());
    let program = beside.unwrap_or_else(|| "deaddrop-bench".into());
    let mut cmd = std::process::Command::new(&program);
    if global.json {
        cmd.arg("--json");
    }
    let status = cmd.args(&args).status().with_context(|| {
        format!(
            "cannot run {}: the benchmarks are a separate binary; build it with `cargo build --release -p deaddrop-bench`",
            program.display()
        )
    })?;
    match status.code() {
        Some(0) => Ok(()),
        // deaddrop-bench has printed its own error.
        Some(code) => std::process::exit(code),
        None => anyhow::bail!("deaddrop-bench was stopped by a signal"),
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
                    .join(" ")
                    .trim_start_matches("error: ")
                    .to_string();
                print_json_error(
                    first,
                    "see `deaddrop help` or `deaddrop COMMAND --help`".to_string(),
                );
                return std::process::ExitCode::from(2);
            }
            e.exit()
        }
    };
    let global = Global { json: cli.json };
    let result = match cli.command {
        Command::User(cmd) => user::run(global, cli.client, cmd),
        Command::Serve(args) => serve::run(args),
        Command::Bench { args } => bench(global, args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            report(global.json, &e);
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

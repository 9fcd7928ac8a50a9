//! The `deaddrop` command: client subcommands and `deaddrop serve`. The benchmarks are a binary
//! of their own, `deaddrop-bench` (crates/bench), so that this one stays lean.
//!
//! This file only parses the command line and dispatches; each subcommand lives in its own
//! module. Every subcommand honours the global `--json`, which replaces the human-readable
//! output with one JSON object for scripts.
//!
//! The client options (`--home`, `--ledger`, `--proxy`, `--passphrase-file`, `--passphrase-fd`,
//! `--ca-file`) are global, so they go before or after a client subcommand alike (`deaddrop
//! --home H send ...`, `deaddrop send ... --home H`). They mean nothing to `serve` and `bench`,
//! which get hidden options of the same names instead: clap gives a subcommand no global option
//! it has one of the same name, so those do not list them in their help, and a client option
//! given to them on the command line is refused, saying so.
#![forbid(unsafe_code)]
// Printing results is this binary's job.
#![allow(clippy::print_stdout)]

// Every `println!`, `print!` and `eprintln!` in this crate, in every module declared below,
// is one of these, not std's: they write through `out`, which ends the command quietly when
// the reader of a pipe went away instead of panicking (std's `println!` panics on EPIPE), and
// keeps standard error clear of a progress bar being drawn. Code added later gets the same
// without having to remember it.
macro_rules! println {
    () => {
        $crate::out::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::out::text(format_args!($($arg)*))
    };
}
macro_rules! eprintln {
    () => {
        $crate::out::err_line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::out::err_line(format_args!($($arg)*))
    };
}

mod card_input;
mod cards;
mod chat;
mod config;
mod demo;
mod exit;
mod generate;
mod out;
mod outbox;
mod progress;
mod qr;
mod serve;
mod status;
mod sync_progress;
mod user;
mod when;

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, CommandFactory, FromArgMatches, Parser, Subcommand};
use deaddrop_client::settings::Source;

/// Anonymous messaging over a public ledger.
#[derive(Debug, Parser)]
#[command(name = "deaddrop", version, after_help = exit::HELP)]
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
    /// See the whole system work, with nothing set up: a throwaway ledger and three throwaway
    /// people exchange messages and a first-contact request, and you see what each sees.
    Demo(demo::DemoArgs),
    /// Run a ledger: the public, append-only, expiring list of entries.
    Serve(serve::ServeArgs),
    /// Measure this machine: runs `deaddrop-bench` (installed next to `deaddrop`) with the same
    /// arguments, e.g. `deaddrop bench scan`.
    Bench {
        /// What `deaddrop-bench` takes: `scan`, `ledger`, `sync`, their options, `--help`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Print a completion script for SHELL, e.g. `deaddrop completions bash >
    /// ~/.local/share/bash-completion/completions/deaddrop`.
    Completions {
        /// bash, zsh, fish, powershell or elvish.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one per command with --out DIR.
    Man(generate::ManArgs),
}

/// The client options (ids and flags, as [`user::ClientOpts`] names them), which `serve` and
/// `bench` refuse.
const CLIENT_OPTIONS: [(&str, &str); 6] = [
    ("home", "--home"),
    ("ledger", "--ledger"),
    ("proxy", "--proxy"),
    ("passphrase_file", "--passphrase-file"),
    ("passphrase_fd", "--passphrase-fd"),
    ("ca_file", "--ca-file"),
];

/// The subcommands that are no client and take none of [`CLIENT_OPTIONS`].
const NOT_CLIENTS: [&str; 2] = ["serve", "bench"];

/// The command line: [`Cli`], with hidden stand-ins for the client options on `serve` and
/// `bench` (see the module documentation).
fn command() -> clap::Command {
    let mut cmd = Cli::command();
    for name in NOT_CLIENTS {
        cmd = cmd.mut_subcommand(name, |sub| {
            sub.args(CLIENT_OPTIONS.map(|(id, flag)| {
                let arg = Arg::new(id)
                    .long(flag.trim_start_matches("--"))
                    .hide(true)
                    .num_args(1)
                    .value_name("VALUE");
                // Of the type the global one has: clap hands a value given here up to the top
                // level, where `ClientOpts` reads it.
                match id {
                    "home" | "passphrase_file" | "ca_file" => {
                        arg.value_parser(clap::value_parser!(std::path::PathBuf))
                    }
                    "passphrase_fd" => arg.value_parser(clap::value_parser!(u32)),
                    _ => arg,
                }
            }))
        });
    }
    cmd
}

/// The client option given on the command line of `serve` or `bench`, if one was.
fn client_option_given(matches: &ArgMatches) -> Option<(&'static str, &'static str)> {
    let (name, sub) = matches.subcommand()?;
    let name = NOT_CLIENTS.into_iter().find(|n| *n == name)?;
    CLIENT_OPTIONS
        .into_iter()
        .find(|(id, _)| {
            [matches, sub]
                .iter()
                .any(|m| m.value_source(id) == Some(ValueSource::CommandLine))
        })
        .map(|(_, flag)| (name, flag))
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
        .with_writer(progress::LogWriter)
        .with_ansi(ansi)
        .try_init();
}

/// Prints an error as `error: ...` and `hint: ...`, or with `--json` as one JSON object
/// `{"error", "hint"}` on standard error; returns the exit code that tells its kind
/// ([`exit::classify`]). A reader of standard output that went away is no error: exit 0, quietly.
fn report(json: bool, e: &anyhow::Error) -> exit::Exit {
    use deaddrop_ledger::store::StoreError;
    if out::is_broken_pipe(e) {
        return exit::Exit::Ok;
    }
    let hint = if let Some(i) = e.downcast_ref::<exit::Interrupted>() {
        i.hint.clone()
    } else if let Some(c) = e.downcast_ref::<deaddrop_client::ClientError>() {
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
    exit::classify(e)
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

/// The command line parsed, or how clap failed.
fn parse() -> Result<(Cli, ArgMatches), clap::Error> {
    let matches = command().try_get_matches()?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    cli.client.ledger_source = match matches.value_source("ledger") {
        Some(ValueSource::CommandLine) => Some(Source::Flag),
        Some(ValueSource::EnvVariable) => Some(Source::Environment),
        _ => None,
    };
    Ok((cli, matches))
}

fn main() -> std::process::ExitCode {
    let wants_json = std::env::args().any(|a| a == "--json");
    let (cli, matches) = match parse() {
        Ok(parsed) => parsed,
        Err(e) => {
            // With --json, scripts get usage errors as JSON too; help and version print as usual.
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
    if let Some((name, flag)) = client_option_given(&matches) {
        let error = format!("`deaddrop {name}` does not take {flag}: it is an option of the client commands (send, sync, status, ...)");
        let hint = match name {
            "serve" => "leave it out; the ledger keeps its data in --data DIR (see `deaddrop serve --help`)",
            _ => "leave it out (see `deaddrop-bench --help`)",
        }
        .to_string();
        if cli.json {
            print_json_error(error, hint);
        } else {
            eprintln!("error: {error}\nhint: {hint}");
        }
        return std::process::ExitCode::from(2);
    }
    let global = Global { json: cli.json };
    let result = match cli.command {
        Command::User(cmd) => user::run(global, cli.client, cmd),
        Command::Demo(args) => demo::run(global, args),
        Command::Serve(args) => serve::run(args),
        Command::Bench { args } => bench(global, args),
        Command::Completions { shell } => generate::completions(shell),
        Command::Man(args) => generate::man(global.json, args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => std::process::ExitCode::from(report(global.json, &e).code()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn command_line_definition_is_consistent() {
        super::command().debug_assert();
    }

    #[test]
    fn a_client_option_given_to_serve_or_bench_is_found_wherever_it_stands() {
        use clap::FromArgMatches;
        for (id, flag) in super::CLIENT_OPTIONS {
            let value = if id == "passphrase_fd" { "3" } else { "x" };
            for args in [
                vec!["deaddrop", "serve", flag, value],
                vec!["deaddrop", flag, value, "serve"],
                vec!["deaddrop", "bench", flag, value, "scan"],
            ] {
                let m = super::command().try_get_matches_from(&args).unwrap();
                super::Cli::from_arg_matches(&m).unwrap();
                let found = super::client_option_given(&m).map(|(_, f)| f);
                assert_eq!(found, Some(flag), "{args:?}");
            }
        }
        let m = super::command()
            .try_get_matches_from(["deaddrop", "--home", "h", "card"])
            .unwrap();
        assert_eq!(super::client_option_given(&m), None);
    }
}

//! Only for `client_bench_sync.rs`, which is about to move with the other benchmarks: what it
//! used of the old client test support, now taken from `deaddrop-harness`. New tests use the
//! harness directly (`Deaddrop::command`, `deaddrop_harness::cli::run_command`).

use std::process::Command;

pub use deaddrop_harness::cli::run_command;
use deaddrop_harness::Deaddrop;

/// `deaddrop` with a clean environment.
pub fn bare_command() -> Command {
    Deaddrop::new(env!("CARGO_BIN_EXE_deaddrop")).command()
}

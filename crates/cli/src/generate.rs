//! `deaddrop completions SHELL` and `deaddrop man [--out DIR]`: made from the command-line
//! definition itself (clap_complete, clap_mangen), so they never drift from the flags.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, CommandFactory};

/// `deaddrop man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write one page per command into DIR (`deaddrop.1`, `deaddrop-contact-add.1`, ...),
    /// creating it if needed; without it, `deaddrop.1` goes to standard output.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Prints the completion script for `shell` on standard output.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<()> {
    let mut cmd = crate::Cli::command();
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "deaddrop", &mut buf);
    crate::out::bytes(&buf);
    Ok(())
}

/// Writes the page of `cmd` and of every subcommand below it into `dir`; returns the files.
fn pages_into(cmd: clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        pages_into(sub, dir, written)?;
    }
    let page = clap_mangen::Man::new(cmd);
    let path = page
        .generate_to(dir)
        .with_context(|| format!("cannot write a man page into {}", dir.display()))?;
    written.push(path);
    Ok(())
}

/// `deaddrop man`: the manual pages in roff.
pub fn man(json: bool, args: ManArgs) -> anyhow::Result<()> {
    let mut cmd = crate::Cli::command().disable_help_subcommand(true);
    cmd.build();
    match args.out {
        None => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut buf)
                .context("cannot render the man page")?;
            crate::out::bytes(&buf);
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let mut written = Vec::new();
            pages_into(cmd, &dir, &mut written)?;
            written.sort();
            if json {
                let files: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
                crate::out::json(&deaddrop_client::output::ManJson { files })?;
            } else {
                println!(
                    "Wrote {} man pages into {} (e.g. `man -l {}`)",
                    written.len(),
                    dir.display(),
                    dir.join("deaddrop.1").display()
                );
            }
        }
    }
    Ok(())
}

//! Everything the command prints goes through here: `println!`, `print!` and `eprintln!` in this
//! crate are the macros of `main.rs`, which call these functions instead of std's.
//!
//! std's `println!` panics when standard output is a pipe whose reader went away
//! (`deaddrop card | head -c 10`: EPIPE, since Rust ignores SIGPIPE). Nobody is left to read
//! anything then, so the command ends quietly with exit 0, as `head` asked; every commit it made
//! before stays. Any other failure to write (a full disk behind `> file`) is said on standard
//! error and ends the command with the exit code of local data ([`crate::exit::Exit::LocalData`]).
//! Writing to standard error never fails a command: if nobody reads it, there is nobody to tell.

use std::fmt;
use std::io::{self, Write};

use crate::exit::Exit;

/// Ends the process as a failed write to standard output asks: quietly for a reader that went
/// away, with an error otherwise.
fn failed(e: &io::Error) -> ! {
    if e.kind() == io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    let _ = writeln!(io::stderr(), "error: cannot write to standard output: {e}");
    std::process::exit(i32::from(Exit::LocalData.code()));
}

/// Whether an error anywhere in this chain is a reader that went away (EPIPE), however it was
/// wrapped (`serde_json`, `anyhow`).
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(io::ErrorKind::BrokenPipe))
    })
}

/// Writes `bytes` to standard output and flushes.
pub fn bytes(bytes: &[u8]) {
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        failed(&e);
    }
}

/// `println!`: the text and a newline on standard output.
pub fn line(args: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    if let Err(e) = writeln!(out, "{args}") {
        failed(&e);
    }
}

/// `print!`: the text on standard output, flushed (a prompt or a partial line is meant to be
/// seen now).
pub fn text(args: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    if let Err(e) = write!(out, "{args}").and_then(|()| out.flush()) {
        failed(&e);
    }
}

/// `eprintln!`: the text and a newline on standard error, kept clear of a progress bar being
/// drawn there ([`crate::progress`]); a failure to write is ignored.
pub fn err_line(args: fmt::Arguments<'_>) {
    let text = format!("{args}\n");
    crate::progress::suspend(|| {
        let mut err = io::stderr().lock();
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    });
}

/// One JSON document and a newline on standard output.
pub fn json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string(v)?;
    text.push('\n');
    bytes(text.as_bytes());
    Ok(())
}

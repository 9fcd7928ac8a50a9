//! Progress of long work, drawn on standard error: a sync (entries scanned of those behind,
//! rate, time left), a mirror catching up with its upstream, the parts of a long `send`.
//!
//! Drawn only when standard error is a terminal and the command was not given `--json`; in a
//! pipe or a log file nothing of it appears. While a bar is drawn, whatever else goes to standard
//! error (warnings, `eprintln!`, the ledger's log) is written with the bar lifted
//! ([`suspend`]), so lines do not mix with it.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// The bar on screen now, if any, for [`suspend`].
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// How often a bar redraws on its own, so rate and time left move while a page downloads.
const TICK: Duration = Duration::from_millis(100);

/// Whether progress is drawn for this command.
pub fn enabled(json: bool) -> bool {
    !json && std::io::stderr().is_terminal()
}

/// Runs `f` (which writes to standard error) with the bar lifted off the screen.
pub fn suspend<R>(f: impl FnOnce() -> R) -> R {
    let shown = SHOWN.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match shown {
        Some(bar) => bar.suspend(f),
        None => f(),
    }
}

/// A progress bar on standard error, or nothing when progress is not drawn. Cleared from the
/// screen when dropped.
pub struct Bar {
    bar: Option<ProgressBar>,
    /// Whether it has counts yet: it is first drawn with them, not as an empty `0/0`.
    started: std::cell::Cell<bool>,
}

fn rate(state: &ProgressState, w: &mut dyn std::fmt::Write) {
    let _ = write!(w, "{:.0}/s", state.per_sec());
}

impl Bar {
    /// A bar of `len` `unit`s (`entries`, `parts`) headed `what`, drawn if [`enabled`].
    pub fn new(json: bool, what: &str, unit: &str, len: u64) -> Bar {
        if !enabled(json) {
            return Bar {
                bar: None,
                started: false.into(),
            };
        }
        let template = format!(
            "{{spinner}} {{prefix}} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit} · {{rate}} · {{eta}} left {{msg}}"
        );
        let style = ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key("rate", rate)
            .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr_with_hz(20))
            .with_style(style)
            .with_prefix(what.to_string());
        *SHOWN.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
        Bar {
            bar: Some(bar),
            started: false.into(),
        }
    }

    /// `pos` of `len` done.
    pub fn set(&self, pos: u64, len: u64) {
        if let Some(b) = &self.bar {
            b.set_length(len.max(pos));
            b.set_position(pos);
            if !self.started.replace(true) {
                b.enable_steady_tick(TICK);
            }
        }
    }

    /// A note after the counts (`solving the proof of work`).
    pub fn note(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.set_message(msg.to_string());
        }
    }

    /// Takes the bar off the screen.
    pub fn clear(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
            let mut shown = SHOWN.lock().unwrap_or_else(|e| e.into_inner());
            *shown = None;
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.clear();
    }
}

/// The ledger's log on standard error, written with any bar lifted ([`suspend`]); for
/// `tracing_subscriber`'s `with_writer`.
#[derive(Clone, Copy, Debug, Default)]
pub struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        suspend(|| std::io::stderr().lock().write_all(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

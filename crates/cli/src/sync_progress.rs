//! `deaddrop sync` as a person sees it: a progress bar while it catches up (entries scanned of
//! those behind, the rate, the time left), and Ctrl-C that stops it between two pages and says
//! where, so the next sync resumes there.
//!
//! The total behind is the ledger's newest id (from `/v1/info`, then each page's
//! `deaddrop-newest-id`) less the position the sync started from; ids that expired count as
//! done when the ledger skips them.

use deaddrop_client::db::Db;
use deaddrop_client::ops::{self, SyncReport};
use deaddrop_client::LedgerClient;
use deaddrop_proto::Identity;

use crate::exit::Interrupted;
use crate::progress::Bar;

/// Runs one sync of `db` against `ledger`, with a progress bar unless `json` or standard error
/// is no terminal. Ctrl-C stops it at the next page boundary with [`Interrupted`].
pub fn run(
    db: &mut Db,
    ledger: &LedgerClient,
    me: &Identity,
    json: bool,
) -> anyhow::Result<SyncReport> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut bar = Bar::new(json, "syncing", "entries", 0);
    let report = rt.block_on(async {
        // Installed before the first page: from here on Ctrl-C is a request to stop, heeded
        // between pages (each page commits with its position).
        let stop = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        ops::sync_until(
            db,
            ledger,
            me,
            |r| {
                bar.set(
                    r.last_id.saturating_sub(r.first_id),
                    r.newest_id.saturating_sub(r.first_id),
                )
            },
            stop,
        )
        .await
    })?;
    bar.clear();
    if report.stopped {
        let found = report.messages + report.requests;
        let so_far = if found > 0 {
            format!(" ({found} new message(s) so far, in `deaddrop inbox`)")
        } else {
            String::new()
        };
        return Err(Interrupted {
            message: format!(
                "stopped at entry {} of {}{so_far}; the next sync resumes from there",
                report.last_id, report.newest_id
            ),
            hint: "run `deaddrop sync` again to go on".into(),
        }
        .into());
    }
    Ok(report)
}

//! Trial decryption of a batch (paper V.2, V.4; docs/DESIGN.md §3.9: "trial decryption runs
//! on all cores").
//!
//! Receiving means trying to open every entry on the ledger, and each try costs one
//! private-key operation, so this loop bounds how fast a client can follow a ledger. Entries are
//! independent, so the batch is split across a rayon pool; the results come back in entry order
//! so the sync engine can commit them together with the new position.
//!
//! The parallel scan runs on the rayon pool it is called from: the global pool, or one the
//! caller sized with [`thread_pool`] and entered with [`rayon::ThreadPool::install`].

use deaddrop_proto::{open, CheckString, Contacts, Entry, Identity, Opened};
use rayon::prelude::*;

/// Entries handed to one rayon task at a time. One try is tens of microseconds (X-Wing) to
/// most of a millisecond (RSA-3072), so small batches keep both cores busy to the end while
/// making the splitting overhead negligible.
const MIN_BATCH: usize = 8;

/// What a scan found: the index in the scanned slice of each entry that was for us, with
/// the outcome, in index order. Entries that were not for us are left out.
pub type Found = Vec<(usize, Opened)>;

/// Tries every entry as `me` on the current thread. Same output as [`scan_parallel`].
pub fn scan(
    me: &Identity,
    accepted: &[CheckString],
    contacts: &impl Contacts,
    entries: &[Entry],
) -> Found {
    entries
        .iter()
        .enumerate()
        .filter_map(|(index, entry)| for_me(index, open(me, accepted, contacts, entry)))
        .collect()
}

/// Tries every entry as `me` on the current rayon pool (all cores unless called inside
/// [`rayon::ThreadPool::install`]). Same output as [`scan`], in index order.
pub fn scan_parallel(
    me: &Identity,
    accepted: &[CheckString],
    contacts: &(impl Contacts + Sync),
    entries: &[Entry],
) -> Found {
    entries
        .par_iter()
        .with_min_len(MIN_BATCH)
        .enumerate()
        .filter_map(|(index, entry)| for_me(index, open(me, accepted, contacts, entry)))
        .collect()
}

fn for_me(index: usize, opened: Opened) -> Option<(usize, Opened)> {
    opened.is_for_me().then_some((index, opened))
}

/// A rayon pool of `threads` threads for [`scan_parallel`]; `0` means one per core.
pub fn thread_pool(threads: usize) -> Result<rayon::ThreadPool, rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("deaddrop-scan-{i}"))
        .build()
}

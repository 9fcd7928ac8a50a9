//! The routes of the ledger's API and the request targets that address them. Every path of
//! the API is written here and nowhere else; the server routes on these constants and every
//! client builds its requests with the functions below.

use crate::id::EntryId;

/// `GET`: the ledger's [`Info`](crate::Info).
pub const INFO: &str = "/v1/info";
/// `GET` (read a page of frames after an id) and `POST` (append one entry).
pub const ENTRIES: &str = "/v1/entries";
/// `GET` with a WebSocket upgrade: the push stream.
pub const STREAM: &str = "/v1/stream";
/// `GET`: liveness, `ok`.
pub const HEALTHZ: &str = "/healthz";
/// `GET`: readiness: `200` while the ledger can accept appends, `503` while its store cannot.
pub const READYZ: &str = "/readyz";
/// `GET`: Prometheus/OpenMetrics text.
pub const METRICS: &str = "/metrics";

/// Every route, for messages that list them.
pub const ALL: [&str; 6] = [INFO, ENTRIES, STREAM, HEALTHZ, READYZ, METRICS];

/// The target of a read: up to `limit` entries after `after`.
pub fn read(after: EntryId, limit: usize) -> String {
    format!("{ENTRIES}?after={after}&limit={limit}")
}

/// The target of the push stream after `after`.
pub fn stream(after: EntryId) -> String {
    format!("{STREAM}?after={after}")
}

/// The `Location` of an appended entry: the read that returns exactly it.
pub fn location(id: EntryId) -> String {
    read(EntryId(id.0.saturating_sub(1)), 1)
}

//! deaddrop ledger server library (see docs/ARCHITECTURE.md). The server is built in its own issue;
//! this crate depends only on `deaddrop-proto`.

pub use deaddrop_proto as proto;

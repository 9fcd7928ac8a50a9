//! deaddrop client library (see docs/ARCHITECTURE.md). The client is built in its own issue;
//! this crate depends only on `deaddrop-proto`.
//!
//! [`scan`] is the receiving side's hot loop: trial decryption of a batch of entries, on one
//! thread or on all cores.
#![forbid(unsafe_code)]

pub use deaddrop_proto as proto;

pub mod scan;

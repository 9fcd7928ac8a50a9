//! The deaddrop ledger (paper III): a public, append-only, chronological, expiring list of
//! entries that anyone may append to and read, and that learns nothing about who talks to whom.
//!
//! This crate depends only on `deaddrop-proto`; the binary (`deaddrop serve`) parses flags and
//! calls [`run`].

pub mod store;

pub use deaddrop_proto as proto;

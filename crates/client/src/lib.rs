//! deaddrop client library (see docs/ARCHITECTURE.md). The client is built in its own issue;
//! this crate depends only on `deaddrop-proto`.

pub use deaddrop_proto as proto;

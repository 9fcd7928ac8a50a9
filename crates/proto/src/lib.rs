//! The deaddrop protocol core: identities and addresses, contact cards, the entry format,
//! sealing and opening (trial decryption), and the proof of work that appends carry.
//!
//! This crate is pure: it takes bytes and returns bytes or typed results. It has no sockets,
//! files, clocks or global state; time and randomness come in as arguments so that tests and
//! the vectors in `docs/test-vectors/` are deterministic. `docs/PROTOCOL.md` is the normative
//! specification this crate implements; each module names the section it owns.
//!
//! The flow, in the paper's words (V.4): a sender [`seal`]s a message to a receiver's
//! [`ContactCard`]; the ledger stores the resulting [`Entry`]; every receiver tries to
//! [`open`] every entry, and only the one it was sealed for gets anything but
//! [`Opened::NotForMe`].

pub mod address;
pub mod card;
pub mod codec;
pub mod entry;
pub mod error;
pub mod identity;
mod kdf;
pub mod message;
pub mod pow;
pub mod rng;
pub mod seal;
pub mod secret;
pub mod suite;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use address::{Address, Fingerprint};
pub use card::{CheckString, ContactCard};
pub use entry::{Entry, Stamp};
pub use error::{AddressError, CardError, EntryError, IdentityError, MessageError, SealError};
pub use identity::Identity;
pub use message::{assemble, MessageId, Part};
pub use seal::{
    open, seal, seal_message_with_rng, seal_with_parts, seal_with_rng, Contacts, Encapsulation,
    EntryParts, KnownSender, Opened, PairKeys, Received, RejectReason, Request,
};
pub use secret::CheckKey;
pub use suite::{Layout, Suite};

/// The protocol name and version that prefixes every domain-separation label
/// (`docs/PROTOCOL.md` §2). A new incompatible version changes this string.
pub const PROTOCOL: &str = "deaddrop/1";

//! Typed errors. Each message says what was wrong and, where a person can act on it, what to
//! do. Errors from `open` are deliberately absent: opening never fails, it returns
//! [`crate::Opened`] so that no caller can turn a failure reason into an oracle.

use thiserror::Error;

use crate::codec::CodecError;

/// A printable or binary address could not be read.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AddressError {
    /// The text does not start with the address prefix.
    #[error("not a deaddrop address: it must start with `deaddrop-address-v1:`")]
    NotAnAddress,
    /// The suite name is not one this version knows.
    #[error("unknown suite `{0}`: this version knows `xwing` and `rsa-oaep`")]
    UnknownSuite(String),
    /// The base64url part does not decode.
    #[error("address is damaged: it is not valid base64url; copy it again in full")]
    Encoding,
    /// The checksum does not match: a typo or a truncated copy.
    #[error("address is damaged: its checksum does not match; copy it again in full")]
    Checksum,
    /// The key has the wrong length for its suite.
    #[error("address has {got} key bytes where suite {suite} needs {expected}")]
    Length {
        /// The suite named by the address.
        suite: &'static str,
        /// The length that suite needs.
        expected: usize,
        /// The length found.
        got: usize,
    },
    /// The bytes are not a valid public key of the suite.
    #[error("address does not hold a valid {0} public key")]
    InvalidKey(&'static str),
}

/// A contact card could not be read.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CardError {
    /// The text does not start with the card prefix.
    #[error("not a deaddrop contact card: it must start with `deaddrop-card-v1:`")]
    NotACard,
    /// The base64url part does not decode.
    #[error("contact card is damaged: it is not valid base64url; copy it again in full")]
    Encoding,
    /// The checksum does not match.
    #[error("contact card is damaged: its checksum does not match; copy it again in full")]
    Checksum,
    /// The card ends before all of its fields.
    #[error("contact card is damaged: it is truncated; copy it again in full")]
    Truncated,
    /// Bytes follow the last field.
    #[error("contact card has trailing bytes after its last field")]
    TrailingBytes,
    /// The card carries no check string or more than the protocol allows.
    #[error("contact card must carry between 1 and {max} check strings, it carries {got}")]
    CheckStrings {
        /// The most a card may carry.
        max: usize,
        /// The number found.
        got: usize,
    },
    /// The display name is too long or not UTF-8.
    #[error("contact card's display name is not UTF-8 of at most {max} bytes")]
    Name {
        /// The most bytes a name may have.
        max: usize,
    },
    /// The address inside the card is bad.
    #[error("contact card holds a bad address: {0}")]
    Address(#[from] AddressError),
}

impl From<CodecError> for CardError {
    fn from(e: CodecError) -> Self {
        match e {
            CodecError::TrailingBytes(_) => CardError::TrailingBytes,
            CodecError::Truncated { .. } => CardError::Truncated,
        }
    }
}

/// Bytes that are not an entry of the expected suite.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EntryError {
    /// The length does not match the suite's fixed entry length.
    #[error("an entry of suite {suite} is {expected} bytes long, this one is {got}")]
    Length {
        /// The suite expected.
        suite: &'static str,
        /// Its entry length.
        expected: usize,
        /// The length given.
        got: usize,
    },
}

/// An identity could not be created, imported or exported.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityError {
    /// The exported secret is not in the expected format.
    #[error("identity secret is damaged or not a deaddrop identity (format {0})")]
    Format(&'static str),
    /// The suite id is unknown.
    #[error("identity secret names unknown suite id {0}")]
    UnknownSuite(u8),
    /// The key material was rejected by the crypto library.
    #[error("identity secret holds an invalid {0} key")]
    InvalidKey(&'static str),
    /// Key generation failed inside the crypto library.
    #[error("key generation failed in the crypto library")]
    KeyGeneration,
}

/// A message could not be sealed.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealError {
    /// Sender and receiver use different suites.
    #[error("sender uses suite {sender} but the receiver's card is for {receiver}")]
    SuiteMismatch {
        /// The sender's suite.
        sender: &'static str,
        /// The receiver's suite.
        receiver: &'static str,
    },
    /// The message needs more parts than the format can number.
    #[error("message of {len} bytes needs more than {max_parts} parts; send it in pieces")]
    TooLong {
        /// The message length.
        len: usize,
        /// The most parts one message may have.
        max_parts: usize,
    },
    /// The receiver's public key was rejected while sealing.
    #[error("the receiver's {0} public key was rejected while sealing")]
    BadReceiverKey(&'static str),
    /// A primitive of the crypto library failed.
    #[error("the crypto library failed while sealing")]
    Crypto,
}

/// Parts could not be assembled into a message.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageError {
    /// No parts were given.
    #[error("no parts to assemble")]
    Empty,
    /// Parts disagree about their message id, sender, or part count.
    #[error("parts do not belong to one message")]
    Mixed,
    /// A part is missing or given twice.
    #[error("part {0} is missing or given twice")]
    Missing(u16),
}

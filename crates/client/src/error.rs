//! The client's errors. Each says what went wrong and what to do; the CLI prints the message and
//! the hint (`{"error", "hint"}` with `--json`).

use deaddrop_api::LedgerError;
use thiserror::Error;

/// Everything a client operation can fail with.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The home directory has no identity yet.
    #[error("no identity in {home}")]
    NoIdentity {
        /// The home directory.
        home: String,
    },
    /// `init` on a home that already has one.
    #[error("an identity already exists in {home}")]
    IdentityExists {
        /// The home directory.
        home: String,
    },
    /// No passphrase was available to protect or unlock the key.
    #[error("no passphrase available")]
    NoPassphrase,
    /// The passphrase does not open the key.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// A contact name that is not in the contact list.
    #[error("no contact named `{0}`")]
    UnknownContact(String),
    /// A contact name or fingerprint that is already taken.
    #[error("{0}")]
    ContactExists(String),
    /// A card whose address is none of the contacts' (`contact update`).
    #[error("none of your contacts has the address on that card ({fingerprint})")]
    NotAContact {
        /// The card's fingerprint, short form.
        fingerprint: String,
    },
    /// A request id that is not pending.
    #[error("no pending request with id {0}")]
    UnknownRequest(crate::RequestId),
    /// Bad user input (name, text, flags).
    #[error("{0}")]
    Input(String),
    /// A contact card that cannot be read.
    #[error("that card cannot be read: {0}")]
    Card(String),
    /// The ledger carries another suite than this identity.
    #[error("the ledger at {url} carries {ledger} entries, but this identity is {mine}")]
    SuiteMismatch {
        /// The ledger's URL.
        url: String,
        /// The ledger's suite.
        ledger: String,
        /// This identity's suite.
        mine: String,
    },
    /// The ledger could not be reached, refused, or answered something unexpected.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The ledger refused a part of a message for good (not because it is busy): the part is
    /// set aside in the outbox with the reason.
    #[error("{reason}; the message stays in the outbox, set aside")]
    Refused {
        /// The ledger's URL.
        url: String,
        /// What it said.
        reason: String,
    },
    /// The ledger answered in a way this client cannot use (another entry size, ...).
    #[error("the ledger at {url} sent something unexpected: {detail}")]
    Protocol {
        /// The URL.
        url: String,
        /// What was wrong.
        detail: String,
    },
    /// The local database failed.
    #[error("the local database failed: {0}")]
    Database(#[from] rusqlite::Error),
    /// A file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// Sealing a message failed.
    #[error("the message could not be sealed: {0}")]
    Seal(#[from] deaddrop_proto::SealError),
    /// Making or loading an identity failed.
    #[error("the identity could not be made or loaded: {0}")]
    Identity(#[from] deaddrop_proto::IdentityError),
    /// My own card could not be made (my name or check strings break a card rule).
    #[error("your contact card could not be made: {0}")]
    MyCard(deaddrop_proto::CardError),
    /// The ledger asks for more proof of work than this client solves.
    #[error("the ledger asks for a {asked}-bit proof of work; this client solves at most {max}")]
    PowTooHard {
        /// The bits asked for.
        asked: u8,
        /// The most this client solves.
        max: u8,
    },
    /// Something stored in the home directory cannot be read back.
    #[error("the stored {what} is damaged{}", detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Damaged {
        /// What was being read.
        what: &'static str,
        /// Why it cannot be read, when known.
        detail: Option<String>,
    },
    /// Deriving or applying the key that protects the private key failed.
    #[error("protecting the private key failed: {0}")]
    KeyProtection(&'static str),
    /// Another process holds the home in a way this command cannot share (a re-key holds it
    /// exclusively; a re-key needs it alone).
    #[error("the home {home} is in use{}", if holders.is_empty() { String::new() } else { format!(" by {}", holders.join(", ")) })]
    HomeBusy {
        /// The home directory.
        home: String,
        /// The other processes holding it, as `pid N (command line)`, when known.
        holders: Vec<String>,
    },
    /// The kernel keyring (`deaddrop unlock`) cannot be used.
    #[error("the kernel keyring cannot be used: {0}")]
    Keyring(String),
    /// A background task stopped before answering.
    #[error("a background task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl ClientError {
    /// What the user can do about it.
    pub fn hint(&self) -> String {
        match self {
            ClientError::NoIdentity { .. } => "create one with `deaddrop init --name NAME`".into(),
            ClientError::IdentityExists { .. } => {
                "use another --home to keep a second identity; deaddrop never overwrites one".into()
            }
            ClientError::NoPassphrase => "run in a terminal to be asked, pass --passphrase-file FILE or --passphrase-fd N, run `deaddrop unlock` first, or set DEADDROP_PASSPHRASE (`init --no-passphrase` makes a home without one)".into(),
            ClientError::WrongPassphrase => "type the passphrase you chose at `deaddrop init` (or last set with `deaddrop passphrase change`); check --passphrase-file or DEADDROP_PASSPHRASE".into(),
            ClientError::UnknownContact(_) => "see `deaddrop contact list`, or add one with `deaddrop contact add CARD --name NAME`".into(),
            ClientError::ContactExists(_) => "pick another --name, or remove the old contact with `deaddrop contact remove NAME`".into(),
            ClientError::NotAContact { .. } => "to write to someone new, add the card with `deaddrop contact add CARD --name NAME`; `contact update` takes a newer card of a contact you have".into(),
            ClientError::UnknownRequest(_) => "see `deaddrop requests` for the pending ones".into(),
            ClientError::Input(_) => "see `deaddrop help`".into(),
            ClientError::Card(_) => "ask them for their card again (`deaddrop card` prints it) and paste all of it, in quotes".into(),
            ClientError::SuiteMismatch { .. } => "use a ledger of your identity's suite (--ledger URL), or make a new identity in another --home with `deaddrop init --suite ...`".into(),
            ClientError::Ledger(e) => match e {
                LedgerError::BadUrl { fix, .. } => format!("{fix} (give it with --ledger or DEADDROP_LEDGER, or store it with `deaddrop config set ledger URL`)"),
                LedgerError::PlainHttp { http_url, .. } => format!("use {http_url}: give it with --ledger or store it with `deaddrop config set ledger {http_url}`"),
                LedgerError::BadProxy { .. } => "check --proxy: socks5h://HOST:PORT, e.g. socks5h://127.0.0.1:9050 for Tor".into(),
                LedgerError::BadCaFile { .. } => "check --ca-file (or DEADDROP_CA_FILE): a PEM file with the certificate (`-----BEGIN CERTIFICATE-----`) of the authority that signed your ledger's certificate".into(),
                LedgerError::Certificate { .. } => "if your ledger's certificate comes from a private certificate authority, give that authority's certificate with --ca-file PATH (or DEADDROP_CA_FILE); otherwise check --ledger: whoever answered there is not the ledger you meant".into(),
                LedgerError::Unreachable { .. } => "is `deaddrop serve` running there? Check the ledger (`deaddrop status` says which one this home uses; --ledger, DEADDROP_LEDGER or `deaddrop config set ledger URL` change it) and --proxy".into(),
                LedgerError::Refused { problem, .. } if problem.kind.is_transient() => "the ledger is busy; try again in a little while".into(),
                LedgerError::Refused { .. } => "this is probably a bug or a ledger of another version; see the detail above".into(),
                LedgerError::Protocol { .. } => "check that --ledger points at a deaddrop ledger of this version".into(),
                _ => "see the message above".into(),
            },
            ClientError::Refused { .. } => "`deaddrop outbox` lists it; once the cause is fixed (e.g. another ledger: `deaddrop config set ledger URL`), `deaddrop outbox flush` tries it again".into(),
            ClientError::Protocol { .. } => "check that --ledger points at a deaddrop ledger of this version".into(),
            ClientError::Database(_) => "check the disk and the permissions of your --home; the database is deaddrop.sqlite3 there".into(),
            ClientError::Io { .. } => "check the path and its permissions".into(),
            ClientError::Seal(_) | ClientError::Identity(_) | ClientError::KeyProtection(_) | ClientError::Task(_) => "this is probably a bug; please report it with the message above".into(),
            ClientError::MyCard(_) => "choose a shorter name, or rotate your check string with `deaddrop check-string rotate`".into(),
            ClientError::PowTooHard { .. } => "the ledger is under heavy load; try again later or use another --ledger".into(),
            ClientError::Keyring(_) => "give the passphrase per command instead (--passphrase-file FILE, --passphrase-fd N, or in a terminal)".into(),
            ClientError::HomeBusy { .. } => "wait for that command to finish (or stop it), then try again".into(),
            ClientError::Damaged { .. } => "the home directory was changed outside deaddrop or the disk is failing; restore it from a backup".into(),
        }
    }

    /// Something stored that cannot be read back, with why.
    pub fn damaged(what: &'static str, detail: impl std::fmt::Display) -> Self {
        ClientError::Damaged {
            what,
            detail: Some(detail.to_string()),
        }
    }

    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ClientError::Io {
            context: context.into(),
            source,
        }
    }
}

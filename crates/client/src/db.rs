//! The local database (docs/DESIGN.md §3.9): one SQLite file per home holding the identity (its key
//! sealed by [`crate::keystore`]), check strings, contacts with their check keys, messages,
//! partial parts, pending requests, the outbox ([`outbox`]: what waits for a ledger, and parts a
//! ledger refused), the settings and the sync position per ledger ([`ledgers`]).
//!
//! A sync batch (the parts found in one page and the new last-seen id) commits in one
//! transaction, so an interrupted sync neither loses nor duplicates a message. Incoming parts are
//! unique by `(sender fingerprint, message id, part index)` and messages by `(sender, message
//! id)`, so a duplicated or replayed entry is stored once.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use deaddrop_proto::message::MessageId;
use deaddrop_proto::rng::SystemRng;
use deaddrop_proto::{
    assemble, Address, CheckKey, CheckString, ContactCard, Contacts, Fingerprint, KnownSender,
    Opened, Part, RejectReason,
};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::error::ClientError;
use crate::home::{sync_dir, DbKey, HomeLock, KeyFile, KEY_FILE};
use crate::keystore::{self, Passphrase};
use crate::{Direction, RequestId};

mod contact_marks;
mod ledgers;
mod outbox;
mod peers;
mod window;

pub use contact_marks::InPerson;
pub use ledgers::{position_key, Position};
pub use outbox::{QueuedMessage, RefusedPart};
pub use peers::{seen_retention_ms, Recipient, MAX_INTRODUCTIONS, STALE_MS};
pub use window::Window;

/// The database file inside a home.
pub const DB_FILE: &str = "deaddrop.sqlite3";
/// How long a rotated-away check string stays accepted.
pub const CHECK_GRACE_MS: u64 = 7 * 24 * 3600 * 1000;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS identity (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    suite TEXT NOT NULL,
    name TEXT,
    address TEXT NOT NULL,
    sealed_key BLOB NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS check_strings (
    id INTEGER PRIMARY KEY,
    value BLOB NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    retired_ms INTEGER
);
CREATE TABLE IF NOT EXISTS contacts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    fingerprint BLOB NOT NULL UNIQUE,
    card TEXT NOT NULL,
    issued_key BLOB NOT NULL,
    their_key BLOB,
    confirmed INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    fingerprint BLOB PRIMARY KEY,
    address TEXT NOT NULL,
    check_string BLOB NOT NULL,
    reply_key BLOB NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'rejected')),
    first_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    contact_id INTEGER REFERENCES contacts(id) ON DELETE CASCADE,
    request_fp BLOB,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    sender_fp BLOB NOT NULL,
    message_id BLOB NOT NULL,
    text TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    sent_ms INTEGER NOT NULL,
    verified INTEGER NOT NULL DEFAULT 0,
    read INTEGER NOT NULL DEFAULT 0,
    UNIQUE (direction, sender_fp, message_id)
);
CREATE INDEX IF NOT EXISTS messages_by_contact ON messages (contact_id, time_ms);
CREATE TABLE IF NOT EXISTS parts (
    sender_fp BLOB NOT NULL,
    message_id BLOB NOT NULL,
    idx INTEGER NOT NULL,
    count INTEGER NOT NULL,
    text BLOB NOT NULL,
    sent_ms INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    verified INTEGER NOT NULL,
    PRIMARY KEY (sender_fp, message_id, idx)
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    message_row INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    entry BLOB NOT NULL,
    ledger_id INTEGER
);
CREATE TABLE IF NOT EXISTS sync (
    ledger TEXT PRIMARY KEY,
    last_id INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    n INTEGER NOT NULL
);
-- Every distinct introduction of an address not yet confirmed (peers.rs): a pending request's
-- (issued_key NULL), or an unconfirmed contact's besides the one its card holds (issued_key: the
-- key we issue to that one). The `check_string` and `reply_key` of `requests` are the newest
-- introduction's, kept for older versions of this client.
CREATE TABLE IF NOT EXISTS introductions (
    fingerprint BLOB NOT NULL,
    reply_key BLOB NOT NULL,
    check_string BLOB NOT NULL,
    issued_key BLOB,
    last_id INTEGER NOT NULL,
    PRIMARY KEY (fingerprint, reply_key)
);
INSERT INTO introductions (fingerprint, reply_key, check_string, last_id)
    SELECT r.fingerprint, r.reply_key, r.check_string, 0 FROM requests r
    WHERE r.status = 'pending'
      AND NOT EXISTS (SELECT 1 FROM introductions i WHERE i.fingerprint = r.fingerprint);
-- Message ids seen per sender (a digest of both, and the day), kept across contact removal for
-- a ledger lifetime and more (peers.rs), so replays stay duplicates.
CREATE TABLE IF NOT EXISTS seen_messages (
    digest BLOB PRIMARY KEY,
    day INTEGER NOT NULL
) WITHOUT ROWID;
-- Which of my check strings each contact last used in a verified entry (peers.rs).
CREATE TABLE IF NOT EXISTS check_acks (
    fingerprint BLOB PRIMARY KEY,
    check_string BLOB NOT NULL
);
"#;

/// The identity as stored.
#[derive(Debug, Clone)]
pub struct IdentityRow {
    /// Suite name.
    pub suite: String,
    /// Display name chosen at `init`.
    pub name: Option<String>,
    /// The address.
    pub address: Address,
    /// The sealed private key ([`crate::keystore`]).
    pub sealed_key: Vec<u8>,
}

/// A contact.
#[derive(Debug, Clone)]
pub struct Contact {
    /// Row id.
    pub id: i64,
    /// Local name.
    pub name: String,
    /// Their card as last added.
    pub card: ContactCard,
    /// The check key we issued to them.
    pub issued_key: CheckKey,
    /// The check key they issued to us, once they wrote.
    pub their_key: Option<CheckKey>,
    /// True once an entry from them verified under our key.
    pub confirmed: bool,
}

/// One message of a conversation.
#[derive(Debug, Clone)]
pub struct MessageView {
    /// Row id.
    pub id: i64,
    /// Which way it went.
    pub direction: Direction,
    /// The text.
    pub text: String,
    /// Ledger time (in) or send time (out), ms since the Unix epoch.
    pub time_ms: u64,
    /// The sender's `check` verified (in) / always true (out).
    pub verified: bool,
    /// Whether it had been read before this view.
    pub was_read: bool,
}

impl MessageView {
    /// A message from a row of `SELECT id, direction, text, time_ms, verified, read FROM
    /// messages`.
    pub(crate) fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MessageView> {
        Ok(MessageView {
            id: r.get(0)?,
            direction: r.get(1)?,
            text: r.get(2)?,
            time_ms: r.get::<_, i64>(3)? as u64,
            verified: r.get::<_, i64>(4)? != 0,
            was_read: r.get::<_, i64>(5)? != 0,
        })
    }
}

/// One line of the inbox.
#[derive(Debug, Clone)]
pub struct InboxRow {
    /// Contact name.
    pub contact: String,
    /// Unread incoming messages.
    pub unread: u64,
    /// Time of the newest message, if any.
    pub last_time_ms: Option<u64>,
}

/// A pending first message from an unknown sender.
#[derive(Debug, Clone)]
pub struct RequestView {
    /// What `accept` and `reject` take.
    pub id: RequestId,
    /// The sender's fingerprint.
    pub fingerprint: Fingerprint,
    /// The text.
    pub text: String,
    /// Ledger time.
    pub time_ms: u64,
    /// How many distinct introductions claim this address (more than 1: someone else used
    /// it too; accepting replies to each until one answers).
    pub introductions: u64,
}

/// A message completed by a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The contact's name, or `None` for a request.
    pub contact: Option<String>,
    /// The message row id (what `accept`/`reject` take for requests).
    pub id: i64,
    /// The text.
    pub text: String,
    /// Ledger time.
    pub time_ms: u64,
    /// The sender's check verified.
    pub verified: bool,
}

/// What one batch changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BatchStats {
    /// Complete messages from contacts.
    pub messages: u64,
    /// Complete messages from unknown senders.
    pub requests: u64,
    /// Entries for us that were rejected (bad check string, spoof, tampering).
    pub rejected: u64,
    /// Of those, entries whose header carried a check string we do not accept (any more): a
    /// sender with an old card of ours, or one who knows only our address.
    pub rejected_check_string: u64,
    /// Parts or messages seen before (replays, duplicates).
    pub duplicates: u64,
    /// Parts stored while waiting for the rest of their message.
    pub partial: u64,
    /// The messages completed, in order.
    pub new: Vec<NewMessage>,
}

/// One entry for us, with the ledger's id and time.
#[derive(Debug)]
pub struct FoundEntry {
    /// Ledger id.
    pub id: u64,
    /// Ledger time.
    pub time_ms: u64,
    /// What opening it gave.
    pub opened: Opened,
}

/// A part waiting in the outbox.
#[derive(Debug, Clone)]
pub struct OutboxItem {
    /// Row id.
    pub id: i64,
    /// The entry bytes (stamp to be solved).
    pub entry: Vec<u8>,
    /// The row id of its message.
    pub message_row: i64,
}

/// The receiver's view of its contacts, for [`deaddrop_proto::open`].
#[derive(Debug, Default)]
pub struct Book {
    known: HashMap<Fingerprint, (Vec<CheckKey>, bool)>,
}

impl Contacts for Book {
    fn known_sender(&self, fingerprint: &Fingerprint) -> Option<KnownSender<'_>> {
        self.known
            .get(fingerprint)
            .map(|(issued, confirmed)| KnownSender {
                issued,
                require_check: *confirmed,
            })
    }
}

/// A contacts row: id, name, card, issued key, their key, confirmed.
type ContactRow = (i64, String, String, Vec<u8>, Option<Vec<u8>>, bool);

/// An open database, with the home's shared lock.
pub struct Db {
    conn: Connection,
    home: PathBuf,
    key: DbKey,
    home_id: String,
    _lock: HomeLock,
}

/// Where `passphrase change` copies the database under its new key.
const REKEYING: &str = "deaddrop.sqlite3.rekey";
/// Where the one-time encryption of an older home copies its database.
const ENCRYPTING: &str = "deaddrop.sqlite3.enc";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Whether `path` is an unencrypted SQLite database (an older version's home).
fn is_plaintext(path: &Path) -> Result<bool, ClientError> {
    use std::io::Read;
    let mut head = [0u8; 16];
    match fs::File::open(path) {
        Ok(mut f) => Ok(f.read_exact(&mut head).is_ok() && &head == b"SQLite format 3\0"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(ClientError::io(
            format!("cannot read {}", path.display()),
            e,
        )),
    }
}

/// Removes the database and its journal files.
fn remove_db_files(home: &Path) -> Result<(), ClientError> {
    for name in [
        DB_FILE.to_string(),
        format!("{DB_FILE}-wal"),
        format!("{DB_FILE}-shm"),
        format!("{DB_FILE}-journal"),
    ] {
        let p = home.join(name);
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ClientError::io(format!("cannot remove {}", p.display()), e)),
        }
    }
    Ok(())
}

/// Puts the copy at `tmp` in the database's place (its old journal files removed first, so
/// none is ever applied to the copy).
fn replace_db(home: &Path, tmp: &Path) -> Result<(), ClientError> {
    for name in [format!("{DB_FILE}-wal"), format!("{DB_FILE}-shm")] {
        let _ = fs::remove_file(home.join(name));
    }
    let _ = fs::set_permissions(tmp, fs::Permissions::from_mode(0o600));
    fs::rename(tmp, home.join(DB_FILE))
        .map_err(|e| ClientError::io(format!("cannot rename {}", tmp.display()), e))?;
    sync_dir(home)
}

/// Copies the database of `conn` to a new file at `tmp` encrypted under `key`.
fn export(conn: &Connection, tmp: &Path, key: &DbKey) -> Result<(), ClientError> {
    for name in [
        tmp.to_path_buf(),
        PathBuf::from(format!("{}-journal", tmp.display())),
    ] {
        let _ = fs::remove_file(name);
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(tmp)
        .map_err(|e| ClientError::io(format!("cannot create {}", tmp.display()), e))?;
    let tmp_text = tmp
        .to_str()
        .ok_or_else(|| ClientError::Input("the home's path must be valid UTF-8".into()))?;
    conn.execute(
        "ATTACH DATABASE ?1 AS fresh KEY ?2",
        params![tmp_text, &*key.sql_literal()],
    )?;
    let done = conn
        .query_row("SELECT sqlcipher_export('fresh')", [], |_| Ok(()))
        .and_then(|()| conn.execute_batch("DETACH DATABASE fresh"));
    if let Err(e) = done {
        let _ = conn.execute_batch("DETACH DATABASE fresh");
        let _ = fs::remove_file(tmp);
        return Err(e.into());
    }
    fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| ClientError::io(format!("cannot sync {}", tmp.display()), e))
}

/// Encrypts the unencrypted database an older version left in `home`, once: it is copied under
/// a new key (the identity's key, sealed inside it before, now stored plain inside the
/// encryption), the key file written (sealed under the passphrase the identity's key was under,
/// checked first), and the copy put in place. Resumes an encryption a crash interrupted.
fn encrypt_legacy(
    home: &Path,
    ask: &mut dyn FnMut() -> Result<Passphrase, ClientError>,
) -> Result<(), ClientError> {
    let _ex = HomeLock::exclusive(home)?;
    let path = home.join(DB_FILE);
    let tmp = home.join(ENCRYPTING);
    if tmp.exists() && home.join(KEY_FILE).exists() {
        // The key file is written only after the copy was complete: finish the swap.
        return replace_db(home, &tmp);
    }
    if !is_plaintext(&path)? {
        // Another process finished it first.
        let _ = fs::remove_file(&tmp);
        return Ok(());
    }
    let conn = Connection::open(&path)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    let sealed: Option<Vec<u8>> = conn
        .query_row("SELECT sealed_key FROM identity WHERE one = 1", [], |r| {
            r.get(0)
        })
        .optional()
        .unwrap_or(None);
    let Some(sealed) = sealed else {
        return Err(ClientError::NoIdentity {
            home: home.display().to_string(),
        });
    };
    let pass = if keystore::is_encrypted(&sealed) {
        Some(ask()?)
    } else {
        None
    };
    let identity = keystore::open(&sealed, pass.as_ref())?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let key = DbKey::generate();
    export(&conn, &tmp, &key)?;
    drop(conn);
    {
        let c = connect(&tmp, &key)?;
        c.execute(
            "UPDATE identity SET sealed_key = ?1 WHERE one = 1",
            params![keystore::seal(&identity, None)?],
        )?;
    }
    KeyFile::write(home, KeyFile::new_id(), &[&key], pass.as_ref())?;
    replace_db(home, &tmp)
}

/// Opens the database at `path` under `key`, checking that the key is the right one.
fn connect(path: &Path, key: &DbKey) -> Result<Connection, ClientError> {
    let conn = Connection::open(path)?;
    conn.pragma_update(None, "key", &*key.sql_literal())?;
    // SQLCipher would print a wrong key's failed page checks on stderr; the error says it.
    // (Set after the key: SQLCipher sets its default level when a key first activates it.)
    conn.pragma_update(None, "cipher_log_level", "NONE")?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| {
        r.get::<_, i64>(0)
    })?;
    Ok(conn)
}

/// Opens the database under whichever of `keys` it is under.
fn connect_any(path: &Path, keys: &[DbKey]) -> Result<(Connection, DbKey), ClientError> {
    for k in keys {
        match connect(path, k) {
            Ok(c) => {
                return Ok((
                    c,
                    DbKey::from_bytes(k.as_bytes())
                        .ok_or(ClientError::KeyProtection("key length"))?,
                ))
            }
            Err(ClientError::Database(e))
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) => {}
            Err(e) => return Err(e),
        }
    }
    Err(ClientError::damaged(
        "database",
        "it does not open under the key its key file holds (the database or the key file was \
         replaced or damaged)",
    ))
}

/// Sets up a connection opened under its key: busy waits, the write-ahead log, full syncs,
/// immediate write transactions, secure deletion, the schema.
fn configure(mut conn: Connection) -> Result<Connection, rusqlite::Error> {
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // Deleted rows are overwritten with zeros, not left in free pages.
    conn.pragma_update(None, "secure_delete", "ON")?;
    // A write transaction takes the write lock when it begins, so it waits on the busy timeout
    // instead of failing at once when another process wrote since it read ("database is
    // locked").
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    conn.execute_batch(SCHEMA)?;
    conn.execute_batch(ledgers::SCHEMA)?;
    conn.execute_batch(outbox::SCHEMA)?;
    contact_marks::add_columns(&mut conn)?;
    Ok(conn)
}

fn key32(b: Vec<u8>) -> Option<[u8; 32]> {
    b.try_into().ok()
}

fn blob_fp(b: Vec<u8>) -> Result<Fingerprint, ClientError> {
    key32(b).map(Fingerprint).ok_or(ClientError::Damaged {
        what: "fingerprint",
        detail: None,
    })
}

fn check_key(b: Vec<u8>) -> Result<CheckKey, ClientError> {
    key32(b)
        .map(CheckKey::from_bytes)
        .ok_or(ClientError::Damaged {
            what: "check key",
            detail: None,
        })
}

fn parse_card(text: &str) -> Result<ContactCard, ClientError> {
    ContactCard::parse(text).map_err(|e| ClientError::damaged("card", e))
}

fn reason_name(r: RejectReason) -> &'static str {
    match r {
        RejectReason::Header => "rejected-header",
        RejectReason::CheckString => "rejected-check-string",
        RejectReason::From => "rejected-from",
        RejectReason::Cipher => "rejected-cipher",
        RejectReason::Body => "rejected-body",
        RejectReason::Address => "rejected-address",
        RejectReason::UnknownSender => "rejected-unknown-sender",
        RejectReason::Check => "rejected-check",
        _ => "rejected-other",
    }
}

impl Db {
    /// Creates a new home in `home` (the directory with mode 0700 if it is missing): a key file
    /// with a new database key, sealed under `pass` (plain without one), and an empty encrypted
    /// database. Refuses a home that holds an identity; clears what a failed `init` left.
    pub fn create(home: &Path, pass: Option<&Passphrase>) -> Result<Db, ClientError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(home)
            .map_err(|e| {
                ClientError::io(
                    format!("cannot create the home directory {}", home.display()),
                    e,
                )
            })?;
        let lock = HomeLock::exclusive(home)?;
        let path = home.join(DB_FILE);
        let exists = || ClientError::IdentityExists {
            home: home.display().to_string(),
        };
        if is_plaintext(&path)? {
            // A home of an older version: it holds an identity unless a failed `init` left it.
            let conn = Connection::open(&path)?;
            let n: i64 = conn
                .query_row("SELECT COUNT(*) FROM identity", [], |r| r.get(0))
                .unwrap_or(0);
            if n > 0 {
                return Err(exists());
            }
        } else if file_len(&path) > 0 {
            // Encrypted: refuse if it opens under its key file and holds an identity, or if it
            // cannot be checked at all (never overwrite what might be someone's data).
            let holds = match KeyFile::read(home) {
                Ok(Some(kf)) if !kf.needs_passphrase() || pass.is_some() => {
                    match kf.keys(pass).and_then(|keys| connect_any(&path, &keys)) {
                        Ok((conn, _)) => conn
                            .query_row("SELECT COUNT(*) FROM identity", [], |r| r.get::<_, i64>(0))
                            .map(|n| n > 0)
                            .unwrap_or(true),
                        Err(_) => true,
                    }
                }
                _ => true,
            };
            if holds {
                return Err(exists());
            }
        }
        remove_db_files(home)?;
        let key = DbKey::generate();
        let id = KeyFile::new_id();
        KeyFile::write(home, id, &[&key], pass)?;
        // The database and its journals (which take its mode) are the user's alone.
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| ClientError::io(format!("cannot create {}", path.display()), e))?;
        let conn = match connect(&path, &key).and_then(|c| configure(c).map_err(Into::into)) {
            Ok(c) => c,
            Err(e) => {
                let _ = remove_db_files(home);
                let _ = fs::remove_file(home.join(KEY_FILE));
                return Err(e);
            }
        };
        sync_dir(home)?;
        Ok(Db {
            conn,
            home: home.to_path_buf(),
            key,
            home_id: hex(&id),
            _lock: lock,
        })
    }

    /// Opens the home in `home`: takes its shared lock, encrypts it first if an older version
    /// left it unencrypted, and opens the database under the key kept in the kernel keyring
    /// (`deaddrop unlock`) or, failing that, under the key file opened with the passphrase
    /// `ask` gives (asked only when needed).
    pub fn open(
        home: &Path,
        ask: &mut dyn FnMut() -> Result<Passphrase, ClientError>,
    ) -> Result<Db, ClientError> {
        let path = home.join(DB_FILE);
        if !home.join(KEY_FILE).exists() && file_len(&path) == 0 {
            return Err(ClientError::NoIdentity {
                home: home.display().to_string(),
            });
        }
        let mut lock = HomeLock::shared(home)?;
        if is_plaintext(&path)? || home.join(ENCRYPTING).exists() {
            drop(lock);
            encrypt_legacy(home, ask)?;
            lock = HomeLock::shared(home)?;
        }
        let kf = KeyFile::read(home)?.ok_or_else(|| {
            ClientError::damaged(
                "key file",
                format!(
                    "{} is missing, and the database cannot be opened without it",
                    home.join(KEY_FILE).display()
                ),
            )
        })?;
        let home_id = kf.id_hex();
        let mut opened = None;
        if kf.needs_passphrase() {
            if let Some(k) = crate::keyring::load(&home_id) {
                // A key kept from before a passphrase change no longer opens it: ask then.
                opened = connect_any(&path, &[k]).ok();
            }
        }
        let (conn, key) = match opened {
            Some(o) => o,
            None => {
                let pass = if kf.needs_passphrase() {
                    Some(ask()?)
                } else {
                    None
                };
                connect_any(&path, &kf.keys(pass.as_ref())?)?
            }
        };
        let conn = configure(conn)?;
        Ok(Db {
            conn,
            home: home.to_path_buf(),
            key,
            home_id,
            _lock: lock,
        })
    }

    /// Changes the passphrase of the home in `home` (to none with `new` = `None`) and re-keys
    /// the database: a new random key, the database copied under it, the key file sealed anew.
    /// Needs the home alone ([`ClientError::HomeBusy`] names the processes using it) and the
    /// current passphrase from `ask`, even when the home is unlocked. A crash at any point leaves
    /// a home that opens with the new passphrase (or, before the key file was replaced, the old).
    pub fn change_passphrase(
        home: &Path,
        ask: &mut dyn FnMut() -> Result<Passphrase, ClientError>,
        new: Option<&Passphrase>,
    ) -> Result<(), ClientError> {
        let db = Db::open(home, ask)?;
        let (conn, old_key, home_id) = (db.conn, db.key, db.home_id);
        drop(db._lock);
        let _ex = HomeLock::exclusive(home)?;
        let kf = KeyFile::read(home)?.ok_or(ClientError::Damaged {
            what: "key file",
            detail: None,
        })?;
        if kf.needs_passphrase() {
            // Unlocked or not, changing the passphrase takes the current one.
            kf.keys(Some(&ask()?))?;
        }
        let new_key = DbKey::generate();
        let tmp = home.join(REKEYING);
        export(&conn, &tmp, &new_key)?;
        drop(conn);
        KeyFile::write(home, kf.id(), &[&new_key, &old_key], new)?;
        replace_db(home, &tmp)?;
        KeyFile::write(home, kf.id(), &[&new_key], new)?;
        let _ = crate::keyring::forget(&home_id);
        Ok(())
    }

    /// A second connection to this home's database, under the key this one was opened with
    /// (the passphrase is not asked again), with a shared lock of its own: `deaddrop chat`
    /// follows the ledger on one connection while the screen reads and writes on another.
    pub fn reopen(&self) -> Result<Db, ClientError> {
        let lock = HomeLock::shared(&self.home)?;
        let key = DbKey::from_bytes(self.key.as_bytes())
            .ok_or(ClientError::KeyProtection("key length"))?;
        let conn = configure(connect(&self.home.join(DB_FILE), &key)?)?;
        Ok(Db {
            conn,
            home: self.home.clone(),
            key,
            home_id: self.home_id.clone(),
            _lock: lock,
        })
    }

    /// A number that changes whenever another connection commits to the database (SQLite's
    /// `data_version`), so that a long-running follower sees contacts added elsewhere.
    pub fn data_version(&self) -> Result<i64, ClientError> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// The key the database is under (for `deaddrop unlock`).
    pub fn key(&self) -> &DbKey {
        &self.key
    }

    /// The home's id (names it in the kernel keyring; not secret).
    pub fn home_id(&self) -> &str {
        &self.home_id
    }

    /// The home directory.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The identity, or [`ClientError::NoIdentity`].
    pub fn identity(&self) -> Result<IdentityRow, ClientError> {
        let row = self
            .conn
            .query_row(
                "SELECT suite, name, address, sealed_key FROM identity WHERE one = 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                    ))
                },
            )
            .optional()?;
        let (suite, name, address, sealed_key) = row.ok_or_else(|| ClientError::NoIdentity {
            home: self.home.display().to_string(),
        })?;
        let address = Address::parse(&address).map_err(|e| ClientError::damaged("address", e))?;
        Ok(IdentityRow {
            suite,
            name,
            address,
            sealed_key,
        })
    }

    /// When the identity was created, ms since the Unix epoch (this device's clock).
    pub fn identity_created_ms(&self) -> Result<u64, ClientError> {
        let t: Option<i64> = self
            .conn
            .query_row("SELECT created_ms FROM identity WHERE one = 1", [], |r| {
                r.get(0)
            })
            .optional()?;
        let t = t.ok_or_else(|| ClientError::NoIdentity {
            home: self.home.display().to_string(),
        })?;
        Ok(u64::try_from(t).unwrap_or(0))
    }

    /// Whether an identity exists.
    pub fn has_identity(&self) -> Result<bool, ClientError> {
        Ok(self
            .conn
            .query_row("SELECT COUNT(*) FROM identity", [], |r| r.get::<_, i64>(0))?
            > 0)
    }

    /// Stores a new identity and its first check string. Refuses to overwrite one.
    pub fn create_identity(
        &mut self,
        address: &Address,
        name: Option<&str>,
        sealed_key: &[u8],
        check: &CheckString,
        now_ms: u64,
    ) -> Result<(), ClientError> {
        let tx = self.conn.transaction()?;
        if tx.query_row("SELECT COUNT(*) FROM identity", [], |r| r.get::<_, i64>(0))? > 0 {
            return Err(ClientError::IdentityExists {
                home: self.home.display().to_string(),
            });
        }
        tx.execute(
            "INSERT INTO identity (one, suite, name, address, sealed_key, created_ms) VALUES (1, ?1, ?2, ?3, ?4, ?5)",
            params![address.suite().name(), name, address.to_text(), sealed_key, now_ms as i64],
        )?;
        tx.execute(
            "INSERT INTO check_strings (value, created_ms) VALUES (?1, ?2)",
            params![&check.export_bytes()[..], now_ms as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The check strings accepted now, newest first.
    pub fn accepted_checks(&self, now_ms: u64) -> Result<Vec<CheckString>, ClientError> {
        let mut st = self.conn.prepare(
            "SELECT value FROM check_strings WHERE retired_ms IS NULL OR retired_ms + ?1 > ?2 ORDER BY created_ms DESC, id DESC",
        )?;
        let rows = st.query_map(params![CHECK_GRACE_MS as i64, now_ms as i64], |r| {
            r.get::<_, Vec<u8>>(0)
        })?;
        let mut out = Vec::new();
        for v in rows {
            let v: [u8; 16] = v?.try_into().map_err(|_| ClientError::Damaged {
                what: "check string",
                detail: None,
            })?;
            out.push(CheckString::from_bytes(v));
        }
        Ok(out)
    }

    /// My contact card: my address, the check strings accepted now (at most four), my name.
    pub fn my_card(&self, now_ms: u64) -> Result<ContactCard, ClientError> {
        let id = self.identity()?;
        let mut checks = self.accepted_checks(now_ms)?;
        checks.truncate(deaddrop_proto::card::MAX_CHECK_STRINGS);
        ContactCard::new(id.address, checks, id.name).map_err(ClientError::MyCard)
    }

    /// Starts a new check string; the others stay accepted for [`CHECK_GRACE_MS`].
    pub fn rotate_check(&mut self, new: &CheckString, now_ms: u64) -> Result<(), ClientError> {
        let tx = self.conn.transaction()?;
        peers::before_rotation(&tx)?;
        tx.execute(
            "UPDATE check_strings SET retired_ms = ?1 WHERE retired_ms IS NULL",
            params![now_ms as i64],
        )?;
        tx.execute(
            "INSERT INTO check_strings (value, created_ms) VALUES (?1, ?2)",
            params![&new.export_bytes()[..], now_ms as i64],
        )?;
        tx.commit()?;
        Ok(())
    }

    fn contact_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ContactRow> {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get::<_, i64>(5)? != 0,
        ))
    }

    fn build_contact(
        row: (i64, String, String, Vec<u8>, Option<Vec<u8>>, bool),
    ) -> Result<Contact, ClientError> {
        let (id, name, card, issued, their, confirmed) = row;
        Ok(Contact {
            id,
            name,
            card: parse_card(&card)?,
            issued_key: check_key(issued)?,
            their_key: their.map(check_key).transpose()?,
            confirmed,
        })
    }

    const CONTACT_COLS: &'static str = "id, name, card, issued_key, their_key, confirmed";

    /// All contacts, by name.
    pub fn contacts(&self) -> Result<Vec<Contact>, ClientError> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {} FROM contacts ORDER BY name",
            Self::CONTACT_COLS
        ))?;
        let rows = st.query_map([], Self::contact_from_row)?;
        rows.map(|r| Self::build_contact(r?)).collect()
    }

    /// The contact called `name`.
    pub fn contact(&self, name: &str) -> Result<Contact, ClientError> {
        let row = self
            .conn
            .query_row(
                &format!(
                    "SELECT {} FROM contacts WHERE name = ?1",
                    Self::CONTACT_COLS
                ),
                [name],
                Self::contact_from_row,
            )
            .optional()?
            .ok_or_else(|| ClientError::UnknownContact(name.to_string()))?;
        Self::build_contact(row)
    }

    /// Adds a contact from its card, issuing it `issued`. A pending request from the same
    /// address becomes this contact's conversation.
    pub fn add_contact(
        &mut self,
        name: &str,
        card: &ContactCard,
        issued: &CheckKey,
        now_ms: u64,
    ) -> Result<Contact, ClientError> {
        let me = self.identity()?;
        let fp = card.address().fingerprint();
        if fp == me.address.fingerprint() {
            return Err(ClientError::Input(
                "that is your own card; add the card of the person you want to write to".into(),
            ));
        }
        if card.address().suite() != me.address.suite() {
            return Err(ClientError::Input(format!(
                "that card is for suite {}, but your identity is {}: you cannot write to each other",
                card.address().suite(),
                me.address.suite()
            )));
        }
        let tx = self.conn.transaction()?;
        if let Some(other) = tx
            .query_row(
                "SELECT name FROM contacts WHERE fingerprint = ?1",
                [&fp.0[..]],
                |r| r.get::<_, String>(0),
            )
            .optional()?
        {
            return Err(ClientError::ContactExists(format!(
                "that card is already your contact `{other}`"
            )));
        }
        if tx.query_row(
            "SELECT COUNT(*) FROM contacts WHERE name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )? > 0
        {
            return Err(ClientError::ContactExists(format!(
                "you already have a contact named `{name}`"
            )));
        }
        // A pending request's newest introduction gives the reply key; its others stay, each
        // sealed to until an answer verifies (peers.rs).
        let pending: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM requests WHERE fingerprint = ?1 AND status = 'pending')",
            [&fp.0[..]],
            |r| r.get(0),
        )?;
        let reply = if pending {
            peers::adopt_introductions(&tx, &fp)?.map(|k| zeroize::Zeroizing::new(k.export_bytes()))
        } else {
            None
        };
        tx.execute(
            "DELETE FROM introductions WHERE fingerprint = ?1 AND issued_key IS NULL",
            [&fp.0[..]],
        )?;
        tx.execute(
            "INSERT INTO contacts (name, fingerprint, card, issued_key, their_key, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![name, &fp.0[..], card.to_text(), &issued.export_bytes()[..], reply.as_ref().map(|k| &k[..]), now_ms as i64],
        )?;
        let id = tx.last_insert_rowid();
        adopt_requests(&tx, id, &fp)?;
        tx.commit()?;
        self.contact(name)
    }

    /// Removes a contact and its conversation.
    pub fn remove_contact(&mut self, name: &str) -> Result<(), ClientError> {
        let tx = self.conn.transaction()?;
        let Some((id, fp)) = tx
            .query_row(
                "SELECT id, fingerprint FROM contacts WHERE name = ?1",
                [name],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
            )
            .optional()?
        else {
            return Err(ClientError::UnknownContact(name.to_string()));
        };
        // Their message ids outlive the conversation, so replays stay duplicates.
        peers::remember_seen(&tx, "contact_id = ?1", &id)?;
        tx.execute("DELETE FROM introductions WHERE fingerprint = ?1", [&fp])?;
        tx.execute("DELETE FROM check_acks WHERE fingerprint = ?1", [&fp])?;
        tx.execute("DELETE FROM contacts WHERE id = ?1", [id])?;
        tx.commit()?;
        self.forget_deleted()
    }

    /// Moves what deletes left in the write-ahead log into the (zeroing) database file and
    /// empties the log, so that deleted rows leave no copy on disk.
    pub fn forget_deleted(&self) -> Result<(), ClientError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// The contact book for opening entries.
    pub fn book(&self) -> Result<Book, ClientError> {
        let mut book = Book::default();
        for c in self.contacts()? {
            book.known.insert(
                c.card.address().fingerprint(),
                (vec![c.issued_key.clone()], c.confirmed),
            );
        }
        // The keys issued to an unconfirmed contact's other introductions (peers.rs).
        let mut st = self.conn.prepare(
            "SELECT fingerprint, issued_key FROM introductions WHERE issued_key IS NOT NULL ORDER BY rowid",
        )?;
        let rows = st.query_map([], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        for row in rows {
            let (fp, key) = row?;
            if let Some((issued, _)) = book.known.get_mut(&blob_fp(fp)?) {
                issued.push(check_key(key)?);
            }
        }
        Ok(book)
    }

    /// Records an outgoing message and its sealed parts (the outbox) in one transaction, before
    /// anything is sent, so a retry re-sends the same entries and never a second message.
    pub fn record_outgoing(
        &mut self,
        contact: &Contact,
        message_id: &MessageId,
        text: &str,
        now_ms: u64,
        entries: &[Vec<u8>],
    ) -> Result<i64, ClientError> {
        let me = self.identity()?.address.fingerprint();
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO messages (contact_id, direction, sender_fp, message_id, text, time_ms, sent_ms, verified, read)
             VALUES (?1, 'out', ?2, ?3, ?4, ?5, ?5, 1, 1)",
            params![contact.id, &me.0[..], &message_id.0[..], text, now_ms as i64],
        )?;
        let row = tx.last_insert_rowid();
        for (i, e) in entries.iter().enumerate() {
            tx.execute(
                "INSERT INTO outbox (message_row, idx, entry) VALUES (?1, ?2, ?3)",
                params![row, i as i64, e],
            )?;
        }
        tx.commit()?;
        Ok(row)
    }

    /// Parts not yet acknowledged by a ledger, oldest first, but those a ledger refused for good
    /// ([`Db::queued_parts`] has them all).
    pub fn pending_outbox(&self) -> Result<Vec<OutboxItem>, ClientError> {
        self.queued_parts(false)
    }

    /// Forgets an outbox part the ledger acknowledged: neither its bytes nor its ledger id stay
    /// (they would prove which public entries this device wrote).
    pub fn outbox_sent(&mut self, item: i64) -> Result<(), ClientError> {
        self.conn
            .execute("DELETE FROM outbox WHERE id = ?1", params![item])?;
        Ok(())
    }

    /// The last id seen on `ledger`.
    pub fn last_id(&self, ledger: &str) -> Result<u64, ClientError> {
        Ok(self
            .conn
            .query_row(
                "SELECT last_id FROM sync WHERE ledger = ?1",
                [ledger],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .unwrap_or(0) as u64)
    }

    /// Stores one batch of entries found for us and the new position, in one transaction.
    pub fn apply_batch(
        &mut self,
        ledger: &str,
        next_after: u64,
        found: Vec<FoundEntry>,
    ) -> Result<BatchStats, ClientError> {
        let tx = self.conn.transaction()?;
        let mut stats = BatchStats::default();
        for f in found {
            match f.opened {
                Opened::NotForMe => {}
                Opened::Rejected(reason) => {
                    stats.rejected += 1;
                    if reason == RejectReason::CheckString {
                        stats.rejected_check_string += 1;
                    }
                    bump(&tx, reason_name(reason))?;
                }
                Opened::Message(m) => {
                    let contact: Option<(i64, bool, Option<Vec<u8>>)> = tx
                        .query_row(
                            "SELECT id, confirmed, their_key FROM contacts WHERE fingerprint = ?1",
                            [&m.sender.0[..]],
                            |r| Ok((r.get(0)?, r.get::<_, i64>(1)? != 0, r.get(2)?)),
                        )
                        .optional()?;
                    let Some((cid, confirmed, held)) = contact else {
                        // Removed between scanning and storing: drop it like a stranger's
                        // message without an address.
                        stats.rejected += 1;
                        continue;
                    };
                    // The entries were opened with the contact book from before this batch. If
                    // an earlier entry of the batch confirmed the contact, a failing check is a
                    // spoof from then on (PROTOCOL.md §8.3), as `open` would have said with the
                    // current book: the page boundaries must not decide what is shown.
                    if confirmed && !m.verified {
                        stats.rejected += 1;
                        bump(&tx, reason_name(RejectReason::Check))?;
                        continue;
                    }
                    // Take the contact's reply key from a verified entry, or from an unverified
                    // one only while we have none: an entry nobody authenticated must not
                    // replace a key we already hold.
                    if m.verified {
                        // The answer names the introduction it answered; the others go.
                        peers::settle_introductions(&tx, cid, &m)?;
                        tx.execute(
                            "UPDATE contacts SET their_key = ?2, confirmed = 1 WHERE id = ?1",
                            params![cid, &m.reply_key.export_bytes()[..]],
                        )?;
                        peers::record_ack(&tx, &m.sender, &m.header_check)?;
                    } else if !confirmed {
                        match held {
                            None => {
                                tx.execute(
                                    "UPDATE contacts SET their_key = ?2 WHERE id = ?1 AND their_key IS NULL",
                                    params![cid, &m.reply_key.export_bytes()[..]],
                                )?;
                            }
                            // Another introduction of this unconfirmed address: sealed to as
                            // well until an answer settles which is genuine (PROTOCOL.md §8.5).
                            Some(held) => {
                                if let Some(check) = &m.sender_check {
                                    if check_key(held)? != m.reply_key {
                                        peers::record_introduction(
                                            &tx,
                                            &m.sender,
                                            check,
                                            &m.reply_key,
                                            f.id,
                                            Some(&CheckKey::generate(&mut SystemRng)),
                                            MAX_INTRODUCTIONS - 1,
                                        )?;
                                    }
                                }
                            }
                        }
                    }
                    let new = store_part(
                        &tx,
                        &m.sender,
                        &m.part,
                        f.time_ms,
                        m.verified,
                        Some(cid),
                        &mut stats,
                    )?;
                    // A new verified message carrying the sender's check string: it rotated
                    // (PROTOCOL.md §8.3). Not from a duplicate: a replay must not roll it back.
                    if let (true, true, Some(check)) = (new, m.verified, &m.sender_check) {
                        peers::take_check_string(&tx, cid, check)?;
                    }
                }
                Opened::Request(q) => {
                    let fp = q.sender.fingerprint();
                    let status: Option<String> = tx
                        .query_row(
                            "SELECT status FROM requests WHERE fingerprint = ?1",
                            [&fp.0[..]],
                            |r| r.get(0),
                        )
                        .optional()?;
                    if status.as_deref() == Some("rejected") {
                        bump(&tx, "dropped-rejected-sender")?;
                        continue;
                    }
                    tx.execute(
                        "INSERT INTO requests (fingerprint, address, check_string, reply_key, first_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (fingerprint) DO UPDATE SET reply_key = excluded.reply_key, check_string = excluded.check_string",
                        params![&fp.0[..], q.sender.to_text(), &q.sender_check.export_bytes()[..], &q.reply_key.export_bytes()[..], f.time_ms as i64],
                    )?;
                    // Anyone who knows the address can introduce themselves under it: every
                    // distinct introduction is kept (PROTOCOL.md §8.5).
                    peers::record_introduction(
                        &tx,
                        &fp,
                        &q.sender_check,
                        &q.reply_key,
                        f.id,
                        None,
                        MAX_INTRODUCTIONS,
                    )?;
                    store_part(&tx, &fp, &q.part, f.time_ms, false, None, &mut stats)?;
                }
            }
        }
        tx.execute(
            "INSERT INTO sync (ledger, last_id) VALUES (?1, ?2) ON CONFLICT (ledger) DO UPDATE SET last_id = max(last_id, excluded.last_id)",
            params![ledger, next_after as i64],
        )?;
        tx.commit()?;
        Ok(stats)
    }

    /// The conversation with `name`, oldest first; marks it read.
    pub fn conversation(&mut self, name: &str) -> Result<Vec<MessageView>, ClientError> {
        self.conversation_tail(name, None)
    }

    /// The newest `limit` messages (all with `None`) of the conversation with `name`, oldest
    /// first; marks the whole conversation read. `deaddrop chat` keeps only so many in memory.
    pub fn conversation_tail(
        &mut self,
        name: &str,
        limit: Option<usize>,
    ) -> Result<Vec<MessageView>, ClientError> {
        let c = self.contact(name)?;
        // SQLite reads a negative LIMIT as none.
        let limit = limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let mut st = self.conn.prepare(
            "SELECT id, direction, text, time_ms, verified, read FROM messages WHERE contact_id = ?1
             ORDER BY time_ms DESC, id DESC LIMIT ?2",
        )?;
        let rows = st.query_map(params![c.id, limit], MessageView::from_row)?;
        let mut out = rows.collect::<Result<Vec<_>, _>>()?;
        out.reverse();
        drop(st);
        self.conn.execute(
            "UPDATE messages SET read = 1 WHERE contact_id = ?1 AND read = 0",
            [c.id],
        )?;
        Ok(out)
    }

    /// Conversations with unread counts, busiest first.
    pub fn inbox(&self) -> Result<Vec<InboxRow>, ClientError> {
        let mut st = self.conn.prepare(
            "SELECT c.name,
                    COALESCE(SUM(CASE WHEN m.direction = 'in' AND m.read = 0 THEN 1 ELSE 0 END), 0),
                    MAX(m.time_ms)
             FROM contacts c LEFT JOIN messages m ON m.contact_id = c.id
             GROUP BY c.id ORDER BY MAX(m.time_ms) DESC NULLS LAST, c.name",
        )?;
        let rows = st.query_map([], |r| {
            Ok(InboxRow {
                contact: r.get(0)?,
                unread: r.get::<_, i64>(1)? as u64,
                last_time_ms: r.get::<_, Option<i64>>(2)?.map(|t| t as u64),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Pending requests, oldest first.
    pub fn requests(&self) -> Result<Vec<RequestView>, ClientError> {
        let mut st = self.conn.prepare(
            "SELECT m.id, m.request_fp, m.text, m.time_ms,
                    (SELECT COUNT(*) FROM introductions i WHERE i.fingerprint = m.request_fp)
             FROM messages m JOIN requests r ON r.fingerprint = m.request_fp
             WHERE m.contact_id IS NULL AND r.status = 'pending' ORDER BY m.time_ms, m.id",
        )?;
        let rows = st.query_map([], |r| {
            Ok((
                r.get::<_, RequestId>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, fp, text, t, n) = row?;
            out.push(RequestView {
                id,
                fingerprint: blob_fp(fp)?,
                text,
                time_ms: t as u64,
                introductions: n.max(1) as u64,
            });
        }
        Ok(out)
    }

    fn request_fp(&self, id: RequestId) -> Result<Vec<u8>, ClientError> {
        self.conn
            .query_row(
                "SELECT m.request_fp FROM messages m JOIN requests r ON r.fingerprint = m.request_fp
                 WHERE m.id = ?1 AND m.contact_id IS NULL AND r.status = 'pending'",
                [id],
                |r| r.get(0),
            )
            .optional()?
            .ok_or(ClientError::UnknownRequest(id))
    }

    /// Accepts a request: its sender becomes contact `name` (with a check key we issue now), and
    /// all its pending messages become the start of the conversation.
    pub fn accept_request(
        &mut self,
        id: RequestId,
        name: &str,
        issued: &CheckKey,
        now_ms: u64,
    ) -> Result<Contact, ClientError> {
        let fp = self.request_fp(id)?;
        let (address, check): (String, Vec<u8>) = self.conn.query_row(
            "SELECT address, check_string FROM requests WHERE fingerprint = ?1",
            [&fp],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let address = Address::parse(&address).map_err(|e| ClientError::damaged("request", e))?;
        // The newest introduction's check string; add_contact keeps the others (peers.rs).
        let check = match peers::newest_introduction(&self.conn, &fp)? {
            Some((_, check)) => check,
            None => {
                CheckString::from_bytes(check.try_into().map_err(|_| ClientError::Damaged {
                    what: "request",
                    detail: None,
                })?)
            }
        };
        let card = ContactCard::new(address, vec![check], None)
            .map_err(|e| ClientError::damaged("request", e))?;
        let contact = self.add_contact(name, &card, issued, now_ms)?;
        self.conn
            .execute("DELETE FROM requests WHERE fingerprint = ?1", [&fp])?;
        Ok(contact)
    }

    /// Rejects a request: its messages are deleted and later ones from the same sender dropped.
    pub fn reject_request(&mut self, id: RequestId) -> Result<(), ClientError> {
        let fp = self.request_fp(id)?;
        let tx = self.conn.transaction()?;
        peers::remember_seen(&tx, "request_fp = ?1 AND contact_id IS NULL", &fp)?;
        tx.execute("DELETE FROM introductions WHERE fingerprint = ?1", [&fp])?;
        tx.execute(
            "DELETE FROM messages WHERE request_fp = ?1 AND contact_id IS NULL",
            [&fp],
        )?;
        tx.execute("DELETE FROM parts WHERE sender_fp = ?1", [&fp])?;
        tx.execute(
            "UPDATE requests SET status = 'rejected' WHERE fingerprint = ?1",
            [&fp],
        )?;
        tx.commit()?;
        self.forget_deleted()?;
        Ok(())
    }

    /// Local counters (rejections by reason, ...).
    pub fn counters(&self) -> Result<Vec<(String, u64)>, ClientError> {
        let mut st = self
            .conn
            .prepare("SELECT name, n FROM counters ORDER BY name")?;
        let rows = st.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn bump(tx: &Transaction<'_>, name: &str) -> Result<(), ClientError> {
    tx.execute(
        "INSERT INTO counters (name, n) VALUES (?1, 1) ON CONFLICT (name) DO UPDATE SET n = n + 1",
        [name],
    )?;
    Ok(())
}

/// Moves a sender's pending request messages into contact `id`'s conversation.
fn adopt_requests(tx: &Transaction<'_>, id: i64, fp: &Fingerprint) -> Result<(), ClientError> {
    tx.execute("UPDATE messages SET contact_id = ?1, request_fp = NULL WHERE request_fp = ?2 AND contact_id IS NULL", params![id, &fp.0[..]])?;
    tx.execute("DELETE FROM requests WHERE fingerprint = ?1", [&fp.0[..]])?;
    Ok(())
}

/// Stores one part; completes the message when its last part arrives. Returns whether the part
/// was new (not a duplicate, a replay or stale).
fn store_part(
    tx: &Transaction<'_>,
    sender: &Fingerprint,
    part: &Part,
    time_ms: u64,
    verified: bool,
    contact: Option<i64>,
    stats: &mut BatchStats,
) -> Result<bool, ClientError> {
    // Seen before, even in a conversation removed since: a duplicate (PROTOCOL.md §7.3).
    if peers::seen(tx, sender, &part.message_id.0)? {
        stats.duplicates += 1;
        return Ok(false);
    }
    // Sealed so long before it reached the ledger that its id could have been forgotten: it
    // cannot be told from a replay.
    if time_ms.saturating_sub(part.sent_at_ms) > STALE_MS {
        stats.rejected += 1;
        bump(tx, "rejected-stale")?;
        return Ok(false);
    }
    let inserted = tx.execute(
        "INSERT OR IGNORE INTO parts (sender_fp, message_id, idx, count, text, sent_ms, time_ms, verified)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![&sender.0[..], &part.message_id.0[..], part.index, part.count, &part.text[..], part.sent_at_ms as i64, time_ms as i64, verified],
    )?;
    if inserted == 0 {
        stats.duplicates += 1;
        return Ok(false);
    }
    let have: i64 = tx.query_row(
        "SELECT COUNT(*) FROM parts WHERE sender_fp = ?1 AND message_id = ?2 AND count = ?3",
        params![&sender.0[..], &part.message_id.0[..], part.count],
        |r| r.get(0),
    )?;
    if have < i64::from(part.count) {
        stats.partial += 1;
        return Ok(true);
    }
    let mut st = tx.prepare(
        "SELECT idx, text, sent_ms, time_ms, verified FROM parts WHERE sender_fp = ?1 AND message_id = ?2 AND count = ?3 ORDER BY idx",
    )?;
    let mut parts = Vec::new();
    let (mut sent_ms, mut last_time, mut all_verified) = (0u64, 0u64, true);
    let rows = st.query_map(
        params![&sender.0[..], &part.message_id.0[..], part.count],
        |r| {
            Ok((
                r.get::<_, u16>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)? != 0,
            ))
        },
    )?;
    for row in rows {
        let (idx, text, sent, t, v) = row?;
        // In index order, so the message's sent-at is its last part's (PROTOCOL.md §7.2).
        sent_ms = sent as u64;
        last_time = last_time.max(t as u64);
        all_verified &= v;
        parts.push(Part {
            message_id: part.message_id,
            index: idx,
            count: part.count,
            sent_at_ms: sent_ms,
            text: zeroize::Zeroizing::new(text),
        });
    }
    drop(st);
    let bytes = assemble(&parts).map_err(|e| ClientError::damaged("message parts", e))?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let inserted = tx.execute(
        "INSERT OR IGNORE INTO messages (contact_id, request_fp, direction, sender_fp, message_id, text, time_ms, sent_ms, verified)
         VALUES (?1, ?2, 'in', ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            contact,
            if contact.is_none() { Some(&sender.0[..]) } else { None },
            &sender.0[..],
            &part.message_id.0[..],
            text,
            last_time.max(time_ms) as i64,
            sent_ms as i64,
            all_verified
        ],
    )?;
    tx.execute(
        "DELETE FROM parts WHERE sender_fp = ?1 AND message_id = ?2",
        params![&sender.0[..], &part.message_id.0[..]],
    )?;
    peers::mark_seen(tx, sender, &part.message_id.0, last_time.max(time_ms))?;
    if inserted == 0 {
        stats.duplicates += 1;
        return Ok(false);
    }
    let id = tx.last_insert_rowid();
    let name = match contact {
        Some(cid) => Some(
            tx.query_row("SELECT name FROM contacts WHERE id = ?1", [cid], |r| {
                r.get::<_, String>(0)
            })?,
        ),
        None => None,
    };
    if contact.is_some() {
        stats.messages += 1;
    } else {
        stats.requests += 1;
    }
    stats.new.push(NewMessage {
        contact: name,
        id,
        text,
        time_ms: last_time.max(time_ms),
        verified: all_verified,
    });
    Ok(true)
}

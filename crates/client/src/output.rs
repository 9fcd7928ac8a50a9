//! What the `deaddrop` command prints with `--json`: one struct per output, so the command that
//! prints a document and the script (or test) that reads it share one definition.
//!
//! Field names are a contract with scripts: renaming one is a breaking change. Fields are
//! declared in alphabetical order because that is the order in which the command has always
//! printed them (except [`MessageJson`], which has its own, older order); [`WatchEventJson`]
//! lines are printed through `serde_json::Value`, which sorts keys for the same reason.
//! Times are milliseconds since the Unix epoch; fingerprints are in their short form.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Direction, RequestId};

/// `deaddrop --json init`: the identity just created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitJson {
    /// The new contact card, to give to the people who should write to you.
    pub card: String,
    /// Whether the home is protected by a passphrase (not with `--no-passphrase`).
    pub encrypted: bool,
    /// The identity's fingerprint.
    pub fingerprint: String,
    /// The home directory that holds the identity.
    pub home: String,
    /// The suite: `xwing` or `rsa-oaep`.
    pub suite: String,
}

/// `deaddrop --json unlock`: the home's key is kept in the kernel keyring.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnlockJson {
    /// The home directory unlocked.
    pub home: String,
    /// For how many seconds the key is kept.
    pub seconds: u64,
}

/// `deaddrop --json lock`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockJson {
    /// Whether a kept key was forgotten (false: the home was not unlocked).
    pub locked: bool,
}

/// `deaddrop --json passphrase change`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassphraseJson {
    /// Whether the home has a passphrase now (false after `--no-passphrase`).
    pub encrypted: bool,
}

/// `deaddrop --json card`: your current contact card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardJson {
    /// The card text (`deaddrop-card-v1:...`).
    pub card: String,
    /// The identity's fingerprint.
    pub fingerprint: String,
    /// The display name on the card, if any.
    pub name: Option<String>,
    /// The PNG file the card's QR code was written to (`card --qr-png FILE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qr_png: Option<String>,
    /// The suite: `xwing` or `rsa-oaep`.
    pub suite: String,
}

/// `deaddrop --json contact add`: the contact just added.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactAddedJson {
    /// Their fingerprint, to compare in person.
    pub fingerprint: String,
    /// The name you gave them.
    pub name: String,
    /// Their suite.
    pub suite: String,
}

/// One element of `deaddrop --json contact list`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactJson {
    /// The display name on their card, if any.
    pub card_name: Option<String>,
    /// Their fingerprint.
    pub fingerprint: String,
    /// The name you gave them.
    pub name: String,
    /// Whether their messages proved they hold the key of their card ("confirmed by a reply").
    pub verified: bool,
    /// Whether you marked their fingerprint as compared in person (`contact verify`).
    #[serde(default)]
    pub verified_in_person: bool,
}

/// `deaddrop --json contact show NAME`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactShowJson {
    /// Their card, as added.
    pub card: String,
    /// The display name on their card, if any.
    pub card_name: Option<String>,
    /// Their fingerprint, short form.
    pub fingerprint: String,
    /// Their fingerprint in full, as hex.
    pub fingerprint_hex: String,
    /// How many introductions of their address your messages go to: 1, or more while others
    /// claim the address too and they have not answered yet.
    #[serde(default = "one")]
    pub introductions: u64,
    /// The name you gave them.
    pub name: String,
    /// Their suite.
    pub suite: String,
    /// Whether their messages proved they hold the key of their card ("confirmed by a reply").
    pub verified: bool,
    /// Whether you marked their fingerprint as compared in person (`contact verify`).
    #[serde(default)]
    pub verified_in_person: bool,
    /// When you did, ms since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_in_person_at: Option<u64>,
}

/// `deaddrop --json contact rename OLD NEW`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRenamedJson {
    /// The name they had.
    pub from: String,
    /// The name they have now.
    pub to: String,
}

/// `deaddrop --json contact verify NAME`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactVerifiedJson {
    /// Their fingerprint, short form, as compared.
    pub fingerprint: String,
    /// The contact.
    pub name: String,
    /// Whether their fingerprint is marked as compared in person now (false after `--undo`).
    pub verified_in_person: bool,
}

/// `deaddrop --json man --out DIR`: the pages written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManJson {
    /// The files, sorted.
    pub files: Vec<String>,
}

/// `deaddrop --json contact update CARD`: the contact whose card was replaced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactUpdatedJson {
    /// Whether the card differed from the one held.
    pub changed: bool,
    /// Their fingerprint.
    pub fingerprint: String,
    /// The name you gave them.
    pub name: String,
}

/// `deaddrop --json contact remove NAME`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactRemovedJson {
    /// The name of the contact removed.
    pub removed: String,
}

fn one() -> u64 {
    1
}

fn one_usize() -> usize {
    1
}

/// `deaddrop --json send`: what was appended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendJson {
    /// Copies of the message sealed: 1, or one per introduction of an unconfirmed contact's
    /// address while several claim it.
    #[serde(default = "one_usize")]
    pub copies: usize,
    /// The ledger ids of the parts, in order.
    pub ids: Vec<u64>,
    /// The message's id, hex.
    pub message_id: String,
    /// How many entries the message took, all copies together.
    pub parts: usize,
    /// True when the message waits in the outbox (the ledger is away): `deaddrop outbox flush`,
    /// or the next `sync` or `watch`, sends it.
    #[serde(default)]
    pub queued: bool,
    /// Why it waits (what the ledger, or the way to it, said), when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub away: Option<String>,
}

/// `deaddrop --json sync`: what one sync found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncJson {
    /// Parts or messages seen before (replays, duplicates).
    pub duplicates: u64,
    /// Parts of queued messages sent before reading (the outbox).
    #[serde(default)]
    pub flushed: u64,
    /// Ids `[first, last]` that expired on the ledger before this client read them, or null;
    /// only those that could have held entries for this identity (see `gap_before_identity`).
    pub gap: Option<[u64; 2]>,
    /// Ids `[first, last]` that expired unread but were all appended before this identity was
    /// created, so none was for it; not lost messages. Null if none.
    #[serde(default)]
    pub gap_before_identity: Option<[u64; 2]>,
    /// The last ledger id this client has now seen.
    pub last_id: u64,
    /// The ledger's id (absent for a ledger too old to report one): the position is kept
    /// under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_id: Option<String>,
    /// Complete new messages from contacts.
    pub messages: u64,
    /// Present only when the ledger at this URL is not the one this home synced with there
    /// before (its data was wiped, or another ledger took the URL): that one's id. The new one
    /// was read from its start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_ledger_id: Option<String>,
    /// Parts still waiting in the outbox after this sync (`deaddrop outbox`).
    #[serde(default)]
    pub queued: u64,
    /// Entries for us that were rejected (bad check string, spoof, tampering).
    pub rejected: u64,
    /// Of `rejected`, entries with a check string you no longer accept: someone with an old card
    /// of yours (or only your address).
    #[serde(default)]
    pub rejected_check_string: u64,
    /// Complete new messages from people who are not contacts.
    pub requests: u64,
    /// Entries read from the ledger.
    pub scanned: u64,
}

/// What a row of `deaddrop --json inbox` stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InboxKind {
    /// A conversation with a contact.
    Conversation,
    /// A pending first message from someone who is not a contact.
    Request,
}

/// One element of `deaddrop --json inbox`: a conversation, or a pending request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxRowJson {
    /// The contact's name; null for a request.
    pub contact: Option<String>,
    /// A request's sender's fingerprint (requests only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// A request's id, for `accept` and `reject` (requests only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<RequestId>,
    /// Conversation or request.
    pub kind: InboxKind,
    /// The time of the newest message, if any.
    pub last_time: Option<u64>,
    /// Unread incoming messages (1 for a request).
    pub unread: u64,
}

/// One element of `deaddrop --json read NAME`, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageJson {
    /// `in` (from them) or `out` (from you).
    pub direction: Direction,
    /// The text.
    pub text: String,
    /// Ledger time (in) or send time (out).
    pub time: u64,
    /// The same time in RFC 3339, to the second.
    pub time_iso: String,
    /// The message's row id.
    pub id: i64,
    /// Their check verified (in); always true (out).
    pub verified: bool,
}

/// One element of `deaddrop --json requests`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestJson {
    /// The sender's fingerprint.
    pub fingerprint: String,
    /// The request's id, for `accept` and `reject`.
    pub id: RequestId,
    /// How many distinct introductions claim this address. More than 1: someone else used it
    /// too; after `accept` your messages go to each until one answers.
    #[serde(default = "one")]
    pub introductions: u64,
    /// The text.
    pub text: String,
    /// Ledger time.
    pub time: u64,
    /// Always true: anyone who knows the address could have sent a first message.
    #[serde(default = "yes")]
    pub unverified: bool,
}

fn yes() -> bool {
    true
}

/// `deaddrop --json accept ID --name NAME`: the new contact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptJson {
    /// Their fingerprint.
    pub fingerprint: String,
    /// The name you gave them.
    pub name: String,
}

/// `deaddrop --json reject ID`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectJson {
    /// The id of the request rejected.
    pub rejected: RequestId,
}

/// `deaddrop --json check-string rotate`: the card with the new check string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateJson {
    /// The new card, to hand out from now on.
    pub card: String,
}

/// One line of `deaddrop --json watch`, told apart by its `event` field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum WatchEventJson {
    /// A message arrived.
    Message {
        /// The contact's name; null for a request from someone who is not a contact.
        contact: Option<String>,
        /// The message's row id.
        id: i64,
        /// The text.
        text: String,
        /// Ledger time.
        time: u64,
        /// The sender's check verified.
        verified: bool,
    },
    /// Caught up, and following the ledger's push stream.
    Listening {
        /// The last ledger id seen.
        last_id: u64,
    },
    /// Ids `[first, last]` expired before this client read them.
    Gap {
        /// The expired ids.
        gap: [u64; 2],
    },
    /// The connection dropped; trying again after a delay.
    Reconnecting {
        /// The delay, in milliseconds.
        in_ms: u64,
        /// What went wrong.
        why: String,
    },
}

/// `deaddrop --json config list` (and `config get` without a key): every setting of the home,
/// null where it holds none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigJson {
    /// The CA file (absolute path).
    pub ca_file: Option<String>,
    /// The ledger's URL.
    pub ledger: Option<String>,
    /// The proxy.
    pub proxy: Option<String>,
}

/// `deaddrop --json config get KEY`, `config set KEY VALUE`, `config unset KEY`: one setting as
/// it is now (null: not set).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingJson {
    /// `ledger`, `proxy` or `ca_file`.
    pub key: String,
    /// Its value, as stored.
    pub value: Option<String>,
}

/// The ledger in `deaddrop --json status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusLedgerJson {
    /// Why it could not be asked (unreachable, refused, ...), when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The newest id it has assigned (null: none yet, or not reachable).
    pub last_id: Option<u64>,
    /// Its id (null: not reachable and never seen, or too old to report one).
    pub ledger_id: Option<String>,
    /// The lifetime of its entries now, in seconds (null when not reachable).
    pub lifetime_s: Option<u64>,
    /// Whether it answered.
    pub reachable: bool,
    /// Where the URL came from: `flag`, `environment`, `home` (the home's settings) or
    /// `default`.
    pub source: String,
    /// Its URL.
    pub url: String,
}

/// The outbox in `deaddrop --json status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusOutboxJson {
    /// Messages with parts waiting.
    pub messages: u64,
    /// When the oldest of them was written, if any.
    pub oldest: Option<u64>,
    /// Parts waiting.
    pub parts: u64,
    /// Of those, parts a ledger refused for good (`deaddrop outbox` says why).
    pub refused: u64,
}

/// Unread messages in `deaddrop --json status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusUnreadJson {
    /// Unread messages per contact, every contact listed.
    pub contacts: BTreeMap<String, u64>,
    /// All of them together.
    pub total: u64,
}

/// `deaddrop --json status`: the home, its ledger, and what waits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusJson {
    /// How many entries the ledger holds past this home's position (null when not reachable).
    pub behind: Option<u64>,
    /// Whether the home is protected by a passphrase.
    pub encrypted: bool,
    /// The identity's fingerprint.
    pub fingerprint: String,
    /// The home directory.
    pub home: String,
    /// The ledger this home uses.
    pub ledger: StatusLedgerJson,
    /// What waits in the outbox.
    pub outbox: StatusOutboxJson,
    /// Pending requests (first messages from people who are not contacts).
    pub requests: u64,
    /// The suite: `xwing` or `rsa-oaep`.
    pub suite: String,
    /// The last ledger id this home has read (its position on that ledger).
    pub synced_id: u64,
    /// Unread messages.
    pub unread: StatusUnreadJson,
}

/// One element of `deaddrop --json outbox`: a message with parts waiting, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedJson {
    /// To whom (the contact's name).
    pub contact: String,
    /// The message's row id (as `read --json` shows it).
    pub id: i64,
    /// Its parts waiting.
    pub parts: u64,
    /// Why a ledger refused parts of it for good, if it did.
    pub reason: Option<String>,
    /// Of its parts, those a ledger refused for good: only `outbox flush` tries them again.
    pub refused: u64,
    /// When it was written.
    pub since: u64,
}

/// A part a ledger refused for good, in `deaddrop --json outbox flush`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedJson {
    /// To whom its message was.
    pub contact: String,
    /// The message's row id.
    pub message: i64,
    /// Why.
    pub reason: String,
}

/// `deaddrop --json outbox flush`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlushJson {
    /// The ledger ids of the parts sent now.
    pub ids: Vec<u64>,
    /// Parts still waiting (the ledger went away), not counting those refused.
    pub pending: u64,
    /// Parts the ledger refused for good now, set aside.
    pub refused: Vec<RefusedJson>,
    /// How many parts were sent.
    pub sent: u64,
}

/// A failure with `--json`: the only thing printed, on standard error, with a non-zero exit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorJson {
    /// What went wrong.
    pub error: String,
    /// What to do about it.
    pub hint: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serializes `v` as `deaddrop` prints it.
    fn printed(v: &impl Serialize) -> String {
        serde_json::to_string(v).unwrap()
    }

    #[test]
    fn documents_print_their_fields_in_the_order_scripts_have_always_seen() {
        let sync = SyncJson {
            duplicates: 0,
            flushed: 0,
            gap: None,
            gap_before_identity: None,
            last_id: 9,
            ledger_id: None,
            messages: 1,
            previous_ledger_id: None,
            queued: 0,
            rejected: 2,
            rejected_check_string: 1,
            requests: 3,
            scanned: 9,
        };
        assert_eq!(
            printed(&sync),
            r#"{"duplicates":0,"flushed":0,"gap":null,"gap_before_identity":null,"last_id":9,"messages":1,"queued":0,"rejected":2,"rejected_check_string":1,"requests":3,"scanned":9}"#
        );
        // Output of a client from before the field reads back.
        let old: SyncJson = serde_json::from_str(
            r#"{"duplicates":0,"gap":null,"last_id":9,"messages":1,"rejected":2,"requests":3,"scanned":9}"#,
        )
        .unwrap();
        assert_eq!(old.rejected_check_string, 0);
        let conversation = InboxRowJson {
            contact: Some("b".into()),
            fingerprint: None,
            id: None,
            kind: InboxKind::Conversation,
            last_time: None,
            unread: 0,
        };
        assert_eq!(
            printed(&conversation),
            r#"{"contact":"b","kind":"conversation","last_time":null,"unread":0}"#
        );
        let request = InboxRowJson {
            contact: None,
            fingerprint: Some("fp".into()),
            id: Some(RequestId(4)),
            kind: InboxKind::Request,
            last_time: Some(5),
            unread: 1,
        };
        assert_eq!(
            printed(&request),
            r#"{"contact":null,"fingerprint":"fp","id":4,"kind":"request","last_time":5,"unread":1}"#
        );
        let message = MessageJson {
            direction: Direction::In,
            text: "t".into(),
            time: 1,
            time_iso: "1970-01-01T00:00:00Z".into(),
            id: 2,
            verified: true,
        };
        assert_eq!(
            printed(&message),
            r#"{"direction":"in","text":"t","time":1,"time_iso":"1970-01-01T00:00:00Z","id":2,"verified":true}"#
        );
    }

    #[test]
    fn watch_events_print_sorted_through_a_value_and_read_back() {
        let events = [
            (
                WatchEventJson::Message {
                    contact: None,
                    id: 3,
                    text: "hi".into(),
                    time: 7,
                    verified: false,
                },
                r#"{"contact":null,"event":"message","id":3,"text":"hi","time":7,"verified":false}"#,
            ),
            (
                WatchEventJson::Listening { last_id: 8 },
                r#"{"event":"listening","last_id":8}"#,
            ),
            (
                WatchEventJson::Gap { gap: [1, 2] },
                r#"{"event":"gap","gap":[1,2]}"#,
            ),
            (
                WatchEventJson::Reconnecting {
                    in_ms: 100,
                    why: "down".into(),
                },
                r#"{"event":"reconnecting","in_ms":100,"why":"down"}"#,
            ),
        ];
        for (event, line) in events {
            let value = serde_json::to_value(&event).unwrap();
            assert_eq!(printed(&value), line);
            let back: WatchEventJson = serde_json::from_str(line).unwrap();
            assert_eq!(back, event);
        }
    }

    #[test]
    fn error_is_exactly_error_and_hint() {
        let e = ErrorJson {
            error: "e".into(),
            hint: "h".into(),
        };
        assert_eq!(printed(&e), r#"{"error":"e","hint":"h"}"#);
        let extra: Result<ErrorJson, _> = serde_json::from_str(r#"{"error":"e","hint":"h","x":1}"#);
        assert!(extra.is_err());
    }
}

//! What a home keeps about ledgers (`client::db::ledgers`): settings, and sync positions kept
//! per ledger id: shared by the URLs of one ledger, moved over from a URL where an older version
//! kept them, and never applied to another ledger that took the same URL.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use deaddrop_client::api::LedgerId;
use deaddrop_client::db::{position_key, Db};
use deaddrop_client::settings::{Setting, Settings};

mod common;
use common::Home;

const A: &str = "http://127.0.0.1:8470";
const B: &str = "http://localhost:8470";

fn id(n: u8) -> LedgerId {
    LedgerId::from_bytes([n; 16])
}

#[test]
fn urls_of_one_ledger_share_its_position() {
    let home = Home::new("ledgers-share");
    let mut db = Db::create(&home.0, None).unwrap();
    let p = db.ledger_position(A, Some(id(1))).unwrap();
    assert_eq!((p.last_id, p.replaced), (0, None));
    assert_eq!(p.key, position_key(A, Some(&id(1))));
    db.apply_batch(&p.key, 42, Vec::new()).unwrap();
    let q = db.ledger_position(B, Some(id(1))).unwrap();
    assert_eq!((q.key, q.last_id, q.replaced), (p.key, 42, None));
    // For status, read-only: by the id, or by the id the URL answered with last.
    assert_eq!(
        db.known_position(B, Some(id(1))).unwrap(),
        (Some(id(1)), 42)
    );
    assert_eq!(db.known_position(B, None).unwrap(), (Some(id(1)), 42));
    assert_eq!(
        db.known_position("http://never:1", None).unwrap(),
        (None, 0)
    );
}

#[test]
fn a_position_kept_under_a_url_moves_to_the_id_once() {
    let home = Home::new("ledgers-move");
    let mut db = Db::create(&home.0, None).unwrap();
    // What the previous version kept: positions per URL.
    db.apply_batch(A, 30, Vec::new()).unwrap();
    db.apply_batch(B, 35, Vec::new()).unwrap();
    let p = db.ledger_position(A, Some(id(1))).unwrap();
    assert_eq!((p.last_id, p.replaced), (30, None));
    assert_eq!(db.last_id(A).unwrap(), 0, "moved, not copied");
    // The other URL of the same ledger: the further of the two.
    let q = db.ledger_position(B, Some(id(1))).unwrap();
    assert_eq!(q.last_id, 35);
    assert_eq!(db.last_id(B).unwrap(), 0);
    // A ledger without an id is still known by its URL.
    db.apply_batch("http://old:1", 7, Vec::new()).unwrap();
    let r = db.ledger_position("http://old:1", None).unwrap();
    assert_eq!((r.key.as_str(), r.last_id), ("http://old:1", 7));
}

#[test]
fn another_ledger_at_the_same_url_starts_from_nothing_and_is_reported_once() {
    let home = Home::new("ledgers-replaced");
    let mut db = Db::create(&home.0, None).unwrap();
    let p = db.ledger_position(A, Some(id(1))).unwrap();
    db.apply_batch(&p.key, 500, Vec::new()).unwrap();
    // Wiped: a new id at the same URL.
    let q = db.ledger_position(A, Some(id(2))).unwrap();
    assert_eq!((q.last_id, q.replaced), (0, Some(id(1))));
    db.apply_batch(&q.key, 3, Vec::new()).unwrap();
    let again = db.ledger_position(A, Some(id(2))).unwrap();
    assert_eq!((again.last_id, again.replaced), (3, None));
    // Back to the first (a ledger that moved back): its own position, nothing replaced.
    let back = db.ledger_position(A, Some(id(1))).unwrap();
    assert_eq!((back.last_id, back.replaced), (500, None));
    // A URL position left by an older version after the URL changed ledgers is not taken.
    db.apply_batch(A, 900, Vec::new()).unwrap();
    let third = db.ledger_position(A, Some(id(3))).unwrap();
    assert_eq!((third.last_id, third.replaced), (0, Some(id(1))));
}

#[test]
fn settings_are_kept_and_removed() {
    let home = Home::new("ledgers-settings");
    let mut db = Db::create(&home.0, None).unwrap();
    assert_eq!(db.settings().unwrap(), Settings::default());
    db.set_setting(Setting::Ledger, A).unwrap();
    db.set_setting(Setting::Proxy, "socks5h://127.0.0.1:9050")
        .unwrap();
    db.set_setting(Setting::Ledger, B).unwrap();
    let s = db.settings().unwrap();
    assert_eq!(s.ledger.as_deref(), Some(B));
    assert_eq!(s.get(Setting::Proxy), Some("socks5h://127.0.0.1:9050"));
    assert_eq!(
        db.unset_setting(Setting::Proxy).unwrap().as_deref(),
        Some("socks5h://127.0.0.1:9050")
    );
    assert_eq!(db.unset_setting(Setting::Proxy).unwrap(), None);
    drop(db);
    let db = Db::open(&home.0, &mut || unreachable!("no passphrase")).unwrap();
    assert_eq!(db.settings().unwrap().ledger.as_deref(), Some(B));
}

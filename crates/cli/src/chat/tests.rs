//! The chat without a terminal: keys in, actions out, and the screen drawn into ratatui's
//! `TestBackend`, compared line by line with what a person would see.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use deaddrop_client::db::{MessageView, NewMessage};
use deaddrop_client::display::is_unsafe;
use deaddrop_client::ops::WatchEvent;
use deaddrop_client::{Direction, RequestId};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;

use super::app::{
    Action, App, ContactItem, Event, RequestItem, RequestMessage, Selected, SendState,
    MAX_MESSAGES,
};

/// 2026-01-01T12:00:00Z.
const NOON: u64 = 1_767_268_800_000;
const MINUTE: u64 = 60_000;

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
}

fn contact(name: &str, unread: u64, verified: bool) -> ContactItem {
    ContactItem {
        name: name.into(),
        unread,
        fingerprint: "ABCD-EFGH-IJKL-MNOP".into(),
        fingerprint_hex: "ab".repeat(32),
        suite: "xwing".into(),
        verified,
        card_name: None,
        introductions: 1,
    }
}

fn request(id: i64, text: &str) -> RequestItem {
    RequestItem {
        id: RequestId(id),
        fingerprint: "QRST-UVWX-YZ23-4567".into(),
        introductions: 1,
        messages: vec![RequestMessage {
            time_ms: NOON - 5 * MINUTE,
            text: text.into(),
        }],
    }
}

fn view(id: i64, dir: Direction, text: &str, time_ms: u64) -> MessageView {
    MessageView {
        id,
        direction: dir,
        text: text.into(),
        time_ms,
        verified: true,
        was_read: true,
    }
}

fn incoming(contact: Option<&str>, id: i64, text: &str) -> Event {
    Event::Watch(WatchEvent::Message(NewMessage {
        contact: contact.map(str::to_string),
        id,
        text: text.into(),
        time_ms: NOON + MINUTE,
        verified: true,
    }))
}

/// Alice (verified, read) and Bob (2 unread, not yet verified), a request from a stranger;
/// Alice's conversation open and loaded, connected.
fn fixture() -> App {
    let mut app = App::new("http://127.0.0.1:8470", NOON);
    app.set_lists(
        vec![contact("alice", 0, true), contact("bob", 2, false)],
        vec![request(7, "hello, it is carol")],
    );
    assert_eq!(
        app.take_actions(),
        vec![Action::LoadConversation("alice".into())]
    );
    app.set_conversation(
        "alice",
        &[
            view(1, Direction::In, "hi, are you there?", NOON - 30 * MINUTE),
            view(2, Direction::Out, "yes", NOON - 29 * MINUTE),
        ],
    );
    app.on_event(Event::Watch(WatchEvent::Listening { last_id: 9 }));
    app.take_actions();
    app
}

/// The screen's lines, as a person sees them (a wide character's hidden cell skipped).
fn lines_of(buffer: &Buffer) -> Vec<String> {
    let w = usize::from(buffer.area.width);
    buffer
        .content
        .chunks(w)
        .map(|row| {
            let mut s = String::new();
            let mut skip = 0usize;
            for c in row {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                s.push_str(c.symbol());
                skip = unicode_width::UnicodeWidthStr::width(c.symbol()).saturating_sub(1);
            }
            s
        })
        .collect()
}

fn draw(app: &mut App, w: u16, h: u16) -> Vec<String> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| app.draw(f)).unwrap();
    lines_of(t.backend().buffer())
}

/// Compares a screen with what is expected; on a difference prints the whole screen as it is.
fn assert_screen(actual: &[String], expected: &[&str]) {
    if actual != expected {
        let mut shown = String::from("[\n");
        for l in actual {
            shown.push_str(&format!("    {l:?},\n"));
        }
        shown.push(']');
        panic!("the screen differs; it is:\n{shown}");
    }
}

/// No cell of the screen holds a character a terminal would obey instead of showing.
fn assert_all_safe(screen: &[String]) {
    for l in screen {
        assert!(!l.chars().any(is_unsafe), "{l:?}");
    }
}

#[test]
fn contacts_show_unread_counts_and_requests_beside_the_conversation() {
    let mut app = fixture();
    assert_screen(&draw(&mut app, 70, 12), &[]);
}

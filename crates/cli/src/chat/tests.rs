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
    Action, App, ContactItem, Event, RequestItem, RequestMessage, Selected, SendState, MAX_MESSAGES,
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

fn contact(name: &str, unread: u64, confirmed: bool) -> ContactItem {
    ContactItem {
        name: name.into(),
        unread,
        fingerprint: "ABCD-EFGH-IJKL-MNOP".into(),
        fingerprint_hex: "ab".repeat(32),
        suite: "xwing".into(),
        confirmed,
        in_person_ms: None,
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

/// Alice (confirmed, read) and Bob (2 unread, not yet confirmed), a request from a stranger;
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
    assert_screen(
        &draw(&mut app, 70, 12),
        &[
            "┌ Chats ────────┐┌ alice · confirmed ────────────────────────────────┐",
            "│>alice         ││11:30 alice: hi, are you there?                    │",
            "│ bob          2││11:31 me: yes                                      │",
            "│Requests       ││                                                   │",
            "│ #7 QRST-UVWX-…││                                                   │",
            "│               ││                                                   │",
            "└───────────────┘└───────────────────────────────────────────────────┘",
            "┌ Message to alice ──────────────────────────────────────────────────┐",
            "│                                                                    │",
            "└────────────────────────────────────────────────────────────────────┘",
            "connected to http://127.0.0.1:8470                                    ",
            "Enter send · Alt-Enter newline · Tab/↑↓ chats · F1 info · Esc quit · P",
        ],
    );
}

#[test]
fn showing_a_conversation_clears_its_unread_count() {
    let mut app = fixture();
    app.on_key(key(KeyCode::Down));
    assert_eq!(app.selected(), Some(&Selected::Contact("bob".into())));
    assert_eq!(
        app.take_actions(),
        vec![Action::LoadConversation("bob".into())]
    );
    assert_eq!(app.contacts()[1].unread, 2, "not before it is shown");
    app.set_conversation(
        "bob",
        &[
            view(3, Direction::In, "first", NOON - 10 * MINUTE),
            view(
                4,
                Direction::In,
                "second\nline two of it",
                NOON - 9 * MINUTE,
            ),
        ],
    );
    assert_eq!(app.contacts()[1].unread, 0);
    // A message for Alice meanwhile counts as unread there.
    app.on_event(incoming(Some("alice"), 5, "are you back?"));
    assert_screen(
        &draw(&mut app, 70, 12),
        &[
            "┌ Chats ────────┐┌ bob · not yet confirmed ──────────────────────────┐",
            "│ alice        1││11:50 bob: first                                   │",
            "│>bob           ││11:51 bob: second                                  │",
            "│Requests       ││    line two of it                                 │",
            "│ #7 QRST-UVWX-…││                                                   │",
            "│               ││                                                   │",
            "└───────────────┘└───────────────────────────────────────────────────┘",
            "┌ Message to bob ────────────────────────────────────────────────────┐",
            "│                                                                    │",
            "└────────────────────────────────────────────────────────────────────┘",
            "connected to http://127.0.0.1:8470                                    ",
            "Enter send · Alt-Enter newline · Tab/↑↓ chats · F1 info · Esc quit · P",
        ],
    );
}

#[test]
fn a_conversation_wraps_long_lines_and_indents_every_line_after_the_header() {
    let mut app = fixture();
    app.set_conversation(
        "alice",
        &[
            view(1, Direction::In, "a rather long message that needs more than one line of this narrow pane to be shown whole", NOON - 30 * MINUTE),
            view(2, Direction::Out, "two\nlines", NOON - 29 * MINUTE),
            view(3, Direction::In, "from yesterday", NOON - 24 * 60 * MINUTE),
        ],
    );
    assert_screen(
        &draw(&mut app, 60, 14),
        &[
            "┌ Chats ──────┐┌ alice · confirmed ────────────────────────┐",
            "│>alice       ││11:30 alice: a rather long message that    │",
            "│ bob        2││    needs more than one line of this       │",
            "│Requests     ││    narrow pane to be shown whole          │",
            "│ #7 QRST-UVW…││11:31 me: two                              │",
            "│             ││    lines                                  │",
            "│             ││2025-12-31 12:00 alice: from yesterday     │",
            "│             ││                                           │",
            "└─────────────┘└───────────────────────────────────────────┘",
            "┌ Message to alice ────────────────────────────────────────┐",
            "│                                                          │",
            "└──────────────────────────────────────────────────────────┘",
            "connected to http://127.0.0.1:8470                          ",
            "Enter send · Alt-Enter newline · Tab/↑↓ chats · F1 info · Es",
        ],
    );
}

#[test]
fn enter_sends_and_alt_enter_starts_a_new_line() {
    let mut app = fixture();
    type_text(&mut app, "first");
    app.on_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::ALT));
    type_text(&mut app, "second");
    app.on_key(ctrl('j'));
    type_text(&mut app, "third");
    assert_eq!(app.input(), "first\nsecond\nthird");
    let screen = draw(&mut app, 60, 14);
    assert_screen(
        &screen,
        &[
            "┌ Chats ──────┐┌ alice · confirmed ────────────────────────┐",
            "│>alice       ││11:30 alice: hi, are you there?            │",
            "│ bob        2││11:31 me: yes                              │",
            "│Requests     ││                                           │",
            "│ #7 QRST-UVW…││                                           │",
            "│             ││                                           │",
            "└─────────────┘└───────────────────────────────────────────┘",
            "┌ Message to alice ────────────────────────────────────────┐",
            "│first                                                     │",
            "│second                                                    │",
            "│third                                                     │",
            "└──────────────────────────────────────────────────────────┘",
            "connected to http://127.0.0.1:8470                          ",
            "Enter send · Alt-Enter newline · Tab/↑↓ chats · F1 info · Es",
        ],
    );
    app.on_key(key(KeyCode::Enter));
    assert_eq!(
        app.take_actions(),
        vec![Action::Send {
            to: "alice".into(),
            text: "first\nsecond\nthird".into()
        }]
    );
    assert_eq!(app.input(), "");
    // Nothing typed, nothing sent.
    app.on_key(key(KeyCode::Enter));
    type_text(&mut app, "   ");
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.take_actions(), vec![]);
}

#[test]
fn a_message_shows_sending_then_sent_or_queued_with_the_reason_in_the_status_bar() {
    let mut app = fixture();
    app.message_queued(10);
    app.message_queued(11);
    app.set_conversation(
        "alice",
        &[
            view(1, Direction::In, "hi, are you there?", NOON - 30 * MINUTE),
            view(10, Direction::Out, "one", NOON - MINUTE),
            view(11, Direction::Out, "two", NOON),
        ],
    );
    assert_eq!(app.send_state(10), Some(SendState::Sending));
    app.on_event(Event::Flushing(vec![10]));
    app.on_event(Event::Sent(vec![10]));
    app.on_event(Event::Unsent {
        rows: vec![11],
        why: "ledger at http://127.0.0.1:8470 is not reachable".into(),
        retry_in: Duration::from_secs(2),
    });
    app.on_event(Event::Watch(WatchEvent::Reconnecting(
        Duration::from_millis(1500),
        "connection refused".into(),
    )));
    assert_eq!(app.send_state(10), Some(SendState::Sent));
    assert_eq!(app.send_state(11), Some(SendState::Queued));
    assert_eq!(app.waiting(), 1);
    assert_screen(&draw(&mut app, 150, 10), &[
    "┌ Chats ───────────────────┐┌ alice · confirmed ─────────────────────────────────────────────────────────────────────────────────────────────────────┐",
    "│>alice                    ││11:30 alice: hi, are you there?                                                                                         │",
    "│ bob                     2││11:59 me [sent]: one                                                                                                    │",
    "│Requests                  ││12:00 me [not sent yet: queued]: two                                                                                    │",
    "└──────────────────────────┘└────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┘",
    "┌ Message to alice ──────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┐",
    "│                                                                                                                                                    │",
    "└────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────┘",
    "1 message(s) queued, not sent: ledger at http://127.0.0.1:8470 is not reachable; trying again in 2 s · ledger unreachable: connection refused; reconne",
    "Enter send · Alt-Enter newline · Tab/↑↓ chats · F1 info · Esc quit · PgUp/PgDn scroll                                                                 ",
    ]);
    // Connected again: the outbox is tried at once.
    app.on_event(Event::Watch(WatchEvent::Listening { last_id: 12 }));
    assert_eq!(app.take_actions(), vec![Action::Flush]);
}

#[test]
fn accepting_a_request_asks_for_a_name() {
    let mut app = fixture();
    app.on_key(key(KeyCode::BackTab));
    assert_eq!(app.selected(), Some(&Selected::Request(RequestId(7))));
    assert_screen(
        &draw(&mut app, 70, 12),
        &[
            "┌ Chats ────────┐┌ Request #7 · unverified ──────────────────────────┐",
            "│ alice         ││From QRST-UVWX-YZ23-4567, not a contact.           │",
            "│ bob          2││Unverified: anyone who knows your address could    │",
            "│Requests       ││have sent it.                                      │",
            "│>#7 QRST-UVWX-…││11:55 #7: hello, it is carol                       │",
            "│               ││                                                   │",
            "└───────────────┘└───────────────────────────────────────────────────┘",
            "┌ Request #7 ────────────────────────────────────────────────────────┐",
            "│a: accept (you name them) · r: reject                               │",
            "└────────────────────────────────────────────────────────────────────┘",
            "connected to http://127.0.0.1:8470                                    ",
            "a accept · r reject · Tab/↑↓ next · F1 info · Esc quit                ",
        ],
    );
    app.on_key(key(KeyCode::Char('a')));
    type_text(&mut app, "carol");
    assert_screen(
        &draw(&mut app, 70, 12),
        &[
            "┌ Chats ────────┐┌ Request #7 · unverified ──────────────────────────┐",
            "│ alice         ││┌ Accept request #7 ──────────────────────────────┐│",
            "│ bob          2│││The name you will use for QRST-UVWX-YZ23-4567:   ││",
            "│Requests       │││> carol                                          ││",
            "│>#7 QRST-UVWX-…│││Enter accept · Esc cancel                        ││",
            "│               ││└─────────────────────────────────────────────────┘│",
            "└───────────────┘└───────────────────────────────────────────────────┘",
            "┌ Request #7 ────────────────────────────────────────────────────────┐",
            "│a: accept (you name them) · r: reject                               │",
            "└────────────────────────────────────────────────────────────────────┘",
            "connected to http://127.0.0.1:8470                                    ",
            "Enter accept · Esc cancel · Ctrl-C quit                               ",
        ],
    );
    app.on_key(key(KeyCode::Enter));
    assert_eq!(
        app.take_actions(),
        vec![Action::Accept {
            id: RequestId(7),
            name: "carol".into()
        }]
    );
}

#[test]
fn accepting_refuses_an_empty_name_and_esc_cancels() {
    let mut app = fixture();
    app.select(Selected::Request(RequestId(7)));
    app.take_actions();
    app.on_key(key(KeyCode::Char('a')));
    type_text(&mut app, "  ");
    app.on_key(key(KeyCode::Enter));
    assert_eq!(app.take_actions(), vec![]);
    app.on_key(key(KeyCode::Esc));
    assert_eq!(
        app.take_actions(),
        vec![],
        "Esc leaves the prompt, not the chat"
    );
    // Typing on a request is not a message.
    type_text(&mut app, "xyz");
    assert_eq!(app.input(), "");
}

#[test]
fn rejecting_a_request_asks_first() {
    let mut app = fixture();
    app.select(Selected::Request(RequestId(7)));
    app.take_actions();
    app.on_key(key(KeyCode::Char('r')));
    assert_screen(
        &draw(&mut app, 70, 12),
        &[
            "┌ Chats ────────┐┌ Request #7 · unverified ──────────────────────────┐",
            "│ alice         ││┌ Reject request #7? ─────────────────────────────┐│",
            "│ bob          2│││Its messages are deleted; later ones from this   ││",
            "│Requests       │││sender are dropped.                              ││",
            "│>#7 QRST-UVWX-…│││y reject · n keep it                             ││",
            "│               ││└─────────────────────────────────────────────────┘│",
            "└───────────────┘└───────────────────────────────────────────────────┘",
            "┌ Request #7 ────────────────────────────────────────────────────────┐",
            "│a: accept (you name them) · r: reject                               │",
            "└────────────────────────────────────────────────────────────────────┘",
            "connected to http://127.0.0.1:8470                                    ",
            "y reject · n keep it · Ctrl-C quit                                    ",
        ],
    );
    app.on_key(key(KeyCode::Char('n')));
    assert_eq!(app.take_actions(), vec![]);
    app.on_key(key(KeyCode::Char('r')));
    app.on_key(key(KeyCode::Char('y')));
    assert_eq!(
        app.take_actions(),
        vec![Action::Reject { id: RequestId(7) }]
    );
}

#[test]
fn f1_shows_the_fingerprint_and_verification_state() {
    let mut app = fixture();
    app.on_key(key(KeyCode::F(1)));
    assert_screen(
        &draw(&mut app, 80, 18),
        &[
            "┌ Chats ───────────┐┌ alice · confirmed ───────────────────────────────────────┐",
            "│>alice            ││┌ Info · F1 closes ──────────────────────────────────────┐│",
            "│ bob             2│││alice                                                   ││",
            "│Requests          │││fingerprint  ABCD-EFGH-IJKL-MNOP                        ││",
            "│ #7 QRST-UVWX-YZ2…│││reply        confirmed: their messages prove they hold  ││",
            "│                  │││the key                                                 ││",
            "│                  │││in person    not compared yet: compare the fingerprint  ││",
            "│                  │││with them, then `deaddrop contact verify alice`         ││",
            "│                  │││suite        xwing                                      ││",
            "│                  │││full         abababab abababab abababab abababab        ││",
            "│                  │││abababab abababab abababab abababab                     ││",
            "│                  ││└────────────────────────────────────────────────────────┘│",
            "└──────────────────┘└──────────────────────────────────────────────────────────┘",
            "┌ Message to alice ────────────────────────────────────────────────────────────┐",
            "│                                                                              │",
            "└──────────────────────────────────────────────────────────────────────────────┘",
            "connected to http://127.0.0.1:8470                                              ",
            "Enter send · Alt-Enter newline · Tab/↑↓ chats · F1 info · Esc quit · PgUp/PgDn s",
        ],
    );
    // Marked compared in person (`deaddrop contact verify alice`): the title and the panel
    // say so, apart from the confirmation by a reply.
    let mut alice = contact("alice", 0, true);
    alice.in_person_ms = Some(NOON - 60 * MINUTE);
    app.set_lists(
        vec![alice, contact("bob", 2, false)],
        vec![request(7, "hello, it is carol")],
    );
    assert_screen(
        &draw(&mut app, 80, 18),
        &[
            "┌ Chats ───────────┐┌ alice · confirmed · fingerprint verified ────────────────┐",
            "│>alice            ││┌ Info · F1 closes ──────────────────────────────────────┐│",
            "│ bob             2│││alice                                                   ││",
            "│Requests          │││fingerprint  ABCD-EFGH-IJKL-MNOP                        ││",
            "│ #7 QRST-UVWX-YZ2…│││reply        confirmed: their messages prove they hold  ││",
            "│                  │││the key                                                 ││",
            "│                  │││in person    fingerprint verified 11:00                 ││",
            "│                  │││suite        xwing                                      ││",
            "│                  │││full         abababab abababab abababab abababab        ││",
            "│                  │││abababab abababab abababab abababab                     ││",
            "│                  │││                                                        ││",
            "│                  ││└────────────────────────────────────────────────────────┘│",
            "└──────────────────┘└──────────────────────────────────────────────────────────┘",
            "┌ Message to alice ────────────────────────────────────────────────────────────┐",
            "│                                                                              │",
            "└──────────────────────────────────────────────────────────────────────────────┘",
            "connected to http://127.0.0.1:8470                                              ",
            "Enter send · Alt-Enter newline · Tab/↑↓ chats · F1 info · Esc quit · PgUp/PgDn s",
        ],
    );
    // Esc closes the panel first, then quits.
    app.on_key(key(KeyCode::Esc));
    assert!(!app.quitting());
    app.on_key(key(KeyCode::Esc));
    assert!(app.quitting());
}

#[test]
fn ctrl_c_quits_even_from_a_prompt() {
    let mut app = fixture();
    app.select(Selected::Request(RequestId(7)));
    app.on_key(key(KeyCode::Char('a')));
    app.on_key(ctrl('c'));
    assert!(app.quitting());
}

/// Text that would retitle the window, recolour, erase and reverse what follows, and a second
/// line posing as a header.
const HOSTILE: &str = "hi\r11:59 alice: send me your passphrase \u{1b}[31mred\u{1b}[0m\u{1b}]0;PWNED\u{7} \u{202e}txt.exe \u{2067}x\u{2069} \u{9b}2J\u{7f}\ttab\n11:59 alice: really";

#[test]
fn a_hostile_message_and_names_are_shown_escaped() {
    let mut app = App::new("http://127.0.0.1:8470", NOON);
    let mut evil = contact("mal\u{1b}[2Klory", 0, false);
    evil.card_name = Some("Bob\u{1b}]0;PWNED\u{7}\u{202e}".into());
    app.set_lists(vec![evil], vec![request(9, HOSTILE)]);
    app.take_actions();
    app.set_conversation(
        "mal\u{1b}[2Klory",
        &[view(1, Direction::In, HOSTILE, NOON - MINUTE)],
    );
    let screen = draw(&mut app, 90, 14);
    assert_all_safe(&screen);
    assert_screen(&screen, &[
    "┌ Chats ─────────────┐┌ mal\\x1b[2Klory · not yet confirmed ──────────────────────────────┐",
    "│>mal\\x1b[2Klory     ││11:59 mal\\x1b[2Klory: hi\\r11:59 alice: send me your passphrase    │",
    "│Requests            ││    \\x1b[31mred\\x1b[0m\\x1b]0;PWNED\\x07 \\u{202e}txt.exe            │",
    "│ #9 QRST-UVWX-YZ23-…││    \\u{2067}x\\u{2069} \\u{009b}2J\\x7f    tab                       │",
    "│                    ││    11:59 alice: really                                           │",
    "│                    ││                                                                  │",
    "│                    ││                                                                  │",
    "│                    ││                                                                  │",
    "└────────────────────┘└──────────────────────────────────────────────────────────────────┘",
    "┌ Message to mal\\x1b[2Klory ─────────────────────────────────────────────────────────────┐",
    "│                                                                                        │",
    "└────────────────────────────────────────────────────────────────────────────────────────┘",
    "connecting to http://127.0.0.1:8470…                                                      ",
    "Enter send · Alt-Enter newline · Tab/↑↓ chats · F1 info · Esc quit · PgUp/PgDn scroll     ",
    ]);
    app.on_key(key(KeyCode::F(1)));
    let screen = draw(&mut app, 90, 20);
    assert_all_safe(&screen);
    assert_screen(&screen, &[
    "┌ Chats ─────────────┐┌ mal\\x1b[2Klory · not yet confirmed ──────────────────────────────┐",
    "│>mal\\x1b[2Klory     ││┌ Info · F1 closes ──────────────────────────────────────────────┐│",
    "│Requests            │││mal\\x1b[2Klory                                                  ││",
    "│ #9 QRST-UVWX-YZ23-…│││fingerprint  ABCD-EFGH-IJKL-MNOP                                ││",
    "│                    │││reply        not yet confirmed: confirmed once they reply to a  ││",
    "│                    │││message of yours                                                ││",
    "│                    │││in person    not compared yet: compare the fingerprint with     ││",
    "│                    │││them, then `deaddrop contact verify mal\\x1b[2Klory`             ││",
    "│                    │││card name    Bob\\x1b]0;PWNED\\x07\\u{202e} (chosen by them: anyone││",
    "│                    │││can choose any name)                                            ││",
    "│                    │││suite        xwing                                              ││",
    "│                    │││full         abababab abababab abababab abababab abababab       ││",
    "│                    │││abababab abababab abababab                                      ││",
    "│                    ││└────────────────────────────────────────────────────────────────┘│",
    "└────────────────────┘└──────────────────────────────────────────────────────────────────┘",
    "┌ Message to mal\\x1b[2Klory ─────────────────────────────────────────────────────────────┐",
    "│                                                                                        │",
    "└────────────────────────────────────────────────────────────────────────────────────────┘",
    "connecting to http://127.0.0.1:8470…                                                      ",
    "Enter send · Alt-Enter newline · Tab/↑↓ chats · F1 info · Esc quit · PgUp/PgDn scroll     ",
    ]);
    app.on_key(key(KeyCode::Esc));
    app.on_key(key(KeyCode::Tab));
    let screen = draw(&mut app, 90, 14);
    assert_all_safe(&screen);
    assert_screen(&screen, &[
    "┌ Chats ─────────────┐┌ Request #9 · unverified ─────────────────────────────────────────┐",
    "│ mal\\x1b[2Klory     ││From QRST-UVWX-YZ23-4567, not a contact.                          │",
    "│Requests            ││Unverified: anyone who knows your address could have sent it.     │",
    "│>#9 QRST-UVWX-YZ23-…││11:55 #9: hi\\r11:59 alice: send me your passphrase                │",
    "│                    ││    \\x1b[31mred\\x1b[0m\\x1b]0;PWNED\\x07 \\u{202e}txt.exe            │",
    "│                    ││    \\u{2067}x\\u{2069} \\u{009b}2J\\x7f    tab                       │",
    "│                    ││    11:59 alice: really                                           │",
    "│                    ││                                                                  │",
    "└────────────────────┘└──────────────────────────────────────────────────────────────────┘",
    "┌ Request #9 ────────────────────────────────────────────────────────────────────────────┐",
    "│a: accept (you name them) · r: reject                                                   │",
    "└────────────────────────────────────────────────────────────────────────────────────────┘",
    "connecting to http://127.0.0.1:8470…                                                      ",
    "a accept · r reject · Tab/↑↓ next · F1 info · Esc quit                                    ",
    ]);
}

#[test]
fn pasted_control_characters_are_escaped_in_the_input_line() {
    let mut app = fixture();
    app.on_paste("pasted\u{1b}[2J\r\nsecond\u{202e}");
    assert_eq!(app.input(), "pasted\u{1b}[2J\nsecond\u{202e}");
    let screen = draw(&mut app, 60, 12);
    assert_all_safe(&screen);
    assert_screen(
        &screen,
        &[
            "┌ Chats ──────┐┌ alice · confirmed ────────────────────────┐",
            "│>alice       ││11:30 alice: hi, are you there?            │",
            "│ bob        2││11:31 me: yes                              │",
            "│Requests     ││                                           │",
            "│ #7 QRST-UVW…││                                           │",
            "└─────────────┘└───────────────────────────────────────────┘",
            "┌ Message to alice ────────────────────────────────────────┐",
            "│pasted\\x1b[2J                                             │",
            "│second\\u{202e}                                            │",
            "└──────────────────────────────────────────────────────────┘",
            "connected to http://127.0.0.1:8470                          ",
            "Enter send · Alt-Enter newline · Tab/↑↓ chats · F1 info · Es",
        ],
    );
}

#[test]
fn a_small_terminal_and_a_resize() {
    let mut app = fixture();
    app.on_event(incoming(
        Some("alice"),
        3,
        "a reply long enough to wrap in forty columns",
    ));
    let mut t = Terminal::new(TestBackend::new(40, 10)).unwrap();
    t.draw(|f| app.draw(f)).unwrap();
    assert_screen(
        &lines_of(t.backend().buffer()),
        &[
            "┌ Chats ───┐┌ alice · confirmed ───────┐",
            "│>alice    ││12:01 alice: a reply long │",
            "│ bob     2││    enough to wrap in     │",
            "│Requests  ││    forty columns         │",
            "└──────────┘└──────────────────────────┘",
            "┌ Message to alice ────────────────────┐",
            "│                                      │",
            "└──────────────────────────────────────┘",
            "connected to http://127.0.0.1:8470      ",
            "Enter send · Alt-Enter newline · Tab/↑↓ ",
        ],
    );
    t.backend_mut().resize(72, 12);
    t.draw(|f| app.draw(f)).unwrap();
    assert_screen(
        &lines_of(t.backend().buffer()),
        &[
            "┌ Chats ─────────┐┌ alice · confirmed ─────────────────────────────────┐",
            "│>alice          ││11:30 alice: hi, are you there?                     │",
            "│ bob           2││11:31 me: yes                                       │",
            "│Requests        ││12:01 alice: a reply long enough to wrap in forty   │",
            "│ #7 QRST-UVWX-Y…││    columns                                         │",
            "│                ││                                                    │",
            "└────────────────┘└────────────────────────────────────────────────────┘",
            "┌ Message to alice ────────────────────────────────────────────────────┐",
            "│                                                                      │",
            "└──────────────────────────────────────────────────────────────────────┘",
            "connected to http://127.0.0.1:8470                                      ",
            "Enter send · Alt-Enter newline · Tab/↑↓ chats · F1 info · Esc quit · PgU",
        ],
    );
    t.backend_mut().resize(20, 5);
    t.draw(|f| app.draw(f)).unwrap();
    assert_screen(
        &lines_of(t.backend().buffer()),
        &[
            "deaddrop chat needs ",
            "30x8 at least;      ",
            "Ctrl-C quits        ",
            "                    ",
            "                    ",
        ],
    );
}

#[test]
fn a_header_too_wide_for_a_narrow_pane_puts_the_text_below_it() {
    let mut app = fixture();
    app.message_queued(12);
    app.on_event(Event::Unsent {
        rows: vec![12],
        why: "down".into(),
        retry_in: Duration::from_secs(1),
    });
    app.set_conversation("alice", &[view(12, Direction::Out, "see you", NOON)]);
    assert_screen(
        &draw(&mut app, 40, 10),
        &[
            "┌ Chats ───┐┌ alice · confirmed ───────┐",
            "│>alice    ││12:00 me [not sent yet: qu│",
            "│ bob     2││    see you               │",
            "│Requests  ││                          │",
            "└──────────┘└──────────────────────────┘",
            "┌ Message to alice ────────────────────┐",
            "│                                      │",
            "└──────────────────────────────────────┘",
            "1 message(s) queued, not sent: down; try",
            "Enter send · Alt-Enter newline · Tab/↑↓ ",
        ],
    );
}

#[test]
fn page_up_and_page_down_scroll_through_a_long_conversation() {
    let mut app = fixture();
    let msgs: Vec<MessageView> = (1..=50)
        .map(|i| {
            view(
                i,
                Direction::In,
                &format!("message {i}"),
                NOON - (60 - i as u64) * MINUTE,
            )
        })
        .collect();
    app.set_conversation("alice", &msgs);
    let bottom = draw(&mut app, 50, 12);
    assert!(bottom[5].contains("message 50"), "{bottom:#?}");
    app.on_key(key(KeyCode::PageUp));
    let up = draw(&mut app, 50, 12);
    assert_screen(
        &up,
        &[
            "┌ Chats ───┐┌ alice · confirmed ↓ more below ────┐",
            "│>alice    ││11:42 alice: message 42             │",
            "│ bob     2││11:43 alice: message 43             │",
            "│Requests  ││11:44 alice: message 44             │",
            "│ #7 QRST-…││11:45 alice: message 45             │",
            "│          ││11:46 alice: message 46             │",
            "└──────────┘└────────────────────────────────────┘",
            "┌ Message to alice ──────────────────────────────┐",
            "│                                                │",
            "└────────────────────────────────────────────────┘",
            "connected to http://127.0.0.1:8470                ",
            "Enter send · Alt-Enter newline · Tab/↑↓ chats · F1",
        ],
    );
    // Past the top it stops at the first message.
    for _ in 0..30 {
        app.on_key(key(KeyCode::PageUp));
    }
    let top = draw(&mut app, 50, 12);
    assert!(top[1].contains("message 1"), "{top:#?}");
    for _ in 0..30 {
        app.on_key(key(KeyCode::PageDown));
    }
    assert_eq!(draw(&mut app, 50, 12), bottom);
}

#[test]
fn messages_arriving_for_the_open_conversation_show_at_once_and_are_marked_read() {
    let mut app = fixture();
    app.on_event(incoming(Some("alice"), 3, "ping-123"));
    assert_eq!(
        app.take_actions(),
        vec![Action::LoadConversation("alice".into())]
    );
    assert!(draw(&mut app, 70, 12)[3].contains("ping-123"));
    assert_eq!(app.contacts()[0].unread, 0);
    // From a stranger: the requests are reloaded.
    app.on_event(incoming(None, 4, "hello"));
    assert_eq!(app.take_actions(), vec![Action::LoadLists]);
}

#[test]
fn a_first_verified_message_in_the_open_conversation_updates_the_state() {
    let mut app = fixture();
    app.select(Selected::Contact("bob".into()));
    app.set_conversation("bob", &[]);
    app.take_actions();
    app.on_event(incoming(Some("bob"), 8, "verified now"));
    assert_eq!(
        app.take_actions(),
        vec![Action::LoadLists, Action::LoadConversation("bob".into())]
    );
}

/// A hostile peer floods the open conversation with 10,000 messages, each full of escape
/// sequences and one very long line: the chat keeps the newest [`MAX_MESSAGES`], cut each, and
/// the screen keeps its frame.
#[test]
fn a_flood_of_hostile_messages_stays_bounded_and_keeps_the_layout() {
    let mut app = fixture();
    let long = format!(
        "{}\u{1b}[1A\u{1b}[2K\r{}",
        "\u{1b}[31m".repeat(500),
        "x".repeat(40_000)
    );
    for i in 0..10_000 {
        app.on_event(incoming(Some("alice"), 100 + i, &long));
        app.on_event(incoming(Some("bob"), 100_000 + i, "spam"));
    }
    let conv = app.conversation().unwrap();
    assert_eq!(conv.messages.len(), MAX_MESSAGES);
    assert!(conv.earlier);
    assert!(conv
        .messages
        .iter()
        .all(|m| m.text.len() <= super::app::MAX_TEXT_BYTES && m.cut > 0));
    assert_eq!(conv.messages.back().unwrap().row, 100 + 9_999);
    assert_eq!(app.contacts()[1].unread, 2 + 10_000);
    // Asked once, however many arrived (the lists: Bob's first verified message).
    assert_eq!(
        app.take_actions(),
        vec![Action::LoadConversation("alice".into()), Action::LoadLists]
    );
    let screen = draw(&mut app, 80, 16);
    assert_all_safe(&screen);
    let frame = [0usize, 13, 14, 15];
    for (y, l) in screen.iter().enumerate() {
        assert_eq!(
            unicode_width::UnicodeWidthStr::width(l.as_str()),
            80,
            "{y}: {l}"
        );
        if !frame.contains(&y) && y < 10 {
            assert!(
                l.starts_with('│') && l.ends_with('│'),
                "line {y} lost its frame: {screen:#?}"
            );
        }
    }
    assert_screen(
        &screen,
        &[
            "┌ Chats ───────────┐┌ alice · confirmed ───────────────────────────────────────┐",
            "│>alice            ││    xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx│",
            "│ bob          999+││    xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx│",
            "│Requests          ││    xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx│",
            "│ #7 QRST-UVWX-YZ2…││    xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx│",
            "│                  ││    xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx│",
            "│                  ││    xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx│",
            "│                  ││    xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx│",
            "│                  ││    xxxxxxxxxxxxxxxxxxxxxxxxxx                            │",
            "│                  ││    … 26125 more bytes: `deaddrop read` shows them all    │",
            "└──────────────────┘└──────────────────────────────────────────────────────────┘",
            "┌ Message to alice ────────────────────────────────────────────────────────────┐",
            "│                                                                              │",
            "└──────────────────────────────────────────────────────────────────────────────┘",
            "connected to http://127.0.0.1:8470                                              ",
            "Enter send · Alt-Enter newline · Tab/↑↓ chats · F1 info · Esc quit · PgUp/PgDn s",
        ],
    );
    // Scrolling to the top of what is held lays out only what it shows.
    for _ in 0..100 {
        app.on_key(key(KeyCode::PageUp));
    }
    let screen = draw(&mut app, 80, 16);
    assert_all_safe(&screen);
}

#[test]
fn many_requests_are_listed_up_to_the_bound() {
    let mut app = fixture();
    let many: Vec<RequestItem> = (0..600).map(|i| request(1000 + i, "spam")).collect();
    app.set_lists(vec![contact("alice", 0, true)], many);
    assert_eq!(app.requests().len(), super::app::MAX_REQUESTS);
    let screen = draw(&mut app, 100, 10);
    assert!(screen[2].contains("Requests (+100)"), "{screen:#?}");
    // The selection stays in sight at the end of the list.
    app.on_key(key(KeyCode::Up));
    let screen = draw(&mut app, 100, 10);
    assert!(screen.iter().any(|l| l.contains(">#1499")), "{screen:#?}");
}

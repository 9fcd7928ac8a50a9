//! The chat's state, without a terminal: what is shown (contacts and requests with unread
//! counts, one conversation, the line being typed, prompts, the connection), how keys and
//! outside events change it, and the [`Action`]s it asks the I/O loop (`chat::run`) to carry
//! out. Drawing is in `ui.rs`. Tests drive it with key events and render it into a
//! `TestBackend`.
//!
//! Everything in memory is bounded: at most [`MAX_MESSAGES`] messages of one conversation,
//! each cut at [`MAX_TEXT_BYTES`], at most [`MAX_REQUESTS`] requests with
//! [`MAX_REQUEST_MESSAGES`] messages each, a typed line of at most [`MAX_INPUT_BYTES`].

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::when::Zone;
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use deaddrop_client::db::{MessageView, NewMessage};
use deaddrop_client::display;
use deaddrop_client::ops::WatchEvent;
use deaddrop_client::{Direction, RequestId};

/// Messages of the open conversation kept in memory (the newest).
pub const MAX_MESSAGES: usize = 2000;
/// The longest text kept of one message; `deaddrop read` shows the rest.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// Pending requests listed.
pub const MAX_REQUESTS: usize = 500;
/// Messages kept of one request.
pub const MAX_REQUEST_MESSAGES: usize = 50;
/// The longest message one can type or paste into the chat (`deaddrop send NAME -` takes more).
pub const MAX_INPUT_BYTES: usize = 64 * 1024;
/// Send states remembered, for the messages of this session.
const MAX_STATES: usize = 10_000;

/// What the left column has selected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selected {
    /// The conversation with a contact (by name).
    Contact(String),
    /// A pending request (by the id of its first message).
    Request(RequestId),
}

/// A contact as listed, with what the info panel shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactItem {
    /// The local name.
    pub name: String,
    /// Unread incoming messages.
    pub unread: u64,
    /// Fingerprint, short form.
    pub fingerprint: String,
    /// Fingerprint in full, hex.
    pub fingerprint_hex: String,
    /// The suite's name.
    pub suite: String,
    /// Confirmed by a reply: their messages proved they hold the key of their card.
    pub confirmed: bool,
    /// When the user marked the fingerprint compared in person (`deaddrop contact verify`),
    /// ms since the Unix epoch.
    pub in_person_ms: Option<u64>,
    /// The name on their card (chosen by them).
    pub card_name: Option<String>,
    /// How many introductions of their address messages go to.
    pub introductions: u64,
}

/// One message of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestMessage {
    /// Ledger time.
    pub time_ms: u64,
    /// The text (cut at [`MAX_TEXT_BYTES`]).
    pub text: String,
}

/// A pending request: the first messages of one sender who is not a contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestItem {
    /// What accepting and rejecting take (its first message's id).
    pub id: RequestId,
    /// The sender's fingerprint, short form.
    pub fingerprint: String,
    /// How many different senders claim the address.
    pub introductions: u64,
    /// Its messages, oldest first (at most [`MAX_REQUEST_MESSAGES`]).
    pub messages: Vec<RequestMessage>,
}

/// One message of the open conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    /// The message's row id.
    pub row: i64,
    /// Sent by me.
    pub outgoing: bool,
    /// The text, cut at [`MAX_TEXT_BYTES`].
    pub text: String,
    /// Bytes cut off the text.
    pub cut: usize,
    /// Ledger time (in) or send time (out).
    pub time_ms: u64,
    /// Their check verified (in); always true (out).
    pub verified: bool,
}

impl ChatMessage {
    fn new(row: i64, outgoing: bool, text: &str, time_ms: u64, verified: bool) -> ChatMessage {
        let (text, cut) = cut_text(text);
        ChatMessage {
            row,
            outgoing,
            text,
            cut,
            time_ms,
            verified,
        }
    }

    /// A message as the database shows it.
    pub fn from_view(m: &MessageView) -> ChatMessage {
        ChatMessage::new(
            m.id,
            m.direction == Direction::Out,
            &m.text,
            m.time_ms,
            m.verified,
        )
    }
}

/// `text` cut at [`MAX_TEXT_BYTES`] (on a character boundary), and how many bytes were cut.
pub fn cut_text(text: &str) -> (String, usize) {
    if text.len() <= MAX_TEXT_BYTES {
        return (text.to_string(), 0);
    }
    let mut end = MAX_TEXT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_string(), text.len() - end)
}

/// The conversation shown.
#[derive(Clone, Debug, Default)]
pub struct Conversation {
    /// The contact's name.
    pub name: String,
    /// The newest messages, oldest first.
    pub messages: VecDeque<ChatMessage>,
    /// Older messages exist that are not in memory.
    pub earlier: bool,
}

/// Where an outgoing message of this session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendState {
    /// Being appended to the ledger.
    Sending,
    /// The ledger acknowledged every part.
    Sent,
    /// Not sent yet: it waits in the outbox and is tried again.
    Queued,
}

impl SendState {
    /// How the message's header shows it.
    pub fn label(self) -> &'static str {
        match self {
            SendState::Sending => "sending…",
            SendState::Sent => "sent",
            SendState::Queued => "not sent yet: queued",
        }
    }
}

/// The connection to the ledger's push stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// Catching up and connecting.
    Connecting,
    /// Caught up and following the push stream.
    Live,
    /// The connection dropped; reconnecting.
    Down {
        /// Why (from the ledger or the network: shown escaped).
        why: String,
        /// The delay before the next attempt.
        retry_in: Duration,
    },
    /// Following stopped for good (e.g. a ledger of another suite).
    Stopped {
        /// Why.
        why: String,
    },
}

/// Why sending is stuck, while it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsent {
    /// What the ledger or the network said.
    pub why: String,
    /// The delay before the next attempt.
    pub retry_in: Duration,
}

/// A line being edited: the message, or the name in the accept prompt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Input {
    text: String,
    /// Byte offset of the cursor, on a character boundary.
    cursor: usize,
}

impl Input {
    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text before the cursor.
    pub fn before_cursor(&self) -> &str {
        &self.text[..self.cursor]
    }

    /// Whether nothing is typed.
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Inserts `s` at the cursor, as much of it as fits in [`MAX_INPUT_BYTES`]; false if some
    /// did not fit.
    fn insert(&mut self, s: &str) -> bool {
        let room = MAX_INPUT_BYTES.saturating_sub(self.text.len());
        let mut end = s.len().min(room);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.text.insert_str(self.cursor, &s[..end]);
        self.cursor += end;
        end == s.len()
    }

    fn backspace(&mut self) {
        if let Some(c) = self.text[..self.cursor].chars().next_back() {
            self.cursor -= c.len_utf8();
            self.text.remove(self.cursor);
        }
    }

    fn delete(&mut self) {
        if self.cursor < self.text.len() {
            self.text.remove(self.cursor);
        }
    }

    fn left(&mut self) {
        if let Some(c) = self.text[..self.cursor].chars().next_back() {
            self.cursor -= c.len_utf8();
        }
    }

    fn right(&mut self) {
        if let Some(c) = self.text[self.cursor..].chars().next() {
            self.cursor += c.len_utf8();
        }
    }

    /// The start of the cursor's line.
    fn home(&mut self) {
        self.cursor = self.text[..self.cursor].rfind('\n').map_or(0, |i| i + 1);
    }

    /// The end of the cursor's line.
    fn end(&mut self) {
        self.cursor += self.text[self.cursor..]
            .find('\n')
            .unwrap_or(self.text.len() - self.cursor);
    }

    fn take(&mut self) -> String {
        self.cursor = 0;
        std::mem::take(&mut self.text)
    }

    fn set(&mut self, text: String) {
        self.cursor = text.len();
        self.text = text;
    }

    /// Applies an editing key; false if the key is not one.
    fn edit(&mut self, key: &KeyEvent) -> EditResult {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('u') if ctrl => {
                self.take();
            }
            KeyCode::Char('a') if ctrl => self.home(),
            KeyCode::Char('e') if ctrl => self.end(),
            KeyCode::Char(c)
                if !ctrl && !key.modifiers.contains(KeyModifiers::ALT) && !c.is_control() =>
            {
                if !self.insert(c.encode_utf8(&mut [0; 4])) {
                    return EditResult::Full;
                }
            }
            KeyCode::Backspace => self.backspace(),
            KeyCode::Delete => self.delete(),
            KeyCode::Left => self.left(),
            KeyCode::Right => self.right(),
            KeyCode::Home => self.home(),
            KeyCode::End => self.end(),
            _ => return EditResult::NotEditing,
        }
        EditResult::Done
    }
}

enum EditResult {
    Done,
    Full,
    NotEditing,
}

/// A prompt over the screen, if one is open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No prompt.
    Normal,
    /// Accepting a request: the name to give its sender.
    Accept {
        /// The request.
        id: RequestId,
        /// The name typed so far.
        name: Input,
    },
    /// Rejecting a request, waiting for `y`.
    ConfirmReject {
        /// The request.
        id: RequestId,
    },
}

/// What the chat asks the I/O loop to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Leave: restore the terminal and exit 0.
    Quit,
    /// Load the newest messages of a conversation from the database (marking it read) and
    /// hand them to [`App::set_conversation`].
    LoadConversation(String),
    /// Load the contacts and requests and hand them to [`App::set_lists`].
    LoadLists,
    /// Seal and queue a message (it then goes out in the background).
    Send {
        /// The contact.
        to: String,
        /// The text, as typed.
        text: String,
    },
    /// Accept a request, its sender to be called `name`.
    Accept {
        /// The request.
        id: RequestId,
        /// The name.
        name: String,
    },
    /// Reject a request.
    Reject {
        /// The request.
        id: RequestId,
    },
    /// Try to send what waits in the outbox.
    Flush,
}

/// What happens outside the keyboard.
#[derive(Debug)]
pub enum Event {
    /// From following the ledger.
    Watch(WatchEvent),
    /// Following the ledger stopped with an error.
    WatchStopped(String),
    /// Watch events were dropped (the chat fell behind): reload from the database.
    Missed,
    /// These messages are being appended.
    Flushing(Vec<i64>),
    /// These messages reached the ledger.
    Sent(Vec<i64>),
    /// These messages could not be sent; they stay queued.
    Unsent {
        /// The messages.
        rows: Vec<i64>,
        /// Why (shown escaped).
        why: String,
        /// When it is tried again.
        retry_in: Duration,
    },
}

/// The chat's state.
#[derive(Debug)]
pub struct App {
    pub(super) ledger_url: String,
    pub(super) now_ms: u64,
    /// Where times are shown: the local zone, or UTC with `--utc`.
    pub(super) zone: Zone,
    pub(super) contacts: Vec<ContactItem>,
    pub(super) requests: Vec<RequestItem>,
    /// Requests beyond [`MAX_REQUESTS`], not listed.
    pub(super) more_requests: usize,
    pub(super) selected: Option<Selected>,
    pub(super) conversation: Option<Conversation>,
    pub(super) states: HashMap<i64, SendState>,
    /// Lines scrolled up from the bottom of the conversation.
    pub(super) scroll: usize,
    /// The conversation pane's height at the last draw (a page).
    pub(super) page: usize,
    pub(super) input: Input,
    pub(super) mode: Mode,
    pub(super) info: bool,
    pub(super) link: Link,
    pub(super) unsent: Option<Unsent>,
    pub(super) notice: Option<String>,
    actions: Vec<Action>,
}

impl App {
    /// A chat with nothing loaded yet, following `ledger_url`, showing times in UTC until
    /// [`App::set_zone`].
    pub fn new(ledger_url: &str, now_ms: u64) -> App {
        App {
            ledger_url: ledger_url.to_string(),
            now_ms,
            zone: Zone::utc(),
            contacts: Vec::new(),
            requests: Vec::new(),
            more_requests: 0,
            selected: None,
            conversation: None,
            states: HashMap::new(),
            scroll: 0,
            page: 10,
            input: Input::default(),
            mode: Mode::Normal,
            info: false,
            link: Link::Connecting,
            unsent: None,
            notice: None,
            actions: Vec::new(),
        }
    }

    /// Shows times in `zone`.
    pub fn set_zone(&mut self, zone: Zone) {
        self.zone = zone;
    }

    /// The clock, for showing dates (messages of today show the time only).
    pub fn set_now(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
    }

    /// What is selected.
    #[cfg(test)]
    pub fn selected(&self) -> Option<&Selected> {
        self.selected.as_ref()
    }

    /// The conversation shown, if any.
    #[cfg(test)]
    pub fn conversation(&self) -> Option<&Conversation> {
        self.conversation.as_ref()
    }

    /// The contacts listed.
    #[cfg(test)]
    pub fn contacts(&self) -> &[ContactItem] {
        &self.contacts
    }

    /// The requests listed.
    #[cfg(test)]
    pub fn requests(&self) -> &[RequestItem] {
        &self.requests
    }

    /// The line being typed.
    #[cfg(test)]
    pub fn input(&self) -> &str {
        self.input.text()
    }

    /// The send state of message `row`, if it was sent in this session.
    #[cfg(test)]
    pub fn send_state(&self, row: i64) -> Option<SendState> {
        self.states.get(&row).copied()
    }

    /// The actions asked for since the last call, each once.
    pub fn take_actions(&mut self) -> Vec<Action> {
        let mut out: Vec<Action> = Vec::with_capacity(self.actions.len());
        for a in self.actions.drain(..) {
            if !out.contains(&a) {
                out.push(a);
            }
        }
        out
    }

    /// Whether the user asked to leave.
    #[cfg(test)]
    pub fn quitting(&self) -> bool {
        self.actions.contains(&Action::Quit)
    }

    fn ask(&mut self, a: Action) {
        self.actions.push(a);
    }

    /// Shows a one-line notice in the status bar until the next key.
    pub fn notice(&mut self, text: impl Into<String>) {
        self.notice = Some(text.into());
    }

    /// Puts text back into the input line (a send that failed before it was queued).
    pub fn restore_input(&mut self, text: String) {
        if self.input.is_empty() {
            self.input.set(text);
        }
    }

    /// Replaces the contacts and requests. The selection stays where it was if it still exists,
    /// else moves to the first entry.
    pub fn set_lists(&mut self, contacts: Vec<ContactItem>, mut requests: Vec<RequestItem>) {
        self.more_requests = requests.len().saturating_sub(MAX_REQUESTS);
        requests.truncate(MAX_REQUESTS);
        self.contacts = contacts;
        self.requests = requests;
        // The open conversation is read: its count stays 0 (the database agrees once loaded).
        if let Some(Selected::Contact(n)) = &self.selected {
            if let Some(c) = self.contacts.iter_mut().find(|c| &c.name == n) {
                c.unread = 0;
            }
        }
        let still = match &self.selected {
            Some(Selected::Contact(n)) => self.contacts.iter().any(|c| &c.name == n),
            Some(Selected::Request(id)) => self.requests.iter().any(|r| r.id == *id),
            None => false,
        };
        if !still {
            match self.entries().first().cloned() {
                Some(first) => self.select(first),
                None => {
                    self.selected = None;
                    self.conversation = None;
                }
            }
        }
    }

    /// Every entry of the left column, in order: contacts, then requests.
    pub fn entries(&self) -> Vec<Selected> {
        self.contacts
            .iter()
            .map(|c| Selected::Contact(c.name.clone()))
            .chain(self.requests.iter().map(|r| Selected::Request(r.id)))
            .collect()
    }

    /// Selects an entry; a contact's conversation is loaded.
    pub fn select(&mut self, sel: Selected) {
        if let Selected::Contact(name) = &sel {
            if self.conversation.as_ref().map(|c| &c.name) != Some(name) {
                self.conversation = None;
            }
            self.ask(Action::LoadConversation(name.clone()));
        } else {
            self.conversation = None;
        }
        if self.selected.as_ref() != Some(&sel) {
            self.scroll = 0;
        }
        self.selected = Some(sel);
    }

    /// Moves the selection by `delta` entries, wrapping around.
    fn step(&mut self, delta: isize) {
        let entries = self.entries();
        if entries.is_empty() {
            return;
        }
        let n = entries.len() as isize;
        let at = self
            .selected
            .as_ref()
            .and_then(|s| entries.iter().position(|e| e == s))
            .map_or(0, |i| i as isize);
        let next = (at + delta).rem_euclid(n) as usize;
        if let Some(e) = entries.get(next) {
            self.select(e.clone());
        }
    }

    /// The newest messages of `name`'s conversation, freshly loaded (the database has marked
    /// them read). Ignored if another conversation is shown by now.
    pub fn set_conversation(&mut self, name: &str, messages: &[MessageView]) {
        if self.selected != Some(Selected::Contact(name.to_string())) {
            return;
        }
        let skip = messages.len().saturating_sub(MAX_MESSAGES);
        self.conversation = Some(Conversation {
            name: name.to_string(),
            messages: messages[skip..]
                .iter()
                .map(ChatMessage::from_view)
                .collect(),
            earlier: messages.len() >= MAX_MESSAGES,
        });
        if let Some(c) = self.contacts.iter_mut().find(|c| c.name == name) {
            c.unread = 0;
        }
    }

    /// A message of mine was queued: it shows as being sent.
    pub fn message_queued(&mut self, row: i64) {
        if self.states.len() >= MAX_STATES {
            self.states.retain(|_, s| *s != SendState::Sent);
        }
        self.states.insert(row, SendState::Sending);
    }

    /// Messages of this session waiting to be sent.
    pub fn waiting(&self) -> usize {
        self.states
            .values()
            .filter(|s| **s != SendState::Sent)
            .count()
    }

    /// Something happened outside.
    pub fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Watch(WatchEvent::Message(m)) => self.incoming(m),
            Event::Watch(WatchEvent::Listening { .. }) => {
                self.link = Link::Live;
                // Connected: what waits in the outbox can go.
                self.ask(Action::Flush);
            }
            Event::Watch(WatchEvent::Gap(a, b)) => self.notice(format!(
                "entries {a} to {b} expired on the ledger before this client read them; messages in them are lost"
            )),
            Event::Watch(WatchEvent::Reconnecting(retry_in, why)) => {
                self.link = Link::Down { why, retry_in };
            }
            Event::WatchStopped(why) => self.link = Link::Stopped { why },
            Event::Missed => {
                self.ask(Action::LoadLists);
                if let Some(Selected::Contact(n)) = &self.selected {
                    self.ask(Action::LoadConversation(n.clone()));
                }
            }
            Event::Flushing(rows) => self.set_states(&rows, SendState::Sending),
            Event::Sent(rows) => {
                self.set_states(&rows, SendState::Sent);
                self.unsent = None;
            }
            Event::Unsent {
                rows,
                why,
                retry_in,
            } => {
                self.set_states(&rows, SendState::Queued);
                self.unsent = Some(Unsent { why, retry_in });
            }
        }
    }

    fn set_states(&mut self, rows: &[i64], state: SendState) {
        for r in rows {
            if let Some(s) = self.states.get_mut(r) {
                *s = state;
            }
        }
    }

    fn incoming(&mut self, m: NewMessage) {
        let Some(name) = m.contact else {
            // A request: the list shows it once reloaded.
            self.ask(Action::LoadLists);
            return;
        };
        let known = self.contacts.iter_mut().find(|c| c.name == name);
        match known {
            // A first verified message changes what the title and the info panel say.
            Some(c) if m.verified && !c.confirmed => self.ask(Action::LoadLists),
            Some(_) => {}
            None => self.ask(Action::LoadLists),
        }
        let shown = matches!(&self.selected, Some(Selected::Contact(n)) if *n == name);
        if shown {
            if let Some(conv) = self.conversation.as_mut() {
                conv.messages.push_back(ChatMessage::new(
                    m.id, false, &m.text, m.time_ms, m.verified,
                ));
                while conv.messages.len() > MAX_MESSAGES {
                    conv.messages.pop_front();
                    conv.earlier = true;
                }
            }
            // Marks it read in the database, in the database's order.
            self.ask(Action::LoadConversation(name));
            return;
        }
        if let Some(c) = self.contacts.iter_mut().find(|c| c.name == name) {
            c.unread += 1;
        }
    }

    /// Text pasted into the terminal (bracketed paste).
    pub fn on_paste(&mut self, text: &str) {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        match &mut self.mode {
            Mode::Accept { name, .. } => {
                name.insert(text.lines().next().unwrap_or_default());
            }
            Mode::ConfirmReject { .. } => {}
            Mode::Normal => {
                if matches!(self.selected, Some(Selected::Contact(_))) && !self.input.insert(&text)
                {
                    self.notice(format!(
                        "the chat takes messages up to {} KiB; longer ones: `deaddrop send NAME -`",
                        MAX_INPUT_BYTES / 1024
                    ));
                }
            }
        }
    }

    /// A key was pressed.
    pub fn on_key(&mut self, key: KeyEvent) {
        if key.kind == KeyEventKind::Release {
            return;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        if key.code == KeyCode::Char('c') && ctrl {
            self.ask(Action::Quit);
            return;
        }
        self.notice = None;
        match std::mem::replace(&mut self.mode, Mode::Normal) {
            Mode::Accept { id, mut name } => self.accept_key(id, &mut name, &key),
            Mode::ConfirmReject { id } => match key.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => self.ask(Action::Reject { id }),
                KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {}
                _ => self.mode = Mode::ConfirmReject { id },
            },
            Mode::Normal => self.normal_key(&key),
        }
    }

    fn accept_key(&mut self, id: RequestId, name: &mut Input, key: &KeyEvent) {
        match key.code {
            KeyCode::Esc => {}
            KeyCode::Enter => {
                let n = name.text().trim().to_string();
                if n.is_empty() {
                    self.notice("type the name you will use for them, or Esc");
                } else if n.chars().any(display::is_unsafe) {
                    self.notice("a name may not hold control or bidi characters");
                } else {
                    self.ask(Action::Accept { id, name: n });
                    return;
                }
                self.mode = Mode::Accept {
                    id,
                    name: name.clone(),
                };
            }
            _ => {
                name.edit(key);
                self.mode = Mode::Accept {
                    id,
                    name: name.clone(),
                };
            }
        }
    }

    fn normal_key(&mut self, key: &KeyEvent) {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Esc if self.info => self.info = false,
            KeyCode::Esc => self.ask(Action::Quit),
            KeyCode::F(1) => self.info = !self.info,
            KeyCode::Char('f') if ctrl => self.info = !self.info,
            KeyCode::Tab | KeyCode::Down => self.step(1),
            KeyCode::BackTab | KeyCode::Up => self.step(-1),
            KeyCode::PageUp => self.scroll = self.scroll.saturating_add(self.page_step()),
            KeyCode::PageDown => self.scroll = self.scroll.saturating_sub(self.page_step()),
            _ => match self.selected.clone() {
                Some(Selected::Contact(name)) => self.typing(name, key),
                Some(Selected::Request(id)) => match key.code {
                    KeyCode::Char('a') if !ctrl => {
                        self.mode = Mode::Accept {
                            id,
                            name: Input::default(),
                        }
                    }
                    KeyCode::Char('r') if !ctrl => self.mode = Mode::ConfirmReject { id },
                    _ => {}
                },
                None => {}
            },
        }
    }

    fn page_step(&self) -> usize {
        self.page.saturating_sub(1).max(1)
    }

    fn typing(&mut self, name: String, key: &KeyEvent) {
        let newline = match key.code {
            // Alt-Enter everywhere; Shift-Enter where the terminal tells it from Enter (kitty's
            // keyboard protocol); Ctrl-J is a line feed in any terminal.
            KeyCode::Enter => key
                .modifiers
                .intersects(KeyModifiers::ALT | KeyModifiers::SHIFT),
            KeyCode::Char('j') => key.modifiers.contains(KeyModifiers::CONTROL),
            _ => false,
        };
        if newline {
            if !self.input.insert("\n") {
                self.notice("the message is as long as the chat takes");
            }
            return;
        }
        if key.code == KeyCode::Enter {
            if self.input.text().trim().is_empty() {
                return;
            }
            let text = self.input.take();
            self.scroll = 0;
            self.ask(Action::Send { to: name, text });
            return;
        }
        if let EditResult::Full = self.input.edit(key) {
            self.notice(format!(
                "the chat takes messages up to {} KiB; longer ones: `deaddrop send NAME -`",
                MAX_INPUT_BYTES / 1024
            ));
        }
    }
}

//! `deaddrop chat [NAME]`: a full-screen chat in the terminal. Contacts and pending requests on
//! the left with unread counts, the conversation on the right, the line being typed below.
//!
//! The state and its drawing ([`app`], [`ui`]) know no terminal and no database; this module is
//! the shell around them. Three tasks share the home, each on a connection of its own to the
//! encrypted database, all opened under the key of the first (the passphrase is asked once):
//!
//! - the screen (this loop): keys, drawing, reads (a conversation shown is marked read),
//!   queueing what is typed into the outbox (`ops::queue`, no network), accepting and
//!   rejecting requests;
//! - the follower: `ops::watch`, its events passed over a bounded channel (when it is full, the
//!   screen reloads from the database instead: nothing is lost, since the follower stores
//!   every message before it tells);
//! - the sender: appends what waits in the outbox (`ops::flush_outbox_within`) when kicked —
//!   after each message typed, and on connecting — and again with backoff while the ledger
//!   cannot be reached. A message is in the outbox before anything goes on the wire, so one
//!   typed while the ledger is down is not lost: it goes when the ledger is back, or with the
//!   next `deaddrop send` or `chat`.
//!
//! The terminal is restored (raw mode off, the main screen back) on every way out: quitting,
//! an error, and a panic (a hook restores it before the panic message is printed).

mod app;
mod ui;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io::{IsTerminal, Stdout};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use crate::when::Zone;
use crossterm::event::{
    DisableBracketedPaste, EnableBracketedPaste, Event as TermEvent, EventStream,
    KeyboardEnhancementFlags, PopKeyboardEnhancementFlags, PushKeyboardEnhancementFlags,
};
use crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, supports_keyboard_enhancement, EnterAlternateScreen,
    LeaveAlternateScreen,
};
use deaddrop_client::api::Backoff;
use deaddrop_client::db::Db;
use deaddrop_client::ops::{self, now_ms};
use deaddrop_client::{ClientError, LedgerClient};
use deaddrop_proto::rng::SystemRng;
use deaddrop_proto::{CheckKey, Identity, Suite};
use futures_util::StreamExt;
use ratatui::backend::CrosstermBackend;
use ratatui::Terminal;
use tokio::sync::mpsc;

use app::{
    cut_text, Action, App, ContactItem, Event, RequestItem, RequestMessage, Selected, MAX_MESSAGES,
    MAX_REQUEST_MESSAGES,
};

/// Events from the follower and the sender waiting for the screen.
const EVENTS: usize = 1024;
/// Events handled between two draws.
const BATCH: usize = 256;
/// Kicks waiting for the sender.
const KICKS: usize = 256;
/// How long one attempt to send the outbox retries before the chat says it is stuck.
const FLUSH_PATIENCE: Duration = Duration::from_secs(10);

/// Why `chat` refuses to start without a terminal.
const NEEDS_TERMINAL: &str = "`deaddrop chat` is full-screen and needs a terminal on standard \
     input and output; in scripts, follow messages with `deaddrop watch` and write with \
     `deaddrop send NAME TEXT`";

/// Runs the chat until Ctrl-C or Esc. With `name`, its conversation is selected (an unknown
/// name is an error before the screen opens).
pub fn run(
    db: Db,
    ledger: LedgerClient,
    me: Identity,
    name: Option<String>,
    zone: Zone,
) -> anyhow::Result<()> {
    if let Some(n) = &name {
        db.contact(n)?;
    }
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        return Err(ClientError::Input(NEEDS_TERMINAL.into()).into());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(session(db, ledger, me, name, zone));
    // The follower and the sender are dropped where they are: what they stored is committed,
    // and what waits in the outbox stays there.
    rt.shutdown_timeout(Duration::from_millis(500));
    let waiting = result?;
    if waiting > 0 {
        eprintln!(
            "{waiting} message(s) not sent yet: they wait in the outbox and go out with your next `deaddrop send` or `deaddrop chat`"
        );
    }
    Ok(())
}

/// What the sender is woken with.
enum Kick {
    /// These messages were queued.
    Rows(Vec<i64>),
    /// Try what waits (connected again).
    Flush,
}

/// Ends the background tasks when the session ends, however it ends.
struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// The chat from its first draw to its last; returns how many messages of this session were
/// not sent yet.
async fn session(
    mut db: Db,
    ledger: LedgerClient,
    me: Identity,
    name: Option<String>,
    zone: Zone,
) -> anyhow::Result<usize> {
    let suite = me.suite();
    let (events_tx, mut events) = mpsc::channel(EVENTS);
    let missed = Arc::new(AtomicBool::new(false));
    let (kick, kicks) = mpsc::channel(KICKS);
    let follower = tokio::spawn(follow(
        db.reopen()?,
        ledger.clone(),
        Arc::new(me),
        events_tx.clone(),
        missed.clone(),
    ));
    let sender = tokio::spawn(send_queued(
        db.reopen()?,
        ledger.clone(),
        suite,
        kicks,
        events_tx,
    ));
    let _tasks = AbortOnDrop(vec![follower.abort_handle(), sender.abort_handle()]);
    let mut app = App::new(ledger.url(), now_ms());
    app.set_zone(zone);
    load_lists(&db, &mut app)?;
    if let Some(n) = name {
        app.select(Selected::Contact(n));
    }
    // Whatever an earlier session left in the outbox.
    let _ = kick.try_send(Kick::Flush);
    let mut screen = Screen::enter()?;
    let result = ui_loop(&mut screen, &mut app, &mut db, &mut events, &kick, &missed).await;
    drop(screen);
    result.map(|()| app.waiting())
}

/// Follows the ledger with `ops::watch`, passing its events on.
async fn follow(
    mut db: Db,
    ledger: LedgerClient,
    me: Arc<Identity>,
    tx: mpsc::Sender<Event>,
    missed: Arc<AtomicBool>,
) {
    let on_event = |ev| {
        // Never wait here: the screen reloads from the database when it missed some.
        if tx.try_send(Event::Watch(ev)).is_err() {
            missed.store(true, Ordering::Relaxed);
        }
    };
    let r = ops::watch(&mut db, &ledger, me, on_event, std::future::pending()).await;
    if let Err(e) = r {
        let _ = tx.send(Event::WatchStopped(e.to_string())).await;
    }
}

/// Sends what waits in the outbox whenever kicked, and again with backoff while it fails.
async fn send_queued(
    mut db: Db,
    ledger: LedgerClient,
    suite: Suite,
    mut kicks: mpsc::Receiver<Kick>,
    tx: mpsc::Sender<Event>,
) {
    let mut rows: Vec<i64> = Vec::new();
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(30));
    let mut retry: Option<tokio::time::Instant> = None;
    loop {
        let woke = match retry {
            Some(at) => tokio::select! {
                k = kicks.recv() => k.map(Some),
                _ = tokio::time::sleep_until(at) => Some(None),
            },
            None => kicks.recv().await.map(Some),
        };
        // The screen is gone.
        let Some(first) = woke else { return };
        let mut take = |k: Kick| {
            if let Kick::Rows(r) = k {
                rows.extend(r);
            }
        };
        if let Some(k) = first {
            take(k);
        }
        while let Ok(k) = kicks.try_recv() {
            take(k);
        }
        let _ = tx.send(Event::Flushing(rows.clone())).await;
        let result = async {
            if db.pending_outbox()?.is_empty() {
                return Ok(());
            }
            let info = ops::check_ledger(&ledger, suite).await?;
            ops::flush_outbox_within(&mut db, &ledger, suite, info.pow_bits, FLUSH_PATIENCE)
                .await
                .map(|_| ())
        }
        .await;
        match result {
            Ok(()) => {
                backoff.reset();
                retry = None;
                let _ = tx.send(Event::Sent(std::mem::take(&mut rows))).await;
            }
            Err(e) => {
                let delay = backoff.next_delay().unwrap_or(Duration::from_secs(30));
                retry = Some(tokio::time::Instant::now() + delay);
                let _ = tx
                    .send(Event::Unsent {
                        rows: rows.clone(),
                        why: e.to_string(),
                        retry_in: delay,
                    })
                    .await;
            }
        }
    }
}

/// Loads the contacts (with unread counts) and the pending requests into `app`.
fn load_lists(db: &Db, app: &mut App) -> Result<(), ClientError> {
    let unread: HashMap<String, u64> = db
        .inbox()?
        .into_iter()
        .map(|r| (r.contact, r.unread))
        .collect();
    let mut contacts = Vec::new();
    for c in db.contacts()? {
        let fp = c.card.address().fingerprint();
        contacts.push(ContactItem {
            unread: unread.get(&c.name).copied().unwrap_or(0),
            fingerprint: fp.short(),
            fingerprint_hex: fp.to_hex(),
            suite: c.card.address().suite().name().to_string(),
            confirmed: c.confirmed,
            in_person_ms: db.verified_in_person(&c.name)?.map(|v| v.at_ms),
            card_name: c.card.name().map(str::to_string),
            introductions: db.introductions(&c)?,
            name: c.name,
        });
    }
    // One entry per sender, its messages oldest first.
    let mut requests: Vec<RequestItem> = Vec::new();
    let mut by_sender: HashMap<String, usize> = HashMap::new();
    for q in db.requests()? {
        let fp = q.fingerprint.short();
        let message = RequestMessage {
            time_ms: q.time_ms,
            text: cut_text(&q.text).0,
        };
        match by_sender.get(&fp) {
            Some(&i) => {
                if let Some(r) = requests.get_mut(i) {
                    if r.messages.len() < MAX_REQUEST_MESSAGES {
                        r.messages.push(message);
                    }
                }
            }
            None => {
                by_sender.insert(fp.clone(), requests.len());
                requests.push(RequestItem {
                    id: q.id,
                    fingerprint: fp,
                    introductions: q.introductions,
                    messages: vec![message],
                });
            }
        }
    }
    app.set_lists(contacts, requests);
    Ok(())
}

/// Carries out what the chat asked for; true to quit.
fn perform(app: &mut App, db: &mut Db, kick: &mpsc::Sender<Kick>) -> bool {
    // An action may ask for more (an accepted request selects its conversation, which loads):
    // a few rounds settle it.
    for _ in 0..4 {
        let actions = app.take_actions();
        if actions.is_empty() {
            break;
        }
        for action in actions {
            let done = match action {
                Action::Quit => return true,
                Action::LoadConversation(name) => db
                    .conversation_tail(&name, Some(MAX_MESSAGES))
                    .map(|m| app.set_conversation(&name, &m)),
                Action::LoadLists => load_lists(db, app),
                Action::Send { to, text } => match ops::queue(db, &to, &text) {
                    Ok(q) => {
                        app.message_queued(q.row);
                        if kick.try_send(Kick::Rows(vec![q.row])).is_err() {
                            app.notice("queued; it goes out with the next one");
                        }
                        app.select(Selected::Contact(to));
                        Ok(())
                    }
                    Err(e) => {
                        app.restore_input(text);
                        Err(e)
                    }
                },
                Action::Accept { id, name } => db
                    .accept_request(id, &name, &CheckKey::generate(&mut SystemRng), now_ms())
                    .and_then(|c| {
                        load_lists(db, app)?;
                        app.notice(format!(
                            "accepted: {} is now your contact {}; compare the fingerprint with them (F1)",
                            c.card.address().fingerprint().short(),
                            c.name
                        ));
                        app.select(Selected::Contact(c.name));
                        Ok(())
                    }),
                Action::Reject { id } => db.reject_request(id).and_then(|()| {
                    load_lists(db, app)?;
                    app.notice(format!(
                        "rejected request #{id}; later messages from that sender are dropped"
                    ));
                    Ok(())
                }),
                Action::Flush => {
                    let _ = kick.try_send(Kick::Flush);
                    Ok(())
                }
            };
            if let Err(e) = done {
                app.notice(e.to_string());
            }
        }
    }
    false
}

/// Keys, pastes and resizes from the terminal.
fn on_terminal(app: &mut App, ev: TermEvent) {
    match ev {
        TermEvent::Key(k) => app.on_key(k),
        TermEvent::Paste(text) => app.on_paste(&text),
        // A resize needs nothing but the next draw, which takes the new size.
        _ => {}
    }
}

async fn ui_loop(
    screen: &mut Screen,
    app: &mut App,
    db: &mut Db,
    events: &mut mpsc::Receiver<Event>,
    kick: &mpsc::Sender<Kick>,
    missed: &AtomicBool,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    // `kill` and a closed terminal end the chat as Ctrl-C does, with the terminal restored.
    let mut term = signal(SignalKind::terminate())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut events_open = true;
    loop {
        if perform(app, db, kick) {
            return Ok(());
        }
        screen.terminal.draw(|f| app.draw(f))?;
        tokio::select! {
            k = keys.next() => match k {
                Some(Ok(ev)) => on_terminal(app, ev),
                Some(Err(e)) => return Err(e.into()),
                // The terminal is gone.
                None => return Ok(()),
            },
            ev = events.recv(), if events_open => match ev {
                Some(ev) => {
                    app.on_event(ev);
                    for _ in 0..BATCH {
                        match events.try_recv() {
                            Ok(ev) => app.on_event(ev),
                            Err(_) => break,
                        }
                    }
                }
                None => events_open = false,
            },
            _ = term.recv() => return Ok(()),
            _ = hangup.recv() => return Ok(()),
            _ = tick.tick() => {
                app.set_now(now_ms());
                if missed.swap(false, Ordering::Relaxed) {
                    app.on_event(Event::Missed);
                }
            }
        }
        if PANICKED.load(Ordering::SeqCst) {
            anyhow::bail!("the chat stopped after an internal error (see above)");
        }
    }
}

/// The terminal is in raw mode on the alternate screen (restore it on the way out).
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Keyboard enhancement flags were pushed (pop them on the way out).
static ENHANCED: AtomicBool = AtomicBool::new(false);
/// A thread panicked: the terminal is restored and the screen must stop drawing.
static PANICKED: AtomicBool = AtomicBool::new(false);

/// The terminal in raw mode on the alternate screen, with bracketed paste; restored on drop.
struct Screen {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    fn enter() -> std::io::Result<Screen> {
        install_panic_hook();
        let entered = (|| {
            enable_raw_mode()?;
            ACTIVE.store(true, Ordering::SeqCst);
            let mut out = std::io::stdout();
            crossterm::execute!(out, EnterAlternateScreen, EnableBracketedPaste)?;
            // Shift-Enter can be told from Enter only in terminals that speak kitty's keyboard
            // protocol; elsewhere Alt-Enter (or Ctrl-J) starts a new line.
            if matches!(supports_keyboard_enhancement(), Ok(true)) {
                crossterm::execute!(
                    out,
                    PushKeyboardEnhancementFlags(
                        KeyboardEnhancementFlags::DISAMBIGUATE_ESCAPE_CODES
                    )
                )?;
                ENHANCED.store(true, Ordering::SeqCst);
            }
            Terminal::new(CrosstermBackend::new(out))
        })();
        match entered {
            Ok(terminal) => Ok(Screen { terminal }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = self.terminal.show_cursor();
        restore();
    }
}

/// Makes a panic on any thread restore the terminal before the panic's message is printed
/// (else the message lands on the alternate screen, in raw mode, and vanishes), and stop the
/// drawing. Installed once; the hook before it still runs.
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.store(true, Ordering::SeqCst);
            restore();
            previous(info);
        }));
    });
}

/// Puts the terminal back as it was (once; from a drop or the panic hook).
fn restore() {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    let mut out = std::io::stdout();
    if ENHANCED.swap(false, Ordering::SeqCst) {
        let _ = crossterm::execute!(out, PopKeyboardEnhancementFlags);
    }
    let _ = crossterm::execute!(
        out,
        DisableBracketedPaste,
        LeaveAlternateScreen,
        crossterm::cursor::Show
    );
    let _ = disable_raw_mode();
}

#[cfg(test)]
mod panic_tests {
    use super::*;

    #[test]
    fn a_panic_on_another_thread_restores_the_terminal_and_stops_the_drawing() {
        install_panic_hook();
        // As `Screen::enter` leaves it (no terminal is needed: restoring writes the sequences
        // that leave the alternate screen and turns raw mode off, which is a no-op here).
        ACTIVE.store(true, Ordering::SeqCst);
        let joined = std::thread::spawn(|| panic!("a bug in the chat")).join();
        assert!(joined.is_err());
        assert!(
            !ACTIVE.load(Ordering::SeqCst),
            "the hook restored the terminal"
        );
        assert!(
            PANICKED.load(Ordering::SeqCst),
            "the drawing loop is told to stop"
        );
    }
}

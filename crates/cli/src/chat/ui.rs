//! Drawing the chat: the left column (contacts with unread counts, then requests), the
//! conversation or request on the right, the input line, a status line and a line of keys; the
//! info panel and the prompts over them.
//!
//! Everything that came from someone else (message text, card names, request text, what a
//! ledger said) goes through [`deaddrop_client::display::line`] before it becomes a `Span`, so
//! no control, C1, DEL or bidi character reaches the terminal; tabs become spaces (a terminal
//! would move the cursor). Messages are wrapped here, not by ratatui, so that every line of a
//! message after its first, wrapped or its own, starts indented under the header: none can pose
//! as a header of its own.

use deaddrop_client::display;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;
use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthStr;

use super::app::{App, ChatMessage, Link, Mode, RequestItem, Selected};

/// Where a message's second and later lines start.
const INDENT: &str = "    ";
/// The most lines one message takes on screen; the rest is cut with a note.
const MAX_LINES_PER_MESSAGE: usize = 400;
/// The smallest screen drawn in full.
const MIN_WIDTH: u16 = 30;
const MIN_HEIGHT: u16 = 8;
/// Lines of a message being typed shown at once.
const MAX_INPUT_LINES: usize = 5;
/// Columns a header leaves at least for the text beside it.
const MIN_TEXT_COLS: usize = 8;
/// Columns a sender's name takes at most in a header.
const MAX_NAME_WIDTH: usize = 24;

fn bold() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

fn dim() -> Style {
    Style::default().add_modifier(Modifier::DIM)
}

/// Someone else's text for one line of the screen: escaped, tabs as spaces.
pub fn safe(text: &str) -> String {
    display::line(text).replace('\t', "    ")
}

/// The width `s` takes on screen.
fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `s` cut to `max` columns, ending in `…` when cut.
pub fn fit(s: &str, max: usize) -> String {
    if width(s) <= max {
        return s.to_string();
    }
    let mut out = String::new();
    let mut w = 0;
    for g in s.graphemes(true) {
        let gw = width(g);
        if w + gw + 1 > max {
            break;
        }
        out.push_str(g);
        w += gw;
    }
    if max > 0 {
        out.push('…');
    }
    out
}

/// Splits `text` (already safe, one line) into pieces of at most `first` columns, then `rest`
/// columns, breaking after a space where one is near.
fn wrap(text: &str, first: usize, rest: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut w = 0;
    // Where the line could break: byte offset after the last space, and the width there.
    let mut space: Option<(usize, usize)> = None;
    for g in text.graphemes(true) {
        let limit = if lines.is_empty() { first } else { rest }.max(1);
        let gw = width(g);
        if w + gw > limit && w > 0 {
            match space {
                Some((at, at_w)) if at < line.len() => {
                    let tail = line.split_off(at);
                    lines.push(std::mem::replace(&mut line, tail));
                    w -= at_w;
                }
                _ => {
                    lines.push(std::mem::take(&mut line));
                    w = 0;
                }
            }
            space = None;
        }
        line.push_str(g);
        w += gw;
        if g == " " {
            space = Some((line.len(), w));
        }
    }
    lines.push(line);
    lines
}

/// The lines of one message at `cols` columns: a header (`12:03 B: `) and the text, every line
/// but the first indented.
fn message_lines(
    header: Vec<Span<'static>>,
    text: &str,
    cut: usize,
    cols: usize,
) -> Vec<Line<'static>> {
    let header_w: usize = header.iter().map(|s| width(&s.content)).sum();
    let rest = cols.saturating_sub(INDENT.len()).max(1);
    let mut out: Vec<Line<'static>> = Vec::new();
    let mut first = Some(header);
    // A header that leaves the text no room (a narrow pane, a long state) stands alone.
    if cols < header_w + MIN_TEXT_COLS {
        out.extend(first.take().map(Line::from));
    }
    let mut total = 0usize;
    for segment in text.split('\n') {
        let room = if first.is_some() {
            cols.saturating_sub(header_w)
        } else {
            rest
        };
        for piece in wrap(&safe(segment), room, rest) {
            total += 1;
            if out.len() >= MAX_LINES_PER_MESSAGE {
                continue;
            }
            out.push(match first.take() {
                Some(mut spans) => {
                    spans.push(Span::raw(piece));
                    Line::from(spans)
                }
                None => Line::from(format!("{INDENT}{piece}")),
            });
        }
    }
    if total > out.len() || cut > 0 {
        let note = if cut > 0 {
            format!("… {cut} more bytes: `deaddrop read` shows them all")
        } else {
            format!(
                "… {} more lines: `deaddrop read` shows them all",
                total - out.len()
            )
        };
        out.push(Line::styled(format!("{INDENT}{}", fit(&note, rest)), dim()));
    }
    out
}

impl App {
    /// Draws the whole screen.
    pub fn draw(&mut self, frame: &mut Frame<'_>) {
        let area = frame.area();
        if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
            frame.render_widget(
                Paragraph::new(format!(
                    "deaddrop chat needs {MIN_WIDTH}x{MIN_HEIGHT} at least; Ctrl-C quits"
                ))
                .wrap(Wrap { trim: true }),
                area,
            );
            return;
        }
        let input_lines = self
            .input
            .text()
            .split('\n')
            .count()
            .clamp(1, MAX_INPUT_LINES) as u16;
        let [main, input, status, help] = Layout::vertical([
            Constraint::Min(3),
            Constraint::Length(input_lines + 2),
            Constraint::Length(1),
            Constraint::Length(1),
        ])
        .areas(area);
        let side_w = (area.width / 4).clamp(12, 28);
        let [side, pane] =
            Layout::horizontal([Constraint::Length(side_w), Constraint::Min(10)]).areas(main);
        self.draw_side(frame, side);
        self.draw_pane(frame, pane);
        self.draw_input(frame, input);
        frame.render_widget(Paragraph::new(self.status_line()), status);
        frame.render_widget(Paragraph::new(Line::styled(self.help_line(), dim())), help);
        if self.info {
            self.draw_info(frame, pane);
        }
        match &self.mode {
            Mode::Normal => {}
            Mode::Accept { .. } | Mode::ConfirmReject { .. } => self.draw_prompt(frame, pane),
        }
    }

    fn draw_side(&self, frame: &mut Frame<'_>, area: Rect) {
        let block = Block::bordered().title(" Chats ");
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let cols = usize::from(inner.width);
        let mut lines: Vec<Line<'static>> = Vec::new();
        let mut at = None;
        for c in &self.contacts {
            let sel = self.selected == Some(Selected::Contact(c.name.clone()));
            if sel {
                at = Some(lines.len());
            }
            let count = match c.unread {
                0 => String::new(),
                n if n > 999 => " 999+".to_string(),
                n => format!(" {n}"),
            };
            let name = fit(&safe(&c.name), cols.saturating_sub(1 + width(&count)));
            let pad = cols.saturating_sub(1 + width(&name) + width(&count));
            let text = format!(
                "{}{name}{}{count}",
                if sel { '>' } else { ' ' },
                " ".repeat(pad)
            );
            let style = match (sel, c.unread > 0) {
                (true, _) => Style::default().add_modifier(Modifier::REVERSED),
                (false, true) => bold(),
                (false, false) => Style::default(),
            };
            lines.push(Line::styled(text, style));
        }
        if self.contacts.is_empty() {
            lines.push(Line::styled(fit(" no contacts", cols), dim()));
        }
        if !self.requests.is_empty() {
            let more = if self.more_requests > 0 {
                format!(" (+{})", self.more_requests)
            } else {
                String::new()
            };
            lines.push(Line::styled(fit(&format!("Requests{more}"), cols), bold()));
            for r in &self.requests {
                let sel = self.selected == Some(Selected::Request(r.id));
                if sel {
                    at = Some(lines.len());
                }
                let text = format!("{}#{} {}", if sel { '>' } else { ' ' }, r.id, r.fingerprint);
                let style = if sel {
                    Style::default().add_modifier(Modifier::REVERSED)
                } else {
                    Style::default()
                };
                lines.push(Line::styled(fit(&text, cols), style));
            }
        }
        // Keep the selected entry in sight.
        let height = usize::from(inner.height);
        let skip = at.map_or(0, |i| (i + 1).saturating_sub(height));
        let shown: Vec<Line<'static>> = lines.into_iter().skip(skip).collect();
        frame.render_widget(Paragraph::new(shown), inner);
    }

    fn pane_title(&self, cols: usize) -> String {
        let title = match &self.selected {
            Some(Selected::Contact(name)) => {
                let state = match self.contacts.iter().find(|c| &c.name == name) {
                    Some(c) => {
                        let reply = if c.confirmed {
                            " · confirmed"
                        } else {
                            " · not yet confirmed"
                        };
                        let eye = if c.in_person_ms.is_some() {
                            " · fingerprint verified"
                        } else {
                            ""
                        };
                        format!("{reply}{eye}")
                    }
                    None => String::new(),
                };
                format!(" {}{state} ", safe(name))
            }
            Some(Selected::Request(id)) => format!(" Request #{id} · unverified "),
            None => " deaddrop chat ".to_string(),
        };
        let more = if self.scroll > 0 {
            "↓ more below "
        } else {
            ""
        };
        fit(&format!("{title}{more}"), cols)
    }

    fn draw_pane(&mut self, frame: &mut Frame<'_>, area: Rect) {
        let block =
            Block::bordered().title(self.pane_title(usize::from(area.width).saturating_sub(2)));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let cols = usize::from(inner.width);
        let height = usize::from(inner.height);
        self.page = height;
        let lines = match self.selected.clone() {
            Some(Selected::Contact(name)) => self.conversation_lines(&name, cols, height),
            Some(Selected::Request(id)) => match self.requests.iter().find(|r| r.id == id) {
                Some(r) => self.request_lines(r, cols, height),
                None => Vec::new(),
            },
            None => vec![
                Line::raw("No contacts yet."),
                Line::raw("Add one with `deaddrop contact add CARD --name NAME`;"),
                Line::raw("first messages from others appear here as requests."),
            ],
        };
        let wrap_own = self.selected.is_none();
        let mut p = Paragraph::new(lines);
        if wrap_own {
            p = p.wrap(Wrap { trim: true });
        }
        frame.render_widget(p, inner);
    }

    fn header(&self, m: &ChatMessage, name: &str) -> Vec<Span<'static>> {
        let who = if m.outgoing {
            "me".to_string()
        } else {
            fit(&safe(name), MAX_NAME_WIDTH)
        };
        let mark = if m.outgoing {
            self.states
                .get(&m.row)
                .map(|s| format!(" [{}]", s.label()))
                .unwrap_or_default()
        } else if !m.verified {
            " [unverified]".to_string()
        } else {
            String::new()
        };
        vec![
            Span::styled(
                format!("{} ", self.zone.clock(m.time_ms, self.now_ms)),
                dim(),
            ),
            Span::styled(who, bold()),
            Span::styled(mark, dim()),
            Span::raw(": "),
        ]
    }

    /// The window of the conversation `height` lines high, `self.scroll` lines up from its end;
    /// only the messages in the window (and those below it) are laid out.
    fn conversation_lines(&mut self, name: &str, cols: usize, height: usize) -> Vec<Line<'static>> {
        let Some(conv) = &self.conversation else {
            return vec![Line::styled("loading…", dim())];
        };
        if conv.messages.is_empty() {
            return vec![Line::styled(
                fit(
                    &format!(
                        "No messages with {} yet: type below, Enter sends.",
                        safe(name)
                    ),
                    cols,
                ),
                dim(),
            )];
        }
        let want = height.saturating_add(self.scroll);
        let mut rev: Vec<Line<'static>> = Vec::new();
        let mut all = true;
        for m in conv.messages.iter().rev() {
            if rev.len() >= want {
                all = false;
                break;
            }
            let lines = message_lines(self.header(m, name), &m.text, m.cut, cols);
            rev.extend(lines.into_iter().rev());
        }
        if all && conv.earlier {
            rev.push(Line::styled(
                fit("… older messages: `deaddrop read` shows them", cols),
                dim(),
            ));
        }
        // Everything is laid out: scrolling cannot go past the top.
        if all {
            self.scroll = self.scroll.min(rev.len().saturating_sub(height));
        }
        let bottom = self.scroll;
        let mut out: Vec<Line<'static>> = rev.into_iter().skip(bottom).take(height).collect();
        out.reverse();
        out
    }

    fn request_lines(&self, r: &RequestItem, cols: usize, height: usize) -> Vec<Line<'static>> {
        let mut out = vec![
            Line::styled(format!("From {}, not a contact.", r.fingerprint), bold()),
            Line::raw("Unverified: anyone who knows your address could have sent it."),
        ];
        if r.introductions > 1 {
            out.push(Line::raw(format!(
                "{} different senders claim this address; accepting writes to each until one answers.",
                r.introductions
            )));
        }
        // Those lines are ours: wrap them as ratatui would, by hand, to count them.
        let mut lines: Vec<Line<'static>> = Vec::new();
        for l in out {
            let style = l.style;
            let text: String = l.spans.iter().map(|s| s.content.as_ref()).collect();
            for piece in wrap(&text, cols, cols) {
                lines.push(Line::styled(piece, style));
            }
        }
        for m in &r.messages {
            let header = vec![
                Span::styled(
                    format!("{} ", self.zone.clock(m.time_ms, self.now_ms)),
                    dim(),
                ),
                Span::styled(format!("#{}", r.id), bold()),
                Span::raw(": "),
            ];
            lines.extend(message_lines(header, &m.text, 0, cols));
        }
        // The newest at the bottom, as a conversation.
        let skip = lines.len().saturating_sub(height);
        lines.into_iter().skip(skip).collect()
    }

    fn draw_input(&self, frame: &mut Frame<'_>, area: Rect) {
        let cols = usize::from(area.width).saturating_sub(2);
        let (title, enabled) = match &self.selected {
            Some(Selected::Contact(n)) => (format!(" Message to {} ", safe(n)), true),
            Some(Selected::Request(id)) => (format!(" Request #{id} "), false),
            None => (" Message ".to_string(), false),
        };
        let block = Block::bordered().title(fit(&title, cols));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        if !enabled {
            let text = match &self.selected {
                Some(Selected::Request(_)) => "a: accept (you name them) · r: reject",
                _ => "nobody to write to yet",
            };
            frame.render_widget(Paragraph::new(Line::styled(fit(text, cols), dim())), inner);
            return;
        }
        // The lines up to the cursor's, the last MAX_INPUT_LINES of them; the cursor's line
        // scrolled sideways to keep the cursor in sight. Escaped like anything pasted.
        let before: Vec<&str> = self.input.before_cursor().split('\n').collect();
        let after_cursor = &self.input.text()[self.input.before_cursor().len()..];
        let rest_of_line = after_cursor.split('\n').next().unwrap_or("");
        let cursor_line = before.len() - 1;
        let first = (cursor_line + 1).saturating_sub(usize::from(inner.height));
        let all: Vec<&str> = self.input.text().split('\n').collect();
        let mut lines = Vec::new();
        let mut cursor = None;
        for (i, l) in all
            .iter()
            .enumerate()
            .skip(first)
            .take(usize::from(inner.height))
        {
            if i == cursor_line {
                let head = display::line(before[cursor_line]);
                let tail = display::line(rest_of_line);
                let head_w = width(&head);
                // Room for the cursor after the text before it.
                let shift = (head_w + 1).saturating_sub(cols);
                let mut shown = String::new();
                let mut w = 0;
                for g in head.graphemes(true) {
                    if w >= shift {
                        shown.push_str(g);
                    }
                    w += width(g);
                }
                let x = width(&shown);
                shown.push_str(&tail);
                cursor = Some((x, i - first));
                lines.push(Line::raw(fit(&shown, cols.max(x + 1))));
            } else {
                lines.push(Line::raw(fit(&display::line(l), cols)));
            }
        }
        frame.render_widget(Paragraph::new(lines), inner);
        if let (Mode::Normal, Some((x, y))) = (&self.mode, cursor) {
            frame.set_cursor_position(Position {
                x: inner.x + (x as u16).min(inner.width.saturating_sub(1)),
                y: inner.y + y as u16,
            });
        }
    }

    fn status_line(&self) -> Line<'static> {
        let url = safe(&self.ledger_url);
        // Most urgent first: a narrow screen cuts the end.
        let mut parts: Vec<Span<'static>> = Vec::new();
        if let Some(n) = &self.notice {
            parts.push(Span::styled(format!("{} · ", safe(n)), bold()));
        }
        if let Some(u) = &self.unsent {
            parts.push(Span::styled(
                format!(
                    "{} message(s) queued, not sent: {}; trying again in {:.0} s · ",
                    self.waiting(),
                    safe(&u.why),
                    u.retry_in.as_secs_f64().ceil()
                ),
                bold(),
            ));
        }
        parts.push(match &self.link {
            Link::Connecting => Span::raw(format!("connecting to {url}…")),
            Link::Live => Span::raw(format!("connected to {url}")),
            Link::Down { why, retry_in } => Span::styled(
                format!(
                    "ledger unreachable: {}; reconnecting in {:.0} s",
                    safe(why),
                    retry_in.as_secs_f64().ceil()
                ),
                bold(),
            ),
            Link::Stopped { why } => Span::styled(format!("not receiving: {}", safe(why)), bold()),
        });
        Line::from(parts)
    }

    fn help_line(&self) -> String {
        match (&self.mode, &self.selected) {
            (Mode::Accept { .. }, _) => "Enter accept · Esc cancel · Ctrl-C quit".into(),
            (Mode::ConfirmReject { .. }, _) => "y reject · n keep it · Ctrl-C quit".into(),
            (_, Some(Selected::Request(_))) => {
                "a accept · r reject · Tab/↑↓ next · F1 info · Esc quit".into()
            }
            // Most needed first: a narrow screen cuts the end.
            _ => "Enter send · Alt-Enter newline · Tab/↑↓ chats · F1 info · Esc quit · PgUp/PgDn scroll"
                .into(),
        }
    }

    fn info_lines(&self) -> Vec<Line<'static>> {
        match &self.selected {
            Some(Selected::Contact(name)) => {
                let Some(c) = self.contacts.iter().find(|c| &c.name == name) else {
                    return Vec::new();
                };
                let mut l = vec![
                    Line::styled(safe(&c.name), bold()),
                    Line::raw(format!("fingerprint  {}", c.fingerprint)),
                    Line::raw(if c.confirmed {
                        "reply        confirmed: their messages prove they hold the key".to_string()
                    } else {
                        "reply        not yet confirmed: confirmed once they reply to a message of yours"
                            .to_string()
                    }),
                    Line::raw(match c.in_person_ms {
                        Some(at) => format!(
                            "in person    fingerprint verified {}",
                            self.zone.clock(at, self.now_ms)
                        ),
                        None => format!(
                            "in person    not compared yet: compare the fingerprint with them, then `deaddrop contact verify {}`",
                            safe(&c.name)
                        ),
                    }),
                ];
                if let Some(n) = &c.card_name {
                    l.push(Line::raw(format!(
                        "card name    {} (chosen by them: anyone can choose any name)",
                        safe(n)
                    )));
                }
                if c.introductions > 1 {
                    l.push(Line::raw(format!(
                        "claimed by   {} different first messages: yours go to each until one answers",
                        c.introductions
                    )));
                }
                l.push(Line::raw(format!("suite        {}", c.suite)));
                l.push(Line::raw(format!(
                    "full         {}",
                    groups(&c.fingerprint_hex)
                )));
                l
            }
            Some(Selected::Request(id)) => {
                let Some(r) = self.requests.iter().find(|r| r.id == *id) else {
                    return Vec::new();
                };
                vec![
                    Line::styled(format!("Request #{}", r.id), bold()),
                    Line::raw(format!("fingerprint  {}", r.fingerprint)),
                    Line::raw(
                        "state        unverified: anyone who knows your address could have sent it",
                    ),
                    Line::raw(format!("claimed by   {} sender(s)", r.introductions)),
                ]
            }
            None => vec![Line::raw("Nothing selected.")],
        }
    }

    fn draw_info(&self, frame: &mut Frame<'_>, pane: Rect) {
        let lines = self.info_lines();
        let area = popup(pane, lines.len() as u16 + 6);
        let block = Block::bordered().title(" Info · F1 closes ");
        frame.render_widget(Clear, area);
        frame.render_widget(
            Paragraph::new(lines)
                .block(block)
                .wrap(Wrap { trim: false }),
            area,
        );
    }

    fn draw_prompt(&self, frame: &mut Frame<'_>, pane: Rect) {
        let (title, lines, cursor) = match &self.mode {
            Mode::Accept { id, name } => {
                let fp = self
                    .requests
                    .iter()
                    .find(|r| r.id == *id)
                    .map(|r| r.fingerprint.clone())
                    .unwrap_or_default();
                let typed = display::line(name.text());
                (
                    format!(" Accept request #{id} "),
                    vec![
                        Line::raw(format!("The name you will use for {fp}:")),
                        Line::raw(format!("> {typed}")),
                        Line::styled("Enter accept · Esc cancel", dim()),
                    ],
                    Some(2 + width(&display::line(name.before_cursor()))),
                )
            }
            Mode::ConfirmReject { id } => (
                format!(" Reject request #{id}? "),
                vec![
                    Line::raw("Its messages are deleted; later ones from this sender are dropped."),
                    Line::styled("y reject · n keep it", dim()),
                ],
                None,
            ),
            Mode::Normal => return,
        };
        let area = popup(pane, 6);
        let block = Block::bordered().title(title);
        let inner = block.inner(area);
        frame.render_widget(Clear, area);
        frame.render_widget(
            Paragraph::new(lines)
                .block(block)
                .wrap(Wrap { trim: false }),
            area,
        );
        if let Some(x) = cursor {
            let cols = inner.width.saturating_sub(1);
            frame.set_cursor_position(Position {
                x: inner.x + (x as u16).min(cols),
                y: inner.y + 1,
            });
        }
    }
}

/// Hex in groups of eight, so that it wraps between groups.
fn groups(hex: &str) -> String {
    let chunks: Vec<String> = hex
        .as_bytes()
        .chunks(8)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    chunks.join(" ")
}

/// A box over the inside of `pane`, `height` high at most, at its top.
fn popup(pane: Rect, height: u16) -> Rect {
    let inside = Block::bordered().inner(pane);
    Rect {
        height: height.min(inside.height),
        ..inside
    }
}

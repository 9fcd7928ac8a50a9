//! Text that came from someone else, made safe for a terminal.
//!
//! A message's text, a card's name, a request's preview: any of them may carry bytes a terminal
//! obeys instead of showing. An escape sequence can retitle the window, recolour or erase what
//! is on screen; a carriage return can overwrite the start of a line with a fake
//! `[time] alice:` header; a bidi override can make `txt.exe` read as `exe.txt`. Everything
//! human-readable that the client prints from someone else goes through [`line`] or [`block`]:
//! control characters (C0 but tab, DEL, C1), bidi controls and the Unicode line and paragraph
//! separators come out as visible escapes (`\x1b`, `\r`, `\u{202e}`), and a text's own line
//! breaks never start a line of their own. `--json` output carries the exact text instead.

use std::fmt::Write as _;

/// Whether `c` must not reach a terminal as it is.
pub fn is_unsafe(c: char) -> bool {
    let u = u32::from(c);
    (c.is_control() && c != '\t')
        || matches!(
            u,
            0x061C // Arabic letter mark
            | 0x200E | 0x200F // left-to-right and right-to-left marks
            | 0x2028 | 0x2029 // line and paragraph separators
            | 0x202A..=0x202E // embeddings and overrides
            | 0x2066..=0x2069 // isolates
        )
}

/// Appends the visible escape of `c` to `out`.
fn escape_into(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        c if u32::from(c) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        }
        c => {
            let _ = write!(out, "\\u{{{:04x}}}", u32::from(c));
        }
    }
}

/// `text` for one line of a terminal: every unsafe character, line breaks included, escaped.
pub fn line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if is_unsafe(c) {
            escape_into(&mut out, c);
        } else {
            out.push(c);
        }
    }
    out
}

/// `text` for the end of a line that starts with a header (`[time] name: `): its own line
/// breaks are kept, each following line starts with `indent`, so that no line of the text can
/// pose as a header of its own; every other unsafe character is escaped.
pub fn block(text: &str, indent: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, part) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
            out.push_str(indent);
        }
        out.push_str(&line(part));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn escapes_what_a_terminal_would_obey() {
        assert_eq!(
            line("Bob\x1b]0;PWNED\x07\x1b[2K"),
            "Bob\\x1b]0;PWNED\\x07\\x1b[2K"
        );
        assert_eq!(
            line("hi\r[2026-01-01T00:00:00Z] Bob: pass"),
            "hi\\r[2026-01-01T00:00:00Z] Bob: pass"
        );
        assert_eq!(line("txt\u{202e}exe"), "txt\\u{202e}exe");
        assert_eq!(line("a\u{85}b\u{9b}c\u{7f}"), "a\\u{0085}b\\u{009b}c\\x7f");
        assert_eq!(line("two\nlines"), "two\\nlines");
        assert_eq!(line("tab\tand ünïcødé ✓"), "tab\tand ünïcødé ✓");
        assert_eq!(line(""), "");
    }

    #[test]
    fn a_block_keeps_its_lines_under_the_header() {
        assert_eq!(
            block("first\n[2026-01-01T00:00:00Z] alice: fake\r\x1b[1A", "    "),
            "first\n    [2026-01-01T00:00:00Z] alice: fake\\r\\x1b[1A"
        );
        assert_eq!(block("one line", "  "), "one line");
    }

    proptest! {
        #[test]
        fn nothing_unsafe_survives(s in any::<String>()) {
            let l = line(&s);
            prop_assert!(!l.chars().any(is_unsafe), "{l:?}");
            let b = block(&s, "  ");
            prop_assert!(b.chars().filter(|&c| c != '\n').all(|c| !is_unsafe(c)));
            // Every line after the first is indented: none can start a header.
            prop_assert!(b.split('\n').skip(1).all(|l| l.starts_with("  ")));
        }

        #[test]
        fn safe_text_is_unchanged(s in "[a-zA-Z0-9 .,:;!?'\"()ü✓\t-]*") {
            prop_assert_eq!(line(&s), s.clone());
            prop_assert_eq!(block(&s, "  "), s);
        }
    }
}

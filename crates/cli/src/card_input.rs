//! Where `contact add` takes a card from: the argument, standard input (`-`), a file
//! (`--file F`) or the QR code in a picture (`--qr-image F`). Whitespace anywhere in the text
//! (a card pasted across lines, indented in a mail, with a trailing newline) is dropped before
//! the card is parsed: a card's own alphabet has none.

use std::io::Read;
use std::path::{Path, PathBuf};

use deaddrop_client::ClientError;
use deaddrop_proto::ContactCard;

/// The most text read as a card from standard input or a file; a card is a few kilobytes.
const MAX_CARD_TEXT: u64 = 64 << 10;

/// Where the card comes from.
#[derive(Debug)]
pub enum Source {
    /// The text given on the command line, or `-` for standard input.
    Arg(String),
    /// A text file holding the card.
    File(PathBuf),
    /// A picture of the card's QR code.
    QrImage(PathBuf),
}

/// `text` without any whitespace.
pub fn squeeze(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

fn read_text(from: impl Read, what: &str) -> Result<String, ClientError> {
    let mut buf = Vec::new();
    from.take(MAX_CARD_TEXT + 1)
        .read_to_end(&mut buf)
        .map_err(|e| ClientError::io(format!("cannot read {what}"), e))?;
    if buf.len() as u64 > MAX_CARD_TEXT {
        return Err(ClientError::Card(format!(
            "{what} holds more than {MAX_CARD_TEXT} bytes; a card is a few kilobytes"
        )));
    }
    String::from_utf8(buf).map_err(|_| ClientError::Card(format!("{what} is not UTF-8 text")))
}

fn open(path: &Path) -> Result<std::fs::File, ClientError> {
    std::fs::File::open(path)
        .map_err(|e| ClientError::io(format!("cannot open {}", path.display()), e))
}

/// The card from `source`, parsed.
pub fn read(source: Source) -> Result<ContactCard, ClientError> {
    let text = match source {
        Source::Arg(a) if a == "-" => read_text(std::io::stdin().lock(), "standard input")?,
        Source::Arg(a) => a,
        Source::File(p) => read_text(open(&p)?, &p.display().to_string())?,
        Source::QrImage(p) => {
            let text = crate::qr::read_image(&p)?;
            if !squeeze(&text).starts_with(deaddrop_proto::card::CARD_PREFIX) {
                return Err(ClientError::Card(format!(
                    "the QR code in {} holds no deaddrop card (it starts `{}`)",
                    p.display(),
                    deaddrop_client::display::line(&text.chars().take(24).collect::<String>())
                )));
            }
            text
        }
    };
    let text = squeeze(&text);
    if text.is_empty() {
        return Err(ClientError::Card("it is empty".into()));
    }
    ContactCard::parse(&text).map_err(|e| ClientError::Card(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_anywhere_goes() {
        assert_eq!(
            squeeze("  dead\ndrop-card-v1:\r\n ab\tc \n"),
            "deaddrop-card-v1:abc"
        );
    }
}

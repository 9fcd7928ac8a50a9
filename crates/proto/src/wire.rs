//! The ledger API's shared vocabulary (`docs/API.md`): the binary framing of entries in read
//! responses and pushes, header names, and the JSON bodies, so that the server and the client
//! read and write them from one definition.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Media type of a read response: a sequence of frames.
pub const ENTRIES_MEDIA_TYPE: &str = "application/vnd.deaddrop.entries";
/// Response header: the oldest id the ledger still holds (absent when it holds none).
pub const HEADER_OLDEST: &str = "deaddrop-oldest-id";
/// Response header: the newest id the ledger ever assigned (absent before the first append).
pub const HEADER_NEWEST: &str = "deaddrop-newest-id";
/// Response header: `A-B`, the ids after the reader's `after` that expired before it read them.
pub const HEADER_GAP: &str = "deaddrop-gap";
/// Response header: the id to pass as `after` for the next page.
pub const HEADER_NEXT_AFTER: &str = "deaddrop-next-after";
/// Response header: the proof-of-work difficulty appends need now.
pub const HEADER_POW_BITS: &str = "deaddrop-pow-bits";
/// Length of a frame's header: id (8), time (8), length (4).
pub const FRAME_HEADER_LEN: usize = 20;

/// One entry as the ledger sends it: `id (u64) || time_ms (u64) || len (u32) || entry`, all
/// big-endian.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The ledger-assigned id.
    pub id: u64,
    /// The ledger-assigned time, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The entry's bytes.
    pub entry: &'a [u8],
}

/// Bytes that are not a well-formed sequence of frames.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The data ends inside a frame.
    #[error("the ledger's response ends inside a frame (at byte {0}); retry the read")]
    Truncated(usize),
    /// A frame claims a length above the limit the reader set.
    #[error("the ledger sent a frame of {got} bytes, more than the {max} expected")]
    TooLong {
        /// The claimed length.
        got: usize,
        /// The limit.
        max: usize,
    },
}

impl Frame<'_> {
    /// Appends this frame's encoding to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&self.time_ms.to_be_bytes());
        out.extend_from_slice(&(self.entry.len() as u32).to_be_bytes());
        out.extend_from_slice(self.entry);
    }
}

/// Iterates over the frames in `data`, refusing entries longer than `max_entry`.
pub fn frames(data: &[u8], max_entry: usize) -> Frames<'_> {
    Frames {
        data,
        at: 0,
        max_entry,
    }
}

/// Iterator returned by [`frames`].
#[derive(Debug)]
pub struct Frames<'a> {
    data: &'a [u8],
    at: usize,
    max_entry: usize,
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.data[self.at..];
        if rest.is_empty() {
            return None;
        }
        let Some(head) = rest.get(..FRAME_HEADER_LEN) else {
            self.at = self.data.len();
            return Some(Err(FrameError::Truncated(self.data.len())));
        };
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&head[i..i + 8]);
            u64::from_be_bytes(b)
        };
        let len = u32::from_be_bytes([head[16], head[17], head[18], head[19]]) as usize;
        if len > self.max_entry {
            self.at = self.data.len();
            return Some(Err(FrameError::TooLong {
                got: len,
                max: self.max_entry,
            }));
        }
        let Some(entry) = rest.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len) else {
            self.at = self.data.len();
            return Some(Err(FrameError::Truncated(self.data.len())));
        };
        self.at += FRAME_HEADER_LEN + len;
        Some(Ok(Frame {
            id: u64_at(0),
            time_ms: u64_at(8),
            entry,
        }))
    }
}

/// `GET /v1/info`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// The protocol version, `deaddrop/1`.
    pub protocol: String,
    /// The ledger's suite name.
    pub suite: String,
    /// The length of every entry on this ledger.
    pub entry_bytes: usize,
    /// The current lifetime of entries, in seconds (paper III.3.1: it adapts to traffic).
    pub lifetime_s: u64,
    /// The longest lifetime this ledger grants.
    pub max_lifetime_s: u64,
    /// The shortest lifetime this ledger shrinks to.
    pub min_lifetime_s: u64,
    /// The proof-of-work difficulty appends need now, in bits.
    pub pow_bits: u8,
    /// The oldest id held, if any.
    pub oldest_id: Option<u64>,
    /// The newest id assigned, if any.
    pub newest_id: Option<u64>,
    /// Entries held now.
    pub entries: u64,
    /// The most entries one read returns.
    pub max_page: usize,
    /// The storage backend: `embedded`, `memory`, `jetstream`, ...
    pub store: String,
    /// The upstream ledger's URL when this ledger is a mirror.
    pub mirror_of: Option<String>,
    /// For a mirror: the upstream's newest id as last seen.
    #[serde(default)]
    pub upstream_newest_id: Option<u64>,
    /// For a mirror: how many ids it is behind its upstream.
    #[serde(default)]
    pub behind: Option<u64>,
    /// The server's version.
    pub server_version: String,
}

/// `POST /v1/entries` → `201 Created`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The id assigned.
    pub id: u64,
    /// The time assigned, milliseconds since the Unix epoch.
    pub time: u64,
    /// When the entry expires at the current lifetime, milliseconds since the Unix epoch.
    pub expires_at: u64,
}

/// An RFC 9457 problem document, as every error response carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// A stable URI per reason (`urn:deaddrop:problem:<reason>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// A short summary of the reason.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What was wrong with this request and what to do.
    pub detail: String,
}

/// The first text message of a push stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamHello {
    /// Always `hello`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The oldest id held.
    pub oldest_id: Option<u64>,
    /// The newest id assigned.
    pub newest_id: Option<u64>,
    /// The ids after the subscriber's `after` that expired unseen, `[first, last]`.
    pub gap: Option<[u64; 2]>,
}

/// The WebSocket close code for a subscriber that fell behind; it resumes by reading.
pub const CLOSE_LAGGED: u16 = 4000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_reject_truncation() {
        let mut buf = Vec::new();
        Frame {
            id: 7,
            time_ms: 9,
            entry: b"abc",
        }
        .encode(&mut buf);
        Frame {
            id: 8,
            time_ms: 10,
            entry: b"",
        }
        .encode(&mut buf);
        let got: Vec<_> = frames(&buf, 16).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            got,
            vec![
                Frame {
                    id: 7,
                    time_ms: 9,
                    entry: b"abc"
                },
                Frame {
                    id: 8,
                    time_ms: 10,
                    entry: b""
                }
            ]
        );
        for cut in 1..buf.len() {
            if cut == 23 {
                continue; // a whole first frame
            }
            let r: Result<Vec<_>, _> = frames(&buf[..cut], 16).collect();
            assert!(r.is_err(), "cut at {cut}");
        }
        assert!(matches!(
            frames(&buf, 2).next(),
            Some(Err(FrameError::TooLong { got: 3, max: 2 }))
        ));
    }
}

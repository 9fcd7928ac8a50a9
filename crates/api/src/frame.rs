//! The binary framing of entries in read responses and push messages: each entry as
//! `id (u64) || time_ms (u64) || len (u32) || entry`, all big-endian, frames back to back.

use deaddrop_proto::codec::{CodecError, Reader, Writer};
use thiserror::Error;

use crate::id::EntryId;

/// Media type of a read response: a sequence of frames.
pub const ENTRIES_MEDIA_TYPE: &str = "application/vnd.deaddrop.entries";
/// Length of a frame's header: id (8), time (8), length (4).
pub const FRAME_HEADER_LEN: usize = 20;

/// One entry as the ledger sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The ledger-assigned id.
    pub id: EntryId,
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
    /// The length of this frame's encoding.
    pub fn encoded_len(&self) -> usize {
        FRAME_HEADER_LEN + self.entry.len()
    }

    /// Appends this frame's encoding to `out`.
    ///
    /// Entries are a few KiB; a length that does not fit the 32-bit field cannot occur, and is
    /// written as `u32::MAX` (which every reader refuses) rather than wrapped.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.put_u64(self.id.0);
        out.put_u64(self.time_ms);
        out.put_u32(u32::try_from(self.entry.len()).unwrap_or(u32::MAX));
        out.put_slice(self.entry);
    }

    /// This frame's encoding.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out);
        out
    }
}

/// Iterates over the frames in `data`, refusing entries longer than `max_entry`. After the
/// first error the iterator ends.
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

impl<'a> Frames<'a> {
    /// Reads one frame from the front of `r`.
    fn read_frame(&self, r: &mut Reader<'a>) -> Result<Frame<'a>, FrameError> {
        let end = self.data.len();
        let truncated = |_: CodecError| FrameError::Truncated(end);
        let id = EntryId(r.u64().map_err(truncated)?);
        let time_ms = r.u64().map_err(truncated)?;
        let len = r.u32().map_err(truncated)? as usize;
        if len > self.max_entry {
            return Err(FrameError::TooLong {
                got: len,
                max: self.max_entry,
            });
        }
        let entry = r.take(len).map_err(truncated)?;
        Ok(Frame { id, time_ms, entry })
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, FrameError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut r = Reader::new(self.data.get(self.at..).unwrap_or_default());
        if r.is_empty() {
            return None;
        }
        match self.read_frame(&mut r) {
            Ok(frame) => {
                self.at += r.used();
                Some(Ok(frame))
            }
            Err(e) => {
                self.at = self.data.len();
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frame(id: u64, time_ms: u64, entry: &[u8]) -> Frame<'_> {
        Frame {
            id: EntryId(id),
            time_ms,
            entry,
        }
    }

    #[test]
    fn frames_round_trip_and_reject_truncation() {
        let mut buf = Vec::new();
        frame(7, 9, b"abc").encode(&mut buf);
        frame(8, 10, b"").encode(&mut buf);
        let got: Vec<_> = frames(&buf, 16).collect::<Result<_, _>>().unwrap();
        assert_eq!(got, vec![frame(7, 9, b"abc"), frame(8, 10, b"")]);
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

    proptest! {
        #[test]
        fn any_frames_round_trip(list in proptest::collection::vec(
            (any::<u64>(), any::<u64>(), proptest::collection::vec(any::<u8>(), 0..64)), 0..8)) {
            let mut buf = Vec::new();
            for (id, t, e) in &list {
                frame(*id, *t, e).encode(&mut buf);
            }
            let got: Vec<_> = frames(&buf, 64).collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(got.len(), list.len());
            for (g, (id, t, e)) in got.iter().zip(&list) {
                prop_assert_eq!(g, &frame(*id, *t, e));
            }
        }

        #[test]
        fn random_bytes_never_panic_and_never_overrun(data in proptest::collection::vec(any::<u8>(), 0..256), max in 0usize..128) {
            let mut total = 0;
            for f in frames(&data, max) {
                match f {
                    Ok(f) => {
                        prop_assert!(f.entry.len() <= max);
                        total += f.encoded_len();
                    }
                    Err(_) => break,
                }
            }
            prop_assert!(total <= data.len());
        }

        #[test]
        fn a_cut_anywhere_inside_a_frame_is_an_error(entry in proptest::collection::vec(any::<u8>(), 0..64), cut in 1usize..84) {
            let buf = frame(1, 2, &entry).to_vec();
            prop_assume!(cut < buf.len());
            let r: Result<Vec<_>, _> = frames(&buf[..cut], 64).collect();
            prop_assert_eq!(r, Err(FrameError::Truncated(cut)));
        }
    }
}

//! The one byte codec every deaddrop binary layout is read and written with: contact cards,
//! message bodies, the identity export, the API's entry frames, the client's sealed key file
//! and the ledger's on-disk records.
//!
//! Modelled on rustls's `msgs/codec.rs`: a [`Reader`] is a cursor over a borrowed slice that
//! hands out sub-slices and big-endian integers and fails with a typed [`CodecError`] instead
//! of panicking, whatever the input; [`Writer`] appends the same fields to a `Vec<u8>`. Every
//! integer in every deaddrop layout is big-endian, so there are no little-endian variants.
//!
//! ```
//! use deaddrop_proto::codec::{Reader, Writer};
//!
//! let mut out = Vec::new();
//! out.put_u8(1);
//! out.put_u32(0xdead_beef);
//! out.put_slice(b"tail");
//!
//! let mut r = Reader::new(&out);
//! assert_eq!(r.u8(), Ok(1));
//! assert_eq!(r.u32(), Ok(0xdead_beef));
//! assert_eq!(r.take(4), Ok(&b"tail"[..]));
//! assert_eq!(r.expect_empty(), Ok(()));
//! ```

use thiserror::Error;

/// Bytes that do not fit the layout being read.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// The input ends before the field being read.
    #[error("truncated: {wanted} more bytes needed, {left} left")]
    Truncated {
        /// The bytes the field needs.
        wanted: usize,
        /// The bytes that were left.
        left: usize,
    },
    /// Bytes follow the last field of the layout.
    #[error("{0} trailing bytes after the last field")]
    TrailingBytes(usize),
}

/// A cursor over a byte slice. Every read either returns the next field and moves past it, or
/// fails with [`CodecError::Truncated`] and leaves the cursor where it was.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    /// Bytes read from the front.
    at: usize,
    /// End of the readable part: `buf.len()` less what [`Reader::take_last`] split off.
    end: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader {
            buf: bytes,
            at: 0,
            end: bytes.len(),
        }
    }

    /// The number of bytes left to read.
    pub fn remaining(&self) -> usize {
        self.end - self.at
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The number of bytes read from the front so far.
    pub fn used(&self) -> usize {
        self.at
    }

    /// The bytes read from the front so far (for a checksum over the fields before it).
    pub fn consumed(&self) -> &'a [u8] {
        self.buf.get(..self.at).unwrap_or_default()
    }

    /// The unread bytes, without consuming them.
    pub fn peek_rest(&self) -> &'a [u8] {
        self.buf.get(self.at..self.end).unwrap_or_default()
    }

    /// Fails with [`CodecError::TrailingBytes`] unless every byte has been read.
    pub fn expect_empty(&self) -> Result<(), CodecError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(CodecError::TrailingBytes(n)),
        }
    }

    fn truncated(&self, wanted: usize) -> CodecError {
        CodecError::Truncated {
            wanted,
            left: self.remaining(),
        }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.end)
            .ok_or_else(|| self.truncated(n))?;
        let head = self
            .buf
            .get(self.at..end)
            .ok_or_else(|| self.truncated(n))?;
        self.at = end;
        Ok(head)
    }

    /// The next `N` bytes, copied into an array.
    pub fn take_array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// Splits the last `n` unread bytes off the end (a trailing checksum or CRC) and returns
    /// them; later reads stop before them.
    pub fn take_last(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let start = self
            .end
            .checked_sub(n)
            .filter(|&s| s >= self.at)
            .ok_or_else(|| self.truncated(n))?;
        let tail = self
            .buf
            .get(start..self.end)
            .ok_or_else(|| self.truncated(n))?;
        self.end = start;
        Ok(tail)
    }

    /// Every unread byte; the reader is empty afterwards.
    pub fn rest(&mut self) -> &'a [u8] {
        let rest = self.peek_rest();
        self.at = self.end;
        rest
    }

    /// A reader over the next `n` bytes, which this one skips.
    pub fn sub(&mut self, n: usize) -> Result<Reader<'a>, CodecError> {
        self.take(n).map(Reader::new)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, CodecError> {
        self.take_array::<1>().map(|[b]| b)
    }

    /// A big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16, CodecError> {
        self.take_array().map(u16::from_be_bytes)
    }

    /// A big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32, CodecError> {
        self.take_array().map(u32::from_be_bytes)
    }

    /// A big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64, CodecError> {
        self.take_array().map(u64::from_be_bytes)
    }
}

/// Appends the fields a [`Reader`] reads, in the same encoding. Implemented for `Vec<u8>` (and
/// so usable through `Zeroizing<Vec<u8>>`); writing never fails.
pub trait Writer {
    /// Appends raw bytes.
    fn put_slice(&mut self, bytes: &[u8]);

    /// Appends one byte.
    fn put_u8(&mut self, v: u8) {
        self.put_slice(&[v]);
    }

    /// Appends a big-endian `u16`.
    fn put_u16(&mut self, v: u16) {
        self.put_slice(&v.to_be_bytes());
    }

    /// Appends a big-endian `u32`.
    fn put_u32(&mut self, v: u32) {
        self.put_slice(&v.to_be_bytes());
    }

    /// Appends a big-endian `u64`.
    fn put_u64(&mut self, v: u64) {
        self.put_slice(&v.to_be_bytes());
    }
}

impl Writer for Vec<u8> {
    fn put_slice(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_fields_in_order_and_checks_the_end() {
        let bytes = [1u8, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4, 9, 9, 7, 7];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8(), Ok(1));
        assert_eq!(r.u16(), Ok(2));
        assert_eq!(r.u32(), Ok(3));
        assert_eq!(r.u64(), Ok(4));
        assert_eq!(r.used(), 15);
        assert_eq!(r.consumed(), &bytes[..15]);
        assert_eq!(r.take_last(2), Ok(&[7u8, 7][..]));
        assert_eq!(r.expect_empty(), Err(CodecError::TrailingBytes(2)));
        assert_eq!(r.take_array::<2>(), Ok([9, 9]));
        assert!(r.is_empty());
        assert_eq!(r.expect_empty(), Ok(()));
        assert_eq!(r.u8(), Err(CodecError::Truncated { wanted: 1, left: 0 }));
    }

    #[test]
    fn a_failed_read_moves_nothing() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u32(), Err(CodecError::Truncated { wanted: 4, left: 3 }));
        assert_eq!(
            r.take(usize::MAX),
            Err(CodecError::Truncated {
                wanted: usize::MAX,
                left: 3
            })
        );
        assert_eq!(
            r.take_last(4),
            Err(CodecError::Truncated { wanted: 4, left: 3 })
        );
        assert_eq!(r.remaining(), 3);
        assert_eq!(r.u16(), Ok(0x0102));
        assert_eq!(
            r.take_last(2),
            Err(CodecError::Truncated { wanted: 2, left: 1 })
        );
        assert_eq!(r.rest(), &[3]);
        assert_eq!(r.rest(), &[] as &[u8]);
    }

    #[test]
    fn sub_reads_a_bounded_part() {
        let mut r = Reader::new(&[2, 0xaa, 0xbb, 0xcc]);
        let n = usize::from(r.u8().unwrap());
        let mut s = r.sub(n).unwrap();
        assert_eq!(s.u16(), Ok(0xaabb));
        assert!(s.is_empty());
        assert_eq!(r.rest(), &[0xcc]);
    }

    #[test]
    fn writer_matches_std_big_endian() {
        let mut out = Vec::new();
        out.put_u8(0x01);
        out.put_u16(0x0203);
        out.put_u32(0x0405_0607);
        out.put_u64(0x0809_0a0b_0c0d_0e0f);
        out.put_slice(&[0x10]);
        assert_eq!(out, (1u8..=0x10).collect::<Vec<_>>());
    }

    /// One field of a layout, for the round-trip property.
    #[derive(Clone, Debug)]
    enum Field {
        U8(u8),
        U16(u16),
        U32(u32),
        U64(u64),
        Bytes(Vec<u8>),
    }

    fn field() -> impl Strategy<Value = Field> {
        prop_oneof![
            any::<u8>().prop_map(Field::U8),
            any::<u16>().prop_map(Field::U16),
            any::<u32>().prop_map(Field::U32),
            any::<u64>().prop_map(Field::U64),
            proptest::collection::vec(any::<u8>(), 0..32).prop_map(Field::Bytes),
        ]
    }

    proptest! {
        #[test]
        fn write_then_read_round_trips(fields in proptest::collection::vec(field(), 0..16),
                                       trailer in proptest::collection::vec(any::<u8>(), 0..8)) {
            let mut out = Vec::new();
            for f in &fields {
                match f {
                    Field::U8(v) => out.put_u8(*v),
                    Field::U16(v) => out.put_u16(*v),
                    Field::U32(v) => out.put_u32(*v),
                    Field::U64(v) => out.put_u64(*v),
                    Field::Bytes(b) => out.put_slice(b),
                }
            }
            out.put_slice(&trailer);
            let mut r = Reader::new(&out);
            prop_assert_eq!(r.take_last(trailer.len()), Ok(&trailer[..]));
            for f in &fields {
                match f {
                    Field::U8(v) => prop_assert_eq!(r.u8(), Ok(*v)),
                    Field::U16(v) => prop_assert_eq!(r.u16(), Ok(*v)),
                    Field::U32(v) => prop_assert_eq!(r.u32(), Ok(*v)),
                    Field::U64(v) => prop_assert_eq!(r.u64(), Ok(*v)),
                    Field::Bytes(b) => prop_assert_eq!(r.take(b.len()), Ok(&b[..])),
                }
            }
            prop_assert_eq!(r.expect_empty(), Ok(()));
            prop_assert_eq!(r.consumed().len() + trailer.len(), out.len());
        }

        #[test]
        fn reading_arbitrary_bytes_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64),
                                                ops in proptest::collection::vec((0u8..9, 0usize..80), 0..24)) {
            let mut r = Reader::new(&data);
            let mut accounted = 0usize;
            for (op, n) in ops {
                let before = r.remaining();
                let got = match op {
                    0 => r.u8().map(|_| 1),
                    1 => r.u16().map(|_| 2),
                    2 => r.u32().map(|_| 4),
                    3 => r.u64().map(|_| 8),
                    4 => r.take(n).map(<[u8]>::len),
                    5 => r.take_array::<16>().map(|a| a.len()),
                    6 => r.take_last(n).map(<[u8]>::len),
                    7 => r.sub(n).map(|s| s.remaining()),
                    _ => r.expect_empty().map(|()| 0),
                };
                match got {
                    Ok(k) => {
                        prop_assert_eq!(r.remaining() + k, before);
                        accounted += k;
                    }
                    Err(CodecError::Truncated { left, .. }) => {
                        prop_assert_eq!(left, before);
                        prop_assert_eq!(r.remaining(), before);
                    }
                    Err(CodecError::TrailingBytes(n)) => prop_assert_eq!(n, before),
                }
            }
            prop_assert_eq!(accounted + r.rest().len(), data.len());
            prop_assert!(r.is_empty());
        }
    }
}

//! Header names, and [`PageMeta`]: what a read response says besides its frames, written to and
//! read from headers by the one pair of functions here.

use http::{HeaderMap, HeaderValue};
use thiserror::Error;

use crate::id::{EntryId, IdRange};

/// Response header: the oldest id the ledger still holds (absent when it holds none).
pub const OLDEST: &str = "deaddrop-oldest-id";
/// Response header: the newest id the ledger ever assigned (absent before the first append).
pub const NEWEST: &str = "deaddrop-newest-id";
/// Response header: `A-B`, the ids after the reader's `after` that expired before it read them.
pub const GAP: &str = "deaddrop-gap";
/// Response header: the id to pass as `after` for the next page.
pub const NEXT_AFTER: &str = "deaddrop-next-after";
/// Response header: the proof-of-work difficulty appends need now.
pub const POW_BITS: &str = "deaddrop-pow-bits";
/// The media type of an append's body.
pub const ENTRY_MEDIA_TYPE: &str = "application/octet-stream";
/// The media type of every error body (RFC 9457).
pub const PROBLEM_MEDIA_TYPE: &str = "application/problem+json";

/// A header a read response carries that cannot be understood.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderError {
    /// A header every read response carries is absent.
    #[error("the `{0}` header is missing")]
    Missing(&'static str),
    /// A header's value does not have its documented form.
    #[error("the `{name}` header `{value}` is not {expected}")]
    Malformed {
        /// The header.
        name: &'static str,
        /// Its value, shortened.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
}

/// What a read tells besides its frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageMeta {
    /// The `after` of the next read: the last id in this page, or the end of the gap when
    /// the page is empty and ids expired.
    pub next_after: EntryId,
    /// The oldest id the ledger holds, if any.
    pub oldest: Option<EntryId>,
    /// The newest id the ledger assigned, if any.
    pub newest: Option<EntryId>,
    /// Ids after the reader's `after` that expired before it read them.
    pub gap: Option<IdRange>,
    /// The proof-of-work difficulty appends need now.
    pub pow_bits: Option<u8>,
}

fn value<'a>(h: &'a HeaderMap, name: &'static str) -> Result<Option<&'a str>, HeaderError> {
    match h.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim()))
            .map_err(|_| HeaderError::Malformed {
                name,
                value: String::from_utf8_lossy(v.as_bytes())
                    .chars()
                    .take(40)
                    .collect(),
                expected: "ASCII text",
            }),
    }
}

fn number<T: std::str::FromStr>(
    h: &HeaderMap,
    name: &'static str,
) -> Result<Option<T>, HeaderError> {
    value(h, name)?
        .map(|v| {
            v.parse().map_err(|_| HeaderError::Malformed {
                name,
                value: v.chars().take(40).collect(),
                expected: "a whole number",
            })
        })
        .transpose()
}

impl PageMeta {
    /// Writes these headers into `h`, replacing earlier values.
    pub fn write_headers(&self, h: &mut HeaderMap) {
        h.insert(NEXT_AFTER, HeaderValue::from(self.next_after.0));
        if let Some(bits) = self.pow_bits {
            h.insert(POW_BITS, HeaderValue::from(u16::from(bits)));
        }
        if let Some(o) = self.oldest {
            h.insert(OLDEST, HeaderValue::from(o.0));
        }
        if let Some(n) = self.newest {
            h.insert(NEWEST, HeaderValue::from(n.0));
        }
        if let Some(g) = self.gap {
            if let Ok(v) = HeaderValue::from_str(&g.to_string()) {
                h.insert(GAP, v);
            }
        }
    }

    /// Reads the headers of a read response.
    pub fn from_headers(h: &HeaderMap) -> Result<PageMeta, HeaderError> {
        let gap = value(h, GAP)?
            .map(|v| {
                v.parse::<IdRange>().map_err(|_| HeaderError::Malformed {
                    name: GAP,
                    value: v.chars().take(40).collect(),
                    expected: "an id range FIRST-LAST",
                })
            })
            .transpose()?;
        Ok(PageMeta {
            next_after: number(h, NEXT_AFTER)?
                .map(EntryId)
                .ok_or(HeaderError::Missing(NEXT_AFTER))?,
            oldest: number(h, OLDEST)?.map(EntryId),
            newest: number(h, NEWEST)?.map(EntryId),
            gap,
            pow_bits: number(h, POW_BITS)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_meta_round_trips_through_headers() {
        let full = PageMeta {
            next_after: EntryId(40),
            oldest: Some(EntryId(5)),
            newest: Some(EntryId(90)),
            gap: IdRange::new(EntryId(1), EntryId(4)),
            pow_bits: Some(14),
        };
        let empty = PageMeta::default();
        for meta in [full, empty] {
            let mut h = HeaderMap::new();
            meta.write_headers(&mut h);
            assert_eq!(PageMeta::from_headers(&h).unwrap(), meta);
        }
    }

    #[test]
    fn malformed_headers_are_named() {
        let mut h = HeaderMap::new();
        assert_eq!(
            PageMeta::from_headers(&h),
            Err(HeaderError::Missing(NEXT_AFTER))
        );
        h.insert(NEXT_AFTER, HeaderValue::from_static("7"));
        h.insert(GAP, HeaderValue::from_static("9-3"));
        assert!(matches!(
            PageMeta::from_headers(&h),
            Err(HeaderError::Malformed { name: GAP, .. })
        ));
        h.remove(GAP);
        h.insert(OLDEST, HeaderValue::from_static("-1"));
        assert!(matches!(
            PageMeta::from_headers(&h),
            Err(HeaderError::Malformed { name: OLDEST, .. })
        ));
    }
}

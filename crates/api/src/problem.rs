//! RFC 9457 problem documents: every error the API answers with carries a [`Problem`] whose
//! `type` is `urn:deaddrop:problem:<reason>`, one [`ProblemKind`] per reason.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The prefix of every problem type of this API.
pub const TYPE_PREFIX: &str = "urn:deaddrop:problem:";

/// Why the ledger refused a request. The reason string is stable: clients match on it (through
/// this enum), and it labels the ledger's rejection metrics.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// 400: the body is not one entry of this ledger's size.
    EntrySize,
    /// 400: the proof of work is missing or too weak.
    PowInsufficient,
    /// 413: the body is larger than any entry.
    BodyTooLarge,
    /// 415: an append that is not `application/octet-stream`.
    UnsupportedMediaType,
    /// 400: a query parameter is wrong.
    BadQuery,
    /// 400: a push request that is not a WebSocket upgrade.
    NotWebsocket,
    /// 404: no such route.
    NotFound,
    /// 405: the route exists, the method does not.
    MethodNotAllowed,
    /// 503: too many requests or subscribers at once.
    Overloaded,
    /// 503: the ledger holds all the bytes it may even at its shortest lifetime.
    LedgerFull,
    /// 503: the store failed or cannot be reached.
    StoreUnavailable,
    /// 503: the request took longer than the ledger allows.
    Timeout,
    /// A type this version does not know (a newer ledger's); holds the whole type URI.
    Other(String),
}

impl ProblemKind {
    /// Every kind this version knows.
    pub const KNOWN: [ProblemKind; 12] = [
        ProblemKind::EntrySize,
        ProblemKind::PowInsufficient,
        ProblemKind::BodyTooLarge,
        ProblemKind::UnsupportedMediaType,
        ProblemKind::BadQuery,
        ProblemKind::NotWebsocket,
        ProblemKind::NotFound,
        ProblemKind::MethodNotAllowed,
        ProblemKind::Overloaded,
        ProblemKind::LedgerFull,
        ProblemKind::StoreUnavailable,
        ProblemKind::Timeout,
    ];

    /// The stable reason: the last part of the type URI.
    pub fn reason(&self) -> &str {
        match self {
            ProblemKind::Other(uri) => uri.strip_prefix(TYPE_PREFIX).unwrap_or(uri),
            known => known.known_reason().unwrap_or_default(),
        }
    }

    /// The reason of a kind this version knows (`None` for [`ProblemKind::Other`]), as a
    /// static string for metric labels.
    pub fn known_reason(&self) -> Option<&'static str> {
        Some(match self {
            ProblemKind::EntrySize => "entry-size",
            ProblemKind::PowInsufficient => "pow-insufficient",
            ProblemKind::BodyTooLarge => "body-too-large",
            ProblemKind::UnsupportedMediaType => "unsupported-media-type",
            ProblemKind::BadQuery => "bad-query",
            ProblemKind::NotWebsocket => "not-websocket",
            ProblemKind::NotFound => "not-found",
            ProblemKind::MethodNotAllowed => "method-not-allowed",
            ProblemKind::Overloaded => "overloaded",
            ProblemKind::LedgerFull => "ledger-full",
            ProblemKind::StoreUnavailable => "store-unavailable",
            ProblemKind::Timeout => "timeout",
            ProblemKind::Other(_) => return None,
        })
    }

    /// The type URI.
    pub fn uri(&self) -> String {
        match self {
            ProblemKind::Other(uri) => uri.clone(),
            known => format!("{TYPE_PREFIX}{}", known.reason()),
        }
    }

    /// The kind a type URI names.
    pub fn from_uri(uri: &str) -> ProblemKind {
        uri.strip_prefix(TYPE_PREFIX)
            .and_then(|r| Self::KNOWN.into_iter().find(|k| k.reason() == r))
            .unwrap_or_else(|| ProblemKind::Other(uri.to_string()))
    }

    /// The HTTP status the ledger answers this kind with.
    pub fn status(&self) -> u16 {
        match self {
            ProblemKind::EntrySize
            | ProblemKind::PowInsufficient
            | ProblemKind::BadQuery
            | ProblemKind::NotWebsocket => 400,
            ProblemKind::NotFound => 404,
            ProblemKind::MethodNotAllowed => 405,
            ProblemKind::BodyTooLarge => 413,
            ProblemKind::UnsupportedMediaType => 415,
            ProblemKind::Overloaded
            | ProblemKind::LedgerFull
            | ProblemKind::StoreUnavailable
            | ProblemKind::Timeout => 503,
            ProblemKind::Other(_) => 500,
        }
    }

    /// The problem's title.
    pub fn title(&self) -> &'static str {
        match self {
            ProblemKind::EntrySize => "Entry has the wrong size",
            ProblemKind::PowInsufficient => "Proof of work missing or too weak",
            ProblemKind::BodyTooLarge => "Body too large",
            ProblemKind::UnsupportedMediaType => "Unsupported media type",
            ProblemKind::BadQuery => "Bad query",
            ProblemKind::NotWebsocket => "WebSocket required",
            ProblemKind::NotFound => "No such resource",
            ProblemKind::MethodNotAllowed => "Method not allowed",
            ProblemKind::Overloaded => "Overloaded",
            ProblemKind::LedgerFull => "Ledger full",
            ProblemKind::StoreUnavailable => "Storage unavailable",
            ProblemKind::Timeout => "Timed out",
            ProblemKind::Other(_) => "Error",
        }
    }

    /// Seconds the ledger suggests in `Retry-After`, for the kinds that pass.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ProblemKind::Overloaded | ProblemKind::Timeout => Some(1),
            ProblemKind::StoreUnavailable => Some(2),
            ProblemKind::LedgerFull => Some(30),
            _ => None,
        }
    }

    /// Whether the same request may succeed later unchanged: the ledger is busy, full or its
    /// store is away.
    pub fn is_transient(&self) -> bool {
        self.retry_after().is_some()
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl Serialize for ProblemKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.uri())
    }
}

impl<'de> Deserialize<'de> for ProblemKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let uri = String::deserialize(d)?;
        Ok(ProblemKind::from_uri(&uri))
    }
}

/// An RFC 9457 problem document, as every error response carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The reason, as the type URI `urn:deaddrop:problem:<reason>`.
    #[serde(rename = "type")]
    pub kind: ProblemKind,
    /// A short summary of the reason.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What was wrong with this request and what to do.
    pub detail: String,
}

impl Problem {
    /// A problem of `kind` with its usual title and status.
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Problem {
        Problem {
            title: kind.title().into(),
            status: kind.status(),
            kind,
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_kind_round_trips_through_its_uri() {
        for k in ProblemKind::KNOWN {
            assert_eq!(ProblemKind::from_uri(&k.uri()), k);
            assert!(k.uri().starts_with(TYPE_PREFIX));
            let p = Problem::new(k.clone(), "d");
            let json = serde_json::to_string(&p).unwrap();
            assert!(
                json.contains(&format!("\"type\":\"{}\"", k.uri())),
                "{json}"
            );
            assert_eq!(serde_json::from_str::<Problem>(&json).unwrap(), p);
        }
    }

    #[test]
    fn unknown_types_are_kept_whole() {
        let k = ProblemKind::from_uri("urn:deaddrop:problem:something-new");
        assert_eq!(k.reason(), "something-new");
        assert_eq!(k.uri(), "urn:deaddrop:problem:something-new");
        assert!(!k.is_transient());
        let k = ProblemKind::from_uri("about:blank");
        assert_eq!(k.reason(), "about:blank");
    }
}

//! Small typed values that cross the client's API: which request, which way a message went.

use std::fmt;
use std::str::FromStr;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::{Deserialize, Serialize};

/// A pending request, as `deaddrop requests` lists it and `accept`/`reject` take it: the row id
/// of the request's first message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub i64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for RequestId {
    type Err = std::num::ParseIntError;

    /// The number `deaddrop requests` printed, with or without its leading `#`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.strip_prefix('#').unwrap_or(s).parse().map(RequestId)
    }
}

impl ToSql for RequestId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

impl FromSql for RequestId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(value).map(RequestId)
    }
}

/// Which way a message went: `in` (from them) or `out` (from me). Stored and printed as those
/// two words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the contact to me.
    In,
    /// From me to the contact.
    Out,
}

impl Direction {
    /// `in` or `out`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `direction == "in"`: compares with the word it is printed as.
impl PartialEq<&str> for Direction {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl ToSql for Direction {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.as_str()))
    }
}

impl FromSql for Direction {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value.as_str()? {
            "in" => Ok(Direction::In),
            "out" => Ok(Direction::Out),
            other => Err(FromSqlError::Other(
                format!("a message direction must be `in` or `out`, not `{other}`").into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_parse_as_printed() {
        assert_eq!("7".parse::<RequestId>(), Ok(RequestId(7)));
        assert_eq!("#7".parse::<RequestId>(), Ok(RequestId(7)));
        assert!("seven".parse::<RequestId>().is_err());
        assert!("".parse::<RequestId>().is_err());
    }

    #[test]
    fn directions_are_the_two_words() {
        assert_eq!(
            serde_json::to_string(&Direction::In).unwrap_or_default(),
            r#""in""#
        );
        assert_eq!(
            serde_json::from_str::<Direction>(r#""out""#).ok(),
            Some(Direction::Out)
        );
        assert!(serde_json::from_str::<Direction>(r#""sideways""#).is_err());
    }
}

//! Times as people read them: in the local time zone (`TZ`, else /etc/localtime, else UTC),
//! or in UTC with `--utc`; and `--since` as a duration back from now (`2h`, `3 days`) or an RFC
//! 3339 time (`2026-03-01T09:00:00+01:00`). `--json` keeps milliseconds since the Unix epoch.

use std::time::Duration;

use clap::Args;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// The `--utc` flag of the commands that show times.
#[derive(Debug, Args, Clone, Copy, Default)]
pub struct TimeOpts {
    /// Show times in UTC instead of the local time zone.
    #[arg(long)]
    pub utc: bool,
}

/// Where times are shown.
#[derive(Clone, Debug)]
pub struct Zone(TimeZone);

impl Zone {
    /// The zone `opts` asks for: UTC, or the system's.
    pub fn new(opts: TimeOpts) -> Zone {
        Zone(if opts.utc {
            TimeZone::UTC
        } else {
            TimeZone::system()
        })
    }

    /// The zone of a time shown as UTC whatever the system says (tests draw screens with it).
    pub fn utc() -> Zone {
        Zone(TimeZone::UTC)
    }

    /// `ms` as the chat shows it, to the minute: `09:00` if it is on the same day as `now_ms`
    /// in this zone, else `2026-03-01 09:00`.
    pub fn clock(&self, ms: u64, now_ms: u64) -> String {
        let at = |ms: u64| {
            Timestamp::from_millisecond(i64::try_from(ms).unwrap_or(i64::MAX))
                .ok()
                .map(|t| t.to_zoned_datetime(self.0.clone()))
        };
        match (at(ms), at(now_ms)) {
            (Some(t), Some(now)) if t.date() == now.date() => t.strftime("%H:%M").to_string(),
            (Some(t), _) => t.strftime("%Y-%m-%d %H:%M").to_string(),
            (None, _) => format!("{ms} ms"),
        }
    }

    /// `ms` (since the Unix epoch) as `2026-03-01 09:00:00 CET`, to the second.
    pub fn show(&self, ms: u64) -> String {
        let ms = i64::try_from(ms).unwrap_or(i64::MAX);
        match Timestamp::from_millisecond(ms) {
            Ok(t) => t
                .to_zoned_datetime(self.0.clone())
                .strftime("%Y-%m-%d %H:%M:%S %Z")
                .to_string(),
            // Past year 9999: show the number rather than nothing.
            Err(_) => format!("{ms} ms"),
        }
    }
}

/// A `--since` value: a duration back from now, or a point in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// This long before now.
    Ago(Duration),
    /// At this time, ms since the Unix epoch.
    At(u64),
}

impl Since {
    /// The time it names, ms since the Unix epoch, given `now_ms`.
    pub fn ms(self, now_ms: u64) -> u64 {
        match self {
            Since::Ago(d) => {
                now_ms.saturating_sub(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            }
            Since::At(t) => t,
        }
    }
}

/// Parses `--since` (clap's value parser): `2h`, `90min`, `3 days`, or an RFC 3339 time with
/// its offset.
pub fn parse_since(s: &str) -> Result<Since, String> {
    let s = s.trim();
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(Since::Ago(d));
    }
    match s.parse::<Timestamp>() {
        Ok(t) => u64::try_from(t.as_millisecond())
            .map(Since::At)
            .map_err(|_| format!("`{s}` is before 1970")),
        Err(_) => Err(format!(
            "`{s}` is neither a duration (2h, 90min, 3days) nor an RFC 3339 time \
             (2026-03-01T09:00:00+01:00 or ...Z)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_times_and_refuses_garbage() {
        assert_eq!(parse_since("2h"), Ok(Since::Ago(Duration::from_secs(7200))));
        assert_eq!(parse_since("1970-01-01T00:00:01Z"), Ok(Since::At(1000)));
        assert_eq!(
            parse_since("1970-01-01T01:00:01+01:00"),
            Ok(Since::At(1000))
        );
        assert!(parse_since("yesterday-ish").is_err());
        assert!(parse_since("").is_err());
        assert!(parse_since("1969-12-31T00:00:00Z").is_err());
        assert_eq!(Since::Ago(Duration::from_secs(1)).ms(5000), 4000);
        assert_eq!(Since::Ago(Duration::from_secs(10)).ms(5000), 0);
    }

    #[test]
    fn utc_shows_the_utc_time() {
        let z = Zone::new(TimeOpts { utc: true });
        assert_eq!(z.show(1000), "1970-01-01 00:00:01 UTC");
    }
}

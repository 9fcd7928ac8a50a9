//! A ledger's settings, in two forms:
//!
//! - [`Settings`]: what an operator gives `deaddrop serve`. One struct is the command line
//!   (`--max-bytes`), the environment (`DEADDROP_MAX_BYTES`) and the TOML file (`max_bytes`),
//!   every field optional so that the sources layer: flags and environment over the file, the
//!   file over the defaults ([`Settings::or`]).
//! - [`Config`]: what a [`Ledger`](crate::Ledger) runs with, complete and checked by
//!   [`Config::validate`], the one place every rule lives. [`Settings::validate`] fills the
//!   defaults and calls it; [`Ledger::new`](crate::Ledger::new) calls it too, so a hand-built
//!   `Config` cannot start a ledger it would break.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytesize::ByteSize;
use deaddrop_proto::{pow, Suite};
use serde::Deserialize;
use thiserror::Error;

/// A setting that cannot be used. Each names the flag (the TOML key is the same with
/// underscores) and says what is allowed.
#[derive(Clone, Debug, Error, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value out of its allowed range, or two values that contradict each other.
    #[error("{0}")]
    Invalid(String),
    /// No `--data` directory and no platform default.
    #[error("cannot find a data directory for this user: pass --data DIR")]
    NoDataDir,
}

fn invalid(msg: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(msg.into())
}

/// Everything that shapes a running ledger.
#[derive(Clone, Debug)]
pub struct Config {
    /// The suite every entry must have.
    pub suite: Suite,
    /// The longest (and initial) lifetime of an entry (paper III.3).
    pub lifetime: Duration,
    /// The shortest lifetime the adaption rule may set (III.3.1).
    pub min_lifetime: Duration,
    /// The most entry bytes held; the lifetime shrinks to stay below it.
    pub max_bytes: u64,
    /// Proof-of-work difficulty at rest, in bits (0 disables proof of work).
    pub pow_bits: u8,
    /// The highest difficulty the load rule may advertise.
    pub pow_max_bits: u8,
    /// Appends per second above which the difficulty rises, one bit per doubling.
    pub pow_rate: f64,
    /// The most entries one read returns.
    pub max_page: usize,
    /// The page size when a reader names none.
    pub default_page: usize,
    /// The most requests served at once; more get 503.
    pub max_inflight: usize,
    /// The most push subscribers at once; more get 503.
    pub max_subscribers: usize,
    /// Entries a push subscriber may fall behind before it is cut loose.
    pub subscriber_buffer: usize,
    /// How long one request may take.
    pub request_timeout: Duration,
    /// How often expiry runs.
    pub expiry_interval: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            suite: Suite::XWing,
            lifetime: Duration::from_secs(48 * 3600),
            min_lifetime: Duration::from_secs(3600),
            max_bytes: 2 << 30,
            pow_bits: 14,
            pow_max_bits: 28,
            pow_rate: 200.0,
            max_page: 1024,
            default_page: 256,
            max_inflight: 4096,
            max_subscribers: 10_000,
            subscriber_buffer: 4096,
            request_timeout: Duration::from_secs(30),
            expiry_interval: Duration::from_secs(1),
        }
    }
}

/// The fewest entries a push subscriber may be allowed to fall behind.
pub const MIN_SUBSCRIBER_BUFFER: usize = 16;

impl Config {
    /// Checks every rule; the first broken one is the error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let human = |d: Duration| humantime::format_duration(d).to_string();
        if self.lifetime.is_zero() {
            return Err(invalid("--lifetime must be more than zero"));
        }
        if self.min_lifetime.is_zero() || self.min_lifetime > self.lifetime {
            return Err(invalid(format!(
                "--min-lifetime ({}) must be more than zero and at most --lifetime ({})",
                human(self.min_lifetime),
                human(self.lifetime)
            )));
        }
        if self.max_bytes == 0 {
            return Err(invalid("--max-bytes must be more than zero"));
        }
        if self.pow_bits > pow::MAX_BITS {
            return Err(invalid(format!(
                "--pow-bits {} is above the {} bits any client will solve",
                self.pow_bits,
                pow::MAX_BITS
            )));
        }
        if !(self.pow_bits..=pow::MAX_BITS).contains(&self.pow_max_bits) {
            return Err(invalid(format!(
                "--pow-max-bits {} must be from --pow-bits ({}) to {}",
                self.pow_max_bits,
                self.pow_bits,
                pow::MAX_BITS
            )));
        }
        if !(self.pow_rate.is_finite() && self.pow_rate > 0.0) {
            return Err(invalid(format!(
                "--pow-rate {} must be a positive number of appends per second",
                self.pow_rate
            )));
        }
        if self.max_page == 0 {
            return Err(invalid("--max-page must be at least 1"));
        }
        if !(1..=self.max_page).contains(&self.default_page) {
            return Err(invalid(format!(
                "the default page ({}) must be from 1 to --max-page ({})",
                self.default_page, self.max_page
            )));
        }
        if self.max_inflight == 0 {
            return Err(invalid("--max-inflight must be at least 1"));
        }
        if self.max_subscribers == 0 {
            return Err(invalid("--max-subscribers must be at least 1"));
        }
        if self.subscriber_buffer < MIN_SUBSCRIBER_BUFFER {
            return Err(invalid(format!(
                "--subscriber-buffer must be at least {MIN_SUBSCRIBER_BUFFER}"
            )));
        }
        if self.request_timeout.is_zero() || self.expiry_interval.is_zero() {
            return Err(invalid("--request-timeout must be more than zero"));
        }
        Ok(())
    }
}

/// Where a ledger keeps its entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreChoice {
    /// The embedded, durable segment log in this directory.
    Embedded(PathBuf),
    /// Memory only: nothing survives a stop.
    Memory,
    /// A NATS JetStream stream shared by several front ends.
    Nats {
        /// `nats://HOST:PORT` of each server.
        servers: Vec<String>,
        /// The stream's name.
        stream: String,
        /// Replicas of the stream.
        replicas: usize,
    },
}

/// `deaddrop serve` as resolved from every source and checked.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The store.
    pub store: StoreChoice,
    /// The ledger's settings.
    pub config: Config,
    /// The upstream's URL for a mirror.
    pub mirror_of: Option<String>,
}

/// The default listening address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8470";

fn suite_from_str<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Suite>, D::Error> {
    let s = String::deserialize(d)?;
    s.parse().map(Some).map_err(serde::de::Error::custom)
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("`{s}` is not a duration ({e}): write it like 48h, 90m or 30s"))
}

fn parse_size(s: &str) -> Result<ByteSize, String> {
    s.trim()
        .parse::<ByteSize>()
        .map_err(|e| format!("`{s}` is not a size ({e}): write it like 2GiB, 500MB or 1048576"))
}

/// `deaddrop serve`'s settings as given, from flags, `DEADDROP_*` environment variables and the
/// TOML file (same names, with underscores). Every field is optional; [`Settings::validate`]
/// fills the defaults.
#[derive(Clone, Debug, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address and port to listen on; port 0 picks a free one [default: 127.0.0.1:8470].
    #[arg(long, env = "DEADDROP_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory of the embedded store [default: the platform data directory, e.g.
    /// ~/.local/share/deaddrop/ledger].
    #[arg(long, env = "DEADDROP_DATA")]
    pub data: Option<PathBuf>,
    /// The suite every entry must have: xwing or rsa-oaep [default: xwing].
    #[arg(long, env = "DEADDROP_SUITE")]
    #[serde(default, deserialize_with = "suite_from_str")]
    pub suite: Option<Suite>,
    /// Storage: `embedded` (durable, on disk), `memory` (nothing kept), or
    /// `nats://HOST:PORT[,HOST:PORT...]` (a NATS JetStream stream shared by several front ends)
    /// [default: embedded].
    #[arg(long, env = "DEADDROP_STORE")]
    pub store: Option<String>,
    /// The JetStream stream's name [default: deaddrop].
    #[arg(long, env = "DEADDROP_NATS_STREAM")]
    pub nats_stream: Option<String>,
    /// JetStream replicas: 1, or 3 on a three-node cluster [default: 1].
    #[arg(long, env = "DEADDROP_NATS_REPLICAS")]
    pub nats_replicas: Option<usize>,
    /// Mirror another ledger: follow it, serve its entries with the same ids, forward appends
    /// to it. The mirror's copy lives in --data.
    #[arg(long, env = "DEADDROP_MIRROR_OF")]
    pub mirror_of: Option<String>,
    /// Longest lifetime of an entry, e.g. 48h, 90m, 30s [default: 48h].
    #[arg(long, env = "DEADDROP_LIFETIME", value_parser = parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub lifetime: Option<Duration>,
    /// Shortest lifetime the adaption rule may set [default: 1h, or the lifetime if shorter].
    #[arg(long, env = "DEADDROP_MIN_LIFETIME", value_parser = parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub min_lifetime: Option<Duration>,
    /// Most entry bytes held, e.g. 2GiB, 500MB [default: 2GiB].
    #[arg(long, env = "DEADDROP_MAX_BYTES", value_parser = parse_size)]
    pub max_bytes: Option<ByteSize>,
    /// Proof-of-work difficulty at rest, in bits; 0 disables it (for tests) [default: 14].
    #[arg(long, env = "DEADDROP_POW_BITS")]
    pub pow_bits: Option<u8>,
    /// The highest difficulty the load rule may ask for [default: 28, at least --pow-bits].
    #[arg(long, env = "DEADDROP_POW_MAX_BITS")]
    pub pow_max_bits: Option<u8>,
    /// Appends per second above which the difficulty rises [default: 200].
    #[arg(long, env = "DEADDROP_POW_RATE")]
    pub pow_rate: Option<f64>,
    /// The most entries one read returns [default: 1024].
    #[arg(long, env = "DEADDROP_MAX_PAGE")]
    pub max_page: Option<usize>,
    /// The most requests served at once; more get 503 [default: 4096].
    #[arg(long, env = "DEADDROP_MAX_INFLIGHT")]
    pub max_inflight: Option<usize>,
    /// The most push subscribers at once; more get 503 [default: 10000].
    #[arg(long, env = "DEADDROP_MAX_SUBSCRIBERS")]
    pub max_subscribers: Option<usize>,
    /// Entries a push subscriber may fall behind before it is cut loose [default: 4096].
    #[arg(long, env = "DEADDROP_SUBSCRIBER_BUFFER")]
    pub subscriber_buffer: Option<usize>,
    /// How long one request may take, e.g. 30s [default: 30s].
    #[arg(long, env = "DEADDROP_REQUEST_TIMEOUT", value_parser = parse_duration)]
    #[serde(default, with = "humantime_serde")]
    pub request_timeout: Option<Duration>,
}

impl Settings {
    /// These settings where given, `lower`'s elsewhere: `flags.or(file)`.
    pub fn or(self, lower: Settings) -> Settings {
        Settings {
            listen: self.listen.or(lower.listen),
            data: self.data.or(lower.data),
            suite: self.suite.or(lower.suite),
            store: self.store.or(lower.store),
            nats_stream: self.nats_stream.or(lower.nats_stream),
            nats_replicas: self.nats_replicas.or(lower.nats_replicas),
            mirror_of: self.mirror_of.or(lower.mirror_of),
            lifetime: self.lifetime.or(lower.lifetime),
            min_lifetime: self.min_lifetime.or(lower.min_lifetime),
            max_bytes: self.max_bytes.or(lower.max_bytes),
            pow_bits: self.pow_bits.or(lower.pow_bits),
            pow_max_bits: self.pow_max_bits.or(lower.pow_max_bits),
            pow_rate: self.pow_rate.or(lower.pow_rate),
            max_page: self.max_page.or(lower.max_page),
            max_inflight: self.max_inflight.or(lower.max_inflight),
            max_subscribers: self.max_subscribers.or(lower.max_subscribers),
            subscriber_buffer: self.subscriber_buffer.or(lower.subscriber_buffer),
            request_timeout: self.request_timeout.or(lower.request_timeout),
        }
    }

    /// Reads a TOML settings file's text.
    pub fn from_toml(text: &str) -> Result<Settings, ConfigError> {
        toml::from_str(text).map_err(|e| invalid(e.to_string()))
    }

    /// Fills the defaults and checks everything. `default_data` is the platform's data
    /// directory for the embedded store, if it has one.
    pub fn validate(self, default_data: Option<PathBuf>) -> Result<ServeConfig, ConfigError> {
        let d = Config::default();
        let lifetime = self.lifetime.unwrap_or(d.lifetime);
        let pow_bits = self.pow_bits.unwrap_or(d.pow_bits);
        let max_page = self.max_page.unwrap_or(d.max_page);
        let config = Config {
            suite: self.suite.unwrap_or(d.suite),
            lifetime,
            min_lifetime: self.min_lifetime.unwrap_or(d.min_lifetime.min(lifetime)),
            max_bytes: self.max_bytes.map_or(d.max_bytes, |b| b.as_u64()),
            pow_bits,
            pow_max_bits: self
                .pow_max_bits
                .unwrap_or(d.pow_max_bits.max(pow_bits).min(pow::MAX_BITS)),
            pow_rate: self.pow_rate.unwrap_or(d.pow_rate),
            max_page,
            default_page: d.default_page.min(max_page).max(1),
            max_inflight: self.max_inflight.unwrap_or(d.max_inflight),
            max_subscribers: self.max_subscribers.unwrap_or(d.max_subscribers),
            subscriber_buffer: self.subscriber_buffer.unwrap_or(d.subscriber_buffer),
            request_timeout: self.request_timeout.unwrap_or(d.request_timeout),
            expiry_interval: d.expiry_interval,
        };
        config.validate()?;
        let store = match self.store.as_deref().map(str::trim).unwrap_or("embedded") {
            "embedded" => StoreChoice::Embedded(self.data.or(default_data).ok_or(ConfigError::NoDataDir)?),
            "memory" => StoreChoice::Memory,
            nats if nats.starts_with("nats://") => {
                let servers: Vec<String> = nats
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| if s.starts_with("nats://") { s.to_string() } else { format!("nats://{s}") })
                    .collect();
                let stream = self.nats_stream.unwrap_or_else(|| "deaddrop".into());
                if stream.is_empty() || !stream.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                    return Err(invalid(format!("--nats-stream `{stream}` must be letters, digits, - and _ only")));
                }
                let replicas = self.nats_replicas.unwrap_or(1);
                if !(1..=5).contains(&replicas) {
                    return Err(invalid("--nats-replicas must be from 1 to 5 (1, or 3 on a three-node cluster)"));
                }
                StoreChoice::Nats { servers, stream, replicas }
            }
            other => return Err(invalid(format!("--store `{other}` is not known: use `embedded` (durable, the default), `memory`, or nats://HOST:PORT"))),
        };
        if let Some(m) = &self.mirror_of {
            if matches!(store, StoreChoice::Nats { .. }) {
                return Err(invalid("a mirror keeps its own copy: use --mirror-of with the embedded or memory store, not NATS"));
            }
            if !(m.starts_with("http://") || m.starts_with("https://")) {
                return Err(invalid(format!(
                    "--mirror-of `{m}` must be the URL of a ledger, like http://127.0.0.1:8470"
                )));
            }
        }
        let listen = match self.listen {
            Some(l) => l,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|_| invalid("the default listening address is malformed"))?,
        };
        Ok(ServeConfig {
            listen,
            store,
            config,
            mirror_of: self.mirror_of,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        Config::default().validate().unwrap();
        let s = Settings::default().validate(Some("/tmp/x".into())).unwrap();
        assert_eq!(s.store, StoreChoice::Embedded("/tmp/x".into()));
        assert_eq!(s.listen.to_string(), DEFAULT_LISTEN);
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let file = Settings::from_toml(
            "lifetime = \"2h\"\nmax_bytes = \"4MB\"\npow_bits = 3\nsuite = \"rsa-oaep\"\nstore = \"memory\"\n",
        )
        .unwrap();
        let flags = Settings {
            pow_bits: Some(5),
            ..Settings::default()
        };
        let c = flags.or(file).validate(None).unwrap();
        assert_eq!(c.config.pow_bits, 5);
        assert_eq!(c.config.lifetime, Duration::from_secs(7200));
        assert_eq!(c.config.min_lifetime, Duration::from_secs(3600));
        assert_eq!(c.config.max_bytes, 4_000_000);
        assert_eq!(c.config.suite, Suite::RsaOaep);
        assert_eq!(c.store, StoreChoice::Memory);
    }

    #[test]
    fn broken_settings_name_the_flag() {
        let cases: [(&str, &str); 8] = [
            ("lifetime = \"0s\"", "--lifetime"),
            ("lifetime = \"1m\"\nmin_lifetime = \"2m\"", "--min-lifetime"),
            ("pow_bits = 60", "--pow-bits"),
            ("pow_bits = 10\npow_max_bits = 5", "--pow-max-bits"),
            ("max_page = 0", "--max-page"),
            ("subscriber_buffer = 3", "--subscriber-buffer"),
            ("store = \"floppy\"", "--store"),
            (
                "store = \"nats://a:1\"\nnats_replicas = 9",
                "--nats-replicas",
            ),
        ];
        for (toml, flag) in cases {
            let err = Settings::from_toml(toml)
                .unwrap()
                .validate(Some("/tmp/x".into()))
                .unwrap_err();
            assert!(err.to_string().contains(flag), "{toml}: {err}");
        }
        assert!(Settings::from_toml("nonsense = 1").is_err());
        assert!(Settings::from_toml("suite = \"rot13\"").is_err());
        assert!(Settings::from_toml("lifetime = \"soon\"").is_err());
        assert_eq!(
            Settings::default().validate(None).unwrap_err(),
            ConfigError::NoDataDir
        );
    }
}

//! Settings of one ledger, with the defaults `deaddrop serve` uses.

use std::time::Duration;

use deaddrop_proto::Suite;

/// Everything that shapes a ledger's behaviour. The binary fills it from flags, environment
/// variables and a TOML file.
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
    /// Unused: a mirror is made with `Ledger::mirror`, which takes its upstream.
    pub mirror_of: Option<String>,
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
            mirror_of: None,
        }
    }
}

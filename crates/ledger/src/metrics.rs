//! Prometheus metrics (`GET /metrics`). Aggregates only: no label ever names a client, an entry
//! or an address. The ledger's own metrics are named `deaddrop_*` (with `deaddrop_build_info`
//! carrying the version); the standard `process_*` metrics of the process come from
//! [`process`].

pub mod process;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

type Labels = Vec<(&'static str, &'static str)>;

/// Every metric the ledger exports.
pub struct Metrics {
    registry: Registry,
    /// Entries appended.
    pub appends: Counter,
    /// Entry bytes appended.
    pub append_bytes: Counter,
    /// Appends of bytes the ledger held already, answered with their first id.
    pub repeats: Counter,
    /// Store operations (appends, reads) that failed.
    pub store_errors: Counter,
    /// Read requests served.
    pub reads: Counter,
    /// Entries returned by reads.
    pub read_entries: Counter,
    /// Bytes returned by reads.
    pub read_bytes: Counter,
    /// Entries pushed to subscribers.
    pub pushed: Counter,
    /// Subscribers cut loose for falling behind.
    pub lagged: Counter,
    /// Entries removed by expiry.
    pub expired: Counter,
    /// Requests refused, by reason.
    pub rejections: Family<Labels, Counter>,
    /// Entries held now.
    pub entries_held: Gauge,
    /// Entry bytes held now.
    pub bytes_held: Gauge,
    /// The current lifetime, seconds.
    pub lifetime_seconds: Gauge,
    /// The advertised proof-of-work difficulty, bits.
    pub pow_bits: Gauge,
    /// Push subscribers connected now.
    pub subscribers: Gauge,
    /// The inflow rate estimate used by the lifetime rule, bytes per second.
    pub inflow_bytes_per_second: Gauge<f64, AtomicU64>,
    /// Time from receiving an append to acknowledging it.
    pub append_seconds: Histogram,
    /// Time to serve a read.
    pub read_seconds: Histogram,
    /// Time from an entry reaching the push fan-out (durable) to its frame being written to
    /// one subscriber's connection, per live delivery.
    pub push_delay_seconds: Histogram,
}

impl Metrics {
    /// Registers the ledger's metrics under the `deaddrop_` prefix and the process metrics
    /// under their standard names.
    pub fn new() -> Self {
        let mut root = Registry::default();
        root.register_collector(Box::new(process::ProcessCollector));
        let registry = root.sub_registry_with_prefix("deaddrop");
        let build_info = Family::<Labels, Gauge>::default();
        build_info
            .get_or_create(&vec![("version", env!("CARGO_PKG_VERSION"))])
            .set(1);
        registry.register(
            "build_info",
            "The ledger's version, as a label; always 1",
            build_info,
        );
        let m = Metrics {
            appends: Counter::default(),
            append_bytes: Counter::default(),
            repeats: Counter::default(),
            store_errors: Counter::default(),
            reads: Counter::default(),
            read_entries: Counter::default(),
            read_bytes: Counter::default(),
            pushed: Counter::default(),
            lagged: Counter::default(),
            expired: Counter::default(),
            rejections: Family::default(),
            entries_held: Gauge::default(),
            bytes_held: Gauge::default(),
            lifetime_seconds: Gauge::default(),
            pow_bits: Gauge::default(),
            subscribers: Gauge::default(),
            inflow_bytes_per_second: Gauge::default(),
            append_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 18)),
            read_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 18)),
            // 0.1 ms to 1.1 s in steps of half: fine enough to tell 8 ms from 13.
            push_delay_seconds: Histogram::new(exponential_buckets(0.000_1, 1.5, 24)),
            registry: Registry::default(),
        };
        registry.register("appends", "Entries appended", m.appends.clone());
        registry.register(
            "append_bytes",
            "Entry bytes appended",
            m.append_bytes.clone(),
        );
        registry.register(
            "repeated_appends",
            "Appends of bytes the ledger held already, answered with their first id",
            m.repeats.clone(),
        );
        registry.register(
            "store_errors",
            "Store operations (appends, reads) that failed",
            m.store_errors.clone(),
        );
        registry.register("reads", "Read requests served", m.reads.clone());
        registry.register(
            "read_entries",
            "Entries returned by reads",
            m.read_entries.clone(),
        );
        registry.register(
            "read_bytes",
            "Bytes returned by reads",
            m.read_bytes.clone(),
        );
        registry.register(
            "pushed_entries",
            "Entries pushed to subscribers",
            m.pushed.clone(),
        );
        registry.register(
            "subscribers_lagged",
            "Subscribers cut loose for falling behind",
            m.lagged.clone(),
        );
        registry.register(
            "expired_entries",
            "Entries removed by expiry",
            m.expired.clone(),
        );
        registry.register(
            "rejections",
            "Requests refused, by reason",
            m.rejections.clone(),
        );
        registry.register("entries_held", "Entries held now", m.entries_held.clone());
        registry.register("bytes_held", "Entry bytes held now", m.bytes_held.clone());
        registry.register(
            "lifetime_seconds",
            "Current lifetime of entries",
            m.lifetime_seconds.clone(),
        );
        registry.register(
            "pow_bits",
            "Advertised proof-of-work difficulty",
            m.pow_bits.clone(),
        );
        registry.register(
            "subscribers",
            "Push subscribers connected",
            m.subscribers.clone(),
        );
        registry.register(
            "inflow_bytes_per_second",
            "Inflow estimate of the lifetime rule",
            m.inflow_bytes_per_second.clone(),
        );
        registry.register(
            "append_seconds",
            "Append latency until durable",
            m.append_seconds.clone(),
        );
        registry.register("read_seconds", "Read latency", m.read_seconds.clone());
        registry.register(
            "push_delay_seconds",
            "Time from an entry being stored to its frame written to a push subscriber",
            m.push_delay_seconds.clone(),
        );
        Metrics {
            registry: root,
            ..m
        }
    }

    /// Counts one refused request.
    pub fn reject(&self, reason: &'static str) {
        self.rejections
            .get_or_create(&vec![("reason", reason)])
            .inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

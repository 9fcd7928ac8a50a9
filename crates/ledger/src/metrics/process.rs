//! The standard process metrics of a Prometheus exporter (`process_resident_memory_bytes`,
//! `process_cpu_seconds_total`, `process_open_fds`, `process_max_fds`,
//! `process_virtual_memory_bytes`, `process_start_time_seconds`), read from `/proc/self` on each
//! scrape. Elsewhere than Linux nothing is exported: a missing file is a missing metric, never a
//! failed scrape.
//!
//! Times in `/proc/self/stat` are in clock ticks of `USER_HZ`, which the kernel fixes at 100 for
//! user space on every architecture Rust targets with Linux (asking `sysconf` would take
//! `unsafe`, which this crate forbids).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second in `/proc` (`USER_HZ`).
const TICKS_PER_SECOND: f64 = 100.0;

/// What `/proc/self` says about this process.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessStats {
    /// Resident set size, bytes.
    pub resident_bytes: Option<u64>,
    /// Virtual memory size, bytes.
    pub virtual_bytes: Option<u64>,
    /// User and system CPU time, seconds.
    pub cpu_seconds: Option<f64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The soft limit on open file descriptors.
    pub max_fds: Option<u64>,
    /// When the process started, seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
}

/// The fields of `/proc/self/stat` after the command name (which may hold spaces and
/// parentheses, so the text is split after its last `)`); field 3 of proc(5) comes first.
fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default()
}

/// The value in kB of a `Key:   123 kB` line of `/proc/self/status`, in bytes.
fn status_kb(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
        kb.checked_mul(1024)
    })
}

/// The soft `Max open files` limit in `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<u64> {
    limits.lines().find_map(|l| {
        let rest = l.strip_prefix("Max open files")?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The boot time, seconds since the Unix epoch, from `/proc/stat`.
fn boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok())
}

impl ProcessStats {
    /// Parses the texts of `/proc/self/stat`, `/proc/self/status`, `/proc/self/limits` and
    /// `/proc/stat`; what is missing or malformed stays `None`.
    pub fn parse(
        self_stat: Option<&str>,
        status: Option<&str>,
        limits: Option<&str>,
        proc_stat: Option<&str>,
        open_fds: Option<u64>,
    ) -> ProcessStats {
        let fields = self_stat.map(stat_fields).unwrap_or_default();
        // proc(5) numbers fields from 1; the slice starts at field 3.
        let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
        let cpu_seconds = match (field(14), field(15)) {
            (Some(u), Some(s)) => Some(u.saturating_add(s) as f64 / TICKS_PER_SECOND),
            _ => None,
        };
        let start_time_seconds = match (field(22), proc_stat.and_then(boot_time)) {
            (Some(ticks), Some(boot)) => Some(boot as f64 + ticks as f64 / TICKS_PER_SECOND),
            _ => None,
        };
        ProcessStats {
            resident_bytes: status.and_then(|s| status_kb(s, "VmRSS")),
            virtual_bytes: field(23),
            cpu_seconds,
            open_fds,
            max_fds: limits.and_then(max_open_files),
            start_time_seconds,
        }
    }

    /// This process's, now.
    pub fn read() -> ProcessStats {
        let text = |p: &str| std::fs::read_to_string(p).ok();
        let fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|d| d.count() as u64);
        ProcessStats::parse(
            text("/proc/self/stat").as_deref(),
            text("/proc/self/status").as_deref(),
            text("/proc/self/limits").as_deref(),
            text("/proc/stat").as_deref(),
            fds,
        )
    }
}

/// Exports [`ProcessStats`] on each scrape; register it on a registry without a prefix.
#[derive(Debug, Default)]
pub struct ProcessCollector;

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: Option<f64>,
) -> Result<(), std::fmt::Error> {
    if let Some(v) = value {
        let g = ConstGauge::new(v);
        g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
    }
    Ok(())
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = ProcessStats::read();
        if let Some(cpu) = s.cpu_seconds {
            let c = ConstCounter::new(cpu);
            c.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                c.metric_type(),
            )?)?;
        }
        let f = |v: Option<u64>| v.map(|v| v as f64);
        gauge(
            &mut encoder,
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            f(s.resident_bytes),
        )?;
        gauge(
            &mut encoder,
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes",
            f(s.virtual_bytes),
        )?;
        gauge(
            &mut encoder,
            "process_open_fds",
            "Number of open file descriptors",
            f(s.open_fds),
        )?;
        gauge(
            &mut encoder,
            "process_max_fds",
            "Maximum number of open file descriptors",
            f(s.max_fds),
        )?;
        gauge(
            &mut encoder,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds",
            s.start_time_seconds,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_texts_parse_and_garbage_is_absent() {
        let stat = "1234 (deaddrop (x) y) S 1 1234 1234 0 -1 4194560 2000 0 0 0 250 50 0 0 20 0 \
                    9 0 500 123456789 3000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0";
        let status = "Name:\tdeaddrop\nVmRSS:\t  2048 kB\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        let s = ProcessStats::parse(
            Some(stat),
            Some(status),
            Some(limits),
            Some("cpu 1 2 3\nbtime 1700000000\n"),
            Some(7),
        );
        assert_eq!(s.cpu_seconds, Some(3.0));
        assert_eq!(s.start_time_seconds, Some(1_700_000_005.0));
        assert_eq!(s.virtual_bytes, Some(123_456_789));
        assert_eq!(s.resident_bytes, Some(2048 * 1024));
        assert_eq!(s.max_fds, Some(1024));
        assert_eq!(s.open_fds, Some(7));
        let none = ProcessStats::parse(Some("garbage"), Some(""), Some("x"), None, None);
        assert_eq!(none, ProcessStats::default());
    }
}

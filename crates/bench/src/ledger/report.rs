//! The result of `deaddrop-bench ledger`: the fields `--json` prints, and the human-readable
//! table.

use serde::Serialize;

use super::push::SUSTAIN_LATENCY;
use super::{GOAL_RATE, GOAL_SUBSCRIBERS};

/// The result, as `--json` prints it.
#[derive(Debug, Serialize)]
pub(super) struct LedgerReport {
    pub(super) store: &'static str,
    pub(super) suite: &'static str,
    pub(super) entry_bytes: usize,
    /// Cores the operating system offers this process (server and load share them).
    pub(super) cores: usize,
    pub(super) seconds: u32,
    pub(super) append_clients: u32,
    /// Appends acknowledged during the timed run.
    pub(super) appends: u64,
    pub(super) appends_per_s: f64,
    pub(super) append_p50_ms: f64,
    pub(super) append_p99_ms: f64,
    pub(super) appends_goal_per_s: f64,
    pub(super) read_clients: u32,
    /// Entries each reader synced.
    pub(super) read_entries: u64,
    /// Entries per second, all readers together.
    pub(super) read_entries_per_s: f64,
    /// Megabytes (10^6 bytes) of response bodies per second, all readers together.
    pub(super) read_mb_per_s: f64,
    pub(super) subscribers: u32,
    /// Appends per second during the latency measurement.
    pub(super) push_rate: u32,
    /// Entries appended during the latency measurement.
    pub(super) push_appends: u64,
    pub(super) push_p50_ms: f64,
    pub(super) push_p99_ms: f64,
    pub(super) push_max_ms: f64,
    pub(super) push_p99_goal_ms: f64,
    /// The ledger's part of `push_p50_ms`/`push_p99_ms`: from stored to written to the socket.
    pub(super) push_fan_out_p50_ms: Option<f64>,
    pub(super) push_fan_out_p99_ms: Option<f64>,
    /// The POST's round trip until its `201` during the latency measurement, p99.
    pub(super) push_post_p99_ms: f64,
    /// CPU time per append during the latency measurement: the ledger's threads, and the
    /// benchmark's clients' (which share the cores with it).
    pub(super) push_ledger_cpu_ms_per_append: Option<f64>,
    pub(super) push_clients_cpu_ms_per_append: Option<f64>,
    /// The highest deliveries per second (entries × subscribers) of a sustained push step.
    pub(super) delivery_per_s: f64,
    /// The append rate of that step.
    pub(super) delivery_appends_per_s: f64,
    /// Every push step: the latency measurement, then the ramp.
    pub(super) push_steps: Vec<PushStep>,
    /// JetStream appends per second; null when not measured.
    pub(super) jetstream_appends_per_s: Option<f64>,
    /// `appends_per_s / jetstream_appends_per_s`.
    pub(super) jetstream_ratio: Option<f64>,
    /// Why JetStream was not measured.
    pub(super) jetstream_skipped: Option<String>,
    /// The NATS server of the JetStream measurements (`nats://…`); null when none.
    pub(super) jetstream_url: Option<String>,
    /// Durable appends per second through a deaddrop front end on the JetStream store, with
    /// `append_clients` HTTP clients; null when not measured.
    pub(super) jetstream_front_end_appends_per_s: Option<f64>,
    pub(super) jetstream_front_end_append_p50_ms: Option<f64>,
    pub(super) jetstream_front_end_append_p99_ms: Option<f64>,
    /// `appends_per_s / jetstream_front_end_appends_per_s`.
    pub(super) jetstream_front_end_append_ratio: Option<f64>,
    /// Entries each reader synced from the front end on JetStream.
    pub(super) jetstream_front_end_read_entries: Option<u64>,
    /// Entries per second, `read_clients` readers together, from the front end on JetStream.
    pub(super) jetstream_front_end_read_entries_per_s: Option<f64>,
    pub(super) jetstream_front_end_read_mb_per_s: Option<f64>,
    /// `read_entries_per_s / jetstream_front_end_read_entries_per_s`.
    pub(super) jetstream_front_end_read_ratio: Option<f64>,
    /// Mean of sequential `direct_get`s (one entry each) on that NATS server, in milliseconds.
    pub(super) jetstream_direct_get_ms: Option<f64>,
    /// Mean of sequential acknowledged publishes of one entry there, in milliseconds.
    pub(super) jetstream_publish_ack_ms: Option<f64>,
    /// Why the front end on JetStream was not measured.
    pub(super) jetstream_front_end_skipped: Option<String>,
    /// Seconds a new mirror took to hold the central ledger's newest entry; null when skipped.
    pub(super) mirror_catchup_s: Option<f64>,
    /// Entries the mirror caught up.
    pub(super) mirror_catchup_entries: Option<u64>,
    pub(super) mirror_catchup_per_s: Option<f64>,
}

/// One rate of the push measurement.
#[derive(Clone, Debug, Serialize)]
pub(super) struct PushStep {
    /// Appends per second asked for.
    pub(super) rate: f64,
    /// Appends per second achieved, until the last one was acknowledged.
    pub(super) appends_per_s: f64,
    pub(super) appends: u64,
    pub(super) p50_ms: f64,
    pub(super) p99_ms: f64,
    pub(super) max_ms: f64,
    /// Deliveries per second: entries × subscribers over the time until the last arrived.
    pub(super) delivery_per_s: f64,
    /// The pace was kept, no subscriber was dropped, every one got every entry, and the p99
    /// latency stayed within 100 ms.
    pub(super) sustained: bool,
    /// What fell short, when the step was not sustained.
    pub(super) limit: Option<String>,
    /// A POST's round trip until its `201` (the entry is durable then), as the appender saw it.
    pub(super) post_p50_ms: f64,
    pub(super) post_p99_ms: f64,
    /// The ledger's own part of the push: from the entry being stored to its frame written to
    /// a subscriber's connection (`deaddrop_push_delay_seconds`, interpolated within its
    /// buckets); null when the ledger counted none. The rest of `p99_ms` is the append's path
    /// and the subscribers' receiving.
    pub(super) fan_out_p50_ms: Option<f64>,
    pub(super) fan_out_p99_ms: Option<f64>,
    /// CPU time the ledger's threads used during the step, per append (one append is
    /// delivered to every subscriber); null where it cannot be read.
    pub(super) ledger_cpu_ms_per_append: Option<f64>,
    /// The same for the benchmark's clients (the appender and the subscribers).
    pub(super) clients_cpu_ms_per_append: Option<f64>,
}

/// `12,345`.
fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}

pub(super) fn print_human(r: &LedgerReport) {
    println!(
        "ledger on loopback: {} entries of {} bytes, {} store, {} cores shared by server and load",
        r.suite, r.entry_bytes, r.store, r.cores
    );
    let what = if r.store == "embedded" {
        "durable appends"
    } else {
        "appends (memory store, not durable)"
    };
    println!(
        "{what}, {} clients: {}/s  (goal ≥ {}/s: {:.2}× the goal, {})  latency p50 {:.2} ms, p99 {:.2} ms",
        r.append_clients,
        thousands(r.appends_per_s),
        thousands(r.appends_goal_per_s),
        r.appends_per_s / r.appends_goal_per_s,
        met(r.appends_per_s >= r.appends_goal_per_s),
        r.append_p50_ms,
        r.append_p99_ms
    );
    println!(
        "reads, {} clients each syncing {} entries from id 0: {} entries/s, {:.1} MB/s",
        r.read_clients,
        thousands(r.read_entries as f64),
        thousands(r.read_entries_per_s),
        r.read_mb_per_s
    );
    let at_goal = r.push_rate == GOAL_RATE && r.subscribers == GOAL_SUBSCRIBERS;
    println!(
        "post→push, {} subscribers at {} appends/s: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms  (goal p99 ≤ {} ms at {GOAL_RATE}/s with {GOAL_SUBSCRIBERS} subscribers: {})",
        r.subscribers,
        r.push_rate,
        r.push_p50_ms,
        r.push_p99_ms,
        r.push_max_ms,
        r.push_p99_goal_ms,
        if at_goal {
            met(r.push_p99_ms <= r.push_p99_goal_ms)
        } else {
            "not measured at the goal's load"
        }
    );
    if let Some(step) = r.push_steps.first() {
        println!(
            "  of which the POST until 201: p50 {:.2} ms, p99 {:.2} ms; the ledger's fan-out (stored → written to the socket): p50 {}, p99 {}; the rest is the subscribers receiving",
            step.post_p50_ms,
            step.post_p99_ms,
            step.fan_out_p50_ms.map_or("n/a".into(), |v| format!("{v:.2} ms")),
            step.fan_out_p99_ms.map_or("n/a".into(), |v| format!("{v:.2} ms")),
        );
        if let (Some(l), Some(c)) = (
            step.ledger_cpu_ms_per_append,
            step.clients_cpu_ms_per_append,
        ) {
            println!(
                "  CPU per append (delivered to {} subscribers): the ledger {l:.2} ms, the benchmark's clients {c:.2} ms, on {} cores shared by both",
                r.subscribers, r.cores
            );
        }
    }
    if r.delivery_per_s > 0.0 {
        println!(
            "highest delivery sustained (nothing lost, p99 ≤ {} ms): {} appends/s × {} subscribers = {} deliveries/s",
            SUSTAIN_LATENCY.as_millis(),
            thousands(r.delivery_appends_per_s),
            r.subscribers,
            thousands(r.delivery_per_s)
        );
    } else {
        println!("highest delivery sustained: none (the first push step already fell behind)");
    }
    println!("  rate/s  appends/s  p50 ms  p99 ms  max ms  deliveries/s  sustained");
    for s in &r.push_steps {
        println!(
            "  {:>6}  {:>9.1}  {:>6.2}  {:>6.2}  {:>6.1}  {:>12}  {}",
            s.rate,
            s.appends_per_s,
            s.p50_ms,
            s.p99_ms,
            s.max_ms,
            thousands(s.delivery_per_s),
            if s.sustained {
                "yes".to_string()
            } else {
                format!("no: {}", s.limit.as_deref().unwrap_or("no subscriber left"))
            }
        );
    }
    match (r.jetstream_appends_per_s, r.jetstream_ratio) {
        (Some(js), Some(ratio)) => println!(
            "JetStream (file storage, sync_interval always), {} publishers: {}/s; deaddrop ÷ JetStream = {ratio:.2}×",
            r.append_clients,
            thousands(js)
        ),
        _ => println!(
            "JetStream: not measured: {}",
            r.jetstream_skipped.as_deref().unwrap_or("unknown reason")
        ),
    }
    match (
        r.jetstream_front_end_appends_per_s,
        r.jetstream_front_end_read_entries_per_s,
    ) {
        (Some(appends), Some(reads)) => {
            println!(
                "deaddrop front end on JetStream ({}):",
                r.jetstream_url.as_deref().unwrap_or("?")
            );
            println!(
                "                        embedded store   JetStream store   embedded ÷ JetStream"
            );
            println!(
                "  durable appends/s     {:>14}   {:>15}   {:>19.2}×   ({} clients; JetStream p50 {:.2} ms, p99 {:.2} ms)",
                thousands(r.appends_per_s),
                thousands(appends),
                r.jetstream_front_end_append_ratio.unwrap_or(0.0),
                r.append_clients,
                r.jetstream_front_end_append_p50_ms.unwrap_or(0.0),
                r.jetstream_front_end_append_p99_ms.unwrap_or(0.0)
            );
            println!(
                "  read entries/s        {:>14}   {:>15}   {:>19.2}×   ({} readers; JetStream: {} entries each)",
                thousands(r.read_entries_per_s),
                thousands(reads),
                r.jetstream_front_end_read_ratio.unwrap_or(0.0),
                r.read_clients,
                thousands(r.jetstream_front_end_read_entries.unwrap_or(0) as f64)
            );
            println!(
                "  read MB/s             {:>14.1}   {:>15.1}",
                r.read_mb_per_s,
                r.jetstream_front_end_read_mb_per_s.unwrap_or(0.0)
            );
            println!(
                "  one at a time on that NATS server: a direct_get (one entry) {:.3} ms, an acknowledged publish {:.3} ms",
                r.jetstream_direct_get_ms.unwrap_or(0.0),
                r.jetstream_publish_ack_ms.unwrap_or(0.0)
            );
        }
        _ => println!(
            "deaddrop front end on JetStream: not measured: {}",
            r.jetstream_front_end_skipped
                .as_deref()
                .unwrap_or("unknown reason")
        ),
    }
    match (
        r.mirror_catchup_s,
        r.mirror_catchup_entries,
        r.mirror_catchup_per_s,
    ) {
        (Some(s), Some(n), Some(per_s)) => println!(
            "mirror catch-up: a new mirror took {s:.2} s to hold {} entries: {} entries/s",
            thousands(n as f64),
            thousands(per_s)
        ),
        _ => println!("mirror catch-up: not measured (--mirror-entries 0)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}

//! Step 3, push: `--subscribers` WebSocket subscribers, one appender at `--rate` for
//! `--seconds` (the latency measurement), then the rate doubling each second for as long as the
//! ledger keeps up (the ramp). Every step's figures come from the arrival times the subscribers
//! record.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use bytes::Bytes;
use deaddrop_api::{frames, StreamHello};
use futures_util::{StreamExt, TryStreamExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::appends::post_entry;
use super::report::PushStep;
use super::{entry_bytes, percentiles_ms, LedgerArgs, SUITE};

/// Doublings of the push rate after the latency measurement, one [`RAMP_STEP`] each.
const RAMP_STEPS: u32 = 6;
const RAMP_STEP: Duration = Duration::from_secs(1);
/// The ramp stops below this append rate.
const RAMP_MAX_RATE: f64 = 20_000.0;
/// How long after a step's last acknowledged append every subscriber must have every entry.
const DRAIN: Duration = Duration::from_secs(2);
/// A push step is sustained only if its p99 latency is at most this: beyond it, deliveries
/// queue up rather than keep pace.
pub(super) const SUSTAIN_LATENCY: Duration = Duration::from_millis(100);
/// The read buffer of each subscriber: a few frames.
const RECEIVER_READ_BUFFER: usize = 16 << 10;
/// Subscribers connecting at once.
const CONNECT_AT_ONCE: usize = 64;
/// Marks the entries of the push measurement; the sequence number follows.
const MAGIC: [u8; 8] = *b"ddbench1";

/// An entry of the push measurement: [`MAGIC`], then `seq`.
fn push_entry(seq: u64) -> Bytes {
    let mut e = entry_bytes(seq ^ 0x5eed);
    e[..8].copy_from_slice(&MAGIC);
    e[8..16].copy_from_slice(&seq.to_be_bytes());
    Bytes::from(e)
}

fn push_seq(entry: &[u8]) -> Option<u64> {
    if entry.get(..8)? != MAGIC {
        return None;
    }
    Some(u64::from_be_bytes(entry.get(8..16)?.try_into().ok()?))
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the subscribers and the appender of the push measurement share.
struct PushShared {
    base: Instant,
    /// Nanoseconds after `base` (plus one) just before the POST of each sequence number.
    sent_ns: Vec<AtomicU64>,
    /// Microseconds each POST took until its `201` (plus one).
    post_us: Vec<AtomicU64>,
    /// Push entries each subscriber got.
    received: Vec<AtomicU64>,
    /// Subscribers whose stream ended before the measurement closed it.
    lost: Vec<AtomicBool>,
    /// Deliveries that took longer than [`SUSTAIN_LATENCY`].
    slow: AtomicU64,
}

pub(super) struct PushRun {
    pub(super) steps: Vec<PushStep>,
}

/// Connects the subscribers, runs the latency step and the ramp, and computes every step's
/// figures from the arrival times the subscribers recorded.
pub(super) async fn push_phase(
    http: &reqwest::Client,
    addr: SocketAddr,
    args: &LedgerArgs,
    newest: u64,
) -> anyhow::Result<PushRun> {
    let subscribers = args.subscribers as usize;
    let mut plan = vec![(
        f64::from(args.rate),
        Duration::from_secs(u64::from(args.seconds)),
    )];
    for k in 1..=RAMP_STEPS {
        let rate = f64::from(args.rate) * f64::from(1u32 << k);
        if rate > RAMP_MAX_RATE {
            break;
        }
        plan.push((rate, RAMP_STEP));
    }
    let capacity: u64 = plan
        .iter()
        .map(|(rate, d)| (rate * d.as_secs_f64()).ceil() as u64)
        .sum();
    let shared = Arc::new(PushShared {
        base: Instant::now(),
        sent_ns: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
        post_us: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
        received: (0..subscribers).map(|_| AtomicU64::new(0)).collect(),
        lost: (0..subscribers).map(|_| AtomicBool::new(false)).collect(),
        slow: AtomicU64::new(0),
    });

    // Subscribe after the newest entry: the backlog is the read measurement's business.
    let url = format!(
        "ws://{addr}{}",
        deaddrop_api::path::stream(deaddrop_api::EntryId(newest))
    );
    let sockets: Vec<Ws> = futures_util::stream::iter((0..subscribers).map(|_| subscribe(&url)))
        .buffer_unordered(CONNECT_AT_ONCE)
        .try_collect()
        .await?;
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for (i, ws) in sockets.into_iter().enumerate() {
        tasks.spawn(subscriber(i, ws, shared.clone(), stopped.clone()));
    }

    let url = format!("http://{addr}{}", deaddrop_api::path::ENTRIES);
    let mut ranges = Vec::new();
    let mut next_seq = 0u64;
    for (rate, duration) in plan {
        let first_seq = next_seq;
        let fan_out_before = push_delay_buckets(http, addr).await?;
        let cpu_before = cpu_by_side();
        let lost_before = lost_count(&shared);
        let slow_before = shared.slow.load(Ordering::SeqCst);
        let started = Instant::now();
        let n = ((rate * duration.as_secs_f64()).round() as u64).max(1);
        let mut posts = JoinSet::new();
        let mut ticker = tokio::time::interval(Duration::from_millis(10));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let mut issued = 0;
        while issued < n {
            ticker.tick().await;
            let due = ((started.elapsed().as_secs_f64() * rate) as u64 + 1).min(n);
            while issued < due {
                let seq = next_seq;
                next_seq += 1;
                issued += 1;
                let (http, url, shared) = (http.clone(), url.clone(), shared.clone());
                posts.spawn(async move {
                    let body = push_entry(seq);
                    let at = shared.base.elapsed().as_nanos() as u64 + 1;
                    shared.sent_ns[seq as usize].store(at, Ordering::SeqCst);
                    let posted = Instant::now();
                    post_entry(&http, &url, body).await?;
                    let us = posted.elapsed().as_micros() as u64 + 1;
                    shared.post_us[seq as usize].store(us, Ordering::SeqCst);
                    Ok::<(), anyhow::Error>(())
                });
            }
        }
        while let Some(done) = posts.join_next().await {
            done.context("an appending task failed")??;
        }
        let acked = started.elapsed();
        let appends_per_s = n as f64 / acked.as_secs_f64();
        let late = wait_delivered(&shared, next_seq, DRAIN).await;
        let fan_out = bucket_delta(&fan_out_before, &push_delay_buckets(http, addr).await?);
        let cpu = cpu_by_side()
            .zip(cpu_before)
            .map(|(after, before)| CpuSplit {
                ledger_ms: after.ledger_ms.saturating_sub(before.ledger_ms),
                clients_ms: after.clients_ms.saturating_sub(before.clients_ms),
            });
        let lost = lost_count(&shared) - lost_before;
        let slow = shared.slow.load(Ordering::SeqCst) - slow_before;
        let deliveries = n * (subscribers - lost_count(&shared)) as u64;
        let short = if appends_per_s < 0.9 * rate {
            Some(format!(
                "the appender reached only {appends_per_s:.0} appends/s"
            ))
        } else if lost > 0 {
            Some(format!("{lost} subscribers were dropped"))
        } else if late > 0 {
            Some(format!(
                "{late} subscribers still missed entries {} s after the last append",
                DRAIN.as_secs()
            ))
        } else if slow * 100 > deliveries {
            Some(format!(
                "p99 latency above {} ms",
                SUSTAIN_LATENCY.as_millis()
            ))
        } else {
            None
        };
        let stop_here = short.is_some();
        ranges.push((
            rate,
            first_seq..next_seq,
            started,
            appends_per_s,
            short,
            fan_out,
            cpu,
        ));
        if stop_here {
            break;
        }
    }

    let _ = stop.send(true);
    let mut samples: Vec<(u32, u32)> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        samples.extend(done.context("a subscriber task failed")?);
    }
    let alive = subscribers - lost_count(&shared);
    let mut steps = Vec::new();
    for (rate, seqs, started, appends_per_s, short, fan_out, cpu) in ranges {
        let mut latencies = Vec::new();
        let mut last_arrival_ns = 0u64;
        for &(seq, us) in &samples {
            if seqs.contains(&u64::from(seq)) {
                latencies.push(us);
                let sent = shared.sent_ns[seq as usize].load(Ordering::SeqCst);
                last_arrival_ns = last_arrival_ns.max(sent + u64::from(us) * 1000);
            }
        }
        let step_start_ns = started.duration_since(shared.base).as_nanos() as u64;
        let span = Duration::from_nanos(last_arrival_ns.saturating_sub(step_start_ns));
        let deliveries = latencies.len() as f64;
        let (p50_ms, p99_ms, max_ms) = percentiles_ms(latencies);
        let posts: Vec<u32> = seqs
            .clone()
            .map(|seq| shared.post_us[seq as usize].load(Ordering::SeqCst))
            .filter(|&us| us > 0)
            .map(|us| u32::try_from(us - 1).unwrap_or(u32::MAX))
            .collect();
        let (post_p50_ms, post_p99_ms, _) = percentiles_ms(posts);
        steps.push(PushStep {
            rate,
            appends_per_s,
            appends: seqs.end - seqs.start,
            p50_ms,
            p99_ms,
            max_ms,
            delivery_per_s: if span.is_zero() {
                0.0
            } else {
                deliveries / span.as_secs_f64()
            },
            sustained: short.is_none() && alive > 0,
            limit: short,
            post_p50_ms,
            post_p99_ms,
            fan_out_p50_ms: quantile(&fan_out, 0.50).map(|s| s * 1000.0),
            fan_out_p99_ms: quantile(&fan_out, 0.99).map(|s| s * 1000.0),
            ledger_cpu_ms_per_append: cpu.map(|c| c.ledger_ms as f64 / n_appends(&seqs)),
            clients_cpu_ms_per_append: cpu.map(|c| c.clients_ms as f64 / n_appends(&seqs)),
        });
    }
    Ok(PushRun { steps })
}

/// The ledger's `deaddrop_push_delay_seconds` histogram now: `(upper bound in seconds,
/// cumulative count)` per bucket, `+Inf` last.
async fn push_delay_buckets(
    http: &reqwest::Client,
    addr: SocketAddr,
) -> anyhow::Result<Vec<(f64, f64)>> {
    let text = http
        .get(format!("http://{addr}{}", deaddrop_api::path::METRICS))
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .context("reading the ledger's metrics")?
        .text()
        .await
        .context("reading the ledger's metrics")?;
    Ok(parse_buckets(&text, "deaddrop_push_delay_seconds_bucket"))
}

/// The buckets of histogram `name` in a Prometheus text exposition.
fn parse_buckets(text: &str, name: &str) -> Vec<(f64, f64)> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix("{le=\"")?;
            let (le, rest) = rest.split_once("\"}")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, rest.trim().parse().ok()?))
        })
        .collect()
}

/// What `after` counted that `before` had not, bucket by bucket.
fn bucket_delta(before: &[(f64, f64)], after: &[(f64, f64)]) -> Vec<(f64, f64)> {
    after
        .iter()
        .map(|&(le, n)| {
            let was = before.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
            (le, n - was)
        })
        .collect()
}

/// The `q` quantile of cumulative `buckets`, interpolated linearly inside its bucket (as
/// Prometheus' `histogram_quantile` does); `None` when nothing was counted. A quantile in the
/// `+Inf` bucket is reported as the highest finite bound.
fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(le, n) in buckets {
        if n >= rank {
            if le.is_infinite() {
                return Some(lower.0);
            }
            let inside = n - lower.1;
            let frac = if inside > 0.0 {
                (rank - lower.1) / inside
            } else {
                1.0
            };
            return Some(lower.0 + (le - lower.0) * frac);
        }
        lower = (le, n);
    }
    Some(lower.0)
}

fn n_appends(seqs: &std::ops::Range<u64>) -> f64 {
    (seqs.end - seqs.start).max(1) as f64
}

/// CPU time used so far by the ledger's threads and by the benchmark's clients' threads.
#[derive(Clone, Copy, Debug)]
struct CpuSplit {
    ledger_ms: u64,
    clients_ms: u64,
}

/// CPU time of this process's threads, by side: the ledger's (`ledger-*`: its runtime, its
/// blocking pool, the log writer) and the clients' (`bench-client`: appender and subscribers).
/// `None` where `/proc/self/task` cannot be read (not Linux).
fn cpu_by_side() -> Option<CpuSplit> {
    // `/proc` counts CPU time in clock ticks of USER_HZ, 100 per second on Linux.
    const MS_PER_TICK: u64 = 10;
    let mut split = CpuSplit {
        ledger_ms: 0,
        clients_ms: 0,
    };
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        let Some((name, ticks)) = thread_cpu_ticks(&stat) else {
            continue;
        };
        if name.starts_with("ledger-") {
            split.ledger_ms += ticks * MS_PER_TICK;
        } else if name.starts_with("bench-client") {
            split.clients_ms += ticks * MS_PER_TICK;
        }
    }
    Some(split)
}

/// A thread's name and its user plus system CPU ticks, from its `/proc/.../stat` line:
/// `pid (name) state ppid ... utime stime ...` (fields 14 and 15; the name may hold spaces).
fn thread_cpu_ticks(stat: &str) -> Option<(&str, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?;
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    // After the name: state is field 3, so utime (14) is the 12th.
    let utime: u64 = rest.nth(11)?.parse().ok()?;
    let stime: u64 = rest.next()?.parse().ok()?;
    Some((name, utime + stime))
}

fn lost_count(shared: &PushShared) -> usize {
    shared
        .lost
        .iter()
        .filter(|l| l.load(Ordering::SeqCst))
        .count()
}

/// Waits until every subscriber still connected has `total` push entries, at most `limit`;
/// returns how many still lack some.
async fn wait_delivered(shared: &PushShared, total: u64, limit: Duration) -> usize {
    let until = Instant::now() + limit;
    loop {
        let late = shared
            .received
            .iter()
            .zip(&shared.lost)
            .filter(|(r, l)| !l.load(Ordering::SeqCst) && r.load(Ordering::SeqCst) < total)
            .count();
        if late == 0 || Instant::now() >= until {
            return late;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Opens one push stream and waits for its hello.
async fn subscribe(url: &str) -> anyhow::Result<Ws> {
    // tungstenite zero-fills its whole read buffer before every read: at the default 128 KiB
    // that costs a 500-subscriber run more CPU than receiving, on the cores the ledger uses too.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(RECEIVER_READ_BUFFER);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .with_context(|| format!("cannot subscribe to {url}"))?;
    let first = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .context("no hello from the push stream within 10 s")?
        .context("the push stream ended before its hello")?
        .context("the push stream failed before its hello")?;
    let Message::Text(text) = first else {
        bail!("the push stream did not start with a hello: {first:?}");
    };
    let hello: StreamHello =
        serde_json::from_str(&text).context("the push stream's hello is not valid")?;
    ensure!(
        hello.kind == "hello",
        "the push stream's first message is not a hello"
    );
    Ok(ws)
}

/// One subscriber: records `(seq, latency µs)` of every push entry until told to stop.
async fn subscriber(
    i: usize,
    mut ws: Ws,
    shared: Arc<PushShared>,
    mut stop: watch::Receiver<bool>,
) -> Vec<(u32, u32)> {
    let entry_len = SUITE.layout().entry_len;
    let mut samples = Vec::new();
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Binary(data))) => {
                    let now = shared.base.elapsed().as_nanos() as u64 + 1;
                    for frame in frames(&data, entry_len).flatten() {
                        let Some(seq) = push_seq(frame.entry) else { continue };
                        let sent = shared
                            .sent_ns
                            .get(seq as usize)
                            .map_or(0, |s| s.load(Ordering::SeqCst));
                        if sent == 0 {
                            continue;
                        }
                        let us = now.saturating_sub(sent) / 1000;
                        if us > SUSTAIN_LATENCY.as_micros() as u64 {
                            shared.slow.fetch_add(1, Ordering::SeqCst);
                        }
                        samples.push((seq as u32, u32::try_from(us).unwrap_or(u32::MAX)));
                        shared.received[i].fetch_add(1, Ordering::SeqCst);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    shared.lost[i].store(true, Ordering::SeqCst);
                    return samples;
                }
            },
            _ = stop.changed() => {
                let _ = ws.close(None).await;
                return samples;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_entries_carry_their_sequence_number() {
        let e = push_entry(123_456);
        assert_eq!(e.len(), SUITE.layout().entry_len);
        assert_eq!(push_seq(&e), Some(123_456));
        assert_eq!(push_seq(&entry_bytes(1)), None);
    }

    #[test]
    fn thread_cpu_is_read_from_a_stat_line() {
        let line = "4242 (ledger server) S 1 4242 4242 0 -1 4194368 100 0 0 0 37 5 0 0 20 0 3 0";
        assert_eq!(thread_cpu_ticks(line), Some(("ledger server", 42)));
        assert_eq!(thread_cpu_ticks("4242 (x) S 1"), None);
        assert_eq!(thread_cpu_ticks("garbage"), None);
    }

    #[test]
    fn histogram_quantiles_interpolate_within_a_bucket() {
        let text = "# TYPE deaddrop_push_delay_seconds histogram\n\
            deaddrop_push_delay_seconds_sum 1.0\n\
            deaddrop_push_delay_seconds_count 100\n\
            deaddrop_push_delay_seconds_bucket{le=\"0.001\"} 10\n\
            deaddrop_push_delay_seconds_bucket{le=\"0.002\"} 60\n\
            deaddrop_push_delay_seconds_bucket{le=\"0.004\"} 100\n\
            deaddrop_push_delay_seconds_bucket{le=\"+Inf\"} 100\n";
        let after = parse_buckets(text, "deaddrop_push_delay_seconds_bucket");
        assert_eq!(after.len(), 4);
        assert_eq!(after[3], (f64::INFINITY, 100.0));
        // Half of the counts lie at or below the middle of the second bucket.
        let p50 = quantile(&after, 0.5).unwrap();
        assert!((p50 - 0.0018).abs() < 1e-9, "{p50}");
        let p99 = quantile(&after, 0.99).unwrap();
        assert!((p99 - 0.00395).abs() < 1e-9, "{p99}");
        // Only what came after the first snapshot counts.
        let before = vec![
            (0.001, 10.0),
            (0.002, 20.0),
            (0.004, 20.0),
            (f64::INFINITY, 20.0),
        ];
        let d = bucket_delta(&before, &after);
        assert_eq!(
            d,
            vec![
                (0.001, 0.0),
                (0.002, 40.0),
                (0.004, 80.0),
                (f64::INFINITY, 80.0)
            ]
        );
        assert_eq!(quantile(&bucket_delta(&after, &after), 0.5), None);
    }
}

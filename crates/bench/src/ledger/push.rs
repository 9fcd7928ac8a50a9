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
                    post_entry(&http, &url, body).await
                });
            }
        }
        while let Some(done) = posts.join_next().await {
            done.context("an appending task failed")??;
        }
        let acked = started.elapsed();
        let appends_per_s = n as f64 / acked.as_secs_f64();
        let late = wait_delivered(&shared, next_seq, DRAIN).await;
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
        ranges.push((rate, first_seq..next_seq, started, appends_per_s, short));
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
    for (rate, seqs, started, appends_per_s, short) in ranges {
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
        });
    }
    Ok(PushRun { steps })
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
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
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
}

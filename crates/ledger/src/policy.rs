//! The two rules that adapt the ledger to its traffic: the lifetime of entries (paper III.3.1)
//! and the proof-of-work difficulty (docs/DESIGN.md §3.8). Both are pure: they take samples and the
//! time, so tests drive them without sleeping. `docs/API.md` states the rules for users.

use std::time::Duration;

/// Lifetime adaption. Every tick it is told how many entry bytes arrived since the last tick
/// and how many are held; it keeps an exponentially weighted inflow rate `r` (bytes/s, time
/// constant one minute) and sets
///
/// `target = clamp(0.9 · max_bytes / r, min_lifetime, max_lifetime)`
///
/// The lifetime drops to a lower target at once; it grows toward a higher one by at most the
/// time that passed (so it never grows faster than entries age). While the held bytes reach
/// `max_bytes` (a burst: the ledger then refuses appends), the lifetime shrinks in proportion at
/// once, by at least a tenth per tick. It never leaves
/// `[min_lifetime, max_lifetime]`.
#[derive(Clone, Debug)]
pub struct LifetimePolicy {
    max: Duration,
    min: Duration,
    max_bytes: u64,
    rate: f64,
    current: Duration,
}

const RATE_TAU_S: f64 = 60.0;
const FILL: f64 = 0.9;

impl LifetimePolicy {
    /// Starts at the longest lifetime.
    pub fn new(max: Duration, min: Duration, max_bytes: u64) -> Self {
        let min = min.min(max);
        LifetimePolicy {
            max,
            min,
            max_bytes,
            rate: 0.0,
            current: max,
        }
    }

    /// The lifetime now.
    pub fn current(&self) -> Duration {
        self.current
    }

    /// The inflow rate estimate, bytes per second.
    pub fn inflow_rate(&self) -> f64 {
        self.rate
    }

    /// Feeds one tick of `elapsed` during which `arrived` bytes were appended, with `held`
    /// bytes held now. Returns the new lifetime.
    pub fn tick(&mut self, elapsed: Duration, arrived: u64, held: u64) -> Duration {
        let dt = elapsed.as_secs_f64();
        if dt > 0.0 {
            let alpha = 1.0 - (-dt / RATE_TAU_S).exp();
            self.rate += alpha * (arrived as f64 / dt - self.rate);
        }
        let target = if self.rate > 0.0 {
            Duration::from_secs_f64(
                (FILL * self.max_bytes as f64 / self.rate).min(self.max.as_secs_f64()),
            )
        } else {
            self.max
        };
        let target = target.clamp(self.min, self.max);
        let mut next = if target < self.current {
            target
        } else {
            (self.current + elapsed).min(target)
        };
        if held >= self.max_bytes && held > 0 {
            let scaled = next.as_secs_f64() * FILL * self.max_bytes as f64 / held as f64;
            next = next.min(Duration::from_secs_f64(scaled));
        }
        self.current = next.clamp(self.min, self.max);
        self.current
    }
}

/// Difficulty under load: an exponentially weighted append rate `a` (per second, time constant
/// ten seconds); the advertised difficulty is `base + ceil(log2(a / rate))` when `a > rate`,
/// else `base`, capped at `max`. A stamp is accepted if it meets the difficulty now or the one
/// advertised before the last change, for a grace period, so a client that just solved at the
/// old difficulty is not refused.
#[derive(Clone, Debug)]
pub struct DifficultyPolicy {
    base: u8,
    max: u8,
    threshold: f64,
    rate: f64,
    current: u8,
    previous: u8,
    since_change: Duration,
}

const LOAD_TAU_S: f64 = 10.0;
/// How long the previous difficulty stays acceptable after a change.
pub const DIFFICULTY_GRACE: Duration = Duration::from_secs(60);

impl DifficultyPolicy {
    /// At rest: `base` bits.
    pub fn new(base: u8, max: u8, threshold: f64) -> Self {
        let max = max.max(base);
        DifficultyPolicy {
            base,
            max,
            threshold: threshold.max(1.0),
            rate: 0.0,
            current: base,
            previous: base,
            since_change: DIFFICULTY_GRACE,
        }
    }

    /// The difficulty advertised now.
    pub fn current(&self) -> u8 {
        self.current
    }

    /// The lowest difficulty a stamp may meet and still be accepted now.
    pub fn accepted(&self) -> u8 {
        if self.since_change < DIFFICULTY_GRACE {
            self.current.min(self.previous)
        } else {
            self.current
        }
    }

    /// The append rate estimate, per second.
    pub fn append_rate(&self) -> f64 {
        self.rate
    }

    /// Feeds one tick with `appends` accepted during `elapsed`.
    pub fn tick(&mut self, elapsed: Duration, appends: u64) -> u8 {
        let dt = elapsed.as_secs_f64();
        if dt > 0.0 {
            let alpha = 1.0 - (-dt / LOAD_TAU_S).exp();
            self.rate += alpha * (appends as f64 / dt - self.rate);
        }
        let extra = if self.base == 0 || self.rate <= self.threshold {
            0
        } else {
            (self.rate / self.threshold).log2().ceil().clamp(0.0, 64.0) as u8
        };
        let next = self.base.saturating_add(extra).min(self.max);
        self.since_change = self.since_change.saturating_add(elapsed);
        if next != self.current {
            self.previous = self.current;
            self.current = next;
            self.since_change = Duration::ZERO;
        }
        self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn lifetime_stays_at_max_without_traffic() {
        let mut p = LifetimePolicy::new(
            Duration::from_secs(48 * 3600),
            Duration::from_secs(3600),
            1 << 30,
        );
        for _ in 0..100 {
            p.tick(S, 0, 0);
        }
        assert_eq!(p.current(), Duration::from_secs(48 * 3600));
    }

    #[test]
    fn lifetime_shrinks_under_inflow_and_grows_back_slowly() {
        let max = Duration::from_secs(10_000);
        let min = Duration::from_secs(100);
        let mut p = LifetimePolicy::new(max, min, 1_000_000);
        // 10 kB/s would fill 1 MB in 100 s: the lifetime heads for 90 s, clamped at 100 s.
        for _ in 0..600 {
            p.tick(S, 10_000, 0);
        }
        assert_eq!(p.current(), min);
        // Traffic stops: the lifetime grows by at most one second per second.
        for _ in 0..60 {
            p.tick(S, 0, 0);
        }
        assert!(
            p.current() <= min + Duration::from_secs(60),
            "{:?}",
            p.current()
        );
        assert!(p.current() > min);
    }

    #[test]
    fn lifetime_shrinks_at_once_when_over_max_bytes_and_never_below_min() {
        let mut p = LifetimePolicy::new(Duration::from_secs(1000), Duration::from_secs(10), 1000);
        let l = p.tick(S, 0, 4000);
        assert!(l <= Duration::from_secs(250), "{l:?}");
        let l = p.tick(S, 0, u64::MAX);
        assert_eq!(l, Duration::from_secs(10));
    }

    #[test]
    fn difficulty_rises_with_load_and_falls_back() {
        let mut d = DifficultyPolicy::new(10, 20, 100.0);
        assert_eq!(d.current(), 10);
        for _ in 0..60 {
            d.tick(S, 800);
        }
        assert_eq!(
            d.current(),
            13,
            "800/s is 8x the threshold: three more bits"
        );
        assert!(d.accepted() <= 13);
        for _ in 0..120 {
            d.tick(S, 0);
        }
        assert_eq!(d.current(), 10);
        for _ in 0..61 {
            d.tick(S, 0);
        }
        assert_eq!(d.accepted(), 10);
    }

    #[test]
    fn difficulty_zero_stays_zero() {
        let mut d = DifficultyPolicy::new(0, 20, 1.0);
        d.tick(S, 1_000_000);
        assert_eq!(d.current(), 0);
    }
}

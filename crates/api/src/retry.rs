//! The backoff schedule every retry loop of deaddrop uses: exponential from a first delay up to
//! a cap, optionally within a patience after which the caller gives up.

use std::time::{Duration, Instant};

/// Exponential backoff: `first`, `2·first`, ... up to `max`; [`Backoff::reset`] after a success
/// starts over. With a patience, [`Backoff::next_delay`] returns `None` once waiting the next
/// delay would end past it, counting from creation (or the last reset).
#[derive(Clone, Debug)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
    patience: Option<Duration>,
    started: Instant,
}

impl Backoff {
    /// A schedule from `first` doubling up to `max`, retrying forever.
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            next: first,
            patience: None,
            started: Instant::now(),
        }
    }

    /// The same schedule, giving up once `patience` has passed.
    pub fn with_patience(mut self, patience: Duration) -> Backoff {
        self.patience = Some(patience);
        self
    }

    /// The delay to wait before the next attempt, or `None` when patience has run out. Each
    /// call doubles the delay that follows.
    pub fn next_delay(&mut self) -> Option<Duration> {
        let delay = self.next;
        if self
            .patience
            .is_some_and(|p| self.started.elapsed() + delay > p)
        {
            return None;
        }
        self.next = (self.next * 2).min(self.max);
        Some(delay)
    }

    /// Whether patience has run out (always false without one).
    pub fn exhausted(&self) -> bool {
        self.patience.is_some_and(|p| self.started.elapsed() >= p)
    }

    /// After a success: the next failure waits `first` again, and patience starts over.
    pub fn reset(&mut self) {
        self.next = self.first;
        self.started = Instant::now();
    }

    /// Sleeps the next delay; `false` (without sleeping) when patience has run out.
    #[cfg(feature = "client")]
    pub async fn wait(&mut self) -> bool {
        match self.next_delay() {
            Some(d) => {
                tokio::time::sleep(d).await;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap_and_reset() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(500));
        let got: Vec<_> = (0..5).map(|_| b.next_delay().unwrap()).collect();
        assert_eq!(got, [ms(100), ms(200), ms(400), ms(500), ms(500)]);
        b.reset();
        assert_eq!(b.next_delay(), Some(ms(100)));
    }

    #[test]
    fn patience_ends_the_schedule() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5))
            .with_patience(Duration::from_millis(10));
        assert_eq!(b.next_delay(), None);
        let mut b = Backoff::new(Duration::from_millis(1), Duration::from_millis(1))
            .with_patience(Duration::from_secs(60));
        assert_eq!(b.next_delay(), Some(Duration::from_millis(1)));
        assert!(!b.exhausted());
    }
}

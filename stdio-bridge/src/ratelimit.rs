//! Rate-limited warnings. A faulty child can write millions of bad lines; logging each one would
//! turn its fault into a log flood on the bridge, so a warning is logged at most once per period
//! with the number of occurrences it stands for.

use std::time::{Duration, Instant};

pub struct RateLimited {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimited {
    pub const fn new(every: Duration) -> Self {
        RateLimited { every, last: None, suppressed: 0 }
    }

    /// One occurrence at `now`. `Some(n)`: log now; `n` earlier occurrences were not logged.
    pub fn hit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.duration_since(t) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }

    /// Occurrences not logged yet (for a final summary); resets the count.
    pub fn take_suppressed(&mut self) -> u64 {
        std::mem::take(&mut self.suppressed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_period_with_count() {
        let t0 = Instant::now();
        let mut r = RateLimited::new(Duration::from_secs(1));
        assert_eq!(r.hit(t0), Some(0));
        for i in 1..=5 {
            assert_eq!(r.hit(t0 + Duration::from_millis(i * 100)), None);
        }
        assert_eq!(r.hit(t0 + Duration::from_millis(1000)), Some(5));
        assert_eq!(r.hit(t0 + Duration::from_millis(1001)), None);
        assert_eq!(r.take_suppressed(), 1);
        assert_eq!(r.take_suppressed(), 0);
    }
}

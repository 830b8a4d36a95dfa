//! Token-bucket arithmetic in integer fixed point, and the 40-byte slot value.
//!
//! Tokens are counted in nano-tokens ([`UNIT`] per token) and the rate in micro-tokens per second,
//! which is exactly nano-tokens per millisecond: refilling `elapsed_ms` adds `elapsed_ms * rate`
//! units with no rounding, so fractional rates (0.5 rps = 500 units/ms) accumulate exactly even
//! when refills happen every millisecond. `burst_size` ≤ u32::MAX gives a capacity ≤ 4.3e18 units,
//! inside u64; every other operation saturates.

use super::RateLimitSpec;

/// Units per token.
pub const UNIT: u64 = 1_000_000_000;

/// Length of an encoded slot value: fingerprint(16) | tokens u64 | last_ms u64 | full_at_ms u64.
pub const VALUE_LEN: usize = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub burst: u32,
    /// `burst * UNIT`.
    pub cap: u64,
    /// Units per millisecond (= micro-tokens per second), at least 1.
    pub rate: u64,
}

impl Params {
    pub fn from_spec(spec: &RateLimitSpec) -> Params {
        // `as` saturates (NaN → 0); validated specs are finite and positive anyway.
        let rate = ((spec.requests_per_sec * 1e6).round() as u64).max(1);
        let burst = spec.burst_size.max(1);
        Params { burst, cap: u64::from(burst) * UNIT, rate }
    }

    /// A bucket nobody has used: full.
    pub fn fresh(&self, now_ms: u64) -> State {
        State { tokens: self.cap, last_ms: now_ms }
    }

    /// Lazy refill to `now_ms`. A clock that went backwards refills nothing and never moves
    /// `last_ms` back; a long idle period saturates at `cap`.
    pub fn refill(&self, s: State, now_ms: u64) -> State {
        let tokens = s.tokens.min(self.cap);
        if now_ms <= s.last_ms {
            return State { tokens, last_ms: s.last_ms };
        }
        let add = (now_ms - s.last_ms).saturating_mul(self.rate);
        State { tokens: tokens.saturating_add(add).min(self.cap), last_ms: now_ms }
    }

    /// Milliseconds until the bucket holds `target` units (0 if it already does).
    pub fn ms_until(&self, s: &State, target: u64) -> u64 {
        let target = target.min(self.cap);
        if s.tokens >= target {
            0
        } else {
            (target - s.tokens).div_ceil(self.rate)
        }
    }

    /// Whole seconds until one token is available (≥ 1 when the bucket is empty).
    pub fn retry_after_secs(&self, s: &State) -> u64 {
        self.ms_until(s, UNIT).div_ceil(1000)
    }

    /// Whole seconds until the bucket is full again.
    pub fn reset_secs(&self, s: &State) -> u64 {
        self.ms_until(s, self.cap).div_ceil(1000)
    }

    /// Absolute time at which the bucket is full: from then on its slot equals a fresh bucket and
    /// may be taken by another identity.
    pub fn full_at_ms(&self, s: &State) -> u64 {
        s.last_ms.saturating_add(self.ms_until(s, self.cap))
    }

    /// Seconds to refill an empty bucket (`w` of the `RateLimit-Policy` header).
    pub fn window_secs(&self) -> u64 {
        self.cap.div_ceil(self.rate).div_ceil(1000).max(1)
    }

    pub fn remaining(&self, s: &State) -> u32 {
        u32::try_from(s.tokens / UNIT).unwrap_or(u32::MAX)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    pub tokens: u64,
    pub last_ms: u64,
}

impl State {
    /// Takes one token, `None` when less than one is left.
    pub fn take(self) -> Option<State> {
        self.tokens.checked_sub(UNIT).map(|tokens| State { tokens, ..self })
    }
}

pub fn encode(fp: &[u8; 16], s: &State, full_at_ms: u64) -> [u8; VALUE_LEN] {
    let mut out = [0u8; VALUE_LEN];
    out[..16].copy_from_slice(fp);
    out[16..24].copy_from_slice(&s.tokens.to_le_bytes());
    out[24..32].copy_from_slice(&s.last_ms.to_le_bytes());
    out[32..40].copy_from_slice(&full_at_ms.to_le_bytes());
    out
}

fn u64_at(v: &[u8], at: usize) -> Option<u64> {
    let b: [u8; 8] = v.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

/// `(state, full_at_ms)` of a value; `None` if it is not a bucket value (treated as a free slot).
pub fn decode(v: &[u8]) -> Option<(State, u64)> {
    if v.len() != VALUE_LEN {
        return None;
    }
    Some((State { tokens: u64_at(v, 16)?, last_ms: u64_at(v, 24)? }, u64_at(v, 32)?))
}

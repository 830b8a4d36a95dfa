//! Token-bucket rate limiting over proxy-wasm shared data.
//!
//! - [`config`]: `security.rate_limit` (methods charged, slot table size, bucket rules).
//! - [`bucket`]: integer token-bucket arithmetic (nano-tokens, lazy refill) and the slot value.
//! - [`slots`]: the bounded open-addressing table over keys `rl:<slot>` (also used by sessions).
//! - [`limiter`]: [`RateLimiter::check`], the check-all-then-charge-with-CAS protocol.
//! - [`headers`]: `x-ratelimit-*`, `ratelimit-policy` / `ratelimit` and `retry-after`.
//!
//! Buckets that apply to a request (each charged once, or none at all):
//! - `key:<client_id>`: `security.auth.api_keys[i].rate_limit` for a principal from that key,
//!   otherwise `client:<client_id>`: `security.rate_limit.default_per_client` (JWT principals);
//! - `backend:<name>`: `backends[].rate_limit`, one bucket per client on that backend;
//! - every `security.rate_limit.buckets[]` rule whose `backend` / `tool` globs match, one bucket
//!   per value of its `per` dimensions (`[]` = one global bucket).
//!
//! Example (`security.rate_limit`; every key optional, shown with defaults where it has one):
//!
//! ```json
//! {"enabled": true, "methods": ["tools/call", "resources/read", "prompts/get"],
//!  "slots": 65536, "probes": 8, "max_cas_retries": 16,
//!  "default_per_client": {"requests_per_sec": 5, "burst_size": 20},
//!  "buckets": [
//!    {"name": "global", "per": [], "requests_per_sec": 200, "burst_size": 400},
//!    {"name": "fs-writes", "per": ["client", "tool"], "backend": "filesystem", "tool": "write_*",
//!     "requests_per_sec": 0.5, "burst_size": 2}]}
//! ```
//!
//! Rates are kept in micro-tokens per second (rates below 1e-6 rps count as 1e-6 rps).
//!
//! Memory: at most `slots` keys of ~48 bytes (8-byte key, 40-byte value); an identity takes a slot
//! on its first charge and loses it once its bucket has refilled to full (then it is equivalent to
//! a fresh bucket). When all `probes` slots of an identity's sequence hold other, not-yet-full
//! buckets the check fails closed with `rate_limit_table_full`.

use serde::Deserialize;

use crate::config::ConfigError;

pub mod bucket;
pub mod config;
pub mod headers;
pub mod limiter;
pub(crate) mod slots;

#[cfg(test)]
mod tests;

pub use config::{BucketRule, Dimension, RateLimitConfig};
pub use headers::rate_limit_headers;
pub use limiter::{
    BucketState, RateDecision, RateLimiter, RateRequest, ERR_CONTENTION, ERR_STORE, ERR_TABLE_FULL,
};

/// `{requests_per_sec, burst_size}` as in the seed gateway's vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSpec {
    pub requests_per_sec: f64,
    pub burst_size: u32,
}

impl RateLimitSpec {
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if !(self.requests_per_sec.is_finite() && self.requests_per_sec > 0.0) {
            return Err(ConfigError::new(format!("{key}.requests_per_sec"), "must be a positive number"));
        }
        if self.burst_size == 0 {
            return Err(ConfigError::new(format!("{key}.burst_size"), "must be at least 1"));
        }
        Ok(())
    }
}

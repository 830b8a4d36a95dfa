//! Token-bucket rate limiting over proxy-wasm shared data.

use serde::Deserialize;

use crate::config::ConfigError;

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

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {}

impl RateLimitConfig {
    pub fn validate(&self, _key: &str) -> Result<(), ConfigError> {
        Ok(())
    }
}

// ---- contract stub: replaced by the real limiter ----
use crate::shared::SharedStore;
pub struct RateRequest<'a> {
    pub client_id: &'a str,
    pub api_key_index: Option<usize>,
    pub backend: &'a str,
    pub tool: &'a str,
}
#[derive(Debug, Clone, PartialEq)]
pub struct BucketState {
    pub bucket: String,
    pub limit: u32,
    pub remaining: u32,
    pub reset_secs: u64,
}
#[derive(Debug, Clone, PartialEq)]
pub enum RateDecision {
    NotLimited,
    Allowed(BucketState),
    Limited { state: BucketState, retry_after_secs: u64 },
    Error(&'static str),
}
pub struct RateLimiter;
impl RateLimiter {
    pub fn new(
        _c: &RateLimitConfig,
        _b: &[(String, Option<RateLimitSpec>)],
        _k: &[Option<RateLimitSpec>],
    ) -> Result<Self, ConfigError> {
        Ok(RateLimiter)
    }
    pub fn charges(&self, _m: &str) -> bool {
        false
    }
    pub fn check(&self, _s: &dyn SharedStore, _r: &RateRequest, _now_ms: u64) -> RateDecision {
        RateDecision::NotLimited
    }
}
pub fn rate_limit_headers(_d: &RateDecision) -> Vec<(&'static str, String)> {
    Vec::new()
}

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

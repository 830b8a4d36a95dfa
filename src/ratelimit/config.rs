//! `security.rate_limit`: which methods are charged, the slot table, and the bucket rules.

use serde::Deserialize;

use super::RateLimitSpec;
use crate::config::ConfigError;

/// Largest accepted `slots` (≈ 48 MiB of shared data at ~48 bytes per slot).
pub const MAX_SLOTS: u32 = 1 << 20;
/// Largest accepted probe sequence length.
pub const MAX_PROBES: u32 = 64;
/// Largest accepted CAS retry budget per check.
pub const MAX_CAS_RETRIES: u32 = 1000;

/// A dimension a [`BucketRule`] keeps separate buckets for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dimension {
    /// The authenticated principal (`client_id` / JWT subject).
    Client,
    /// The backend (cluster or `mcp_router` prefix).
    Backend,
    /// The tool name, resource URI or prompt name.
    Tool,
}

/// One configured bucket family. `per: []` is a single bucket shared by every matching request;
/// `per: [client, tool]` is one bucket per (client, tool) pair, and so on.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketRule {
    /// Reported in `BucketState::bucket` and the `RateLimit` header; `[A-Za-z0-9_.-]+`.
    pub name: String,
    #[serde(default)]
    pub per: Vec<Dimension>,
    /// Only requests to a backend matching this glob (`*` wildcard) are charged; none = all.
    #[serde(default)]
    pub backend: Option<String>,
    /// Only requests whose tool / resource URI / prompt name matches this glob; none = all.
    #[serde(default)]
    pub tool: Option<String>,
    pub requests_per_sec: f64,
    pub burst_size: u32,
}

impl BucketRule {
    pub fn spec(&self) -> RateLimitSpec {
        RateLimitSpec { requests_per_sec: self.requests_per_sec, burst_size: self.burst_size }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Master switch; when false nothing is charged (per-backend / per-key limits included).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// MCP methods that are charged (`"*"` = every method).
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    /// Number of shared-data slots (`rl:0` .. `rl:<slots-1>`): the memory bound.
    #[serde(default = "default_slots")]
    pub slots: u32,
    /// Length of the open-addressing probe sequence per bucket.
    #[serde(default = "default_probes")]
    pub probes: u32,
    /// CAS conflicts tolerated per check before failing closed.
    #[serde(default = "default_cas_retries")]
    pub max_cas_retries: u32,
    #[serde(default)]
    pub buckets: Vec<BucketRule>,
    /// Per-principal bucket for every client whose API key has no own `rate_limit`
    /// (in particular every JWT principal).
    #[serde(default)]
    pub default_per_client: Option<RateLimitSpec>,
}

fn default_true() -> bool {
    true
}
fn default_methods() -> Vec<String> {
    ["tools/call", "resources/read", "prompts/get"].iter().map(|s| s.to_string()).collect()
}
fn default_slots() -> u32 {
    65536
}
fn default_probes() -> u32 {
    8
}
fn default_cas_retries() -> u32 {
    16
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            methods: default_methods(),
            slots: default_slots(),
            probes: default_probes(),
            max_cas_retries: default_cas_retries(),
            buckets: Vec::new(),
            default_per_client: None,
        }
    }
}

pub(crate) fn valid_rule_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

impl RateLimitConfig {
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if self.slots == 0 || self.slots > MAX_SLOTS {
            return Err(ConfigError::new(
                format!("{key}.slots"),
                format!("must be between 1 and {MAX_SLOTS}"),
            ));
        }
        if self.probes == 0 || self.probes > MAX_PROBES {
            return Err(ConfigError::new(
                format!("{key}.probes"),
                format!("must be between 1 and {MAX_PROBES}"),
            ));
        }
        if self.max_cas_retries > MAX_CAS_RETRIES {
            return Err(ConfigError::new(
                format!("{key}.max_cas_retries"),
                format!("must be at most {MAX_CAS_RETRIES}"),
            ));
        }
        for (i, m) in self.methods.iter().enumerate() {
            if m.is_empty() {
                return Err(ConfigError::new(format!("{key}.methods[{i}]"), "must not be empty"));
            }
        }
        if let Some(d) = &self.default_per_client {
            d.validate(&format!("{key}.default_per_client"))?;
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, r) in self.buckets.iter().enumerate() {
            let rk = format!("{key}.buckets[{i}]");
            if !valid_rule_name(&r.name) {
                return Err(ConfigError::new(
                    format!("{rk}.name"),
                    "must be 1-64 characters of A-Z a-z 0-9 _ . -",
                ));
            }
            if !names.insert(r.name.as_str()) {
                return Err(ConfigError::new(format!("{rk}.name"), format!("duplicate bucket `{}`", r.name)));
            }
            for (j, d) in r.per.iter().enumerate() {
                if r.per[..j].contains(d) {
                    return Err(ConfigError::new(format!("{rk}.per[{j}]"), "duplicate dimension"));
                }
            }
            for (field, v) in [("backend", &r.backend), ("tool", &r.tool)] {
                if v.as_deref() == Some("") {
                    return Err(ConfigError::new(
                        format!("{rk}.{field}"),
                        "must not be empty (omit it to match all)",
                    ));
                }
            }
            r.spec().validate(&rk)?;
        }
        Ok(())
    }
}

/// `*`-glob match (the only wildcard; everything else literal), no allocation, no recursion.
pub(crate) fn glob_match(pat: &str, s: &str) -> bool {
    let (p, s) = (pat.as_bytes(), s.as_bytes());
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

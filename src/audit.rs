//! The audit record: what the filter saw and decided for one HTTP exchange.
//!
//! The filter writes each field as Envoy filter state `wasm.<key>` (readable in access logs as
//! `%FILTER_STATE(wasm.<key>:PLAIN)%`), so the access log is the audit trail. The keys below are
//! a stable interface. No field ever holds a secret or argument text: credentials are never
//! recorded, session ids and arguments only as truncated SHA-256 hashes.

use std::fmt::Write as _;

/// Outcome of the filter for one exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    RateLimited,
    InjectionBlock,
    InjectionWarn,
    AuthFail,
    /// Malformed JSON-RPC or a request the filter could not decide (fail closed).
    Invalid,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
            Decision::RateLimited => "ratelimited",
            Decision::InjectionBlock => "injection_block",
            Decision::InjectionWarn => "injection_warn",
            Decision::AuthFail => "auth_fail",
            Decision::Invalid => "invalid",
        }
    }
}

/// Filter-state keys, written as `wasm.<key>`.
pub mod keys {
    pub const DECISION: &str = "mcp_decision";
    pub const RULE: &str = "mcp_rule";
    pub const CLIENT_ID: &str = "mcp_client_id";
    pub const AUTH_METHOD: &str = "mcp_auth_method";
    pub const METHOD: &str = "mcp_method";
    pub const KIND: &str = "mcp_kind";
    pub const BACKEND: &str = "mcp_backend";
    pub const TOOL: &str = "mcp_tool";
    pub const RESOURCE: &str = "mcp_resource";
    pub const PROMPT: &str = "mcp_prompt";
    pub const JSONRPC_ID: &str = "mcp_jsonrpc_id";
    pub const SESSION: &str = "mcp_session";
    pub const ARGS_SHA256: &str = "mcp_args_sha256";
    pub const INJECTION_SCORE: &str = "mcp_injection_score";
    pub const INJECTION_RULES: &str = "mcp_injection_rules";
    pub const RESPONSE_DECISION: &str = "mcp_response_decision";
    pub const RESPONSE_INJECTION_SCORE: &str = "mcp_response_injection_score";
    pub const RESPONSE_INJECTION_RULES: &str = "mcp_response_injection_rules";
    pub const RATELIMIT_BUCKET: &str = "mcp_ratelimit_bucket";
    pub const RATELIMIT_REMAINING: &str = "mcp_ratelimit_remaining";
    pub const LIST_FILTERED: &str = "mcp_list_filtered";
    /// External detector (`security.injection.detector`): its score, labels, or why it did not
    /// count (`no_response`, `status_<code>`, `bad_json`, `bad_score`, `dispatch_failed`).
    pub const DETECTOR_SCORE: &str = "mcp_detector_score";
    pub const DETECTOR_LABELS: &str = "mcp_detector_labels";
    pub const DETECTOR_ERROR: &str = "mcp_detector_error";
    /// Tools of a `tools/list` result whose definition is not the accepted one (comma list).
    pub const PIN_CHANGED: &str = "mcp_pin_changed";
}

/// Accumulates the fields of one exchange; the glue flushes them to filter state.
#[derive(Debug, Default, Clone)]
pub struct AuditRecord {
    fields: Vec<(&'static str, String)>,
}

impl AuditRecord {
    /// Sets (or replaces) a field.
    pub fn set(&mut self, key: &'static str, value: impl Into<String>) {
        let value = value.into();
        match self.fields.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.fields.push((key, value)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
    }

    pub fn decision(&mut self, d: Decision, rule: impl Into<String>) {
        self.set(keys::DECISION, d.as_str());
        self.set(keys::RULE, rule);
    }

    pub fn fields(&self) -> &[(&'static str, String)] {
        &self.fields
    }

    /// Drains the fields written since the last flush.
    pub fn take(&mut self) -> Vec<(&'static str, String)> {
        std::mem::take(&mut self.fields)
    }
}

/// First 16 bytes of SHA-256 as hex: enough to correlate, useless to recover the input.
pub fn short_hash(data: &[u8]) -> String {
    let digest = hmac_sha256::Hash::hash(data);
    let mut out = String::with_capacity(32);
    for b in &digest[..16] {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Score with two decimals, the format used in the log.
pub fn format_score(score: f64) -> String {
    format!("{:.2}", score.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_and_take_drains() {
        let mut r = AuditRecord::default();
        r.decision(Decision::Allow, "filesystem/*");
        r.decision(Decision::Deny, "default_deny");
        assert_eq!(r.get(keys::DECISION), Some("deny"));
        assert_eq!(r.take().len(), 2);
        assert!(r.fields().is_empty());
    }

    #[test]
    fn hash_is_stable_and_short() {
        assert_eq!(short_hash(b"abc"), "ba7816bf8f01cfea414140de5dae2223");
        assert_eq!(format_score(1.7), "1.00");
    }
}

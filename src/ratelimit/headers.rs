//! Response headers describing the most restrictive applicable bucket.
//!
//! On `Allowed` and `Limited` (names lowercase, as Envoy stores them):
//! - `x-ratelimit-limit`: burst size; `x-ratelimit-remaining`: whole tokens left;
//!   `x-ratelimit-reset`: seconds (delta, not epoch) until the bucket is full again.
//! - IETF draft-ietf-httpapi-ratelimit-headers (structured-field form):
//!   `ratelimit-policy: "<bucket>";q=<burst>;w=<secs to refill from empty>` and
//!   `ratelimit: "<bucket>";r=<remaining>;t=<reset secs>`.
//! - `Limited` adds `retry-after: <secs>` (ceil of the time until one token is available).
//!
//! `NotLimited` and `Error` produce no headers.

use super::limiter::RateDecision;

/// sf-string body: printable ASCII, `"` and `\` escaped, anything else replaced by `_`.
fn sf_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars().take(128) {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('_'),
        }
    }
    out.push('"');
    out
}

pub fn rate_limit_headers(d: &RateDecision) -> Vec<(&'static str, String)> {
    let (state, retry) = match d {
        RateDecision::Allowed(s) => (s, None),
        RateDecision::Limited { state, retry_after_secs } => (state, Some(*retry_after_secs)),
        RateDecision::NotLimited | RateDecision::Error(_) => return Vec::new(),
    };
    let name = sf_string(&state.bucket);
    let mut h = vec![
        ("x-ratelimit-limit", state.limit.to_string()),
        ("x-ratelimit-remaining", state.remaining.to_string()),
        ("x-ratelimit-reset", state.reset_secs.to_string()),
        ("ratelimit-policy", format!("{name};q={};w={}", state.limit, state.window_secs)),
        ("ratelimit", format!("{name};r={};t={}", state.remaining, state.reset_secs)),
    ];
    if let Some(r) = retry {
        h.push(("retry-after", r.to_string()));
    }
    h
}

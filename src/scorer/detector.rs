//! External injection detector hook (`security.injection.detector`).
//!
//! The local scorer is cheap and always runs; an operator may also want a heavier classifier
//! (a fine-tuned model behind an HTTP service). After the local verdict of a request, the filter
//! POSTs the strings the local scorer scanned to that service through an Envoy cluster
//! (`dispatch_http_call`), holds the request, and combines the two scores:
//! `score = max(local, remote)`, so the remote classifier can only add evidence, never clear
//! what the local rules flagged. Everything here is host-independent; the glue only dispatches
//! the [`DetectorCall`] and hands the answer (or its absence) to
//! [`Gateway::on_detector_response`].
//!
//! Contract (also in the README): request
//! `{"texts": [..], "direction": "request", "method": "tools/call", "name": "<tool>",
//! "local_score": 0.42, "truncated": false}`, answer `200 {"score": 0..1, "labels": [..]}`.
//! Anything else (no answer within `timeout_ms`, another status, bad JSON, a score outside
//! [0, 1]) is an error and `on_error` decides: `closed` refuses (503), `open` keeps the local
//! verdict and the audit record says why the detector did not count.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

use crate::audit::{self, keys, AuditRecord, Decision};
use crate::config::ConfigError;
use crate::pipeline::{codes, BodyVerdict, Gateway, HeaderOps, LocalReply, RequestInjection, ResponsePlan};
use crate::scorer::Action;

/// Rule id added to the matched rules when the remote score reaches the warn threshold.
pub const RULE_ID: &str = "EXT-DETECTOR";
/// Answers larger than this are not parsed (a score and a few labels fit in far less).
const MAX_ANSWER_BYTES: usize = 64 * 1024;
const MAX_LABELS: usize = 8;
const MAX_LABEL_LEN: usize = 48;
/// Headers the filter sets itself (or Envoy owns); configuring them would be a mistake.
const RESERVED_HEADERS: [&str; 5] =
    ["content-type", "content-length", "host", "transfer-encoding", "connection"];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Refuse the request (503): a detector the operator relies on is not silently skipped.
    #[default]
    Closed,
    /// Decide on the local score alone; the audit record names the detector error.
    Open,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Requests,
    /// Accepted by the parser so the error names the key; not implemented (see `validate`).
    Responses,
}

#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// Envoy cluster of the classifier (required).
    pub cluster: String,
    pub path: String,
    /// `:authority` of the call; the cluster name when absent.
    pub authority: Option<String>,
    pub timeout_ms: u64,
    pub on_error: OnError,
    /// Extra request headers (e.g. the classifier's API key). Never logged.
    pub headers: BTreeMap<String, String>,
    /// Call only when the local score is at least this (0: always).
    #[serde(deserialize_with = "crate::config::lenient_f64")]
    pub min_local_score: f64,
    pub directions: Vec<Direction>,
    /// Bytes of text sent per call in total (further text is cut, `truncated: true`).
    pub max_text_bytes: usize,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            cluster: String::new(),
            path: "/v1/score".into(),
            authority: None,
            timeout_ms: 200,
            on_error: OnError::Closed,
            headers: BTreeMap::new(),
            min_local_score: 0.0,
            directions: vec![Direction::Requests],
            max_text_bytes: 64 * 1024,
        }
    }
}

/// Header values are secrets (API keys): `{:?}` of a configuration must not print them.
impl fmt::Debug for DetectorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DetectorConfig")
            .field("cluster", &self.cluster)
            .field("path", &self.path)
            .field("authority", &self.authority)
            .field("timeout_ms", &self.timeout_ms)
            .field("on_error", &self.on_error)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("min_local_score", &self.min_local_score)
            .field("directions", &self.directions)
            .field("max_text_bytes", &self.max_text_bytes)
            .finish()
    }
}

fn visible_ascii(s: &str) -> bool {
    s.bytes().all(|b| (0x21..0x7f).contains(&b))
}

impl DetectorConfig {
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let err = |k: &str, m: &str| Err(ConfigError::new(format!("{key}.{k}"), m));
        if self.cluster.is_empty() || !visible_ascii(&self.cluster) {
            return err("cluster", "must name an Envoy cluster (required)");
        }
        if !self.path.starts_with('/') || !visible_ascii(&self.path) {
            return err("path", "must be an absolute path such as /v1/score");
        }
        if self.authority.as_deref().is_some_and(|a| a.is_empty() || !visible_ascii(a)) {
            return err("authority", "must be a non-empty host name");
        }
        if !(1..=10_000).contains(&self.timeout_ms) {
            return err("timeout_ms", "must be in 1..=10000");
        }
        for (name, value) in &self.headers {
            let k = format!("headers.{name}");
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
            if !token {
                return err(&k, "header names must be lower-case tokens (a-z, 0-9, -, _)");
            }
            if RESERVED_HEADERS.contains(&name.as_str()) {
                return err(&k, "is set by the filter or Envoy");
            }
            if !value.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)) {
                return err(&k, "value must be printable ASCII");
            }
        }
        if !(self.min_local_score.is_finite() && (0.0..=1.0).contains(&self.min_local_score)) {
            return err("min_local_score", "must be a number in [0, 1]");
        }
        if self.directions.is_empty() {
            return err("directions", "must list at least `requests`");
        }
        if let Some(i) = self.directions.iter().position(|d| *d == Direction::Responses) {
            return err(&format!("directions[{i}]"), "`responses` is not supported yet (requests only)");
        }
        if !(64..=1024 * 1024).contains(&self.max_text_bytes) {
            return err("max_text_bytes", "must be in 64..=1048576");
        }
        Ok(())
    }

    pub fn covers_requests(&self) -> bool {
        self.directions.contains(&Direction::Requests)
    }
}

/// Collects the strings the local scorer scans, up to a byte budget.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TextSink {
    pub texts: Vec<String>,
    left: usize,
    pub truncated: bool,
}

impl TextSink {
    pub fn new(max_bytes: usize) -> Self {
        Self { texts: Vec::new(), left: max_bytes, truncated: false }
    }

    pub fn push(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        if s.len() <= self.left {
            self.left -= s.len();
            self.texts.push(s.to_string());
            return;
        }
        self.truncated = true;
        let mut end = self.left;
        while end > 0 && !s.is_char_boundary(end) {
            end -= 1;
        }
        if let Some(head) = s.get(..end).filter(|h| !h.is_empty()) {
            self.texts.push(head.to_string());
        }
        self.left = 0;
    }
}

/// What one request tells the detector, gathered while its messages are scored locally.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probe {
    pub sink: TextSink,
    /// Index of the message being scored (set by the pipeline's loop).
    pub at: usize,
    /// The first message that contributed text: method, name, index (replies carry its id).
    pub first: Option<(String, Option<String>, usize)>,
    pub local_score: f64,
    pub local_rules: Vec<String>,
}

impl Probe {
    pub fn new(max_bytes: usize) -> Self {
        Self { sink: TextSink::new(max_bytes), ..Self::default() }
    }

    /// Records a message's local verdict (its texts are already in the sink).
    pub fn note(&mut self, method: &str, name: Option<&str>, texts_before: usize, verdict: &super::Verdict) {
        if self.first.is_none() && self.sink.texts.len() > texts_before {
            self.first = Some((method.to_string(), name.map(str::to_string), self.at));
        }
        self.local_score = self.local_score.max(verdict.score);
        for r in &verdict.rules {
            if !self.local_rules.contains(r) {
                self.local_rules.push(r.clone());
            }
        }
    }
}

/// An HTTP call for the glue to dispatch.
#[derive(Clone, PartialEq)]
pub struct DetectorCall {
    pub cluster: String,
    /// `:method`, `:path`, `:authority`, content-type and the configured headers.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout_ms: u64,
}

impl fmt::Debug for DetectorCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Neither header values (secrets) nor the body (user text).
        f.debug_struct("DetectorCall")
            .field("cluster", &self.cluster)
            .field("body_bytes", &self.body.len())
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// Builds the call for a probe; `None` when it has no text or the local score is below
/// `min_local_score`.
pub fn build_call(cfg: &DetectorConfig, probe: &Probe, direction: &str) -> Option<DetectorCall> {
    let (method, name, _) = probe.first.as_ref()?;
    if probe.local_score < cfg.min_local_score {
        return None;
    }
    let body = serde_json::json!({
        "texts": probe.sink.texts,
        "direction": direction,
        "method": method,
        "name": name,
        "local_score": (probe.local_score * 1000.0).round() / 1000.0,
        "truncated": probe.sink.truncated,
    });
    let mut headers = vec![
        (":method".to_string(), "POST".to_string()),
        (":path".to_string(), cfg.path.clone()),
        (":authority".to_string(), cfg.authority.clone().unwrap_or_else(|| cfg.cluster.clone())),
        ("content-type".to_string(), "application/json".to_string()),
    ];
    headers.extend(cfg.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    Some(DetectorCall {
        cluster: cfg.cluster.clone(),
        headers,
        body: body.to_string().into_bytes(),
        timeout_ms: cfg.timeout_ms,
    })
}

/// The classifier's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Remote {
    pub score: f64,
    /// Sanitised (short `[A-Za-z0-9_.:/-]` tokens only): they end up in the access log.
    pub labels: Vec<String>,
}

/// Why the detector did not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectorError {
    /// The call could not be started (unknown cluster, host refusal).
    Dispatch,
    /// No `:status` at all (a reset). Envoy 1.40 answers a timed-out call with its own 504 and
    /// an unreachable cluster with 503, so those arrive as `Status`.
    NoResponse,
    Status(u16),
    BadJson,
    BadScore,
}

impl fmt::Display for DetectorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DetectorError::Dispatch => f.write_str("dispatch_failed"),
            DetectorError::NoResponse => f.write_str("no_response"),
            DetectorError::Status(s) => write!(f, "status_{s}"),
            DetectorError::BadJson => f.write_str("bad_json"),
            DetectorError::BadScore => f.write_str("bad_score"),
        }
    }
}

/// Parses the answer; `status` 0 means there was none.
pub fn parse_answer(status: u16, body: Option<&[u8]>) -> Result<Remote, DetectorError> {
    match status {
        0 => return Err(DetectorError::NoResponse),
        200 => {}
        s => return Err(DetectorError::Status(s)),
    }
    let body = body.unwrap_or_default();
    if body.len() > MAX_ANSWER_BYTES {
        return Err(DetectorError::BadJson);
    }
    let v: Value = serde_json::from_slice(body).map_err(|_| DetectorError::BadJson)?;
    let Some(obj) = v.as_object() else { return Err(DetectorError::BadJson) };
    let score = obj.get("score").and_then(Value::as_f64).ok_or(DetectorError::BadScore)?;
    if !(0.0..=1.0).contains(&score) {
        return Err(DetectorError::BadScore);
    }
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= MAX_LABEL_LEN
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'/' | b'-'))
    };
    let labels = match obj.get("labels") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => {
            a.iter().filter_map(Value::as_str).filter(label_ok).take(MAX_LABELS).map(str::to_string).collect()
        }
        Some(_) => return Err(DetectorError::BadJson),
    };
    Ok(Remote { score, labels })
}

/// `max(local, remote)`; [`RULE_ID`] joins the rules when the remote score reaches `warn`.
pub fn combine(local_score: f64, local_rules: &[String], remote: &Remote, warn: f64) -> (f64, Vec<String>) {
    let mut rules = local_rules.to_vec();
    if remote.score >= warn && !rules.iter().any(|r| r == RULE_ID) {
        rules.push(RULE_ID.to_string());
    }
    (local_score.max(remote.score), rules)
}

/// A request held until the detector answers: everything needed to finish its decision.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectPending {
    pub call: DetectorCall,
    pub plan: ResponsePlan,
    pub ops: HeaderOps,
    pub local_score: f64,
    pub local_rules: Vec<String>,
    /// Prepared while the parsed body was at hand (ids, batch shape).
    pub block_reply: LocalReply,
    pub error_reply: LocalReply,
}

impl Gateway {
    /// A fresh probe when requests go to a detector, else `None` (no text is collected).
    pub(crate) fn request_probe(&self) -> Option<Probe> {
        let inj = &self.config.security.injection;
        let d = inj.detector.as_ref().filter(|d| d.covers_requests())?;
        (inj.enabled && inj.request_action != Action::Off).then(|| Probe::new(d.max_text_bytes))
    }

    /// Finishes a request held for the detector: the combined verdict, or `on_error`.
    pub fn on_detector_response(
        &self,
        pending: &DetectPending,
        answer: Result<Remote, DetectorError>,
        audit: &mut AuditRecord,
    ) -> BodyVerdict {
        let inj = &self.config.security.injection;
        let forward = || BodyVerdict::Forward { plan: pending.plan.clone(), ops: pending.ops.clone() };
        let remote = match answer {
            Ok(r) => r,
            Err(e) => {
                audit.set(keys::DETECTOR_ERROR, e.to_string());
                let open = inj.detector.as_ref().is_some_and(|d| d.on_error == OnError::Open);
                if open {
                    return forward();
                }
                audit.decision(Decision::Deny, "detector_error");
                return BodyVerdict::Reply(pending.error_reply.clone());
            }
        };
        audit.set(keys::DETECTOR_SCORE, audit::format_score(remote.score));
        if !remote.labels.is_empty() {
            audit.set(keys::DETECTOR_LABELS, remote.labels.join(","));
        }
        let (score, rules) = combine(pending.local_score, &pending.local_rules, &remote, inj.warn_from());
        match self.judge_request_injection(score, &rules, audit) {
            RequestInjection::Block => BodyVerdict::Reply(pending.block_reply.clone()),
            RequestInjection::Warn => {
                audit.set(keys::DECISION, Decision::InjectionWarn.as_str());
                forward()
            }
            RequestInjection::Clean => forward(),
        }
    }

    /// The verdict of a body whose messages all passed locally: held for the detector when the
    /// probe calls for it, else forwarded.
    pub(crate) fn detect_or_forward(
        &self,
        probe: Option<Probe>,
        replies: impl FnOnce(usize) -> (LocalReply, LocalReply),
        plan: ResponsePlan,
        ops: HeaderOps,
    ) -> BodyVerdict {
        let cfg = self.config.security.injection.detector.as_ref();
        let call = probe.as_ref().zip(cfg).and_then(|(p, c)| build_call(c, p, "request"));
        let (Some(call), Some(p)) = (call, probe) else { return BodyVerdict::Forward { plan, ops } };
        let at = p.first.as_ref().map_or(0, |f| f.2);
        let (block_reply, error_reply) = replies(at);
        BodyVerdict::Detect(Box::new(DetectPending {
            call,
            plan,
            ops,
            local_score: p.local_score,
            local_rules: p.local_rules,
            block_reply,
            error_reply,
        }))
    }
}

/// The two refusals a held request may end in, for the message at `at`.
pub(crate) const BLOCK_MESSAGE: &str = "request blocked: possible prompt injection in arguments";
pub(crate) const ERROR_MESSAGE: &str = "injection detector unavailable";
pub(crate) const ERROR_STATUS: u32 = 503;
pub(crate) const ERROR_CODE: i64 = codes::INTERNAL;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests;

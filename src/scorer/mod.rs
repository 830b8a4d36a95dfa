//! Prompt-injection and tool-poisoning scoring.
//!
//! # Pipeline
//! 1. **Bounding.** Each string is scanned up to `max_scan_bytes` (default 16 KiB): longer
//!    strings are scanned as their first and last `max_scan_bytes / 2` bytes (injections tend to
//!    sit at the start or the end of a document). A whole message (`score_value`,
//!    `score_request`, `score_response`) scans at most `max_message_bytes` (default 256 KiB) in
//!    total; strings after the budget are skipped and the verdict says `truncated`. Nesting
//!    deeper than 64 levels is not walked.
//! 2. **Normalisation** (`normalize.rs`): compatibility folding (fullwidth, mathematical
//!    alphanumerics, circled/letterlike forms, Latin accents), Cyrillic/Greek homoglyphs inside
//!    mixed-script words, zero-width / bidi / tag characters removed (and counted; text
//!    smuggled in tag characters is decoded and scanned), lower case, whitespace and
//!    punctuation splitting (snake_case too), leetspeak in mixed letter/digit words, spaced-out
//!    letters re-joined. Encoded segments (base64, hex, `%XX`, HTML entities, `\uXXXX`/`\xNN`)
//!    that decode to text are scanned too (2 levels, at most 4 segments per string).
//! 3. **Rules** (`rules.rs`): weighted token-phrase and literal rules with stable ids
//!    (`PI-<CAT>-NNN`), plus detectors computed from the normalisation signals.
//! 4. **Model** (`model.rs`): hashed logistic regression over 48-token windows (words, word
//!    pairs, words with their punctuation, five-letter stems, and concept classes from
//!    `concepts.rs`), maximum over the windows of all strings; the built-in rules that matched
//!    are inputs with learned non-negative weights. It appears as the pseudo-rule `PI-ML-001`
//!    (disable it for rules only, or scale it with `rule_weights`). Trained by
//!    `tests/corpus/train.py` (`mcp-scan --train`, `train.rs`).
//!
//! # Score
//! `rule_score = 1 − Π(1 − w_i)` over the distinct matched rules (noisy-OR of the rule weights:
//! bounded in [0, 1], never decreases when a rule is added or a weight raised). Without the
//! model (`PI-ML-001` disabled) `score = rule_score`. With it,
//! `p = σ(b + max_window Σ w·features + Σ_matched a_rule)`, every `a_rule ≥ 0` learned with the
//! n-gram weights, so a matching rule can only raise `p` while the n-grams discount rule hits in
//! text that only *mentions* attacks (security writing, code, command references). Custom rules
//! and built-in rules whose weight the configuration sets are scored beside the model, by
//! noisy-OR: `score = 1 − (1 − w_ml·p)·Π(1 − w_c)`, `w_ml` = `rule_weights["PI-ML-001"]`
//! (default 1). So the score stays in [0, 1] and never shrinks when a rule is added. Matches
//! across all strings of one message are pooled (each rule counts once) and the model takes the
//! maximum window over all strings.

mod concepts;
pub mod detector;
mod model;
mod normalize;
mod rules;
mod train;

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::config::ConfigError;
use concepts::Concepts;
use normalize::{decode_segments, floor_boundary, fnv, normalize, Normalized};
use rules::{Matcher, RULES};

pub use rules::CATEGORIES;
use train::TrainText;
pub use train::{train as train_model, TrainDoc, TrainParams};

/// Default thresholds, from the leave-one-writer-out run of `tests/corpus/train.py --cv`: block
/// where about 1 % of benign rows (security writing apart) score above it, warn near 2.5 %.
pub const DEFAULT_BLOCK_THRESHOLD: f64 = 0.75;
pub const DEFAULT_WARN_THRESHOLD: f64 = 0.4;
const MAX_RULES_IN_VERDICT: usize = 16;
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Reject (request side: JSON-RPC error; response side: see `response_mode`).
    #[default]
    Block,
    /// Let it through, log/audit and add the verdict to metadata.
    Warn,
    /// Do not scan.
    Off,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    /// Replace the whole response with a JSON-RPC error.
    Error,
    /// Replace the offending text items with a short notice; the response stays valid.
    #[default]
    Redact,
}

/// A user rule. `pattern` is one of:
/// * `re:<regex>`: a `regex-lite` regular expression, case-insensitive, applied to the
///   normalised text (lower case, folded, whitespace collapsed). Slow: use sparingly.
/// * `lit:<a>¦<b>`: case-insensitive literal substrings of the normalised text.
/// * anything else: a case-insensitive phrase of words, matched on normalised tokens (so it also
///   matches homoglyph / leetspeak / zero-width variants); the phrase syntax of the built-in
///   rules (`a|b ~2 c*`) is accepted too.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomRule {
    pub id: String,
    #[serde(default = "default_custom_category")]
    pub category: String,
    pub pattern: String,
    #[serde(default = "default_custom_weight", deserialize_with = "crate::config::lenient_f64")]
    pub weight: f64,
}

fn default_custom_category() -> String {
    "instruction_override".to_string()
}
fn default_custom_weight() -> f64 {
    0.6
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InjectionConfig {
    pub enabled: bool,
    /// score >= block_threshold: the configured action applies.
    #[serde(deserialize_with = "crate::config::lenient_f64")]
    pub block_threshold: f64,
    /// score >= warn_threshold (and below block): warn only.
    #[serde(deserialize_with = "crate::config::lenient_f64")]
    pub warn_threshold: f64,
    pub request_action: Action,
    /// Default `block` with `response_mode: redact`: indirect injection through tool output is
    /// the main MCP attack path, so warn-only would protect nothing by default; redacting only
    /// the offending content items keeps a false positive cheap (the agent still gets a valid
    /// result that says what was withheld).
    pub response_action: Action,
    pub response_mode: ResponseMode,
    /// Scan tools/list, prompts/list, resources/list descriptions (tool poisoning).
    pub scan_tool_descriptions: bool,
    pub disabled_rules: Vec<String>,
    /// Rule id -> weight in [0, 1] (replaces the built-in weight; `PI-ML-001` scales the model).
    #[serde(deserialize_with = "crate::config::lenient_f64_map")]
    pub rule_weights: BTreeMap<String, f64>,
    pub custom_rules: Vec<CustomRule>,
    /// Bytes scanned per string (head + tail halves beyond it).
    pub max_scan_bytes: usize,
    /// Bytes scanned per message in total.
    pub max_message_bytes: usize,
    /// An external classifier asked after the local verdict (`detector.rs`).
    pub detector: Option<detector::DetectorConfig>,
}

impl Default for InjectionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            block_threshold: DEFAULT_BLOCK_THRESHOLD,
            warn_threshold: DEFAULT_WARN_THRESHOLD,
            request_action: Action::Block,
            response_action: Action::Block,
            response_mode: ResponseMode::Redact,
            scan_tool_descriptions: true,
            disabled_rules: Vec::new(),
            rule_weights: BTreeMap::new(),
            custom_rules: Vec::new(),
            max_scan_bytes: 16 * 1024,
            max_message_bytes: 256 * 1024,
            detector: None,
        }
    }
}

fn known_id(id: &str, custom: &[CustomRule]) -> bool {
    id == rules::ML_ID || RULES.iter().any(|r| r.id == id) || custom.iter().any(|c| c.id == id)
}

impl InjectionConfig {
    /// The score from which a warning is recorded (`warn_threshold`, never above the block
    /// threshold).
    pub fn warn_from(&self) -> f64 {
        self.warn_threshold.min(self.block_threshold)
    }

    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let unit = |v: f64| v.is_finite() && (0.0..=1.0).contains(&v);
        if !unit(self.block_threshold) {
            return Err(ConfigError::new(format!("{key}.block_threshold"), "must be a number in [0, 1]"));
        }
        if !unit(self.warn_threshold) {
            return Err(ConfigError::new(format!("{key}.warn_threshold"), "must be a number in [0, 1]"));
        }
        if self.warn_threshold > self.block_threshold {
            return Err(ConfigError::new(format!("{key}.warn_threshold"), "must not exceed block_threshold"));
        }
        if self.max_scan_bytes < 64 {
            return Err(ConfigError::new(format!("{key}.max_scan_bytes"), "must be at least 64"));
        }
        if self.max_message_bytes < self.max_scan_bytes {
            return Err(ConfigError::new(
                format!("{key}.max_message_bytes"),
                "must be at least max_scan_bytes",
            ));
        }
        for (i, c) in self.custom_rules.iter().enumerate() {
            let k = format!("{key}.custom_rules[{i}]");
            if c.id.trim().is_empty() {
                return Err(ConfigError::new(format!("{k}.id"), "must not be empty"));
            }
            if c.id == rules::ML_ID || RULES.iter().any(|r| r.id == c.id) {
                return Err(ConfigError::new(format!("{k}.id"), format!("`{}` is a built-in rule id", c.id)));
            }
            if self.custom_rules[..i].iter().any(|o| o.id == c.id) {
                return Err(ConfigError::new(format!("{k}.id"), format!("duplicate rule id `{}`", c.id)));
            }
            if !CATEGORIES.contains(&c.category.as_str()) {
                return Err(ConfigError::new(
                    format!("{k}.category"),
                    format!("unknown category `{}` (one of: {})", c.category, CATEGORIES.join(", ")),
                ));
            }
            if !unit(c.weight) {
                return Err(ConfigError::new(format!("{k}.weight"), "must be a number in [0, 1]"));
            }
            let mut m = Matcher::new();
            m.add_pattern(&custom_pattern(&c.pattern), 0)
                .map_err(|e| ConfigError::new(format!("{k}.pattern"), e))?;
        }
        for (i, id) in self.disabled_rules.iter().enumerate() {
            if !known_id(id, &self.custom_rules) {
                return Err(ConfigError::new(
                    format!("{key}.disabled_rules[{i}]"),
                    format!("unknown rule id `{id}`"),
                ));
            }
        }
        if let Some(d) = &self.detector {
            d.validate(&format!("{key}.detector"))?;
        }
        for (id, w) in &self.rule_weights {
            if !known_id(id, &self.custom_rules) {
                return Err(ConfigError::new(
                    format!("{key}.rule_weights.{id}"),
                    format!("unknown rule id `{id}`"),
                ));
            }
            if !unit(*w) {
                return Err(ConfigError::new(
                    format!("{key}.rule_weights.{id}"),
                    "must be a number in [0, 1]",
                ));
            }
        }
        Ok(())
    }
}

/// A plain phrase of words becomes a token phrase; text with other characters a literal.
fn custom_pattern(p: &str) -> String {
    let p = p.trim();
    if p.starts_with("re:") || p.starts_with("lit:") {
        return p.to_string();
    }
    let dsl = p.chars().all(|c| c.is_alphanumeric() || c.is_whitespace() || matches!(c, '|' | '~' | '*'));
    if dsl {
        p.to_lowercase()
    } else {
        format!("lit:{}", p.to_lowercase())
    }
}

/// The result of scoring.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// Combined score in [0, 1].
    pub score: f64,
    /// Noisy-OR of the matched rule weights.
    pub rule_score: f64,
    /// Model probability (after its weight); 0 when the model is disabled.
    pub model_score: f64,
    /// Matched rule ids, sorted, deduplicated, at most 16 (`PI-ML-001` when the model alone
    /// is >= 0.5).
    pub rules: Vec<String>,
    pub categories: Vec<&'static str>,
    /// Some input was not scanned (per-message budget exhausted or nesting too deep).
    pub truncated: bool,
}

impl Verdict {
    pub fn flagged(&self, threshold: f64) -> bool {
        self.score >= threshold
    }
}

/// What the filter should do with a scored message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Warn,
    Block,
}

struct RuleMeta {
    id: String,
    cat: &'static str,
    /// Weight in the noisy-OR rule score.
    w: f64,
    /// Learned weight in the model's logit (built-in rules the model was trained with).
    model_w: f32,
    /// Scored by the noisy-OR beside the model rather than inside it: custom rules, and
    /// built-in rules whose weight the configuration sets.
    by_config: bool,
}

#[derive(Default)]
struct Acc {
    hits: Vec<u16>,
    logit: Option<f32>,
    budget: usize,
    truncated: bool,
    /// The raw strings scanned, when a detector call will need them.
    texts: Option<detector::TextSink>,
    /// What the model saw of each piece, when building a training document.
    train: Option<Vec<TrainText>>,
}

pub struct Scorer {
    cfg: InjectionConfig,
    matcher: Matcher,
    rules: Vec<RuleMeta>,
    det: Dets,
    model: Option<model::Model>,
    concepts: Concepts,
    ml_weight: f64,
}

#[derive(Default)]
struct Dets {
    zw: Option<u16>,
    tag: Option<u16>,
    mixed: Option<u16>,
    spaced: Option<u16>,
    encoded: Option<u16>,
    leet: Option<u16>,
    img: Option<u16>,
    comment: Option<u16>,
}

impl Scorer {
    pub fn new(cfg: &InjectionConfig) -> Result<Scorer, ConfigError> {
        Self::build(cfg, model::Model::load())
    }

    /// A scorer using the model in `blob` (a `model.bin` written by `mcp-scan --train`) instead
    /// of the compiled-in one: for evaluating a model before it is built in.
    pub fn with_model_blob(cfg: &InjectionConfig, blob: Vec<u8>) -> Result<Scorer, ConfigError> {
        let m = model::Model::from_bytes(std::borrow::Cow::Owned(blob))
            .ok_or_else(|| ConfigError::new("model", "not a valid model.bin"))?;
        Self::build(cfg, Some(m))
    }

    fn build(cfg: &InjectionConfig, model: Option<model::Model>) -> Result<Scorer, ConfigError> {
        cfg.validate("security.injection")?;
        let mut s = Scorer {
            cfg: cfg.clone(),
            matcher: Matcher::new(),
            rules: Vec::new(),
            det: Dets::default(),
            model: None,
            concepts: Concepts::new(),
            ml_weight: 1.0,
        };
        let learned = |id: &str| {
            model.as_ref().and_then(|m| m.rules.iter().find(|(r, _)| r == id)).map_or(0.0, |(_, w)| *w)
        };
        let disabled = |id: &str| cfg.disabled_rules.iter().any(|d| d == id);
        for r in RULES {
            if disabled(r.id) {
                continue;
            }
            let idx = s.rules.len() as u16;
            let configured = cfg.rule_weights.get(r.id).copied();
            s.rules.push(RuleMeta {
                id: r.id.to_string(),
                cat: r.cat,
                w: configured.unwrap_or(r.w),
                model_w: learned(r.id),
                by_config: configured.is_some(),
            });
            for p in r.pats {
                s.matcher.add_pattern(p, idx).map_err(|e| {
                    ConfigError::new("security.injection", format!("built-in rule {}: {e}", r.id))
                })?;
            }
            let slot = match r.id {
                rules::DET_ZW => &mut s.det.zw,
                rules::DET_TAG => &mut s.det.tag,
                rules::DET_MIXED => &mut s.det.mixed,
                rules::DET_SPACED => &mut s.det.spaced,
                rules::DET_ENCODED => &mut s.det.encoded,
                rules::DET_LEET => &mut s.det.leet,
                rules::DET_IMG => &mut s.det.img,
                rules::DET_COMMENT => &mut s.det.comment,
                _ => continue,
            };
            *slot = Some(idx);
        }
        for (i, c) in cfg.custom_rules.iter().enumerate() {
            if disabled(&c.id) {
                continue;
            }
            let idx = s.rules.len() as u16;
            let w = cfg.rule_weights.get(&c.id).copied().unwrap_or(c.weight);
            let cat = CATEGORIES.iter().copied().find(|k| *k == c.category).unwrap_or("instruction_override");
            s.rules.push(RuleMeta { id: c.id.clone(), cat, w, model_w: 0.0, by_config: true });
            s.matcher
                .add_pattern(&custom_pattern(&c.pattern), idx)
                .map_err(|e| ConfigError::new(format!("security.injection.custom_rules[{i}].pattern"), e))?;
        }
        if !disabled(rules::ML_ID) {
            s.model = model;
            s.ml_weight = cfg.rule_weights.get(rules::ML_ID).copied().unwrap_or(1.0);
        }
        Ok(s)
    }

    pub fn config(&self) -> &InjectionConfig {
        &self.cfg
    }

    /// Whether a model is compiled in and enabled.
    pub fn has_model(&self) -> bool {
        self.model.is_some()
    }

    /// Ids of all active rules (built-in and custom), in the order `train_doc` numbers them.
    pub fn rule_ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.id.as_str())
    }

    /// Every active rule's id and noisy-OR weight, in the order `train_doc` numbers them.
    pub fn rule_priors(&self) -> impl Iterator<Item = (&str, f64)> {
        self.rules.iter().map(|r| (r.id.as_str(), r.w))
    }

    /// Whether rule `h` is one the model learns a weight for (built-in, weight not configured).
    fn learnable(&self, h: u16) -> bool {
        self.rules.get(usize::from(h)).is_some_and(|r| !r.by_config)
    }

    fn acc(&self) -> Acc {
        Acc { budget: self.cfg.max_message_bytes, ..Acc::default() }
    }

    pub fn score_text(&self, text: &str) -> Verdict {
        let mut acc = self.acc();
        self.scan_str(text, &mut acc);
        self.finish(acc)
    }

    /// Every string (and object key) inside a JSON value, e.g. tools/call `arguments`.
    pub fn score_value(&self, v: &Value) -> Verdict {
        let mut acc = self.acc();
        self.walk(v, &mut acc, 0);
        self.finish(acc)
    }

    /// Request side: tools/call and prompts/get `arguments`, sampling/createMessage messages
    /// and systemPrompt, completion/complete `argument.value`. Other methods score 0.
    pub fn score_request(&self, method: &str, params: &Value) -> Verdict {
        let mut acc = self.acc();
        self.request_acc(method, params, &mut acc);
        self.finish(acc)
    }

    /// [`Self::score_request`], also handing every string it scanned (as scanned: long strings
    /// as head and tail) to `sink`, for the external detector.
    pub fn score_request_collecting(
        &self,
        method: &str,
        params: &Value,
        sink: detector::TextSink,
    ) -> (Verdict, detector::TextSink) {
        let mut acc = Acc { texts: Some(sink), ..self.acc() };
        self.request_acc(method, params, &mut acc);
        let sink = acc.texts.take().unwrap_or_default();
        (self.finish(acc), sink)
    }

    fn request_acc(&self, method: &str, params: &Value, acc: &mut Acc) {
        match method {
            "tools/call" | "prompts/get" => {
                if let Some(a) = params.get("arguments") {
                    self.walk(a, acc, 0);
                }
            }
            "sampling/createMessage" => {
                if let Some(Value::Array(ms)) = params.get("messages") {
                    for m in ms {
                        if let Some(c) = m.get("content") {
                            self.content(c, acc);
                        }
                    }
                }
                if let Some(Value::String(s)) = params.get("systemPrompt") {
                    self.scan_str(s, acc);
                }
            }
            "completion/complete" => {
                if let Some(Value::String(s)) = params.get("argument").and_then(|a| a.get("value")) {
                    self.scan_str(s, acc);
                }
            }
            _ => {}
        }
    }

    /// Response side: tool results (`content[].text`, embedded resources, `structuredContent`),
    /// resources/read `contents[].text`, prompts/get messages, sampling results and, when
    /// `scan_tool_descriptions` is on, tools/list, prompts/list, resources/list and
    /// resources/templates/list descriptions (including everything inside `inputSchema` /
    /// `outputSchema`, where poisoned parameter descriptions hide).
    pub fn score_response(&self, method: &str, result: &Value) -> Verdict {
        let mut acc = self.acc();
        match method {
            "tools/call" => {
                if let Some(c) = result.get("content") {
                    self.content(c, &mut acc);
                }
                if let Some(sc) = result.get("structuredContent") {
                    self.walk(sc, &mut acc, 0);
                }
            }
            "resources/read" => {
                if let Some(Value::Array(cs)) = result.get("contents") {
                    for c in cs {
                        if let Some(Value::String(s)) = c.get("text") {
                            self.scan_str(s, &mut acc);
                        }
                    }
                }
            }
            "prompts/get" => {
                if let Some(Value::String(s)) = result.get("description") {
                    self.scan_str(s, &mut acc);
                }
                if let Some(Value::Array(ms)) = result.get("messages") {
                    for m in ms {
                        if let Some(c) = m.get("content") {
                            self.content(c, &mut acc);
                        }
                    }
                }
            }
            "sampling/createMessage" => {
                if let Some(c) = result.get("content") {
                    self.content(c, &mut acc);
                }
            }
            "tools/list" | "prompts/list" | "resources/list" | "resources/templates/list"
                if self.cfg.scan_tool_descriptions =>
            {
                let key = match method {
                    "tools/list" => "tools",
                    "prompts/list" => "prompts",
                    "resources/list" => "resources",
                    _ => "resourceTemplates",
                };
                if let Some(Value::Array(items)) = result.get(key) {
                    for it in items {
                        for f in ["description", "title"] {
                            if let Some(Value::String(s)) = it.get(f) {
                                self.scan_str(s, &mut acc);
                            }
                        }
                        for f in ["inputSchema", "outputSchema", "arguments", "annotations"] {
                            if let Some(v) = it.get(f) {
                                self.walk(v, &mut acc, 0);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        self.finish(acc)
    }

    /// Allow / warn / block for a verdict on the request (`response == false`) or response side.
    pub fn decide(&self, v: &Verdict, response: bool) -> Decision {
        let action = if response { self.cfg.response_action } else { self.cfg.request_action };
        if !self.cfg.enabled || action == Action::Off {
            return Decision::Allow;
        }
        if v.score >= self.cfg.block_threshold {
            if action == Action::Block {
                Decision::Block
            } else {
                Decision::Warn
            }
        } else if v.score >= self.cfg.warn_threshold {
            Decision::Warn
        } else {
            Decision::Allow
        }
    }

    /// MCP content: a string, a content block, or an array of blocks.
    fn content(&self, c: &Value, acc: &mut Acc) {
        match c {
            Value::String(s) => self.scan_str(s, acc),
            Value::Array(items) => {
                for it in items {
                    self.content(it, acc);
                }
            }
            Value::Object(o) => {
                if let Some(Value::String(s)) = o.get("text") {
                    self.scan_str(s, acc);
                }
                if let Some(r) = o.get("resource") {
                    if let Some(Value::String(s)) = r.get("text") {
                        self.scan_str(s, acc);
                    }
                }
                for f in ["description", "title", "name"] {
                    if let Some(Value::String(s)) = o.get(f) {
                        if o.get("type").and_then(Value::as_str) == Some("resource_link") {
                            self.scan_str(s, acc);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn walk(&self, v: &Value, acc: &mut Acc, depth: usize) {
        if depth > MAX_DEPTH {
            acc.truncated = true;
            return;
        }
        match v {
            Value::String(s) => self.scan_str(s, acc),
            Value::Array(a) => {
                for x in a {
                    if acc.budget == 0 {
                        acc.truncated = true;
                        return;
                    }
                    self.walk(x, acc, depth + 1);
                }
            }
            Value::Object(o) => {
                for (k, x) in o {
                    if acc.budget == 0 {
                        acc.truncated = true;
                        return;
                    }
                    if k.len() >= 12 {
                        self.scan_str(k, acc);
                    }
                    self.walk(x, acc, depth + 1);
                }
            }
            _ => {}
        }
    }

    fn scan_str(&self, s: &str, acc: &mut Acc) {
        if !self.cfg.enabled || s.len() < 2 {
            return;
        }
        if acc.budget == 0 {
            acc.truncated = true;
            return;
        }
        let cap = self.cfg.max_scan_bytes.min(acc.budget);
        if s.len() <= cap {
            acc.budget -= s.len();
            if let Some(t) = &mut acc.texts {
                t.push(s);
            }
            self.scan_piece(s, acc, 0);
        } else {
            acc.truncated |= cap < self.cfg.max_scan_bytes;
            let half = cap / 2;
            let head = floor_boundary(s, half);
            let mut tail = s.len() - half;
            while tail < s.len() && !s.is_char_boundary(tail) {
                tail += 1;
            }
            acc.budget -= head + (s.len() - tail);
            let (head, tail) = (s.get(..head).unwrap_or(""), s.get(tail..).unwrap_or(""));
            if let Some(t) = &mut acc.texts {
                t.push(head);
                t.push(tail);
            }
            self.scan_piece(head, acc, 0);
            self.scan_piece(tail, acc, 0);
        }
    }

    /// The tokens the model sees. Blob-like tokens (long, or long mixed letters+digits:
    /// base64, hashes, ids) are dropped: they carry no language and only add hash-collision
    /// noise.
    fn model_input(&self, n: &Normalized) -> Vec<model::ModelTok> {
        let mut out = Vec::with_capacity(n.toks.len());
        for t in &n.toks {
            let w = n.tok_str(t);
            let len = w.len();
            if len > 24
                || (len > 8
                    && w.bytes().any(|b| b.is_ascii_digit())
                    && w.bytes().any(|b| b.is_ascii_alphabetic()))
            {
                continue;
            }
            // the first five characters of a word of seven or more: shared by its inflections
            let stem = if len < 7 {
                0
            } else if w.is_ascii() {
                fnv(w.as_bytes().get(..5).unwrap_or(&[]))
            } else {
                match w.char_indices().nth(5) {
                    Some((cut, _)) if w.chars().nth(6).is_some() => {
                        fnv(w.get(..cut).unwrap_or("").as_bytes())
                    }
                    _ => 0,
                }
            };
            let class = self.concepts.of(t.hash);
            out.push(model::ModelTok { hash: t.hash, class, punct: t.punct, stem, quoted: t.quoted });
        }
        out
    }

    fn scan_piece(&self, s: &str, acc: &mut Acc, depth: u8) {
        let n = normalize(s, &self.matcher.vocab);
        let before = acc.hits.len();
        self.matcher.run(&n, &mut acc.hits);
        let matched_here = acc.hits.len() > before;
        let d = &self.det;
        let push = |r: Option<u16>, acc: &mut Acc| {
            if let Some(r) = r {
                if !acc.hits.contains(&r) {
                    acc.hits.push(r);
                }
            }
        };
        if n.sig.zero_width >= 2 || n.sig.bidi >= 1 || (n.sig.zero_width >= 1 && matched_here) {
            push(d.zw, acc);
        }
        if n.sig.tags >= 4 {
            push(d.tag, acc);
        }
        if n.sig.mixed_script >= 2 || (n.sig.mixed_script >= 1 && matched_here) {
            push(d.mixed, acc);
        }
        if n.sig.spaced >= 2 || (n.sig.spaced >= 1 && matched_here) {
            push(d.spaced, acc);
        }
        if matched_here && (n.sig.leet >= 2 || n.sig.exotic >= 4) {
            push(d.leet, acc);
        }
        if d.img.is_some() && image_exfil(&n.text) {
            push(d.img, acc);
        }
        if d.comment.is_some() && comment_to_ai(&n.text) {
            push(d.comment, acc);
        }
        if self.model.is_some() || acc.train.is_some() {
            let toks = self.model_input(&n);
            if let Some(z) = self.model.as_ref().and_then(|m| m.max_logit(&toks)) {
                acc.logit = Some(acc.logit.map_or(z, |a| a.max(z)));
            }
            if let Some(t) = &mut acc.train {
                t.push(TrainText::new(&toks));
            }
        }
        if depth >= 2 {
            return;
        }
        let mut extra: Vec<String> = Vec::new();
        if n.hidden.len() >= 4 {
            extra.push(n.hidden.clone());
        }
        let hidden_count = extra.len();
        decode_segments(s, 4, &mut extra);
        for (i, t) in extra.iter().enumerate() {
            let t = t.get(..floor_boundary(t, self.cfg.max_scan_bytes)).unwrap_or("");
            let hb = acc.hits.len();
            let lb = acc.logit;
            self.scan_piece(t, acc, depth + 1);
            let model_fired = match (acc.logit, lb) {
                (Some(a), Some(b)) => a > b && a > 0.0,
                (Some(a), None) => a > 0.0,
                _ => false,
            };
            if i >= hidden_count && (acc.hits.len() > hb || model_fired) {
                push(d.encoded, acc);
            }
        }
    }

    fn finish(&self, acc: Acc) -> Verdict {
        // `keep`: noisy-OR complement over every matched rule (the rule score, and the score
        // without the model); `keep_cfg`: over the rules scored beside the model.
        let (mut keep, mut keep_cfg, mut learned) = (1.0f64, 1.0f64, 0.0f32);
        let mut ids: Vec<(&str, &'static str)> = Vec::new();
        let mut hits = acc.hits;
        hits.sort_unstable();
        hits.dedup();
        for &h in &hits {
            if let Some(r) = self.rules.get(h as usize) {
                let w = r.w.clamp(0.0, 1.0);
                keep *= 1.0 - w;
                if r.by_config {
                    keep_cfg *= 1.0 - w;
                } else {
                    learned += r.model_w;
                }
                ids.push((r.id.as_str(), r.cat));
            }
        }
        let rule_score = (1.0 - keep).clamp(0.0, 1.0);
        let (score, p) = match &self.model {
            Some(m) if acc.logit.is_some() || !hits.is_empty() => {
                let z = m.bias + acc.logit.unwrap_or(0.0) + learned;
                let p = model::sigmoid(f64::from(z));
                let w = self.ml_weight.clamp(0.0, 1.0);
                ((1.0 - (1.0 - w * p) * keep_cfg).clamp(0.0, 1.0), p)
            }
            _ => (rule_score, 0.0),
        };
        if p >= 0.5 && p > rule_score {
            ids.push((rules::ML_ID, "model"));
        }
        ids.sort_unstable();
        ids.dedup();
        ids.truncate(MAX_RULES_IN_VERDICT);
        let mut categories: Vec<&'static str> = ids.iter().map(|x| x.1).collect();
        categories.sort_unstable();
        categories.dedup();
        Verdict {
            score,
            rule_score,
            model_score: p,
            rules: ids.into_iter().map(|x| x.0.to_string()).collect(),
            categories,
            truncated: acc.truncated,
        }
    }
}

/// What the model sees of one text, as the scorer would scan it (main text, text smuggled in
/// tag characters, decoded segments), and the built-in rules it matches: a training document.
pub fn train_doc(scorer: &Scorer, text: &str, label: bool, weight: f32) -> TrainDoc {
    let mut acc = Acc { train: Some(Vec::new()), ..scorer.acc() };
    scorer.scan_str(text, &mut acc);
    let mut rules: Vec<u16> = acc.hits.iter().copied().filter(|&h| scorer.learnable(h)).collect();
    rules.sort_unstable();
    rules.dedup();
    TrainDoc { texts: acc.train.unwrap_or_default(), rules, label, weight }
}

const EXFIL_WORDS: &[&str] = &[
    "data",
    "secret",
    "conversation",
    "history",
    "password",
    "passwd",
    "token",
    "key",
    "summary",
    "chat",
    "context",
    "memory",
    "credential",
    "session",
    "cookie",
    "email",
    "info",
    "content",
    "message",
    "prompt",
    "user",
    "env",
];

fn suspicious_url(url: &str) -> bool {
    if url.bytes().any(|b| matches!(b, b'{' | b'}' | b'<' | b'>' | b'[' | b']' | b'$')) {
        return true;
    }
    let Some(q) = url.find('?') else { return false };
    let query = url.get(q + 1..).unwrap_or("");
    if !query.contains('=') {
        return false;
    }
    query.split('&').any(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let k = k.trim();
        EXFIL_WORDS.iter().any(|w| k == *w || k.starts_with(w) || v.contains("your") || v.contains("insert"))
            || v.len() > 40 && !v.contains('.')
    })
}

/// `![..](http..?secret=...)`, `<img src="http..?data=...">`, `[..](http..{data})`.
fn image_exfil(t: &str) -> bool {
    let b = t.as_bytes();
    let mut from = 0;
    let mut seen = 0;
    while let Some(i) = t.get(from..).and_then(|x| x.find("](http")) {
        let start = from + i + 2;
        let img = t
            .get(from..from + i)
            .is_some_and(|pre| pre.rfind("![").is_some_and(|j| from + i - (from + j) < 400));
        let end = b
            .get(start..)
            .and_then(|r| r.iter().position(|&c| c == b')' || c == b' '))
            .map_or(b.len(), |e| start + e);
        let url = t.get(start..end).unwrap_or("");
        if url.bytes().any(|c| matches!(c, b'{' | b'}' | b'<' | b'>' | b'$')) || (img && suspicious_url(url))
        {
            return true;
        }
        from = end.max(start);
        seen += 1;
        if seen > 64 {
            break;
        }
    }
    let mut from = 0;
    seen = 0;
    while let Some(i) = t.get(from..).and_then(|x| x.find("<img")) {
        let s = from + i;
        let e = (s + 600).min(t.len());
        let e = floor_boundary(t, e);
        let tag = t.get(s..e).unwrap_or("");
        let tag = tag.get(..tag.find('>').unwrap_or(tag.len())).unwrap_or("");
        if let Some(p) = tag.find("src=") {
            let url = tag.get(p + 4..).unwrap_or("").trim_start_matches(['"', '\'']);
            let url = url.get(..url.find(['"', '\'', ' ']).unwrap_or(url.len())).unwrap_or("");
            if url.starts_with("http") && suspicious_url(url) {
                return true;
            }
        }
        from = s + 4;
        seen += 1;
        if seen > 64 {
            break;
        }
    }
    false
}

const AI_WORDS: &[&str] = &[
    " ai ",
    " ai,",
    " ai:",
    "llm",
    "assistant",
    " agent",
    " model",
    "claude",
    "gpt",
    "copilot",
    "gemini",
    "instruction",
    "ignore",
    "you must",
    "do not tell",
    "don't tell",
    "system prompt",
    "important:",
    "send ",
    "exfil",
    "api key",
];

/// HTML comment or markdown comment whose body talks to an AI.
fn comment_to_ai(t: &str) -> bool {
    let mut from = 0;
    let mut seen = 0;
    while let Some(i) = t.get(from..).and_then(|x| x.find("<!--")) {
        let s = from + i + 4;
        let rest = t.get(s..).unwrap_or("");
        let e = rest.find("-->").unwrap_or(rest.len()).min(2000);
        let body = rest.get(..floor_boundary(rest, e)).unwrap_or("");
        let padded = format!(" {body} ");
        if AI_WORDS.iter().any(|w| padded.contains(w)) {
            return true;
        }
        from = s + e.max(1);
        seen += 1;
        if seen > 64 {
            break;
        }
    }
    false
}

#[cfg(test)]
mod tests;

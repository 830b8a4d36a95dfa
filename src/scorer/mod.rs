//! Prompt-injection and tool-poisoning scoring.

use serde::Deserialize;

use crate::config::ConfigError;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectionConfig {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub block_threshold: f64,
    #[serde(default)]
    pub warn_threshold: f64,
    #[serde(default)]
    pub request_action: Action,
    #[serde(default)]
    pub response_action: Action,
    #[serde(default)]
    pub response_mode: ResponseMode,
}

impl InjectionConfig {
    pub fn validate(&self, _key: &str) -> Result<(), ConfigError> {
        Ok(())
    }
}

// ---- contract stub: replaced by the real scorer ----
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    #[default]
    Block,
    Warn,
    Off,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    #[default]
    Error,
    Redact,
}
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub score: f64,
    pub rules: Vec<String>,
    pub categories: Vec<&'static str>,
}
pub struct Scorer;
impl Scorer {
    pub fn new(_c: &InjectionConfig) -> Result<Self, ConfigError> {
        Ok(Scorer)
    }
    pub fn score_text(&self, _t: &str) -> Verdict {
        Verdict::default()
    }
    pub fn score_value(&self, _v: &serde_json::Value) -> Verdict {
        Verdict::default()
    }
    pub fn score_request(&self, _m: &str, _p: &serde_json::Value) -> Verdict {
        Verdict::default()
    }
    pub fn score_response(&self, _m: &str, _r: &serde_json::Value) -> Verdict {
        Verdict::default()
    }
}

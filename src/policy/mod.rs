//! Authorization: permission globs over `<backend>/<tool>`, roles, deny-wins, default deny.

use serde::Deserialize;

use crate::config::ConfigError;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationConfig {}

impl AuthorizationConfig {
    pub fn validate(&self, _key: &str) -> Result<(), ConfigError> {
        Ok(())
    }
}

// ---- contract stub: replaced by the real policy ----
use crate::auth::Identity;
pub enum Item<'a> {
    None,
    Tool(&'a str),
    Resource(&'a str),
    Prompt(&'a str),
}
pub struct Target<'a> {
    pub method: &'a str,
    pub backend: &'a str,
    pub item: Item<'a>,
    pub arguments: Option<&'a serde_json::Value>,
}
pub struct Decision {
    pub allowed: bool,
    pub rule: String,
    pub required_scope: Option<String>,
    pub message: String,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Tools,
    Prompts,
    Resources,
}
pub struct Policy;
impl Policy {
    pub fn new(_c: &crate::config::Config) -> Result<Self, ConfigError> {
        Ok(Policy)
    }
    pub fn authorize(&self, _w: &Identity, _t: &Target) -> Decision {
        Decision { allowed: true, rule: "*".into(), required_scope: None, message: String::new() }
    }
    pub fn filter_list(
        &self,
        _w: &Identity,
        _k: ListKind,
        _i: &mut Vec<serde_json::Value>,
        _r: &dyn Fn(&str) -> Option<(String, String)>,
    ) -> usize {
        0
    }
}

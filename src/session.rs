//! Binding of `Mcp-Session-Id` values to the principal that obtained them.

use serde::Deserialize;

use crate::config::ConfigError;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionBindingConfig {
    #[serde(default)]
    pub enabled: bool,
}

impl SessionBindingConfig {
    pub fn validate(&self, _key: &str) -> Result<(), ConfigError> {
        Ok(())
    }
}

// ---- contract stub: replaced by the real session table ----
use crate::shared::SharedStore;
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCheck {
    Unbound,
    Match,
    Mismatch,
}
#[derive(Debug)]
pub struct BindError;
pub struct SessionTable;
impl SessionTable {
    pub fn new(_c: &SessionBindingConfig) -> Self {
        SessionTable
    }
    pub fn bind(&self, _s: &dyn SharedStore, _sid: &str, _p: &str, _now: u64) -> Result<(), BindError> {
        Ok(())
    }
    pub fn check(&self, _s: &dyn SharedStore, _sid: &str, _p: &str, _now: u64) -> SessionCheck {
        SessionCheck::Unbound
    }
}

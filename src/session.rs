//! Binding of `Mcp-Session-Id` values to the principal that obtained them.

use serde::Deserialize;

use crate::config::ConfigError;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionBindingConfig {}

impl SessionBindingConfig {
    pub fn validate(&self, _key: &str) -> Result<(), ConfigError> {
        Ok(())
    }
}

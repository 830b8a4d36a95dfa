//! Prompt-injection and tool-poisoning scoring.

use serde::Deserialize;

use crate::config::ConfigError;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InjectionConfig {}

impl InjectionConfig {
    pub fn validate(&self, _key: &str) -> Result<(), ConfigError> {
        Ok(())
    }
}

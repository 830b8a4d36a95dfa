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

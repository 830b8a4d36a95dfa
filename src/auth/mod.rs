//! Authentication: API keys, JWT (inline keys or JWKS), OAuth protected-resource metadata.
//!
//! CONTRACT used by the glue (filter/) -- keep these names:
//! - `AuthConfig` (deserialised under `security.auth`) with `validate(&self, key_prefix)`.
//! - `Identity`: who the caller is, handed to policy/ratelimit/audit.
//! - `Authenticator::new(&AuthConfig) -> Result<Self, ConfigError>` (built once per VM),
//!   `Authenticator::authenticate(&mut self, &Credentials, now_secs) -> AuthOutcome`.

use serde::Deserialize;

use crate::config::ConfigError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    ApiKey,
    Jwt,
    /// `security.auth.enabled: false`.
    Anonymous,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ApiKey => "api_key",
            AuthMethod::Jwt => "jwt",
            AuthMethod::Anonymous => "anonymous",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub client_id: String,
    pub method: AuthMethod,
    /// Permission patterns granted directly (see policy).
    pub permissions: Vec<String>,
    /// Role names, resolved by policy through `security.authorization.roles`.
    pub roles: Vec<String>,
    /// OAuth scopes (JWT `scope`/`scp`), resolved by policy through `security.authorization.scopes`.
    pub scopes: Vec<String>,
    /// Index of the API key in `security.auth.api_keys`, for per-key rate limits.
    pub api_key_index: Option<usize>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub enabled: bool,
}

impl AuthConfig {
    pub fn validate(&self, _key: &str) -> Result<(), ConfigError> {
        Ok(())
    }
}

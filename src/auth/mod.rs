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
    pub fn key_rate_limits(&self) -> Vec<Option<crate::ratelimit::RateLimitSpec>> {
        Vec::new()
    }
    pub fn warnings(&self) -> Vec<String> {
        Vec::new()
    }
    pub fn validate(&self, _key: &str) -> Result<(), ConfigError> {
        Ok(())
    }
}

// ---- contract stub: replaced by the real authenticator ----
pub struct Credentials<'a> {
    pub authorization: Option<&'a str>,
    pub api_key: Option<&'a str>,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    MalformedToken,
}
impl AuthFailure {
    pub fn as_str(self) -> &'static str {
        "malformed_token"
    }
}
pub enum AuthOutcome {
    Authenticated(Identity),
    Missing,
    Invalid(AuthFailure),
    UnknownKey,
}
#[derive(Debug, Clone, Copy)]
pub enum FetchReason {
    Timer,
    UnknownKid,
}
pub struct JwksRequest {
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub timeout_ms: u64,
}
pub enum Challenge {
    Missing,
    InvalidToken,
    InsufficientScope(String),
}
pub struct Authenticator {
    enabled: bool,
}
impl Authenticator {
    pub fn new(cfg: &AuthConfig) -> Result<Self, ConfigError> {
        Ok(Self { enabled: cfg.enabled })
    }
    pub fn authenticate(&mut self, _c: &Credentials, _now: u64) -> AuthOutcome {
        if self.enabled {
            return AuthOutcome::Missing;
        }
        AuthOutcome::Authenticated(Identity {
            client_id: "anonymous".into(),
            method: AuthMethod::Anonymous,
            permissions: vec!["*".into()],
            roles: vec![],
            scopes: vec![],
            api_key_index: None,
        })
    }
    pub fn is_unauthenticated_path(&self, p: &str) -> bool {
        p == "/healthz"
    }
    pub fn jwks_fetch(&mut self, _now: u64, _r: FetchReason) -> Option<JwksRequest> {
        None
    }
    pub fn on_jwks_response(&mut self, _s: u16, _b: Option<&[u8]>, _now: u64) -> Result<usize, String> {
        Ok(0)
    }
    pub fn tick_period_secs(&self) -> Option<u64> {
        None
    }
    pub fn protected_resource_metadata(&self, _p: &str, _s: &str, _a: &str) -> Option<String> {
        None
    }
    pub fn challenge(&self, _k: Challenge, _p: &str, _s: &str, _a: &str) -> String {
        "Bearer".into()
    }
    pub fn identity_header(&self) -> &str {
        "x-mcp-client-id"
    }
}

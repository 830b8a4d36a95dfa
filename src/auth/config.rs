//! `security.auth` configuration: schema, defaults, validation and warnings.
//!
//! Every struct denies unknown keys. Secrets (`key`, `hs256_secret`) are wrapped in [`Secret`],
//! whose `Debug` prints `<redacted>`, and no error or warning message ever contains one.
//!
//! ```json
//! "auth": {
//!   "enabled": true,                                  // default true (fail closed)
//!   "api_keys": [
//!     {"key_sha256": "9f86d0...0a08", "client_id": "admin", "permissions": ["*"],
//!      "roles": ["ops"], "rate_limit": {"requests_per_sec": 10, "burst_size": 20}},
//!     {"key": "dev-only-key", "client_id": "dev"}    // plain text: warning
//!   ],
//!   "jwt": {
//!     "issuer": "https://idp.example.com/realms/mcp",
//!     "audiences": ["https://mcp.example.com/mcp"],  // default: [resource_metadata.resource]
//!     "algorithms": ["RS256", "ES256"],               // default: all asymmetric (+HS256 with hs256_secret)
//!     "leeway_secs": 60, "require_exp": true,
//!     "claims": {"client_id": "sub", "permissions": "permissions", "roles": "roles",
//!                "scopes": ["scope", "scp"]},         // string or list; dotted paths allowed
//!     "jwks": {"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1", "x": "...", "y": "..."}]},
//!     "public_keys_pem": ["-----BEGIN PUBLIC KEY-----\n...\n-----END PUBLIC KEY-----"],
//!     "hs256_secret": "at-least-32-bytes-of-shared-secret",
//!     "remote_jwks": {"cluster": "idp", "path": "/realms/mcp/protocol/openid-connect/certs",
//!                     "authority": "idp.example.com", "refresh_secs": 300, "timeout_ms": 2000,
//!                     "min_refetch_secs": 30},
//!     "cache_size": 1024, "cache_max_ttl_secs": 600
//!   },
//!   "resource_metadata": {
//!     "resource": "https://mcp.example.com/mcp",
//!     "authorization_servers": ["https://idp.example.com/realms/mcp"],
//!     "scopes_supported": ["mcp:tools"], "resource_name": "MCP gateway",
//!     "resource_documentation": "https://docs.example.com/mcp"
//!   },
//!   "unauthenticated_paths": ["/.well-known/oauth-protected-resource",
//!                             "/.well-known/oauth-protected-resource/*", "/healthz"],
//!   "anonymous_permissions": ["*"],                   // identity when enabled=false
//!   "identity_header": "x-mcp-client-id",
//!   "max_token_bytes": 8192
//! }
//! ```

use serde::Deserialize;
use std::fmt;

use crate::config::ConfigError;
use crate::ratelimit::RateLimitSpec;

use super::jwks;

/// Default of `security.auth.identity_header`.
pub const DEFAULT_IDENTITY_HEADER: &str = "x-mcp-client-id";
/// Path prefix of RFC 9728 protected-resource metadata.
pub const PRM_WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";
/// Longest client id accepted (config or token claim).
pub const MAX_CLIENT_ID_LEN: usize = 256;

/// A configured secret. `Debug` never prints it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `security.auth`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Require authentication on every path not in `unauthenticated_paths`. Default `true`
    /// (fail closed); `false` makes every caller the `anonymous` identity.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Static API keys.
    #[serde(default)]
    pub api_keys: Vec<ApiKeyConfig>,
    /// JWT bearer tokens (OAuth 2.1 resource server).
    #[serde(default)]
    pub jwt: Option<JwtConfig>,
    /// RFC 9728 protected-resource metadata and the `WWW-Authenticate` challenge.
    #[serde(default)]
    pub resource_metadata: ResourceMetadataConfig,
    /// Paths served without authentication: exact paths, or `prefix*`.
    #[serde(default = "default_unauthenticated_paths")]
    pub unauthenticated_paths: Vec<String>,
    /// Permissions of the `anonymous` identity used when `enabled` is false.
    #[serde(default = "default_anonymous_permissions")]
    pub anonymous_permissions: Vec<String>,
    /// Header the filter sets upstream with the authenticated client id (client copies removed).
    #[serde(default = "default_identity_header")]
    pub identity_header: String,
    /// Longest accepted bearer token / API key in bytes; longer is rejected as malformed.
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            api_keys: Vec::new(),
            jwt: None,
            resource_metadata: ResourceMetadataConfig::default(),
            unauthenticated_paths: default_unauthenticated_paths(),
            anonymous_permissions: default_anonymous_permissions(),
            identity_header: default_identity_header(),
            max_token_bytes: default_max_token_bytes(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_unauthenticated_paths() -> Vec<String> {
    vec![PRM_WELL_KNOWN.to_string(), format!("{PRM_WELL_KNOWN}/*"), "/healthz".to_string()]
}
fn default_anonymous_permissions() -> Vec<String> {
    vec!["*".to_string()]
}
fn default_identity_header() -> String {
    DEFAULT_IDENTITY_HEADER.to_string()
}
fn default_max_token_bytes() -> usize {
    8192
}

/// One entry of `security.auth.api_keys`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Lower- or upper-case hex SHA-256 of the key (production).
    #[serde(default)]
    pub key_sha256: Option<Secret>,
    /// The key itself (development only; produces a warning).
    #[serde(default)]
    pub key: Option<Secret>,
    pub client_id: String,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub rate_limit: Option<RateLimitSpec>,
}

/// JWS algorithms accepted for JWTs. `none` does not exist here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum JwtAlg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
    HS256,
}

impl JwtAlg {
    pub const ASYMMETRIC: [JwtAlg; 9] = [
        JwtAlg::RS256,
        JwtAlg::RS384,
        JwtAlg::RS512,
        JwtAlg::PS256,
        JwtAlg::PS384,
        JwtAlg::PS512,
        JwtAlg::ES256,
        JwtAlg::ES384,
        JwtAlg::EdDSA,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlg::RS256 => "RS256",
            JwtAlg::RS384 => "RS384",
            JwtAlg::RS512 => "RS512",
            JwtAlg::PS256 => "PS256",
            JwtAlg::PS384 => "PS384",
            JwtAlg::PS512 => "PS512",
            JwtAlg::ES256 => "ES256",
            JwtAlg::ES384 => "ES384",
            JwtAlg::EdDSA => "EdDSA",
            JwtAlg::HS256 => "HS256",
        }
    }

    /// Exact, case-sensitive match of a JOSE `alg` value.
    pub fn from_name(s: &str) -> Option<JwtAlg> {
        JwtAlg::ASYMMETRIC.iter().copied().chain([JwtAlg::HS256]).find(|a| a.as_str() == s)
    }

    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            JwtAlg::RS256 | JwtAlg::RS384 | JwtAlg::RS512 | JwtAlg::PS256 | JwtAlg::PS384 | JwtAlg::PS512
        )
    }
}

/// A claim name or a list of claim names (values of all listed claims are merged; for
/// `client_id` the first present one wins). A name with dots (`realm_access.roles`) is looked
/// up literally first, then as a path into nested objects.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ClaimNames {
    One(String),
    Many(Vec<String>),
}

impl ClaimNames {
    pub fn names(&self) -> &[String] {
        match self {
            ClaimNames::One(s) => std::slice::from_ref(s),
            ClaimNames::Many(v) => v,
        }
    }
}

/// `security.auth.jwt.claims`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimsConfig {
    #[serde(default = "default_client_id_claim")]
    pub client_id: ClaimNames,
    #[serde(default = "default_permissions_claim")]
    pub permissions: ClaimNames,
    #[serde(default = "default_roles_claim")]
    pub roles: ClaimNames,
    #[serde(default = "default_scopes_claim")]
    pub scopes: ClaimNames,
}

impl Default for ClaimsConfig {
    fn default() -> Self {
        Self {
            client_id: default_client_id_claim(),
            permissions: default_permissions_claim(),
            roles: default_roles_claim(),
            scopes: default_scopes_claim(),
        }
    }
}

fn default_client_id_claim() -> ClaimNames {
    ClaimNames::One("sub".to_string())
}
fn default_permissions_claim() -> ClaimNames {
    ClaimNames::One("permissions".to_string())
}
fn default_roles_claim() -> ClaimNames {
    ClaimNames::One("roles".to_string())
}
fn default_scopes_claim() -> ClaimNames {
    ClaimNames::Many(vec!["scope".to_string(), "scp".to_string()])
}

/// `security.auth.jwt`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// Required `iss` (exact match). Absent: not checked (warning).
    #[serde(default)]
    pub issuer: Option<String>,
    /// Accepted `aud` values (any one must be present). Empty: `resource_metadata.resource`.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Accepted algorithms. Default: all asymmetric ones, plus HS256 when `hs256_secret` is set.
    #[serde(default)]
    pub algorithms: Option<Vec<JwtAlg>>,
    /// Clock skew tolerated on `exp`, `nbf`, `iat`.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// Reject tokens without `exp`.
    #[serde(default = "default_true")]
    pub require_exp: bool,
    #[serde(default)]
    pub claims: ClaimsConfig,
    /// Inline JWK set (`{"keys":[...]}`).
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    /// Inline PEM public keys (SPKI RSA / P-256 / P-384 / Ed25519, or PKCS#1 RSA).
    #[serde(default)]
    pub public_keys_pem: Vec<String>,
    /// Shared secret for HS256 (at least 32 bytes). Only HS256 tokens use it.
    #[serde(default)]
    pub hs256_secret: Option<Secret>,
    /// JWKS fetched through an Envoy cluster.
    #[serde(default)]
    pub remote_jwks: Option<RemoteJwksConfig>,
    /// Verified tokens cached per VM.
    #[serde(default = "default_cache_size")]
    pub cache_size: usize,
    /// Longest time a verified token stays cached (also bounded by its `exp`).
    #[serde(default = "default_cache_max_ttl")]
    pub cache_max_ttl_secs: u64,
}

fn default_leeway() -> u64 {
    60
}
fn default_cache_size() -> usize {
    1024
}
fn default_cache_max_ttl() -> u64 {
    600
}

/// `security.auth.jwt.remote_jwks`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteJwksConfig {
    /// Envoy cluster that reaches the IdP.
    pub cluster: String,
    /// Request path of the JWKS, e.g. `/realms/mcp/protocol/openid-connect/certs`.
    pub path: String,
    /// `:authority` of the request, e.g. `idp.example.com`.
    pub authority: String,
    #[serde(default = "default_refresh")]
    pub refresh_secs: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Minimum spacing of fetches (unknown-kid refetches and retries after failures).
    #[serde(default = "default_min_refetch")]
    pub min_refetch_secs: u64,
}

fn default_refresh() -> u64 {
    300
}
fn default_timeout_ms() -> u64 {
    2000
}
fn default_min_refetch() -> u64 {
    30
}

/// `security.auth.resource_metadata` (RFC 9728).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceMetadataConfig {
    /// This resource's identifier, e.g. `https://mcp.example.com/mcp`. Absent: built from the
    /// request's scheme and authority (configure it in production).
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub authorization_servers: Vec<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    #[serde(default)]
    pub resource_name: Option<String>,
    #[serde(default)]
    pub resource_documentation: Option<String>,
}

/// Visible ASCII only: safe in a header value and in logs.
pub(crate) fn is_safe_client_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_CLIENT_ID_LEN && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

fn is_header_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn is_http_url(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://"))
        && !s.contains('#')
        && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        && s.split("://").nth(1).is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
}

fn is_scope_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

pub(crate) fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

impl AuthConfig {
    /// Checks the whole `security.auth` tree; errors name the offending key under `key`.
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if !is_header_name(&self.identity_header) {
            return Err(ConfigError::new(
                format!("{key}.identity_header"),
                "must be a lower-case header name ([a-z0-9_-]+)",
            ));
        }
        if !(256..=65536).contains(&self.max_token_bytes) {
            return Err(ConfigError::new(format!("{key}.max_token_bytes"), "must be between 256 and 65536"));
        }
        for (i, p) in self.unauthenticated_paths.iter().enumerate() {
            let base = p.strip_suffix('*').unwrap_or(p);
            if !base.starts_with('/') || base.contains('*') || base.contains('?') {
                return Err(ConfigError::new(
                    format!("{key}.unauthenticated_paths[{i}]"),
                    "must be an absolute path, optionally ending in `*` (prefix)",
                ));
            }
        }
        let mut digests: Vec<[u8; 32]> = Vec::with_capacity(self.api_keys.len());
        for (i, k) in self.api_keys.iter().enumerate() {
            let kk = format!("{key}.api_keys[{i}]");
            let digest = match (&k.key_sha256, &k.key) {
                (Some(h), None) => parse_hex32(h.expose()).ok_or_else(|| {
                    ConfigError::new(format!("{kk}.key_sha256"), "must be 64 hex characters")
                })?,
                (None, Some(plain)) => {
                    let p = plain.expose();
                    if p.is_empty()
                        || p.len() > self.max_token_bytes
                        || !p.bytes().all(|b| (0x21..=0x7e).contains(&b))
                    {
                        return Err(ConfigError::new(
                            format!("{kk}.key"),
                            "must be non-empty visible ASCII without spaces, at most max_token_bytes long",
                        ));
                    }
                    hmac_sha256::Hash::hash(p.as_bytes())
                }
                _ => return Err(ConfigError::new(kk, "set exactly one of `key_sha256` or `key`")),
            };
            if let Some(j) = digests.iter().position(|d| *d == digest) {
                return Err(ConfigError::new(kk, format!("duplicate API key (same key as api_keys[{j}])")));
            }
            digests.push(digest);
            if !is_safe_client_id(&k.client_id) {
                return Err(ConfigError::new(
                    format!("{kk}.client_id"),
                    format!("must be 1-{MAX_CLIENT_ID_LEN} visible ASCII characters"),
                ));
            }
            if let Some(rl) = &k.rate_limit {
                rl.validate(&format!("{kk}.rate_limit"))?;
            }
        }
        let rm = &self.resource_metadata;
        let rmk = format!("{key}.resource_metadata");
        if let Some(r) = &rm.resource {
            if !is_http_url(r) {
                return Err(ConfigError::new(
                    format!("{rmk}.resource"),
                    "must be an absolute http(s) URL without fragment",
                ));
            }
        }
        for (i, s) in rm.authorization_servers.iter().enumerate() {
            if !is_http_url(s) {
                return Err(ConfigError::new(
                    format!("{rmk}.authorization_servers[{i}]"),
                    "must be an absolute http(s) URL",
                ));
            }
        }
        for (i, s) in rm.scopes_supported.iter().enumerate() {
            if !is_scope_token(s) {
                return Err(ConfigError::new(
                    format!("{rmk}.scopes_supported[{i}]"),
                    "must be a scope token (visible ASCII, no space, quote or backslash)",
                ));
            }
        }
        if let Some(d) = &rm.resource_documentation {
            if !is_http_url(d) {
                return Err(ConfigError::new(
                    format!("{rmk}.resource_documentation"),
                    "must be an absolute http(s) URL",
                ));
            }
        }
        if let Some(j) = &self.jwt {
            j.validate(&format!("{key}.jwt"), rm.resource.as_deref())?;
        }
        Ok(())
    }

    /// Non-fatal advice (plain-text keys, missing issuer, nothing configured...). Never
    /// contains a secret.
    pub fn warnings(&self) -> Vec<String> {
        let key = "security.auth";
        let mut w = Vec::new();
        for (i, k) in self.api_keys.iter().enumerate() {
            if k.key.is_some() {
                w.push(format!("{key}.api_keys[{i}].key: plain-text API key; use key_sha256 in production"));
            }
        }
        if self.enabled && self.api_keys.is_empty() && self.jwt.is_none() {
            w.push(format!(
                "{key}: enabled with neither api_keys nor jwt: every request outside unauthenticated_paths is rejected"
            ));
        }
        if !self.enabled {
            w.push(format!("{key}.enabled: false: every caller is `anonymous` with anonymous_permissions"));
        }
        if let Some(j) = &self.jwt {
            if j.issuer.is_none() {
                w.push(format!(
                    "{key}.jwt.issuer: not set; tokens from any issuer holding a trusted key are accepted"
                ));
            }
        }
        if self.enabled && self.jwt.is_some() && self.resource_metadata.authorization_servers.is_empty() {
            w.push(format!(
                "{key}.resource_metadata.authorization_servers: empty; MCP clients cannot discover the authorization server"
            ));
        }
        w
    }
}

impl JwtConfig {
    /// The effective algorithm list.
    pub fn effective_algorithms(&self) -> Vec<JwtAlg> {
        match &self.algorithms {
            Some(a) => a.clone(),
            None => {
                let mut v = JwtAlg::ASYMMETRIC.to_vec();
                if self.hs256_secret.is_some() {
                    v.push(JwtAlg::HS256);
                }
                v
            }
        }
    }

    /// The effective audiences: `audiences`, else the configured resource.
    pub fn effective_audiences(&self, resource: Option<&str>) -> Vec<String> {
        if self.audiences.is_empty() {
            resource.map(|r| vec![r.to_string()]).unwrap_or_default()
        } else {
            self.audiences.clone()
        }
    }

    fn validate(&self, key: &str, resource: Option<&str>) -> Result<(), ConfigError> {
        if let Some(algs) = &self.algorithms {
            if algs.is_empty() {
                return Err(ConfigError::new(format!("{key}.algorithms"), "must not be empty"));
            }
            if algs.contains(&JwtAlg::HS256) && self.hs256_secret.is_none() {
                return Err(ConfigError::new(format!("{key}.algorithms"), "HS256 requires hs256_secret"));
            }
            if self.hs256_secret.is_some() && !algs.contains(&JwtAlg::HS256) {
                return Err(ConfigError::new(
                    format!("{key}.hs256_secret"),
                    "set, but HS256 is not in algorithms",
                ));
            }
        }
        if let Some(s) = &self.hs256_secret {
            if s.expose().len() < 32 {
                return Err(ConfigError::new(format!("{key}.hs256_secret"), "must be at least 32 bytes"));
            }
        }
        if self.effective_audiences(resource).is_empty() {
            return Err(ConfigError::new(
                format!("{key}.audiences"),
                "required: tokens must be issued for this resource (RFC 8707); set audiences or security.auth.resource_metadata.resource",
            ));
        }
        if self.audiences.iter().any(|a| a.is_empty()) {
            return Err(ConfigError::new(format!("{key}.audiences"), "must not contain empty strings"));
        }
        if self.issuer.as_deref() == Some("") {
            return Err(ConfigError::new(format!("{key}.issuer"), "must not be empty"));
        }
        if self.leeway_secs > 600 {
            return Err(ConfigError::new(format!("{key}.leeway_secs"), "must be at most 600"));
        }
        if !(1..=100_000).contains(&self.cache_size) {
            return Err(ConfigError::new(format!("{key}.cache_size"), "must be between 1 and 100000"));
        }
        if self.cache_max_ttl_secs == 0 {
            return Err(ConfigError::new(format!("{key}.cache_max_ttl_secs"), "must be at least 1"));
        }
        for (name, c) in [
            ("client_id", &self.claims.client_id),
            ("permissions", &self.claims.permissions),
            ("roles", &self.claims.roles),
            ("scopes", &self.claims.scopes),
        ] {
            if c.names().iter().any(|n| n.is_empty()) || (name == "client_id" && c.names().is_empty()) {
                return Err(ConfigError::new(
                    format!("{key}.claims.{name}"),
                    "claim names must be non-empty",
                ));
            }
        }
        let algs = self.effective_algorithms();
        let mut inline_keys = 0usize;
        if let Some(v) = &self.jwks {
            let set = jwks::parse_jwk_set(v, &algs)
                .map_err(|reason| ConfigError::new(format!("{key}.jwks"), reason))?;
            if set.is_empty() {
                return Err(ConfigError::new(
                    format!("{key}.jwks"),
                    "no usable signature key (supported: RSA, EC P-256/P-384, OKP Ed25519 with an allowed alg)",
                ));
            }
            inline_keys += set.len();
        }
        for (i, pem) in self.public_keys_pem.iter().enumerate() {
            let keys = jwks::parse_pem(pem, &algs);
            if keys.is_empty() {
                return Err(ConfigError::new(
                    format!("{key}.public_keys_pem[{i}]"),
                    "not a supported public key (RSA >= 2048 bits, P-256, P-384, Ed25519) for the allowed algorithms",
                ));
            }
            inline_keys += keys.len();
        }
        if let Some(r) = &self.remote_jwks {
            let rk = format!("{key}.remote_jwks");
            if r.cluster.is_empty() {
                return Err(ConfigError::new(format!("{rk}.cluster"), "must not be empty"));
            }
            if !r.path.starts_with('/') || r.path.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
                return Err(ConfigError::new(format!("{rk}.path"), "must be an absolute request path"));
            }
            if r.authority.is_empty() || r.authority.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
                return Err(ConfigError::new(format!("{rk}.authority"), "must be a host[:port]"));
            }
            if r.refresh_secs == 0 {
                return Err(ConfigError::new(format!("{rk}.refresh_secs"), "must be at least 1"));
            }
            if r.min_refetch_secs == 0 {
                return Err(ConfigError::new(format!("{rk}.min_refetch_secs"), "must be at least 1"));
            }
            if !(1..=60_000).contains(&r.timeout_ms) {
                return Err(ConfigError::new(format!("{rk}.timeout_ms"), "must be between 1 and 60000"));
            }
        }
        if inline_keys == 0 && self.hs256_secret.is_none() && self.remote_jwks.is_none() {
            return Err(ConfigError::new(
                key.to_string(),
                "no verification key: set jwks, public_keys_pem, hs256_secret or remote_jwks",
            ));
        }
        Ok(())
    }
}

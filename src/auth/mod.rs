//! Authentication: API keys, JWT (inline keys or JWKS), OAuth protected-resource metadata.
//!
//! Host-independent: the glue (filter/) passes headers and the current time in, and performs
//! the HTTP calls and header changes this module asks for.
//!
//! Glue contract:
//! - `Authenticator::new(&cfg.security.auth)` once per VM; log `AuthConfig::warnings()`.
//! - Per request: if `protected_resource_metadata(path, scheme, authority)` is `Some(json)`,
//!   answer 200 `application/json`. Else if `is_unauthenticated_path(path)`, pass. Else
//!   `authenticate(&Credentials{authorization, api_key: x-api-key}, now)`:
//!   - `Authenticated(id)`: remove client copies of `identity_header()`, set it to `id.client_id`.
//!   - `Missing` -> 401 + `WWW-Authenticate: challenge(Challenge::Missing, ..)`.
//!   - `Invalid(f)` -> 401 + `challenge(Challenge::InvalidToken, ..)`; log `f.as_str()`.
//!   - `UnknownKey` -> `jwks_fetch(now, FetchReason::UnknownKid)`: `Some(req)` -> dispatch, park
//!     the request, call `on_jwks_response` and `authenticate` again (a second `UnknownKey` is
//!     final); `None` while `jwks_fetch_in_flight(now)` -> park until the response; else final.
//!     Final: `Invalid(unknown_key_failure())`.
//! - Timer: `set_tick_period(tick_period_secs())`; on each tick (and once at start)
//!   `jwks_fetch(now, FetchReason::Timer)`; on a failed dispatch or timeout call
//!   `on_jwks_response(0, None, now)` so the fetch is no longer in flight.
//! - 403 for missing scope (policy decides): `challenge(Challenge::InsufficientScope(s), ..)`.

mod apikey;
mod cache;
pub mod config;
mod jwks;
mod jwt;
mod metadata;
#[cfg(test)]
mod tests;

pub use config::{
    ApiKeyConfig, AuthConfig, ClaimNames, ClaimsConfig, JwtAlg, JwtConfig, RemoteJwksConfig,
    ResourceMetadataConfig, Secret,
};
pub use jwks::{FetchReason, JwksRequest};
pub use metadata::Challenge;

use crate::config::ConfigError;
use crate::ratelimit::RateLimitSpec;

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

/// Credentials as presented (raw header values).
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials<'a> {
    /// `Authorization` header.
    pub authorization: Option<&'a str>,
    /// `X-API-Key` header.
    pub api_key: Option<&'a str>,
}

/// Why credentials were rejected. Reason codes only: never a secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Not a JWT / empty / oversized / undecodable.
    MalformedToken,
    BadSignature,
    Expired,
    /// `nbf` (or `iat`) in the future beyond the leeway.
    NotYetValid,
    WrongIssuer,
    WrongAudience,
    UnknownApiKey,
    /// `alg` not configured (includes `none`).
    AlgorithmNotAllowed,
    /// No key at all for the token's algorithm (e.g. JWKS never fetched).
    KeysUnavailable,
    /// The token's `kid` is not in the key set.
    UnknownKid,
    /// Required claim absent: `exp` (when `require_exp`) or the client-id claim.
    MissingClaim,
    /// The client-id claim is not 1-256 visible ASCII characters.
    InvalidClaim,
}

impl AuthFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthFailure::MalformedToken => "malformed_token",
            AuthFailure::BadSignature => "bad_signature",
            AuthFailure::Expired => "expired",
            AuthFailure::NotYetValid => "not_yet_valid",
            AuthFailure::WrongIssuer => "wrong_issuer",
            AuthFailure::WrongAudience => "wrong_audience",
            AuthFailure::UnknownApiKey => "unknown_api_key",
            AuthFailure::AlgorithmNotAllowed => "algorithm_not_allowed",
            AuthFailure::KeysUnavailable => "keys_unavailable",
            AuthFailure::UnknownKid => "unknown_kid",
            AuthFailure::MissingClaim => "missing_claim",
            AuthFailure::InvalidClaim => "invalid_claim",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum AuthOutcome {
    Authenticated(Identity),
    /// No `Authorization: Bearer` and no `X-API-Key` (another scheme counts as missing).
    Missing,
    Invalid(AuthFailure),
    /// JWT `kid` not in the key set and `remote_jwks` is configured: fetch, then retry.
    UnknownKey,
}

impl AuthOutcome {
    /// The 401 challenge kind for a non-authenticated outcome.
    pub fn challenge(&self) -> Option<Challenge<'static>> {
        match self {
            AuthOutcome::Authenticated(_) => None,
            AuthOutcome::Missing => Some(Challenge::Missing),
            AuthOutcome::Invalid(_) | AuthOutcome::UnknownKey => Some(Challenge::InvalidToken),
        }
    }
}

#[derive(Debug, Clone)]
enum PathPattern {
    Exact(String),
    Prefix(String),
}

/// One authenticator per VM.
pub struct Authenticator {
    enabled: bool,
    anonymous: Identity,
    unauthenticated: Vec<PathPattern>,
    identity_header: String,
    max_token_bytes: usize,
    api_keys: apikey::ApiKeyStore,
    jwt: Option<jwt::JwtVerifier>,
    cache: cache::TokenCache,
    cache_max_ttl: u64,
    fetcher: Option<jwks::JwksFetcher>,
    metadata: metadata::ResourceMetadata,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("enabled", &self.enabled)
            .field("api_keys", &self.api_keys)
            .field("jwt", &self.jwt)
            .field("cached_tokens", &self.cache.len())
            .finish_non_exhaustive()
    }
}

/// Parses `Bearer <token>` (scheme case-insensitive). `None` for other schemes.
fn bearer(h: &str) -> Option<&str> {
    let h = h.trim();
    let (scheme, rest) = h.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    if rest.is_empty() {
        return Some("");
    }
    if !rest.starts_with([' ', '\t']) {
        return None;
    }
    Some(rest.trim())
}

/// Paths that could be re-interpreted by a normalising upstream never match a prefix rule.
fn is_plain_path(p: &str) -> bool {
    !p.contains("/..")
        && !p.contains("/./")
        && !p.ends_with("/.")
        && !p.contains('%')
        && !p.contains('\\')
        && !p.contains("//")
}

impl Authenticator {
    pub fn new(cfg: &AuthConfig) -> Result<Self, ConfigError> {
        let key = "security.auth";
        cfg.validate(key)?;
        let resource = cfg.resource_metadata.resource.as_deref();
        let jwt = match &cfg.jwt {
            Some(j) => Some(
                jwt::JwtVerifier::new(j, resource, cfg.max_token_bytes)
                    .map_err(|r| ConfigError::new(format!("{key}.jwt.jwks"), r))?,
            ),
            None => None,
        };
        let fetcher = cfg.jwt.as_ref().and_then(|j| j.remote_jwks.clone()).map(jwks::JwksFetcher::new);
        let unauthenticated = cfg
            .unauthenticated_paths
            .iter()
            .map(|p| match p.strip_suffix('*') {
                Some(prefix) => PathPattern::Prefix(prefix.to_string()),
                None => PathPattern::Exact(p.clone()),
            })
            .collect();
        Ok(Self {
            enabled: cfg.enabled,
            anonymous: Identity {
                client_id: "anonymous".to_string(),
                method: AuthMethod::Anonymous,
                permissions: cfg.anonymous_permissions.clone(),
                roles: Vec::new(),
                scopes: Vec::new(),
                api_key_index: None,
            },
            unauthenticated,
            identity_header: cfg.identity_header.clone(),
            max_token_bytes: cfg.max_token_bytes,
            api_keys: apikey::ApiKeyStore::new(&cfg.api_keys),
            cache: cache::TokenCache::new(cfg.jwt.as_ref().map_or(1, |j| j.cache_size)),
            cache_max_ttl: cfg.jwt.as_ref().map_or(1, |j| j.cache_max_ttl_secs),
            jwt,
            fetcher,
            metadata: metadata::ResourceMetadata::new(&cfg.resource_metadata),
        })
    }

    /// Whether authentication is enforced (`security.auth.enabled`).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The identity used for every caller when `enabled` is false.
    pub fn anonymous_identity(&self) -> Identity {
        self.anonymous.clone()
    }

    pub fn authenticate(&mut self, creds: &Credentials, now_secs: u64) -> AuthOutcome {
        if !self.enabled {
            return AuthOutcome::Authenticated(self.anonymous.clone());
        }
        if let Some(token) = creds.authorization.and_then(bearer) {
            return self.check_bearer(token, now_secs);
        }
        match creds.api_key.map(str::trim) {
            Some(k) => self.check_api_key(k),
            None => AuthOutcome::Missing,
        }
    }

    fn check_api_key(&self, key: &str) -> AuthOutcome {
        if key.is_empty() || key.len() > self.max_token_bytes {
            return AuthOutcome::Invalid(AuthFailure::MalformedToken);
        }
        match self.api_keys.lookup(key).and_then(|i| self.api_keys.identity(i)) {
            Some(id) => AuthOutcome::Authenticated(id),
            None => AuthOutcome::Invalid(AuthFailure::UnknownApiKey),
        }
    }

    fn check_bearer(&mut self, token: &str, now: u64) -> AuthOutcome {
        if token.is_empty() || token.len() > self.max_token_bytes {
            return AuthOutcome::Invalid(AuthFailure::MalformedToken);
        }
        let Some(verifier) = self.jwt.as_ref().filter(|_| jwt::looks_like_jwt(token)) else {
            if self.jwt.is_some() && self.api_keys.is_empty() {
                return AuthOutcome::Invalid(AuthFailure::MalformedToken);
            }
            return self.check_api_key(token);
        };
        let digest = hmac_sha256::Hash::hash(token.as_bytes());
        if let Some(id) = self.cache.get(&digest, now) {
            return AuthOutcome::Authenticated(id);
        }
        match verifier.verify(token, now) {
            Ok(v) => {
                let cap = now.saturating_add(self.cache_max_ttl);
                let until = v.expires_at.map_or(cap, |e| e.saturating_add(verifier.leeway_secs).min(cap));
                self.cache.insert(digest, v.identity.clone(), until, now);
                AuthOutcome::Authenticated(v.identity)
            }
            Err(jwt::JwtError::UnknownKey) => AuthOutcome::UnknownKey,
            Err(jwt::JwtError::Fail(f)) => AuthOutcome::Invalid(f),
        }
    }

    /// The final failure for an `UnknownKey` that could not be resolved by a fetch.
    pub fn unknown_key_failure(&self) -> AuthFailure {
        match &self.jwt {
            Some(j) if j.has_keys() => AuthFailure::UnknownKid,
            _ => AuthFailure::KeysUnavailable,
        }
    }

    /// Exact match, or prefix match for `prefix*` rules (query string ignored). A prefix rule
    /// never matches a path with dot segments, `//`, `%` or `\`, so an upstream that normalises
    /// paths cannot be reached through an unauthenticated prefix.
    pub fn is_unauthenticated_path(&self, path: &str) -> bool {
        let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
        self.unauthenticated.iter().any(|p| match p {
            PathPattern::Exact(e) => path == e,
            PathPattern::Prefix(pre) => path.starts_with(pre.as_str()) && is_plain_path(path),
        })
    }

    /// Asks for a JWKS fetch. `None` when no `remote_jwks`, not due, rate-limited (at most one
    /// fetch per `min_refetch_secs`) or one is in flight. `Some` marks a fetch in flight.
    pub fn jwks_fetch(&mut self, now_secs: u64, reason: FetchReason) -> Option<JwksRequest> {
        let f = self.fetcher.as_mut()?;
        f.due(now_secs, reason).then(|| f.start(now_secs))
    }

    /// A fetch was started and has neither answered nor timed out.
    pub fn jwks_fetch_in_flight(&self, now_secs: u64) -> bool {
        self.fetcher.as_ref().is_some_and(|f| f.in_flight(now_secs))
    }

    /// Feeds the JWKS response (`status` 0 / `body` None for a failed call). On success the
    /// remote key set is replaced (and the token cache cleared if it changed); on any failure
    /// the last good set is kept. Err carries a loggable reason (never key material).
    pub fn on_jwks_response(
        &mut self,
        status: u16,
        body: Option<&[u8]>,
        now_secs: u64,
    ) -> Result<usize, String> {
        let (Some(f), Some(v)) = (self.fetcher.as_mut(), self.jwt.as_mut()) else {
            return Err("jwks: remote_jwks not configured".to_string());
        };
        match jwks::parse_jwks_response(status, body, v.algs()) {
            Ok(keys) => {
                let fp = hmac_sha256::Hash::hash(body.unwrap_or_default());
                f.finish(now_secs, true);
                if f.fingerprint != Some(fp) {
                    f.fingerprint = Some(fp);
                    self.cache.clear();
                }
                let n = keys.len();
                v.remote = keys;
                Ok(n)
            }
            Err(reason) => {
                f.finish(now_secs, false);
                Err(reason)
            }
        }
    }

    /// Tick period the glue should set (`None`: no timer needed).
    pub fn tick_period_secs(&self) -> Option<u64> {
        self.fetcher.as_ref().map(jwks::JwksFetcher::tick_period)
    }

    /// `Some(json)` when `request_path` is `/.well-known/oauth-protected-resource[/...]`.
    pub fn protected_resource_metadata(
        &self,
        request_path: &str,
        scheme: &str,
        authority: &str,
    ) -> Option<String> {
        self.metadata.document(request_path, scheme, authority)
    }

    /// The `WWW-Authenticate` value for a 401 (`Missing`, `InvalidToken`) or 403 (`InsufficientScope`).
    pub fn challenge(&self, kind: Challenge<'_>, mcp_path: &str, scheme: &str, authority: &str) -> String {
        self.metadata.challenge(kind, mcp_path, scheme, authority)
    }

    /// Header set upstream with the authenticated client id.
    pub fn identity_header(&self) -> &str {
        &self.identity_header
    }

    /// `rate_limit` of `security.auth.api_keys[index]` (see `Identity::api_key_index`).
    pub fn api_key_rate_limit(&self, index: usize) -> Option<RateLimitSpec> {
        self.api_keys.rate_limit(index)
    }

    #[cfg(test)]
    pub(crate) fn cached_tokens(&self) -> usize {
        self.cache.len()
    }
}

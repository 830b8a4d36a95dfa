//! JWT verification (jwt-simple) and claim mapping.
//!
//! Order: size and shape -> untrusted header (`alg`, `kid`) -> `alg` must be configured ->
//! candidate keys are those bound to that exact `alg` (and `kid`) -> signature -> `exp`, `nbf`,
//! `iat`, `iss`, `aud` (jwt-simple, with `now` and leeway from us) -> claims to [`Identity`].

use std::collections::HashSet;

use jwt_simple::prelude::*;
use jwt_simple::JWTError;
use serde_json::{Map, Value};

use super::config::{is_safe_client_id, ClaimNames, ClaimsConfig, JwtAlg, JwtConfig};
use super::jwks::{KeyMaterial, VerifyKey};
use super::{AuthFailure, AuthMethod, Identity};

/// Signature attempts per token when the `kid` does not narrow the candidates down.
const MAX_CANDIDATES: usize = 8;
/// Values taken from one list claim (permissions, roles, scopes).
const MAX_CLAIM_VALUES: usize = 256;

/// Latest `now` passed to jwt-simple (year 2106), so its time arithmetic cannot overflow.
const MAX_NOW: u64 = (1 << 32) - 1024;

type Custom = Map<String, Value>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JwtError {
    Fail(AuthFailure),
    /// No configured or fetched key matches the token's `kid` (remote JWKS configured).
    UnknownKey,
}

/// A verified token.
#[derive(Debug, Clone)]
pub(crate) struct Verified {
    pub identity: Identity,
    pub expires_at: Option<u64>,
}

pub(crate) struct JwtVerifier {
    algs: Vec<JwtAlg>,
    options: VerificationOptions,
    require_exp: bool,
    pub leeway_secs: u64,
    claims: ClaimsConfig,
    /// Inline keys: `jwks`, `public_keys_pem`, `hs256_secret`.
    inline: Vec<VerifyKey>,
    /// Keys from the last good remote JWKS.
    pub remote: Vec<VerifyKey>,
    remote_configured: bool,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("algs", &self.algs)
            .field("inline_keys", &self.inline.len())
            .field("remote_keys", &self.remote.len())
            .finish_non_exhaustive()
    }
}

/// `xxx.yyy.zzz` with base64url characters only.
pub(crate) fn looks_like_jwt(t: &str) -> bool {
    let mut dots = 0;
    for b in t.bytes() {
        match b {
            b'.' => dots += 1,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => {}
            _ => return false,
        }
    }
    dots == 2
}

fn map_error(e: &jwt_simple::Error) -> AuthFailure {
    match e.downcast_ref::<JWTError>() {
        Some(JWTError::InvalidSignature | JWTError::InvalidAuthenticationTag) => AuthFailure::BadSignature,
        Some(JWTError::TokenHasExpired) => AuthFailure::Expired,
        Some(JWTError::TokenNotValidYet | JWTError::ClockDrift) => AuthFailure::NotYetValid,
        Some(JWTError::RequiredIssuerMismatch | JWTError::RequiredIssuerMissing) => AuthFailure::WrongIssuer,
        Some(JWTError::RequiredAudienceMismatch | JWTError::RequiredAudienceMissing) => {
            AuthFailure::WrongAudience
        }
        Some(JWTError::AlgorithmMismatch) => AuthFailure::AlgorithmNotAllowed,
        _ => AuthFailure::MalformedToken,
    }
}

fn verify_with(
    k: &VerifyKey,
    token: &str,
    o: VerificationOptions,
) -> Result<JWTClaims<Custom>, jwt_simple::Error> {
    let o = Some(o);
    match &k.material {
        KeyMaterial::RS256(p) => p.verify_token::<Custom>(token, o),
        KeyMaterial::RS384(p) => p.verify_token::<Custom>(token, o),
        KeyMaterial::RS512(p) => p.verify_token::<Custom>(token, o),
        KeyMaterial::PS256(p) => p.verify_token::<Custom>(token, o),
        KeyMaterial::PS384(p) => p.verify_token::<Custom>(token, o),
        KeyMaterial::PS512(p) => p.verify_token::<Custom>(token, o),
        KeyMaterial::ES256(p) => p.verify_token::<Custom>(token, o),
        KeyMaterial::ES384(p) => p.verify_token::<Custom>(token, o),
        KeyMaterial::EdDSA(p) => p.verify_token::<Custom>(token, o),
        KeyMaterial::HS256(p) => p.verify_token::<Custom>(token, o),
    }
}

/// Checks a signature-verified token's raw segments, where jwt-simple is more lenient than the
/// JOSE specs (both found by fuzzing):
/// - header and claims must be UTF-8 JSON objects without duplicate names at any depth (RFC 7515
///   allows rejecting duplicates; jwt-simple accepted invalid UTF-8 in unknown header fields, and
///   a duplicated custom claim such as `roles` would be read differently by other parsers);
/// - `exp`, `nbf` and `iat`, when present, must be numbers in `0..2^32`: jwt-simple casts them
///   with `as` into a u64 that keeps seconds in its upper 32 bits, so a negative `exp` wrapped to
///   the year 2106 and an expired token passed.
fn raw_segments_valid(token: &str) -> bool {
    use base64::Engine as _;
    let object = |segment: Option<&str>| -> Option<serde_json::Map<String, Value>> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(segment?).ok()?;
        match crate::jsonrpc::parse_strict(&bytes).ok()? {
            Value::Object(m) => Some(m),
            _ => None,
        }
    };
    let mut segments = token.split('.');
    let (Some(_header), Some(claims)) = (object(segments.next()), object(segments.next())) else {
        return false;
    };
    ["exp", "nbf", "iat"].iter().all(|name| match claims.get(*name) {
        None => true,
        Some(v) => v.as_f64().is_some_and(|t| (0.0..4_294_967_296.0).contains(&t)),
    })
}

/// Looks a claim up: standard claims by name, others literally, then as a dotted path.
fn claim<'a>(c: &'a JWTClaims<Custom>, name: &str) -> Option<std::borrow::Cow<'a, Value>> {
    use std::borrow::Cow;
    match name {
        "sub" => return c.subject.as_ref().map(|s| Cow::Owned(Value::String(s.clone()))),
        "iss" => return c.issuer.as_ref().map(|s| Cow::Owned(Value::String(s.clone()))),
        "jti" => return c.jwt_id.as_ref().map(|s| Cow::Owned(Value::String(s.clone()))),
        _ => {}
    }
    if let Some(v) = c.custom.get(name) {
        return Some(Cow::Borrowed(v));
    }
    if !name.contains('.') {
        return None;
    }
    let mut parts = name.split('.');
    let mut cur = c.custom.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(Cow::Borrowed(cur))
}

/// Arrays of strings, or one space-separated string; merged over all names, deduplicated.
pub(crate) fn claim_list(c: &JWTClaims<Custom>, names: &ClaimNames) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        if !s.is_empty() && out.len() < MAX_CLAIM_VALUES && !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    };
    for n in names.names() {
        match claim(c, n).as_deref() {
            Some(Value::String(s)) => s.split_whitespace().for_each(&mut push),
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::trim).for_each(&mut push),
            _ => {}
        }
    }
    out
}

impl JwtVerifier {
    pub fn new(cfg: &JwtConfig, resource: Option<&str>, max_token_bytes: usize) -> Result<Self, String> {
        let algs = cfg.effective_algorithms();
        let mut inline = Vec::new();
        if let Some(v) = &cfg.jwks {
            inline.extend(super::jwks::parse_jwk_set(v, &algs)?);
        }
        for pem in &cfg.public_keys_pem {
            inline.extend(super::jwks::parse_pem(pem, &algs));
        }
        if let Some(s) = &cfg.hs256_secret {
            if algs.contains(&JwtAlg::HS256) {
                inline.push(VerifyKey::hs256(s.expose().as_bytes()));
            }
        }
        let audiences: HashSet<String> = cfg.effective_audiences(resource).into_iter().collect();
        let options = VerificationOptions {
            allowed_issuers: cfg.issuer.as_ref().map(|i| HashSet::from([i.clone()])),
            allowed_audiences: Some(audiences),
            time_tolerance: Some(Duration::from_secs(cfg.leeway_secs)),
            max_token_length: Some(max_token_bytes),
            ..Default::default()
        };
        Ok(Self {
            algs,
            options,
            require_exp: cfg.require_exp,
            leeway_secs: cfg.leeway_secs,
            claims: cfg.claims.clone(),
            inline,
            remote: Vec::new(),
            remote_configured: cfg.remote_jwks.is_some(),
        })
    }

    pub fn algs(&self) -> &[JwtAlg] {
        &self.algs
    }

    pub fn has_keys(&self) -> bool {
        !self.inline.is_empty() || !self.remote.is_empty()
    }

    pub fn verify(&self, token: &str, now: u64) -> Result<Verified, JwtError> {
        // jwt-simple keeps seconds in the upper 32 bits of a u64: keep `now + leeway` in range.
        let now = now.min(MAX_NOW);
        let fail = |f| Err(JwtError::Fail(f));
        if token.len() > self.options.max_token_length.unwrap_or(0) || !looks_like_jwt(token) {
            return fail(AuthFailure::MalformedToken);
        }
        let Ok(meta) = Token::decode_metadata(token) else {
            return fail(AuthFailure::MalformedToken);
        };
        let Some(alg) = JwtAlg::from_name(meta.algorithm()).filter(|a| self.algs.contains(a)) else {
            return fail(AuthFailure::AlgorithmNotAllowed);
        };
        let kid = meta.key_id();
        let all = || self.inline.iter().chain(self.remote.iter()).filter(|k| k.alg == alg);
        let mut candidates: Vec<&VerifyKey> = match kid {
            Some(kid) => {
                let exact: Vec<_> = all().filter(|k| k.kid.as_deref() == Some(kid)).collect();
                if exact.is_empty() {
                    all().filter(|k| k.kid.is_none()).collect()
                } else {
                    exact
                }
            }
            None => all().collect(),
        };
        candidates.truncate(MAX_CANDIDATES);
        if candidates.is_empty() {
            if self.remote_configured {
                return Err(JwtError::UnknownKey);
            }
            return fail(if kid.is_some() { AuthFailure::UnknownKid } else { AuthFailure::KeysUnavailable });
        }
        let mut last = AuthFailure::BadSignature;
        let mut claims = None;
        for k in candidates {
            let mut o = self.options.clone();
            o.artificial_time = Some(Duration::from_secs(now));
            match verify_with(k, token, o) {
                Ok(c) => {
                    claims = Some(c);
                    break;
                }
                Err(e) => {
                    last = map_error(&e);
                    // Anything but a bad signature means the signature was checked and good,
                    // or the token is broken in a way no other key can fix.
                    if last != AuthFailure::BadSignature {
                        return fail(last);
                    }
                }
            }
        }
        let Some(c) = claims else {
            if self.remote_configured && kid.is_some() && !all().any(|k| k.kid.as_deref() == kid) {
                return Err(JwtError::UnknownKey);
            }
            return fail(last);
        };
        if !raw_segments_valid(token) {
            return fail(AuthFailure::InvalidClaim);
        }
        let expires_at = c.expires_at.map(|e| e.as_secs());
        if self.require_exp && expires_at.is_none() {
            return fail(AuthFailure::MissingClaim);
        }
        let mut client_id = None;
        for n in self.claims.client_id.names() {
            if let Some(Value::String(s)) = claim(&c, n).as_deref() {
                if !s.is_empty() {
                    client_id = Some(s.clone());
                    break;
                }
            }
        }
        let Some(client_id) = client_id else {
            return fail(AuthFailure::MissingClaim);
        };
        if !is_safe_client_id(&client_id) {
            return fail(AuthFailure::InvalidClaim);
        }
        Ok(Verified {
            identity: Identity {
                client_id,
                method: AuthMethod::Jwt,
                permissions: claim_list(&c, &self.claims.permissions),
                roles: claim_list(&c, &self.claims.roles),
                scopes: claim_list(&c, &self.claims.scopes),
                api_key_index: None,
            },
            expires_at,
        })
    }
}

//! Verification keys: JWK-set and PEM parsing, and the remote-JWKS fetch state machine.
//!
//! A key is always bound to exactly one algorithm ([`VerifyKey::alg`]); the token's `alg`
//! header only selects among keys already bound to that algorithm, so an RSA public key can
//! never be used as an HMAC secret (algorithm confusion) and `none` has no key at all.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use jwt_simple::prelude::*;
use serde_json::Value;

use super::config::{JwtAlg, RemoteJwksConfig};

/// Most keys taken from one JWK set.
pub const MAX_JWKS_KEYS: usize = 64;
/// Largest JWKS response body accepted.
pub const MAX_JWKS_BODY: usize = 256 * 1024;
const MIN_RSA_BITS: usize = 2048;
const MAX_RSA_BITS: usize = 8192;

const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Key material typed by algorithm.
#[derive(Clone)]
pub(crate) enum KeyMaterial {
    RS256(RS256PublicKey),
    RS384(RS384PublicKey),
    RS512(RS512PublicKey),
    PS256(PS256PublicKey),
    PS384(PS384PublicKey),
    PS512(PS512PublicKey),
    ES256(ES256PublicKey),
    ES384(ES384PublicKey),
    EdDSA(Ed25519PublicKey),
    HS256(HS256Key),
}

/// One verification key bound to one algorithm.
#[derive(Clone)]
pub(crate) struct VerifyKey {
    pub kid: Option<String>,
    pub alg: JwtAlg,
    pub material: KeyMaterial,
}

impl std::fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyKey").field("kid", &self.kid).field("alg", &self.alg).finish_non_exhaustive()
    }
}

impl VerifyKey {
    pub fn hs256(secret: &[u8]) -> VerifyKey {
        VerifyKey {
            kid: None,
            alg: JwtAlg::HS256,
            material: KeyMaterial::HS256(HS256Key::from_bytes(secret)),
        }
    }
}

fn b64(v: Option<&Value>) -> Option<Vec<u8>> {
    B64URL.decode(v?.as_str()?).ok()
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[start..]
}

fn rsa_bits(n: &[u8]) -> usize {
    let n = strip_leading_zeros(n);
    match n.first() {
        None => 0,
        Some(f) => n.len() * 8 - f.leading_zeros() as usize,
    }
}

/// Builds RSA keys for every allowed RSA algorithm (or only `only`).
fn rsa_keys(
    n: &[u8],
    e: &[u8],
    kid: Option<&str>,
    only: Option<JwtAlg>,
    allowed: &[JwtAlg],
) -> Vec<VerifyKey> {
    let bits = rsa_bits(n);
    let e = strip_leading_zeros(e);
    if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) || e.is_empty() || e.len() > 8 {
        return Vec::new();
    }
    let n = strip_leading_zeros(n);
    let mut out = Vec::new();
    for alg in allowed.iter().copied().filter(|a| a.is_rsa() && only.is_none_or(|o| o == *a)) {
        let material = match alg {
            JwtAlg::RS256 => RS256PublicKey::from_components(n, e).ok().map(KeyMaterial::RS256),
            JwtAlg::RS384 => RS384PublicKey::from_components(n, e).ok().map(KeyMaterial::RS384),
            JwtAlg::RS512 => RS512PublicKey::from_components(n, e).ok().map(KeyMaterial::RS512),
            JwtAlg::PS256 => PS256PublicKey::from_components(n, e).ok().map(KeyMaterial::PS256),
            JwtAlg::PS384 => PS384PublicKey::from_components(n, e).ok().map(KeyMaterial::PS384),
            JwtAlg::PS512 => PS512PublicKey::from_components(n, e).ok().map(KeyMaterial::PS512),
            _ => None,
        };
        if let Some(material) = material {
            out.push(VerifyKey { kid: kid.map(str::to_string), alg, material });
        }
    }
    out
}

fn sec1(x: &[u8], y: &[u8], len: usize) -> Option<Vec<u8>> {
    if x.len() != len || y.len() != len {
        return None;
    }
    let mut p = Vec::with_capacity(1 + 2 * len);
    p.push(0x04);
    p.extend_from_slice(x);
    p.extend_from_slice(y);
    Some(p)
}

/// Parses one JWK; unsupported, non-signature or disallowed keys yield nothing.
fn parse_jwk(k: &Value, allowed: &[JwtAlg]) -> Vec<VerifyKey> {
    let Some(obj) = k.as_object() else {
        return Vec::new();
    };
    let s = |name: &str| obj.get(name).and_then(Value::as_str);
    if s("use").is_some_and(|u| u != "sig") {
        return Vec::new();
    }
    if let Some(ops) = obj.get("key_ops").and_then(Value::as_array) {
        if !ops.iter().any(|o| o.as_str() == Some("verify")) {
            return Vec::new();
        }
    }
    let kid = s("kid");
    if kid.is_some_and(|k| k.len() > 256) {
        return Vec::new();
    }
    let jwk_alg = match s("alg") {
        None => None,
        Some("Ed25519") => Some(JwtAlg::EdDSA),
        Some(a) => match JwtAlg::from_name(a) {
            // HS256 keys are never taken from a JWK set: only from hs256_secret.
            Some(JwtAlg::HS256) | None => return Vec::new(),
            Some(alg) => Some(alg),
        },
    };
    if jwk_alg.is_some_and(|a| !allowed.contains(&a)) {
        return Vec::new();
    }
    let single = |alg: JwtAlg, material: Option<KeyMaterial>| -> Vec<VerifyKey> {
        match material {
            Some(material) if allowed.contains(&alg) && jwk_alg.is_none_or(|a| a == alg) => {
                vec![VerifyKey { kid: kid.map(str::to_string), alg, material }]
            }
            _ => Vec::new(),
        }
    };
    match (s("kty"), s("crv")) {
        (Some("RSA"), _) => match (b64(obj.get("n")), b64(obj.get("e"))) {
            (Some(n), Some(e)) => rsa_keys(&n, &e, kid, jwk_alg, allowed),
            _ => Vec::new(),
        },
        (Some("EC"), Some("P-256")) => {
            let p = b64(obj.get("x")).zip(b64(obj.get("y"))).and_then(|(x, y)| sec1(&x, &y, 32));
            single(JwtAlg::ES256, p.and_then(|p| ES256PublicKey::from_bytes(&p).ok()).map(KeyMaterial::ES256))
        }
        (Some("EC"), Some("P-384")) => {
            let p = b64(obj.get("x")).zip(b64(obj.get("y"))).and_then(|(x, y)| sec1(&x, &y, 48));
            single(JwtAlg::ES384, p.and_then(|p| ES384PublicKey::from_bytes(&p).ok()).map(KeyMaterial::ES384))
        }
        (Some("OKP"), Some("Ed25519")) => {
            let x = b64(obj.get("x")).filter(|x| x.len() == 32);
            single(
                JwtAlg::EdDSA,
                x.and_then(|x| Ed25519PublicKey::from_bytes(&x).ok()).map(KeyMaterial::EdDSA),
            )
        }
        _ => Vec::new(),
    }
}

/// Parses a JWK set object. Err only when the document is not a JWK set at all; unusable keys
/// are skipped (the result may be empty).
pub(crate) fn parse_jwk_set(v: &Value, allowed: &[JwtAlg]) -> Result<Vec<VerifyKey>, String> {
    let keys = v
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| "not a JWK set (expected an object with a `keys` array)".to_string())?;
    let mut out = Vec::new();
    for k in keys.iter().take(MAX_JWKS_KEYS) {
        out.extend(parse_jwk(k, allowed));
    }
    Ok(out)
}

/// Parses a PEM public key (SPKI RSA/P-256/P-384/Ed25519, or PKCS#1 RSA). Keys get no `kid`
/// and match tokens with any `kid`.
pub(crate) fn parse_pem(pem: &str, allowed: &[JwtAlg]) -> Vec<VerifyKey> {
    let pem = pem.trim();
    if pem.len() > 64 * 1024 || !pem.starts_with("-----BEGIN ") {
        return Vec::new();
    }
    let one = |alg: JwtAlg, material: KeyMaterial| vec![VerifyKey { kid: None, alg, material }];
    if let Ok(k) = ES256PublicKey::from_pem(pem) {
        return if allowed.contains(&JwtAlg::ES256) {
            one(JwtAlg::ES256, KeyMaterial::ES256(k))
        } else {
            Vec::new()
        };
    }
    if let Ok(k) = ES384PublicKey::from_pem(pem) {
        return if allowed.contains(&JwtAlg::ES384) {
            one(JwtAlg::ES384, KeyMaterial::ES384(k))
        } else {
            Vec::new()
        };
    }
    if let Ok(k) = Ed25519PublicKey::from_pem(pem) {
        return if allowed.contains(&JwtAlg::EdDSA) {
            one(JwtAlg::EdDSA, KeyMaterial::EdDSA(k))
        } else {
            Vec::new()
        };
    }
    if let Ok(k) = RS256PublicKey::from_pem(pem) {
        let c = k.to_components();
        return rsa_keys(&c.n, &c.e, None, None, allowed);
    }
    Vec::new()
}

/// Why a JWKS fetch is requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchReason {
    /// Periodic refresh (the glue's `on_tick`, and once at start).
    Timer,
    /// A token named a `kid` that is not in the key set.
    UnknownKid,
}

/// An HTTP GET the glue must dispatch (`dispatch_http_call`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwksRequest {
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub timeout_ms: u64,
}

/// Fetch scheduling for `remote_jwks`.
#[derive(Debug, Clone)]
pub(crate) struct JwksFetcher {
    pub cfg: RemoteJwksConfig,
    last_attempt: Option<u64>,
    last_success: Option<u64>,
    in_flight_since: Option<u64>,
    /// SHA-256 of the last accepted body, to notice rotations.
    pub fingerprint: Option<[u8; 32]>,
}

impl JwksFetcher {
    pub fn new(cfg: RemoteJwksConfig) -> Self {
        Self { cfg, last_attempt: None, last_success: None, in_flight_since: None, fingerprint: None }
    }

    /// A fetch whose response never came is forgotten after its timeout plus 5 s.
    pub fn in_flight(&self, now: u64) -> bool {
        match self.in_flight_since {
            Some(t) => now < t.saturating_add(self.cfg.timeout_ms.div_ceil(1000)).saturating_add(5),
            None => false,
        }
    }

    fn spaced(&self, now: u64) -> bool {
        self.last_attempt.is_none_or(|t| now >= t.saturating_add(self.cfg.min_refetch_secs))
    }

    pub fn due(&self, now: u64, reason: FetchReason) -> bool {
        if self.in_flight(now) || !self.spaced(now) {
            return false;
        }
        match reason {
            FetchReason::UnknownKid => true,
            FetchReason::Timer => {
                self.last_success.is_none_or(|t| now >= t.saturating_add(self.cfg.refresh_secs))
            }
        }
    }

    pub fn start(&mut self, now: u64) -> JwksRequest {
        self.last_attempt = Some(now);
        self.in_flight_since = Some(now);
        JwksRequest {
            cluster: self.cfg.cluster.clone(),
            path: self.cfg.path.clone(),
            authority: self.cfg.authority.clone(),
            timeout_ms: self.cfg.timeout_ms,
        }
    }

    pub fn finish(&mut self, now: u64, ok: bool) {
        self.in_flight_since = None;
        if ok {
            self.last_success = Some(now);
        }
    }

    pub fn tick_period(&self) -> u64 {
        self.cfg.refresh_secs.min(self.cfg.min_refetch_secs).max(1)
    }
}

/// Parses a JWKS HTTP response. Err carries a reason without secrets.
pub(crate) fn parse_jwks_response(
    status: u16,
    body: Option<&[u8]>,
    allowed: &[JwtAlg],
) -> Result<Vec<VerifyKey>, String> {
    if status != 200 {
        return Err(format!("jwks fetch failed: http status {status}"));
    }
    let body = body.unwrap_or_default();
    if body.is_empty() {
        return Err("jwks fetch failed: empty body".to_string());
    }
    if body.len() > MAX_JWKS_BODY {
        return Err(format!("jwks fetch failed: body larger than {MAX_JWKS_BODY} bytes"));
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|_| "jwks fetch failed: body is not JSON".to_string())?;
    let keys = parse_jwk_set(&v, allowed).map_err(|r| format!("jwks fetch failed: {r}"))?;
    if keys.is_empty() {
        return Err("jwks fetch failed: no usable signature key".to_string());
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::json;

    fn all() -> Vec<JwtAlg> {
        JwtAlg::ASYMMETRIC.to_vec()
    }

    fn es256_jwk(kid: &str) -> (ES256KeyPair, Value) {
        let kp = ES256KeyPair::generate();
        let raw = kp.public_key().public_key().to_bytes_uncompressed();
        let jwk = json!({"kty":"EC","crv":"P-256","kid":kid,"use":"sig","alg":"ES256",
            "x": B64URL.encode(&raw[1..33]), "y": B64URL.encode(&raw[33..65])});
        (kp, jwk)
    }

    #[test]
    fn parses_ec_okp_and_skips_unsupported() {
        let (_kp, ec) = es256_jwk("a");
        let ed = Ed25519KeyPair::generate();
        let okp =
            json!({"kty":"OKP","crv":"Ed25519","kid":"b","x":B64URL.encode(ed.public_key().to_bytes())});
        let p384 = ES384KeyPair::generate();
        let raw = p384.public_key().public_key().to_bytes_uncompressed();
        let ec384 = json!({"kty":"EC","crv":"P-384","kid":"c","x":B64URL.encode(&raw[1..49]),"y":B64URL.encode(&raw[49..97])});
        let set = json!({"keys":[ec, okp, ec384,
            {"kty":"EC","crv":"P-256","kid":"enc","use":"enc","x":"AA","y":"AA"},
            {"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0","alg":"HS256"},
            {"kty":"EC","crv":"secp256k1","x":"AA","y":"AA"},
            {"kty":"RSA","n":"AQAB","e":"AQAB"},
            {"kty":"OKP","crv":"Ed25519","x":"not base64!"},
            "garbage", 7, null]});
        let keys = parse_jwk_set(&set, &all()).unwrap();
        let got: Vec<_> = keys.iter().map(|k| (k.kid.clone().unwrap_or_default(), k.alg)).collect();
        assert_eq!(
            got,
            vec![("a".into(), JwtAlg::ES256), ("b".into(), JwtAlg::EdDSA), ("c".into(), JwtAlg::ES384)]
        );
        // Disallowed algorithm: ES256 keys dropped.
        let only_ed = parse_jwk_set(&set, &[JwtAlg::EdDSA]).unwrap();
        assert_eq!(only_ed.len(), 1);
        assert!(parse_jwk_set(&json!({"nokeys":[]}), &all()).is_err());
        assert!(parse_jwk_set(&json!([1, 2]), &all()).is_err());
    }

    #[test]
    fn jwk_alg_must_match_key_type() {
        let (_kp, mut ec) = es256_jwk("a");
        ec["alg"] = json!("RS256");
        assert!(parse_jwk_set(&json!({"keys":[ec]}), &all()).unwrap().is_empty());
    }

    #[test]
    fn response_errors() {
        assert!(parse_jwks_response(503, Some(b"{}"), &all()).unwrap_err().contains("503"));
        assert!(parse_jwks_response(200, None, &all()).is_err());
        assert!(parse_jwks_response(200, Some(b"<html>"), &all()).is_err());
        assert!(parse_jwks_response(200, Some(br#"{"keys":[]}"#), &all()).is_err());
        let big = vec![b' '; MAX_JWKS_BODY + 1];
        assert!(parse_jwks_response(200, Some(&big), &all()).is_err());
    }

    #[test]
    fn pem_parsing() {
        let es = ES256KeyPair::generate().public_key().to_pem().unwrap();
        assert_eq!(parse_pem(&es, &all()).len(), 1);
        assert!(parse_pem(&es, &[JwtAlg::RS256]).is_empty());
        let ed = Ed25519KeyPair::generate().public_key().to_pem();
        assert_eq!(parse_pem(&ed, &all())[0].alg, JwtAlg::EdDSA);
        assert!(parse_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", &all()).is_empty());
        assert!(parse_pem("hello", &all()).is_empty());
    }

    #[test]
    fn fetch_schedule() {
        let cfg = RemoteJwksConfig {
            cluster: "idp".into(),
            path: "/jwks".into(),
            authority: "idp".into(),
            refresh_secs: 300,
            timeout_ms: 2000,
            min_refetch_secs: 30,
        };
        let mut f = JwksFetcher::new(cfg);
        assert!(f.due(1000, FetchReason::Timer));
        f.start(1000);
        assert!(!f.due(1001, FetchReason::UnknownKid), "in flight");
        f.finish(1001, true);
        assert!(!f.due(1010, FetchReason::UnknownKid), "min_refetch spacing");
        assert!(f.due(1030, FetchReason::UnknownKid));
        assert!(!f.due(1030, FetchReason::Timer), "refresh not due");
        assert!(f.due(1301, FetchReason::Timer));
        // A lost response stops counting as in flight after timeout + 5 s.
        f.start(2000);
        assert!(f.in_flight(2006));
        assert!(!f.in_flight(2007));
        assert_eq!(f.tick_period(), 30);
    }
}

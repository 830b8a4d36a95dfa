//! Authenticator behaviour end to end (natively). Keys are generated at test time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::*;
use serde_json::{json, Map, Value};

use super::*;

const NOW: u64 = 1_900_000_000;
const ISS: &str = "https://idp.example.com/realms/mcp";
const AUD: &str = "http://127.0.0.1:9020/mcp";
/// SHA-256("test-key-0001")
const KEY1: &str = "test-key-0001";

fn sha_hex(s: &str) -> String {
    hmac_sha256::Hash::hash(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn cfg(v: Value) -> AuthConfig {
    serde_json::from_value(v).unwrap()
}

fn auth(v: Value) -> Authenticator {
    Authenticator::new(&cfg(v)).unwrap()
}

fn bearer_creds(t: &str) -> String {
    format!("Bearer {t}")
}

fn run(a: &mut Authenticator, token: &str, now: u64) -> AuthOutcome {
    let h = bearer_creds(token);
    a.authenticate(&Credentials { authorization: Some(&h), api_key: None }, now)
}

fn ok_id(o: AuthOutcome) -> Identity {
    match o {
        AuthOutcome::Authenticated(id) => id,
        other => panic!("expected Authenticated, got {other:?}"),
    }
}

type Cl = JWTClaims<Map<String, Value>>;

fn claims(custom: Value) -> Cl {
    JWTClaims {
        issued_at: Some(Duration::from_secs(NOW)),
        expires_at: Some(Duration::from_secs(NOW + 3600)),
        invalid_before: None,
        issuer: Some(ISS.into()),
        subject: Some("alice".into()),
        audiences: Some(Audiences::AsString(AUD.into())),
        jwt_id: None,
        nonce: None,
        custom: custom.as_object().cloned().unwrap_or_default(),
    }
}

fn es256(kid: &str) -> (ES256KeyPair, Value) {
    let kp = ES256KeyPair::generate().with_key_id(kid);
    let raw = kp.public_key().public_key().to_bytes_uncompressed();
    let jwk = json!({"kty":"EC","crv":"P-256","kid":kid,"use":"sig","alg":"ES256",
        "x": URL_SAFE_NO_PAD.encode(&raw[1..33]), "y": URL_SAFE_NO_PAD.encode(&raw[33..65])});
    (kp, jwk)
}

fn jwt_cfg(jwks: Value) -> Value {
    json!({"jwt":{"issuer":ISS,"audiences":[AUD],"jwks":jwks}})
}

/// One RSA key for the whole run (generation is slow in debug builds).
fn rsa() -> &'static RS256KeyPair {
    static K: OnceLock<RS256KeyPair> = OnceLock::new();
    K.get_or_init(|| RS256KeyPair::generate(2048).unwrap().with_key_id("rsa1"))
}

fn unsigned(header: Value, payload: Value, sig: &str) -> String {
    format!(
        "{}.{}.{sig}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    )
}

// ---------------------------------------------------------------- config

#[test]
fn defaults_fail_closed() {
    let c = AuthConfig::default();
    assert!(c.enabled);
    assert!(c.validate("security.auth").is_ok());
    let parsed = cfg(json!({}));
    assert!(parsed.enabled);
    assert_eq!(parsed.identity_header, "x-mcp-client-id");
    assert_eq!(parsed.anonymous_permissions, vec!["*"]);
    assert!(parsed.warnings().iter().any(|w| w.contains("neither api_keys nor jwt")));
    let mut a = Authenticator::new(&parsed).unwrap();
    assert_eq!(a.authenticate(&Credentials::default(), NOW), AuthOutcome::Missing);
    assert_eq!(
        a.authenticate(&Credentials { authorization: None, api_key: Some("x") }, NOW),
        AuthOutcome::Invalid(AuthFailure::UnknownApiKey)
    );
    assert_eq!(run(&mut a, "a.b.c", NOW), AuthOutcome::Invalid(AuthFailure::UnknownApiKey));
}

#[test]
fn validation_names_keys() {
    let err = |v: Value| cfg(v).validate("security.auth").unwrap_err();
    let e = err(json!({"api_keys":[{"key_sha256":"abc","client_id":"a"}]}));
    assert_eq!(e.key, "security.auth.api_keys[0].key_sha256");
    assert!(e.message.contains("64 hex"));
    let e = err(json!({"api_keys":[{"key":"k1","key_sha256":sha_hex("k1"),"client_id":"a"}]}));
    assert_eq!(e.key, "security.auth.api_keys[0]");
    let e = err(json!({"api_keys":[{"client_id":"a"}]}));
    assert_eq!(e.key, "security.auth.api_keys[0]");
    let e = err(
        json!({"api_keys":[{"key":"dup-key","client_id":"a"},{"key_sha256":sha_hex("dup-key"),"client_id":"b"}]}),
    );
    assert_eq!(e.key, "security.auth.api_keys[1]");
    assert!(!e.to_string().contains("dup-key"), "no secret in errors: {e}");
    let e = err(json!({"api_keys":[{"key":"has space","client_id":"a"}]}));
    assert_eq!(e.key, "security.auth.api_keys[0].key");
    assert!(!e.to_string().contains("has space"));
    let e = err(json!({"api_keys":[{"key":"k","client_id":"bad\nid"}]}));
    assert_eq!(e.key, "security.auth.api_keys[0].client_id");
    let e = err(
        json!({"api_keys":[{"key":"k","client_id":"a","rate_limit":{"requests_per_sec":0,"burst_size":1}}]}),
    );
    assert_eq!(e.key, "security.auth.api_keys[0].rate_limit.requests_per_sec");
    let e = err(json!({"identity_header":"X-Client"}));
    assert_eq!(e.key, "security.auth.identity_header");
    let e = err(json!({"unauthenticated_paths":["healthz"]}));
    assert_eq!(e.key, "security.auth.unauthenticated_paths[0]");
    let e = err(json!({"resource_metadata":{"resource":"mcp.example.com"}}));
    assert_eq!(e.key, "security.auth.resource_metadata.resource");
    let e = err(json!({"resource_metadata":{"scopes_supported":["a b"]}}));
    assert_eq!(e.key, "security.auth.resource_metadata.scopes_supported[0]");

    let (_kp, jwk) = es256("k1");
    let e = err(json!({"jwt":{"jwks":{"keys":[jwk.clone()]}}}));
    assert_eq!(e.key, "security.auth.jwt.audiences", "audience is mandatory");
    // ...unless the resource is configured: it becomes the audience.
    assert!(cfg(json!({"resource_metadata":{"resource":AUD},"jwt":{"jwks":{"keys":[jwk.clone()]}}}))
        .validate("security.auth")
        .is_ok());
    let e = err(json!({"jwt":{"audiences":[AUD]}}));
    assert_eq!(e.key, "security.auth.jwt");
    let e = err(json!({"jwt":{"audiences":[AUD],"jwks":{"keys":[]}}}));
    assert_eq!(e.key, "security.auth.jwt.jwks");
    let e = err(json!({"jwt":{"audiences":[AUD],"jwks":{"nokeys":1}}}));
    assert_eq!(e.key, "security.auth.jwt.jwks");
    let e = err(
        json!({"jwt":{"audiences":[AUD],"public_keys_pem":["-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----"]}}),
    );
    assert_eq!(e.key, "security.auth.jwt.public_keys_pem[0]");
    let e = err(json!({"jwt":{"audiences":[AUD],"hs256_secret":"short-secret-value"}}));
    assert_eq!(e.key, "security.auth.jwt.hs256_secret");
    assert!(!e.to_string().contains("short-secret-value"));
    let e = err(json!({"jwt":{"audiences":[AUD],"algorithms":["HS256"],"jwks":{"keys":[jwk.clone()]}}}));
    assert_eq!(e.key, "security.auth.jwt.algorithms");
    let e = err(
        json!({"jwt":{"audiences":[AUD],"algorithms":["ES256"],"hs256_secret":"0123456789abcdef0123456789abcdef"}}),
    );
    assert_eq!(e.key, "security.auth.jwt.hs256_secret");
    let e =
        err(json!({"jwt":{"audiences":[AUD],"remote_jwks":{"cluster":"","path":"/j","authority":"idp"}}}));
    assert_eq!(e.key, "security.auth.jwt.remote_jwks.cluster");
    let e =
        err(json!({"jwt":{"audiences":[AUD],"remote_jwks":{"cluster":"idp","path":"j","authority":"idp"}}}));
    assert_eq!(e.key, "security.auth.jwt.remote_jwks.path");
    // `none` and unknown algorithms do not even parse.
    assert!(serde_json::from_value::<AuthConfig>(json!({"jwt":{"algorithms":["none"]}})).is_err());
    assert!(serde_json::from_value::<AuthConfig>(json!({"jwt":{"algorithms":["HS512"]}})).is_err());
    assert!(serde_json::from_value::<AuthConfig>(json!({"api_keys":[{"key":"k","client_id":"a","x":1}]}))
        .is_err());
}

#[test]
fn whole_config_reports_paths() {
    let e = crate::config::Config::from_json(
        br#"{"security":{"auth":{"api_keys":[{"key_sha256":"zz","client_id":"a"}]}}}"#,
    )
    .unwrap_err();
    assert_eq!(e.key, "security.auth.api_keys[0].key_sha256");
    let e = crate::config::Config::from_json(br#"{"security":{"auth":{"jwt":{"leeway":5}}}}"#).unwrap_err();
    assert!(e.to_string().contains("security.auth.jwt"), "{e}");
}

#[test]
fn warnings_name_plain_keys_and_debug_redacts() {
    let c = cfg(json!({"api_keys":[
        {"key_sha256":sha_hex("a-hashed-key"),"client_id":"a"},
        {"key":"plain-secret-key","client_id":"b"}],
        "jwt":{"audiences":[AUD],"hs256_secret":"0123456789abcdef0123456789abcdef-hs"}}));
    assert!(c.validate("security.auth").is_ok());
    let w = c.warnings();
    assert!(
        w.contains(
            &"security.auth.api_keys[1].key: plain-text API key; use key_sha256 in production".to_string()
        ),
        "{w:?}"
    );
    assert!(w.iter().any(|x| x.starts_with("security.auth.jwt.issuer")));
    assert!(!w.iter().any(|x| x.contains("plain-secret-key")));
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("plain-secret-key") && !dbg.contains("0123456789abcdef"), "{dbg}");
    let a = Authenticator::new(&c).unwrap();
    let dbg = format!("{a:?}");
    assert!(!dbg.contains("plain-secret-key") && !dbg.contains("0123456789abcdef"), "{dbg}");
}

// ---------------------------------------------------------------- API keys

fn api_key_auth() -> Authenticator {
    auth(json!({"api_keys":[
        {"key_sha256":sha_hex(KEY1),"client_id":"admin","permissions":["*"],"roles":["ops"],
         "rate_limit":{"requests_per_sec":5,"burst_size":10}},
        {"key":"dev-plain-key","client_id":"dev","permissions":["tools/call:read_*"]}]}))
}

#[test]
fn api_key_bearer_and_header() {
    let mut a = api_key_auth();
    let id = ok_id(run(&mut a, KEY1, NOW));
    assert_eq!(id.client_id, "admin");
    assert_eq!(id.method, AuthMethod::ApiKey);
    assert_eq!(id.permissions, vec!["*"]);
    assert_eq!(id.roles, vec!["ops"]);
    assert_eq!(id.api_key_index, Some(0));
    assert_eq!(a.api_key_rate_limit(0).map(|r| r.burst_size), Some(10));
    assert_eq!(a.api_key_rate_limit(1), None);
    let id2 = ok_id(a.authenticate(&Credentials { authorization: None, api_key: Some(KEY1) }, NOW));
    assert_eq!(id, id2);
    // Scheme is case-insensitive; plain (development) keys work too.
    let h = "bearer   dev-plain-key ";
    let id = ok_id(a.authenticate(&Credentials { authorization: Some(h), api_key: None }, NOW));
    assert_eq!((id.client_id.as_str(), id.api_key_index), ("dev", Some(1)));
    // Bearer wins over X-API-Key.
    let h = bearer_creds("dev-plain-key");
    let id = ok_id(a.authenticate(&Credentials { authorization: Some(&h), api_key: Some(KEY1) }, NOW));
    assert_eq!(id.client_id, "dev");
    // A non-Bearer Authorization falls through to X-API-Key, or counts as missing.
    let id =
        ok_id(a.authenticate(&Credentials { authorization: Some("Basic YTpi"), api_key: Some(KEY1) }, NOW));
    assert_eq!(id.client_id, "admin");
    assert_eq!(
        a.authenticate(&Credentials { authorization: Some("Basic YTpi"), api_key: None }, NOW),
        AuthOutcome::Missing
    );
    assert_eq!(
        a.authenticate(&Credentials { authorization: Some("Bearerx"), api_key: None }, NOW),
        AuthOutcome::Missing
    );
}

#[test]
fn api_key_rejections() {
    let mut a = api_key_auth();
    let mut one_off = KEY1.as_bytes().to_vec();
    for i in [0, one_off.len() - 1] {
        one_off[i] ^= 1;
        let k = String::from_utf8(one_off.clone()).unwrap();
        assert_eq!(run(&mut a, &k, NOW), AuthOutcome::Invalid(AuthFailure::UnknownApiKey));
        one_off[i] ^= 1;
    }
    assert_eq!(run(&mut a, &format!("{KEY1}x"), NOW), AuthOutcome::Invalid(AuthFailure::UnknownApiKey));
    assert_eq!(run(&mut a, &KEY1[..KEY1.len() - 1], NOW), AuthOutcome::Invalid(AuthFailure::UnknownApiKey));
    // The digest itself is not a key.
    assert_eq!(run(&mut a, &sha_hex(KEY1), NOW), AuthOutcome::Invalid(AuthFailure::UnknownApiKey));
    assert_eq!(
        a.authenticate(&Credentials { authorization: Some("Bearer"), api_key: None }, NOW),
        AuthOutcome::Invalid(AuthFailure::MalformedToken)
    );
    assert_eq!(
        a.authenticate(&Credentials { authorization: None, api_key: Some("  ") }, NOW),
        AuthOutcome::Invalid(AuthFailure::MalformedToken)
    );
    let big = "k".repeat(8193);
    assert_eq!(run(&mut a, &big, NOW), AuthOutcome::Invalid(AuthFailure::MalformedToken));
}

#[test]
fn disabled_is_anonymous() {
    let mut a = auth(json!({"enabled":false}));
    let id = ok_id(a.authenticate(&Credentials::default(), NOW));
    assert_eq!(id.client_id, "anonymous");
    assert_eq!(id.method, AuthMethod::Anonymous);
    assert_eq!(id.permissions, vec!["*"]);
    let mut a = auth(json!({"enabled":false,"anonymous_permissions":["tools/list"]}));
    let id = ok_id(run(&mut a, "whatever", NOW));
    assert_eq!(id.permissions, vec!["tools/list"]);
    assert!(!a.enabled());
}

#[test]
fn unauthenticated_paths() {
    let a = auth(json!({}));
    assert!(a.is_unauthenticated_path("/.well-known/oauth-protected-resource"));
    assert!(a.is_unauthenticated_path("/.well-known/oauth-protected-resource/mcp"));
    assert!(a.is_unauthenticated_path("/healthz?verbose=1"));
    assert!(!a.is_unauthenticated_path("/healthz/x"));
    assert!(!a.is_unauthenticated_path("/mcp"));
    assert!(!a.is_unauthenticated_path("/.well-known/oauth-protected-resource/../../mcp"));
    assert!(!a.is_unauthenticated_path("/.well-known/oauth-protected-resource/%2e%2e/mcp"));
    assert!(!a.is_unauthenticated_path("/.well-known/oauth-protected-resource//mcp"));
    let a = auth(json!({"unauthenticated_paths":["/public/*","/status"]}));
    assert!(a.is_unauthenticated_path("/public/a/b"));
    assert!(a.is_unauthenticated_path("/status"));
    assert!(!a.is_unauthenticated_path("/healthz"));
    assert_eq!(a.identity_header(), "x-mcp-client-id");
    assert_eq!(auth(json!({"identity_header":"x-user"})).identity_header(), "x-user");
}

// ---------------------------------------------------------------- JWT

#[test]
fn jwt_es256_claim_mapping() {
    let (kp, jwk) = es256("k1");
    let mut a = auth(jwt_cfg(json!({"keys":[jwk]})));
    let t = kp
        .sign(claims(json!({"scope":"mcp:tools  mcp:read mcp:tools","scp":["mcp:write"],
            "permissions":["tools/call:*"],"roles":"admin ops"})))
        .unwrap();
    let id = ok_id(run(&mut a, &t, NOW));
    assert_eq!(id.client_id, "alice");
    assert_eq!(id.method, AuthMethod::Jwt);
    assert_eq!(id.scopes, vec!["mcp:tools", "mcp:read", "mcp:write"]);
    assert_eq!(id.permissions, vec!["tools/call:*"]);
    assert_eq!(id.roles, vec!["admin", "ops"]);
    assert_eq!(id.api_key_index, None);
}

#[test]
fn jwt_custom_claim_names() {
    let (kp, jwk) = es256("k1");
    let mut c = jwt_cfg(json!({"keys":[jwk]}));
    c["jwt"]["claims"] = json!({"client_id":["client_id","azp","sub"],"roles":"realm_access.roles",
        "permissions":["perms"],"scopes":"scp"});
    let mut a = auth(c);
    let t = kp
        .sign(claims(json!({"azp":"cli-app","realm_access":{"roles":["viewer"]},"perms":"a b",
            "scope":"ignored","scp":"s1"})))
        .unwrap();
    let id = ok_id(run(&mut a, &t, NOW));
    assert_eq!(id.client_id, "cli-app");
    assert_eq!(id.roles, vec!["viewer"]);
    assert_eq!(id.permissions, vec!["a", "b"]);
    assert_eq!(id.scopes, vec!["s1"]);
}

#[test]
fn jwt_time_issuer_audience() {
    let (kp, jwk) = es256("k1");
    let mut a = auth(jwt_cfg(json!({"keys":[jwk]})));
    let sign = |f: &dyn Fn(&mut Cl)| {
        let mut c = claims(json!({}));
        f(&mut c);
        kp.sign(c).unwrap()
    };
    let expired = sign(&|c| c.expires_at = Some(Duration::from_secs(NOW - 61)));
    assert_eq!(run(&mut a, &expired, NOW), AuthOutcome::Invalid(AuthFailure::Expired));
    let in_leeway = sign(&|c| c.expires_at = Some(Duration::from_secs(NOW - 30)));
    ok_id(run(&mut a, &in_leeway, NOW));
    let future = sign(&|c| c.invalid_before = Some(Duration::from_secs(NOW + 120)));
    assert_eq!(run(&mut a, &future, NOW), AuthOutcome::Invalid(AuthFailure::NotYetValid));
    let iat_future = sign(&|c| c.issued_at = Some(Duration::from_secs(NOW + 3000)));
    assert_eq!(run(&mut a, &iat_future, NOW), AuthOutcome::Invalid(AuthFailure::NotYetValid));
    let iss = sign(&|c| c.issuer = Some("https://evil.example.com".into()));
    assert_eq!(run(&mut a, &iss, NOW), AuthOutcome::Invalid(AuthFailure::WrongIssuer));
    let no_iss = sign(&|c| c.issuer = None);
    assert_eq!(run(&mut a, &no_iss, NOW), AuthOutcome::Invalid(AuthFailure::WrongIssuer));
    let aud = sign(&|c| c.audiences = Some(Audiences::AsString("http://other/mcp".into())));
    assert_eq!(run(&mut a, &aud, NOW), AuthOutcome::Invalid(AuthFailure::WrongAudience));
    let no_aud = sign(&|c| c.audiences = None);
    assert_eq!(run(&mut a, &no_aud, NOW), AuthOutcome::Invalid(AuthFailure::WrongAudience));
    let multi = sign(&|c| {
        c.audiences = Some(Audiences::AsSet(["x".to_string(), AUD.to_string()].into_iter().collect()))
    });
    ok_id(run(&mut a, &multi, NOW));
    let no_exp = sign(&|c| c.expires_at = None);
    assert_eq!(run(&mut a, &no_exp, NOW), AuthOutcome::Invalid(AuthFailure::MissingClaim));
    let no_sub = sign(&|c| c.subject = None);
    assert_eq!(run(&mut a, &no_sub, NOW), AuthOutcome::Invalid(AuthFailure::MissingClaim));
    let bad_sub = sign(&|c| c.subject = Some("a\r\nx-admin: 1".into()));
    assert_eq!(run(&mut a, &bad_sub, NOW), AuthOutcome::Invalid(AuthFailure::InvalidClaim));
    // require_exp: false accepts a token without exp.
    let (kp2, jwk2) = es256("k2");
    let mut c = jwt_cfg(json!({"keys":[jwk2]}));
    c["jwt"]["require_exp"] = json!(false);
    let mut b = auth(c);
    let mut cl = claims(json!({}));
    cl.expires_at = None;
    ok_id(run(&mut b, &kp2.sign(cl).unwrap(), NOW));
}

#[test]
fn jwt_wrong_key_none_and_malformed() {
    let (_kp, jwk) = es256("k1");
    let (other, _) = es256("k1");
    let mut a = auth(jwt_cfg(json!({"keys":[jwk]})));
    let forged = other.sign(claims(json!({}))).unwrap();
    assert_eq!(run(&mut a, &forged, NOW), AuthOutcome::Invalid(AuthFailure::BadSignature));
    // Unknown kid without remote JWKS: final.
    let (stranger, _) = es256("zz");
    assert_eq!(
        run(&mut a, &stranger.sign(claims(json!({}))).unwrap(), NOW),
        AuthOutcome::Invalid(AuthFailure::UnknownKid)
    );
    let payload = serde_json::to_value(claims(json!({}))).unwrap();
    let none = unsigned(json!({"alg":"none","typ":"JWT","kid":"k1"}), payload.clone(), "");
    assert_eq!(run(&mut a, &none, NOW), AuthOutcome::Invalid(AuthFailure::AlgorithmNotAllowed));
    let none2 = unsigned(json!({"alg":"None"}), payload.clone(), "e30");
    assert_eq!(run(&mut a, &none2, NOW), AuthOutcome::Invalid(AuthFailure::AlgorithmNotAllowed));
    // Valid ES256 token with the header's alg rewritten: the signature no longer matches,
    // and RS256 has no key bound to it.
    let good = _kp.sign(claims(json!({}))).unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    let h = URL_SAFE_NO_PAD.encode(json!({"alg":"ES384","kid":"k1"}).to_string());
    let re_alg = format!("{h}.{}.{}", parts[1], parts[2]);
    let o = run(&mut a, &re_alg, NOW);
    assert!(matches!(o, AuthOutcome::Invalid(AuthFailure::UnknownKid | AuthFailure::BadSignature)), "{o:?}");
    // Tampered payload.
    let p2 = URL_SAFE_NO_PAD.encode(json!({"sub":"admin","iss":ISS,"aud":AUD,"exp":NOW+60}).to_string());
    let tampered = format!("{}.{p2}.{}", parts[0], parts[2]);
    assert_eq!(run(&mut a, &tampered, NOW), AuthOutcome::Invalid(AuthFailure::BadSignature));
    for bad in [
        "a.b.c",
        "eyJ.eyJ.",
        "...",
        "..",
        "x.y",
        "e30.e30.e30",
        "eyJhbGciOiJFUzI1NiJ9.!!!.xx",
        &format!("{}.{}.{}", parts[0], parts[1], "A"),
        &format!("{}.e30.{}", parts[0], parts[2]),
    ] {
        let o = run(&mut a, bad, NOW);
        assert!(matches!(o, AuthOutcome::Invalid(_)), "{bad}: {o:?}");
    }
    let mut big_claims = claims(json!({}));
    big_claims.custom.insert("pad".into(), Value::String("x".repeat(9000)));
    let big = _kp.sign(big_claims).unwrap();
    assert_eq!(run(&mut a, &big, NOW), AuthOutcome::Invalid(AuthFailure::MalformedToken));
    // With no API keys configured, an opaque bearer token is a malformed JWT.
    assert_eq!(run(&mut a, "opaque-token", NOW), AuthOutcome::Invalid(AuthFailure::MalformedToken));
}

#[test]
fn jwt_eddsa_and_pem() {
    let kp = Ed25519KeyPair::generate();
    let pem = kp.public_key().to_pem();
    let mut a = auth(json!({"jwt":{"issuer":ISS,"audiences":[AUD],"public_keys_pem":[pem]}}));
    let t = kp.with_key_id("any-kid").sign(claims(json!({}))).unwrap();
    assert_eq!(ok_id(run(&mut a, &t, NOW)).client_id, "alice");
}

#[test]
fn jwt_hs256_only_when_configured() {
    let secret = "0123456789abcdef0123456789abcdef-hs";
    let key = HS256Key::from_bytes(secret.as_bytes());
    let t = key.authenticate(claims(json!({}))).unwrap();
    let mut a = auth(json!({"jwt":{"issuer":ISS,"audiences":[AUD],"hs256_secret":secret}}));
    ok_id(run(&mut a, &t, NOW));
    let wrong =
        HS256Key::from_bytes(b"another-secret-another-secret-xx").authenticate(claims(json!({}))).unwrap();
    assert_eq!(run(&mut a, &wrong, NOW), AuthOutcome::Invalid(AuthFailure::BadSignature));
    let (_kp, jwk) = es256("k1");
    let mut b = auth(jwt_cfg(json!({"keys":[jwk]})));
    assert_eq!(run(&mut b, &t, NOW), AuthOutcome::Invalid(AuthFailure::AlgorithmNotAllowed));
}

#[test]
fn jwt_rsa_and_algorithm_confusion() {
    let kp = rsa();
    let pem = kp.public_key().to_pem().unwrap();
    let comps = kp.public_key().to_components();
    let jwk = json!({"kty":"RSA","kid":"rsa1","use":"sig","n":URL_SAFE_NO_PAD.encode(&comps.n),"e":URL_SAFE_NO_PAD.encode(&comps.e)});
    let rs = kp.sign(claims(json!({}))).unwrap();
    let ps = PS256KeyPair::from_der(&kp.to_der().unwrap())
        .unwrap()
        .with_key_id("rsa1")
        .sign(claims(json!({})))
        .unwrap();
    let mut by_jwk = auth(jwt_cfg(json!({"keys":[jwk.clone()]})));
    ok_id(run(&mut by_jwk, &rs, NOW));
    ok_id(run(&mut by_jwk, &ps, NOW));
    let mut by_pem = auth(json!({"jwt":{"issuer":ISS,"audiences":[AUD],"public_keys_pem":[pem.clone()]}}));
    ok_id(run(&mut by_pem, &rs, NOW));
    // JWK pinned to RS256: a PS256 token has no key.
    let mut pinned_jwk = jwk.clone();
    pinned_jwk["alg"] = json!("RS256");
    let mut pinned = auth(jwt_cfg(json!({"keys":[pinned_jwk]})));
    assert_eq!(run(&mut pinned, &ps, NOW), AuthOutcome::Invalid(AuthFailure::UnknownKid));
    // Algorithm confusion: HS256 "signed" with the RSA public key (PEM and DER bytes).
    for secret in [pem.as_bytes().to_vec(), kp.public_key().to_der().unwrap()] {
        let forged =
            HS256Key::from_bytes(&secret).with_key_id("rsa1").authenticate(claims(json!({}))).unwrap();
        assert_eq!(run(&mut by_jwk, &forged, NOW), AuthOutcome::Invalid(AuthFailure::AlgorithmNotAllowed));
        assert_eq!(run(&mut by_pem, &forged, NOW), AuthOutcome::Invalid(AuthFailure::AlgorithmNotAllowed));
        // Even with HS256 enabled, only hs256_secret verifies HS256.
        let mut mixed = auth(json!({"jwt":{"issuer":ISS,"audiences":[AUD],"public_keys_pem":[pem.clone()],
            "hs256_secret":"0123456789abcdef0123456789abcdef-hs"}}));
        assert_eq!(run(&mut mixed, &forged, NOW), AuthOutcome::Invalid(AuthFailure::BadSignature));
        ok_id(run(&mut mixed, &rs, NOW));
    }
    // Restricting algorithms removes RSA.
    let mut c = jwt_cfg(json!({"keys":[jwk, es256("e").1]}));
    c["jwt"]["algorithms"] = json!(["ES256"]);
    let mut es_only = auth(c);
    assert_eq!(run(&mut es_only, &rs, NOW), AuthOutcome::Invalid(AuthFailure::AlgorithmNotAllowed));
}

// ---------------------------------------------------------------- cache

#[test]
fn cache_hit_and_expiry() {
    let (kp, jwk) = es256("k1");
    let mut c = jwt_cfg(json!({"keys":[jwk]}));
    c["jwt"]["cache_size"] = json!(2);
    c["jwt"]["leeway_secs"] = json!(0);
    let mut a = auth(c);
    let mut cl = claims(json!({"scope":"a"}));
    cl.expires_at = Some(Duration::from_secs(NOW + 100));
    let t = kp.sign(cl).unwrap();
    let first = ok_id(run(&mut a, &t, NOW));
    assert_eq!(a.cached_tokens(), 1);
    let second = ok_id(run(&mut a, &t, NOW + 50));
    assert_eq!(first, second);
    assert_eq!(a.cached_tokens(), 1);
    ok_id(run(&mut a, &t, NOW + 100));
    assert_eq!(run(&mut a, &t, NOW + 101), AuthOutcome::Invalid(AuthFailure::Expired));
    assert_eq!(a.cached_tokens(), 0);
    // Bounded.
    for i in 0..5 {
        let mut cl = claims(json!({}));
        cl.subject = Some(format!("u{i}"));
        ok_id(run(&mut a, &kp.sign(cl).unwrap(), NOW));
    }
    assert_eq!(a.cached_tokens(), 2);
    // cache_max_ttl_secs bounds an entry even before exp.
    let (kp2, jwk2) = es256("k1");
    let mut c = jwt_cfg(json!({"keys":[jwk2]}));
    c["jwt"]["cache_max_ttl_secs"] = json!(10);
    let mut b = auth(c);
    let t2 = kp2.sign(claims(json!({}))).unwrap();
    ok_id(run(&mut b, &t2, NOW));
    ok_id(run(&mut b, &t2, NOW + 20));
    assert_eq!(b.cached_tokens(), 1, "re-verified and re-cached");
}

// ---------------------------------------------------------------- remote JWKS

fn remote_cfg() -> Value {
    json!({"resource_metadata":{"resource":AUD,"authorization_servers":[ISS]},
        "jwt":{"issuer":ISS,"remote_jwks":{"cluster":"idp","path":"/certs","authority":"idp.example.com"}}})
}

fn body(keys: &[&Value]) -> Vec<u8> {
    json!({ "keys": keys }).to_string().into_bytes()
}

#[test]
fn remote_jwks_unknown_kid_and_rotation() {
    let (k1, j1) = es256("k1");
    let (k2, j2) = es256("k2");
    let mut a = auth(remote_cfg());
    assert_eq!(a.tick_period_secs(), Some(30));
    let t1 = k1.sign(claims(json!({}))).unwrap();
    assert_eq!(run(&mut a, &t1, NOW), AuthOutcome::UnknownKey);
    assert_eq!(a.unknown_key_failure(), AuthFailure::KeysUnavailable);
    let req = a.jwks_fetch(NOW, FetchReason::UnknownKid).unwrap();
    assert_eq!(
        req,
        JwksRequest {
            cluster: "idp".into(),
            path: "/certs".into(),
            authority: "idp.example.com".into(),
            timeout_ms: 2000
        }
    );
    assert!(a.jwks_fetch_in_flight(NOW));
    assert_eq!(a.jwks_fetch(NOW, FetchReason::UnknownKid), None, "in flight");
    assert_eq!(a.jwks_fetch(NOW, FetchReason::Timer), None, "in flight");
    assert_eq!(a.on_jwks_response(200, Some(&body(&[&j1])), NOW + 1), Ok(1));
    assert!(!a.jwks_fetch_in_flight(NOW + 1));
    ok_id(run(&mut a, &t1, NOW + 1));
    assert_eq!(a.cached_tokens(), 1);

    // Rotation: k2 appears. Unknown kid asks for a fetch at most once per min_refetch_secs.
    let t2 = k2.sign(claims(json!({}))).unwrap();
    assert_eq!(run(&mut a, &t2, NOW + 2), AuthOutcome::UnknownKey);
    assert_eq!(a.unknown_key_failure(), AuthFailure::UnknownKid);
    assert_eq!(a.jwks_fetch(NOW + 2, FetchReason::UnknownKid), None, "rate limited");
    assert_eq!(a.jwks_fetch(NOW + 29, FetchReason::UnknownKid), None, "rate limited");
    assert!(!a.jwks_fetch_in_flight(NOW + 29));
    assert!(a.jwks_fetch(NOW + 30, FetchReason::UnknownKid).is_some());
    assert_eq!(a.jwks_fetch(NOW + 31, FetchReason::UnknownKid), None);
    assert_eq!(a.on_jwks_response(200, Some(&body(&[&j2])), NOW + 31), Ok(1));
    ok_id(run(&mut a, &t2, NOW + 31));
    // k1 was removed: the cache was cleared and t1 is no longer accepted.
    assert_eq!(run(&mut a, &t1, NOW + 31), AuthOutcome::UnknownKey);
    // A token with a known kid but a bad signature is not an unknown key.
    let (forger, _) = es256("k2");
    assert_eq!(
        run(&mut a, &forger.sign(claims(json!({}))).unwrap(), NOW + 31),
        AuthOutcome::Invalid(AuthFailure::BadSignature)
    );
}

#[test]
fn remote_jwks_failures_keep_last_good_set() {
    let (k1, j1) = es256("k1");
    let mut a = auth(remote_cfg());
    assert!(a.jwks_fetch(NOW, FetchReason::Timer).is_some(), "first tick fetches");
    assert_eq!(a.on_jwks_response(200, Some(&body(&[&j1])), NOW), Ok(1));
    let t1 = k1.sign(claims(json!({}))).unwrap();
    assert_eq!(a.jwks_fetch(NOW + 100, FetchReason::Timer), None, "refresh not due");
    assert!(a.jwks_fetch(NOW + 300, FetchReason::Timer).is_some());
    let err = a.on_jwks_response(503, Some(b"down"), NOW + 301).unwrap_err();
    assert!(err.contains("503"));
    ok_id(run(&mut a, &t1, NOW + 301));
    // Retry after min_refetch_secs, garbage this time.
    assert_eq!(a.jwks_fetch(NOW + 310, FetchReason::Timer), None);
    assert!(a.jwks_fetch(NOW + 331, FetchReason::Timer).is_some());
    assert!(a.on_jwks_response(200, Some(b"<html>oops</html>"), NOW + 331).is_err());
    assert!(a.jwks_fetch(NOW + 361, FetchReason::Timer).is_some());
    assert!(a.on_jwks_response(200, Some(br#"{"keys":[{"kty":"oct","k":"AAAA"}]}"#), NOW + 361).is_err());
    assert!(a.jwks_fetch(NOW + 391, FetchReason::Timer).is_some());
    assert!(a.on_jwks_response(0, None, NOW + 391).is_err());
    let mut fresh = auth(remote_cfg());
    fresh.on_jwks_response(200, Some(&body(&[&j1])), NOW).unwrap();
    // Still the good set (fresh authenticator: no cache involved).
    ok_id(run(&mut fresh, &t1, NOW + 400));
    ok_id(run(&mut a, &t1, NOW + 400));
    // Not configured.
    let mut plain = auth(jwt_cfg(json!({"keys":[j1]})));
    assert_eq!(plain.jwks_fetch(NOW, FetchReason::Timer), None);
    assert_eq!(plain.tick_period_secs(), None);
    assert!(plain.on_jwks_response(200, Some(b"{}"), NOW).is_err());
}

#[test]
fn remote_and_resource_audience() {
    // audiences omitted: the configured resource is the audience.
    let (k1, j1) = es256("k1");
    let mut a = auth(remote_cfg());
    a.on_jwks_response(200, Some(&body(&[&j1])), NOW).unwrap();
    let mut cl = claims(json!({}));
    cl.audiences = Some(Audiences::AsString("http://127.0.0.1:9020/other".into()));
    assert_eq!(run(&mut a, &k1.sign(cl).unwrap(), NOW), AuthOutcome::Invalid(AuthFailure::WrongAudience));
}

// ---------------------------------------------------------------- metadata

#[test]
fn prm_and_challenge_through_authenticator() {
    let a = auth(remote_cfg());
    let d: Value = serde_json::from_str(
        &a.protected_resource_metadata("/.well-known/oauth-protected-resource/mcp", "http", "x").unwrap(),
    )
    .unwrap();
    assert_eq!(d["resource"], AUD);
    assert_eq!(d["authorization_servers"], json!([ISS]));
    assert_eq!(d["bearer_methods_supported"], json!(["header"]));
    assert!(a.protected_resource_metadata("/mcp", "http", "x").is_none());
    assert_eq!(
        a.challenge(Challenge::InvalidToken, "/mcp", "http", "x"),
        "Bearer error=\"invalid_token\", resource_metadata=\"http://127.0.0.1:9020/.well-known/oauth-protected-resource/mcp\""
    );
    assert_eq!(AuthOutcome::Missing.challenge(), Some(Challenge::Missing));
    assert_eq!(AuthOutcome::UnknownKey.challenge(), Some(Challenge::InvalidToken));
    assert_eq!(AuthFailure::WrongAudience.as_str(), "wrong_audience");
}

// ---------------------------------------------------------------- robustness

#[test]
fn never_panics_on_odd_input() {
    let (kp, jwk) = es256("k1");
    let mut c = jwt_cfg(json!({"keys":[jwk]}));
    c["api_keys"] = json!([{"key":"k-1","client_id":"a"}]);
    let mut a = auth(c);
    let good = kp.sign(claims(json!({}))).unwrap();
    for now in [0, 1, 59, 60, u64::MAX / 2, u64::MAX] {
        let _ = run(&mut a, &good, now);
    }
    let mut weird = claims(json!({}));
    weird.expires_at = Some(Duration::from_secs(u64::MAX));
    weird.issued_at = Some(Duration::from_secs(u64::MAX));
    let weird = kp.sign(weird).unwrap();
    for now in [0, NOW, u64::MAX] {
        let _ = run(&mut a, &weird, now);
    }
    let neg = unsigned(json!({"alg":"ES256","kid":"k1"}), json!({"exp":-1,"nbf":-5e300,"iat":1e300}), "AAAA");
    let _ = run(&mut a, &neg, NOW);
    let mut inputs: Vec<String> = vec![
        "".into(),
        "Bearer".into(),
        "Bearer ".into(),
        "Bearer\t".into(),
        "Bearer \u{0}".into(),
        "Bearer é.é.é".into(),
        "Bearer 🦀".into(),
        "bEaReR a.b.c".into(),
        "Bearer ..".into(),
        "Bearer .".into(),
        "Bearer eyJhbGciOiJub25lIn0..".into(),
        "Bearer eyJhbGciOiJFUzI1NiJ9.eyJleHAiOiJzb29uIn0.AAAA".into(),
        "Bearer eyJhbGciOiJFUzI1NiIsImtpZCI6MX0.e30.AAAA".into(),
        "Bearer eyJhbGciOlsiRVMyNTYiXX0.e30.AAAA".into(),
        "é".into(),
        "Bearé".into(),
    ];
    for cut in [1, 10, good.len() / 2, good.len() - 1] {
        inputs.push(format!("Bearer {}", &good[..cut]));
    }
    for i in 0..good.len() {
        let mut b = good.clone().into_bytes();
        b[i] = if b[i] == b'A' { b'B' } else { b'A' };
        inputs.push(format!("Bearer {}", String::from_utf8(b).unwrap()));
    }
    for h in &inputs {
        let o = a.authenticate(&Credentials { authorization: Some(h), api_key: Some(h) }, NOW);
        if let AuthOutcome::Authenticated(id) = &o {
            // A flipped byte may land in base64 padding bits only; the identity must be intact.
            assert_eq!(id.client_id, "alice", "{h}");
        }
        let _ = a.authenticate(&Credentials { authorization: None, api_key: Some(h) }, u64::MAX);
        let _ = a.authenticate(&Credentials { authorization: Some(h), api_key: None }, 0);
    }
}

// ---------------------------------------------------------------- timing

/// CPU time of this thread in ns (Linux schedstat), so a loaded machine does not inflate it;
/// falls back to wall time elsewhere.
fn cpu_ns(wall: std::time::Instant) -> u128 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or_else(|| wall.elapsed().as_nanos())
}

#[test]
#[ignore]
fn timing_cached_vs_uncached() {
    let wall = std::time::Instant::now();
    let n = 200u32;
    let kp = rsa();
    let comps = kp.public_key().to_components();
    let jwk = json!({"kty":"RSA","kid":"rsa1","n":URL_SAFE_NO_PAD.encode(&comps.n),"e":URL_SAFE_NO_PAD.encode(&comps.e)});
    let (es, esjwk) = es256("es1");
    let mut a = auth(jwt_cfg(json!({"keys":[jwk, esjwk]})));
    let rs = kp.sign(claims(json!({"scope":"mcp:tools mcp:read"}))).unwrap();
    let est = es.sign(claims(json!({"scope":"mcp:tools mcp:read"}))).unwrap();
    for (name, t) in [("RS256", &rs), ("ES256", &est)] {
        let h = bearer_creds(t);
        let creds = Credentials { authorization: Some(&h), api_key: None };
        let start = cpu_ns(wall);
        for _ in 0..n {
            a.cache.clear();
            ok_id(a.authenticate(&creds, NOW));
        }
        let uncached = (cpu_ns(wall) - start) / u128::from(n);
        let m = n * 100;
        let start = cpu_ns(wall);
        for _ in 0..m {
            ok_id(a.authenticate(&creds, NOW));
        }
        let cached = (cpu_ns(wall) - start) / u128::from(m);
        let start = cpu_ns(wall);
        for _ in 0..m {
            std::hint::black_box(hmac_sha256::Hash::hash(t.as_bytes()));
        }
        let sha = (cpu_ns(wall) - start) / u128::from(m);
        println!(
            "{name} ({} B token): uncached {uncached} ns/verify, cached {cached} ns/hit (of which SHA-256 {sha} ns)",
            t.len()
        );
    }
    let mut k = api_key_auth();
    let creds = Credentials { authorization: None, api_key: Some(KEY1) };
    let m = n * 100;
    let start = cpu_ns(wall);
    for _ in 0..m {
        ok_id(k.authenticate(&creds, NOW));
    }
    println!("API key (2 keys): {} ns/lookup", (cpu_ns(wall) - start) / u128::from(m));
}

/// Fuzz-found (jwt_verify): jwt-simple cast a negative `exp` into the far future (an expired
/// token passed) and accepted invalid UTF-8 in unknown header fields. A verified token's raw
/// header and claims must be strict UTF-8 JSON (no duplicate names) with time claims in 0..2^32.
#[test]
fn jwt_raw_segments_are_checked() {
    let secret = "0123456789abcdef0123456789abcdef-hs";
    let mut a = auth(json!({"jwt":{"issuer":ISS,"audiences":[AUD],"hs256_secret":secret}}));
    let sign = |h: &[u8], p: &str| {
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(h), URL_SAFE_NO_PAD.encode(p));
        let sig = hmac_sha256::HMAC::mac(input.as_bytes(), secret.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    };
    let hs = br#"{"alg":"HS256"}"#;
    let base = format!(r#""iss":"{ISS}","aud":"{AUD}","sub":"a""#);
    ok_id(run(&mut a, &sign(hs, &format!("{{{base},\"exp\":{},\"roles\":[\"x\"]}}", NOW + 60)), NOW));
    for extra in [
        r#""exp":-5"#,
        r#""exp":-1.0e3"#,
        r#""nbf":-5"#,
        r#""iat":-5"#,
        r#""exp":4294967297"#,
        r#""exp":1,"exp":1999999999"#,
        r#""iss":"evil""#,
        r#""roles":["reader"],"roles":["admin"]"#,
        r#""ext":{"a":1,"a":2}"#,
    ] {
        let got = run(&mut a, &sign(hs, &format!("{{{base},{extra}}}")), NOW);
        assert!(matches!(got, AuthOutcome::Invalid(_)), "{extra} accepted: {got:?}");
    }
    let claims = format!("{{{base}}}");
    for header in [&b"{\"alg\":\"HS256\",\"x\":\"JW\xa8\"}"[..], br#"{"alg":"HS256","kid":"a","kid":"b"}"#] {
        let got = run(&mut a, &sign(header, &claims), NOW);
        assert!(matches!(got, AuthOutcome::Invalid(_)), "header {header:?} accepted: {got:?}");
    }
}

//! Bearer token strings → `Authenticator::authenticate` (HS256 configured).
//!
//! Input byte 0 picks the mode: raw token text, or a token built from fuzzed header and payload
//! JSON and signed with the configured secret (so the claim checks are reached). Checked: no
//! panic; a token is accepted only if its signature is the HMAC of its signing input under the
//! configured secret (so `alg: none`, empty or foreign signatures never pass), its header says
//! HS256, `iss` and `aud` match and `exp` has not passed.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use mcp_gateway::auth::{AuthConfig, AuthOutcome, Authenticator, Credentials};
use serde_json::Value;

const SECRET: &str = "fuzz-secret-0123456789abcdef-0123456789";
const ISS: &str = "https://idp.example";
const AUD: &str = "https://gw.example/mcp";
const NOW: u64 = 1_800_000_000;

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn authenticator() -> Authenticator {
    let cfg: AuthConfig = serde_json::from_value(serde_json::json!({
        "enabled": true,
        "jwt": {"issuer": ISS, "audiences": [AUD], "hs256_secret": SECRET, "leeway_secs": 30}
    }))
    .expect("auth config");
    Authenticator::new(&cfg).expect("authenticator")
}

fn json_part(b: &str) -> Option<Value> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let token = if mode & 1 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        // "<header json>\0<payload json>", signed with the configured secret.
        let (h, p) = match rest.iter().position(|b| *b == 0) {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (&br#"{"alg":"HS256","typ":"JWT"}"#[..], rest),
        };
        let input = format!("{}.{}", b64(h), b64(p));
        let sig = hmac_sha256::HMAC::mac(input.as_bytes(), SECRET.as_bytes());
        format!("{input}.{}", b64(&sig))
    };
    let header = format!("Bearer {token}");
    let mut a = authenticator();
    let outcome = a.authenticate(&Credentials { authorization: Some(&header), api_key: None }, NOW);
    let AuthOutcome::Authenticated(id) = outcome else { return };

    let parts: Vec<&str> = token.trim().split('.').collect();
    assert_eq!(parts.len(), 3, "accepted a token without three parts");
    let signing_input = format!("{}.{}", parts[0], parts[1]);
    let expected = hmac_sha256::HMAC::mac(signing_input.as_bytes(), SECRET.as_bytes());
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[2])
        .expect("accepted undecodable signature");
    assert_eq!(sig, expected.to_vec(), "accepted a token whose signature is not ours");
    let head = json_part(parts[0]).expect("accepted undecodable header");
    assert_eq!(head.get("alg").and_then(Value::as_str), Some("HS256"), "accepted alg {head}");
    let claims = json_part(parts[1]).expect("accepted undecodable claims");
    assert_eq!(claims.get("iss").and_then(Value::as_str), Some(ISS), "wrong issuer accepted: {claims}");
    let aud_ok = match claims.get("aud") {
        Some(Value::String(s)) => s == AUD,
        Some(Value::Array(a)) => a.iter().any(|v| v.as_str() == Some(AUD)),
        _ => false,
    };
    assert!(aud_ok, "wrong audience accepted: {claims}");
    if let Some(exp) = claims.get("exp").and_then(Value::as_f64) {
        assert!(exp + 30.0 >= NOW as f64, "expired token accepted: {claims}");
    }
    assert!(!id.client_id.is_empty());
});

//! JWKS documents → `Authenticator::on_jwks_response` (remote JWKS) and inline `jwt.jwks`
//! configuration. Checked: no panic, whatever the document (bad base64, huge moduli, unknown
//! kty/alg/crv, duplicate kids, deep JSON); a refused document leaves the authenticator usable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_gateway::auth::{AuthConfig, Authenticator, Credentials};

fuzz_target!(|data: &[u8]| {
    let cfg: AuthConfig = serde_json::from_value(serde_json::json!({
        "enabled": true,
        "jwt": {"issuer": "https://idp.example", "audiences": ["gw"], "algorithms": ["RS256", "ES256", "EdDSA"],
                "remote_jwks": {"cluster": "idp", "path": "/jwks.json", "authority": "idp"}}
    }))
    .expect("auth config");
    let mut a = Authenticator::new(&cfg).expect("authenticator");
    let _ = a.on_jwks_response(200, Some(data), 1_000);
    let _ = a.on_jwks_response(500, Some(data), 1_001);
    let token = "Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJ4In0.c2ln";
    let _ = a.authenticate(&Credentials { authorization: Some(token), api_key: None }, 1_002);

    // The same document inline in the configuration.
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let inline = serde_json::json!({
            "enabled": true,
            "jwt": {"issuer": "https://idp.example", "audiences": ["gw"], "jwks": v}
        });
        if let Ok(cfg) = serde_json::from_value::<AuthConfig>(inline) {
            if cfg.validate("security.auth").is_ok() {
                let _ = Authenticator::new(&cfg);
            }
        }
    }
});

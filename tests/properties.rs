//! Property tests of the bucket arithmetic and the policy evaluation, driven by a tiny seeded
//! PRNG (no dependencies). Each property runs a few thousand random cases; a failure prints the
//! seed so the case can be replayed (`PROP_SEED=<n> cargo test --test properties`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mcp_gateway::audit::AuditRecord;
use mcp_gateway::auth::{AuthMethod, Identity};
use mcp_gateway::config::Config;
use mcp_gateway::pipeline::{BodyVerdict, Gateway, RequestHead};
use mcp_gateway::policy::{Item, ListKind, Policy, Target};
use mcp_gateway::ratelimit::bucket::{self, Params, State, UNIT};
use mcp_gateway::ratelimit::RateLimitSpec;
use mcp_gateway::shared::MemoryStore;
use mcp_gateway::testing::Rng;
use serde_json::{json, Value};

fn cases(name: &str, n: u64, mut f: impl FnMut(&mut Rng)) {
    let base = std::env::var("PROP_SEED").ok().and_then(|s| s.parse().ok());
    let seeds: Vec<u64> = match base {
        Some(s) => vec![s],
        None => (0..n).map(|i| i.wrapping_mul(0x2545_f491_4f6c_dd1d) ^ 0x5eed).collect(),
    };
    for seed in seeds {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut Rng(seed))));
        if let Err(e) = r {
            eprintln!("property `{name}` failed with PROP_SEED={seed}");
            std::panic::resume_unwind(e);
        }
    }
}

fn random_params(rng: &mut Rng) -> Params {
    let rps = *rng.pick(&[0.001, 0.1, 0.5, 1.0, 2.0, 3.3, 10.0, 1000.0, 1e6, 4e9]);
    let burst = *rng.pick(&[1u32, 2, 3, 10, 40, 1000, u32::MAX]);
    Params::from_spec(&RateLimitSpec { requests_per_sec: rps, burst_size: burst })
}

// ---- bucket arithmetic ------------------------------------------------------------------------

#[test]
fn bucket_never_grants_more_than_burst_plus_refill() {
    cases("bucket_bound", 3000, |rng| {
        let p = random_params(rng);
        let t0 = rng.below(1 << 40);
        let mut s = p.fresh(t0);
        let (mut now, mut granted) = (t0, 0u128);
        for _ in 0..rng.below(400) {
            now += *rng.pick(&[0, 0, 1, 7, 100, 999, 1000, 60_000]);
            s = p.refill(s, now);
            assert!(s.tokens <= p.cap, "tokens above capacity");
            if let Some(next) = s.take() {
                s = next;
                granted += 1;
            }
        }
        let refilled = u128::from(now - t0) * u128::from(p.rate) / u128::from(UNIT);
        assert!(granted <= u128::from(p.burst) + refilled, "granted {granted} > {} + {refilled}", p.burst);
    });
}

#[test]
fn refill_is_exact_monotone_and_ignores_clock_going_back() {
    cases("refill", 3000, |rng| {
        let p = random_params(rng);
        let s = State { tokens: rng.below(p.cap + 1), last_ms: rng.below(1 << 40) };
        let t1 = s.last_ms + rng.below(100_000);
        let t2 = t1 + rng.below(100_000);
        // Two refills equal one (no rounding loss when refills are frequent).
        assert_eq!(p.refill(p.refill(s, t1), t2), p.refill(s, t2));
        assert!(p.refill(s, t2).tokens >= p.refill(s, t1).tokens);
        // A clock that goes backwards adds nothing and never moves last_ms back.
        let back = p.refill(s, s.last_ms.saturating_sub(1 + rng.below(10_000)));
        assert_eq!(back, State { tokens: s.tokens.min(p.cap), last_ms: s.last_ms });
        // Corrupt states (tokens above capacity, huge times) saturate instead of overflowing.
        let wild = State { tokens: rng.next_u64(), last_ms: rng.next_u64() };
        let r = p.refill(wild, rng.next_u64());
        assert!(r.tokens <= p.cap && r.last_ms >= wild.last_ms);
        let _ =
            (p.retry_after_secs(&r), p.reset_secs(&r), p.full_at_ms(&r), p.window_secs(), p.remaining(&r));
    });
}

#[test]
fn retry_after_is_exactly_when_a_token_is_back() {
    cases("retry_after", 3000, |rng| {
        let p = random_params(rng);
        let s = State { tokens: rng.below(UNIT.min(p.cap)), last_ms: rng.below(1 << 40) };
        assert!(s.take().is_none());
        let wait = p.ms_until(&s, UNIT);
        assert!(wait >= 1);
        assert!(p.refill(s, s.last_ms + wait).take().is_some(), "no token after ms_until");
        assert!(p.refill(s, s.last_ms + wait - 1).take().is_none(), "token before ms_until");
        assert!(p.retry_after_secs(&s) >= 1 && p.retry_after_secs(&s) * 1000 >= wait);
        let full = p.full_at_ms(&s);
        assert_eq!(p.refill(s, full).tokens, p.cap);
    });
}

#[test]
fn slot_values_round_trip_and_garbage_is_a_free_slot() {
    cases("encode", 2000, |rng| {
        let mut fp = [0u8; 16];
        fp.iter_mut().for_each(|b| *b = rng.next_u64() as u8);
        let s = State { tokens: rng.next_u64(), last_ms: rng.next_u64() };
        let full = rng.next_u64();
        let v = bucket::encode(&fp, &s, full);
        assert_eq!(bucket::decode(&v), Some((s, full)));
        let len = rng.below(80) as usize;
        if len != bucket::VALUE_LEN {
            assert_eq!(bucket::decode(&vec![0xa5; len]), None);
        }
    });
}

#[test]
fn pipeline_rate_limit_holds_end_to_end() {
    cases("pipeline_ratelimit", 200, |rng| {
        let rps = *rng.pick(&[0.5, 1.0, 5.0, 50.0]);
        let burst = *rng.pick(&[1u32, 2, 5, 20]);
        let cfg = json!({"backends": [{"name": "fs", "rate_limit": {"requests_per_sec": rps, "burst_size": burst}}]});
        let gw = Gateway::from_json(cfg.to_string().as_bytes()).expect("config");
        let head = RequestHead {
            http_method: "POST".into(),
            path: "/fs/mcp".into(),
            cluster_name: Some("fs".into()),
            route_name: Some("fs".into()),
            ..Default::default()
        };
        let store = MemoryStore::new();
        let who = admin();
        let t0 = 1_000_000 + rng.below(1 << 30);
        let (mut now, mut allowed, mut limited) = (t0, 0u64, 0u64);
        for i in 0..rng.below(120) {
            now += *rng.pick(&[0, 0, 0, 5, 50, 400, 2000]);
            let body = format!(
                r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call","params":{{"name":"read_file"}}}}"#
            );
            match gw.on_request_body(&head, &who, body.as_bytes(), &store, now, &mut AuditRecord::default()) {
                BodyVerdict::Forward { .. } => allowed += 1,
                BodyVerdict::Reply(r) => {
                    assert_eq!(r.status, 429, "{}", r.body);
                    limited += 1;
                }
                BodyVerdict::Detect(_) => panic!("no detector is configured"),
            }
        }
        let bound = u64::from(burst) + ((now - t0) as f64 * rps / 1000.0).floor() as u64;
        assert!(allowed <= bound, "allowed {allowed} > {bound} (limited {limited})");
    });
}

// ---- policy -------------------------------------------------------------------------------------

fn admin() -> Identity {
    who(vec!["*".into()])
}

fn who(permissions: Vec<String>) -> Identity {
    Identity {
        client_id: "p".into(),
        method: AuthMethod::ApiKey,
        permissions,
        roles: vec![],
        scopes: vec![],
        api_key_index: None,
    }
}

/// Reference glob: `*` matches any run of bytes, everything else matches itself.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

const BACKENDS: &[&str] = &["fs", "web", "files"];
const TOOLS: &[&str] = &["read_file", "read_dir", "write_file", "move_file", "rm", "x", "read"];
const TOOL_GLOBS: &[&str] = &["read_*", "*", "*_file", "move_file", "r*d*", "x", "write*", "*e", "nothing"];
const BACKEND_GLOBS: &[&str] = &["fs", "*", "f*", "web", "nope"];

struct Case {
    policy: Policy,
    /// per backend: (allowed_tools, denied_tools)
    rules: Vec<(&'static str, Vec<&'static str>, Vec<&'static str>)>,
    allows: Vec<(&'static str, &'static str)>,
    denies: Vec<(&'static str, &'static str)>,
    identity: Identity,
}

fn random_case(rng: &mut Rng) -> Case {
    let mut rules = Vec::new();
    let mut backends = Vec::new();
    for b in BACKENDS {
        let allowed: Vec<&str> = (0..rng.below(3)).map(|_| *rng.pick(TOOL_GLOBS)).collect();
        let denied: Vec<&str> = (0..rng.below(3)).map(|_| *rng.pick(TOOL_GLOBS)).collect();
        backends.push(json!({"name": b, "allowed_tools": allowed, "denied_tools": denied}));
        rules.push((*b, allowed, denied));
    }
    let cfg = Config::from_json(json!({ "backends": backends }).to_string().as_bytes()).expect("config");
    let policy = Policy::new(&cfg).expect("policy");
    let allows: Vec<_> =
        (0..rng.below(4)).map(|_| (*rng.pick(BACKEND_GLOBS), *rng.pick(TOOL_GLOBS))).collect();
    let denies: Vec<_> =
        (0..rng.below(3)).map(|_| (*rng.pick(BACKEND_GLOBS), *rng.pick(TOOL_GLOBS))).collect();
    let mut perms: Vec<String> = allows.iter().map(|(b, t)| format!("{b}/{t}")).collect();
    perms.extend(denies.iter().map(|(b, t)| format!("!{b}/{t}")));
    // permission order must not matter
    for i in (1..perms.len()).rev() {
        perms.swap(i, rng.below(i as u64 + 1) as usize);
    }
    Case { policy, rules, allows, denies, identity: who(perms) }
}

/// The documented evaluation for `tools/call`: backend denies, then the backend allow-list,
/// then identity denies (deny wins), then identity allows, else default deny.
fn reference(c: &Case, backend: &str, tool: &str) -> bool {
    let m = |p: &str, s: &str| glob(p.as_bytes(), s.as_bytes());
    let (_, allowed, denied) = c.rules.iter().find(|(b, ..)| *b == backend).expect("backend");
    if denied.iter().any(|g| m(g, tool)) {
        return false;
    }
    if !allowed.is_empty() && !allowed.iter().any(|g| m(g, tool)) {
        return false;
    }
    if c.denies.iter().any(|(b, t)| m(b, backend) && m(t, tool)) {
        return false;
    }
    c.allows.iter().any(|(b, t)| m(b, backend) && m(t, tool))
}

fn call<'a>(backend: &'a str, tool: &'a str) -> Target<'a> {
    Target { method: "tools/call", backend, item: Item::Tool(tool), arguments: None }
}

#[test]
fn policy_matches_reference_deny_wins_default_deny() {
    cases("policy_reference", 3000, |rng| {
        let c = random_case(rng);
        for b in BACKENDS {
            for t in TOOLS {
                let d = c.policy.authorize(&c.identity, &call(b, t));
                let expected = reference(&c, b, t);
                assert_eq!(
                    d.allowed, expected,
                    "{b}/{t}: perms {:?}, rules {:?}, rule {}",
                    c.identity.permissions, c.rules, d.rule
                );
                // default deny: nobody without permissions gets an item
                assert!(!c.policy.authorize(&who(vec![]), &call(b, t)).allowed);
                // a matching identity deny wins over everything, even `*`
                let mut with_star = c.identity.clone();
                with_star.permissions.push("*".into());
                if c.denies
                    .iter()
                    .any(|(pb, pt)| glob(pb.as_bytes(), b.as_bytes()) && glob(pt.as_bytes(), t.as_bytes()))
                {
                    assert!(
                        !c.policy.authorize(&with_star, &call(b, t)).allowed,
                        "deny lost to * on {b}/{t}"
                    );
                }
            }
        }
    });
}

#[test]
fn filtered_lists_never_contain_a_refused_tool() {
    cases("policy_lists", 2000, |rng| {
        let c = random_case(rng);
        let backend = *rng.pick(BACKENDS);
        let mut items: Vec<Value> = TOOLS.iter().map(|t| json!({"name": t, "description": "d"})).collect();
        items.push(json!({"description": "no name"}));
        items.push(json!({"name": 42}));
        let before: Vec<Value> = items.clone();
        let resolve = |n: &str| Some((backend.to_string(), n.to_string()));
        let removed = c.policy.filter_list(&c.identity, ListKind::Tools, &mut items, &resolve);
        assert_eq!(removed, before.len() - items.len());
        for it in &items {
            let name = it.get("name").and_then(Value::as_str).expect("kept an item without a string name");
            assert!(c.policy.authorize(&c.identity, &call(backend, name)).allowed, "kept refused {name}");
        }
        for t in TOOLS {
            let kept = items.iter().any(|i| i["name"] == *t);
            assert_eq!(kept, reference(&c, backend, t), "{backend}/{t} kept={kept}");
        }
    });
}

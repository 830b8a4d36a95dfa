//! Native tests of the rate limiter against `MemoryStore` (and wrappers that inject races).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Mutex;

use super::bucket::{Params, State, UNIT};
use super::*;
use crate::shared::{MemoryStore, SharedStore, StoreError};

type TestResult = Result<(), String>;

fn spec(rps: f64, burst: u32) -> RateLimitSpec {
    RateLimitSpec { requests_per_sec: rps, burst_size: burst }
}

fn cfg_json(json: &str) -> Result<RateLimitConfig, String> {
    serde_json::from_str(json).map_err(|e| e.to_string())
}

fn limiter(cfg: &RateLimitConfig) -> Result<RateLimiter, String> {
    RateLimiter::new(cfg, &[], &[]).map_err(|e| e.to_string())
}

fn per_client(rps: f64, burst: u32) -> Result<RateLimiter, String> {
    limiter(&RateLimitConfig { default_per_client: Some(spec(rps, burst)), ..Default::default() })
}

fn req<'a>(client: &'a str, tool: &'a str) -> RateRequest<'a> {
    RateRequest { client_id: client, api_key_index: None, backend: "fs", tool }
}

fn allowed(d: &RateDecision) -> bool {
    matches!(d, RateDecision::Allowed(_))
}

fn count_allowed(l: &RateLimiter, s: &dyn SharedStore, r: &RateRequest<'_>, n: u32, now: u64) -> u32 {
    (0..n).filter(|_| allowed(&l.check(s, r, now))).count() as u32
}

// ---------------------------------------------------------------- bucket arithmetic

#[test]
fn exactly_burst_without_time() -> TestResult {
    for burst in [1u32, 2, 7, 20, 1000] {
        let l = per_client(0.5, burst)?;
        let s = MemoryStore::new();
        assert_eq!(count_allowed(&l, &s, &req("a", "t"), burst + 50, 1_000), burst);
    }
    Ok(())
}

#[test]
fn refill_fractional_and_retry_after() -> TestResult {
    let l = per_client(0.5, 1)?;
    let s = MemoryStore::new();
    let r = req("a", "t");
    assert!(allowed(&l.check(&s, &r, 10_000)));
    match l.check(&s, &r, 10_000) {
        RateDecision::Limited { retry_after_secs, state } => {
            assert_eq!(retry_after_secs, 2);
            assert_eq!((state.limit, state.remaining, state.reset_secs), (1, 0, 2));
        }
        d => return Err(format!("{d:?}")),
    }
    // 0.5 rps: 1999 ms is not enough, 2000 ms is exactly one token.
    assert!(!allowed(&l.check(&s, &r, 11_999)));
    match l.check(&s, &r, 11_999) {
        RateDecision::Limited { retry_after_secs, .. } => assert_eq!(retry_after_secs, 1),
        d => return Err(format!("{d:?}")),
    }
    assert!(allowed(&l.check(&s, &r, 12_000)));
    // Refill in 1 ms steps accumulates exactly (no per-step rounding loss).
    for t in 12_001..=14_000 {
        let _ = l.check(&s, &RateRequest { client_id: "other", ..r }, t);
    }
    assert!(allowed(&l.check(&s, &r, 14_000)));
    Ok(())
}

#[test]
fn clock_backwards_and_long_idle() -> TestResult {
    let l = per_client(1.0, 3)?;
    let s = MemoryStore::new();
    let r = req("a", "t");
    assert_eq!(count_allowed(&l, &s, &r, 3, 100_000), 3);
    // Clock goes back: no refill, no panic, even to 0.
    assert_eq!(count_allowed(&l, &s, &r, 5, 50_000), 0);
    assert_eq!(count_allowed(&l, &s, &r, 5, 0), 0);
    // Back to the original time + 1 s: one token (last refill time was not moved backwards).
    assert_eq!(count_allowed(&l, &s, &r, 5, 101_000), 1);
    // Very long idle, even near u64::MAX: full, capped at burst.
    assert_eq!(count_allowed(&l, &s, &r, 10, 10_000_000_000), 3);
    assert_eq!(count_allowed(&l, &s, &r, 10, u64::MAX), 3);
    assert_eq!(count_allowed(&l, &s, &r, 10, u64::MAX), 0);
    Ok(())
}

#[test]
fn params_extremes_do_not_overflow() {
    for sp in [spec(1e-12, 1), spec(1e300, u32::MAX), spec(f64::MAX, u32::MAX), spec(0.001, u32::MAX)] {
        let p = Params::from_spec(&sp);
        let s = p.fresh(0);
        let e = State { tokens: 0, last_ms: 0 };
        assert!(p.refill(e, u64::MAX).tokens <= p.cap);
        let _ =
            (p.retry_after_secs(&e), p.reset_secs(&e), p.full_at_ms(&e), p.window_secs(), p.remaining(&s));
    }
}

#[test]
fn property_bucket_invariants() {
    let mut rng = crate::testing::Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..300 {
        let rps = (rng.below(100_000) + 1) as f64 / 1000.0; // 0.001 .. 100
        let p = Params::from_spec(&spec(rps, rng.below(50) as u32 + 1));
        let start = rng.below(1 << 40);
        let mut s = p.fresh(start);
        let (mut now, mut max_now, mut ok) = (start, start, 0u64);
        for _ in 0..500 {
            // Mostly forward, sometimes backwards, sometimes large jumps.
            now = match rng.below(10) {
                0 => now.saturating_sub(rng.below(5_000)),
                1 => now + rng.below(100_000),
                _ => now + rng.below(50),
            };
            max_now = max_now.max(now);
            s = p.refill(s, now);
            assert!(s.tokens <= p.cap);
            assert!(s.last_ms <= max_now);
            if let Some(t) = s.take() {
                s = t;
                ok += 1;
            } else {
                assert!(p.retry_after_secs(&s) >= 1);
            }
            assert!(p.remaining(&s) <= p.burst);
            // successes ≤ burst + rate · elapsed, in exact units
            let budget = u128::from(p.cap) + u128::from(max_now - start) * u128::from(p.rate);
            assert!(u128::from(ok) * u128::from(UNIT) <= budget);
        }
    }
}

#[test]
fn property_limiter_end_to_end() -> TestResult {
    let mut rng = crate::testing::Rng(42);
    for round in 0..40 {
        let rps = (rng.below(20_000) + 1) as f64 / 1000.0;
        let burst = rng.below(20) as u32 + 1;
        let l = per_client(rps, burst)?;
        let p = Params::from_spec(&spec(rps, burst));
        let s = MemoryStore::new();
        let mut now = 1_000_000u64;
        let (mut start, mut max_now, mut ok) = (None, now, 0u64);
        for _ in 0..400 {
            now = if rng.below(8) == 0 { now.saturating_sub(rng.below(3000)) } else { now + rng.below(300) };
            max_now = max_now.max(now);
            // The bucket is created (full) at the first check.
            let start = *start.get_or_insert(now);
            match l.check(&s, &req("c", "t"), now) {
                RateDecision::Allowed(st) => {
                    ok += 1;
                    assert!(st.remaining < burst);
                }
                RateDecision::Limited { state, retry_after_secs } => {
                    assert_eq!(state.remaining, 0);
                    assert!(retry_after_secs >= 1);
                }
                d => return Err(format!("round {round}: {d:?}")),
            }
            let budget = u128::from(p.cap) + u128::from(max_now - start) * u128::from(p.rate);
            assert!(u128::from(ok) * u128::from(UNIT) <= budget, "round {round}");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- which buckets apply

#[test]
fn separate_clients_separate_buckets() -> TestResult {
    let l = per_client(1.0, 2)?;
    let s = MemoryStore::new();
    assert_eq!(count_allowed(&l, &s, &req("a", "t"), 5, 0), 2);
    assert_eq!(count_allowed(&l, &s, &req("b", "t"), 5, 0), 2);
    Ok(())
}

#[test]
fn per_tool_rule_does_not_charge_other_tools_and_refusal_charges_nothing() -> TestResult {
    let cfg = cfg_json(
        r#"{"default_per_client":{"requests_per_sec":1,"burst_size":5},
            "buckets":[{"name":"writes","per":["client"],"tool":"write_*","requests_per_sec":1,"burst_size":2}]}"#,
    )?;
    let l = limiter(&cfg)?;
    let s = MemoryStore::new();
    assert_eq!(count_allowed(&l, &s, &req("a", "write_file"), 10, 0), 2);
    // The 8 refused write_file calls charged nothing: 5 - 2 = 3 left in the client bucket.
    assert_eq!(count_allowed(&l, &s, &req("a", "read_file"), 10, 0), 3);
    // Another client's writes are its own.
    assert_eq!(count_allowed(&l, &s, &req("b", "write_file"), 10, 0), 2);
    Ok(())
}

#[test]
fn global_backend_and_key_buckets() -> TestResult {
    let cfg = cfg_json(
        r#"{"default_per_client":{"requests_per_sec":1,"burst_size":100},
            "buckets":[{"name":"global","per":[],"backend":"f*","requests_per_sec":1,"burst_size":4}]}"#,
    )?;
    let backends = vec![("fs".to_string(), Some(spec(1.0, 3))), ("gh".to_string(), None)];
    let l = RateLimiter::new(&cfg, &backends, &[Some(spec(1.0, 1)), None]).map_err(|e| e.to_string())?;
    let s = MemoryStore::new();
    // Backend bucket per client (3) under the global bucket for backends f* (4, shared).
    assert_eq!(count_allowed(&l, &s, &req("a", "t"), 10, 0), 3);
    assert_eq!(count_allowed(&l, &s, &req("b", "t"), 10, 0), 1);
    let gh = RateRequest { backend: "gh", ..req("a", "t") };
    assert_eq!(count_allowed(&l, &s, &gh, 10, 0), 10); // only the per-client default (100)
                                                       // API key 0 has its own limit (1) instead of the default.
    let k0 = RateRequest { api_key_index: Some(0), ..gh };
    match l.check(&s, &k0, 0) {
        RateDecision::Allowed(st) => {
            assert_eq!((st.bucket.as_str(), st.limit, st.remaining), ("key:a", 1, 0))
        }
        d => return Err(format!("{d:?}")),
    }
    match l.check(&s, &k0, 0) {
        RateDecision::Limited { state, .. } => assert_eq!(state.bucket, "key:a"),
        d => return Err(format!("{d:?}")),
    }
    // API key 1 has none: the default per-client bucket applies (shared with the JWT principal "a").
    let k1 = RateRequest { api_key_index: Some(1), ..gh };
    match l.check(&s, &k1, 0) {
        RateDecision::Allowed(st) => {
            assert_eq!((st.bucket.as_str(), st.remaining), ("client:a", 86))
        }
        d => return Err(format!("{d:?}")),
    }
    Ok(())
}

#[test]
fn methods_disabled_and_not_limited() -> TestResult {
    let l = per_client(1.0, 1)?;
    assert!(l.charges("tools/call") && l.charges("resources/read") && l.charges("prompts/get"));
    assert!(!l.charges("tools/list") && !l.charges("initialize"));
    let all = limiter(&cfg_json(r#"{"methods":["*"]}"#)?)?;
    assert!(all.charges("tools/list"));
    let s = MemoryStore::new();
    assert_eq!(all.check(&s, &req("a", "t"), 0), RateDecision::NotLimited);
    let off = limiter(&cfg_json(
        r#"{"enabled":false,"default_per_client":{"requests_per_sec":1,"burst_size":1}}"#,
    )?)?;
    assert!(!off.charges("tools/call"));
    assert_eq!(off.check(&s, &req("a", "t"), 0), RateDecision::NotLimited);
    assert_eq!(s.key_count(), 0);
    Ok(())
}

#[test]
fn config_parsing_and_validation() -> TestResult {
    let cfg = cfg_json(
        r#"{"enabled":true,"methods":["tools/call"],"slots":65536,"probes":8,"max_cas_retries":16,
            "default_per_client":{"requests_per_sec":5,"burst_size":20},
            "buckets":[{"name":"global","per":[],"requests_per_sec":200,"burst_size":400},
                       {"name":"fs-writes","per":["client","tool"],"backend":"filesystem","tool":"write_*",
                        "requests_per_sec":0.5,"burst_size":2}]}"#,
    )?;
    cfg.validate("security.rate_limit").map_err(|e| e.to_string())?;
    assert!(cfg_json(r#"{"bukets":[]}"#).is_err());
    assert!(
        cfg_json(r#"{"buckets":[{"name":"x","per":["user"],"requests_per_sec":1,"burst_size":1}]}"#).is_err()
    );
    let key = |j: &str| -> Result<Option<String>, String> {
        Ok(cfg_json(j)?.validate("security.rate_limit").err().map(|e| e.key))
    };
    let k = |s: &str| Some(s.to_string());
    assert_eq!(key(r#"{"slots":0}"#)?, k("security.rate_limit.slots"));
    assert_eq!(key(r#"{"probes":100}"#)?, k("security.rate_limit.probes"));
    assert_eq!(
        key(r#"{"default_per_client":{"requests_per_sec":0,"burst_size":1}}"#)?,
        k("security.rate_limit.default_per_client.requests_per_sec")
    );
    assert_eq!(
        key(
            r#"{"buckets":[{"name":"a","requests_per_sec":1,"burst_size":1},{"name":"a","requests_per_sec":1,"burst_size":1}]}"#
        )?,
        k("security.rate_limit.buckets[1].name")
    );
    assert_eq!(
        key(r#"{"buckets":[{"name":"a b","requests_per_sec":1,"burst_size":1}]}"#)?,
        k("security.rate_limit.buckets[0].name")
    );
    assert_eq!(
        key(r#"{"buckets":[{"name":"a","per":["tool","tool"],"requests_per_sec":1,"burst_size":1}]}"#)?,
        k("security.rate_limit.buckets[0].per[1]")
    );
    assert_eq!(
        key(r#"{"buckets":[{"name":"a","requests_per_sec":1,"burst_size":0}]}"#)?,
        k("security.rate_limit.buckets[0].burst_size")
    );
    let err = RateLimiter::new(&RateLimitConfig::default(), &[("x".into(), Some(spec(-1.0, 1)))], &[]).err();
    assert_eq!(err.map(|e| e.key), k("backends[0].rate_limit.requests_per_sec"));
    let err = RateLimiter::new(&RateLimitConfig::default(), &[], &[None, Some(spec(1.0, 0))]).err();
    assert_eq!(err.map(|e| e.key), k("security.auth.api_keys[1].rate_limit.burst_size"));
    Ok(())
}

#[test]
fn glob() {
    use super::config::glob_match;
    assert!(glob_match("*", ""));
    assert!(glob_match("write_*", "write_file"));
    assert!(!glob_match("write_*", "read_file"));
    assert!(glob_match("*__*", "github__create_issue"));
    assert!(glob_match("a*b*c", "aXXbYYc"));
    assert!(!glob_match("a*b*c", "aXXbYY"));
    assert!(glob_match("file://*", "file:///etc/passwd"));
    assert!(glob_match("exact", "exact") && !glob_match("exact", "exact2"));
}

#[test]
fn headers() -> TestResult {
    let l = per_client(0.5, 2)?;
    let s = MemoryStore::new();
    let d = l.check(&s, &req("a\"b", "t"), 0);
    let h = rate_limit_headers(&d);
    let get = |h: &[(&str, String)], n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone());
    assert_eq!(get(&h, "x-ratelimit-limit").as_deref(), Some("2"));
    assert_eq!(get(&h, "x-ratelimit-remaining").as_deref(), Some("1"));
    assert_eq!(get(&h, "x-ratelimit-reset").as_deref(), Some("2"));
    assert_eq!(get(&h, "ratelimit-policy").as_deref(), Some(r#""client:a\"b";q=2;w=4"#));
    assert_eq!(get(&h, "ratelimit").as_deref(), Some(r#""client:a\"b";r=1;t=2"#));
    assert_eq!(get(&h, "retry-after"), None);
    let _ = l.check(&s, &req("a\"b", "t"), 0);
    let h = rate_limit_headers(&l.check(&s, &req("a\"b", "t"), 0));
    assert_eq!(get(&h, "retry-after").as_deref(), Some("2"));
    assert_eq!(get(&h, "x-ratelimit-remaining").as_deref(), Some("0"));
    assert!(rate_limit_headers(&RateDecision::NotLimited).is_empty());
    assert!(rate_limit_headers(&RateDecision::Error(ERR_STORE)).is_empty());
    Ok(())
}

#[test]
fn allowed_reports_most_restrictive_bucket() -> TestResult {
    let cfg = cfg_json(
        r#"{"default_per_client":{"requests_per_sec":1,"burst_size":50},
            "buckets":[{"name":"tight","per":["client"],"requests_per_sec":1,"burst_size":3}]}"#,
    )?;
    let l = limiter(&cfg)?;
    let s = MemoryStore::new();
    match l.check(&s, &req("a", "t"), 0) {
        RateDecision::Allowed(st) => assert_eq!((st.bucket.as_str(), st.remaining), ("tight", 2)),
        d => return Err(format!("{d:?}")),
    }
    Ok(())
}

// ---------------------------------------------------------------- races (injected interleavings)

type Hook<'a> = Box<dyn FnOnce(&MemoryStore) + 'a>;
type Map = HashMap<String, (Vec<u8>, u32)>;

/// Runs `hook` (another worker's work, directly on the inner store) just before the `at`-th `set`,
/// i.e. between this worker's `get` and `set`.
struct Inject<'a> {
    inner: &'a MemoryStore,
    sets: Cell<u32>,
    at: u32,
    hook: RefCell<Option<Hook<'a>>>,
}

impl<'a> Inject<'a> {
    fn new(inner: &'a MemoryStore, at: u32, hook: impl FnOnce(&MemoryStore) + 'a) -> Self {
        Self { inner, sets: Cell::new(0), at, hook: RefCell::new(Some(Box::new(hook))) }
    }
}

impl SharedStore for Inject<'_> {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        self.sets.set(self.sets.get() + 1);
        if self.sets.get() == self.at {
            if let Some(h) = self.hook.borrow_mut().take() {
                h(self.inner);
            }
        }
        self.inner.set(key, value, cas)
    }
}

#[test]
fn creation_race_is_exact() -> TestResult {
    let l = per_client(1.0, 3)?;
    let s = MemoryStore::new();
    let other = Cell::new(0u32);
    // Worker B creates the bucket between worker A's get (key missing) and A's create.
    let racy = Inject::new(&s, 1, |inner| {
        if allowed(&l.check(inner, &req("a", "t"), 0)) {
            other.set(other.get() + 1);
        }
    });
    let d = l.check(&racy, &req("a", "t"), 0);
    assert!(allowed(&d), "{d:?}");
    assert_eq!(other.get(), 1);
    assert_eq!(count_allowed(&l, &s, &req("a", "t"), 10, 0), 1); // 3 - 2
    assert_eq!(s.key_count(), 1);
    Ok(())
}

#[test]
fn interleaved_workers_get_exactly_burst() -> TestResult {
    // Every check of worker A has a concurrent check of worker B between its get and its set.
    for burst in [1u32, 2, 5, 17] {
        let l = per_client(0.1, burst)?;
        let s = MemoryStore::new();
        let total = Cell::new(0u32);
        for _ in 0..burst * 2 + 3 {
            let racy = Inject::new(&s, 1, |inner| {
                if allowed(&l.check(inner, &req("a", "t"), 5)) {
                    total.set(total.get() + 1);
                }
            });
            match l.check(&racy, &req("a", "t"), 5) {
                RateDecision::Allowed(_) => total.set(total.get() + 1),
                RateDecision::Limited { .. } => {}
                d => return Err(format!("{d:?}")),
            }
        }
        assert_eq!(total.get(), burst);
    }
    Ok(())
}

#[test]
fn late_refusal_refunds_earlier_charges() -> TestResult {
    // `slow` (rule on tool x, 0.001 rps, burst 1) has fewer tokens, so it is charged first; then the
    // client bucket (1 rps, burst 2) is drained by a concurrent worker before its CAS write.
    let cfg = cfg_json(
        r#"{"default_per_client":{"requests_per_sec":1,"burst_size":2},
            "buckets":[{"name":"slow","per":["client"],"tool":"x","requests_per_sec":0.001,"burst_size":1}]}"#,
    )?;
    let l = limiter(&cfg)?;
    let s = MemoryStore::new();
    let drained = Cell::new(0u32);
    let racy = Inject::new(&s, 2, |inner| {
        drained.set(count_allowed(&l, inner, &req("a", "y"), 5, 0));
    });
    match l.check(&racy, &req("a", "x"), 0) {
        RateDecision::Limited { state, retry_after_secs } => {
            assert_eq!((state.bucket.as_str(), retry_after_secs), ("client:a", 1));
        }
        d => return Err(format!("{d:?}")),
    }
    assert_eq!(drained.get(), 2);
    // One second later the client bucket has one token; `slow` (1000 s per token) only has one
    // if the refused request's charge was refunded.
    assert!(allowed(&l.check(&s, &req("a", "x"), 1_000)));
    Ok(())
}

/// A store whose writes conflict (or fail) forever except on the first key written: exercises
/// the retry budget, fail-closed, and the refund of that first key.
struct Hostile<'a> {
    inner: &'a MemoryStore,
    err: StoreError,
    ok_key: RefCell<Option<String>>,
}

impl SharedStore for Hostile<'_> {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        self.inner.get(key)
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        let mut ok = self.ok_key.borrow_mut();
        if ok.as_deref().is_none_or(|k| k == key) {
            *ok = Some(key.to_string());
            return self.inner.set(key, value, cas);
        }
        Err(self.err.clone())
    }
}

#[test]
fn contention_and_store_errors_fail_closed_without_charging() -> TestResult {
    let cfg = cfg_json(
        r#"{"max_cas_retries":3,"default_per_client":{"requests_per_sec":1,"burst_size":2},
            "buckets":[{"name":"r","per":["client"],"requests_per_sec":1,"burst_size":5}]}"#,
    )?;
    let l = limiter(&cfg)?;
    let s = MemoryStore::new();
    assert!(allowed(&l.check(&s, &req("a", "t"), 0)));
    // Writes to the client bucket (1 token left: charged first) pass, to `r` conflict forever.
    let h = Hostile { inner: &s, err: StoreError::CasMismatch, ok_key: RefCell::new(None) };
    assert_eq!(l.check(&h, &req("a", "t"), 0), RateDecision::Error(ERR_CONTENTION));
    let h = Hostile { inner: &s, err: StoreError::Host("boom".into()), ok_key: RefCell::new(None) };
    assert_eq!(l.check(&h, &req("a", "t"), 0), RateDecision::Error(ERR_STORE));
    // The charged client bucket was refunded both times: one token left of 2.
    assert_eq!(count_allowed(&l, &s, &req("a", "t"), 5, 0), 1);
    Ok(())
}

/// A thread-safe store with the host's semantics, for real concurrency.
#[derive(Default)]
struct SyncStore(Mutex<(Map, u32)>);

impl SharedStore for SyncStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        let g = self.0.lock().map_err(|_| StoreError::Host("poisoned".into()))?;
        Ok(g.0.get(key).cloned())
    }
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        let mut g = self.0.lock().map_err(|_| StoreError::Host("poisoned".into()))?;
        g.1 = g.1.wrapping_add(1).max(1);
        let next = g.1;
        match g.0.get_mut(key) {
            Some(e) => {
                if matches!(cas, Some(c) if c != 0 && c != e.1) {
                    return Err(StoreError::CasMismatch);
                }
                *e = (value.to_vec(), next);
            }
            None => {
                g.0.insert(key.to_string(), (value.to_vec(), next));
            }
        }
        Ok(())
    }
}

#[test]
fn threads_share_one_bucket_exactly() -> TestResult {
    let cfg = cfg_json(
        r#"{"max_cas_retries":1000,"default_per_client":{"requests_per_sec":0.001,"burst_size":500},
            "buckets":[{"name":"g","per":[],"requests_per_sec":0.001,"burst_size":1000}]}"#,
    )?;
    let l = limiter(&cfg)?;
    let s = SyncStore::default();
    let ok = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|_| sc.spawn(|| (0..200).filter(|_| allowed(&l.check(&s, &req("a", "t"), 7))).count()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap_or(0)).sum::<usize>()
    });
    assert_eq!(ok, 500);
    Ok(())
}

// ---------------------------------------------------------------- bounded memory

#[test]
fn hundred_thousand_principals_bounded() -> TestResult {
    let slots = 65_536u32;
    let cfg = RateLimitConfig { slots, default_per_client: Some(spec(1.0, 5)), ..Default::default() };
    let l = limiter(&cfg)?;
    let s = MemoryStore::new();
    let (mut ok, mut full) = (0u32, 0u32);
    for i in 0..100_000u64 {
        // One new principal per ms: a bucket charged once is full again 1 s later.
        match l.check(&s, &req(&format!("sub-{i}"), "t"), 1_000 + i) {
            RateDecision::Allowed(_) => ok += 1,
            RateDecision::Error(ERR_TABLE_FULL) => full += 1,
            d => return Err(format!("{d:?}")),
        }
    }
    assert_eq!(ok, 100_000);
    assert_eq!(full, 0);
    assert!(s.key_count() <= slots as usize);
    // Keys `rl:<n>` ≤ 8 bytes, values 40 bytes.
    assert!(s.byte_size() <= slots as usize * 48, "{}", s.byte_size());
    Ok(())
}

#[test]
fn table_full_fails_closed_and_recovers() -> TestResult {
    let cfg = RateLimitConfig {
        slots: 256,
        probes: 4,
        default_per_client: Some(spec(1.0, 2)),
        ..Default::default()
    };
    let l = limiter(&cfg)?;
    let s = MemoryStore::new();
    let mut full = 0;
    for i in 0..2_000u32 {
        match l.check(&s, &req(&format!("p{i}"), "t"), 0) {
            RateDecision::Allowed(_) => {}
            RateDecision::Error(e) => {
                assert_eq!(e, ERR_TABLE_FULL);
                full += 1;
            }
            d => return Err(format!("{d:?}")),
        }
    }
    assert!(full > 1_000, "{full}");
    assert!(s.key_count() <= 256);
    // Existing identities keep working and are still limited.
    assert_eq!(count_allowed(&l, &s, &req("p0", "t"), 5, 0), 1);
    // Once buckets refill, their slots are reusable: new principals get in.
    assert!(allowed(&l.check(&s, &req("newcomer", "t"), 2_000)));
    Ok(())
}

#[test]
fn slot_reuse_does_not_reset_an_active_bucket() -> TestResult {
    // Two slots, probes cover both: "a" keeps its state even after slots around it change owner.
    let cfg =
        RateLimitConfig { slots: 2, probes: 2, default_per_client: Some(spec(1.0, 3)), ..Default::default() };
    let l = limiter(&cfg)?;
    let s = MemoryStore::new();
    assert_eq!(count_allowed(&l, &s, &req("a", "t"), 2, 0), 2);
    assert!(allowed(&l.check(&s, &req("b", "t"), 0)));
    assert_eq!(l.check(&s, &req("c", "t"), 0), RateDecision::Error(ERR_TABLE_FULL));
    // At 1 s "b" is full again (reusable) and "c" takes its slot; "a" (1 token + 1 refill) is intact.
    assert!(allowed(&l.check(&s, &req("c", "t"), 1_000)));
    assert_eq!(count_allowed(&l, &s, &req("a", "t"), 5, 1_000), 2);
    Ok(())
}

#[test]
fn garbage_values_are_treated_as_free() -> TestResult {
    let cfg =
        RateLimitConfig { slots: 4, probes: 4, default_per_client: Some(spec(1.0, 2)), ..Default::default() };
    let l = limiter(&cfg)?;
    let s = MemoryStore::new();
    for i in 0..4 {
        s.set(&format!("rl:{i}"), b"junk", None).map_err(|e| format!("{e:?}"))?;
    }
    assert_eq!(count_allowed(&l, &s, &req("a", "t"), 5, 0), 2);
    Ok(())
}

// ---------------------------------------------------------------- timing

#[test]
#[ignore]
fn timing_ns_per_check() -> TestResult {
    let cfg = cfg_json(
        r#"{"default_per_client":{"requests_per_sec":1000000,"burst_size":1000},
            "buckets":[{"name":"tools","per":["client","tool"],"requests_per_sec":1000000,"burst_size":1000}]}"#,
    )?;
    let backends = vec![("fs".to_string(), Some(spec(1e6, 1000)))];
    for (label, l) in [
        ("1 bucket", per_client(1e6, 1000)?),
        ("3 buckets", RateLimiter::new(&cfg, &backends, &[]).map_err(|e| e.to_string())?),
    ] {
        let s = MemoryStore::new();
        let clients: Vec<String> = (0..1000).map(|i| format!("client-{i}")).collect();
        let n = 1_000_000u64;
        let t = std::time::Instant::now();
        let mut ok = 0u64;
        for i in 0..n {
            let c = &clients[(i % 1000) as usize];
            if allowed(&l.check(&s, &req(c, "read_file"), i / 1000)) {
                ok += 1;
            }
        }
        let ns = t.elapsed().as_nanos() / u128::from(n);
        println!("{label}: {ns} ns per check ({ok}/{n} allowed, MemoryStore)");
    }
    Ok(())
}

#[test]
#[ignore]
fn timing_parts() {
    let n = 1_000_000u32;
    let t = std::time::Instant::now();
    let mut x = 0u8;
    for i in 0..n {
        x ^= super::slots::identity(b"tag", &[b"client", &i.to_le_bytes()])[0];
    }
    println!("sha: {} ns ({x})", t.elapsed().as_nanos() / u128::from(n));
    let t = std::time::Instant::now();
    let mut buf = [7u8; 40];
    for i in 0..n {
        buf[0] = i as u8;
        x ^= hmac_sha256::Hash::hash(&buf)[0];
    }
    println!("sha one-shot 40B: {} ns ({x})", t.elapsed().as_nanos() / u128::from(n));
    let s = MemoryStore::new();
    for i in 0..1000 {
        let _ = s.set(&format!("rl:{i}"), &[0u8; 40], None);
    }
    let t = std::time::Instant::now();
    for i in 0..n {
        let k = format!("rl:{}", i % 1000);
        let _ = s.get(&k);
        let _ = s.set(&k, &[1u8; 40], Some(1));
    }
    println!("get+set: {} ns", t.elapsed().as_nanos() / u128::from(n));
}

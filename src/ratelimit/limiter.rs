//! The per-VM limiter: which buckets apply to a request, and the check-then-charge protocol.
//!
//! Protocol (one request, buckets B1..Bn):
//! 1. *Look*: locate and lazily refill every applicable bucket (no writes). If any holds less
//!    than one token the request is refused and **nothing is written**: the common refusal path
//!    charges nothing by construction.
//! 2. *Charge*: buckets are charged one by one with CAS, fewest tokens first (the bucket most
//!    likely to run dry is charged before the others, so a late refusal rarely needs a refund).
//!    On `CasMismatch` only that bucket is re-read and retried (the buckets already charged were
//!    charged validly). If the re-read bucket is now empty, the buckets already charged get their
//!    token back (a CAS increment, capped at burst) and the request is refused.
//! 3. Every CAS conflict spends one unit of a per-check budget (`max_cas_retries`). When it is
//!    exhausted, or the store fails, or the slot table is full, earlier charges are refunded and the
//!    check returns [`RateDecision::Error`]: the glue refuses (fail closed).
//!
//! A refund that itself keeps failing leaves the bucket one token short (stricter, never looser).
//! Between a charge and its refund another request may briefly see one token less.

use super::bucket::{self, Params, State, UNIT};
use super::config::{glob_match, Dimension, RateLimitConfig};
use super::slots::{fingerprint, identity, LocateError, Slot, SlotTable};
use super::RateLimitSpec;
use crate::config::ConfigError;
use crate::shared::{SharedStore, StoreError};

/// Reason of [`RateDecision::Error`] when every probed slot is held by another active bucket.
pub const ERR_TABLE_FULL: &str = "rate_limit_table_full";
/// Reason when the CAS retry budget ran out.
pub const ERR_CONTENTION: &str = "rate_limit_contention";
/// Reason when the host's shared data failed.
pub const ERR_STORE: &str = "rate_limit_store_error";

#[derive(Debug, Clone, Copy)]
pub struct RateRequest<'a> {
    /// Authenticated principal (`client_id` or JWT subject; the glue's name for anonymous).
    pub client_id: &'a str,
    /// Index into `security.auth.api_keys` when the principal came from an API key.
    pub api_key_index: Option<usize>,
    pub backend: &'a str,
    /// Tool name, resource URI or prompt name.
    pub tool: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketState {
    /// `backend:<name>`, `key:<client_id>`, `client:<client_id>` or a rule's `name`.
    pub bucket: String,
    /// Burst size.
    pub limit: u32,
    /// Whole tokens left (after this request's charge when allowed).
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset_secs: u64,
    /// Seconds an empty bucket needs to refill (`ceil(burst / rate)`), the policy window.
    pub window_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateDecision {
    /// No bucket applies (or rate limiting is disabled).
    NotLimited,
    /// Charged once against every applicable bucket; the state is the most restrictive one.
    Allowed(BucketState),
    /// Refused (HTTP 429); nothing was charged.
    Limited { state: BucketState, retry_after_secs: u64 },
    /// Fail closed: `rate_limit_table_full`, `rate_limit_contention` or `rate_limit_store_error`.
    Error(&'static str),
}

#[derive(Debug, Clone)]
struct Rule {
    name: String,
    per: Vec<Dimension>,
    backend: Option<String>,
    tool: Option<String>,
    params: Params,
}

/// One VM's rate limiter; all state lives in the [`SharedStore`].
#[derive(Debug, Clone)]
pub struct RateLimiter {
    enabled: bool,
    all_methods: bool,
    methods: Vec<String>,
    table: SlotTable,
    max_cas_retries: u32,
    rules: Vec<Rule>,
    backends: Vec<(String, Params)>,
    key_limits: Vec<Option<Params>>,
    default_client: Option<Params>,
}

/// A bucket that applies to the current request.
struct Applicable {
    name: String,
    params: Params,
    hash: [u8; 32],
}

/// A located and refilled bucket, ready to be written with `cas`.
struct View {
    key: String,
    cas: u32,
    state: State,
    /// The slot already holds this bucket (false: a free slot, the bucket starts full).
    own: bool,
}

const TAG: &[u8] = b"rl1";

impl RateLimiter {
    /// `backends`: `(name, rate_limit)` of `backends[]`; `key_limits`: `rate_limit` of
    /// `security.auth.api_keys[i]`, by index.
    pub fn new(
        cfg: &RateLimitConfig,
        backends: &[(String, Option<RateLimitSpec>)],
        key_limits: &[Option<RateLimitSpec>],
    ) -> Result<Self, ConfigError> {
        cfg.validate("security.rate_limit")?;
        let mut bk = Vec::new();
        for (i, (name, spec)) in backends.iter().enumerate() {
            if let Some(spec) = spec {
                spec.validate(&format!("backends[{i}].rate_limit"))?;
                bk.push((name.clone(), Params::from_spec(spec)));
            }
        }
        let mut kl = Vec::with_capacity(key_limits.len());
        for (i, spec) in key_limits.iter().enumerate() {
            if let Some(spec) = spec {
                spec.validate(&format!("security.auth.api_keys[{i}].rate_limit"))?;
            }
            kl.push(spec.as_ref().map(Params::from_spec));
        }
        let rules = cfg
            .buckets
            .iter()
            .map(|r| Rule {
                name: r.name.clone(),
                per: r.per.clone(),
                backend: r.backend.clone(),
                tool: r.tool.clone(),
                params: Params::from_spec(&r.spec()),
            })
            .collect();
        Ok(Self {
            enabled: cfg.enabled,
            all_methods: cfg.methods.iter().any(|m| m == "*"),
            methods: cfg.methods.clone(),
            table: SlotTable::new("rl:", cfg.slots, cfg.probes),
            max_cas_retries: cfg.max_cas_retries,
            rules,
            backends: bk,
            key_limits: kl,
            default_client: cfg.default_per_client.as_ref().map(Params::from_spec),
        })
    }

    /// Whether requests with this JSON-RPC method are charged.
    pub fn charges(&self, method: &str) -> bool {
        self.enabled && (self.all_methods || self.methods.iter().any(|m| m == method))
    }

    fn applicable(&self, req: &RateRequest<'_>) -> Vec<Applicable> {
        let mut out = Vec::new();
        let client = req.client_id.as_bytes();
        // Per principal: the API key's own limit, else the default per-client limit.
        let key_limit = req.api_key_index.and_then(|i| self.key_limits.get(i).copied().flatten());
        match (key_limit, req.api_key_index) {
            (Some(p), Some(i)) => out.push(Applicable {
                name: format!("key:{}", req.client_id),
                params: p,
                hash: identity(TAG, &[b"k", &(i as u64).to_le_bytes(), client]),
            }),
            _ => {
                if let Some(p) = self.default_client {
                    out.push(Applicable {
                        name: format!("client:{}", req.client_id),
                        params: p,
                        hash: identity(TAG, &[b"c", client]),
                    });
                }
            }
        }
        // Per client per backend (`backends[].rate_limit`).
        if let Some((name, p)) = self.backends.iter().find(|(n, _)| n == req.backend) {
            out.push(Applicable {
                name: format!("backend:{name}"),
                params: *p,
                hash: identity(TAG, &[b"b", name.as_bytes(), client]),
            });
        }
        // Configured rules.
        for r in &self.rules {
            if r.backend.as_deref().is_some_and(|g| !glob_match(g, req.backend)) {
                continue;
            }
            if r.tool.as_deref().is_some_and(|g| !glob_match(g, req.tool)) {
                continue;
            }
            let mut parts: Vec<&[u8]> = vec![b"r", r.name.as_bytes()];
            for d in &r.per {
                match d {
                    Dimension::Client => parts.extend([b"c".as_slice(), client]),
                    Dimension::Backend => parts.extend([b"b".as_slice(), req.backend.as_bytes()]),
                    Dimension::Tool => parts.extend([b"t".as_slice(), req.tool.as_bytes()]),
                }
            }
            out.push(Applicable { name: r.name.clone(), params: r.params, hash: identity(TAG, &parts) });
        }
        out
    }

    fn view(&self, store: &dyn SharedStore, a: &Applicable, now_ms: u64) -> Result<View, &'static str> {
        let reusable = |v: &[u8]| bucket::decode(v).is_none_or(|(_, full_at)| full_at <= now_ms);
        match self.table.locate(store, &a.hash, reusable) {
            Ok(Slot::Own { key, value, cas }) => {
                let state = match bucket::decode(&value) {
                    Some((s, _)) => a.params.refill(s, now_ms),
                    None => a.params.fresh(now_ms),
                };
                Ok(View { key, cas, state, own: true })
            }
            Ok(Slot::Free { key, cas }) => Ok(View { key, cas, state: a.params.fresh(now_ms), own: false }),
            Err(LocateError::Full) => Err(ERR_TABLE_FULL),
            Err(LocateError::Store(_)) => Err(ERR_STORE),
        }
    }

    fn write(&self, store: &dyn SharedStore, a: &Applicable, v: &View, s: &State) -> Result<(), StoreError> {
        let value = bucket::encode(&fingerprint(&a.hash), s, a.params.full_at_ms(s));
        store.set(&v.key, &value, Some(v.cas))
    }

    fn state_of(a: &Applicable, s: &State) -> BucketState {
        BucketState {
            bucket: a.name.clone(),
            limit: a.params.burst,
            remaining: a.params.remaining(s),
            reset_secs: a.params.reset_secs(s),
            window_secs: a.params.window_secs(),
        }
    }

    fn limited(a: &Applicable, s: &State) -> RateDecision {
        RateDecision::Limited { state: Self::state_of(a, s), retry_after_secs: a.params.retry_after_secs(s) }
    }

    /// Gives back the token of every bucket in `charged` (best effort, bounded).
    fn refund(&self, store: &dyn SharedStore, apps: &[Applicable], charged: &[usize], now_ms: u64) {
        for &i in charged {
            let Some(a) = apps.get(i) else { continue };
            for _ in 0..=self.max_cas_retries {
                let Ok(v) = self.view(store, a, now_ms) else {
                    break;
                };
                if !v.own {
                    break; // the bucket's slot was taken over (it was full): nothing to refund
                }
                let s = State { tokens: v.state.tokens.saturating_add(UNIT).min(a.params.cap), ..v.state };
                match self.write(store, a, &v, &s) {
                    Ok(()) => break,
                    Err(StoreError::CasMismatch) => continue,
                    Err(StoreError::Host(_)) => break,
                }
            }
        }
    }

    /// Charges the request once against every applicable bucket, or refuses without charging.
    pub fn check(&self, store: &dyn SharedStore, req: &RateRequest<'_>, now_ms: u64) -> RateDecision {
        if !self.enabled {
            return RateDecision::NotLimited;
        }
        let apps = self.applicable(req);
        if apps.is_empty() {
            return RateDecision::NotLimited;
        }
        // 1. Look at every bucket; refuse before writing anything if one is empty.
        let mut views = Vec::with_capacity(apps.len());
        for a in &apps {
            match self.view(store, a, now_ms) {
                Ok(v) => views.push(v),
                Err(e) => return RateDecision::Error(e),
            }
        }
        let empty = apps
            .iter()
            .zip(&views)
            .filter(|(_, v)| v.state.tokens < UNIT)
            .max_by_key(|(a, v)| a.params.retry_after_secs(&v.state));
        if let Some((a, v)) = empty {
            return Self::limited(a, &v.state);
        }
        // 2. Charge, fewest tokens first.
        let mut order: Vec<usize> = (0..apps.len()).collect();
        order.sort_by_key(|&i| views.get(i).map_or(0, |v| v.state.tokens));
        let mut budget = self.max_cas_retries;
        let mut charged: Vec<usize> = Vec::with_capacity(apps.len());
        let mut best: Option<BucketState> = None;
        for i in order {
            let (Some(a), Some(first)) = (apps.get(i), views.get_mut(i)) else {
                continue;
            };
            let mut v = View {
                key: std::mem::take(&mut first.key),
                cas: first.cas,
                state: first.state,
                own: first.own,
            };
            loop {
                let Some(after) = v.state.take() else {
                    self.refund(store, &apps, &charged, now_ms);
                    return Self::limited(a, &v.state);
                };
                match self.write(store, a, &v, &after) {
                    Ok(()) => {
                        charged.push(i);
                        let st = Self::state_of(a, &after);
                        let tighter = best.as_ref().is_none_or(|b| {
                            (st.remaining, std::cmp::Reverse(st.reset_secs))
                                < (b.remaining, std::cmp::Reverse(b.reset_secs))
                        });
                        if tighter {
                            best = Some(st);
                        }
                        break;
                    }
                    Err(StoreError::CasMismatch) if budget > 0 => {
                        budget -= 1;
                        match self.view(store, a, now_ms) {
                            Ok(nv) => v = nv,
                            Err(e) => {
                                self.refund(store, &apps, &charged, now_ms);
                                return RateDecision::Error(e);
                            }
                        }
                    }
                    Err(StoreError::CasMismatch) => {
                        self.refund(store, &apps, &charged, now_ms);
                        return RateDecision::Error(ERR_CONTENTION);
                    }
                    Err(StoreError::Host(_)) => {
                        self.refund(store, &apps, &charged, now_ms);
                        return RateDecision::Error(ERR_STORE);
                    }
                }
            }
        }
        match best {
            Some(b) => RateDecision::Allowed(b),
            None => RateDecision::NotLimited,
        }
    }
}

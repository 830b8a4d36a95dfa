//! Binding of `Mcp-Session-Id` values to the principal that obtained them.
//!
//! The first authenticated response that hands out a session id calls [`SessionTable::bind`];
//! every later request presenting that id calls [`SessionTable::check`] and is refused on
//! [`SessionCheck::Mismatch`] (another principal replaying a stolen or guessed session id).
//!
//! Storage: the same bounded open-addressing table as the rate limiter (`ratelimit::slots`), keys
//! `sess:<slot>`, at most `slots` keys. A value is 40 bytes:
//! `SHA-256(session id)[..16] | SHA-256(principal)[..16] | bound_at_ms (u64 LE)`; the raw session
//! id and principal are never stored. A binding older than `ttl_secs` stays valid (checks still
//! match or mismatch) until its slot is needed by another session id; then it may be overwritten
//! and the old session reads [`SessionCheck::Unbound`]. When every probed slot holds a binding
//! younger than the TTL, `bind` fails with [`BindError::TableFull`] and the glue refuses the
//! `initialize` with 503 rather than leave the session unbound. All errors: the glue fails closed.

use serde::Deserialize;

use crate::config::ConfigError;
use crate::ratelimit::slots::{fingerprint, identity, LocateError, Slot, SlotTable};
use crate::shared::{SharedStore, StoreError};

/// Largest accepted `slots`.
pub const MAX_SESSION_SLOTS: u32 = 1 << 20;
const VALUE_LEN: usize = 40;
const TAG_SESSION: &[u8] = b"ss1";
const TAG_PRINCIPAL: &[u8] = b"sp1";

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionBindingConfig {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Number of shared-data slots (`sess:0` .. `sess:<slots-1>`).
    #[serde(default = "default_slots")]
    pub slots: u32,
    /// Age after which a binding's slot may be reused by another session.
    #[serde(default = "default_ttl")]
    pub ttl_secs: u64,
    /// Length of the probe sequence.
    #[serde(default = "default_probes")]
    pub probes: u32,
    /// CAS conflicts tolerated per `bind` before failing.
    #[serde(default = "default_retries")]
    pub max_cas_retries: u32,
}

fn default_true() -> bool {
    true
}
fn default_slots() -> u32 {
    16384
}
fn default_ttl() -> u64 {
    86400
}
fn default_probes() -> u32 {
    8
}
fn default_retries() -> u32 {
    16
}

impl Default for SessionBindingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            slots: default_slots(),
            ttl_secs: default_ttl(),
            probes: default_probes(),
            max_cas_retries: default_retries(),
        }
    }
}

impl SessionBindingConfig {
    pub fn validate(&self, key: &str) -> Result<(), ConfigError> {
        if self.slots == 0 || self.slots > MAX_SESSION_SLOTS {
            return Err(ConfigError::new(
                format!("{key}.slots"),
                format!("must be between 1 and {MAX_SESSION_SLOTS}"),
            ));
        }
        if self.ttl_secs == 0 || self.ttl_secs > 10 * 365 * 86400 {
            return Err(ConfigError::new(format!("{key}.ttl_secs"), "must be between 1 and 315360000"));
        }
        if self.probes == 0 || self.probes > 64 {
            return Err(ConfigError::new(format!("{key}.probes"), "must be between 1 and 64"));
        }
        if self.max_cas_retries > 1000 {
            return Err(ConfigError::new(format!("{key}.max_cas_retries"), "must be at most 1000"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionCheck {
    /// No binding for this session id (never bound, or its slot was reused after the TTL).
    Unbound,
    Match,
    /// Bound to another principal: refuse.
    Mismatch,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindError {
    /// The session id is already bound to another principal.
    AlreadyBound,
    /// Every probed slot holds a live binding (glue: 503 on `initialize`).
    TableFull,
    /// CAS retry budget exhausted.
    Contention,
    Store(StoreError),
}

/// One VM's view of the session-binding table; all state lives in the [`SharedStore`].
#[derive(Debug, Clone)]
pub struct SessionTable {
    enabled: bool,
    table: SlotTable,
    ttl_ms: u64,
    max_cas_retries: u32,
}

fn principal_fp(principal: &str) -> [u8; 16] {
    fingerprint(&identity(TAG_PRINCIPAL, &[principal.as_bytes()]))
}

fn bound_at(v: &[u8]) -> Option<u64> {
    if v.len() != VALUE_LEN {
        return None;
    }
    let b: [u8; 8] = v.get(32..40)?.try_into().ok()?;
    Some(u64::from_le_bytes(b))
}

impl SessionTable {
    pub fn new(cfg: &SessionBindingConfig) -> Self {
        Self {
            enabled: cfg.enabled,
            table: SlotTable::new("sess:", cfg.slots, cfg.probes),
            ttl_ms: cfg.ttl_secs.saturating_mul(1000),
            max_cas_retries: cfg.max_cas_retries,
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn locate(&self, store: &dyn SharedStore, hash: &[u8; 32], now_ms: u64) -> Result<Slot, BindError> {
        let ttl = self.ttl_ms;
        let reusable = |v: &[u8]| bound_at(v).is_none_or(|t| now_ms.saturating_sub(t) >= ttl);
        self.table.locate(store, hash, reusable).map_err(|e| match e {
            LocateError::Full => BindError::TableFull,
            LocateError::Store(s) => BindError::Store(s),
        })
    }

    /// Binds `session_id` to `principal`. Binding again to the same principal is `Ok` (and keeps
    /// the original time); to another principal is `AlreadyBound`.
    pub fn bind(
        &self,
        store: &dyn SharedStore,
        session_id: &str,
        principal: &str,
        now_ms: u64,
    ) -> Result<(), BindError> {
        let hash = identity(TAG_SESSION, &[session_id.as_bytes()]);
        let pfp = principal_fp(principal);
        for _ in 0..=self.max_cas_retries {
            let (key, cas) = match self.locate(store, &hash, now_ms)? {
                Slot::Own { value, .. } => {
                    return if value.get(16..32) == Some(&pfp[..]) {
                        Ok(())
                    } else {
                        Err(BindError::AlreadyBound)
                    };
                }
                Slot::Free { key, cas } => (key, cas),
            };
            let mut v = [0u8; VALUE_LEN];
            v[..16].copy_from_slice(&fingerprint(&hash));
            v[16..32].copy_from_slice(&pfp);
            v[32..40].copy_from_slice(&now_ms.to_le_bytes());
            match store.set(&key, &v, Some(cas)) {
                Ok(()) => return Ok(()),
                Err(StoreError::CasMismatch) => continue,
                Err(e) => return Err(BindError::Store(e)),
            }
        }
        Err(BindError::Contention)
    }

    /// Whether `principal` may use `session_id`. Read-only.
    pub fn check(
        &self,
        store: &dyn SharedStore,
        session_id: &str,
        principal: &str,
        now_ms: u64,
    ) -> Result<SessionCheck, BindError> {
        let hash = identity(TAG_SESSION, &[session_id.as_bytes()]);
        match self.locate(store, &hash, now_ms) {
            Ok(Slot::Own { value, .. }) => Ok(if value.get(16..32) == Some(&principal_fp(principal)[..]) {
                SessionCheck::Match
            } else {
                SessionCheck::Mismatch
            }),
            Ok(Slot::Free { .. }) | Err(BindError::TableFull) => Ok(SessionCheck::Unbound),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::MemoryStore;

    fn table(slots: u32, ttl_secs: u64) -> SessionTable {
        SessionTable::new(&SessionBindingConfig { slots, ttl_secs, ..Default::default() })
    }

    #[test]
    fn bind_then_check() -> Result<(), BindError> {
        let s = MemoryStore::new();
        let t = table(16, 60);
        assert_eq!(t.check(&s, "sid-1", "alice", 0)?, SessionCheck::Unbound);
        t.bind(&s, "sid-1", "alice", 0)?;
        assert_eq!(t.check(&s, "sid-1", "alice", 1)?, SessionCheck::Match);
        assert_eq!(t.check(&s, "sid-1", "mallory", 1)?, SessionCheck::Mismatch);
        assert_eq!(t.check(&s, "sid-2", "alice", 1)?, SessionCheck::Unbound);
        t.bind(&s, "sid-1", "alice", 5)?; // idempotent
        assert_eq!(t.bind(&s, "sid-1", "mallory", 5), Err(BindError::AlreadyBound));
        Ok(())
    }

    #[test]
    fn raw_ids_are_never_stored() -> Result<(), BindError> {
        let s = MemoryStore::new();
        let t = table(16, 60);
        t.bind(&s, "secret-session-id-xyz", "alice@example.com", 0)?;
        for i in 0..16 {
            if let Ok(Some((v, _))) = s.get(&format!("sess:{i}")) {
                assert_eq!(v.len(), VALUE_LEN);
                assert!(!v.windows(5).any(|w| w == b"secre" || w == b"alice"));
            }
        }
        Ok(())
    }

    #[test]
    fn full_table_refuses_until_ttl() -> Result<(), BindError> {
        let s = MemoryStore::new();
        let t = table(1, 10);
        t.bind(&s, "a", "alice", 0)?;
        assert_eq!(t.bind(&s, "b", "bob", 9_999), Err(BindError::TableFull));
        // "a" is still enforced while its slot is held.
        assert_eq!(t.check(&s, "a", "bob", 20_000)?, SessionCheck::Mismatch);
        t.bind(&s, "b", "bob", 10_000)?; // TTL passed: slot reused
        assert_eq!(t.check(&s, "b", "bob", 10_001)?, SessionCheck::Match);
        assert_eq!(t.check(&s, "a", "alice", 10_001)?, SessionCheck::Unbound);
        Ok(())
    }

    #[test]
    fn bounded_for_many_sessions() -> Result<(), BindError> {
        let s = MemoryStore::new();
        let slots = 1024;
        let t = table(slots, 1);
        let (mut ok, mut full) = (0u32, 0u32);
        for i in 0..20_000u64 {
            match t.bind(&s, &format!("session-{i}"), &format!("p{}", i % 97), i) {
                Ok(()) => ok += 1,
                Err(BindError::TableFull) => full += 1,
                Err(e) => return Err(e),
            }
        }
        assert!(s.key_count() <= slots as usize);
        assert!(s.byte_size() <= slots as usize * (VALUE_LEN + 10));
        // One bind per ms with a 1 s TTL: ~1000 live bindings, the table holds them nearly all.
        assert!(ok > 15_000, "ok={ok} full={full}");
        Ok(())
    }

    #[test]
    fn bind_race_on_same_slot_has_one_winner() -> Result<(), BindError> {
        // Two workers see the same free slot; the second write must fail its CAS and re-read.
        let s = MemoryStore::new();
        let t = table(1, 60);
        let hash = identity(TAG_SESSION, &[b"sid"]);
        let slot = t.locate(&s, &hash, 0)?;
        t.bind(&s, "sid", "alice", 0)?; // worker A wins
        if let Slot::Free { key, cas } = slot {
            assert_eq!(s.set(&key, b"x", Some(cas)), Err(StoreError::CasMismatch));
        }
        assert_eq!(t.bind(&s, "sid", "bob", 0), Err(BindError::AlreadyBound));
        Ok(())
    }

    #[test]
    fn config_validation_names_keys() {
        let bad = SessionBindingConfig { slots: 0, ..Default::default() };
        assert_eq!(
            bad.validate("security.session_binding").err().map(|e| e.key),
            Some("security.session_binding.slots".into())
        );
        let bad = SessionBindingConfig { ttl_secs: 0, ..Default::default() };
        assert_eq!(bad.validate("x").err().map(|e| e.key), Some("x.ttl_secs".into()));
        let cfg: Result<SessionBindingConfig, _> =
            serde_json::from_str(r#"{"enabled":true,"slots":16384,"ttl_secs":86400}"#);
        assert!(cfg.is_ok());
        let cfg: Result<SessionBindingConfig, _> = serde_json::from_str(r#"{"slot":1}"#);
        assert!(cfg.is_err());
    }
}

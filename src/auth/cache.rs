//! Per-VM cache of verified JWTs, keyed by SHA-256 of the token.
//!
//! Bounded: when full, expired entries are swept first, then the entry expiring soonest is
//! evicted. Only successfully verified tokens are inserted, so the O(n) sweep runs at most
//! once per (already expensive) signature verification.

use std::collections::HashMap;

use super::Identity;

#[derive(Debug, Clone)]
struct Entry {
    identity: Identity,
    /// Last second (inclusive) at which the entry may be served.
    valid_until: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct TokenCache {
    map: HashMap<[u8; 32], Entry>,
    capacity: usize,
}

impl TokenCache {
    pub fn new(capacity: usize) -> Self {
        Self { map: HashMap::with_capacity(capacity.min(4096)), capacity: capacity.max(1) }
    }

    pub fn get(&mut self, digest: &[u8; 32], now: u64) -> Option<Identity> {
        match self.map.get(digest) {
            Some(e) if now <= e.valid_until => Some(e.identity.clone()),
            Some(_) => {
                self.map.remove(digest);
                None
            }
            None => None,
        }
    }

    pub fn insert(&mut self, digest: [u8; 32], identity: Identity, valid_until: u64, now: u64) {
        if valid_until < now {
            return;
        }
        if self.map.len() >= self.capacity && !self.map.contains_key(&digest) {
            self.map.retain(|_, e| e.valid_until >= now);
            if self.map.len() >= self.capacity {
                if let Some(victim) = self.map.iter().min_by_key(|(_, e)| e.valid_until).map(|(k, _)| *k) {
                    self.map.remove(&victim);
                }
            }
        }
        self.map.insert(digest, Entry { identity, valid_until });
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::auth::AuthMethod;

    fn id(n: &str) -> Identity {
        Identity {
            client_id: n.to_string(),
            method: AuthMethod::Jwt,
            permissions: vec![],
            roles: vec![],
            scopes: vec![],
            api_key_index: None,
        }
    }

    #[test]
    fn expiry_and_bound() {
        let mut c = TokenCache::new(2);
        c.insert([1; 32], id("a"), 100, 10);
        assert_eq!(c.get(&[1; 32], 100).map(|i| i.client_id), Some("a".into()));
        assert!(c.get(&[1; 32], 101).is_none());
        assert_eq!(c.len(), 0, "expired entry removed on lookup");
        c.insert([1; 32], id("a"), 50, 10);
        c.insert([2; 32], id("b"), 200, 10);
        c.insert([3; 32], id("c"), 300, 10);
        assert_eq!(c.len(), 2);
        assert!(c.get(&[1; 32], 20).is_none(), "soonest-expiring evicted");
        assert!(c.get(&[3; 32], 20).is_some());
        // Expired entries are swept before evicting live ones.
        c.insert([4; 32], id("d"), 400, 250);
        assert!(c.get(&[3; 32], 250).is_some());
        assert!(c.get(&[4; 32], 250).is_some());
        c.insert([5; 32], id("e"), 1, 10);
        assert!(c.get(&[5; 32], 10).is_none(), "already expired is not inserted");
    }
}

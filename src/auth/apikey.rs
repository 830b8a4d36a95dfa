//! Static API keys: configured as SHA-256 digests (or plain text for development); a presented
//! key is hashed once and compared against every digest in constant time, without early exit.

use crate::ratelimit::RateLimitSpec;

use super::config::{parse_hex32, ApiKeyConfig};
use super::{AuthMethod, Identity};

#[derive(Clone)]
struct Entry {
    digest: [u8; 32],
    client_id: String,
    permissions: Vec<String>,
    roles: Vec<String>,
    rate_limit: Option<RateLimitSpec>,
}

#[derive(Clone, Default)]
pub(crate) struct ApiKeyStore {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for ApiKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyStore").field("keys", &self.entries.len()).finish()
    }
}

/// 1 when equal, 0 otherwise; the time does not depend on where the inputs differ.
#[inline(never)]
fn ct_eq32(a: &[u8; 32], b: &[u8; 32]) -> usize {
    let mut acc = 0u8;
    for i in 0..32 {
        acc |= a[i] ^ b[i];
    }
    let acc = std::hint::black_box(acc);
    // 0 -> 1, anything else -> 0, without a branch.
    (((acc as u32).wrapping_sub(1)) >> 31) as usize
}

impl ApiKeyStore {
    /// Builds the store from validated config (invalid entries are skipped; `validate` rejects them).
    pub fn new(cfgs: &[ApiKeyConfig]) -> Self {
        let entries = cfgs
            .iter()
            .filter_map(|c| {
                let digest = match (&c.key_sha256, &c.key) {
                    (Some(h), _) => parse_hex32(h.expose())?,
                    (None, Some(k)) => hmac_sha256::Hash::hash(k.expose().as_bytes()),
                    (None, None) => return None,
                };
                Some(Entry {
                    digest,
                    client_id: c.client_id.clone(),
                    permissions: c.permissions.clone(),
                    roles: c.roles.clone(),
                    rate_limit: c.rate_limit,
                })
            })
            .collect();
        Self { entries }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Index of the matching key. Every configured digest is compared.
    pub fn lookup(&self, presented: &str) -> Option<usize> {
        let digest = hmac_sha256::Hash::hash(presented.as_bytes());
        let mut found = usize::MAX;
        for (i, e) in self.entries.iter().enumerate() {
            let mask = ct_eq32(&e.digest, &digest).wrapping_neg();
            found = (i & mask) | (found & !mask);
        }
        (found != usize::MAX).then_some(found)
    }

    pub fn identity(&self, index: usize) -> Option<Identity> {
        let e = self.entries.get(index)?;
        Some(Identity {
            client_id: e.client_id.clone(),
            method: AuthMethod::ApiKey,
            permissions: e.permissions.clone(),
            roles: e.roles.clone(),
            scopes: Vec::new(),
            api_key_index: Some(index),
        })
    }

    pub fn rate_limit(&self, index: usize) -> Option<RateLimitSpec> {
        self.entries.get(index)?.rate_limit
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn ct_eq() {
        let a = [7u8; 32];
        let mut b = a;
        assert_eq!(ct_eq32(&a, &b), 1);
        b[31] ^= 1;
        assert_eq!(ct_eq32(&a, &b), 0);
        b = a;
        b[0] = 0;
        assert_eq!(ct_eq32(&a, &b), 0);
    }
}

//! Fixed-size open-addressing table over shared-data keys `<prefix><slot>`, shared by the rate
//! limiter (`rl:`) and the session table (`sess:`).
//!
//! An entry's identity is a SHA-256; its first 16 bytes (the fingerprint) are the first 16 bytes
//! of the stored value, bytes 16..24 pick the home slot and 24..32 the probe step (double hashing).
//! The host never deletes keys, so the number of keys is at most `slots` and each value has a fixed
//! size: memory is bounded whatever the number of identities.
//!
//! Lookup walks the probe sequence and stops at the entry's own fingerprint or at a never-written
//! key (an insert always takes the first free slot of the sequence and keys are never removed, so
//! nothing of this identity lies beyond a never-written key). Slots the caller declares reusable
//! (an idle full bucket, an expired session binding, a value that does not decode) are remembered
//! as insertion candidates but the walk continues, so an identity is found even when an earlier
//! slot has become free since it was inserted.

use crate::shared::{SharedStore, StoreError, CREATE_IF_ABSENT};

#[derive(Debug, Clone)]
pub(crate) struct SlotTable {
    prefix: &'static str,
    slots: u32,
    probes: u32,
}

#[derive(Debug, Clone)]
pub(crate) enum Slot {
    /// The identity's own entry.
    Own { key: String, value: Vec<u8>, cas: u32 },
    /// A slot the identity may take: write with `Some(cas)` (a never-written key carries
    /// [`CREATE_IF_ABSENT`], so a concurrent creation makes the write fail with `CasMismatch`).
    Free { key: String, cas: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LocateError {
    /// Every probed slot holds another live identity.
    Full,
    Store(StoreError),
}

pub(crate) fn fingerprint(hash: &[u8; 32]) -> [u8; 16] {
    let mut fp = [0u8; 16];
    fp.copy_from_slice(&hash[..16]);
    fp
}

fn u64_at(h: &[u8; 32], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[at..at + 8]);
    u64::from_le_bytes(b)
}

/// SHA-256 over `tag` and length-prefixed parts (no ambiguity between `("ab","c")` and `("a","bc")`).
/// Tags and prefixes are kept short so that typical identities fit one 55-byte SHA-256 block
/// (the hash dominates the cost of a check).
pub(crate) fn identity(tag: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut h = hmac_sha256::Hash::new();
    h.update(tag);
    for p in parts {
        h.update(u32::try_from(p.len()).unwrap_or(u32::MAX).to_le_bytes());
        h.update(p);
    }
    h.finalize()
}

impl SlotTable {
    pub(crate) fn new(prefix: &'static str, slots: u32, probes: u32) -> Self {
        Self { prefix, slots: slots.max(1), probes: probes.max(1) }
    }

    pub(crate) fn key(&self, slot: u32) -> String {
        let mut k = String::with_capacity(self.prefix.len() + 10);
        k.push_str(self.prefix);
        k.push_str(&slot.to_string());
        k
    }

    /// Slot numbers of the probe sequence of `hash` (may repeat when `slots` is small).
    pub(crate) fn probe_seq(&self, hash: &[u8; 32]) -> impl Iterator<Item = u32> {
        let n = u64::from(self.slots);
        let home = u64_at(hash, 16) % n;
        let step = if n > 1 { 1 + u64_at(hash, 24) % (n - 1) } else { 0 };
        (0..u64::from(self.probes)).map(move |i| {
            // i < 64 and step < 2^20, so no overflow; result < n ≤ u32::MAX.
            u32::try_from((home + i * step) % n).unwrap_or(0)
        })
    }

    /// Finds `hash`'s entry or the first slot it may take. `reusable(value, now)` says whether a
    /// slot holding another identity's value may be overwritten.
    pub(crate) fn locate(
        &self,
        store: &dyn SharedStore,
        hash: &[u8; 32],
        reusable: impl Fn(&[u8]) -> bool,
    ) -> Result<Slot, LocateError> {
        let fp = fingerprint(hash);
        let mut candidate: Option<(String, u32)> = None;
        for slot in self.probe_seq(hash) {
            let key = self.key(slot);
            match store.get(&key).map_err(LocateError::Store)? {
                None => {
                    let (key, cas) = candidate.unwrap_or((key, CREATE_IF_ABSENT));
                    return Ok(Slot::Free { key, cas });
                }
                Some((value, cas)) => {
                    if value.get(..16) == Some(&fp[..]) {
                        return Ok(Slot::Own { key, value, cas });
                    }
                    if candidate.is_none() && reusable(&value) {
                        candidate = Some((key, cas));
                    }
                }
            }
        }
        match candidate {
            Some((key, cas)) => Ok(Slot::Free { key, cas }),
            None => Err(LocateError::Full),
        }
    }
}

//! The host's shared key-value store (proxy-wasm shared data), as a trait so that the rate
//! limiter and the session table run natively in tests against [`MemoryStore`].
//!
//! Semantics mirror proxy-wasm-cpp-host: `set` with `cas = Some(c)` fails with
//! [`StoreError::CasMismatch`] when the key exists with another CAS value; a *missing* key is
//! always created, whatever the CAS (callers that need create-if-absent pass a CAS that can never
//! be current, see [`CREATE_IF_ABSENT`]). There is no delete and no key listing.

use std::cell::RefCell;
use std::collections::HashMap;

/// A CAS value the host never hands out in practice (its counter starts at 1 and would need 2^32
/// writes to wrap), so `set(key, v, Some(CREATE_IF_ABSENT))` creates a missing key but fails with
/// `CasMismatch` if another worker created it first.
pub const CREATE_IF_ABSENT: u32 = u32::MAX;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    CasMismatch,
    /// Any other host failure; callers fail closed.
    Host(String),
}

pub trait SharedStore {
    /// Value and CAS token of `key`, `None` when the key has never been written.
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError>;
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError>;
}

/// In-memory store with the host's semantics, for native tests and `mcp-scan`-style tools.
#[derive(Default)]
pub struct MemoryStore {
    map: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    next_cas: RefCell<u32>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of keys ever created (the store never deletes), for memory-bound tests.
    pub fn key_count(&self) -> usize {
        self.map.borrow().len()
    }

    /// Total bytes of keys and values, for memory-bound tests.
    pub fn byte_size(&self) -> usize {
        self.map.borrow().iter().map(|(k, (v, _))| k.len() + v.len()).sum()
    }
}

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u32)>, StoreError> {
        Ok(self.map.borrow().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        let mut map = self.map.borrow_mut();
        let mut next = self.next_cas.borrow_mut();
        *next = next.wrapping_add(1).max(1);
        match map.get_mut(key) {
            Some(entry) => {
                if let Some(c) = cas {
                    if c != 0 && c != entry.1 {
                        return Err(StoreError::CasMismatch);
                    }
                }
                *entry = (value.to_vec(), *next);
            }
            None => {
                map.insert(key.to_string(), (value.to_vec(), *next));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_mismatch_on_stale_token() -> Result<(), StoreError> {
        let s = MemoryStore::new();
        s.set("k", b"a", None)?;
        let (_, cas) = s.get("k")?.ok_or(StoreError::Host("missing".into()))?;
        s.set("k", b"b", Some(cas))?;
        assert_eq!(s.set("k", b"c", Some(cas)), Err(StoreError::CasMismatch));
        Ok(())
    }

    #[test]
    fn create_if_absent_does_not_overwrite() -> Result<(), StoreError> {
        let s = MemoryStore::new();
        s.set("k", b"first", Some(CREATE_IF_ABSENT))?;
        assert_eq!(s.set("k", b"second", Some(CREATE_IF_ABSENT)), Err(StoreError::CasMismatch));
        assert_eq!(s.get("k")?.map(|(v, _)| v), Some(b"first".to_vec()));
        Ok(())
    }
}

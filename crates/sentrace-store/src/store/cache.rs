//! A bounded cache of decrypted block footers, least recently used out first.
//!
//! A footer holds the row-group statistics and bloom filters a read prunes with; decrypting
//! and parsing it costs more than reading the row group it points to, so recently used
//! footers are kept, up to `block_footer_cache` of them. The small per-block index
//! ([`crate::block::BlockIndex`]) is kept for every block apart from this cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::block::BlockMeta;

/// The cache; a capacity of 0 caches nothing.
pub(crate) struct MetaCache {
    cap: usize,
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    tick: u64,
    map: HashMap<String, (Arc<BlockMeta>, u64)>,
}

impl MetaCache {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            inner: Mutex::new(Entries::default()),
        }
    }

    pub fn get(&self, key: &str) -> Option<Arc<BlockMeta>> {
        let mut e = self.inner.lock().ok()?;
        e.tick += 1;
        let tick = e.tick;
        let (meta, used) = e.map.get_mut(key)?;
        *used = tick;
        Some(meta.clone())
    }

    pub fn insert(&self, key: String, meta: Arc<BlockMeta>) {
        if self.cap == 0 {
            return;
        }
        let Ok(mut e) = self.inner.lock() else {
            return;
        };
        e.tick += 1;
        let tick = e.tick;
        if !e.map.contains_key(&key) && e.map.len() >= self.cap {
            let oldest = e
                .map
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                e.map.remove(&k);
            }
        }
        e.map.insert(key, (meta, tick));
    }

    /// Forgets a block (deleted or shredded).
    pub fn remove(&self, key: &str) {
        if let Ok(mut e) = self.inner.lock() {
            e.map.remove(key);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.inner.lock().map(|e| e.map.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::{BlockInfo, BlockOptions, Sparse, build_block, load_meta};
    use crate::keys::{KeyRing, MasterKey};
    use sentrace_core::TenantId;

    #[test]
    fn holds_at_most_its_capacity_and_drops_the_least_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Arc::new(KeyRing::open(dir.path(), &MasterKey::generate().unwrap()).unwrap());
        let acme = TenantId::new("acme").unwrap();
        let dek = keys.current_dek(&acme).unwrap();
        let spans = vec![crate::testutil::typical_span(1)];
        let name = BlockInfo::new_name(0, 1).unwrap();
        let bytes = build_block(&acme, &dek, &name, &spans, BlockOptions::new(8)).unwrap();
        let meta = Arc::new(load_meta(&Sparse::whole(bytes), &keys, &acme, &name).unwrap());
        let cache = MetaCache::new(2);
        cache.insert("a".into(), meta.clone());
        cache.insert("b".into(), meta.clone());
        assert!(cache.get("a").is_some());
        cache.insert("c".into(), meta.clone());
        assert_eq!(cache.len(), 2);
        assert!(cache.get("b").is_none(), "b was least recently used");
        assert!(cache.get("a").is_some() && cache.get("c").is_some());
        cache.remove("a");
        assert!(cache.get("a").is_none());
        let none = MetaCache::new(0);
        none.insert("a".into(), meta);
        assert_eq!(none.len(), 0);
    }
}

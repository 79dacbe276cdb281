//! A map with a size cap that evicts the least recently touched keys.

use std::collections::HashMap;
use std::hash::Hash;

/// A bounded map: at most `cap` keys; past it, the least recently touched 10% go.
#[derive(Debug)]
pub struct Bounded<K, V> {
    map: HashMap<K, (V, u64)>,
    cap: usize,
    tick: u64,
}

impl<K: Hash + Eq + Clone, V> Bounded<K, V> {
    /// An empty map holding at most `cap` keys.
    pub fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            cap: cap.max(1),
            tick: 0,
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether `k` is present (does not touch it).
    pub fn contains(&self, k: &K) -> bool {
        self.map.contains_key(k)
    }

    /// The value of `k`, created with `init` if absent; touches it.
    pub fn entry(&mut self, k: K, init: impl FnOnce() -> V) -> &mut V {
        self.tick = self.tick.wrapping_add(1);
        if !self.map.contains_key(&k) && self.map.len() >= self.cap {
            self.evict();
        }
        let tick = self.tick;
        let slot = self.map.entry(k).or_insert_with(|| (init(), tick));
        slot.1 = tick;
        &mut slot.0
    }

    /// Entries from the least to the most recently touched (for snapshots: inserting them
    /// in this order into an empty map restores the eviction order).
    pub fn oldest_first(&self) -> Vec<(&K, &V)> {
        let mut v: Vec<(&K, &V, u64)> = self.map.iter().map(|(k, (v, t))| (k, v, *t)).collect();
        v.sort_unstable_by_key(|e| e.2);
        v.into_iter().map(|(k, v, _)| (k, v)).collect()
    }

    /// Every value, mutably, without touching them.
    pub fn values_mut(&mut self) -> impl Iterator<Item = (&K, &mut V)> {
        self.map.iter_mut().map(|(k, (v, _))| (k, v))
    }

    /// The value of `k`, mutably, without touching it.
    pub fn get_mut(&mut self, k: &K) -> Option<&mut V> {
        self.map.get_mut(k).map(|(v, _)| v)
    }

    fn evict(&mut self) {
        let drop_n = (self.cap / 10).max(1);
        let mut ticks: Vec<u64> = self.map.values().map(|(_, t)| *t).collect();
        ticks.sort_unstable();
        let Some(limit) = ticks.get(drop_n.saturating_sub(1)).copied() else {
            return;
        };
        self.map.retain(|_, (_, t)| *t > limit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recent() {
        let mut m: Bounded<u32, u32> = Bounded::new(10);
        for i in 0..10 {
            *m.entry(i, || 0) += 1;
        }
        *m.entry(0, || 0) += 1; // touch 0: it is now the most recent
        m.entry(10, || 0);
        assert!(m.len() <= 10);
        assert!(m.contains(&0) && m.contains(&10) && !m.contains(&1));
        for i in 0..1000 {
            m.entry(100 + i, || 0);
        }
        assert!(m.len() <= 10);
    }
}

//! A map that holds at most `capacity` entries and forgets the least recently written one
//! first: what the gateway keeps per chat (routes) and per delivery (unacked buffer ids).

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use crate::hash::SeededFx;

/// Each entry carries the stamp of its last write; an ordered index from stamp to key finds
/// the oldest in O(log n), so no operation scans the map.
#[derive(Debug)]
pub(crate) struct Bounded<K, V> {
    capacity: usize,
    clock: u64,
    entries: HashMap<K, (V, u64), SeededFx>,
    by_age: BTreeMap<u64, K>,
}

impl<K: Hash + Eq + Clone, V> Bounded<K, V> {
    /// A map of at most `capacity` entries, hashed with `hasher`.
    pub(crate) fn new(capacity: usize, hasher: SeededFx) -> Self {
        Self {
            capacity,
            clock: 0,
            entries: HashMap::with_hasher(hasher),
            by_age: BTreeMap::new(),
        }
    }

    /// Inserts or overwrites `key`, making it the newest; evicts the oldest past capacity
    /// and returns what it evicted. With capacity 0 nothing is kept.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<(K, V)> {
        if self.capacity == 0 {
            return Some((key, value));
        }
        self.clock += 1;
        if let Some((_, stamp)) = self.entries.insert(key.clone(), (value, self.clock)) {
            self.by_age.remove(&stamp);
        }
        self.by_age.insert(self.clock, key);
        if self.entries.len() > self.capacity {
            let (_, oldest) = self.by_age.pop_first()?;
            let (value, _) = self.entries.remove(&oldest)?;
            return Some((oldest, value));
        }
        None
    }

    /// Makes `key` the newest without rewriting it, as an insert of the same value would;
    /// `false` when it is not there. The age index gives its key back, so nothing is
    /// cloned.
    pub(crate) fn touch<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        let Some((_, stamp)) = self.entries.get_mut(key) else {
            return false;
        };
        let Some(owned) = self.by_age.remove(stamp) else {
            return false;
        };
        self.clock += 1;
        *stamp = self.clock;
        self.by_age.insert(self.clock, owned);
        true
    }

    /// Forgets `key`; `false` when it is not there.
    pub(crate) fn remove<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        let Some((_, stamp)) = self.entries.remove(key) else {
            return false;
        };
        self.by_age.remove(&stamp);
        true
    }

    /// The key held for `key`: for a key that carries data of its own.
    pub(crate) fn get_key<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<&K>
    where
        K: Borrow<Q>,
    {
        self.entries.get_key_value(key).map(|(key, _)| key)
    }

    pub(crate) fn get_mut<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
    {
        self.entries.get_mut(key).map(|(value, _)| value)
    }

    pub(crate) fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
    {
        self.entries.get(key).map(|(value, _)| value)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{Bounded, SeededFx};

    #[test]
    fn forgets_the_least_recently_written_first() {
        let mut map = Bounded::new(2, SeededFx::default());
        map.insert("a", 1);
        map.insert("b", 2);
        map.insert("a", 3); // rewriting makes it the newest
        map.insert("c", 4);
        assert_eq!(map.get("b"), None);
        assert_eq!((map.get("a"), map.get("c")), (Some(&3), Some(&4)));
        assert_eq!(map.insert("d", 5), Some(("a", 3)));
        // Touching makes "c" the newest without rewriting it: "d" goes first.
        assert!(map.touch("c"));
        assert!(!map.touch("a"));
        assert_eq!(map.insert("e", 6), Some(("d", 5)));
        assert_eq!(map.get("c"), Some(&4));
        let mut none = Bounded::new(0, SeededFx::default());
        assert_eq!(none.insert("x", ()), Some(("x", ())));
        assert_eq!(none.get("x"), None);
    }
}

//! A map that holds at most `capacity` entries and forgets the least recently written one
//! first: what the gateway keeps per chat (routes) and per delivery (unacked buffer ids).

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// Each entry carries the stamp of its last write; an ordered index from stamp to key finds
/// the oldest in O(log n), so no operation scans the map.
#[derive(Debug)]
pub(crate) struct Bounded<K, V> {
    capacity: usize,
    clock: u64,
    entries: HashMap<K, (V, u64)>,
    by_age: BTreeMap<u64, K>,
}

impl<K: Hash + Eq + Clone, V> Bounded<K, V> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            clock: 0,
            entries: HashMap::new(),
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
    use super::Bounded;

    #[test]
    fn forgets_the_least_recently_written_first() {
        let mut map = Bounded::new(2);
        map.insert("a", 1);
        map.insert("b", 2);
        map.insert("a", 3); // rewriting makes it the newest
        map.insert("c", 4);
        assert_eq!(map.get("b"), None);
        assert_eq!((map.get("a"), map.get("c")), (Some(&3), Some(&4)));
        assert_eq!(map.insert("d", 5), Some(("a", 3)));
        let mut none = Bounded::new(0);
        assert_eq!(none.insert("x", ()), Some(("x", ())));
        assert_eq!(none.get("x"), None);
    }
}

//! A map that holds at most `capacity` entries and forgets the least recently written one
//! first: what the gateway keeps per chat (routes) and per delivery (unacked buffer ids).

use std::borrow::Borrow;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use crate::hash::SeededFx;

/// Each entry carries the stamp of its last write. The age index is a queue of
/// `(stamp, key)` in stamp order (stamps only grow, so a write appends): the oldest is at
/// its front. A rewrite or removal leaves the old record in place, stale (its stamp no
/// longer matches the entry's); stale records are skipped when they reach the front, and
/// swept out whenever they outnumber the live ones. Unlike the B-tree this replaces, the
/// queue reuses its buffer, so a steady stream of new keys (every inbound of a new chat)
/// allocates nothing for the index, and no operation scans the map except the amortised
/// sweep.
#[derive(Debug)]
pub(crate) struct Bounded<K, V> {
    capacity: usize,
    clock: u64,
    entries: HashMap<K, (V, u64), SeededFx>,
    by_age: VecDeque<(u64, K)>,
}

impl<K: Hash + Eq + Clone, V> Bounded<K, V> {
    /// A map of at most `capacity` entries, hashed with `hasher`.
    pub(crate) fn new(capacity: usize, hasher: SeededFx) -> Self {
        Self {
            capacity,
            clock: 0,
            entries: HashMap::with_hasher(hasher),
            by_age: VecDeque::new(),
        }
    }

    /// Inserts or overwrites `key`, making it the newest; evicts the oldest past capacity
    /// and returns what it evicted. With capacity 0 nothing is kept.
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<(K, V)> {
        if self.capacity == 0 {
            return Some((key, value));
        }
        self.clock += 1;
        // A rewrite leaves its old age record stale.
        self.entries.insert(key.clone(), (value, self.clock));
        self.by_age.push_back((self.clock, key));
        let evicted = if self.entries.len() > self.capacity {
            self.pop_oldest()
        } else {
            None
        };
        self.sweep();
        evicted
    }

    /// Removes the entry whose age record is the oldest live one.
    fn pop_oldest(&mut self) -> Option<(K, V)> {
        while let Some((stamp, key)) = self.by_age.pop_front() {
            // One lookup: a live record's entry is removed at once; a stale one's entry
            // (rewritten or touched since) is put back, which is rare.
            match self.entries.remove_entry(&key) {
                Some((key, (value, s))) if s == stamp => return Some((key, value)),
                Some((key, entry)) => {
                    self.entries.insert(key, entry);
                }
                None => {}
            }
        }
        None
    }

    /// Drops the stale age records once they outnumber the live ones (so the index holds
    /// at most about twice the entries), in one pass: O(1) amortised per write.
    fn sweep(&mut self) {
        if self.by_age.len() <= 2 * self.entries.len() + 8 {
            return;
        }
        let entries = &self.entries;
        self.by_age
            .retain(|(stamp, key)| entries.get(key).is_some_and(|(_, s)| s == stamp));
    }

    /// Makes `key` the newest without rewriting it, as an insert of the same value would;
    /// `false` when it is not there. The key is cloned into the age index: the keys
    /// here are shared strings, so that is a reference count.
    pub(crate) fn touch<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        let Some((owned, (_, stamp))) = self.entries.get_key_value(key) else {
            return false;
        };
        if *stamp == self.clock {
            // Already the newest.
            return true;
        }
        let owned = owned.clone();
        self.clock += 1;
        if let Some((_, stamp)) = self.entries.get_mut(key) {
            *stamp = self.clock;
        }
        // The old record goes stale.
        self.by_age.push_back((self.clock, owned));
        self.sweep();
        true
    }

    /// The most entries it holds.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets `key`; `false` when it is not there.
    pub(crate) fn remove<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        // Its age record goes stale.
        let removed = self.entries.remove(key).is_some();
        self.sweep();
        removed
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

/// A copied string key for a [`Bounded`] map (an id that outlives its message): kept inline
/// up to 22 bytes, else in one shared allocation, so the copy the age index holds is
/// free. Short ids (`buf-17`) then cost no allocation at all; an `Arc<str>` cost one each.
#[derive(Clone, Debug)]
pub(crate) struct SmallKey(KeyRepr);

#[derive(Clone, Debug)]
enum KeyRepr {
    Inline { len: u8, bytes: [u8; 22] },
    Shared(Arc<str>),
}

impl SmallKey {
    /// A copy of `text`.
    pub(crate) fn new(text: &str) -> Self {
        let mut bytes = [0; 22];
        match (bytes.get_mut(..text.len()), u8::try_from(text.len())) {
            (Some(room), Ok(len)) => {
                room.copy_from_slice(text.as_bytes());
                Self(KeyRepr::Inline { len, bytes })
            }
            _ => Self(KeyRepr::Shared(Arc::from(text))),
        }
    }

    fn as_str(&self) -> &str {
        match &self.0 {
            // Copied from a `str`, so the check never fails.
            KeyRepr::Inline { len, bytes } => bytes
                .get(..usize::from(*len))
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or_default(),
            KeyRepr::Shared(text) => text,
        }
    }
}

impl PartialEq for SmallKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for SmallKey {}

impl Hash for SmallKey {
    // As `str` hashes, so that `Borrow<str>` lookups find it.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl Borrow<str> for SmallKey {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{Bounded, SeededFx, SmallKey};

    #[test]
    fn small_keys_are_found_by_their_text_short_or_long() {
        let mut map = Bounded::new(4, SeededFx::default());
        let long = "a-buffer-id-longer-than-twenty-two-bytes";
        map.insert(SmallKey::new("buf-1"), 1);
        map.insert(SmallKey::new(long), 2);
        map.insert(SmallKey::new(""), 3);
        assert_eq!(map.get("buf-1"), Some(&1));
        assert_eq!(map.get(long), Some(&2));
        assert_eq!(map.get(""), Some(&3));
        assert_eq!(map.get("buf-2"), None);
        assert!(map.touch(long));
    }

    #[test]
    fn stale_age_records_are_swept_and_skipped() {
        let mut map = Bounded::new(3, SeededFx::default());
        for i in 0..3 {
            map.insert(i, i);
        }
        // Many touches leave many stale records; the index stays bounded and the
        // eviction order stays true.
        for _ in 0..100 {
            assert!(map.touch(&0));
            assert!(map.touch(&1));
        }
        assert!(map.by_age.len() <= 2 * 3 + 8);
        assert_eq!(map.insert(3, 3), Some((2, 2)));
        assert!(map.remove(&0));
        assert!(!map.remove(&0));
        map.insert(4, 4);
        assert_eq!(map.insert(5, 5), Some((1, 1)));
    }

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

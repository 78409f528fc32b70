//! A map that holds at most `capacity` entries and forgets the least recently written one
//! first: what the gateway keeps per chat (routes) and per delivery (unacked buffer ids).

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use crate::hash::SeededFx;

/// A key of a [`Bounded`] map: it hashes and compares as its bytes, so lookups take a
/// `&[u8]` (a `Str`'s bytes, with no UTF-8 re-check) and the map hashes each key once.
pub(crate) trait KeyBytes {
    /// The bytes the key is known by.
    fn key_bytes(&self) -> &[u8];
}

impl KeyBytes for &str {
    fn key_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Where a key is in a [`Bounded`] map, or would go: see [`Bounded::probe`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Probe {
    hash: u64,
    slot: Option<usize>,
}

/// "No slot" in the age list.
const NIL: u32 = u32::MAX;

/// Most entries any map holds whatever its capacity: slots are numbered by `u32`, and the
/// index keeps twice as many cells (far beyond any memory a bounded table should take).
const MAX_SLOTS: usize = 1 << 30;

/// One entry, with its key's hash (so nothing is hashed twice, nor the index rebuilt by
/// hashing) and its neighbours in age order.
#[derive(Debug)]
struct Slot<K, V> {
    key: K,
    value: V,
    hash: u64,
    /// The next older and next newer entries, or [`NIL`].
    older: u32,
    newer: u32,
}

/// The entries sit densely in `slots`, linked oldest to newest through their neighbour
/// indices, so that making one the newest, or evicting the oldest, is a few index writes:
/// no key is cloned into an age index, no stale records pile up, and a steady stream of
/// new keys (every inbound of a new chat) reuses the evicted entry's slot in place,
/// allocating nothing. The lookup index is an open-addressed table (linear probing,
/// at most half full) of slot numbers, each with 32 bits of its hash: eight bytes a cell,
/// so probing it stays in cache and reads a slot only for a likely match (then checked by
/// the slot's full hash and key). Removing a
/// cell shifts the cells after it back, so there are no tombstones. The slot vector and the
/// index only grow as entries arrive: an idle map holds no heap.
#[derive(Debug)]
pub(crate) struct Bounded<K, V> {
    capacity: usize,
    hasher: SeededFx,
    slots: Vec<Slot<K, V>>,
    /// Cells of `slot + 1` with the low half of the slot's hash above it; 0 is empty.
    /// Its length is 0 or a power of two.
    index: Vec<u64>,
    oldest: u32,
    newest: u32,
}

impl<K: KeyBytes, V> Bounded<K, V> {
    /// A map of at most `capacity` entries, hashed with `hasher`.
    pub(crate) fn new(capacity: usize, hasher: SeededFx) -> Self {
        Self {
            capacity: capacity.min(MAX_SLOTS),
            hasher,
            slots: Vec::new(),
            index: Vec::new(),
            oldest: NIL,
            newest: NIL,
        }
    }

    fn hash(&self, bytes: &[u8]) -> u64 {
        let mut hasher = self.hasher.build_hasher();
        hasher.write(bytes);
        hasher.finish()
    }

    fn mask(&self) -> usize {
        self.index.len().wrapping_sub(1)
    }

    /// The cell of `slot` with hash `hash`: the hash's low half above `slot + 1` (never 0,
    /// which is an empty cell). Slots are bounded by [`MAX_SLOTS`], so the number fits.
    fn cell(slot: usize, hash: u64) -> u64 {
        (hash << 32) | (slot as u64 + 1)
    }

    /// Where a cell's probe sequence starts: its hash's low bits (the index has at most
    /// 2³¹ cells, so the low half the cell keeps has them all).
    fn home(cell: u64, mask: usize) -> usize {
        (cell >> 32) as usize & mask
    }

    /// The index cell and slot of `bytes` (whose hash is `hash`). A probe compares the
    /// hash bits its cells keep and reads a slot only when they match, so a miss (every
    /// new chat) touches nothing but the index.
    fn find(&self, bytes: &[u8], hash: u64) -> Option<(usize, usize)> {
        if self.index.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut at = hash as usize & mask;
        let bits = hash & 0xffff_ffff;
        // At most half full, so an empty cell ends every probe.
        loop {
            let cell = *self.index.get(at)?;
            if cell == 0 {
                return None;
            }
            if cell >> 32 == bits {
                let slot = ((cell & 0xffff_ffff) as usize).wrapping_sub(1);
                if let Some(candidate) = self.slots.get(slot) {
                    if candidate.hash == hash && candidate.key.key_bytes() == bytes {
                        return Some((at, slot));
                    }
                }
            }
            at = (at + 1) & mask;
        }
    }

    /// The index position that holds `slot`, whose hash is `hash`.
    fn cell_of(&self, slot: usize, hash: u64) -> Option<usize> {
        let mask = self.mask();
        let mut at = hash as usize & mask;
        let wanted = Self::cell(slot, hash);
        loop {
            match *self.index.get(at)? {
                0 => return None,
                found if found == wanted => return Some(at),
                _ => at = (at + 1) & mask,
            }
        }
    }

    /// Puts `slot` (hash `hash`) in the first free cell of its probe sequence.
    fn place(&mut self, slot: usize, hash: u64) {
        let mask = self.mask();
        let mut at = hash as usize & mask;
        let value = Self::cell(slot, hash);
        while let Some(found) = self.index.get_mut(at) {
            if *found == 0 {
                *found = value;
                return;
            }
            at = (at + 1) & mask;
        }
    }

    /// Empties index position `at`, shifting back the cells after it that may move into
    /// the hole, so that every probe still finds its key without tombstones. Each cell
    /// knows its home from the hash bits it keeps: no slot is read.
    fn unplace(&mut self, at: usize) {
        let mask = self.mask();
        let mut hole = at;
        let mut next = at;
        loop {
            next = (next + 1) & mask;
            let Some(&cell) = self.index.get(next) else {
                break;
            };
            if cell == 0 {
                break;
            }
            let home = Self::home(cell, mask);
            // The cell may move back if its home is at or before the hole along the probe.
            if next.wrapping_sub(home) & mask >= next.wrapping_sub(hole) & mask {
                if let Some(h) = self.index.get_mut(hole) {
                    *h = cell;
                }
                hole = next;
            }
        }
        if let Some(h) = self.index.get_mut(hole) {
            *h = 0;
        }
    }

    /// Doubles the index (or makes the first) when one more entry would fill it past half.
    fn reserve_one(&mut self) {
        if (self.slots.len() + 1) * 2 <= self.index.len() {
            return;
        }
        let cells = (self.index.len() * 2).max(16);
        self.index.clear();
        self.index.resize(cells, 0);
        // Rebuilt from the stored hashes: no key is hashed again.
        for slot in 0..self.slots.len() {
            let hash = self.slots.get(slot).map_or(0, |s| s.hash);
            self.place(slot, hash);
        }
    }

    fn slot_mut(&mut self, slot: u32) -> Option<&mut Slot<K, V>> {
        self.slots.get_mut(slot as usize)
    }

    /// Takes `slot` out of the age list.
    fn unlink(&mut self, slot: usize) {
        let Some(s) = self.slots.get(slot) else {
            return;
        };
        let (older, newer) = (s.older, s.newer);
        match self.slot_mut(older) {
            Some(o) => o.newer = newer,
            None => self.oldest = newer,
        }
        match self.slot_mut(newer) {
            Some(n) => n.older = older,
            None => self.newest = older,
        }
    }

    /// Links `slot` (not in the list) as the newest.
    fn link_newest(&mut self, slot: usize) {
        let Ok(id) = u32::try_from(slot) else {
            return; // Slots are bounded by `MAX_SLOTS`.
        };
        let newest = self.newest;
        if let Some(s) = self.slots.get_mut(slot) {
            s.older = newest;
            s.newer = NIL;
        }
        match self.slot_mut(newest) {
            Some(n) => n.newer = id,
            None => self.oldest = id,
        }
        self.newest = id;
    }

    /// Where `key` is in the map, or would go: a lookup whose result a following
    /// [`probed`](Self::probed), [`touch_probed`](Self::touch_probed) or
    /// [`insert_probed`](Self::insert_probed) reuses, so that "look, then write" hashes
    /// and probes once. Valid until the map is next written.
    pub(crate) fn probe(&self, key: &[u8]) -> Probe {
        let hash = self.hash(key);
        Probe {
            hash,
            slot: self.find(key, hash).map(|(_, slot)| slot),
        }
    }

    /// The entry `probe` found.
    pub(crate) fn probed(&self, probe: &Probe) -> Option<(&K, &V)> {
        let slot = self.slots.get(probe.slot?)?;
        Some((&slot.key, &slot.value))
    }

    /// The value `probe` found.
    pub(crate) fn probed_mut(&mut self, probe: &Probe) -> Option<&mut V> {
        Some(&mut self.slots.get_mut(probe.slot?)?.value)
    }

    /// Makes the entry `probe` found the newest without rewriting it.
    pub(crate) fn touch_probed(&mut self, probe: &Probe) {
        if let Some(slot) = probe.slot {
            self.make_newest(slot);
        }
    }

    /// Inserts or overwrites `key` (key and value both), making it the newest; evicts the
    /// oldest past capacity and returns what it evicted. With capacity 0 nothing is kept.
    /// (The machine probes first and uses [`insert_probed`](Self::insert_probed).)
    #[cfg(test)]
    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<(K, V)> {
        let probe = self.probe(key.key_bytes());
        self.insert_probed(probe, key, value)
    }

    /// Inserts or overwrites the key `probe` looked up (`key`, the same bytes; key and
    /// value both), making it the newest; evicts the oldest past capacity and returns what
    /// it evicted. With capacity 0 nothing is kept.
    pub(crate) fn insert_probed(&mut self, probe: Probe, key: K, value: V) -> Option<(K, V)> {
        if self.capacity == 0 {
            return Some((key, value));
        }
        let hash = probe.hash;
        if let Some(slot) = probe.slot {
            // A rewrite: same bytes, same hash, same cell.
            if let Some(s) = self.slots.get_mut(slot) {
                s.key = key;
                s.value = value;
            }
            self.make_newest(slot);
            return None;
        }
        if self.slots.len() >= self.capacity {
            // Full: the oldest entry's slot takes the new one in place.
            let slot = self.oldest as usize;
            let old_hash = self.slots.get(slot)?.hash;
            if let Some(cell) = self.cell_of(slot, old_hash) {
                self.unplace(cell);
            }
            self.unlink(slot);
            let s = self.slots.get_mut(slot)?;
            let old_key = std::mem::replace(&mut s.key, key);
            let old_value = std::mem::replace(&mut s.value, value);
            s.hash = hash;
            self.place(slot, hash);
            self.link_newest(slot);
            return Some((old_key, old_value));
        }
        self.reserve_one();
        let slot = self.slots.len();
        self.slots.push(Slot {
            key,
            value,
            hash,
            older: NIL,
            newer: NIL,
        });
        self.place(slot, hash);
        self.link_newest(slot);
        None
    }

    fn make_newest(&mut self, slot: usize) {
        if self.newest as usize != slot {
            self.unlink(slot);
            self.link_newest(slot);
        }
    }

    /// The most entries it holds.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The key held for `key`: for a key that carries data of its own.
    pub(crate) fn get_key(&self, key: &[u8]) -> Option<&K> {
        let (_, slot) = self.find(key, self.hash(key))?;
        self.slots.get(slot).map(|s| &s.key)
    }

    pub(crate) fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        let (_, slot) = self.find(key, self.hash(key))?;
        self.slots.get_mut(slot).map(|s| &mut s.value)
    }

    #[cfg(test)]
    pub(crate) fn get(&self, key: &[u8]) -> Option<&V> {
        let (_, slot) = self.find(key, self.hash(key))?;
        self.slots.get(slot).map(|s| &s.value)
    }
}

/// A copied string key for a [`Bounded`] map (an id that outlives its message): kept inline
/// up to 22 bytes, else in one allocation. Short ids (`buf-17`) then cost no allocation at
/// all.
#[derive(Clone, Debug)]
pub(crate) struct SmallKey(KeyRepr);

#[derive(Clone, Debug)]
enum KeyRepr {
    Inline { len: u8, bytes: [u8; 22] },
    Shared(Arc<[u8]>),
}

impl SmallKey {
    /// A copy of `bytes` (the text of an id).
    pub(crate) fn new(bytes: &[u8]) -> Self {
        let mut inline = [0; 22];
        match (inline.get_mut(..bytes.len()), u8::try_from(bytes.len())) {
            (Some(room), Ok(len)) => {
                room.copy_from_slice(bytes);
                Self(KeyRepr::Inline { len, bytes: inline })
            }
            _ => Self(KeyRepr::Shared(Arc::from(bytes))),
        }
    }
}

impl KeyBytes for SmallKey {
    fn key_bytes(&self) -> &[u8] {
        match &self.0 {
            KeyRepr::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            KeyRepr::Shared(bytes) => bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{Bounded, SeededFx, SmallKey};

    #[test]
    fn small_keys_are_found_by_their_text_short_or_long() {
        let mut map = Bounded::new(4, SeededFx::default());
        let long = b"a-buffer-id-longer-than-twenty-two-bytes";
        map.insert(SmallKey::new(b"buf-1"), 1);
        map.insert(SmallKey::new(long), 2);
        map.insert(SmallKey::new(b""), 3);
        assert_eq!(map.get(b"buf-1"), Some(&1));
        assert_eq!(map.get(long), Some(&2));
        assert_eq!(map.get(b""), Some(&3));
        assert_eq!(map.get(b"buf-2"), None);
        assert!(map.probed(&map.probe(long)).is_some());
    }

    #[test]
    fn forgets_the_least_recently_written_first() {
        let mut map = Bounded::new(2, SeededFx::default());
        map.insert("a", 1);
        map.insert("b", 2);
        map.insert("a", 3); // rewriting makes it the newest
        map.insert("c", 4);
        assert_eq!(map.get(b"b"), None);
        assert_eq!((map.get(b"a"), map.get(b"c")), (Some(&3), Some(&4)));
        assert_eq!(map.insert("d", 5), Some(("a", 3)));
        // Touching makes "c" the newest without rewriting it: "d" goes first.
        let probe = map.probe(b"c");
        map.touch_probed(&probe);
        assert!(map.probed(&map.probe(b"a")).is_none());
        assert_eq!(map.insert("e", 6), Some(("d", 5)));
        assert_eq!(map.get(b"c"), Some(&4));
        let mut none = Bounded::new(0, SeededFx::default());
        assert_eq!(none.insert("x", ()), Some(("x", ())));
        assert_eq!(none.get(b"x"), None);
    }

    /// Against a plain model (a list in age order), through inserts, rewrites, evictions and
    /// touches of growing key sets.
    #[test]
    fn agrees_with_a_model_through_every_operation() {
        let keys: Vec<String> = (0..300).map(|i| format!("k{i}")).collect();
        for capacity in [1, 2, 3, 7, 64, 1000] {
            let mut map = Bounded::new(capacity, SeededFx::new(capacity as u64));
            let mut model: Vec<(&str, u32)> = Vec::new();
            let mut x = 0x9e37_79b9_u64;
            for step in 0..20_000u32 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let key = keys[(x % 300) as usize].as_str();
                match (x >> 32) % 3 {
                    0 | 1 => {
                        let evicted = map.insert(key, step);
                        let expected = match model.iter().position(|(k, _)| *k == key) {
                            Some(at) => {
                                model.remove(at);
                                None
                            }
                            None if model.len() == capacity => Some(model.remove(0)),
                            None => None,
                        };
                        model.push((key, step));
                        assert_eq!(evicted, expected);
                    }
                    _ => {
                        let at = model.iter().position(|(k, _)| *k == key);
                        let probe = map.probe(key.as_bytes());
                        assert_eq!(map.probed(&probe).is_some(), at.is_some());
                        map.touch_probed(&probe);
                        if let Some(at) = at {
                            let entry = model.remove(at);
                            model.push(entry);
                        }
                    }
                }
                assert_eq!(map.slots.len(), model.len());
                for (k, v) in &model {
                    assert_eq!(map.get(k.as_bytes()), Some(v));
                }
            }
        }
    }
}

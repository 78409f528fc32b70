//! Requests awaiting their result: a map for lookup beside an ordered deadline index, so
//! the next deadline is the index's first entry and no timeout ever scans the table.

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use crate::hash::SeededFx;
use crate::wire::RequestId;

#[derive(Debug, Default)]
pub(crate) struct Pending {
    deadlines: HashMap<RequestId, Instant, SeededFx>,
    order: BTreeSet<(Instant, RequestId)>,
}

impl Pending {
    pub(crate) fn new(hasher: SeededFx) -> Self {
        Self {
            deadlines: HashMap::with_hasher(hasher),
            order: BTreeSet::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.deadlines.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.deadlines.is_empty()
    }

    pub(crate) fn contains(&self, id: &RequestId) -> bool {
        self.deadlines.contains_key(id)
    }

    pub(crate) fn insert(&mut self, id: RequestId, deadline: Instant) {
        if let Some(old) = self.deadlines.insert(id.clone(), deadline) {
            self.order.remove(&(old, id.clone()));
        }
        self.order.insert((deadline, id));
    }

    /// Takes `id` out; `false` when it was not pending (unknown, late or answered).
    pub(crate) fn remove(&mut self, id: &RequestId) -> bool {
        // The map hands back its own copy of the id, which builds the index key: no clone.
        match self.deadlines.remove_entry(id) {
            Some((id, deadline)) => {
                self.order.remove(&(deadline, id));
                true
            }
            None => false,
        }
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.order.first().map(|(at, _)| *at)
    }

    /// Takes the earliest request whose deadline is `<= now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<RequestId> {
        let (at, _) = self.order.first()?;
        if *at > now {
            return None;
        }
        let (_, id) = self.order.pop_first()?;
        self.deadlines.remove(&id);
        Some(id)
    }

    /// Takes every request, earliest deadline first (a deterministic order).
    pub(crate) fn drain(&mut self) -> Vec<RequestId> {
        self.deadlines.clear();
        std::mem::take(&mut self.order)
            .into_iter()
            .map(|(_, id)| id)
            .collect()
    }
}

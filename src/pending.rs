//! Requests awaiting their result: a map for lookup beside an ordered deadline index, so
//! the next deadline is the index's first entry and no timeout ever scans the table.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::Instant;

use crate::hash::SeededFx;
use crate::wire::RequestId;

/// The deadline index is a min-heap of `(deadline, id)` with lazy deletion: a request that
/// resolves leaves its record behind, stale (its id is no longer in the map, or maps to
/// another deadline). Stale records are dropped when they reach the top, so the top is
/// always a live request, and swept out whenever they outnumber the live ones. Unlike the
/// B-tree this replaces, the heap reuses its buffer: resolving a request allocates and
/// frees nothing, where the B-tree freed and later reallocated its nodes.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    deadlines: HashMap<RequestId, Instant, SeededFx>,
    order: BinaryHeap<Reverse<(Instant, RequestId)>>,
}

impl Pending {
    pub(crate) fn new(hasher: SeededFx) -> Self {
        Self {
            deadlines: HashMap::with_hasher(hasher),
            order: BinaryHeap::new(),
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
        // A previous deadline of the same id goes stale.
        self.deadlines.insert(id.clone(), deadline);
        self.order.push(Reverse((deadline, id)));
        self.settle();
    }

    pub(crate) fn remove(&mut self, id: &RequestId) -> bool {
        // Its record goes stale.
        let removed = self.deadlines.remove(id).is_some();
        if self.order.peek().is_some_and(|Reverse((_, top))| top == id) {
            self.settle();
        } else {
            // The top was live and is another request's: it still is, so only the sweep
            // may be due. A result mostly answers a request other than the oldest, and
            // comparing ids is cheaper than looking the top up again.
            self.sweep();
        }
        removed
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.order.peek().map(|Reverse((at, _))| *at)
    }

    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<RequestId> {
        let Reverse((at, _)) = self.order.peek()?;
        if *at > now {
            return None;
        }
        let Reverse((_, id)) = self.order.pop()?;
        self.deadlines.remove(&id);
        self.settle();
        Some(id)
    }

    /// Every pending request, soonest deadline first (ties by id), and forgets them.
    pub(crate) fn drain(&mut self) -> Vec<RequestId> {
        let deadlines = std::mem::take(&mut self.deadlines);
        let mut live: Vec<(Instant, RequestId)> = std::mem::take(&mut self.order)
            .into_iter()
            .map(|Reverse(record)| record)
            .filter(|(at, id)| deadlines.get(id) == Some(at))
            .collect();
        live.sort_unstable();
        // An id inserted twice with the same deadline has two live records.
        live.dedup();
        // Keep the map's hasher (its seed) for the next requests.
        self.deadlines = deadlines;
        self.deadlines.clear();
        live.into_iter().map(|(_, id)| id).collect()
    }

    /// Drops stale records from the top, and sweeps them all out once they outnumber the
    /// live ones (O(1) amortised per operation).
    fn settle(&mut self) {
        while let Some(Reverse((at, id))) = self.order.peek() {
            if self.deadlines.get(id) == Some(at) {
                break;
            }
            self.order.pop();
        }
        self.sweep();
    }

    /// Sweeps the stale records out once they outnumber the live ones.
    fn sweep(&mut self) {
        if self.order.len() > 2 * self.deadlines.len() + 16 {
            let deadlines = &self.deadlines;
            self.order
                .retain(|Reverse((at, id))| deadlines.get(id) == Some(at));
        }
    }
}

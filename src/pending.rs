//! Requests awaiting their result: a map for lookup beside an ordered deadline index, so
//! the next deadline is the index's first entry and no timeout ever scans the table.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use crate::hash::SeededFx;
use crate::wire::RequestId;

/// The deadline index is a queue of `(deadline, id)` in deadline order, with lazy
/// deletion: a request that resolves leaves its record behind, stale (its id is no longer
/// in the map, or maps to another deadline). Stale records are dropped when they reach the
/// front, so the front is always a live request, and swept out whenever they outnumber
/// the live ones.
///
/// Every deadline is the request's `now` plus the one configured timeout, so requests
/// arrive in deadline order (a `now` earlier than the last is put in its place), and the
/// queue is ordered by pushing at the back. Results mostly come back in the order the
/// requests went out, so a resolved record is mostly the front one, dropped at once. A
/// heap (what this replaces) ordered equal deadlines by id instead, which scattered them:
/// with a coarse clock, or a burst sent within one `now`, most results left a stale
/// record inside the heap, and every few hundred a sweep looked each one up again.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    deadlines: HashMap<RequestId, Instant, SeededFx>,
    order: VecDeque<(Instant, RequestId)>,
}

impl Pending {
    pub(crate) fn new(hasher: SeededFx) -> Self {
        Self {
            deadlines: HashMap::with_hasher(hasher),
            order: VecDeque::new(),
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
        match self.order.back() {
            Some((last, _)) if *last > deadline => {
                let at = self.order.partition_point(|(at, _)| *at <= deadline);
                self.order.insert(at, (deadline, id));
            }
            _ => self.order.push_back((deadline, id)),
        }
        self.settle();
    }

    pub(crate) fn remove(&mut self, id: &RequestId) -> bool {
        // Its record goes stale.
        let removed = self.deadlines.remove(id).is_some();
        if self.order.front().is_some_and(|(_, first)| first == id) {
            self.settle();
        } else {
            // The front was live and is another request's: it still is, so only the sweep
            // may be due (comparing ids is cheaper than looking the front up again).
            self.sweep();
        }
        removed
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.order.front().map(|(at, _)| *at)
    }

    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<RequestId> {
        let (at, _) = self.order.front()?;
        if *at > now {
            return None;
        }
        let (_, id) = self.order.pop_front()?;
        self.deadlines.remove(&id);
        self.settle();
        Some(id)
    }

    /// Every pending request, soonest deadline first (ties by id), and forgets them.
    pub(crate) fn drain(&mut self) -> Vec<RequestId> {
        let deadlines = std::mem::take(&mut self.deadlines);
        let mut live: Vec<(Instant, RequestId)> = std::mem::take(&mut self.order)
            .into_iter()
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
        // Every id in the map has a live record, so with no more records than ids there
        // is no stale one to look for: results that come back in request order settle
        // without a lookup.
        while self.order.len() > self.deadlines.len()
            && let Some((at, id)) = self.order.front()
        {
            if self.deadlines.get(id) == Some(at) {
                break;
            }
            self.order.pop_front();
        }
        self.sweep();
    }

    /// Sweeps the stale records out once they outnumber the live ones.
    fn sweep(&mut self) {
        if self.order.len() > 2 * self.deadlines.len() + 16 {
            let deadlines = &self.deadlines;
            self.order.retain(|(at, id)| deadlines.get(id) == Some(at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn id(n: u32) -> RequestId {
        RequestId::from(format!("r{n}"))
    }

    #[test]
    fn an_earlier_deadline_goes_in_its_place() {
        let t = Instant::now();
        let mut p = Pending::default();
        p.insert(id(1), t + Duration::from_secs(3));
        p.insert(id(2), t + Duration::from_secs(1));
        p.insert(id(3), t + Duration::from_secs(2));
        assert_eq!(p.next_deadline(), Some(t + Duration::from_secs(1)));
        let expired: Vec<_> =
            std::iter::from_fn(|| p.pop_expired(t + Duration::from_secs(5))).collect();
        assert_eq!(expired, [id(2), id(3), id(1)]);
        assert!(p.is_empty());
    }

    #[test]
    fn results_in_request_order_leave_no_stale_records() {
        // One `now` for the whole burst: equal deadlines.
        let at = Instant::now();
        let mut p = Pending::default();
        for n in 0..500 {
            p.insert(id(n), at);
        }
        for n in 0..500 {
            assert!(p.remove(&id(n)));
            assert_eq!(p.order.len(), p.len());
        }
        assert_eq!(p.next_deadline(), None);
    }

    #[test]
    fn a_reissued_id_expires_once_at_its_new_deadline() {
        let t = Instant::now();
        let mut p = Pending::default();
        p.insert(id(1), t);
        p.insert(id(2), t + Duration::from_secs(1));
        p.insert(id(1), t + Duration::from_secs(2));
        assert_eq!(p.pop_expired(t + Duration::from_secs(1)), Some(id(2)));
        assert_eq!(p.pop_expired(t + Duration::from_secs(1)), None);
        assert_eq!(p.pop_expired(t + Duration::from_secs(2)), Some(id(1)));
        assert_eq!(p.pop_expired(t + Duration::from_secs(9)), None);
        assert!(p.is_empty());
    }

    #[test]
    fn out_of_order_results_are_swept() {
        let at = Instant::now();
        let mut p = Pending::default();
        for n in 0..1000 {
            p.insert(id(n), at);
        }
        // The oldest stays; every other resolves, newest first: all stale behind it.
        for n in (1..1000).rev() {
            assert!(p.remove(&id(n)));
            assert!(p.order.len() <= 2 * p.len() + 17, "{}", p.order.len());
        }
        assert_eq!(p.drain(), [id(0)]);
    }

    /// Random inserts (reissued ids, deadlines out of order, ties), removals and expiries
    /// against a plain map: the next deadline, the ids and what expires always agree.
    #[test]
    fn agrees_with_a_plain_map() {
        let start = Instant::now();
        let mut rng = crate::rng::SplitMix64::new(15);
        for _ in 0..200 {
            let mut p = Pending::default();
            let mut model = std::collections::HashMap::new();
            let mut now = 0u64;
            for _ in 0..200 {
                let n = (rng.next_u64() % 24) as u32;
                match rng.next_u64() % 4 {
                    0 | 1 => {
                        let deadline = now + rng.next_u64() % 8;
                        p.insert(id(n), start + Duration::from_secs(deadline));
                        model.insert(id(n), deadline);
                    }
                    2 => assert_eq!(p.remove(&id(n)), model.remove(&id(n)).is_some()),
                    _ => {
                        now += rng.next_u64() % 3;
                        while let Some(gone) = p.pop_expired(start + Duration::from_secs(now)) {
                            let first = model.values().min().copied();
                            assert_eq!(model.remove(&gone), first, "{gone} expired out of turn");
                        }
                        assert!(model.values().all(|&at| at > now));
                    }
                }
                let soonest = model
                    .values()
                    .min()
                    .map(|&s| start + Duration::from_secs(s));
                assert_eq!(p.next_deadline(), soonest);
                assert_eq!(p.len(), model.len());
                assert!(model.keys().all(|k| p.contains(k)));
            }
        }
    }
}

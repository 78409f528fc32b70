//! Buffered deliveries handed to the application and not yet acknowledged, bounded and
//! forgotten oldest first.

use std::collections::{BTreeMap, HashMap};

use crate::wire::BufferId;

#[derive(Debug, Default)]
pub(crate) struct Unacked {
    capacity: usize,
    seq: u64,
    by_id: HashMap<BufferId, u64>,
    by_age: BTreeMap<u64, BufferId>,
}

impl Unacked {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            ..Self::default()
        }
    }

    pub(crate) fn insert(&mut self, id: BufferId) {
        if self.capacity == 0 {
            return;
        }
        self.seq += 1;
        if let Some(old) = self.by_id.insert(id.clone(), self.seq) {
            self.by_age.remove(&old);
        }
        self.by_age.insert(self.seq, id);
        while self.by_id.len() > self.capacity {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            self.by_id.remove(&oldest);
        }
    }

    /// Takes `id` out; `false` when it was not waiting for an ack.
    pub(crate) fn remove(&mut self, id: &BufferId) -> bool {
        match self.by_id.remove(id) {
            Some(seq) => {
                self.by_age.remove(&seq);
                true
            }
            None => false,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }
}

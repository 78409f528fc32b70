//! The connector's durable per-instance buffer: what a store must promise, and an
//! in-memory one. The machines never call a store: an [`Instance`](super::Instance) asks
//! for what it needs through its outputs, and the application answers from its store.

use std::collections::{HashMap, VecDeque};

use crate::wire::{BufferId, MessageEvent, PassthroughForward};

/// One delivery to a gateway: what a connector sends live or buffers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Delivery {
    /// A message event (`inbound`).
    Inbound(Box<MessageEvent>),
    /// A provider webhook (`passthrough_forward`).
    Passthrough(Box<PassthroughForward>),
}

impl From<MessageEvent> for Delivery {
    fn from(event: MessageEvent) -> Self {
        Delivery::Inbound(Box::new(event))
    }
}

impl From<PassthroughForward> for Delivery {
    fn from(forward: PassthroughForward) -> Self {
        Delivery::Passthrough(Box::new(forward))
    }
}

/// A connector's durable buffer of deliveries for one gateway instance, as the
/// application keeps it (a database table, a Redis stream, ...) and answers an
/// [`Instance`](super::Instance) from: append a delivery before handing it over, read the
/// unacked tail for an [`InstanceOutput::Load`](super::InstanceOutput::Load), ack on
/// [`InstanceOutput::Acked`](super::InstanceOutput::Acked).
///
/// What a store must promise: ids are never reused within an instance, restarts included
/// (a gateway remembers the ids it has seen); entries are read in append order; an acked
/// entry is never returned again; an unacked one is returned on every read that reaches
/// it until it is acked. That is what lets a gateway that dies mid-drain get exactly the
/// unacked tail again. An IO-bound store is not called from a driver's loop directly: run
/// it on a blocking pool and hand the answer back as an input.
pub trait DeliveryStore {
    /// Appends a delivery and returns its id (never used before in this instance).
    fn append(&mut self, delivery: Delivery) -> BufferId;
    /// Up to `limit` unacked deliveries in append order, starting after `after` (from the
    /// oldest unacked one when `None`).
    fn unacked_after(&self, after: Option<&BufferId>, limit: usize) -> Vec<(BufferId, Delivery)>;
    /// Marks `id` acknowledged; `false` if it is unknown or was acked already.
    fn ack(&mut self, id: &BufferId) -> bool;
    /// How many deliveries are not yet acknowledged.
    fn unacked_len(&self) -> usize;
}

/// An in-memory [`DeliveryStore`]: for tests, demos, and connectors whose buffer need not
/// survive a restart. Ids are `b-<epoch>-1`, `b-<epoch>-2`, ... where the epoch is random
/// per store ([`new`](Self::new)), so that two stores (a restarted connector's, say) never
/// mint the same id for different deliveries: a gateway remembers ids it has seen. Acked
/// entries at the head are dropped, so memory follows the unacked span.
#[derive(Debug)]
pub struct MemoryStore {
    /// Hex prefix that makes this store's ids its own.
    epoch: String,
    /// Sequence number of the first entry of `entries`.
    base: u64,
    entries: VecDeque<(BufferId, Option<Delivery>)>,
    seq_of: HashMap<BufferId, u64>,
    unacked: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store with a random epoch (from the standard library's per-process
    /// random hashing keys, the crate's only use of operating-system randomness).
    pub fn new() -> Self {
        use std::hash::{BuildHasher, Hasher};
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Self::with_epoch(random & 0xffff_ffff)
    }

    /// An empty store whose ids are `b-<epoch in hex>-<n>`: for tests that need the same
    /// ids on every run.
    pub fn with_epoch(epoch: u64) -> Self {
        Self {
            epoch: format!("{epoch:x}"),
            base: 0,
            entries: VecDeque::new(),
            seq_of: HashMap::new(),
            unacked: 0,
        }
    }

    fn index_of(&self, id: &BufferId) -> Option<usize> {
        let seq = *self.seq_of.get(id)?;
        usize::try_from(seq.checked_sub(self.base)?).ok()
    }
}

impl DeliveryStore for MemoryStore {
    fn append(&mut self, delivery: Delivery) -> BufferId {
        let seq = self.base + self.entries.len() as u64;
        let id = BufferId(format!("b-{}-{}", self.epoch, seq + 1).into());
        self.seq_of.insert(id.clone(), seq);
        self.entries.push_back((id.clone(), Some(delivery)));
        self.unacked += 1;
        id
    }

    fn unacked_after(&self, after: Option<&BufferId>, limit: usize) -> Vec<(BufferId, Delivery)> {
        let start = match after {
            // An id that is gone was acked and dropped from the head: start at the head.
            Some(id) => self.index_of(id).map_or(0, |i| i + 1),
            None => 0,
        };
        self.entries
            .iter()
            .skip(start)
            .filter_map(|(id, d)| d.as_ref().map(|d| (id.clone(), d.clone())))
            .take(limit)
            .collect()
    }

    fn ack(&mut self, id: &BufferId) -> bool {
        let Some(index) = self.index_of(id) else {
            return false;
        };
        let Some((_, slot)) = self.entries.get_mut(index) else {
            return false;
        };
        if slot.take().is_none() {
            return false;
        }
        self.unacked -= 1;
        while let Some((id, None)) = self.entries.front() {
            self.seq_of.remove(id);
            self.entries.pop_front();
            self.base += 1;
        }
        true
    }

    fn unacked_len(&self) -> usize {
        self.unacked
    }
}

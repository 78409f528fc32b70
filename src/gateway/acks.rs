//! Acks (protocol.md §6.4, §6.5): the buffered deliveries handed to the application,
//! remembered so that
//! every one reaches the application once and every ack reaches the connector.
//!
//! The connector redelivers whatever it has no ack for: after a reconnect, or when an ack
//! was still queued as its connection ended. The machine recognises a redelivery by its
//! `bufferId` and a digest of its content (so a connector that reuses an id for another
//! delivery is not swallowed), hands it over no second time, and acks it again by itself
//! if the application had acked it. The reference cannot: its replay dedupe is RAM-only and
//! keyed on `message_id` (§11.2 #22).

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hasher};

use super::digest::{digest, inbound_digest};
use super::*;
use crate::bounded::SmallKey;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Handed over; the application has not acked it.
    Held,
    /// Acked, and the ack was taken by the driver to be written.
    Acked,
    /// Acked, but the ack was never written: the next connection owes it.
    Owed,
}

#[derive(Debug)]
struct Entry {
    digest: u64,
    state: Status,
}

/// What to do with a buffered delivery that arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Arrival {
    /// Never seen (or its id now names other content): hand it over.
    New,
    /// The application holds it already: drop the copy.
    Held,
    /// The application acked it and the connector did not learn it: ack again.
    Acked,
}

#[derive(Debug)]
pub(crate) struct Handed {
    /// Keyed by a copy of the id, inline when short (no allocation).
    entries: Bounded<SmallKey, Entry>,
    /// Entries in [`Status::Held`].
    holding: usize,
    /// Ids whose ack is owed, oldest first; checked against `entries` when taken.
    owed: VecDeque<BufferId>,
}

impl Handed {
    pub(crate) fn new(capacity: usize, hasher: crate::hash::SeededFx) -> Self {
        Self {
            entries: Bounded::new(capacity, hasher),
            holding: 0,
            owed: VecDeque::new(),
        }
    }

    /// Classifies an arriving delivery and remembers it; a new one is held (or acked at
    /// once with `auto_ack`). A re-ack is recorded as written.
    pub(crate) fn arrive(&mut self, id: &BufferId, digest: u64, auto_ack: bool) -> Arrival {
        // One lookup serves the check and the write.
        let probe = self.entries.probe(id.0.as_bytes());
        if let Some(entry) = self.entries.probed_mut(&probe) {
            if entry.digest == digest {
                return match entry.state {
                    Status::Held => Arrival::Held,
                    Status::Acked | Status::Owed => {
                        entry.state = Status::Acked;
                        Arrival::Acked
                    }
                };
            }
        }
        let state = if auto_ack {
            Status::Acked
        } else {
            Status::Held
        };
        let replaced = self
            .entries
            .probed(&probe)
            .is_some_and(|(_, e)| e.state == Status::Held);
        let evicted = self.entries.insert_probed(
            probe,
            SmallKey::new(id.0.as_bytes()),
            Entry { digest, state },
        );
        self.holding += usize::from(state == Status::Held);
        self.holding -= usize::from(replaced);
        if evicted.is_some_and(|(_, e)| e.state == Status::Held) {
            self.holding -= 1;
        }
        Arrival::New
    }

    /// The application acks `id`; `false` unless it holds it.
    pub(crate) fn ack(&mut self, id: &BufferId) -> bool {
        match self.entries.get_mut(id.0.as_bytes()) {
            Some(entry) if entry.state == Status::Held => {
                entry.state = Status::Acked;
                self.holding -= 1;
                true
            }
            Some(_) | None => false,
        }
    }

    /// The ack of `id` was acked by the application but never written (no connection, or
    /// its connection ended first): owe it to the next connection.
    pub(crate) fn owe(&mut self, id: BufferId) {
        if let Some(entry) = self.entries.get_mut(id.0.as_bytes()) {
            if entry.state == Status::Acked {
                entry.state = Status::Owed;
                if self.owed.len() >= self.entries.capacity() {
                    self.owed.pop_front();
                }
                // A copy: a long id may be a slice of the message it came in, which
                // state must not pin.
                self.owed.push_back(BufferId::from(id.as_str()));
            }
        }
    }

    /// Every ack still owed, oldest first; each is counted as written from now on.
    pub(crate) fn take_owed(&mut self) -> Vec<BufferId> {
        let mut due = Vec::new();
        for id in std::mem::take(&mut self.owed) {
            if let Some(entry) = self.entries.get_mut(id.0.as_bytes()) {
                if entry.state == Status::Owed {
                    entry.state = Status::Acked;
                    due.push(id);
                }
            }
        }
        due
    }

    /// Deliveries the application holds and has not acked.
    pub(crate) fn holding(&self) -> usize {
        self.holding
    }
}

/// [`digest`] for a forward: its fields hashed as they are, each with its length (so no
/// two fields can trade bytes), the body as its bytes. A forward is mostly its body, which
/// the JSON form would re-encode to base64 (a 16 MiB webhook took longer to digest than to
/// decode); its strings are hashed as bytes, with no UTF-8 re-check.
pub(crate) fn forward_digest(forward: &crate::wire::PassthroughForward) -> u64 {
    fn field(hasher: &mut crate::hash::FxHasher, bytes: &[u8]) {
        // `write` mixes the length into its first round: no round of its own.
        hasher.write(bytes);
    }
    let mut hasher = crate::hash::SeededFx::default().build_hasher();
    for text in [
        &forward.platform,
        &forward.bot_id,
        &forward.method,
        &forward.path,
    ] {
        field(&mut hasher, text.as_bytes());
    }
    hasher.write_usize(forward.headers.len());
    for (name, value) in &forward.headers {
        field(&mut hasher, name.as_bytes());
        field(&mut hasher, value.as_bytes());
    }
    match &forward.body {
        Ok(bytes) => {
            hasher.write_u8(0);
            field(&mut hasher, bytes);
        }
        Err(error) => {
            hasher.write_u8(1);
            field(&mut hasher, error.encoded.as_bytes());
        }
    }
    match &forward.profile {
        Some(profile) => {
            hasher.write_u8(1);
            field(&mut hasher, profile.as_bytes());
        }
        None => hasher.write_u8(0),
    }
    hasher.finish()
}

impl RelayMachine {
    /// Buffered deliveries handed to the application and not yet acknowledged, whichever
    /// connection brought them.
    pub fn unacked(&self) -> usize {
        self.handed.holding()
    }

    /// Acknowledges a buffered delivery: the application now owns it durably and the
    /// connector may advance past it. Any delivery handed over and not yet acked can be
    /// acked, whichever connection brought it: the ack is written on the current
    /// connection, or owed to the next one (written once its handshake completes).
    pub fn ack_inbound(&mut self, _now: Instant, buffer_id: &BufferId) -> Result<(), AckError> {
        self.flush_input();
        if matches!(self.state, State::Closed | State::Revoked) {
            return Err(AckError::Closed);
        }
        if !self.handed.ack(buffer_id) {
            return Err(AckError::Unknown(buffer_id.clone()));
        }
        self.write_ack(buffer_id.clone());
        Ok(())
    }

    /// An `inbound`: to the application once (with its chat's route recorded).
    pub(super) fn on_inbound(&mut self, inbound: Inbound) {
        let Inbound { event, buffer_id } = inbound;
        if self.admit(buffer_id.as_ref(), || inbound_digest(&event)) {
            self.record_route(&event.source);
            self.event(GatewayEvent::Inbound { event, buffer_id });
        }
    }

    /// A `passthrough_forward`: to the application once.
    pub(super) fn on_passthrough(&mut self, frame: PassthroughFrame) {
        let PassthroughFrame { forward, buffer_id } = frame;
        if self.admit(buffer_id.as_ref(), || forward_digest(&forward)) {
            self.event(GatewayEvent::Passthrough { forward, buffer_id });
        }
    }

    /// A buffered delivery whose body did not decode: handed over like any delivery (never
    /// suppressed by the diagnostics budget), so it is acked and not redelivered forever.
    pub(super) fn on_undeliverable(&mut self, buffer_id: BufferId, error: Box<DecodeError>) {
        // Keyed on what made it undecodable: a redelivery of the same poison line is
        // recognised, a good delivery that reuses the id is not swallowed.
        let digest = digest(&(error.kind.as_str(), &error.message));
        if self.admit(Some(&buffer_id), || digest) {
            self.event(GatewayEvent::Undeliverable { buffer_id, error });
        }
    }

    /// Whether a delivery goes to the application: a live one always; a buffered one once
    /// (a redelivery is dropped, and acked again if the application had acked it). Auto-ack
    /// writes the ack of a new one here.
    pub(super) fn admit(
        &mut self,
        buffer_id: Option<&BufferId>,
        digest: impl FnOnce() -> u64,
    ) -> bool {
        let Some(id) = buffer_id else {
            return true;
        };
        match self.handed.arrive(id, digest(), self.config.auto_ack) {
            Arrival::New => {
                if self.config.auto_ack {
                    self.write_ack(id.clone());
                }
                true
            }
            Arrival::Held => false,
            Arrival::Acked => {
                self.write_ack(id.clone());
                false
            }
        }
    }

    /// Writes the ack of `id` on the current connection, or owes it to the next one.
    pub(super) fn write_ack(&mut self, id: BufferId) {
        match self.connection.as_ref() {
            Some(connection) => {
                let generation = connection.generation;
                crate::trace::debug!(generation, buffer_id = %id, "ack written");
                // Written from the id, which then moves on into the queue's accounting.
                let line = crate::transmit::Transmit::inbound_ack(&id);
                self.core
                    .outputs
                    .transmit_line(generation, line, Carries::Ack(id));
            }
            None => {
                crate::trace::debug!(buffer_id = %id, "ack owed to the next connection");
                self.handed.owe(id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes moved from one field to the next, or between a header's name and value, make
    /// another forward: each field's length goes in with it.
    #[test]
    fn forward_digests_keep_field_boundaries() {
        use crate::wire::{PassthroughForward, Str};
        let forward = |platform: &str, bot: &str, name: &str, value: &str| PassthroughForward {
            platform: Str::from(platform),
            bot_id: Str::from(bot),
            method: Str::from("POST"),
            path: Str::from("/hook"),
            headers: vec![(Str::from(name), Str::from(value))],
            body: Ok(bytes::Bytes::from_static(b"{}")),
            profile: None,
        };
        let base = forward_digest(&forward("ab", "c", "x", "yz"));
        assert_eq!(base, forward_digest(&forward("ab", "c", "x", "yz")));
        assert_ne!(base, forward_digest(&forward("a", "bc", "x", "yz")));
        assert_ne!(base, forward_digest(&forward("ab", "c", "xy", "z")));
        let mut with_profile = forward("ab", "c", "x", "yz");
        with_profile.profile = Some(Str::from(""));
        assert_ne!(base, forward_digest(&with_profile));
    }

    #[test]
    fn redeliveries_are_recognised_by_id_and_content() {
        let mut handed = Handed::new(2, crate::hash::SeededFx::default());
        let b1 = BufferId::from("b-1");
        assert_eq!(handed.arrive(&b1, 7, false), Arrival::New);
        assert_eq!(handed.arrive(&b1, 7, false), Arrival::Held);
        assert_eq!(handed.holding(), 1);
        assert!(handed.ack(&b1));
        assert!(!handed.ack(&b1));
        assert_eq!(handed.holding(), 0);
        assert_eq!(handed.arrive(&b1, 7, false), Arrival::Acked);
        // The same id with other content is another delivery.
        assert_eq!(handed.arrive(&b1, 8, false), Arrival::New);
        assert_eq!(handed.holding(), 1);
        handed.owe(b1.clone()); // held, not acked: nothing owed
        assert!(handed.take_owed().is_empty());
        assert!(handed.ack(&b1));
        handed.owe(b1.clone());
        assert_eq!(handed.take_owed(), vec![b1.clone()]);
        assert!(handed.take_owed().is_empty());
        // Eviction of a held entry keeps the count true.
        let (b2, b3) = (BufferId::from("b-2"), BufferId::from("b-3"));
        handed.arrive(&b2, 1, false);
        handed.arrive(&b3, 1, false);
        assert_eq!(handed.holding(), 2);
        handed.arrive(&BufferId::from("b-4"), 1, false);
        assert_eq!(handed.holding(), 2);
        assert!(!handed.ack(&b2));
    }
}

//! One gateway instance on the connector across overlapping connections: a half-open
//! socket while the next one arrives, two honest connections racing, stale store answers.
//! In every case nothing buffered is lost and nothing acked comes back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use relay_machine::connector::{
    ConnId, ConnectorCommand, ConnectorConfig, ConnectorEvent, Delivery, DeliveryStore, Instance,
    InstanceOutput, MemoryStore,
};
use relay_machine::wire::close;
use relay_machine::wire::{BufferId, CapabilityDescriptor, MessageEvent};
use serde_json::Value;

/// An instance and the application around it: a store it answers loads from and acks
/// into, and what each socket was sent.
struct Connector {
    now: Instant,
    instance: Instance,
    store: MemoryStore,
    /// Buffered deliveries written per connection, in order.
    sent: BTreeMap<ConnId, Vec<BufferId>>,
    /// Closes asked for per connection.
    closes: BTreeMap<ConnId, (u16, String)>,
    /// Loads not answered yet (the test answers them when it likes).
    loads: Vec<InstanceOutput>,
    /// Answer loads at once.
    eager: bool,
    acked: BTreeSet<BufferId>,
}

impl Connector {
    fn new(window: usize) -> Self {
        let config = ConnectorConfig {
            replay_window: window,
            ..ConnectorConfig::default()
        };
        Self {
            now: Instant::now(),
            instance: Instance::new(config),
            store: MemoryStore::with_epoch(0),
            sent: BTreeMap::new(),
            closes: BTreeMap::new(),
            loads: Vec::new(),
            eager: true,
            acked: BTreeSet::new(),
        }
    }

    /// A gateway connects, says hello and gets its descriptor.
    fn handshake(&mut self) -> ConnId {
        let conn = self.instance.accept(self.now);
        self.input(
            conn,
            "{\"type\":\"hello\",\"platform\":\"discord\",\"botId\":\"1\"}",
        );
        self.instance
            .send_descriptor(self.now, conn, CapabilityDescriptor::new("discord", "D"))
            .unwrap();
        self.pump();
        conn
    }

    fn input(&mut self, conn: ConnId, line: &str) {
        self.instance
            .handle_input(self.now, conn, format!("{line}\n").as_bytes());
        self.pump();
    }

    fn ack(&mut self, conn: ConnId, id: &BufferId) {
        self.input(
            conn,
            &format!("{{\"type\":\"inbound_ack\",\"bufferId\":\"{id}\"}}"),
        );
    }

    /// Persists `n` deliveries and hands each to the instance.
    fn buffer(&mut self, n: usize) -> Vec<BufferId> {
        (0..n)
            .map(|i| {
                let delivery = Delivery::from(MessageEvent {
                    text: format!("m{i}").into(),
                    ..Default::default()
                });
                let id = self.store.append(delivery.clone());
                self.instance.push_buffered(self.now, id.clone(), delivery);
                self.pump();
                id
            })
            .collect()
    }

    fn answer_loads(&mut self) {
        for load in std::mem::take(&mut self.loads) {
            let InstanceOutput::Load {
                token,
                after,
                limit,
            } = load
            else {
                unreachable!()
            };
            let deliveries = self.store.unacked_after(after.as_ref(), limit);
            self.instance.offer(self.now, token, deliveries);
        }
        self.pump();
    }

    fn pump(&mut self) {
        while let Some(output) = self.instance.poll_output() {
            match output {
                InstanceOutput::Transmit(conn, line) => {
                    let frame: Value = serde_json::from_str(line.as_str()).unwrap();
                    if let Some(id) = frame["bufferId"].as_str() {
                        let id = BufferId::from(id);
                        assert!(!self.acked.contains(&id), "acked {id} sent again");
                        let sent = self.sent.entry(conn).or_default();
                        assert!(!sent.contains(&id), "{id} sent twice on {conn}");
                        sent.push(id);
                    }
                }
                InstanceOutput::Command(conn, ConnectorCommand::Close { code, reason }) => {
                    assert!(self.closes.insert(conn, (code, reason)).is_none());
                }
                load @ InstanceOutput::Load { .. } => {
                    self.loads.push(load);
                    if self.eager {
                        self.answer_loads();
                    }
                }
                InstanceOutput::Acked(id) => {
                    if self.store.ack(&id) {
                        self.acked.insert(id);
                    }
                }
                InstanceOutput::Event(_, ConnectorEvent::Hello { .. }) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    fn sent(&self, conn: ConnId) -> Vec<BufferId> {
        self.sent.get(&conn).cloned().unwrap_or_default()
    }
}

#[test]
fn a_half_open_connection_is_superseded_and_its_window_replayed() {
    let mut c = Connector::new(4);
    let a = c.handshake();
    let ids = c.buffer(10);
    // The window: four out, ack-gated.
    assert_eq!(c.sent(a), ids[..4]);
    c.ack(a, &ids[0]);
    c.ack(a, &ids[1]);
    assert_eq!(c.sent(a), ids[..6]);
    // A's socket goes silent (half-open: no close reported); the gateway reconnects.
    let b = c.handshake();
    assert_eq!(
        c.closes.get(&a),
        Some(&(close::SUPERSEDED, close::REASON_SUPERSEDED.to_owned())),
        "the old socket is closed as superseded, never 4401"
    );
    // B gets the unacked tail from the oldest: A's window went back to the tail.
    assert_eq!(c.sent(b), ids[2..6]);
    // A late ack on the old socket still counts.
    c.ack(a, &ids[2]);
    assert_eq!(c.sent(b), ids[2..7]);
    for id in &ids[3..] {
        c.ack(b, id);
    }
    assert_eq!(c.sent(b), ids[2..]);
    assert_eq!(c.store.unacked_len(), 0, "nothing lost");
    assert_eq!(c.acked.len(), 10);
    // The old socket finally ends: nothing changes.
    c.instance.on_closed(c.now, a, None, "socket ended");
    c.pump();
    assert_eq!(c.instance.current(), Some(b));
    assert_eq!(c.instance.connections(), 1);
}

#[test]
fn two_honest_connections_racing_lose_nothing_and_repeat_nothing_acked() {
    let mut c = Connector::new(3);
    let ids = c.buffer(9);
    let a = c.handshake();
    let b = c.handshake(); // B arrives before A's first ack
    assert_eq!(c.sent(a), ids[..3]);
    assert_eq!(c.sent(b), ids[..3]);
    // Both gateways ack what they got, interleaved.
    c.ack(a, &ids[0]);
    c.ack(b, &ids[0]);
    c.ack(b, &ids[1]);
    c.ack(a, &ids[1]);
    c.ack(a, &ids[2]);
    // Only the current connection (B) receives further deliveries.
    assert_eq!(c.sent(a), ids[..3]);
    assert_eq!(c.sent(b), ids[..6]);
    // A reconnects and supersedes B in turn: it replays from the oldest unacked.
    let a2 = c.handshake();
    assert_eq!(c.closes.get(&b).map(|c| c.0), Some(close::SUPERSEDED));
    assert_eq!(c.sent(a2), ids[3..6]);
    for id in ids[3..].iter() {
        c.ack(a2, id);
    }
    assert_eq!(c.store.unacked_len(), 0);
    assert_eq!(c.acked.len(), 9);
}

#[test]
fn a_stale_load_answer_is_ignored() {
    let mut c = Connector::new(2);
    c.eager = false;
    let ids = c.buffer(3);
    let a = c.handshake();
    assert_eq!(c.loads.len(), 1, "the handshake asks for the backlog");
    let stale = c.loads.clone();
    // Superseded before the store answered: that answer must not be written on A or B.
    let b = c.handshake();
    let InstanceOutput::Load {
        token,
        after,
        limit,
    } = stale[0].clone()
    else {
        unreachable!()
    };
    let deliveries = c.store.unacked_after(after.as_ref(), limit);
    assert!(!c.instance.offer(c.now, token, deliveries));
    c.pump();
    assert!(c.sent(a).is_empty() && c.sent(b).is_empty());
    // B's own load brings the backlog.
    c.loads.retain(|l| *l != stale[0]);
    c.answer_loads();
    assert_eq!(c.sent(b), ids[..2]);
}

#[test]
fn a_connection_that_ends_returns_its_window_to_the_tail() {
    let mut c = Connector::new(2);
    let a = c.handshake();
    let ids = c.buffer(3);
    assert_eq!(c.sent(a), ids[..2]);
    c.instance.on_closed(c.now, a, None, "socket ended");
    c.pump();
    assert_eq!(c.instance.current(), None);
    // New deliveries wait in the store with no connection.
    let more = c.buffer(1);
    let b = c.handshake();
    assert_eq!(c.sent(b), ids[..2]);
    for id in ids.iter().chain(&more) {
        c.ack(b, id);
    }
    assert_eq!(c.sent(b), [ids.clone(), more].concat());
    assert_eq!(c.store.unacked_len(), 0);
}

#[test]
fn memory_store_ids_are_never_reused_across_stores() {
    let mut one = MemoryStore::new();
    let mut two = MemoryStore::new();
    let delivery = Delivery::from(MessageEvent::default());
    let a = one.append(delivery.clone());
    let b = two.append(delivery);
    assert_ne!(
        a, b,
        "two stores (a restarted connector's) minted the same id"
    );
}

/// A store on its own thread answers a load from what it held when it read: a delivery
/// pushed while that load was out is not in the answer, and still goes out.
#[test]
fn a_delivery_pushed_while_a_load_is_out_is_not_lost() {
    let mut c = Connector::new(4);
    c.eager = false;
    let a = c.handshake();
    let [load] = std::mem::take(&mut c.loads).try_into().unwrap();
    let InstanceOutput::Load {
        token,
        after,
        limit,
    } = load
    else {
        unreachable!()
    };
    // The store reads (nothing yet), then the append lands, then the answer arrives.
    let read = c.store.unacked_after(after.as_ref(), limit);
    let ids = c.buffer(1);
    assert!(c.instance.offer(c.now, token, read));
    c.eager = true;
    c.pump();
    c.answer_loads();
    assert_eq!(c.sent(a), ids);
}

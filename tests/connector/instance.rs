//! One gateway instance on the connector (src/connector/instance) across overlapping
//! connections: a half-open socket while the next one arrives, two honest connections
//! racing, stale store answers. In every case nothing buffered is lost and nothing acked
//! comes back (the harness's invariants check both after every step).

use std::collections::BTreeSet;

use relay_machine::connector::{
    ConnectorCommand, Delivery, DeliveryStore, InstanceOutput, MemoryStore,
};
use relay_machine::testing::SoloInstance;
use relay_machine::wire::{MessageEvent, close};

/// The close asked for on `conn`, if any.
fn close_of(c: &SoloInstance, conn: relay_machine::connector::ConnId) -> Option<(u16, String)> {
    c.commands(conn)
        .into_iter()
        .find_map(|command| match command {
            ConnectorCommand::Close { code, reason } => Some((code, reason)),
            _ => None,
        })
}

#[test]
fn a_half_open_connection_is_superseded_and_its_window_replayed() {
    let mut c = SoloInstance::with_window(4);
    let a = c.handshake().unwrap();
    let ids = c.buffer(10);
    // The window: four out, ack-gated.
    assert_eq!(c.sent(a), ids[..4]);
    c.ack(a, &ids[0]);
    c.ack(a, &ids[1]);
    assert_eq!(c.sent(a), ids[..6]);
    // A's socket goes silent (half-open: no close reported); the gateway reconnects.
    let b = c.handshake().unwrap();
    assert_eq!(
        close_of(&c, a),
        Some((close::SUPERSEDED, close::REASON_SUPERSEDED.to_owned())),
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
    assert_eq!(c.acked().len(), 10);
    // The old socket finally ends: nothing changes.
    c.closed(a, "socket ended");
    assert_eq!(c.instance.current(), Some(b));
    assert_eq!(c.instance.connections(), 1);
}

#[test]
fn two_honest_connections_racing_lose_nothing_and_repeat_nothing_acked() {
    let mut c = SoloInstance::with_window(3);
    let ids = c.buffer(9);
    let a = c.handshake().unwrap();
    let b = c.handshake().unwrap(); // B arrives before A's first ack
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
    let a2 = c.handshake().unwrap();
    assert_eq!(close_of(&c, b).map(|c| c.0), Some(close::SUPERSEDED));
    assert_eq!(c.sent(a2), ids[3..6]);
    for id in ids[3..].iter() {
        c.ack(a2, id);
    }
    assert_eq!(c.store.unacked_len(), 0);
    // Both gateways acked the first three: each counts once in the store.
    let distinct: BTreeSet<_> = c.acked().into_iter().collect();
    assert_eq!(distinct.len(), 9);
}

#[test]
fn a_stale_load_answer_is_ignored() {
    let mut c = SoloInstance::with_window(2);
    c.eager_loads = false;
    let ids = c.buffer(3);
    let a = c.handshake().unwrap();
    assert_eq!(c.loads.len(), 1, "the handshake asks for the backlog");
    let stale = c.loads.clone();
    // Superseded before the store answered: that answer must not be written on A or B.
    let b = c.handshake().unwrap();
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
    let mut c = SoloInstance::with_window(2);
    let a = c.handshake().unwrap();
    let ids = c.buffer(3);
    assert_eq!(c.sent(a), ids[..2]);
    c.closed(a, "socket ended");
    assert_eq!(c.instance.current(), None);
    // New deliveries wait in the store with no connection.
    let more = c.buffer(1);
    let b = c.handshake().unwrap();
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
    let mut c = SoloInstance::with_window(4);
    c.eager_loads = false;
    let a = c.handshake().unwrap();
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
    c.eager_loads = true;
    c.pump();
    c.answer_loads();
    assert_eq!(c.sent(a), ids);
}

//! The `connector_ops` target: arbitrary sequences of gateway frames, application commands,
//! overlapping connections and store answers on one [`Instance`] over a [`MemoryStore`],
//! checked by the test harness's one checker ([`Invariants`]) and this target's model.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use arbitrary::{Arbitrary, Unstructured};

mod frames;

use frames::GwFrame;

use super::{decode_all, transmitted_frame};
use crate::codec::Salvage;
use crate::connector::{
    ConnId, ConnectorConfig, ConnectorDiagnostic, ConnectorEvent, Delivery, DeliveryStore,
    Instance, InstanceOutput, Live, LoadToken, MemoryStore,
};
use crate::testing::{Invariants, SoloInstance};
use crate::wire::{
    ActionResult, BufferId, CapabilityDescriptor, Frame, MessageEvent, PassthroughForward,
    RequestId,
};

const PLATFORMS: [&str; 3] = ["discord", "telegram", "slack"];
const BOTS: [&str; 3] = ["", "1", "2"];

/// Longest op sequence run; keeps one input fast.
const MAX_OPS: usize = 256;

#[derive(Debug, Arbitrary)]
struct Setup {
    max_frame_len: u16,
    max_identities: u8,
    replay_window: u8,
    max_open_requests: u8,
}

impl Setup {
    fn config(&self) -> ConnectorConfig {
        ConnectorConfig {
            max_frame_len: usize::from(self.max_frame_len % 2048) + 1,
            max_identities: usize::from(self.max_identities % 4),
            replay_window: usize::from(self.replay_window % 6),
            max_open_requests: usize::from(self.max_open_requests % 6),
            // The connector ops run on one instant; its timers are the gateway target's
            // business and the scenario tests'.
            hello_timeout: None,
            ping_interval: None,
            liveness_timeout: None,
        }
    }
}

/// A request id: one of a few shared ones (duplicates), or a fresh one.
#[derive(Debug, Arbitrary)]
enum Op {
    /// A new authenticated connection: it supersedes the current one.
    Accept,
    /// Frames from the gateway on a connection, written as one stream and cut at the
    /// offset.
    Gateway(u8, Vec<GwFrame>, u16),
    Raw(u8, Vec<u8>),
    Descriptor(u8, u8),
    /// Answer an open request (by index) of a connection, or a made-up one.
    Respond(u8, u8),
    Push {
        buffered: bool,
        passthrough: bool,
    },
    Interrupt,
    Close(u8),
    SocketClosed(u8),
    /// Answer the oldest load asked for (possibly stale by now), from the store as it is.
    AnswerLoad,
}

/// What one connection was asked and answered.
#[derive(Default)]
struct ConnectionModel {
    /// `outbound` frames (decodable or not) fed per id while the machine was open.
    fed: BTreeMap<RequestId, u32>,
    /// `outbound_result` frames written per id.
    answered: BTreeMap<RequestId, u32>,
    /// Requests handed to the application and not yet responded to.
    open: Vec<RequestId>,
    /// Buffered deliveries written on this connection, in order.
    sent: Vec<BufferId>,
    /// A descriptor was sent on it.
    handshaken: bool,
    /// Closed by the application (`Close`): its machine refuses further writes.
    closed: bool,
}

struct Model {
    config: ConnectorConfig,
    now: Instant,
    fresh: u64,
    instance: Instance,
    store: MemoryStore,
    connections: BTreeMap<ConnId, ConnectionModel>,
    /// Loads asked for and not yet answered, oldest first.
    loads: Vec<(LoadToken, Option<BufferId>, usize)>,
    /// Every buffer id the store handed out, and every one it confirmed acked.
    appended: BTreeSet<BufferId>,
    acked: BTreeSet<BufferId>,
    /// Every buffered delivery written on any connection, for acks by index.
    delivered: Vec<BufferId>,
    check: Invariants,
}

/// Operation sequences on an [`Instance`] over a [`MemoryStore`] that the harness plays as
/// the application's store.
///
/// Input: limits (small), then up to 256 operations: new connections (each superseding
/// the last), gateway frames on any open connection (hellos, outbounds with shared and
/// fresh ids, invalid outbounds, acks, interrupts, `going_idle`, unexpected frames,
/// garbage) cut anywhere, every application command, socket ends, and answers to the
/// instance's loads, in order but at any later point (so some are stale).
///
/// Invariants, after every operation: every connector promise of [`Invariants`] (an
/// acked delivery is never written again, none twice on one connection, nothing after a
/// connection's close, an `outbound` handed out once while open, nothing unacked lost from
/// the store), and this target's model besides:
/// - per connection, never more `outbound_result`s for an id than `outbound`s given for
///   it; `respond` succeeds exactly for open requests of a connection not closed;
/// - those written on the current connection and not acked never exceed `replay_window`;
///   every delivery written was appended;
/// - the store's unacked count is what was appended minus what was acked;
/// - every connection's `open_requests() <= max_open_requests`,
///   `identities().len() <= max_identities`, `buffered_len() <= max_frame_len`; every
///   transmit is one well-formed frame.
///
/// At the end a fresh connection that acks everything it is sent drains the store: every
/// unacked delivery arrives exactly once, in append order.
pub fn connector_ops(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else {
        return;
    };
    let config = setup.config();
    let mut model = Model {
        instance: Instance::new(config.clone()),
        config,
        // The virtual clock's origin; the connector reads no deadlines, only passes it on.
        now: Instant::now(),
        fresh: 0,
        store: MemoryStore::with_epoch(0),
        connections: BTreeMap::new(),
        loads: Vec::new(),
        appended: BTreeSet::new(),
        acked: BTreeSet::new(),
        delivered: Vec::new(),
        check: Invariants::new(),
    };
    for _ in 0..MAX_OPS {
        let Ok(op) = Op::arbitrary(&mut u) else {
            break;
        };
        model.apply(op);
    }
    model.drain_store();
}

impl Model {
    /// The open connection named by `which`, if any is open.
    fn pick(&self, which: u8) -> Option<ConnId> {
        let n = self.connections.len();
        (n > 0)
            .then(|| self.connections.keys().nth(usize::from(which) % n).copied())
            .flatten()
    }

    fn apply(&mut self, op: Op) {
        let now = self.now;
        match op {
            Op::Accept => {
                // A handful of sockets at once is plenty (and keeps every check cheap): the
                // oldest one ends first.
                if self.connections.len() >= 8 {
                    if let Some(oldest) = self.connections.keys().next().copied() {
                        self.instance.on_closed(now, oldest, None, "socket ended");
                        self.check.connection_ended(Some(oldest));
                        self.connections.remove(&oldest);
                    }
                }
                if let Some(old) = self.instance.current() {
                    // Superseded: closed with 4409, its machine refuses further writes.
                    self.connections.entry(old).or_default().closed = true;
                }
                let conn = self.instance.accept(now);
                self.connections.insert(conn, ConnectionModel::default());
            }
            Op::Gateway(which, frames, cut) => {
                let Some(conn) = self.pick(which) else { return };
                let mut stream = Vec::new();
                for frame in frames.into_iter().take(16) {
                    self.write_gateway_frame(frame, &mut stream);
                }
                self.count_outbounds(conn, &stream);
                let at = usize::from(cut).min(stream.len());
                let (head, tail) = stream.split_at(at);
                self.instance.handle_input(now, conn, head);
                self.drain();
                self.instance.handle_input(now, conn, tail);
            }
            Op::Raw(which, mut bytes) => {
                let Some(conn) = self.pick(which) else { return };
                // Whole lines only, so every op starts the machine's decoder on a fresh line.
                bytes.retain(|&b| b != b'\n');
                bytes.push(b'\n');
                self.count_outbounds(conn, &bytes);
                self.instance.handle_input(now, conn, &bytes);
            }
            Op::Descriptor(which, p) => {
                let Some(conn) = self.pick(which) else { return };
                let platform = PLATFORMS[usize::from(p) % PLATFORMS.len()];
                let announced = self
                    .instance
                    .connection(conn)
                    .is_some_and(|m| m.identities().iter().any(|i| i.platform == platform));
                let result = self.instance.send_descriptor(
                    now,
                    conn,
                    CapabilityDescriptor::new(platform, platform),
                );
                let model = self.connections.entry(conn).or_default();
                assert_eq!(
                    result.is_ok(),
                    announced && !model.closed,
                    "send_descriptor: {result:?}"
                );
                model.handshaken |= result.is_ok();
            }
            Op::Respond(which, request) => {
                let Some(conn) = self.pick(which) else { return };
                let model = self.connections.entry(conn).or_default();
                let index = usize::from(request);
                let (id, open) = match model.open.get(index) {
                    Some(id) => (id.clone(), true),
                    None => (RequestId::from(format!("unknown-{request}")), false),
                };
                let closed = model.closed;
                let result = self.instance.respond(now, conn, &id, ActionResult::ok());
                assert_eq!(result.is_ok(), open && !closed, "respond({id}): {result:?}");
                if result.is_ok() {
                    self.connections.entry(conn).or_default().open.remove(index);
                }
            }
            Op::Push {
                buffered,
                passthrough,
            } => {
                let delivery = if passthrough {
                    Delivery::from(PassthroughForward::new("discord", "{}"))
                } else {
                    Delivery::from(MessageEvent {
                        text: "hi".into(),
                        ..Default::default()
                    })
                };
                let delivery = if buffered {
                    Some(delivery)
                } else {
                    match self.instance.push_live(now, delivery) {
                        Live::Sent => None,
                        Live::Buffer(delivery) => Some(delivery),
                    }
                };
                if let Some(delivery) = delivery {
                    let id = self.store.append(delivery.clone());
                    self.check.pushed(&id);
                    self.appended.insert(id.clone());
                    self.instance.push_buffered(now, id, delivery);
                }
            }
            Op::Interrupt => {
                let result = self.instance.send_interrupt(now, "s", "c");
                let current = self.instance.current();
                let open = current
                    .and_then(|c| self.connections.get(&c))
                    .is_some_and(|m| !m.closed);
                assert_eq!(result.is_ok(), open, "send_interrupt: {result:?}");
            }
            Op::Close(which) => {
                let Some(conn) = self.pick(which) else { return };
                self.instance.close(now, conn, 1000, "bye");
                self.connections.entry(conn).or_default().closed = true;
            }
            Op::SocketClosed(which) => {
                let Some(conn) = self.pick(which) else { return };
                self.instance.on_closed(now, conn, None, "socket ended");
                self.check.connection_ended(Some(conn));
                self.connections.remove(&conn);
            }
            Op::AnswerLoad => {
                if !self.loads.is_empty() {
                    let (token, after, limit) = self.loads.remove(0);
                    let deliveries = self.store.unacked_after(after.as_ref(), limit);
                    self.instance.offer(now, token, deliveries);
                }
            }
        }
        self.drain();
    }

    /// Counts the requests `stream` (whole lines) gives connection `conn`, as the codec
    /// reads them: each `outbound`, and each undecodable one that still names its
    /// `requestId`. A line over the limit names nothing: its bytes are never looked at.
    fn count_outbounds(&mut self, conn: ConnId, stream: &[u8]) {
        let model = self.connections.entry(conn).or_default();
        if model.closed {
            return;
        }
        for item in decode_all(stream, self.config.max_frame_len) {
            let id = match item {
                Ok(Frame::Outbound(outbound)) => Some(outbound.request_id),
                Err(e) => match e.salvage {
                    Some(Salvage::Outbound(id)) => Some(id),
                    _ => None,
                },
                _ => None,
            };
            if let Some(id) = id {
                *model.fed.entry(id).or_default() += 1;
            }
        }
    }

    /// Takes every output, checking each, as a driver and its application would.
    fn drain(&mut self) {
        while let Some(output) = self.instance.poll_output() {
            self.check.instance_output(&output);
            match output {
                InstanceOutput::Transmit(conn, line) => {
                    let frame = transmitted_frame(line.as_bytes());
                    self.on_transmit(conn, frame);
                }
                InstanceOutput::Command(..) => {}
                InstanceOutput::Event(conn, event) => self.on_event(conn, event),
                InstanceOutput::Load {
                    token,
                    after,
                    limit,
                } => {
                    assert!(limit > 0 && limit <= self.config.replay_window);
                    self.loads.push((token, after, limit));
                }
                InstanceOutput::Acked(id) => {
                    // The gateway's word: the store says whether it was a real, first ack.
                    if self.store.ack(&id) {
                        assert!(self.appended.contains(&id), "acked {id}, never appended");
                        assert!(self.acked.insert(id.clone()), "{id} acked twice");
                    }
                }
                InstanceOutput::WakeNeeded => assert!(self.instance.is_idle()),
            }
        }
        self.check();
    }

    fn on_transmit(&mut self, conn: ConnId, frame: Frame) {
        let model = self.connections.entry(conn).or_default();
        match frame {
            Frame::OutboundResult(result) => {
                let id = result.request_id;
                let answered = model.answered.entry(id.clone()).or_default();
                *answered += 1;
                let fed = model.fed.get(&id).copied().unwrap_or(0);
                assert!(
                    *answered <= fed,
                    "{answered} results for {id}, asked {fed} times"
                );
            }
            Frame::Inbound(inbound) => self.on_delivery(conn, inbound.buffer_id),
            Frame::PassthroughForward(p) => self.on_delivery(conn, p.buffer_id),
            _ => {}
        }
    }

    fn on_event(&mut self, conn: ConnId, event: ConnectorEvent) {
        let model = self.connections.entry(conn).or_default();
        match event {
            ConnectorEvent::Outbound { request, .. } => model.open.push(request.request_id),
            ConnectorEvent::Diagnostic(ConnectorDiagnostic::TooManyRequests(_)) => {
                assert!(model.open.len() >= self.config.max_open_requests);
            }
            _ => {}
        }
    }

    fn on_delivery(&mut self, conn: ConnId, id: Option<BufferId>) {
        let Some(id) = id else { return };
        assert!(self.appended.contains(&id), "{id} was never appended");
        let model = self.connections.entry(conn).or_default();
        model.sent.push(id.clone());
        self.delivered.push(id);
    }

    fn check(&self) {
        self.check.unacked_kept(&self.store);
        if let Some(current) = self.instance.current() {
            let sent = self.connections.get(&current).map(|m| m.sent.as_slice());
            let outstanding = sent
                .unwrap_or_default()
                .iter()
                .filter(|id| !self.acked.contains(*id));
            assert!(
                outstanding.count() <= self.config.replay_window,
                "more deliveries outstanding than the replay window"
            );
        }
        assert!(self.instance.in_window() <= self.config.replay_window);
        assert_eq!(
            self.store.unacked_len(),
            self.appended.len() - self.acked.len(),
            "store's unacked count"
        );
        for (conn, model) in &self.connections {
            let Some(machine) = self.instance.connection(*conn) else {
                panic!("{conn} is open in the model, not in the instance");
            };
            assert_eq!(machine.in_flight(), model.open.len(), "open requests");
            assert!(machine.in_flight() <= self.config.max_open_requests);
            assert!(machine.identities().len() <= self.config.max_identities);
            assert!(machine.buffered_len() <= self.config.max_frame_len);
        }
        assert_eq!(self.instance.connections(), self.connections.len());
    }

    /// Ends every connection; then a last one that acks everything it is sent must drain
    /// the store, each unacked delivery exactly once and in append order.
    fn drain_store(mut self) {
        for conn in self.connections.keys().copied().collect::<Vec<_>>() {
            self.instance
                .on_closed(self.now, conn, None, "socket ended");
        }
        self.connections.clear();
        self.drain();
        self.loads.clear();
        // A healthy gateway: default limits, except the window, which must be open.
        let config = ConnectorConfig {
            replay_window: self.config.replay_window.max(1),
            ..ConnectorConfig::default()
        };
        let pending: Vec<BufferId> = self.appended.difference(&self.acked).cloned().collect();
        // The harness's instance seat plays that gateway: it answers every load from the
        // store and checks the invariants on the way.
        let mut seat = SoloInstance::with_store(config, self.store);
        seat.now = self.now;
        let conn = seat
            .handshake()
            .unwrap_or_else(|e| panic!("a healthy handshake was refused: {e}"));
        for _ in 0..=pending.len() + 1 {
            let sent = seat.sent(conn);
            let unacked: Vec<BufferId> = sent
                .into_iter()
                .filter(|id| !seat.acked().contains(id))
                .collect();
            if unacked.is_empty() {
                break;
            }
            for id in &unacked {
                seat.ack(conn, id);
            }
        }
        let received = seat.sent(conn);
        let seq = |id: &BufferId| {
            id.0.rsplit('-')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let mut expected = pending;
        expected.sort_by_key(seq);
        assert_eq!(received, expected, "the last connection's replay");
        assert_eq!(seat.store.unacked_len(), 0, "the store did not drain");
    }
}

//! The `connector_ops` target: arbitrary sequences of gateway frames, application commands,
//! overlapping connections and store answers on one [`Instance`] over a [`MemoryStore`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use arbitrary::{Arbitrary, Unstructured};

use super::{decode_all, transmitted_frame};
use crate::codec::{Salvage, encode};
use crate::connector::{
    ConnId, ConnectorConfig, ConnectorDiagnostic, ConnectorEvent, Delivery, DeliveryStore,
    Instance, InstanceOutput, Live, LoadToken, MemoryStore,
};
use crate::wire::{
    ActionResult, BufferId, CapabilityDescriptor, Frame, Identity, InboundAck, Interrupt,
    MessageEvent, Outbound, PassthroughForward, RequestId, SendAction,
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
enum Id {
    Shared(u8),
    Fresh,
}

#[derive(Debug, Arbitrary)]
enum GwFrame {
    Hello {
        platform: u8,
        bot: u8,
    },
    Outbound {
        id: Id,
        platform: Option<u8>,
        bot: Option<u8>,
    },
    /// An `outbound` that names its id but does not decode.
    BadOutbound(Id),
    /// An ack of a delivery seen on any connection (by index), or of a made-up id.
    Ack(u8),
    Interrupt,
    GoingIdle,
    /// A frame a gateway never sends.
    Unexpected(u8),
    Garbage(Vec<u8>),
}

/// Connections are named by index among the open ones (modulo their number).
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
    /// The driver took this connection's `Close`: nothing of it may follow.
    close_taken: bool,
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
/// Invariants, after every operation:
/// - per connection, never more `outbound_result`s for an id than `outbound`s given for
///   it; `respond` succeeds exactly for open requests of a connection not closed;
/// - an acked delivery is never written again, on any connection; no delivery is written
///   twice on one connection; those written on the current connection and not acked never
///   exceed `replay_window`; nothing of a connection is written after its close;
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
                    None => (RequestId(format!("unknown-{request}")), false),
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
                    assert!(self.appended.insert(id.clone()), "store reused {id}");
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

    /// Writes one gateway frame as a line.
    fn write_gateway_frame(&mut self, frame: GwFrame, out: &mut Vec<u8>) {
        let mut id_of = |id: Id| match id {
            Id::Shared(i) => RequestId(format!("r{}", i % 4)),
            Id::Fresh => {
                self.fresh += 1;
                RequestId(format!("f{}", self.fresh))
            }
        };
        let frame = match frame {
            GwFrame::Hello { platform, bot } => Frame::Hello(Identity {
                platform: PLATFORMS[usize::from(platform) % PLATFORMS.len()].to_owned(),
                bot_id: BOTS[usize::from(bot) % BOTS.len()].to_owned(),
                command_manifest: None,
            }),
            GwFrame::Outbound { id, platform, bot } => Frame::Outbound(Outbound {
                request_id: id_of(id),
                action: SendAction::default().into(),
                platform: platform.map(|p| PLATFORMS[usize::from(p) % PLATFORMS.len()].into()),
                bot_id: bot.map(|b| BOTS[usize::from(b) % BOTS.len()].to_owned()),
            }),
            GwFrame::BadOutbound(id) => {
                let line = serde_json::json!({
                    "type": "outbound", "requestId": id_of(id).0, "action": {"op": "send"},
                });
                out.extend_from_slice(line.to_string().as_bytes());
                out.push(b'\n');
                return;
            }
            GwFrame::Ack(i) => {
                let buffer_id = self
                    .delivered
                    .get(usize::from(i))
                    .cloned()
                    .unwrap_or_else(|| BufferId(format!("b-{i}")));
                Frame::InboundAck(InboundAck { buffer_id })
            }
            GwFrame::Interrupt => Frame::Interrupt(Interrupt {
                session_key: "s".to_owned(),
                reason: None,
            }),
            GwFrame::GoingIdle => Frame::GoingIdle,
            GwFrame::Unexpected(kind) => match kind % 3 {
                0 => Frame::GoingIdleAck,
                1 => Frame::OutboundResult(crate::wire::OutboundResult {
                    request_id: RequestId("r0".to_owned()),
                    result: ActionResult::ok(),
                }),
                _ => Frame::Unknown(crate::wire::UnknownFrame {
                    frame_type: "future".to_owned(),
                    fields: Default::default(),
                }),
            },
            GwFrame::Garbage(mut bytes) => {
                bytes.retain(|&b| b != b'\n');
                out.extend_from_slice(&bytes);
                out.push(b'\n');
                return;
            }
        };
        out.extend_from_slice(&encode(&frame));
    }

    /// Takes every output, checking each, as a driver and its application would.
    fn drain(&mut self) {
        while let Some(output) = self.instance.poll_output() {
            match output {
                InstanceOutput::Transmit(conn, line) => {
                    let model = self.connections.entry(conn).or_default();
                    assert!(
                        !model.close_taken,
                        "a frame of {conn} polled after its close"
                    );
                    let frame = transmitted_frame(line.as_bytes());
                    self.on_transmit(conn, frame);
                }
                InstanceOutput::Command(conn, _) => {
                    let model = self.connections.entry(conn).or_default();
                    assert!(!model.close_taken, "two closes for {conn}");
                    model.close_taken = true;
                }
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
            ConnectorEvent::Outbound { request_id, .. } => {
                assert!(
                    !model.open.contains(&request_id),
                    "{request_id} handed out twice while open"
                );
                model.open.push(request_id);
            }
            ConnectorEvent::Diagnostic(ConnectorDiagnostic::TooManyRequests(_)) => {
                assert!(model.open.len() >= self.config.max_open_requests);
            }
            _ => {}
        }
    }

    fn on_delivery(&mut self, conn: ConnId, id: Option<BufferId>) {
        let Some(id) = id else { return };
        assert!(!self.acked.contains(&id), "acked delivery {id} sent again");
        assert!(self.appended.contains(&id), "{id} was never appended");
        let model = self.connections.entry(conn).or_default();
        assert!(!model.sent.contains(&id), "{id} sent twice on {conn}");
        model.sent.push(id.clone());
        self.delivered.push(id);
    }

    fn check(&self) {
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
        let mut instance = Instance::new(config);
        let now = self.now;
        let conn = instance.accept(now);
        let hello = encode(&Frame::Hello(Identity {
            platform: "discord".to_owned(),
            bot_id: String::new(),
            command_manifest: None,
        }));
        instance.handle_input(now, conn, &hello);
        let descriptor = CapabilityDescriptor::new("discord", "Discord");
        assert!(instance.send_descriptor(now, conn, descriptor).is_ok());
        let mut received = Vec::new();
        for _ in 0..=pending.len() + 1 {
            let mut acks = Vec::new();
            while let Some(output) = instance.poll_output() {
                match output {
                    InstanceOutput::Transmit(_, line) => {
                        let id = match transmitted_frame(line.as_bytes()) {
                            Frame::Inbound(inbound) => inbound.buffer_id,
                            Frame::PassthroughForward(p) => p.buffer_id,
                            _ => None,
                        };
                        if let Some(id) = id {
                            received.push(id.clone());
                            acks.extend_from_slice(&encode(&Frame::InboundAck(InboundAck {
                                buffer_id: id,
                            })));
                        }
                    }
                    InstanceOutput::Load {
                        token,
                        after,
                        limit,
                    } => {
                        let deliveries = self.store.unacked_after(after.as_ref(), limit);
                        assert!(instance.offer(now, token, deliveries));
                    }
                    InstanceOutput::Acked(id) => assert!(self.store.ack(&id), "ack of {id}"),
                    _ => {}
                }
            }
            if acks.is_empty() {
                break;
            }
            instance.handle_input(now, conn, &acks);
        }
        let seq = |id: &BufferId| {
            id.0.rsplit('-')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let mut expected = pending;
        expected.sort_by_key(seq);
        assert_eq!(received, expected, "the last connection's replay");
        assert_eq!(self.store.unacked_len(), 0, "the store did not drain");
    }
}

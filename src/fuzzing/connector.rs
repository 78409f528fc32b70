//! The `connector_ops` target: arbitrary sequences of gateway frames and application
//! commands on a [`ConnectorMachine`], across several connections sharing one store.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use arbitrary::{Arbitrary, Unstructured};

use super::{decode_all, transmitted_frame};
use crate::codec::{Salvage, encode};
use crate::connector::{
    ConnectorConfig, ConnectorDiagnostic, ConnectorEvent, ConnectorMachine, DeliveryStore,
    MemoryStore, Mode, Output,
};
use crate::wire::{
    ActionResult, BufferId, CapabilityDescriptor, Frame, Hello, InboundAck, Interrupt,
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

#[derive(Debug, Arbitrary)]
enum Op {
    /// Frames from the gateway, written as one stream and cut at the offset.
    Gateway(Vec<GwFrame>, u16),
    Raw(Vec<u8>),
    Descriptor(u8),
    /// Answer an open request (by index) or a made-up one.
    Respond(u8),
    Push {
        buffered: bool,
        passthrough: bool,
    },
    Interrupt,
    Close,
    RejectAuth,
    SocketClosed,
    /// The socket ends and the gateway connects again with the same store.
    Reconnect,
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
    closed: bool,
    /// The driver took this connection's `Close`: nothing of it may follow.
    close_taken: bool,
}

struct Model {
    config: ConnectorConfig,
    now: Instant,
    fresh: u64,
    conn: ConnectionModel,
    /// Every buffer id the store handed out, and every one it confirmed acked.
    appended: BTreeSet<BufferId>,
    acked: BTreeSet<BufferId>,
    /// Every buffered delivery written on any connection, for acks by index.
    delivered: Vec<BufferId>,
}

/// Operation sequences on a [`ConnectorMachine`] over a [`MemoryStore`].
///
/// Input: limits (small), then up to 256 operations: gateway frames (hellos, outbounds with
/// shared and fresh ids, invalid outbounds, acks, interrupts, `going_idle`, unexpected
/// frames, garbage) cut anywhere, every application command, socket ends and reconnects
/// that hand the store to a new machine.
///
/// Invariants, after every operation:
/// - per connection, never more `outbound_result`s for an id than `outbound`s given for
///   it; when the connection ends open, after the application has answered every open
///   request, every id given once has exactly one result;
/// - `respond` succeeds exactly for open requests;
/// - an acked delivery is never written again, on this or a later connection; no delivery
///   is written twice on one connection; the ones written and not acked never exceed
///   `replay_window`;
/// - the store's unacked count is what was appended minus what was acked;
/// - `open_requests() <= max_open_requests`, `identities().len() <= max_identities`,
///   `buffered_len() <= max_frame_len`; every transmit is one well-formed frame.
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
        config: config.clone(),
        // The virtual clock's origin; the connector reads no deadlines, only passes it on.
        now: Instant::now(),
        fresh: 0,
        conn: ConnectionModel::default(),
        appended: BTreeSet::new(),
        acked: BTreeSet::new(),
        delivered: Vec::new(),
    };
    let mut machine = ConnectorMachine::new(config, MemoryStore::with_epoch(0));
    for _ in 0..MAX_OPS {
        let Ok(op) = Op::arbitrary(&mut u) else {
            break;
        };
        machine = model.apply(machine, op);
    }
    let store = model.end_connection(machine);
    model.drain_store(store);
}

impl Model {
    fn apply(
        &mut self,
        mut machine: ConnectorMachine<MemoryStore>,
        op: Op,
    ) -> ConnectorMachine<MemoryStore> {
        let now = self.now;
        match op {
            Op::Gateway(frames, cut) => {
                let mut stream = Vec::new();
                for frame in frames.into_iter().take(16) {
                    self.write_gateway_frame(frame, &mut stream);
                }
                self.count_outbounds(&stream);
                let at = usize::from(cut).min(stream.len());
                let (head, tail) = stream.split_at(at);
                machine.handle_input(now, head);
                self.drain(&mut machine);
                machine.handle_input(now, tail);
            }
            Op::Raw(mut bytes) => {
                // Whole lines only, so every op starts the machine's decoder on a fresh line.
                bytes.retain(|&b| b != b'\n');
                bytes.push(b'\n');
                self.count_outbounds(&bytes);
                machine.handle_input(now, &bytes);
            }
            Op::Descriptor(p) => {
                let platform = PLATFORMS[usize::from(p) % PLATFORMS.len()];
                let announced = machine.identities().iter().any(|i| i.platform == platform);
                let result =
                    machine.send_descriptor(now, CapabilityDescriptor::new(platform, platform));
                assert_eq!(
                    result.is_ok(),
                    announced && !self.conn.closed,
                    "send_descriptor: {result:?}"
                );
            }
            Op::Respond(which) => {
                let index = usize::from(which);
                let (id, open) = match self.conn.open.get(index) {
                    Some(id) => (id.clone(), true),
                    None => (RequestId(format!("unknown-{which}")), false),
                };
                let result = machine.respond(now, &id, ActionResult::ok());
                assert_eq!(
                    result.is_ok(),
                    open && !self.conn.closed,
                    "respond({id}): {result:?}"
                );
                if result.is_ok() {
                    self.conn.open.remove(index);
                }
            }
            Op::Push {
                buffered,
                passthrough,
            } => {
                let mode = if buffered { Mode::Buffered } else { Mode::Live };
                let result = if passthrough {
                    machine.push_passthrough(now, PassthroughForward::new("discord", "{}"), mode)
                } else {
                    let event = MessageEvent {
                        text: "hi".to_owned(),
                        ..Default::default()
                    };
                    machine.push(now, event, mode)
                };
                match result {
                    Ok(Some(id)) => {
                        assert!(self.appended.insert(id.clone()), "store reused {id}");
                    }
                    Ok(None) => assert!(!buffered, "a buffered push got no id"),
                    Err(_) => assert!(self.conn.closed, "push refused on an open connection"),
                }
            }
            Op::Interrupt => {
                let result = machine.send_interrupt(now, "s", "c");
                assert_eq!(result.is_ok(), !self.conn.closed);
            }
            Op::Close => {
                machine.close(now, 1000, "bye");
                self.conn.closed = true;
            }
            Op::RejectAuth => {
                machine.reject_auth(now, "unauthorized");
                self.conn.closed = true;
            }
            Op::SocketClosed => {
                machine.on_closed(now);
                self.conn.closed = true;
            }
            Op::Reconnect => {
                let store = self.end_connection(machine);
                machine = ConnectorMachine::new(self.config.clone(), store);
            }
        }
        self.drain(&mut machine);
        machine
    }

    /// Counts the requests `stream` (whole lines) gives the machine, as the codec reads
    /// them: each `outbound`, and each undecodable one that still names its `requestId`.
    /// A line over the limit names nothing: its bytes are never looked at.
    fn count_outbounds(&mut self, stream: &[u8]) {
        if self.conn.closed {
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
                *self.conn.fed.entry(id).or_default() += 1;
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
            GwFrame::Hello { platform, bot } => Frame::Hello(Hello {
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

    fn drain(&mut self, machine: &mut ConnectorMachine<MemoryStore>) {
        while let Some(output) = machine.poll_output() {
            match output {
                Output::Transmit(line) => {
                    assert!(
                        !self.conn.close_taken,
                        "a frame was polled after its connection's close"
                    );
                    self.on_transmit(transmitted_frame(line.as_bytes()));
                }
                Output::Event(event) => self.on_event(event),
                Output::Command(_) => {
                    assert!(!self.conn.close_taken, "two closes for one connection");
                    self.conn.close_taken = true;
                }
            }
        }
        self.check(machine);
    }

    fn on_transmit(&mut self, frame: Frame) {
        match frame {
            Frame::OutboundResult(result) => {
                let id = result.request_id;
                let answered = self.conn.answered.entry(id.clone()).or_default();
                *answered += 1;
                let fed = self.conn.fed.get(&id).copied().unwrap_or(0);
                assert!(
                    *answered <= fed,
                    "{answered} results for {id}, asked {fed} times"
                );
            }
            Frame::Inbound(inbound) => self.on_delivery(inbound.buffer_id),
            Frame::PassthroughForward(p) => self.on_delivery(p.buffer_id),
            _ => {}
        }
    }

    fn on_event(&mut self, event: ConnectorEvent) {
        match event {
            ConnectorEvent::Outbound { request_id, .. } => {
                assert!(
                    !self.conn.open.contains(&request_id),
                    "{request_id} handed out twice while open"
                );
                self.conn.open.push(request_id);
            }
            ConnectorEvent::Acked(id) => {
                assert!(self.appended.contains(&id), "acked {id}, never appended");
                assert!(self.acked.insert(id.clone()), "{id} acked twice");
            }
            ConnectorEvent::Diagnostic(ConnectorDiagnostic::TooManyRequests(_)) => {
                assert!(self.conn.open.len() >= self.config.max_open_requests);
            }
            _ => {}
        }
    }

    fn on_delivery(&mut self, id: Option<BufferId>) {
        let Some(id) = id else { return };
        assert!(!self.acked.contains(&id), "acked delivery {id} sent again");
        assert!(
            !self.conn.sent.contains(&id),
            "{id} sent twice on one connection"
        );
        assert!(self.appended.contains(&id), "{id} was never appended");
        self.conn.sent.push(id.clone());
        self.delivered.push(id);
    }

    fn check(&self, machine: &ConnectorMachine<MemoryStore>) {
        // Checked once the whole drain is seen: an ack's event comes after the transmit
        // of the delivery that its freed slot let through.
        let outstanding = self.conn.sent.iter().filter(|id| !self.acked.contains(*id));
        assert!(
            outstanding.count() <= self.config.replay_window,
            "more deliveries outstanding than the replay window"
        );
        assert_eq!(
            machine.store().unacked_len(),
            self.appended.len() - self.acked.len(),
            "store's unacked count"
        );
        assert_eq!(
            machine.open_requests(),
            self.conn.open.len(),
            "open requests"
        );
        assert!(machine.open_requests() <= self.config.max_open_requests);
        assert!(machine.identities().len() <= self.config.max_identities);
        assert!(machine.buffered_len() <= self.config.max_frame_len);
    }

    /// Ends the current connection (answering what is open first, if it still can) and
    /// checks that every request given once was answered once.
    fn end_connection(&mut self, mut machine: ConnectorMachine<MemoryStore>) -> MemoryStore {
        if !self.conn.closed {
            for id in std::mem::take(&mut self.conn.open) {
                assert!(machine.respond(self.now, &id, ActionResult::ok()).is_ok());
            }
            self.drain(&mut machine);
            for (id, fed) in &self.conn.fed {
                let answered = self.conn.answered.get(id).copied().unwrap_or(0);
                if *fed == 1 {
                    assert_eq!(
                        answered, 1,
                        "request {id} given once, answered {answered} times"
                    );
                }
            }
        }
        machine.on_closed(self.now);
        self.conn = ConnectionModel::default();
        machine.into_store()
    }

    /// A last connection that acks everything it is sent must drain the store, each
    /// unacked delivery exactly once and in append order.
    fn drain_store(mut self, store: MemoryStore) {
        // A healthy gateway: default limits, except the window, which must be open.
        let config = ConnectorConfig {
            replay_window: self.config.replay_window.max(1),
            ..ConnectorConfig::default()
        };
        let pending: Vec<BufferId> = self.appended.difference(&self.acked).cloned().collect();
        let mut machine = ConnectorMachine::new(config, store);
        let hello = encode(&Frame::Hello(Hello {
            platform: "discord".to_owned(),
            bot_id: String::new(),
            command_manifest: None,
        }));
        machine.handle_input(self.now, &hello);
        while machine.poll_output().is_some() {}
        assert!(
            machine
                .send_descriptor(self.now, CapabilityDescriptor::new("discord", "Discord"))
                .is_ok()
        );
        let mut received = Vec::new();
        for _ in 0..=pending.len() {
            let mut acks = Vec::new();
            while let Some(output) = machine.poll_output() {
                let Output::Transmit(line) = output else {
                    continue;
                };
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
            if acks.is_empty() {
                break;
            }
            machine.handle_input(self.now, &acks);
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
        assert_eq!(machine.store().unacked_len(), 0, "the store did not drain");
        self.acked.extend(received);
    }
}

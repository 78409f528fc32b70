//! An in-memory pair harness: a [`RelayMachine`] and a [`ConnectorMachine`] joined on a
//! virtual clock, for testing applications built on either role (feature `testing`).
//!
//! The harness plays the socket between the two machines and, unless told otherwise, a
//! minimal connector application: it answers every `hello` with a default descriptor and
//! every `outbound` with a success. Knobs cut every message at arbitrary byte offsets,
//! coalesce several frames into one message, delay delivery, and drop the connection.
//! Every frame and event goes into a [`Transcript`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::Transmit;
use crate::connector::{
    self, ConnId, ConnectorCommand, ConnectorConfig, ConnectorEvent, ConnectorMachine, Delivery,
    DeliveryStore, Instance, InstanceOutput, Live, MemoryStore,
};
use crate::gateway::{self, ConnectionCommand, GatewayEvent, RelayMachine};
use crate::transcript::Transcript;
use crate::wire::BufferId;
use crate::wire::{ActionResult, CapabilityDescriptor};

/// How the harness carries messages.
#[derive(Debug, Clone, Default)]
pub struct Knobs {
    /// Cut every message into pieces of at most this many bytes (`None`: whole).
    pub split: Option<usize>,
    /// Deliver everything one side wrote in a step as one message.
    pub coalesce: bool,
    /// Delay every message by this much virtual time.
    pub latency: Duration,
    /// Refuse every dial (the connector is unreachable).
    pub refuse_dials: bool,
}

/// What the harness plays as the connector application.
#[derive(Debug, Clone)]
pub struct ConnectorApp {
    /// Answer each `hello` with [`CapabilityDescriptor::new`] for its platform.
    pub auto_descriptor: bool,
    /// Answer each `outbound` with [`ActionResult::ok_with_message`] (`m-<n>`).
    pub auto_respond: bool,
}

impl Default for ConnectorApp {
    fn default() -> Self {
        Self {
            auto_descriptor: true,
            auto_respond: true,
        }
    }
}

/// The harness did not settle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the pair did not converge within {0} steps")]
pub struct NotConverged(pub usize);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    ToConnector,
    ToGateway,
}

/// A gateway and a connector joined in memory.
///
/// The connector side is an [`Instance`] over the durable `store`, played by the harness as
/// a connector application would: it persists what it buffers, answers each
/// [`InstanceOutput::Load`] from the store and makes each ack durable.
#[derive(Debug)]
pub struct Pair<S: DeliveryStore = MemoryStore> {
    /// The gateway.
    pub gateway: RelayMachine,
    /// The gateway instance on the connector.
    pub instance: Instance,
    /// The instance's connection to the gateway, if one is open.
    pub conn: Option<ConnId>,
    /// The connector application's durable buffer.
    pub store: S,
    /// How messages travel.
    pub knobs: Knobs,
    /// What the harness answers as the connector application.
    pub app: ConnectorApp,
    /// The virtual clock.
    pub now: Instant,
    /// Everything that happened.
    pub transcript: Transcript,
    /// Every gateway event so far, in order.
    pub gateway_events: Vec<GatewayEvent>,
    /// Every connector event so far, in order (an ack as [`ConnectorEvent::Acked`]).
    pub connector_events: Vec<ConnectorEvent>,
    /// How many times the instance asked for a wake-up.
    pub wakes: usize,
    wire: VecDeque<(Instant, Side, Bytes)>,
    /// Frames one side wrote in the current pass, not yet on the wire.
    staged: Vec<Bytes>,
    responses: u64,
}

/// Bound on the steps of one [`Pair::drive_until_idle`].
pub const MAX_STEPS: usize = 100_000;

impl<S: DeliveryStore> Pair<S> {
    /// A pair around `gateway` and the connector's durable `store`, at virtual time `start`.
    pub fn new(gateway: RelayMachine, store: S, start: Instant) -> Self {
        Self::with_config(gateway, ConnectorConfig::default(), store, start)
    }

    /// A pair whose connector uses `config`.
    pub fn with_config(
        gateway: RelayMachine,
        config: ConnectorConfig,
        store: S,
        start: Instant,
    ) -> Self {
        Self {
            gateway,
            instance: Instance::new(config),
            conn: None,
            store,
            knobs: Knobs::default(),
            app: ConnectorApp::default(),
            now: start,
            transcript: Transcript::new(start),
            gateway_events: Vec::new(),
            connector_events: Vec::new(),
            wakes: 0,
            wire: VecDeque::new(),
            staged: Vec::new(),
            responses: 0,
        }
    }

    /// The connector's machine for the current connection, if one is open.
    pub fn connection(&self) -> Option<&ConnectorMachine> {
        self.conn.and_then(|c| self.instance.connection(c))
    }

    /// Delivers `delivery` to the gateway as the connector application would: buffered
    /// (persisted, then handed to the instance) when `buffered` or when the instance cannot
    /// send it live. Returns the buffer id when it was buffered.
    pub fn push(&mut self, delivery: impl Into<Delivery>, buffered: bool) -> Option<BufferId> {
        let delivery = delivery.into();
        let delivery = if buffered {
            delivery
        } else {
            match self.instance.push_live(self.now, delivery) {
                Live::Sent => return None,
                Live::Buffer(delivery) => delivery,
            }
        };
        let id = self.store.append(delivery.clone());
        self.instance.push_buffered(self.now, id.clone(), delivery);
        Some(id)
    }

    /// Processes everything that is due now until nothing moves. Time does not advance.
    pub fn drive_until_idle(&mut self) -> Result<(), NotConverged> {
        for _ in 0..MAX_STEPS {
            if !self.step() {
                return Ok(());
            }
        }
        Err(NotConverged(MAX_STEPS))
    }

    /// Advances the clock by `by`, firing every deadline and delivering every message due
    /// on the way, in time order.
    pub fn advance(&mut self, by: Duration) -> Result<(), NotConverged> {
        let end = self.now + by;
        self.drive_until_idle()?;
        loop {
            let next_wire = self.wire.iter().map(|(at, _, _)| *at).min();
            let next = [
                self.gateway.poll_timeout(),
                self.instance.poll_timeout(),
                next_wire,
            ]
            .into_iter()
            .flatten()
            .filter(|at| *at <= end)
            .min();
            let Some(at) = next else { break };
            self.now = self.now.max(at);
            self.gateway.handle_timeout(self.now);
            self.instance.handle_timeout(self.now);
            self.drive_until_idle()?;
        }
        self.now = end;
        self.gateway.handle_timeout(self.now);
        self.instance.handle_timeout(self.now);
        self.drive_until_idle()
    }

    /// Drops the connection as a network failure would: both sides learn it at once, with
    /// no close frame.
    pub fn drop_connection(&mut self) {
        self.wire.clear();
        if let Some(conn) = self.conn.take() {
            self.instance
                .on_closed(self.now, conn, None, "socket ended");
            self.transcript.note(self.now, "net", "connection dropped");
            self.gateway.on_closed(self.now, None, "connection reset");
        }
    }

    /// One round: the gateway's outputs in order, then the connector's, then the messages
    /// due now. `false` when nothing moved.
    fn step(&mut self) -> bool {
        let mut moved = false;
        while let Some(output) = self.gateway.poll_output() {
            moved = true;
            self.transcript.gateway_output(self.now, &output);
            match output {
                gateway::Output::Transmit(line) => self.staged.push(line.into_bytes()),
                gateway::Output::Command(command) => {
                    // Frames written before a command (an ack before a close) go first.
                    self.flush(Side::ToConnector);
                    self.on_gateway_command(command);
                }
                gateway::Output::Event(event) => self.gateway_events.push(event),
            }
        }
        self.flush(Side::ToConnector);
        moved |= self.connector_round();
        moved |= self.deliver_due();
        moved
    }

    fn on_gateway_command(&mut self, command: ConnectionCommand) {
        match command {
            ConnectionCommand::Dial { generation, .. } if self.knobs.refuse_dials => {
                self.gateway
                    .on_dial_failed(self.now, generation, "connection refused");
            }
            ConnectionCommand::Dial { generation, .. } => {
                if let Some(old) = self.conn.take() {
                    self.instance.on_closed(self.now, old, None, "socket ended");
                }
                self.wire.clear();
                self.conn = Some(self.instance.accept(self.now));
                self.gateway.on_connected(self.now, generation);
            }
            // The in-memory link is alive as long as the pair is: a ping is answered at once.
            ConnectionCommand::Ping => self.gateway.on_pong(self.now),
            ConnectionCommand::Abort => {
                self.wire.clear();
                if let Some(conn) = self.conn.take() {
                    self.instance.on_closed(self.now, conn, None, "aborted");
                }
            }
            ConnectionCommand::Close { code, reason } => {
                // Frames already written still arrive before the close, as on a socket.
                self.deliver_all(Side::ToConnector);
                if let Some(conn) = self.conn.take() {
                    self.instance.on_closed(self.now, conn, Some(code), &reason);
                    // The peer answers the close: the gateway's driver reports the end.
                    self.gateway.on_closed(self.now, Some(code), &reason);
                }
                self.wire.clear();
            }
        }
    }

    /// Plays the connector application and its driver; returns whether anything moved.
    fn connector_round(&mut self) -> bool {
        let mut moved = false;
        while let Some(output) = self.instance.poll_output() {
            moved = true;
            self.transcript.instance_output(self.now, &output);
            match output {
                InstanceOutput::Transmit(conn, line) => {
                    // A superseded connection's socket is gone in this harness.
                    if Some(conn) == self.conn {
                        self.staged.push(line.into_bytes());
                    }
                }
                InstanceOutput::Event(conn, event) => {
                    self.answer(conn, &event);
                    self.connector_events.push(event);
                }
                InstanceOutput::Command(conn, ConnectorCommand::Close { code, reason }) => {
                    if Some(conn) == self.conn {
                        self.flush(Side::ToGateway);
                        self.deliver_all(Side::ToGateway);
                        self.conn = None;
                        self.instance
                            .on_closed(self.now, conn, None, "socket ended");
                        self.gateway.on_closed(self.now, Some(code), &reason);
                    } else {
                        self.instance
                            .on_closed(self.now, conn, None, "socket ended");
                    }
                }
                // The in-memory link is alive as long as the pair is.
                InstanceOutput::Command(conn, ConnectorCommand::Ping) => {
                    self.instance.on_pong(self.now, conn);
                }
                InstanceOutput::Command(conn, ConnectorCommand::Abort) => {
                    self.instance.on_closed(self.now, conn, None, "aborted");
                    if Some(conn) == self.conn {
                        self.conn = None;
                        self.wire.clear();
                        self.gateway.on_closed(self.now, None, "connection reset");
                    }
                }
                InstanceOutput::Load {
                    token,
                    after,
                    limit,
                } => {
                    let deliveries = self.store.unacked_after(after.as_ref(), limit);
                    self.instance.offer(self.now, token, deliveries);
                }
                InstanceOutput::Acked(id) => {
                    self.store.ack(&id);
                    self.connector_events.push(ConnectorEvent::Acked(id));
                }
                InstanceOutput::WakeNeeded => self.wakes += 1,
            }
        }
        self.flush(Side::ToGateway);
        moved
    }

    /// What the harness answers as the connector application.
    fn answer(&mut self, conn: ConnId, event: &ConnectorEvent) {
        match event {
            ConnectorEvent::Hello { identity, .. } if self.app.auto_descriptor => {
                let descriptor =
                    CapabilityDescriptor::new(identity.platform.clone(), &identity.platform);
                let _ = self.instance.send_descriptor(self.now, conn, descriptor);
            }
            ConnectorEvent::Outbound { request_id, .. } if self.app.auto_respond => {
                self.responses += 1;
                let result = ActionResult::ok_with_message(format!("m-{}", self.responses));
                let _ = self.instance.respond(self.now, conn, request_id, result);
            }
            ConnectorEvent::Hello { .. }
            | ConnectorEvent::Outbound { .. }
            | ConnectorEvent::Interrupt { .. }
            | ConnectorEvent::Acked(_)
            | ConnectorEvent::WentIdle
            | ConnectorEvent::Diagnostic(_) => {}
        }
    }

    /// Moves the frames one side wrote onto the wire, cut and merged per the knobs.
    fn flush(&mut self, side: Side) {
        if self.staged.is_empty() {
            return;
        }
        let frames = std::mem::take(&mut self.staged);
        let messages = if self.knobs.coalesce {
            vec![Bytes::from(frames.concat())]
        } else {
            frames
        };
        let at = self.now + self.knobs.latency;
        for message in messages {
            let piece = self.knobs.split.unwrap_or(usize::MAX).max(1);
            let mut rest = message;
            while rest.len() > piece {
                let head = rest.split_to(piece);
                self.wire.push_back((at, side, head));
            }
            self.wire.push_back((at, side, rest));
        }
    }

    fn deliver_due(&mut self) -> bool {
        let mut moved = false;
        while let Some((at, _, _)) = self.wire.front() {
            if *at > self.now {
                break;
            }
            if let Some((_, side, bytes)) = self.wire.pop_front() {
                self.deliver(side, &bytes);
                moved = true;
            }
        }
        moved
    }

    fn deliver_all(&mut self, side: Side) {
        let (mine, others): (VecDeque<_>, VecDeque<_>) =
            self.wire.drain(..).partition(|(_, s, _)| *s == side);
        self.wire = others;
        for (_, side, bytes) in mine {
            self.deliver(side, &bytes);
        }
    }

    fn deliver(&mut self, side: Side, bytes: &[u8]) {
        match side {
            Side::ToConnector => {
                if let Some(conn) = self.conn {
                    self.instance.handle_input(self.now, conn, bytes);
                }
            }
            Side::ToGateway => self.gateway.handle_input(self.now, bytes),
        }
    }
}

/// Every output a machine had, sorted by kind, each kind in its order: for tests that
/// assert on one kind at a time. (A driver never sorts: it carries outputs out in order.)
#[derive(Debug, Clone, PartialEq)]
pub struct Split<C, E> {
    /// The frames, in order.
    pub transmits: Vec<Transmit>,
    /// The socket commands, in order.
    pub commands: Vec<C>,
    /// The events, in order.
    pub events: Vec<E>,
}

impl<C, E> Split<C, E> {
    /// The frames as JSON values.
    pub fn frames(&self) -> Vec<serde_json::Value> {
        self.transmits
            .iter()
            .map(|t| serde_json::from_str(t.as_str()).unwrap_or(serde_json::Value::Null))
            .collect()
    }
}

/// Takes every output of `gateway`, sorted by kind.
pub fn split_gateway(gateway: &mut RelayMachine) -> Split<ConnectionCommand, GatewayEvent> {
    let mut split = Split {
        transmits: Vec::new(),
        commands: Vec::new(),
        events: Vec::new(),
    };
    while let Some(output) = gateway.poll_output() {
        match output {
            gateway::Output::Transmit(t) => split.transmits.push(t),
            gateway::Output::Command(c) => split.commands.push(c),
            gateway::Output::Event(e) => split.events.push(e),
        }
    }
    split
}

/// Takes every output of `connector`, sorted by kind.
pub fn split_connector(
    connector: &mut ConnectorMachine,
) -> Split<ConnectorCommand, ConnectorEvent> {
    let mut split = Split {
        transmits: Vec::new(),
        commands: Vec::new(),
        events: Vec::new(),
    };
    while let Some(output) = connector.poll_output() {
        match output {
            connector::Output::Transmit(t) => split.transmits.push(t),
            connector::Output::Command(c) => split.commands.push(c),
            connector::Output::Event(e) => split.events.push(e),
        }
    }
    split
}

//! The pair seat: a [`RelayMachine`] and a [`ConnectorMachine`] (in an [`Instance`])
//! joined in memory on a virtual clock.
//!
//! The harness plays the socket between the two machines and, unless told otherwise, a
//! minimal connector application: it answers every `hello` with a default descriptor and
//! every `outbound` with a success. Knobs cut every message at arbitrary byte offsets,
//! coalesce several frames into one message, delay delivery, and drop the connection.
//! Every output goes into the [`Log`] and past the [`Invariants`].

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Invariants, Log};
use crate::connector::{
    ConnId, ConnectorCommand, ConnectorConfig, ConnectorEvent, ConnectorMachine, Delivery,
    DeliveryStore, Instance, InstanceOutput, Live, MemoryStore,
};
use crate::gateway::{
    self, ConnectionCommand, GatewayEvent, GatewayState, RelayMachine, SendError,
};
use crate::wire::{ActionResult, CapabilityDescriptor};
use crate::wire::{BufferId, OutboundAction, RequestId};

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
/// Send requests with [`send`](Self::send) (so the checker knows every id the gateway
/// minted); read and call the gateway's other methods on [`gateway`](Self::gateway), then
/// [`drive_until_idle`](Self::drive_until_idle). Time passes only by [`step`](Self::step)
/// and [`advance`](Self::advance).
///
/// The connector side is an [`Instance`] over the durable `store`, played by the harness as
/// a connector application would: it persists what it buffers, answers each
/// [`InstanceOutput::Load`] from the store and makes each ack durable.
#[derive(Debug)]
pub struct Pair<S: DeliveryStore = MemoryStore> {
    /// The gateway. Send and ack through [`send`](Self::send) and [`ack`](Self::ack): the
    /// checker then also knows what the application did (a request sent on the machine
    /// directly is learnt from its frame; an ack made directly is not checked).
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
    /// Everything that happened: typed outputs and the transcript.
    pub log: Log,
    /// The invariants, checked after every round.
    pub check: Invariants,
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
            log: Log::new(start),
            check: Invariants::new().across_the_link(),
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
        self.check.pushed(&id);
        self.instance.push_buffered(self.now, id.clone(), delivery);
        Some(id)
    }

    /// The application sends `action` through the gateway (to `platform`, if given).
    pub fn send(
        &mut self,
        action: impl Into<OutboundAction>,
        platform: Option<&str>,
    ) -> Result<RequestId, SendError> {
        let r = self.gateway.send(self.now, action.into(), platform);
        if let Ok(id) = &r {
            self.check.sent(id);
        }
        r
    }

    /// The gateway application acks buffered delivery `id`.
    pub fn ack(&mut self, id: &BufferId) -> Result<(), gateway::AckError> {
        let r = self.gateway.ack_inbound(self.now, id);
        if r.is_ok() {
            self.check.app_acked(id);
        }
        r
    }

    /// Processes everything that is due now until nothing moves. Time does not advance.
    pub fn drive_until_idle(&mut self) -> Result<(), NotConverged> {
        for _ in 0..MAX_STEPS {
            if !self.round() {
                self.check.gateway_step(&self.gateway);
                self.check.unacked_kept(&self.store);
                self.check.spurious_timeout(self.now, &mut self.gateway);
                return Ok(());
            }
        }
        Err(NotConverged(MAX_STEPS))
    }

    /// The next instant anything is due: either side's deadline or a message in flight.
    pub fn next_due(&self) -> Option<Instant> {
        let next_wire = self.wire.iter().map(|(at, _, _)| *at).min();
        [
            self.gateway.poll_timeout(),
            self.instance.poll_timeout(),
            next_wire,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// One step of the clock: settles what is due now, then moves to the earlier deadline
    /// of the two sides (or the next message due), fires it and settles again. `Ok(false)`
    /// when nothing is pending at all.
    pub fn step(&mut self) -> Result<bool, NotConverged> {
        self.drive_until_idle()?;
        let Some(at) = self.next_due() else {
            return Ok(false);
        };
        self.fire_at(at)?;
        Ok(true)
    }

    fn fire_at(&mut self, at: Instant) -> Result<(), NotConverged> {
        self.now = self.now.max(at);
        self.gateway.handle_timeout(self.now);
        self.instance.handle_timeout(self.now);
        self.drive_until_idle()?;
        self.check
            .after_timeout(self.now, self.gateway.poll_timeout());
        self.check
            .after_timeout(self.now, self.instance.poll_timeout());
        Ok(())
    }

    /// Advances the clock by `by`, stepping through every deadline and message due on the
    /// way, in time order.
    pub fn advance(&mut self, by: Duration) -> Result<(), NotConverged> {
        let end = self.now + by;
        self.drive_until_idle()?;
        while let Some(at) = self.next_due().filter(|at| *at <= end) {
            self.fire_at(at)?;
        }
        self.fire_at(end)
    }

    /// Checks what can only be checked on demand: every request the gateway minted has
    /// resolved exactly once (call when none should be open).
    pub fn assert_all_resolved(&self) {
        self.check.all_resolved();
    }

    /// Drops the connection as a network failure would: both sides learn it at once, with
    /// no close frame.
    pub fn drop_connection(&mut self) {
        self.wire.clear();
        if let Some(conn) = self.conn.take() {
            self.instance
                .on_closed(self.now, conn, None, "socket ended");
            self.log
                .transcript
                .note(self.now, "net", "connection dropped");
            self.check.socket_ended();
            self.check.connection_ended(Some(conn));
            self.gateway.on_closed(self.now, None, "connection reset");
        }
    }

    /// One round: the gateway's outputs in order, then the connector's, then the messages
    /// due now. `false` when nothing moved.
    fn round(&mut self) -> bool {
        let mut moved = false;
        while let Some(output) = self.gateway.poll_output() {
            moved = true;
            self.check.gateway_output(&output);
            self.log.gateway_output(self.now, &output);
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
                if self.gateway.state() == GatewayState::Dialing {
                    self.check.socket_opened();
                }
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
            self.check.instance_output(&output);
            self.log.instance_output(self.now, &output);
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
                        self.check.socket_ended();
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
                        self.check.socket_ended();
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
            ConnectorEvent::Outbound { request, .. } if self.app.auto_respond => {
                self.responses += 1;
                let result = ActionResult::ok_with_message(format!("m-{}", self.responses));
                let _ = self
                    .instance
                    .respond(self.now, conn, &request.request_id, result);
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

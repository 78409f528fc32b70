//! [`Instance`]: one gateway instance as the connector sees it, across its connections.

mod replay;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::Instant;

use super::{
    ConnectorCommand, ConnectorConfig, ConnectorError, ConnectorEvent, ConnectorMachine, Delivery,
    Output,
};
use crate::transmit::Transmit;
use crate::wire::close::{REASON_SUPERSEDED, SUPERSEDED as CLOSE_SUPERSEDED};
use crate::wire::{ActionResult, BufferId, CapabilityDescriptor, RequestId};
use replay::Replay;

/// Names one connection of an [`Instance`]; never reused within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Pairs an [`InstanceOutput::Load`] with its answer, [`Instance::offer`]. An answer whose
/// token is no longer the one awaited (its connection ended or was superseded since) is
/// ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LoadToken(u64);

/// One output of an [`Instance`], in the order it produced them. Carry each out before
/// taking the next.
///
/// Displays as one log line led by the connection where there is one: `#1 transmit ...`,
/// `#1 command close 4409 "superseded"`, `#1 event Hello discord:111`,
/// `load 8 after b-3`, `acked b-3`, `wake needed`.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "every output must be carried out, in order"]
#[non_exhaustive]
// Moved once, from the queue to the driver: boxing the large event would cost an
// allocation per event to save a copy.
#[allow(clippy::large_enum_variant)]
pub enum InstanceOutput {
    /// Write this line as one WebSocket text message on connection `.0`'s socket.
    Transmit(ConnId, Transmit),
    /// Close connection `.0`'s socket, after every frame before it.
    Command(ConnId, ConnectorCommand),
    /// An event of connection `.0` for the application (answer it through the instance:
    /// [`Instance::send_descriptor`], [`Instance::respond`]).
    Event(ConnId, ConnectorEvent),
    /// Read up to `limit` unacked deliveries from the store, in append order, starting
    /// after `after` (from the oldest unacked one when `None`), and answer with
    /// [`Instance::offer`] quoting `token`. Fewer than `limit` means the store has no more.
    Load {
        /// Quote it in the answer.
        token: LoadToken,
        /// The last delivery already sent on this connection.
        after: Option<BufferId>,
        /// How many the replay window has room for.
        limit: usize,
    },
    /// The gateway acked this delivery (on whichever connection): make the ack durable, so
    /// the store never returns it again. The id is the gateway's word: it may have been
    /// acked before, or be unknown to the store.
    Acked(BufferId),
    /// A delivery was buffered while the gateway is idle: poke its wake URL. Once per idle
    /// period.
    WakeNeeded,
}

impl fmt::Display for InstanceOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstanceOutput::Transmit(c, t) => write!(f, "{c} transmit {t}"),
            InstanceOutput::Command(c, command) => write!(f, "{c} command {command}"),
            InstanceOutput::Event(c, e) => write!(f, "{c} event {e}"),
            InstanceOutput::Load { after, limit, .. } => match after {
                Some(after) => write!(f, "load {limit} after {after}"),
                None => write!(f, "load {limit} from the oldest unacked"),
            },
            InstanceOutput::Acked(id) => write!(f, "acked {id}"),
            InstanceOutput::WakeNeeded => f.write_str("wake needed"),
        }
    }
}

/// What became of a live delivery.
///
/// Displays as `sent live` or `not sent: buffer it`.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "a delivery handed back must be buffered, or it is lost"]
pub enum Live {
    /// Written on the current connection.
    Sent,
    /// Not written: the gateway is idle, or not connected and handshaken. Persist it and
    /// hand it over with [`Instance::push_buffered`].
    Buffer(Delivery),
}

impl fmt::Display for Live {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Live::Sent => f.write_str("sent live"),
            Live::Buffer(_) => f.write_str("not sent: buffer it"),
        }
    }
}

/// One gateway instance as the connector sees it: every connection it opens, and the
/// replay of its durable buffer, with no IO inside.
///
/// The buffer is the application's ([`DeliveryStore`](super::DeliveryStore) says what it
/// must promise). The application persists a delivery first, then hands `(id, delivery)`
/// to [`push_buffered`](Self::push_buffered); the instance sends it when the replay window
/// has room, and otherwise asks for it later with [`InstanceOutput::Load`], which the
/// application answers with [`offer`](Self::offer). Acks come out as
/// [`InstanceOutput::Acked`] for the application to make durable. The instance keeps only
/// the window: sent, not yet acked.
///
/// A connection is [`accept`](Self::accept)ed once the driver has authenticated it for
/// this instance (without a secret there is one default instance; with one, the instance
/// is the gateway id in the token), and it supersedes the previous one: that socket is
/// closed with [`close::SUPERSEDED`](crate::wire::close::SUPERSEDED) (4409, never 4401, which after a handshake counts as
/// an auth strike), and the deliveries in its window go back to the tail, replayed on the
/// new connection from the oldest unacked. An ack that arrives on either connection
/// counts. Two live processes of one gateway instance therefore keep superseding each
/// other: the reference gateway redials after any close but 4401.
///
/// The run loop is the machines' (see [`ConnectorMachine`]): after every input, take
/// [`poll_output`](Self::poll_output) until `None`, carrying out each output in order.
///
/// ```
/// use std::time::Instant;
/// use relay_machine::connector::{ConnectorConfig, ConnectorEvent, Delivery, DeliveryStore, Instance, InstanceOutput, MemoryStore};
/// use relay_machine::wire::{CapabilityDescriptor, MessageEvent};
///
/// let now = Instant::now();
/// let mut store = MemoryStore::with_epoch(0);
/// let mut instance = Instance::new(ConnectorConfig::default());
/// let conn = instance.accept(now);
/// instance.handle_input(now, conn, b"{\"type\":\"hello\",\"platform\":\"telegram\",\"botId\":\"701\"}\n");
/// let mut sent = Vec::new();
/// while let Some(output) = instance.poll_output() {
///     match output {
///         InstanceOutput::Event(c, ConnectorEvent::Hello { identity, .. }) => {
///             instance.send_descriptor(now, c, CapabilityDescriptor::new(identity.platform, "Telegram")).unwrap();
///             // The first descriptor starts the replay. A new delivery is persisted first.
///             let delivery = Delivery::from(MessageEvent { text: "hi".into(), ..Default::default() });
///             let id = store.append(delivery.clone());
///             instance.push_buffered(now, id, delivery);
///         }
///         InstanceOutput::Load { token, after, limit } => {
///             instance.offer(now, token, store.unacked_after(after.as_ref(), limit));
///         }
///         InstanceOutput::Transmit(_, line) => sent.push(line.into_string()),
///         InstanceOutput::Acked(id) => { store.ack(&id); }
///         _ => {}
///     }
/// }
/// assert!(sent[0].starts_with("{\"type\":\"descriptor\""));
/// assert!(sent[1].contains("\"bufferId\":\"b-0-1\""));
/// assert_eq!(sent.len(), 2, "sent once, from the load or the push, never both");
///
/// instance.handle_input(now, conn, b"{\"type\":\"inbound_ack\",\"bufferId\":\"b-0-1\"}\n");
/// while let Some(output) = instance.poll_output() {
///     if let InstanceOutput::Acked(id) = output { store.ack(&id); }
/// }
/// assert_eq!(store.unacked_len(), 0);
/// ```
#[derive(Debug)]
pub struct Instance {
    config: ConnectorConfig,
    connections: BTreeMap<ConnId, ConnectorMachine>,
    next_connection: u64,
    current: Option<ConnId>,
    replay: Replay,
    /// The gateway went idle: buffered only, until the next handshake.
    idle: bool,
    /// `WakeNeeded` was emitted in this idle period.
    woke: bool,
    next_token: u64,
    outputs: VecDeque<InstanceOutput>,
    /// The connection whose input is being decoded, one frame per dry `poll_output`.
    decoding: Option<ConnId>,
}

impl Instance {
    /// An instance with no connection.
    pub fn new(config: ConnectorConfig) -> Self {
        Self {
            config,
            connections: BTreeMap::new(),
            next_connection: 0,
            current: None,
            replay: Replay::default(),
            idle: false,
            woke: false,
            next_token: 0,
            outputs: VecDeque::new(),
            decoding: None,
        }
    }

    // ----- accessors -----------------------------------------------------------------

    /// The connection that replays and receives new deliveries: the latest accepted and
    /// not yet closed.
    pub fn current(&self) -> Option<ConnId> {
        self.current
    }

    /// A connection's machine (for its identities, open requests, ...).
    pub fn connection(&self, conn: ConnId) -> Option<&ConnectorMachine> {
        self.connections.get(&conn)
    }

    /// How many connections are open: the current one, and superseded ones whose sockets
    /// have not reported their end yet.
    pub fn connections(&self) -> usize {
        self.connections.len()
    }

    /// The gateway went idle: deliveries are buffered only, until its next handshake.
    pub fn is_idle(&self) -> bool {
        self.idle
    }

    // ----- outputs -------------------------------------------------------------------

    /// The next output, in the order the instance produced it; `None` when there is none.
    pub fn poll_output(&mut self) -> Option<InstanceOutput> {
        loop {
            if let Some(output) = self.outputs.pop_front() {
                if self.outputs.is_empty() && self.outputs.capacity() > 64 {
                    self.outputs.shrink_to(64);
                }
                return Some(output);
            }
            // Dry: the connection being decoded gives its next output, if any.
            let conn = self.decoding?;
            if !self.collect_one(conn) {
                self.decoding = None;
            }
        }
    }

    // ----- connections ---------------------------------------------------------------

    /// A new, authenticated connection of this gateway instance. It becomes the current
    /// one; the previous current connection is closed as superseded.
    pub fn accept(&mut self, now: Instant) -> ConnId {
        self.flush();
        let conn = ConnId(self.next_connection);
        self.next_connection += 1;
        self.connections
            .insert(conn, ConnectorMachine::new(self.config.clone(), now));
        crate::trace::debug!(conn = conn.0, "connection accepted");
        if let Some(old) = self.current.replace(conn) {
            crate::trace::info!(conn = old.0, by = conn.0, "connection superseded");
            if let Some(machine) = self.connections.get_mut(&old) {
                machine.close(now, CLOSE_SUPERSEDED, REASON_SUPERSEDED);
            }
            self.collect(old);
        }
        // The old window goes back to the tail: the new connection replays from the
        // oldest unacked delivery once it is handshaken.
        self.replay = Replay::default();
        conn
    }

    /// Feeds the payload of one WebSocket message of connection `conn` (borrowed bytes, or
    /// a [`Bytes`](bytes::Bytes) decoded in place: see [`Payload`](crate::codec::Payload)).
    /// Bytes of a connection that has ended are ignored.
    pub fn handle_input(&mut self, now: Instant, conn: ConnId, bytes: impl crate::codec::Payload) {
        self.flush();
        if let Some(machine) = self.connections.get_mut(&conn) {
            machine.handle_input(now, bytes);
            self.decoding = Some(conn);
        }
    }

    /// A Pong came on connection `conn`.
    pub fn on_pong(&mut self, now: Instant, conn: ConnId) {
        self.flush();
        if let Some(machine) = self.connections.get_mut(&conn) {
            machine.on_pong(now);
        }
    }

    /// The earliest deadline of any connection: call
    /// [`handle_timeout`](Self::handle_timeout) when it passes.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.connections
            .values()
            .filter_map(ConnectorMachine::poll_timeout)
            .min()
    }

    /// Acts on every connection's deadlines due at `now` (hello timeout, keepalive,
    /// liveness).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.flush();
        let conns: Vec<ConnId> = self.connections.keys().copied().collect();
        for conn in conns {
            if let Some(machine) = self.connections.get_mut(&conn) {
                machine.handle_timeout(now);
            }
            self.collect(conn);
        }
    }

    /// Connection `conn`'s socket ended. What it had not taken is discarded; its
    /// unacked deliveries stay in the store for the next connection.
    pub fn on_closed(&mut self, now: Instant, conn: ConnId, code: Option<u16>, reason: &str) {
        self.flush();
        let Some(mut machine) = self.connections.remove(&conn) else {
            return;
        };
        crate::trace::debug!(conn = conn.0, code, reason, "connection closed");
        machine.on_closed(now, code, reason);
        self.outputs.retain(|output| match output {
            InstanceOutput::Transmit(c, _) | InstanceOutput::Command(c, _) => *c != conn,
            InstanceOutput::Event(..)
            | InstanceOutput::Load { .. }
            | InstanceOutput::Acked(_)
            | InstanceOutput::WakeNeeded => true,
        });
        if self.current == Some(conn) {
            self.current = None;
            self.replay = Replay::default();
        }
    }

    /// Closes connection `conn` with `code` and `reason`, after its queued frames.
    pub fn close(&mut self, now: Instant, conn: ConnId, code: u16, reason: &str) {
        self.flush();
        if let Some(machine) = self.connections.get_mut(&conn) {
            machine.close(now, code, reason);
            self.collect(conn);
        }
    }

    // ----- application commands ------------------------------------------------------

    /// Answers a `hello` on `conn`, as [`ConnectorMachine::send_descriptor`]. The first
    /// descriptor of the current connection completes its handshake: the gateway is no
    /// longer idle, and the replay of the buffer starts.
    pub fn send_descriptor(
        &mut self,
        now: Instant,
        conn: ConnId,
        descriptor: CapabilityDescriptor,
    ) -> Result<(), ConnectorError> {
        self.flush();
        let machine = self.machine(conn)?;
        machine.send_descriptor(now, descriptor)?;
        self.collect(conn);
        if self.current == Some(conn) && !self.replay.active {
            self.idle = false;
            self.woke = false;
            self.replay.active = true;
            self.load();
        }
        Ok(())
    }

    /// Sends the one `outbound_result` for `request_id` on `conn`, as
    /// [`ConnectorMachine::respond`].
    pub fn respond(
        &mut self,
        now: Instant,
        conn: ConnId,
        request_id: &RequestId,
        result: ActionResult,
    ) -> Result<(), ConnectorError> {
        self.flush();
        self.machine(conn)?.respond(now, request_id, result)?;
        self.collect(conn);
        Ok(())
    }

    /// Delivers a `/stop` for `session_key` to the gateway, on the current connection.
    pub fn send_interrupt(
        &mut self,
        now: Instant,
        session_key: &str,
        chat_id: &str,
    ) -> Result<(), ConnectorError> {
        self.flush();
        let conn = self.current.ok_or(ConnectorError::Closed)?;
        self.machine(conn)?
            .send_interrupt(now, session_key, chat_id)?;
        self.collect(conn);
        Ok(())
    }

    /// Delivers `delivery` live on the current connection, or hands it back to be
    /// buffered when the gateway is idle or not connected and handshaken.
    pub fn push_live(&mut self, now: Instant, delivery: impl Into<Delivery>) -> Live {
        self.flush();
        let delivery = delivery.into();
        let Some(conn) = self.current.filter(|_| self.replay.active && !self.idle) else {
            return Live::Buffer(delivery);
        };
        let Some(machine) = self.connections.get_mut(&conn) else {
            return Live::Buffer(delivery);
        };
        if machine.is_closed() || machine.is_idle() {
            return Live::Buffer(delivery);
        }
        if machine.send_live(now, delivery.clone()).is_err() {
            return Live::Buffer(delivery);
        }
        self.collect(conn);
        Live::Sent
    }

    // ----- internals -----------------------------------------------------------------

    fn machine(&mut self, conn: ConnId) -> Result<&mut ConnectorMachine, ConnectorError> {
        self.connections
            .get_mut(&conn)
            .ok_or(ConnectorError::UnknownConnection(conn))
    }

    /// Moves connection `conn`'s outputs to the instance's, acting on what concerns the
    /// instance: an ack (from any connection) and going idle (on the current one).
    fn collect(&mut self, conn: ConnId) {
        while self.collect_one(conn) {}
    }

    /// Handles every frame handed in and not decoded yet: any other input comes after
    /// them.
    fn flush(&mut self) {
        if let Some(conn) = self.decoding.take() {
            self.collect(conn);
        }
    }

    /// Moves one output of connection `conn` to the instance's; `false` when it has none.
    fn collect_one(&mut self, conn: ConnId) -> bool {
        let Some(output) = self
            .connections
            .get_mut(&conn)
            .and_then(|m| m.poll_output())
        else {
            return false;
        };
        let output = match output {
            Output::Transmit(line) => InstanceOutput::Transmit(conn, line),
            Output::Command(command) => InstanceOutput::Command(conn, command),
            Output::Event(ConnectorEvent::Acked(id)) => {
                if let Some(at) = self.replay.window.iter().position(|w| *w == id) {
                    self.replay.window.remove(at);
                }
                if self.replay.loading.is_some() {
                    // A copy: a long id is a slice of the received line, which state
                    // must not pin.
                    self.replay
                        .acked_while_loading
                        .push(BufferId::from(id.as_str()));
                }
                self.outputs.push_back(InstanceOutput::Acked(id));
                self.load();
                return true;
            }
            Output::Event(ConnectorEvent::WentIdle) => {
                if self.current == Some(conn) {
                    self.idle = true;
                    self.woke = false;
                }
                InstanceOutput::Event(conn, ConnectorEvent::WentIdle)
            }
            Output::Event(event) => InstanceOutput::Event(conn, event),
        };
        self.outputs.push_back(output);
        true
    }
}

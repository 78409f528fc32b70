//! The protocol's invariants, checked in one place for every seat of the harness
//! ([`Pair`](super::Pair), [`SoloGateway`](super::SoloGateway),
//! [`SoloConnector`](super::SoloConnector), [`SoloInstance`](super::SoloInstance)) and for
//! the fuzz op-runners.
//!
//! The checker only *observes*: the seat shows it every output before the output is
//! consumed, tells it what the application did (a `send`, an ack, a push), and calls the
//! step checks after each step. A violation panics with a message that starts with
//! `protocol invariant violated:` — the checker is a test harness, and a panic with the
//! broken promise named is what a failing test or a fuzzer needs (a typed error would only
//! be unwrapped by every caller).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Instant;

use serde_json::Value;

use crate::connector::{
    self, ConnId, ConnectorCommand, ConnectorEvent, DeliveryStore, InstanceOutput,
};
use crate::gateway::{
    self, ConnectionCommand, GatewayConfig, GatewayEvent, GatewayState, RelayMachine,
    RequestFailure,
};
use crate::wire::{BufferId, RequestId};

/// Reports a broken invariant. Panicking is the checker's contract (see the module docs).
#[track_caller]
#[allow(clippy::panic)]
fn violated(what: fmt::Arguments<'_>) -> ! {
    panic!("protocol invariant violated: {what}")
}

/// The gateway's configured bounds, when the seat knows its config.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_in_flight: usize,
    delivery_memory: usize,
    max_frame_len: usize,
    max_identities: usize,
}

/// A buffered delivery the gateway application was handed.
#[derive(Debug)]
struct Handed {
    /// The delivery's content, to tell a redelivery from a reused id.
    content: String,
    /// Deliveries handed over before this one (its place in the gateway's memory).
    order: u64,
    acked: bool,
}

/// What one connector connection (or a lone `ConnectorMachine`, keyed `None`) did.
#[derive(Debug, Default)]
struct ConnLog {
    /// Requests handed to the application and not answered yet.
    open: BTreeSet<String>,
    /// Buffer ids written on this connection.
    sent: BTreeSet<String>,
    closed: bool,
}

/// The invariant checker shared by every seat of the harness and the fuzz op-runners.
///
/// Gateway side (from `gateway::Output`s and the application's calls):
/// - **exactly-once resolution**: every request id `send` returned resolves at most once,
///   no other id resolves, and [`all_resolved`](Self::all_resolved) checks each did; a
///   request failed as not written was never written;
/// - **nothing acked is redelivered to the application**: a buffered delivery the
///   application acked is not handed over again with the same content while the gateway
///   still remembers it (`delivery_memory`);
/// - every frame is one JSON object and exactly one `\n`; no frame is written while the
///   driver holds no open socket; the terminal event is the last output;
/// - after `handle_timeout(now)`, `poll_timeout()` is `None` or later than `now`; a
///   terminal state stays terminal with nothing in flight; the dial generation never
///   decreases; the configured bounds hold.
///
/// Connector side (from `connector::Output`s or `InstanceOutput`s):
/// - an `outbound` is handed to the application at most once while it is open (until its
///   answer is written), and nothing follows a connection's close or abort;
/// - a delivery the gateway acked is never written again, and none is written twice on one
///   connection;
/// - **nothing unacked is lost**: [`unacked_kept`](Self::unacked_kept) checks that every
///   delivery pushed and not acked is still in the store.
///
/// With both sides real ([`Pair`](super::Pair)), across the link: a delivery the connector
/// counts as acked was handed to the gateway application, and is never handed to it again.
#[derive(Debug, Default)]
pub struct Invariants {
    limits: Option<Limits>,
    auto_ack: bool,
    /// Every id `send` returned, with how many responses it got.
    requests: BTreeMap<RequestId, u32>,
    /// Requests whose `outbound` frame was taken to be written.
    written: BTreeSet<RequestId>,
    handed: BTreeMap<BufferId, Handed>,
    handed_count: u64,
    terminal: Option<GatewayState>,
    terminal_event: bool,
    generation: u64,
    writable: bool,
    conns: BTreeMap<Option<ConnId>, ConnLog>,
    pushed: BTreeSet<BufferId>,
    connector_acked: BTreeSet<BufferId>,
    both_sides: bool,
}

impl Invariants {
    /// A checker for a gateway whose config is unknown (its bounds go unchecked).
    pub fn new() -> Self {
        Self::default()
    }

    /// A checker for a gateway built from `config`: its bounds and `auto_ack` are known.
    pub fn for_gateway(config: &GatewayConfig) -> Self {
        Self {
            limits: Some(Limits {
                max_in_flight: config.max_in_flight,
                delivery_memory: config.delivery_memory,
                max_frame_len: config.max_frame_len,
                max_identities: config.max_identities,
            }),
            auto_ack: config.auto_ack,
            ..Self::default()
        }
    }

    /// Also checks the promises that span the link (both machines are real).
    pub fn across_the_link(mut self) -> Self {
        self.both_sides = true;
        self
    }

    // ----- gateway ------------------------------------------------------------------

    /// The application's `send` returned `id`.
    pub fn sent(&mut self, id: &RequestId) {
        let s = id.as_str();
        let hex = s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex {
            violated(format_args!("request id {s} is not 32 lowercase hex"));
        }
        if self.requests.insert(id.clone(), 0).is_some() {
            violated(format_args!("request id {id} reused"));
        }
    }

    /// The application acked `id` and the gateway accepted the ack.
    pub fn app_acked(&mut self, id: &BufferId) {
        if let Some(handed) = self.handed.get_mut(id) {
            handed.acked = true;
        }
    }

    /// The driver opened a socket for the gateway's current dial (`on_connected` while
    /// dialing): frames may be written from now on.
    pub fn socket_opened(&mut self) {
        self.writable = true;
    }

    /// The driver's socket ended (reported closed or dropped): no frame may follow.
    pub fn socket_ended(&mut self) {
        self.writable = false;
    }

    /// One gateway output, before it is consumed.
    pub fn gateway_output(&mut self, output: &gateway::Output) {
        if self.terminal_event {
            violated(format_args!("{output:?} after the terminal event"));
        }
        match output {
            gateway::Output::Transmit(line) => {
                if !self.writable {
                    violated(format_args!("a frame with no open socket: {line}"));
                }
                let frame = one_frame(line.as_bytes());
                if frame["type"] == "outbound" {
                    if let Some(id) = frame["requestId"].as_str() {
                        let id = RequestId::from(id.to_owned());
                        // A request sent on the machine directly, not through the harness,
                        // is known from its frame: its answer is then no violation.
                        self.requests.entry(id.clone()).or_insert(0);
                        self.written.insert(id);
                    }
                }
            }
            gateway::Output::Command(command) => {
                // A close, an abort or a dial ends the socket the driver holds.
                if !matches!(command, ConnectionCommand::Ping) {
                    self.writable = false;
                }
                if let ConnectionCommand::Dial { generation, .. } = command {
                    if self.terminal.is_some() {
                        violated(format_args!("a terminal gateway dialled"));
                    }
                    if *generation <= self.generation {
                        violated(format_args!("dial generation {generation} went back"));
                    }
                    self.generation = *generation;
                }
            }
            gateway::Output::Event(event) => self.gateway_event(event),
        }
    }

    fn gateway_event(&mut self, event: &GatewayEvent) {
        match event {
            GatewayEvent::Response { id, result } => {
                let Some(count) = self.requests.get_mut(id) else {
                    violated(format_args!("a response for {id}, never sent"));
                };
                *count += 1;
                if *count > 1 {
                    violated(format_args!("request {id} resolved twice"));
                }
                match result {
                    Err(RequestFailure::NotWritten) if self.written.contains(id) => {
                        violated(format_args!("{id} was written, yet failed as not written"))
                    }
                    Err(RequestFailure::NotWritten) | Ok(_) => {}
                    Err(failure) if !failure.is_ambiguous() => {
                        violated(format_args!("a request that was sent failed as {failure}"))
                    }
                    Err(_) => {}
                }
            }
            GatewayEvent::Inbound {
                buffer_id: Some(id),
                event: content,
            } => self.handed_over(id, format!("{content:?}")),
            GatewayEvent::Passthrough {
                buffer_id: Some(id),
                forward,
            } => self.handed_over(id, format!("{forward:?}")),
            GatewayEvent::Undeliverable { buffer_id, error } => {
                self.handed_over(buffer_id, format!("{error:?}"))
            }
            GatewayEvent::Closed | GatewayEvent::Revoked { .. } => self.terminal_event = true,
            _ => {}
        }
    }

    fn handed_over(&mut self, id: &BufferId, content: String) {
        if self.both_sides && self.connector_acked.contains(id) {
            violated(format_args!(
                "{id} handed to the gateway application after the connector took its ack"
            ));
        }
        if let Some(before) = self.handed.get(id) {
            // The gateway remembers the last `delivery_memory` deliveries, this one among
            // them while fewer than that came after it: only a redelivery it must still
            // remember is a broken promise (with a memory of 0 it remembers none).
            let remembered = self.limits.is_some_and(|l| {
                self.handed_count - before.order < u64::try_from(l.delivery_memory).unwrap_or(0)
            });
            if before.acked && before.content == content && remembered {
                violated(format_args!("acked delivery {id} handed over again"));
            }
        }
        self.handed_count += 1;
        let handed = Handed {
            content,
            order: self.handed_count,
            acked: self.auto_ack,
        };
        self.handed.insert(id.clone(), handed);
    }

    /// The per-step checks on the gateway, after its outputs were taken.
    pub fn gateway_step(&mut self, gw: &RelayMachine) {
        if let Some(l) = self.limits {
            let bounded = gw.in_flight() <= l.max_in_flight
                && gw.unacked() <= l.delivery_memory
                && gw.buffered_len() <= l.max_frame_len
                && gw.descriptors().count() <= l.max_identities;
            if !bounded {
                violated(format_args!("a configured bound was exceeded"));
            }
        }
        let open = self.requests.values().filter(|&&n| n == 0).count();
        if gw.in_flight() != open {
            violated(format_args!(
                "in_flight {} but {open} requests unresolved",
                gw.in_flight()
            ));
        }
        let state = gw.state();
        if let Some(terminal) = self.terminal {
            if state != terminal {
                violated(format_args!("left the terminal state {terminal:?}"));
            }
        } else if matches!(state, GatewayState::Closed | GatewayState::Revoked) {
            self.terminal = Some(state);
        }
        if self.terminal.is_some() && gw.in_flight() != 0 {
            violated(format_args!("a terminal gateway has requests in flight"));
        }
        // Before its terminal event a closed machine may still wait for its socket.
        if self.terminal_event && gw.poll_timeout().is_some() {
            violated(format_args!(
                "a gateway past its terminal event has a deadline"
            ));
        }
        if gw.generation() < self.generation {
            violated(format_args!("the dial generation went back"));
        }
    }

    /// After `handle_timeout(now)` settled: the next deadline is `None` or later than `now`.
    pub fn after_timeout(&self, now: Instant, next: Option<Instant>) {
        if next.is_some_and(|at| at <= now) {
            violated(format_args!(
                "poll_timeout is not after now after handle_timeout"
            ));
        }
    }

    /// Calls `handle_timeout(now)` on `gw` when nothing is due, which must change nothing
    /// and output nothing.
    pub fn spurious_timeout(&self, now: Instant, gw: &mut RelayMachine) {
        let deadline = gw.poll_timeout();
        if deadline.is_some_and(|at| at <= now) {
            return;
        }
        let state = gw.state();
        gw.handle_timeout(now);
        if let Some(output) = gw.poll_output() {
            violated(format_args!("a spurious handle_timeout output {output:?}"));
        }
        if gw.poll_timeout() != deadline || gw.state() != state {
            violated(format_args!(
                "a spurious handle_timeout changed the machine"
            ));
        }
    }

    /// Every request `send` returned resolved exactly once.
    pub fn all_resolved(&self) {
        for (id, count) in &self.requests {
            if *count != 1 {
                violated(format_args!("request {id} resolved {count} times"));
            }
        }
    }

    // ----- connector ----------------------------------------------------------------

    /// The connector application pushed (persisted) delivery `id`.
    pub fn pushed(&mut self, id: &BufferId) {
        if !self.pushed.insert(id.clone()) {
            violated(format_args!("the store reused buffer id {id}"));
        }
    }

    /// One output of a lone `ConnectorMachine`, before it is consumed.
    pub fn connector_output(&mut self, output: &connector::Output) {
        match output {
            connector::Output::Transmit(t) => self.conn_transmit(None, t.as_bytes()),
            connector::Output::Command(c) => self.conn_command(None, c),
            connector::Output::Event(e) => self.conn_event(None, e),
        }
    }

    /// One output of an `Instance`, before it is consumed.
    pub fn instance_output(&mut self, output: &InstanceOutput) {
        match output {
            InstanceOutput::Transmit(c, t) => self.conn_transmit(Some(*c), t.as_bytes()),
            InstanceOutput::Command(c, command) => self.conn_command(Some(*c), command),
            InstanceOutput::Event(c, e) => self.conn_event(Some(*c), e),
            InstanceOutput::Acked(id) => {
                // Every `inbound_ack` is passed on, a repeated or stray one too: only the
                // store knows whether it was unacked.
                self.connector_acked.insert(id.clone());
                // Nothing unacked is lost: the connector forgets only what the gateway
                // application was handed.
                if self.both_sides && !self.handed.contains_key(id) {
                    violated(format_args!(
                        "{id} acked, yet the gateway application never had it"
                    ));
                }
            }
            InstanceOutput::Load { .. } | InstanceOutput::WakeNeeded => {}
        }
    }

    fn conn_transmit(&mut self, conn: Option<ConnId>, bytes: &[u8]) {
        let frame = one_frame(bytes);
        let acked = &self.connector_acked;
        let log = self.conns.entry(conn).or_default();
        if log.closed {
            violated(format_args!("a frame after {conn:?}'s close"));
        }
        if let Some(id) = frame["bufferId"].as_str() {
            if frame["type"] != "inbound_ack" {
                if acked.contains(&BufferId::from(id)) {
                    violated(format_args!("acked delivery {id} written again"));
                }
                if !log.sent.insert(id.to_owned()) {
                    violated(format_args!("{id} written twice on {conn:?}"));
                }
            }
        }
        // The answer closes the request: a second answer for it would need a new
        // `outbound` (one the machine answers itself never reaches the application).
        if frame["type"] == "outbound_result" {
            if let Some(id) = frame["requestId"].as_str() {
                log.open.remove(id);
            }
        }
    }

    fn conn_command(&mut self, conn: Option<ConnId>, command: &ConnectorCommand) {
        let log = self.conns.entry(conn).or_default();
        if log.closed {
            violated(format_args!("{command:?} after {conn:?}'s close"));
        }
        log.closed |= !matches!(command, ConnectorCommand::Ping);
    }

    fn conn_event(&mut self, conn: Option<ConnId>, event: &ConnectorEvent) {
        if let ConnectorEvent::Outbound { request, .. } = event {
            let request_id = &request.request_id;
            let log = self.conns.entry(conn).or_default();
            if !log.open.insert(String::from(&request_id.0)) {
                violated(format_args!(
                    "outbound {request_id} handed out twice while open"
                ));
            }
        }
    }

    /// A connection ended: its socket is gone (frames on a new one are checked afresh).
    pub fn connection_ended(&mut self, conn: Option<ConnId>) {
        self.conns.entry(conn).or_default().closed = true;
    }

    /// Nothing unacked is lost: every delivery pushed and not acked is still in `store`.
    pub fn unacked_kept(&self, store: &impl DeliveryStore) {
        let kept: BTreeSet<BufferId> = store
            .unacked_after(None, usize::MAX)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        for id in self.pushed.difference(&self.connector_acked) {
            if !kept.contains(id) {
                violated(format_args!("{id} was never acked, yet the store lost it"));
            }
        }
    }
}

/// Checks that `bytes` is one frame: one JSON object and exactly one `\n`, at the end.
fn one_frame(bytes: &[u8]) -> Value {
    let newlines = bytes.iter().filter(|&&b| b == b'\n').count();
    if bytes.last() != Some(&b'\n') || newlines != 1 {
        violated(format_args!(
            "a transmit is not one line: {:?}",
            String::from_utf8_lossy(bytes)
        ));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(value) if value.is_object() => value,
        _ => violated(format_args!(
            "a transmit is not a JSON object: {:?}",
            String::from_utf8_lossy(bytes)
        )),
    }
}

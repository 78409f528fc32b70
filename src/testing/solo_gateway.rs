//! The gateway alone, the connector scripted by the test.

use std::fmt::{Debug, Display};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Invariants, Log, Record};
use crate::gateway::{
    AckError, ConfigError, ConnectionCommand, Diagnostic, DialPurpose, GatewayConfig, GatewayEvent,
    GatewayState, Output, RelayMachine, RequestFailure, SendError,
};
use crate::wire::{ActionResult, BufferId, OutboundAction, RequestId};

/// A [`RelayMachine`] on a virtual clock whose connector the test plays: it feeds lines,
/// reports socket events and calls the application's commands through the seat, which
/// notes each in the transcript, records every output and checks the [`Invariants`] after
/// every step (including a spurious `handle_timeout`, which must do nothing).
///
/// Inputs go through the seat so nothing escapes the checker; read the machine with
/// [`gateway`](Self::gateway).
#[derive(Debug)]
pub struct SoloGateway {
    gateway: RelayMachine,
    /// The virtual clock's origin.
    pub start: Instant,
    /// The virtual clock.
    pub now: Instant,
    /// Every output and the transcript.
    pub log: Log,
    /// The invariants checked after every step.
    pub check: Invariants,
    /// Outputs stay queued in the machine until [`release`](Self::release).
    held: bool,
}

impl SoloGateway {
    /// A gateway built from `config` and `seed`, at a fresh virtual start.
    pub fn new(config: GatewayConfig, seed: u64) -> Result<Self, ConfigError> {
        let check = Invariants::for_gateway(&config);
        let gateway = RelayMachine::new(config, seed)?;
        let start = Instant::now();
        Ok(Self {
            gateway,
            start,
            now: start,
            log: Log::new(start),
            check,
            held: false,
        })
    }

    /// The machine, to read its state.
    pub fn gateway(&self) -> &RelayMachine {
        &self.gateway
    }

    /// The machine's state.
    pub fn state(&self) -> GatewayState {
        self.gateway.state()
    }

    /// Records a free-form line from the test.
    pub fn note(&mut self, what: impl Display) {
        self.log.transcript.note(self.now, "test", what);
    }

    /// The connector writes one line (a newline is appended).
    pub fn feed(&mut self, line: &str) {
        self.log
            .transcript
            .frame(self.now, "conn→gw", line.as_bytes());
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        self.input(&bytes);
    }

    /// The connector writes `bytes` in one message; `label` stands for them.
    pub fn feed_bytes(&mut self, label: &str, bytes: &[u8]) {
        self.log.transcript.note(self.now, "conn→gw", label);
        self.input(bytes);
    }

    /// The connector writes `bytes` in messages of `size` bytes; `label` stands for them.
    pub fn feed_chunks(&mut self, label: &str, bytes: &[u8], size: usize) {
        self.log.transcript.note(self.now, "conn→gw", label);
        for chunk in bytes.chunks(size.max(1)) {
            self.input(chunk);
        }
    }

    fn input(&mut self, bytes: &[u8]) {
        self.gateway.handle_input(self.now, bytes);
        self.settle();
    }

    /// Lets `by` pass, firing every deadline that falls due on the way, in order.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while self.gateway.poll_timeout().is_some_and(|at| at <= target) {
            self.step();
        }
        self.now = target;
    }

    /// Moves the clock to the next deadline and handles it; `false` when none is pending.
    pub fn step(&mut self) -> bool {
        let Some((at, kind)) = self.gateway.next_timer() else {
            return false;
        };
        self.now = self.now.max(at);
        self.log
            .transcript
            .note(self.now, "test", format_args!("timeout {kind:?}"));
        self.gateway.handle_timeout(self.now);
        self.settle();
        true
    }

    /// The driver reports that the current dial succeeded.
    pub fn connected(&mut self) {
        self.log.transcript.note(self.now, "socket", "open");
        if self.gateway.state() == GatewayState::Dialing {
            self.check.socket_opened();
        }
        self.gateway
            .on_connected(self.now, self.gateway.generation());
        self.settle();
    }

    /// The driver answers an abandoned dial late (`generation` is an old one).
    pub fn connected_late(&mut self, generation: u64) {
        self.log.transcript.note(
            self.now,
            "socket",
            format_args!("open (dial #{generation}, abandoned)"),
        );
        self.gateway.on_connected(self.now, generation);
        self.settle();
    }

    /// The socket closed with a close frame.
    pub fn closed(&mut self, code: u16, reason: &str) {
        self.log
            .transcript
            .note(self.now, "socket", format_args!("closed {code} {reason:?}"));
        self.check.socket_ended();
        self.gateway.on_closed(self.now, Some(code), reason);
        self.settle();
    }

    /// The socket dropped without a close frame.
    pub fn dropped(&mut self) {
        self.log.transcript.note(self.now, "socket", "dropped");
        self.check.socket_ended();
        self.gateway.on_closed(self.now, None, "connection reset");
        self.settle();
    }

    /// The dial failed before a WebSocket was open.
    pub fn dial_failed(&mut self, reason: &str) {
        self.log
            .transcript
            .note(self.now, "socket", format_args!("dial failed {reason:?}"));
        self.gateway
            .on_dial_failed(self.now, self.gateway.generation(), reason);
        self.settle();
    }

    /// A Pong came back.
    pub fn pong(&mut self) {
        self.log.transcript.note(self.now, "socket", "pong");
        self.gateway.on_pong(self.now);
        self.settle();
    }

    /// From now on the seat takes no output (a driver busy elsewhere): the inputs and
    /// commands that follow all happen in one pass, until [`release`](Self::release).
    pub fn hold(&mut self) {
        self.held = true;
    }

    /// Takes every output queued since [`hold`](Self::hold), in order, checking each.
    pub fn release(&mut self) {
        self.held = false;
        self.settle();
    }

    /// Runs an application command, notes it with its return value, and settles.
    /// (`send` and `ack_inbound` go through [`send`](Self::send) and [`ack`](Self::ack),
    /// so the checker learns their results.)
    pub fn cmd<R: Debug>(
        &mut self,
        label: &str,
        f: impl FnOnce(&mut RelayMachine, Instant) -> R,
    ) -> R {
        let r = f(&mut self.gateway, self.now);
        self.log
            .transcript
            .note(self.now, "app", format_args!("{label} → {r:?}"));
        self.settle();
        r
    }

    /// Runs several inputs in one pass with no output taken in between (a driver busy
    /// elsewhere), notes `label`, then settles. `ends_socket`: the pass reports that the
    /// socket ended.
    pub fn batch(
        &mut self,
        label: &str,
        ends_socket: bool,
        f: impl FnOnce(&mut RelayMachine, Instant),
    ) {
        f(&mut self.gateway, self.now);
        self.log.transcript.note(self.now, "app", label);
        if ends_socket {
            self.check.socket_ended();
        }
        self.settle();
    }

    /// The application sends `action` (to `platform`, if given).
    pub fn send(
        &mut self,
        action: impl Into<OutboundAction>,
        platform: Option<&str>,
    ) -> Result<RequestId, SendError> {
        let action = action.into();
        let mut label = format!("send op={}", action.op());
        if let Some(chat) = action.chat_id() {
            label.push_str(&format!(" chat={chat}"));
        }
        if let Some(p) = platform {
            label.push_str(&format!(" platform={p}"));
        }
        let r = self.gateway.send(self.now, action, platform);
        if let Ok(id) = &r {
            self.check.sent(id);
        }
        self.log
            .transcript
            .note(self.now, "app", format_args!("{label} → {r:?}"));
        self.settle();
        r
    }

    /// The application acks buffered delivery `buffer_id`.
    pub fn ack(&mut self, buffer_id: &str) -> Result<(), AckError> {
        let id = BufferId::from(buffer_id);
        let r = self.gateway.ack_inbound(self.now, &id);
        if r.is_ok() {
            self.check.app_acked(&id);
        }
        self.log.transcript.note(
            self.now,
            "app",
            format_args!("ack_inbound {buffer_id} → {r:?}"),
        );
        self.settle();
        r
    }

    /// The application connects.
    pub fn connect(&mut self) -> Result<(), SendError> {
        self.cmd("connect", |m, now| m.connect(now))
    }

    /// The application asks the connector to go idle.
    pub fn go_idle(&mut self) -> Result<(), SendError> {
        self.cmd("go_idle", |m, now| m.go_idle(now))
    }

    /// The application asks the connector to go dormant.
    pub fn go_dormant(&mut self) -> Result<(), SendError> {
        self.cmd("go_dormant", |m, now| m.go_dormant(now))
    }

    /// The application disconnects, with a drain `budget` (else the configured one).
    pub fn disconnect(&mut self, budget: Option<Duration>) {
        let label = match budget {
            Some(b) => format!("disconnect budget={}ms", b.as_millis()),
            None => "disconnect".to_owned(),
        };
        self.cmd(&label, |m, now| m.disconnect(now, budget));
    }

    /// The application holds the next redial.
    pub fn hold_redial(&mut self) {
        self.cmd("hold_redial", |m, now| m.hold_redial(now));
    }

    /// The application releases a held redial.
    pub fn release_redial(&mut self) {
        self.cmd("release_redial", |m, now| m.release_redial(now));
    }

    // ----- queries over the recorded outputs -----------------------------------------

    /// A position in the output log, for the `*_since` queries.
    pub fn mark(&self) -> usize {
        self.log.gateway.len()
    }

    /// The outputs since `mark`.
    pub fn since(&self, mark: usize) -> &[Record<Output>] {
        &self.log.gateway[mark.min(self.log.gateway.len())..]
    }

    fn picked<T>(&self, mark: usize, pick: impl Fn(u64, &Output) -> Option<T>) -> Vec<T> {
        self.since(mark)
            .iter()
            .filter_map(|r| pick(r.ms, &r.output))
            .collect()
    }

    /// The events since `mark`.
    pub fn events_since(&self, mark: usize) -> Vec<GatewayEvent> {
        self.picked(mark, |_, o| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
    }

    /// The frames written since `mark`, parsed.
    pub fn frames_since(&self, mark: usize) -> Vec<Value> {
        self.picked(mark, |_, o| match o {
            Output::Transmit(t) => serde_json::from_str(t.as_str()).ok(),
            _ => None,
        })
    }

    /// The frames of type `kind` written since `mark`.
    pub fn frames_of(&self, mark: usize, kind: &str) -> Vec<Value> {
        let mut frames = self.frames_since(mark);
        frames.retain(|f| f["type"] == kind);
        frames
    }

    /// The socket commands since `mark`.
    pub fn commands_since(&self, mark: usize) -> Vec<ConnectionCommand> {
        self.picked(mark, |_, o| match o {
            Output::Command(c) => Some(c.clone()),
            _ => None,
        })
    }

    /// The dials asked for since `mark`: (ms since the start, generation, purpose).
    pub fn dials_since(&self, mark: usize) -> Vec<(u64, u64, DialPurpose)> {
        self.picked(mark, |ms, o| match o {
            Output::Command(ConnectionCommand::Dial {
                generation,
                purpose,
            }) => Some((ms, *generation, *purpose)),
            _ => None,
        })
    }

    /// The closes asked for since `mark`: (code, reason).
    pub fn closes_since(&self, mark: usize) -> Vec<(u16, String)> {
        self.picked(mark, |_, o| match o {
            Output::Command(ConnectionCommand::Close { code, reason }) => {
                Some((*code, reason.clone()))
            }
            _ => None,
        })
    }

    /// Every resolution of `id` so far (the checker sees to it that there is at most one).
    pub fn responses(&self, id: &RequestId) -> Vec<Result<ActionResult, RequestFailure>> {
        self.picked(0, |_, o| match o {
            Output::Event(GatewayEvent::Response { id: rid, result }) if rid == id => {
                Some(result.clone().map(|r| *r))
            }
            _ => None,
        })
    }

    /// The diagnostics since `mark`.
    pub fn diagnostics_since(&self, mark: usize) -> Vec<Diagnostic> {
        self.picked(mark, |_, o| match o {
            Output::Event(GatewayEvent::Diagnostic(d)) => Some(d.clone()),
            _ => None,
        })
    }

    /// The waits announced by `Reconnecting` events since `mark`, in ms from the event.
    pub fn waits_since(&self, mark: usize) -> Vec<(u64, DialPurpose)> {
        self.picked(mark, |ms, o| match o {
            Output::Event(GatewayEvent::Reconnecting { at, purpose }) => {
                Some((self.log.ms(*at).saturating_sub(ms), *purpose))
            }
            _ => None,
        })
    }

    /// Takes every output, records and checks each, then checks the machine.
    fn settle(&mut self) {
        if self.held {
            return;
        }
        while let Some(output) = self.gateway.poll_output() {
            self.check.gateway_output(&output);
            self.log.gateway_output(self.now, &output);
        }
        self.check.gateway_step(&self.gateway);
        // The machine has had its chance to act at `now`: nothing may be due.
        self.check
            .after_timeout(self.now, self.gateway.poll_timeout());
        self.check.spurious_timeout(self.now, &mut self.gateway);
    }
}

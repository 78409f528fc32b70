//! The gateway alone, the connector scripted by the test.

use std::fmt::{Debug, Display};
use std::time::{Duration, Instant};

use super::{Invariants, Log};
use crate::gateway::{AckError, ConfigError, GatewayConfig, GatewayState, RelayMachine, SendError};
use crate::wire::{BufferId, OutboundAction, RequestId};

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

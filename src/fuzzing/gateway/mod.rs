//! The `gateway_ops` target: arbitrary sequences of inputs, commands and time advances on
//! a [`RelayMachine`], driven the way a driver would, with the machine's promises checked
//! after every step by the test harness's one checker ([`Invariants`]).

use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};

mod peer;

use peer::PeerFrame;

use super::transmitted_frame;
use crate::gateway::{
    BackoffConfig, GatewayConfig, GatewayEvent, GatewayState, Output, RelayMachine,
};
use crate::testing::Invariants;
use crate::wire::{BufferId, FollowUpAction, Identity, OutboundAction, RequestId, SendAction};

const PLATFORMS: [&str; 3] = ["discord", "telegram", "slack"];

/// Longest op sequence run; keeps one input fast.
const MAX_OPS: usize = 256;

#[derive(Debug, Arbitrary)]
struct Setup {
    identities: u8,
    max_in_flight: u8,
    delivery_memory: u8,
    max_frame_len: u16,
    route_capacity: u8,
    auto_ack: bool,
    reconnect: bool,
    seed: u64,
    handshake_ms: u16,
    request_ms: u16,
    go_idle_ms: u16,
    budget_ms: u16,
    base_ms: u16,
    cap_ms: u16,
    stable_ms: u16,
    dormant_ms: u16,
    hold_ms: u16,
    // Appended, so the committed corpus still decodes its first fields as before.
    ping_ms: Option<u16>,
    liveness_ms: Option<u16>,
    dial_ms: Option<u16>,
    close_ms: Option<u16>,
    retry_first_dial: bool,
}

impl Setup {
    fn config(&self) -> GatewayConfig {
        let ms = |v: u16| Duration::from_millis(u64::from(v));
        let identities = PLATFORMS
            .iter()
            .take(usize::from(self.identities % 4))
            .enumerate()
            .map(|(i, p)| {
                Identity::new(
                    *p,
                    if i == 1 {
                        String::new()
                    } else {
                        format!("{i}")
                    },
                )
            })
            .collect();
        GatewayConfig {
            identities,
            handshake_timeout: ms(self.handshake_ms),
            request_timeout: ms(self.request_ms),
            go_idle_timeout: ms(self.go_idle_ms),
            disconnect_budget: ms(self.budget_ms),
            max_in_flight: usize::from(self.max_in_flight % 8) + 1,
            max_frame_len: usize::from(self.max_frame_len % 2048) + 1,
            // At least the three identities a setup can configure.
            max_identities: 64,
            ping_interval: self.ping_ms.map(|v| ms(v.max(1))),
            liveness_timeout: self.liveness_ms.map(|v| ms(v.max(1))),
            dial_timeout: self.dial_ms.map(|v| ms(v.max(1))),
            close_timeout: self.close_ms.map(|v| ms(v.max(1))),
            retry_first_dial: self.retry_first_dial,
            delivery_memory: usize::from(self.delivery_memory % 8),
            route_capacity: usize::from(self.route_capacity % 8),
            auto_ack: self.auto_ack,
            reconnect: self.reconnect,
            backoff: BackoffConfig {
                base: ms(self.base_ms),
                cap: ms(self.cap_ms),
                stable_after: ms(self.stable_ms),
                dormant_cadence: ms(self.dormant_ms),
                hold_cap: ms(self.hold_ms),
            },
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Close {
    None,
    Normal,
    Unauthorized,
    UnauthorizedExpired,
    Other(u16),
}

#[derive(Debug, Arbitrary)]
enum Op {
    Connect,
    Connected,
    /// The answer to an earlier (abandoned) dial.
    StaleConnected,
    DialFailed,
    Pong,
    Closed(Close),
    /// Frames from the connector, written as one stream and cut at `cut`.
    Peer(Vec<PeerFrame>, u16),
    /// Raw bytes from the connector.
    Raw(Vec<u8>),
    AdvanceMs(u16),
    AdvanceSecs(u8),
    /// Jump to the next deadline, as a driver's timer would.
    ToDeadline,
    Send {
        chat: u8,
        platform: Option<u8>,
        follow_up: bool,
    },
    Interrupt,
    Ack(u8),
    GoIdle,
    GoDormant,
    Hold,
    Release,
    Disconnect(Option<u16>),
}

/// What the runner has seen, to pick its inputs from, and the one invariant checker.
struct Model {
    now: Instant,
    /// The request ids `send` returned, in send order, for peer frames that refer to
    /// requests by index.
    sent: Vec<RequestId>,
    deliveries: Vec<BufferId>,
    check: Invariants,
}

/// Operation sequences on a [`RelayMachine`].
///
/// Input: a config (small limits, short timers, any backoff), then up to 256 operations:
/// every input and command of the machine, peer frames (valid, invalid and unexpected, cut
/// anywhere), raw bytes, and time advances. Outputs are drained after each operation.
///
/// Invariants, after every operation: every promise of [`Invariants`] (exactly-once
/// resolution, nothing acked handed over again, frames only on an open socket, the bounds,
/// terminal states, the dial generation), and besides:
/// - every transmit is a fixed point of decode → encode;
/// - after `handle_timeout(now)`, `poll_timeout()` is `None` or later than `now` unless the
///   call queued output, and a few more calls at the same `now` settle it; a call before
///   the deadline does nothing at all;
/// - `Closed` and `Revoked` refuse `connect` and `send`; a failed `send` changes nothing;
///   a stale dial's answer changes nothing.
///
/// At the end, `disconnect` and the drain deadline resolve every request exactly once and
/// leave the machine terminal with no deadline.
pub fn gateway_ops(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(setup) = Setup::arbitrary(&mut u) else {
        return;
    };
    let config = setup.config();
    let Ok(mut gw) = RelayMachine::new(config.clone(), setup.seed) else {
        panic!("a valid config was refused: {config:?}");
    };
    // The virtual clock's origin; only differences from it matter.
    let start = Instant::now();
    let mut model = Model {
        now: start,
        sent: Vec::new(),
        deliveries: Vec::new(),
        check: Invariants::for_gateway(&config),
    };
    for _ in 0..MAX_OPS {
        let Ok(op) = Op::arbitrary(&mut u) else {
            break;
        };
        model.apply(&mut gw, op);
    }
    model.finish(&mut gw);
}

impl Model {
    fn apply(&mut self, gw: &mut RelayMachine, op: Op) {
        let now = self.now;
        match op {
            Op::Connect => {
                let terminal = is_terminal(gw);
                let result = gw.connect(now);
                if terminal {
                    assert!(result.is_err(), "connect succeeded on a terminal machine");
                }
            }
            Op::Connected => {
                if gw.state() == GatewayState::Dialing {
                    self.check.socket_opened();
                }
                gw.on_connected(now, gw.generation());
            }
            Op::StaleConnected => {
                let state = gw.state();
                gw.on_connected(now, gw.generation().wrapping_sub(1));
                assert_eq!(gw.state(), state, "a stale dial's answer changed the state");
            }
            Op::Pong => gw.on_pong(now),
            Op::DialFailed => gw.on_dial_failed(now, gw.generation(), "refused"),
            Op::Closed(close) => {
                let (code, reason) = match close {
                    Close::None => (None, "reset"),
                    Close::Normal => (Some(1000), "bye"),
                    Close::Unauthorized => (Some(4401), "unauthorized"),
                    Close::UnauthorizedExpired => (Some(4401), "expired"),
                    Close::Other(code) => (Some(code), ""),
                };
                self.check.socket_ended();
                gw.on_closed(now, code, reason);
            }
            Op::Peer(frames, cut) => {
                let mut stream = Vec::new();
                for frame in frames.into_iter().take(16) {
                    self.write_peer_frame(frame, &mut stream);
                }
                let at = usize::from(cut).min(stream.len());
                let (head, tail) = stream.split_at(at);
                gw.handle_input(now, head);
                self.drain(gw);
                gw.handle_input(now, tail);
            }
            Op::Raw(bytes) => gw.handle_input(now, &bytes),
            Op::AdvanceMs(ms) => self.advance(gw, Duration::from_millis(u64::from(ms))),
            Op::AdvanceSecs(s) => self.advance(gw, Duration::from_secs(u64::from(s))),
            Op::ToDeadline => {
                if let Some(at) = gw.poll_timeout() {
                    let by = at.saturating_duration_since(now);
                    self.advance(gw, by);
                }
            }
            Op::Send {
                chat,
                platform,
                follow_up,
            } => {
                let action = if follow_up {
                    OutboundAction::FollowUp(FollowUpAction {
                        session_key: "s".into(),
                        kind: "discord.interaction_token".into(),
                        content: "hi".into(),
                        metadata: Default::default(),
                    })
                } else {
                    OutboundAction::Send(SendAction {
                        chat_id: format!("c{}", chat % 8).into(),
                        content: "hi".into(),
                        ..Default::default()
                    })
                };
                let platform = platform.map(|p| PLATFORMS[usize::from(p) % PLATFORMS.len()]);
                let in_flight = gw.in_flight();
                let terminal = is_terminal(gw);
                match gw.send(now, action, platform) {
                    Ok(id) => {
                        assert!(!terminal, "send succeeded on a terminal machine");
                        self.check.sent(&id);
                        self.sent.push(id);
                        assert_eq!(gw.in_flight(), in_flight + 1);
                    }
                    Err(_) => {
                        // A refusal (SendError) wrote nothing, by its type.
                        assert_eq!(gw.in_flight(), in_flight, "a failed send changed in_flight");
                    }
                }
            }
            Op::Interrupt => {
                let _ = gw.interrupt(now, "s", Some("stop"));
            }
            Op::Ack(which) => {
                let id = self
                    .deliveries
                    .get(usize::from(which))
                    .cloned()
                    .unwrap_or_else(|| BufferId(format!("b-{which}").into()));
                if gw.ack_inbound(now, &id).is_ok() {
                    self.check.app_acked(&id);
                }
            }
            Op::GoIdle => {
                let _ = gw.go_idle(now);
            }
            Op::GoDormant => {
                let _ = gw.go_dormant(now);
            }
            Op::Hold => gw.hold_redial(now),
            Op::Release => gw.release_redial(now),
            Op::Disconnect(budget) => {
                gw.disconnect(now, budget.map(|ms| Duration::from_millis(u64::from(ms))));
            }
        }
        self.drain(gw);
    }

    /// Moves the clock forward by `by` and fires what is due, as a driver does.
    fn advance(&mut self, gw: &mut RelayMachine, by: Duration) {
        self.now += by;
        self.timeout(gw);
    }

    /// `handle_timeout(now)` with its promises checked.
    fn timeout(&mut self, gw: &mut RelayMachine) {
        let now = self.now;
        let due = gw.poll_timeout().is_some_and(|at| at <= now);
        if !due {
            self.check.spurious_timeout(now, gw);
            return;
        }
        // Each round either settles the deadlines or produces output (a dial, an event):
        // a driver that loops on handle_timeout/drain never spins without progress.
        for _ in 0..8 {
            gw.handle_timeout(now);
            let output = self.drain(gw);
            match gw.poll_timeout() {
                Some(at) if at <= now => {
                    assert!(
                        output,
                        "deadline {at:?} <= now after handle_timeout, no output"
                    );
                }
                next => return self.check.after_timeout(now, next),
            }
        }
        panic!("handle_timeout at one instant did not settle in 8 rounds");
    }

    /// Drains every output, checking each; `true` when there was any.
    fn drain(&mut self, gw: &mut RelayMachine) -> bool {
        let mut any = false;
        while let Some(output) = gw.poll_output() {
            any = true;
            self.check.gateway_output(&output);
            match output {
                Output::Transmit(line) => {
                    transmitted_frame(line.as_bytes());
                }
                Output::Event(
                    GatewayEvent::Inbound {
                        buffer_id: Some(id),
                        ..
                    }
                    | GatewayEvent::Passthrough {
                        buffer_id: Some(id),
                        ..
                    }
                    | GatewayEvent::Undeliverable { buffer_id: id, .. },
                ) => self.deliveries.push(id),
                _ => {}
            }
        }
        self.check.gateway_step(gw);
        any
    }

    /// Disconnect and run the clock out: every request must have resolved exactly once.
    fn finish(mut self, gw: &mut RelayMachine) {
        gw.disconnect(self.now, None);
        self.drain(gw);
        // Keepalive pings (as often as every millisecond here) go on while the drain
        // grace (up to 5 s) and the close wait run out: allow for every one of them.
        for _ in 0..20_000 {
            let Some(at) = gw.poll_timeout() else { break };
            self.now = self.now.max(at);
            self.timeout(gw);
        }
        assert!(
            is_terminal(gw),
            "disconnect did not end in a terminal state: {:?}",
            gw.state()
        );
        self.check.all_resolved();
        assert_eq!(gw.poll_timeout(), None);
    }
}

fn is_terminal(gw: &RelayMachine) -> bool {
    matches!(gw.state(), GatewayState::Closed | GatewayState::Revoked)
}

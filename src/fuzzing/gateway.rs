//! The `gateway_ops` target: arbitrary sequences of inputs, commands and time advances on
//! a [`RelayMachine`], driven the way a driver would, with the machine's promises checked
//! after every step.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};

use super::transmitted_frame;
use crate::codec::encode;
use crate::gateway::{
    BackoffConfig, ConnectionCommand, GatewayConfig, GatewayEvent, GatewayState, Output,
    RelayMachine, RequestFailure,
};
use crate::wire::{
    ActionResult, BufferId, CapabilityDescriptor, Descriptor, FollowUpAction, Frame, Identity,
    Inbound, InboundAck, InterruptInbound, MessageEvent, Outbound, OutboundAction, OutboundResult,
    PassthroughForward, PassthroughFrame, RequestId, SendAction, SessionSource,
};

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

#[derive(Debug, Arbitrary)]
enum PeerFrame {
    Descriptor(u8),
    /// A result for one of the requests sent (by index), or for a made-up id.
    Result {
        request: u8,
        success: bool,
    },
    UnknownResult(String),
    /// An `outbound_result` that names a sent request but does not decode.
    BadResult(u8),
    Inbound {
        chat: u8,
        buffer: Option<u8>,
    },
    /// An `inbound` that names a delivery but does not decode.
    BadInbound(u8),
    Passthrough {
        buffer: Option<u8>,
        body: String,
    },
    GoingIdleAck,
    InterruptInbound,
    /// A frame a connector never sends.
    Unexpected(u8),
    Blank,
    Garbage(Vec<u8>),
}

/// What the harness has seen, to check the machine against.
struct Model {
    config: GatewayConfig,
    now: Instant,
    /// Every id `send` returned, with how many `Response`s it got.
    requests: BTreeMap<RequestId, u32>,
    /// In send order, for peer frames that refer to requests by index.
    sent: Vec<RequestId>,
    deliveries: Vec<BufferId>,
    last_generation: u64,
    terminal: Option<GatewayState>,
    /// The driver holds an open socket that no `Close` or report ended: frames may come.
    writable: bool,
    /// Requests whose `outbound` the driver took to write.
    written: BTreeSet<RequestId>,
    /// The terminal event was taken: nothing may follow it.
    terminal_event: bool,
}

/// Operation sequences on a [`RelayMachine`].
///
/// Input: a config (small limits, short timers, any backoff), then up to 256 operations:
/// every input and command of the machine, peer frames (valid, invalid and unexpected, cut
/// anywhere), raw bytes, and time advances. Outputs are drained after each operation.
///
/// Invariants, after every operation:
/// - each id `send` returned resolves at most once, and only ids it returned resolve; a
///   failure after `send` succeeded is always ambiguous, an immediate `send` failure never;
/// - `in_flight() <= max_in_flight`, `unacked() <= delivery_memory`,
///   `buffered_len() <= max_frame_len`;
/// - every transmit is one well-formed frame;
/// - after `handle_timeout(now)`, `poll_timeout()` is `None` or later than `now` unless the
///   call queued output, and a few more calls at the same `now` settle it; a call before
///   the deadline does nothing at all;
/// - dial generations increase; `Closed` and `Revoked` stay as they are, dial nothing, and
///   refuse `connect` and `send`.
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
        config,
        now: start,
        requests: BTreeMap::new(),
        sent: Vec::new(),
        deliveries: Vec::new(),
        last_generation: 0,
        terminal: None,
        writable: false,
        written: BTreeSet::new(),
        terminal_event: false,
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
                let result = gw.connect(now);
                if self.terminal.is_some() {
                    assert!(result.is_err(), "connect succeeded on a terminal machine");
                }
            }
            Op::Connected => {
                let dialing = gw.state() == GatewayState::Dialing;
                gw.on_connected(now, gw.generation());
                self.writable |= dialing;
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
                gw.on_closed(now, code, reason);
                self.writable = false;
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
                        session_key: "s".to_owned(),
                        kind: "discord.interaction_token".to_owned(),
                        content: "hi".to_owned(),
                        metadata: Default::default(),
                    })
                } else {
                    OutboundAction::Send(SendAction {
                        chat_id: format!("c{}", chat % 8),
                        content: "hi".to_owned(),
                        ..Default::default()
                    })
                };
                let platform = platform.map(|p| PLATFORMS[usize::from(p) % PLATFORMS.len()]);
                let in_flight = gw.in_flight();
                match gw.send(now, action, platform) {
                    Ok(id) => {
                        assert!(
                            self.terminal.is_none(),
                            "send succeeded on a terminal machine"
                        );
                        let fresh = self.requests.insert(id.clone(), 0).is_none();
                        assert!(fresh, "request id {id} reused");
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
                    .unwrap_or_else(|| BufferId(format!("b-{which}")));
                let _ = gw.ack_inbound(now, &id);
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

    fn write_peer_frame(&self, frame: PeerFrame, out: &mut Vec<u8>) {
        let request = |i: u8| {
            self.sent
                .get(usize::from(i))
                .or(self.sent.last())
                .cloned()
                .unwrap_or_else(|| RequestId(format!("r{i}")))
        };
        let buffer = |i: u8| BufferId(format!("b-{}", i % 16));
        let frame = match frame {
            PeerFrame::Descriptor(p) => {
                // Mostly announced platforms; sometimes one of 64 invented ones, enough to
                // reach the bound on descriptors per connection.
                let platform = match p.checked_sub(192) {
                    Some(n) => format!("p{n}"),
                    None => PLATFORMS[usize::from(p) % PLATFORMS.len()].to_owned(),
                };
                Frame::Descriptor(Descriptor {
                    descriptor: CapabilityDescriptor::new(platform, "P"),
                })
            }
            PeerFrame::Result {
                request: i,
                success,
            } => Frame::OutboundResult(OutboundResult {
                request_id: request(i),
                result: if success {
                    ActionResult::ok_with_message("m")
                } else {
                    ActionResult::failure("no", None)
                },
            }),
            PeerFrame::UnknownResult(id) => Frame::OutboundResult(OutboundResult {
                request_id: RequestId(id),
                result: ActionResult::ok(),
            }),
            PeerFrame::BadResult(i) => {
                let line = serde_json::json!({
                    "type": "outbound_result", "requestId": request(i).0, "result": 7,
                });
                out.extend_from_slice(line.to_string().as_bytes());
                out.push(b'\n');
                return;
            }
            PeerFrame::Inbound { chat, buffer: b } => {
                let mut source = SessionSource::new(
                    PLATFORMS[usize::from(chat) % PLATFORMS.len()],
                    "group",
                    format!("c{}", chat % 8),
                );
                source.scope_id = Some("g".into());
                Frame::from(Inbound {
                    event: MessageEvent {
                        text: "hi".into(),
                        source,
                        ..Default::default()
                    },
                    buffer_id: b.map(buffer),
                })
            }
            PeerFrame::BadInbound(b) => {
                let line = serde_json::json!({
                    "type": "inbound", "bufferId": buffer(b).0, "event": [],
                });
                out.extend_from_slice(line.to_string().as_bytes());
                out.push(b'\n');
                return;
            }
            PeerFrame::Passthrough { buffer: b, body } => {
                let mut forward = PassthroughForward::new("discord", bytes::Bytes::new());
                forward.body =
                    crate::wire::decode_base64(&body).map_err(|reason| crate::wire::BodyError {
                        reason,
                        encoded: body,
                    });
                Frame::PassthroughForward(PassthroughFrame {
                    forward,
                    buffer_id: b.map(buffer),
                })
            }
            PeerFrame::GoingIdleAck => Frame::GoingIdleAck,
            PeerFrame::InterruptInbound => Frame::InterruptInbound(InterruptInbound {
                session_key: "s".to_owned(),
                chat_id: "c0".to_owned(),
            }),
            PeerFrame::Unexpected(kind) => match kind % 5 {
                0 => Frame::Hello(Identity::default()),
                1 => Frame::InboundAck(InboundAck {
                    buffer_id: buffer(kind),
                }),
                2 => Frame::GoingIdle,
                3 => Frame::Outbound(Outbound {
                    request_id: request(kind),
                    action: SendAction::default().into(),
                    platform: None,
                    bot_id: None,
                }),
                _ => Frame::Unknown(crate::wire::UnknownFrame {
                    frame_type: "future".to_owned(),
                    fields: Default::default(),
                }),
            },
            PeerFrame::Blank => {
                out.extend_from_slice(b" \r\n");
                return;
            }
            PeerFrame::Garbage(bytes) => {
                out.extend_from_slice(&bytes);
                out.push(b'\n');
                return;
            }
        };
        out.extend_from_slice(&encode(&frame));
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
            let before = gw.poll_timeout();
            gw.handle_timeout(now);
            assert!(
                !self.drain(gw),
                "handle_timeout before the deadline produced output"
            );
            assert_eq!(
                gw.poll_timeout(),
                before,
                "a spurious handle_timeout moved a deadline"
            );
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
                _ => return,
            }
        }
        panic!("handle_timeout at one instant did not settle in 8 rounds");
    }

    /// Drains every output, checking each; `true` when there was any.
    fn drain(&mut self, gw: &mut RelayMachine) -> bool {
        let mut any = false;
        while let Some(output) = gw.poll_output() {
            any = true;
            assert!(!self.terminal_event, "{output:?} after the terminal event");
            match output {
                Output::Command(command) => self.on_command(command),
                Output::Transmit(line) => {
                    assert!(
                        self.writable,
                        "a frame polled after its connection's close or the next dial"
                    );
                    if let Frame::Outbound(outbound) = transmitted_frame(line.as_bytes()) {
                        self.written.insert(outbound.request_id);
                    }
                }
                Output::Event(event) => self.on_event(event),
            }
        }
        self.check(gw);
        any
    }

    fn on_command(&mut self, command: ConnectionCommand) {
        // A close, an abort or a dial for the next socket ends the one the driver holds.
        if !matches!(command, ConnectionCommand::Ping) {
            self.writable = false;
        }
        if let ConnectionCommand::Dial { generation, .. } = command {
            assert!(self.terminal.is_none(), "a terminal machine dialled");
            assert!(
                generation > self.last_generation,
                "dial generation went back"
            );
            self.last_generation = generation;
        }
    }

    fn on_event(&mut self, event: GatewayEvent) {
        match event {
            GatewayEvent::Response { id, result } => {
                let count = self
                    .requests
                    .get_mut(&id)
                    .unwrap_or_else(|| panic!("a response for {id}, never sent"));
                *count += 1;
                assert_eq!(*count, 1, "request {id} resolved twice");
                match result {
                    Err(RequestFailure::NotWritten) => assert!(
                        !self.written.contains(&id),
                        "{id} was written, yet failed as not written"
                    ),
                    Err(failure) => assert!(
                        failure.is_ambiguous(),
                        "a request that was sent failed as {failure}"
                    ),
                    Ok(_) => {}
                }
            }
            GatewayEvent::Inbound {
                buffer_id: Some(id),
                ..
            }
            | GatewayEvent::Passthrough {
                buffer_id: Some(id),
                ..
            }
            | GatewayEvent::Undeliverable { buffer_id: id, .. } => self.deliveries.push(id),
            GatewayEvent::Closed | GatewayEvent::Revoked { .. } => self.terminal_event = true,
            _ => {}
        }
    }

    fn check(&mut self, gw: &RelayMachine) {
        assert!(
            gw.in_flight() <= self.config.max_in_flight,
            "in_flight over the limit"
        );
        assert!(
            gw.unacked() <= self.config.delivery_memory,
            "unacked over the limit"
        );
        assert!(
            gw.buffered_len() <= self.config.max_frame_len,
            "input buffer over the limit"
        );
        assert!(
            gw.descriptors().count() <= self.config.max_identities,
            "descriptors over the limit"
        );
        let unresolved = self.requests.values().filter(|&&n| n == 0).count();
        assert_eq!(
            gw.in_flight(),
            unresolved,
            "in_flight disagrees with open requests"
        );
        let state = gw.state();
        if let Some(terminal) = self.terminal {
            assert_eq!(state, terminal, "left a terminal state");
        } else if matches!(state, GatewayState::Closed | GatewayState::Revoked) {
            self.terminal = Some(state);
        }
        if self.terminal.is_some() {
            assert_eq!(
                gw.in_flight(),
                0,
                "a terminal machine has requests in flight"
            );
        }
        if self.terminal_event {
            // Before its terminal event a closed machine may still wait for its socket.
            assert_eq!(gw.poll_timeout(), None, "a terminal machine has a deadline");
        }
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
        let state = gw.state();
        assert!(
            matches!(state, GatewayState::Closed | GatewayState::Revoked),
            "disconnect did not end in a terminal state: {state:?}"
        );
        for (id, count) in &self.requests {
            assert_eq!(*count, 1, "request {id} resolved {count} times");
        }
        assert_eq!(gw.poll_timeout(), None);
    }
}

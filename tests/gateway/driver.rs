#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(clippy::wildcard_enum_match_arm)]
//! A scenario driver for [`RelayMachine`] on a virtual clock.
//!
//! The driver plays both the socket driver and the connector: it feeds the machine lines,
//! socket reports and commands, lets virtual time pass (firing every deadline on the way,
//! as a real driver would), and records everything in a [`Transcript`] drained with
//! [`Transcript::drain_gateway`], which renders the typed outputs and hands them back for
//! the tests' explicit assertions.
//!
//! The driver also runs a *twin*: a second machine with the same config and seed that gets
//! exactly the same inputs. Its outputs and observables must equal the machine's after
//! every step, so determinism (same seed, same inputs, same outputs) is checked
//! continuously.
//!
//! After every step the driver checks the invariants that hold for every scenario:
//! - `poll_timeout()` is `None` or later than `now` (in particular after `handle_timeout`);
//! - a terminal state (`Closed`, `Revoked`) stays terminal;
//! - each request id returned by `send` resolves at most once, and no other id resolves;
//! - the dial generation never decreases;
//! - a spurious `handle_timeout(now)` (nothing due) changes nothing and emits nothing;
//! - every frame written is one JSON object followed by exactly one `\n`;
//! - no frame is written while the driver holds no open socket (after a `Close`, a dial,
//!   or a report that the socket ended), and the terminal event is the last output.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::time::{Duration, Instant};

use relay_machine::gateway::{
    AckError, ConnectionCommand, DialPurpose, GatewayConfig, GatewayEvent, GatewayState, Identity,
    Output, RelayMachine, RequestFailure, SendError,
};
use relay_machine::transcript::Transcript;
use relay_machine::wire::{ActionResult, BufferId, OutboundAction, RequestId, SendAction};
use serde_json::{Value, json};

/// One output of the machine, as recorded from the twin.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    /// A socket instruction.
    Command(ConnectionCommand),
    /// A frame written to the connector, parsed.
    Frame(Value),
    /// An event for the application.
    Event(GatewayEvent),
}

/// An output and when (ms since the start) it came out.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub ms: u64,
    pub out: Out,
}

pub struct Driver {
    gw: RelayMachine,
    twin: RelayMachine,
    transcript: Transcript,
    pub start: Instant,
    pub now: Instant,
    log: Vec<Entry>,
    sent: BTreeSet<RequestId>,
    resolved: BTreeMap<RequestId, usize>,
    terminal: Option<GatewayState>,
    generation: u64,
    /// The driver holds an open socket: frames may be written.
    writable: bool,
    /// The terminal event was output.
    terminal_event: bool,
}

impl Driver {
    /// A driver around a machine seeded with [`SEED`].
    pub fn new(config: GatewayConfig) -> Self {
        Self::seeded(config, SEED)
    }

    pub fn seeded(config: GatewayConfig, seed: u64) -> Self {
        let start = Instant::now();
        let gw = RelayMachine::new(config.clone(), seed).unwrap();
        let twin = RelayMachine::new(config, seed).unwrap();
        Self {
            gw,
            twin,
            transcript: Transcript::new(start),
            start,
            now: start,
            log: Vec::new(),
            sent: BTreeSet::new(),
            resolved: BTreeMap::new(),
            terminal: None,
            generation: 0,
            writable: false,
            terminal_event: false,
        }
    }

    /// A driver whose machine has completed its first handshake: every identity got its
    /// descriptor, in hello order.
    pub fn open(config: GatewayConfig) -> Self {
        Self::open_seeded(config, SEED)
    }

    pub fn open_seeded(config: GatewayConfig, seed: u64) -> Self {
        let platforms: Vec<String> = config_platforms(&config);
        let mut d = Self::seeded(config, seed);
        d.connect().unwrap();
        d.connected();
        for p in &platforms {
            d.feed(&descriptor(p));
        }
        assert_eq!(d.state(), GatewayState::Open);
        d
    }

    // ----- observation --------------------------------------------------------------

    /// The machine (read-only; inputs go through the driver so the twin sees them too).
    pub fn gw(&self) -> &RelayMachine {
        &self.gw
    }

    pub fn state(&self) -> GatewayState {
        self.gw.state()
    }

    /// Milliseconds since the start.
    pub fn ms(&self) -> u64 {
        ms_between(self.start, self.now)
    }

    /// The transcript so far.
    pub fn transcript(&self) -> String {
        self.transcript.render()
    }

    /// A position in the output log, for `*_since`.
    pub fn mark(&self) -> usize {
        self.log.len()
    }

    pub fn since(&self, mark: usize) -> &[Entry] {
        &self.log[mark..]
    }

    pub fn events_since(&self, mark: usize) -> Vec<GatewayEvent> {
        self.since(mark)
            .iter()
            .filter_map(|e| match &e.out {
                Out::Event(ev) => Some(ev.clone()),
                _ => None,
            })
            .collect()
    }

    /// Frames written since `mark`, parsed.
    pub fn frames_since(&self, mark: usize) -> Vec<Value> {
        self.since(mark)
            .iter()
            .filter_map(|e| match &e.out {
                Out::Frame(v) => Some(v.clone()),
                _ => None,
            })
            .collect()
    }

    /// Frames of `kind` written since `mark`.
    pub fn frames_of(&self, mark: usize, kind: &str) -> Vec<Value> {
        self.frames_since(mark)
            .into_iter()
            .filter(|f| f["type"] == kind)
            .collect()
    }

    pub fn commands_since(&self, mark: usize) -> Vec<ConnectionCommand> {
        self.since(mark)
            .iter()
            .filter_map(|e| match &e.out {
                Out::Command(c) => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    /// Dials asked for since `mark`: (ms, generation, purpose).
    pub fn dials_since(&self, mark: usize) -> Vec<(u64, u64, DialPurpose)> {
        self.since(mark)
            .iter()
            .filter_map(|e| match &e.out {
                Out::Command(ConnectionCommand::Dial {
                    generation,
                    purpose,
                }) => Some((e.ms, *generation, *purpose)),
                _ => None,
            })
            .collect()
    }

    /// Close commands since `mark`: (code, reason).
    pub fn closes_since(&self, mark: usize) -> Vec<(u16, String)> {
        self.commands_since(mark)
            .into_iter()
            .filter_map(|c| match c {
                ConnectionCommand::Close { code, reason } => Some((code, reason)),
                _ => None,
            })
            .collect()
    }

    /// Every resolution of `id` so far (a correct machine gives at most one).
    pub fn responses(&self, id: &RequestId) -> Vec<Result<ActionResult, RequestFailure>> {
        self.log
            .iter()
            .filter_map(|e| match &e.out {
                Out::Event(GatewayEvent::Response { id: rid, result }) if rid == id => {
                    Some(result.clone())
                }
                _ => None,
            })
            .collect()
    }

    /// The one resolution of `id`; fails unless there is exactly one.
    pub fn response(&self, id: &RequestId) -> Result<ActionResult, RequestFailure> {
        let all = self.responses(id);
        assert_eq!(all.len(), 1, "request {id} resolved {} times", all.len());
        all.into_iter().next().unwrap()
    }

    /// Diagnostics since `mark`.
    pub fn diagnostics_since(&self, mark: usize) -> Vec<relay_machine::gateway::Diagnostic> {
        self.events_since(mark)
            .into_iter()
            .filter_map(|e| match e {
                GatewayEvent::Diagnostic(d) => Some(d),
                _ => None,
            })
            .collect()
    }

    /// Waits announced by `Reconnecting` events since `mark`, in ms from the event.
    pub fn waits_since(&self, mark: usize) -> Vec<(u64, DialPurpose)> {
        let mut waits = Vec::new();
        for e in self.since(mark) {
            if let Out::Event(GatewayEvent::Reconnecting { at, purpose }) = &e.out {
                waits.push((ms_between(self.start, *at) - e.ms, *purpose));
            }
        }
        waits
    }

    /// Every id returned by `send` resolved exactly once.
    pub fn assert_all_resolved(&self) {
        for id in &self.sent {
            assert_eq!(
                self.resolved.get(id).copied().unwrap_or(0),
                1,
                "request {id} did not resolve exactly once"
            );
        }
    }

    // ----- inputs -------------------------------------------------------------------

    /// Records a free-form line.
    pub fn note(&mut self, what: impl std::fmt::Display) {
        self.transcript.note(self.now, "test", what);
    }

    /// The connector writes one line (a newline is appended).
    pub fn feed(&mut self, line: &str) {
        self.transcript.frame(self.now, "conn→gw", line.as_bytes());
        let mut bytes = line.as_bytes().to_vec();
        bytes.push(b'\n');
        self.input(&bytes);
    }

    /// The connector writes raw bytes in one WebSocket message; `label` stands for them in
    /// the transcript.
    pub fn feed_bytes(&mut self, label: &str, bytes: &[u8]) {
        self.transcript.note(self.now, "conn→gw", label);
        self.input(bytes);
    }

    /// The connector writes `bytes` split into messages of `size` bytes; `label` stands
    /// for them in the transcript.
    pub fn feed_chunks(&mut self, label: &str, bytes: &[u8], size: usize) {
        self.transcript.note(self.now, "conn→gw", label);
        for chunk in bytes.chunks(size) {
            self.input(chunk);
        }
    }

    fn input(&mut self, bytes: &[u8]) {
        let now = self.now;
        self.gw.handle_input(now, bytes);
        self.twin.handle_input(now, bytes);
        self.settle();
    }

    /// Lets `ms` of virtual time pass, firing every deadline that falls due on the way.
    pub fn advance(&mut self, ms: u64) {
        let target = self.now + Duration::from_millis(ms);
        while self.gw.poll_timeout().is_some_and(|at| at <= target) {
            self.fire();
        }
        self.now = target;
    }

    /// Jumps to the next deadline and handles it.
    pub fn fire(&mut self) {
        let (at, kind) = self.gw.next_timer().expect("fire: no deadline pending");
        assert!(at >= self.now, "deadline in the past");
        self.now = at;
        self.transcript
            .note(at, "test", format!("timeout {kind:?}"));
        self.gw.handle_timeout(at);
        self.twin.handle_timeout(at);
        self.settle();
    }

    /// The driver reports that the dial succeeded.
    pub fn connected(&mut self) {
        self.transcript.note(self.now, "socket", "open");
        let now = self.now;
        self.writable |= self.gw.state() == GatewayState::Dialing;
        self.gw.on_connected(now, self.gw.generation());
        self.twin.on_connected(now, self.twin.generation());
        self.settle();
    }

    /// The socket closed with a close frame.
    pub fn closed(&mut self, code: u16, reason: &str) {
        self.transcript
            .note(self.now, "socket", format!("closed {code} {reason:?}"));
        let now = self.now;
        self.writable = false;
        self.gw.on_closed(now, Some(code), reason);
        self.twin.on_closed(now, Some(code), reason);
        self.settle();
    }

    /// A Pong came back.
    pub fn pong(&mut self) {
        self.transcript.note(self.now, "socket", "pong");
        let now = self.now;
        self.gw.on_pong(now);
        self.twin.on_pong(now);
        self.settle();
    }

    /// The driver answers an abandoned dial late (its generation is an old one).
    pub fn connected_late(&mut self, generation: u64) {
        self.transcript.note(
            self.now,
            "socket",
            format!("open (dial #{generation}, abandoned)"),
        );
        let now = self.now;
        self.gw.on_connected(now, generation);
        self.twin.on_connected(now, generation);
        self.settle();
    }

    /// The socket dropped without a close frame.
    pub fn dropped(&mut self) {
        self.transcript.note(self.now, "socket", "dropped");
        let now = self.now;
        self.writable = false;
        self.gw.on_closed(now, None, "connection reset");
        self.twin.on_closed(now, None, "connection reset");
        self.settle();
    }

    /// The dial failed before a WebSocket was open.
    pub fn dial_failed(&mut self, reason: &str) {
        self.transcript
            .note(self.now, "socket", format!("dial failed {reason:?}"));
        let now = self.now;
        self.gw.on_dial_failed(now, self.gw.generation(), reason);
        self.twin
            .on_dial_failed(now, self.twin.generation(), reason);
        self.settle();
    }

    /// Runs an application command on both machines, notes it with its return value,
    /// drains, and returns the value.
    pub fn cmd<R: PartialEq + Debug>(
        &mut self,
        label: &str,
        mut f: impl FnMut(&mut RelayMachine, Instant) -> R,
    ) -> R {
        let now = self.now;
        let r = f(&mut self.gw, now);
        let twin = f(&mut self.twin, now);
        assert_eq!(r, twin, "twin disagrees on {label}");
        self.transcript.note(now, "app", format!("{label} → {r:?}"));
        self.settle();
        r
    }

    /// Runs several inputs on both machines in one pass, with no output taken in between
    /// (a driver busy elsewhere), notes `label`, then drains. `ends_socket`: the pass
    /// reports that the socket ended.
    pub fn batch(
        &mut self,
        label: &str,
        ends_socket: bool,
        mut f: impl FnMut(&mut RelayMachine, Instant),
    ) {
        let now = self.now;
        f(&mut self.gw, now);
        f(&mut self.twin, now);
        self.transcript.note(now, "app", label);
        if ends_socket {
            self.writable = false;
        }
        self.settle();
    }

    pub fn connect(&mut self) -> Result<(), SendError> {
        self.cmd("connect", |m, now| m.connect(now))
    }

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
        let r = self.cmd(&label, |m, now| m.send(now, action.clone(), platform));
        if let Ok(id) = &r {
            assert_request_id_shape(id);
            assert!(self.sent.insert(id.clone()), "request id {id} reused");
        }
        r
    }

    /// A plain `send` of `text` to `chat_id`.
    pub fn send_text(&mut self, chat_id: &str, text: &str) -> Result<RequestId, SendError> {
        self.send(send_action(chat_id, text), None)
    }

    pub fn ack(&mut self, buffer_id: &str) -> Result<(), AckError> {
        let id = BufferId::from(buffer_id);
        self.cmd(&format!("ack_inbound {buffer_id}"), |m, now| {
            m.ack_inbound(now, &id)
        })
    }

    pub fn go_idle(&mut self) -> Result<(), SendError> {
        self.cmd("go_idle", |m, now| m.go_idle(now))
    }

    pub fn go_dormant(&mut self) -> Result<(), SendError> {
        self.cmd("go_dormant", |m, now| m.go_dormant(now))
    }

    pub fn disconnect(&mut self, budget: Option<Duration>) {
        let label = match budget {
            Some(b) => format!("disconnect budget={}ms", b.as_millis()),
            None => "disconnect".to_owned(),
        };
        self.cmd(&label, |m, now| m.disconnect(now, budget));
    }

    pub fn hold_redial(&mut self) {
        self.cmd("hold_redial", |m, now| m.hold_redial(now));
    }

    pub fn release_redial(&mut self) {
        self.cmd("release_redial", |m, now| m.release_redial(now));
    }

    // ----- invariants ---------------------------------------------------------------

    fn settle(&mut self) {
        let now = self.now;
        let ms = self.ms();
        let outputs = self.transcript.drain_gateway(now, &mut self.gw);
        let twin: Vec<Output> = std::iter::from_fn(|| self.twin.poll_output()).collect();
        assert_eq!(
            outputs, twin,
            "the twin's outputs differ: not deterministic"
        );
        for output in outputs {
            assert!(!self.terminal_event, "{output:?} after the terminal event");
            let out = match output {
                Output::Command(c) => {
                    // A close, an abort or a dial ends the socket the driver holds.
                    if !matches!(c, ConnectionCommand::Ping) {
                        self.writable = false;
                    }
                    Out::Command(c)
                }
                Output::Transmit(line) => {
                    assert!(self.writable, "a frame with no open socket: {line}");
                    let bytes = line.as_bytes();
                    assert_eq!(bytes.last(), Some(&b'\n'), "a frame ends in a newline");
                    assert_eq!(
                        bytes.iter().filter(|&&b| b == b'\n').count(),
                        1,
                        "one frame per transmit"
                    );
                    let value: Value = serde_json::from_slice(bytes).expect("a frame is JSON");
                    assert!(value.is_object(), "a frame is a JSON object");
                    Out::Frame(value)
                }
                Output::Event(e) => {
                    if let GatewayEvent::Response { id, .. } = &e {
                        assert!(
                            self.sent.contains(id),
                            "response for an id never sent: {id}"
                        );
                        let n = self.resolved.entry(id.clone()).or_insert(0);
                        *n += 1;
                        assert_eq!(*n, 1, "request {id} resolved twice");
                    }
                    self.terminal_event |=
                        matches!(e, GatewayEvent::Closed | GatewayEvent::Revoked { .. });
                    Out::Event(e)
                }
                other => panic!("unknown output {other:?}"),
            };
            self.log.push(Entry { ms, out });
        }
        // Both machines were fed the same inputs: same observable state.
        assert_eq!(self.gw.poll_timeout(), self.twin.poll_timeout());
        assert_eq!(self.gw.state(), self.twin.state());
        assert_eq!(self.gw.in_flight(), self.twin.in_flight());
        // Deadlines are never due after the machine has been given the chance to act.
        if let Some(at) = self.gw.poll_timeout() {
            assert!(
                at > now,
                "poll_timeout {}ms is not after now {}ms",
                ms_between(self.start, at),
                ms
            );
        }
        let state = self.gw.state();
        if let Some(terminal) = self.terminal {
            assert_eq!(state, terminal, "left the terminal state {terminal:?}");
            assert_eq!(self.gw.in_flight(), 0);
            if self.terminal_event {
                // Before its terminal event a closed machine may wait for its socket.
                assert_eq!(self.gw.poll_timeout(), None);
            }
        } else if matches!(state, GatewayState::Closed | GatewayState::Revoked) {
            self.terminal = Some(state);
        }
        assert!(self.gw.generation() >= self.generation);
        self.generation = self.gw.generation();
        // Nothing is due, so a spurious `handle_timeout` must do nothing at all.
        let deadline = self.gw.poll_timeout();
        for m in [&mut self.gw, &mut self.twin] {
            m.handle_timeout(now);
            assert_eq!(m.poll_output(), None, "spurious handle_timeout");
            assert_eq!(m.poll_timeout(), deadline, "spurious handle_timeout");
            assert_eq!(m.state(), state, "spurious handle_timeout");
        }
    }
}

fn ms_between(start: Instant, at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(start).as_millis()).unwrap()
}

fn config_platforms(config: &GatewayConfig) -> Vec<String> {
    if config.identities.is_empty() {
        vec!["relay".to_owned()]
    } else {
        config
            .identities
            .iter()
            .map(|i| i.platform.clone())
            .collect()
    }
}

/// Request ids are 32 lowercase hex characters (protocol.md §2.7).
pub fn assert_request_id_shape(id: &RequestId) {
    let s = id.as_str();
    assert_eq!(s.len(), 32, "request id {s} is not 32 characters");
    assert!(
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "request id {s} is not lowercase hex"
    );
}

// ----- fixtures ---------------------------------------------------------------------

/// The Discord slash-command manifest of protocol.md §2.3.
pub fn discord_manifest() -> Vec<serde_json::Map<String, Value>> {
    let manifest = json!([
        {"name": "ping", "description": "Check liveness"},
        {"name": "topic", "description": "Set topic", "options": [
            {"type": 3, "name": "text", "description": "New topic", "required": false}
        ]}
    ]);
    serde_json::from_value(manifest).unwrap()
}

/// telegram (701), discord (1122334455, with a command manifest), slack (no bot id).
pub fn three_identities() -> Vec<Identity> {
    vec![
        Identity::new("telegram", "701"),
        Identity {
            command_manifest: Some(discord_manifest()),
            ..Identity::new("discord", "1122334455")
        },
        Identity::new("slack", ""),
    ]
}

/// A config with the three identities and the defaults otherwise (seed 7).
/// The seed of every scenario's machine unless a test says otherwise: the request ids and
/// jitter in the snapshots are this seed's.
pub const SEED: u64 = 7;

pub fn config3() -> GatewayConfig {
    GatewayConfig {
        identities: three_identities(),
        ..reference()
    }
}

/// A config with one telegram identity (seed 7).
pub fn config1() -> GatewayConfig {
    GatewayConfig {
        identities: vec![Identity::new("telegram", "701")],
        ..reference()
    }
}

/// The reference gateway's transport as the scenarios of protocol.md §6–§7 describe it:
/// no keepalive or dial/close bounds (the liveness scenarios turn them on), and a first
/// dial that fails fast.
pub fn reference() -> GatewayConfig {
    // (The liveness scenarios start from GatewayConfig::default() instead.)
    GatewayConfig {
        ping_interval: None,
        liveness_timeout: None,
        dial_timeout: None,
        close_timeout: None,
        retry_first_dial: false,
        ..GatewayConfig::default()
    }
}

/// A `descriptor` line for `platform`, with per-platform numbers so they are told apart.
pub fn descriptor(platform: &str) -> String {
    let (label, max, unit) = match platform {
        "telegram" => ("Telegram", 4096, "utf16"),
        "discord" => ("Discord", 2000, "utf16"),
        "slack" => ("Slack", 40000, "chars"),
        _ => ("Other", 1000, "chars"),
    };
    json!({"type": "descriptor", "descriptor": {
        "contract_version": 1, "platform": platform, "label": label,
        "max_message_length": max, "supports_draft_streaming": false,
        "supports_edit": true, "supports_threads": false,
        "markdown_dialect": "plain", "len_unit": unit
    }})
    .to_string()
}

/// An `inbound` line with `source` and `text`, buffered when `buffer_id` is given.
pub fn inbound(source: Value, text: &str, buffer_id: Option<&str>) -> String {
    let mut frame = json!({"type": "inbound", "event": {"text": text, "source": source}});
    if let Some(b) = buffer_id {
        frame["bufferId"] = json!(b);
    }
    frame.to_string()
}

/// A plain live telegram DM inbound.
pub fn dm(chat_id: &str, user_id: &str, text: &str) -> String {
    inbound(
        json!({"platform": "telegram", "chat_id": chat_id, "chat_type": "dm", "user_id": user_id}),
        text,
        None,
    )
}

/// A successful `outbound_result` for `id`.
pub fn result_ok(id: &RequestId, message_id: &str) -> String {
    json!({"type": "outbound_result", "requestId": id.as_str(),
           "result": {"success": true, "message_id": message_id}})
    .to_string()
}

pub fn send_action(chat_id: &str, text: &str) -> SendAction {
    SendAction {
        chat_id: chat_id.into(),
        content: text.into(),
        ..SendAction::default()
    }
}

//! The connector's timers on a virtual clock: a socket that never says hello is closed
//! (1008, never 4401), keepalive pings, a silent link dropped, pongs and bytes keeping a
//! link alive. Snapshotted as transcripts, with the key facts asserted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use relay_machine::connector::{
    ConnectorCommand, ConnectorConfig, ConnectorMachine, Instance, InstanceOutput, Output,
};
use relay_machine::transcript::Transcript;
use relay_machine::wire::{ActionResult, CapabilityDescriptor, RequestId};

const HELLO: &[u8] = b"{\"type\":\"hello\",\"platform\":\"discord\",\"botId\":\"1\"}\n";

/// A machine, its clock and its transcript.
struct Run {
    start: Instant,
    now: Instant,
    conn: ConnectorMachine,
    transcript: Transcript,
    commands: Vec<ConnectorCommand>,
}

impl Run {
    fn new() -> Self {
        let start = Instant::now();
        Self {
            start,
            now: start,
            conn: ConnectorMachine::new(ConnectorConfig::default(), start),
            transcript: Transcript::new(start),
            commands: Vec::new(),
        }
    }

    fn drain(&mut self) {
        while let Some(output) = self.conn.poll_output() {
            self.transcript.connector_output(self.now, &output);
            if let Output::Command(c) = output {
                self.commands.push(c);
            }
        }
    }

    /// Lets `ms` pass, firing every deadline on the way.
    fn advance(&mut self, ms: u64) {
        let end = self.now + Duration::from_millis(ms);
        while let Some(at) = self.conn.poll_timeout().filter(|at| *at <= end) {
            self.now = at;
            self.transcript.note(at, "test", "timeout");
            self.conn.handle_timeout(at);
            self.drain();
        }
        self.now = end;
    }

    fn input(&mut self, what: &str, bytes: &[u8]) {
        self.transcript.note(self.now, "gw→conn", what);
        self.conn.handle_input(self.now, bytes);
        self.drain();
    }

    fn pong(&mut self) {
        self.transcript.note(self.now, "socket", "pong");
        self.conn.on_pong(self.now);
        self.drain();
    }

    fn ms(&self) -> u128 {
        self.now.duration_since(self.start).as_millis()
    }
}

#[test]
fn a_socket_that_never_says_hello_is_closed_at_10s_with_1008() {
    let mut run = Run::new();
    run.advance(9_999);
    assert!(run.commands.is_empty());
    run.advance(1);
    assert_eq!(
        run.commands,
        [ConnectorCommand::Close {
            code: 1008,
            reason: "hello timeout".into()
        }]
    );
    insta::assert_snapshot!(run.transcript.render());
}

#[test]
fn a_hello_in_time_stops_the_hello_timer() {
    let mut run = Run::new();
    run.advance(9_000);
    run.input("hello", HELLO);
    run.advance(1_000);
    assert!(
        !run.commands
            .iter()
            .any(|c| matches!(c, ConnectorCommand::Close { .. }))
    );
}

#[test]
fn a_link_that_goes_silent_is_pinged_then_dropped_at_60s() {
    let mut run = Run::new();
    run.input("hello", HELLO);
    run.conn
        .send_descriptor(run.now, CapabilityDescriptor::new("discord", "Discord"))
        .unwrap();
    run.drain();
    run.advance(60_000);
    assert_eq!(
        run.commands,
        [ConnectorCommand::Ping, ConnectorCommand::Abort],
        "a ping at 30 s, then the drop at 60 s"
    );
    assert!(run.conn.is_closed());
    // Dropped: nothing more is read or written.
    run.input("hello", HELLO);
    assert!(run.conn.poll_output().is_none());
    insta::assert_snapshot!(run.transcript.render());
}

#[test]
fn pongs_and_bytes_keep_a_link_alive() {
    let mut run = Run::new();
    run.input("hello", HELLO);
    for _ in 0..3 {
        run.advance(30_000);
        run.pong();
    }
    run.advance(20_000);
    run.input("going_idle", b"{\"type\":\"going_idle\"}\n");
    assert!(!run.commands.contains(&ConnectorCommand::Abort));
    let silent_from = run.ms();
    run.advance(60_000);
    assert_eq!(run.commands.last(), Some(&ConnectorCommand::Abort));
    assert_eq!(run.ms() - silent_from, 60_000);
    insta::assert_snapshot!(run.transcript.render());
}

#[test]
fn an_instance_fires_the_timers_of_each_of_its_connections() {
    let start = Instant::now();
    let mut instance = Instance::new(ConnectorConfig::default());
    let first = instance.accept(start);
    let later = start + Duration::from_secs(5);
    let second = instance.accept(later);
    while instance.poll_output().is_some() {}
    // The second's hello is due 10 s after its own accept; the first was superseded.
    instance.handle_input(later, second, HELLO);
    while instance.poll_output().is_some() {}
    let at = instance.poll_timeout().unwrap();
    assert_eq!(
        at,
        start + Duration::from_secs(10),
        "the first's hello deadline"
    );
    instance.handle_timeout(at);
    let commands: Vec<_> = std::iter::from_fn(|| instance.poll_output())
        .filter_map(|o| match o {
            InstanceOutput::Command(conn, c) => Some((conn, c)),
            _ => None,
        })
        .collect();
    // Superseded already (closed with 4409): its hello timer does nothing more.
    assert!(commands.is_empty(), "{commands:?}");
    assert!(instance.connection(first).unwrap().is_closed());
    assert!(!instance.connection(second).unwrap().is_closed());
}

#[test]
fn no_ping_is_asked_before_the_hello() {
    // The socket may still be upgrading: only the hello timeout may end it meanwhile.
    let mut run = Run::new();
    run.conn = ConnectorMachine::new(
        ConnectorConfig {
            ping_interval: Some(Duration::from_millis(200)),
            ..ConnectorConfig::default()
        },
        run.now,
    );
    run.advance(5_000);
    assert!(run.commands.is_empty(), "{:?}", run.commands);
    run.input("hello", HELLO);
    run.advance(200);
    assert_eq!(run.commands, [ConnectorCommand::Ping]);
}

#[test]
fn a_link_that_goes_silent_mid_request_is_dropped_and_the_late_answer_refused() {
    let mut run = Run::new();
    run.input("hello", HELLO);
    run.conn
        .send_descriptor(run.now, CapabilityDescriptor::new("discord", "Discord"))
        .unwrap();
    run.drain();
    run.advance(1_000);
    run.input(
        "outbound r1",
        br#"{"type":"outbound","requestId":"r1","action":{"op":"typing","chat_id":"c"}}
"#,
    );
    assert_eq!(run.conn.in_flight(), 1);
    let silent_from = run.ms();
    run.advance(60_000);
    assert_eq!(
        run.commands,
        [
            ConnectorCommand::Ping,
            ConnectorCommand::Ping,
            ConnectorCommand::Abort
        ],
        "pings at 30 s and 60 s, the drop 60 s after the last byte"
    );
    assert_eq!(run.ms() - silent_from, 60_000);
    // The application's answer comes too late: the link is gone, nothing is written.
    let late = run
        .conn
        .respond(run.now, &RequestId("r1".into()), ActionResult::ok());
    assert!(late.is_err(), "{late:?}");
    run.drain();
    insta::assert_snapshot!(run.transcript.render());
}

#[test]
fn a_link_that_goes_silent_while_idle_is_dropped_too() {
    let mut run = Run::new();
    run.input("hello", HELLO);
    run.input("going_idle", b"{\"type\":\"going_idle\"}\n");
    assert!(run.conn.is_idle());
    run.advance(60_000);
    assert_eq!(
        run.commands,
        [ConnectorCommand::Ping, ConnectorCommand::Abort],
        "idle is not dead: it is pinged like any link, and dropped when silent"
    );
    insta::assert_snapshot!(run.transcript.render());
}

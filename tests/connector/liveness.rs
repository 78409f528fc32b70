//! The connector's timers (src/connector/mod.rs) on a virtual clock: a socket that never
//! says hello is closed (1008, never 4401) and bytes that are not a hello do not stop that
//! timer; keepalive pings, a silent link dropped, pongs and bytes keeping a link alive.

use std::time::{Duration, Instant};

use relay_machine::connector::{ConnectorCommand, ConnectorConfig, Instance, InstanceOutput};
use relay_machine::testing::SoloConnector;
use relay_machine::wire::close;
use relay_machine::wire::{ActionResult, CapabilityDescriptor, RequestId};

use crate::fixtures::HELLO;

/// [`HELLO`] as one message, its newline included.
const HELLO_LINE: &[u8] = b"{\"type\":\"hello\",\"platform\":\"discord\",\"botId\":\"1\"}\n";

/// What a socket whose hello never came is told: one close, 1008.
fn hello_timeout() -> [ConnectorCommand; 1] {
    [ConnectorCommand::Close {
        code: 1008,
        reason: "hello timeout".into(),
    }]
}

/// A link past its hello, answered with a descriptor (noted as the hello alone).
fn open() -> SoloConnector {
    let mut run = SoloConnector::new(ConnectorConfig::default());
    run.input("hello", HELLO_LINE);
    run.machine
        .send_descriptor(run.now, CapabilityDescriptor::new("discord", "Discord"))
        .unwrap();
    run.settle();
    run
}

#[test]
fn a_socket_without_a_complete_hello_is_closed_at_10s_with_1008_never_4401() {
    let mut run = SoloConnector::new(ConnectorConfig::default());
    run.advance(Duration::from_millis(4_000));
    // Half a hello, never finished: bytes, but no hello.
    run.bytes(&HELLO.as_bytes()[..20]);
    run.advance(Duration::from_millis(5_999));
    assert!(run.commands().is_empty());
    run.advance(Duration::from_millis(1));
    assert_eq!(run.commands(), hello_timeout());
    assert!(
        !run.commands().iter().any(|c| matches!(
            c,
            ConnectorCommand::Close { code, .. } if *code == close::UNAUTHORIZED
        )),
        "an auth strike for a slow socket would lock the gateway out"
    );
    assert!(run.machine.is_closed());
    assert!(run.machine.identities().is_empty());
    insta::assert_snapshot!(run.log.transcript.render());
}

#[test]
fn a_socket_that_never_says_hello_is_closed_at_10s_with_1008() {
    let mut run = SoloConnector::new(ConnectorConfig::default());
    run.advance(Duration::from_millis(9_999));
    assert!(run.commands().is_empty());
    run.advance(Duration::from_millis(1));
    assert_eq!(run.commands(), hello_timeout());
    insta::assert_snapshot!(run.log.transcript.render());
}

#[test]
fn a_hello_in_time_stops_the_hello_timer() {
    let mut run = SoloConnector::new(ConnectorConfig::default());
    run.advance(Duration::from_millis(9_000));
    run.input("hello", HELLO_LINE);
    run.advance(Duration::from_millis(1_000));
    assert!(
        !run.commands()
            .iter()
            .any(|c| matches!(c, ConnectorCommand::Close { .. }))
    );
}

#[test]
fn a_link_that_goes_silent_is_pinged_then_dropped_at_60s() {
    let mut run = open();
    run.advance(Duration::from_millis(60_000));
    assert_eq!(
        run.commands(),
        [ConnectorCommand::Ping, ConnectorCommand::Abort],
        "a ping at 30 s, then the drop at 60 s"
    );
    assert!(run.machine.is_closed());
    // Dropped: nothing more is read or written.
    run.input("hello", HELLO_LINE);
    assert!(run.machine.poll_output().is_none());
    insta::assert_snapshot!(run.log.transcript.render());
}

#[test]
fn pongs_and_bytes_keep_a_link_alive() {
    let mut run = SoloConnector::new(ConnectorConfig::default());
    run.input("hello", HELLO_LINE);
    for _ in 0..3 {
        run.advance(Duration::from_millis(30_000));
        run.pong();
    }
    run.advance(Duration::from_millis(20_000));
    run.input("going_idle", b"{\"type\":\"going_idle\"}\n");
    assert!(!run.commands().contains(&ConnectorCommand::Abort));
    let silent_from = run.ms();
    run.advance(Duration::from_millis(60_000));
    assert_eq!(run.commands().last(), Some(&ConnectorCommand::Abort));
    assert_eq!(run.ms() - silent_from, 60_000);
    insta::assert_snapshot!(run.log.transcript.render());
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
    instance.handle_input(later, second, HELLO_LINE);
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
    let mut run = SoloConnector::new(ConnectorConfig {
        ping_interval: Some(Duration::from_millis(200)),
        ..ConnectorConfig::default()
    });
    run.advance(Duration::from_millis(5_000));
    assert!(run.commands().is_empty(), "{:?}", run.commands());
    run.input("hello", HELLO_LINE);
    run.advance(Duration::from_millis(200));
    assert_eq!(run.commands(), [ConnectorCommand::Ping]);
}

#[test]
fn a_link_that_goes_silent_mid_request_is_dropped_and_the_late_answer_refused() {
    let mut run = open();
    run.advance(Duration::from_millis(1_000));
    run.input(
        "outbound r1",
        br#"{"type":"outbound","requestId":"r1","action":{"op":"typing","chat_id":"c"}}
"#,
    );
    assert_eq!(run.machine.in_flight(), 1);
    let silent_from = run.ms();
    run.advance(Duration::from_millis(60_000));
    assert_eq!(
        run.commands(),
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
        .machine
        .respond(run.now, &RequestId("r1".into()), ActionResult::ok());
    assert!(late.is_err(), "{late:?}");
    run.settle();
    insta::assert_snapshot!(run.log.transcript.render());
}

#[test]
fn a_link_that_goes_silent_while_idle_is_dropped_too() {
    let mut run = SoloConnector::new(ConnectorConfig::default());
    run.input("hello", HELLO_LINE);
    run.input("going_idle", b"{\"type\":\"going_idle\"}\n");
    assert!(run.machine.is_idle());
    run.advance(Duration::from_millis(60_000));
    assert_eq!(
        run.commands(),
        [ConnectorCommand::Ping, ConnectorCommand::Abort],
        "idle is not dead: it is pinged like any link, and dropped when silent"
    );
    insta::assert_snapshot!(run.log.transcript.render());
}

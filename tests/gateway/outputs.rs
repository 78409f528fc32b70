#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The output contract (src/outputs.rs), gateway side: one ordered stream, scoped by
//! connection. Every interleaving of application commands (ack, interrupt, send) with a
//! connection's end (disconnect, go_dormant, a peer close) in one pass, with no output taken
//! in between (`Driver::hold`): every frame comes before its connection's close, nothing of
//! a connection comes after its end, and what was never written is accounted for.

use std::time::Duration;

use relay_machine::gateway::{
    ConnectionCommand, GatewayConfig, GatewayEvent, Identity, Output, RequestFailure,
};
use relay_machine::testing::Record;
use relay_machine::wire::SendAction;

use crate::driver::*;

const BUFFERED: &str = r#"{"type":"inbound","event":{"text":"hi","source":{"platform":"discord","chat_id":"c"}},"bufferId":"b-1"}"#;
const DORMANT_ACK: &str = r#"{"type":"going_idle_ack"}"#;

#[derive(Debug, Clone, Copy)]
enum Command {
    Ack,
    Interrupt,
    Send,
}

#[derive(Debug, Clone, Copy)]
enum End {
    Disconnect,
    Dormant,
    PeerClose,
}

/// An open gateway holding the buffered delivery `b-1`.
fn open() -> Driver {
    // Outputs only: no keepalive, and a driver that forgets a socket once it closed it.
    let config = GatewayConfig {
        identities: vec![Identity::new("discord", "1")],
        ping_interval: None,
        liveness_timeout: None,
        close_timeout: None,
        ..GatewayConfig::default()
    };
    let mut d = Driver::open_seeded(config, 0);
    d.feed(BUFFERED);
    d
}

fn outputs(records: &[Record<Output>]) -> Vec<Output> {
    records.iter().map(|r| r.output.clone()).collect()
}

fn frame_types(outputs: &[Output]) -> Vec<String> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Transmit(t) => {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                Some(v["type"].as_str().unwrap().to_owned())
            }
            _ => None,
        })
        .collect()
}

fn close_at(outputs: &[Output]) -> Option<usize> {
    outputs
        .iter()
        .position(|o| matches!(o, Output::Command(ConnectionCommand::Close { .. })))
}

fn interrupt(d: &mut Driver) {
    d.cmd("interrupt s-1", |g, now| g.interrupt(now, "s-1", None))
        .unwrap();
}

/// Lets time pass until the next dial, then opens it: the frame types of the new
/// connection's handshake.
fn redial(d: &mut Driver) -> Vec<String> {
    let m = d.mark();
    for _ in 0..16 {
        if d.dials_since(m).is_empty() {
            d.fire();
        }
    }
    assert!(!d.dials_since(m).is_empty(), "no redial");
    let m = d.mark();
    d.connected();
    d.feed(&descriptor("discord"));
    frame_types(&outputs(d.since(m)))
}

fn permutations(commands: &[Command]) -> Vec<Vec<Command>> {
    if commands.len() <= 1 {
        return vec![commands.to_vec()];
    }
    let mut all = Vec::new();
    for i in 0..commands.len() {
        let mut rest = commands.to_vec();
        let first = rest.remove(i);
        for mut tail in permutations(&rest) {
            tail.insert(0, first);
            all.push(tail);
        }
    }
    all
}

fn subsets() -> Vec<Vec<Command>> {
    let all = [Command::Ack, Command::Interrupt, Command::Send];
    let mut out = Vec::new();
    for mask in 1..8u8 {
        let chosen: Vec<Command> = all
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, c)| *c)
            .collect();
        out.extend(permutations(&chosen));
    }
    out
}

#[test]
fn every_frame_comes_before_its_connections_end() {
    for commands in subsets() {
        for end in [End::Disconnect, End::Dormant, End::PeerClose] {
            let mut d = open();
            let m = d.mark();
            d.hold();
            let mut request = None;
            for command in &commands {
                match command {
                    Command::Ack => d.ack("b-1").unwrap(),
                    Command::Interrupt => interrupt(&mut d),
                    Command::Send => request = Some(d.send(SendAction::default(), None).unwrap()),
                }
            }
            match end {
                End::Disconnect => d.disconnect(Some(Duration::ZERO)),
                End::Dormant => {
                    d.go_dormant().unwrap();
                    d.feed(DORMANT_ACK);
                }
                End::PeerClose => d.closed(1001, "going away"),
            }
            d.release();
            let pass = outputs(d.since(m));
            let case = format!("{commands:?} then {end:?}");
            let types = frame_types(&pass);
            let responses = |id| -> Vec<Result<_, RequestFailure>> {
                pass.iter()
                    .filter_map(|o| match o {
                        Output::Event(GatewayEvent::Response { id: rid, result }) if rid == id => {
                            Some(result.clone())
                        }
                        _ => None,
                    })
                    .collect()
            };
            match end {
                End::Disconnect | End::Dormant => {
                    // Every frame, in command order, then the close; nothing after it.
                    let mut expected: Vec<&str> = commands
                        .iter()
                        .map(|c| match c {
                            Command::Ack => "inbound_ack",
                            Command::Interrupt => "interrupt",
                            Command::Send => "outbound",
                        })
                        .collect();
                    if let End::Dormant = end {
                        expected.push("going_idle");
                    }
                    assert_eq!(types, expected, "{case}");
                    let close = close_at(&pass).unwrap_or_else(|| panic!("{case}: no close"));
                    assert!(
                        pass[close + 1..]
                            .iter()
                            .all(|o| !matches!(o, Output::Transmit(_))),
                        "{case}: a frame after the close"
                    );
                    if let Some(id) = &request {
                        let results = responses(id);
                        assert_eq!(results.len(), 1, "{case}");
                        assert!(results[0].as_ref().unwrap_err().is_ambiguous(), "{case}");
                    }
                    if let End::Disconnect = end {
                        assert!(
                            matches!(pass.last(), Some(Output::Event(GatewayEvent::Closed))),
                            "{case}: the terminal event is not last"
                        );
                    }
                }
                End::PeerClose => {
                    // The socket is gone: nothing of it is written, and each command is
                    // accounted for.
                    assert!(types.is_empty(), "{case}: {types:?}");
                    assert_eq!(close_at(&pass), None, "{case}");
                    if let Some(id) = &request {
                        assert_eq!(
                            responses(id),
                            vec![Err(RequestFailure::NotWritten)],
                            "{case}"
                        );
                    }
                    let interrupted = pass.iter().any(|o| {
                        matches!(o, Output::Event(GatewayEvent::InterruptNotSent { session_key }) if session_key == "s-1")
                    });
                    assert_eq!(
                        interrupted,
                        commands.iter().any(|c| matches!(c, Command::Interrupt)),
                        "{case}"
                    );
                }
            }
            // An ack that was not written is owed to the next connection, and the next
            // connection carries nothing of the old one.
            if !matches!(end, End::Disconnect) {
                let acked = commands.iter().any(|c| matches!(c, Command::Ack));
                let owed = acked && matches!(end, End::PeerClose);
                let expected: Vec<&str> = if owed {
                    vec!["hello", "inbound_ack"]
                } else {
                    vec!["hello"]
                };
                assert_eq!(redial(&mut d), expected, "{case}: the next connection");
            }
        }
    }
}

/// A peer close reported while the machine's own `Close` is still queued: the close and
/// the frames before it are discarded (the socket is gone), and nothing leaks into the
/// next connection.
#[test]
fn a_peer_close_before_the_driver_took_the_machines_close() {
    let mut d = open();
    let m = d.mark();
    d.hold();
    d.ack("b-1").unwrap();
    d.go_dormant().unwrap();
    d.feed(DORMANT_ACK);
    d.closed(1006, "reset");
    d.release();
    let pass = outputs(d.since(m));
    assert!(frame_types(&pass).is_empty(), "{:?}", frame_types(&pass));
    assert_eq!(close_at(&pass), None);
    assert_eq!(
        redial(&mut d),
        ["hello", "inbound_ack"],
        "the ack is owed, and only the ack"
    );
}

/// The terminal event is the machine's last output, even when a peer close is reported
/// before the driver took the final close.
#[test]
fn the_terminal_event_is_last() {
    let mut d = open();
    let m = d.mark();
    d.hold();
    interrupt(&mut d);
    d.disconnect(None);
    d.dropped();
    d.feed(DORMANT_ACK);
    d.release();
    let pass = outputs(d.since(m));
    assert!(matches!(
        pass.last(),
        Some(Output::Event(GatewayEvent::Closed))
    ));
    assert!(frame_types(&pass).is_empty());
    assert!(pass.iter().any(
        |o| matches!(o, Output::Event(GatewayEvent::InterruptNotSent { session_key }) if session_key == "s-1")
    ));
    // Nothing follows, however long the driver waits.
    let m = d.mark();
    d.advance(60_000);
    assert!(d.since(m).is_empty());
}

//! The output contract, machine level: one ordered stream per machine, scoped by
//! connection. Every interleaving of application commands (ack, interrupt, send; respond,
//! push) with a connection's end (disconnect, go_dormant, a peer close) in one pass, with no
//! output taken in between: every frame comes before its connection's close, nothing of a
//! connection comes after its end, and what was never written is accounted for.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use relay_machine::connector::{
    self, ConnectorCommand, ConnectorConfig, ConnectorMachine, Delivery,
};
use relay_machine::gateway::{
    ConnectionCommand, GatewayConfig, GatewayEvent, Identity, Output, RelayMachine, RequestFailure,
};
use relay_machine::wire::{
    ActionResult, BufferId, CapabilityDescriptor, MessageEvent, RequestId, SendAction,
};

const DESCRIPTOR: &[u8] = b"{\"type\":\"descriptor\",\"descriptor\":{\"contract_version\":1,\"platform\":\"discord\",\"label\":\"Discord\",\"max_message_length\":2000,\"supports_draft_streaming\":false,\"supports_edit\":true,\"supports_threads\":true,\"markdown_dialect\":\"discord\",\"len_unit\":\"utf16\"}}\n";
const BUFFERED: &[u8] = b"{\"type\":\"inbound\",\"event\":{\"text\":\"hi\",\"source\":{\"platform\":\"discord\",\"chat_id\":\"c\"}},\"bufferId\":\"b-1\"}\n";

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

/// What one pass produced: the frames' types in order, the position of the close, the
/// events.
struct Pass {
    outputs: Vec<Output>,
}

impl Pass {
    fn take(gw: &mut RelayMachine) -> Self {
        Self {
            outputs: std::iter::from_fn(|| gw.poll_output()).collect(),
        }
    }

    fn frame_types(&self) -> Vec<String> {
        self.outputs
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

    fn close_at(&self) -> Option<usize> {
        self.outputs
            .iter()
            .position(|o| matches!(o, Output::Command(ConnectionCommand::Close { .. })))
    }

    fn events(&self) -> Vec<&GatewayEvent> {
        self.outputs
            .iter()
            .filter_map(|o| match o {
                Output::Event(e) => Some(e),
                _ => None,
            })
            .collect()
    }

    fn response(&self, id: &RequestId) -> Vec<&Result<ActionResult, RequestFailure>> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                GatewayEvent::Response { id: rid, result } if rid == id => Some(result),
                _ => None,
            })
            .collect()
    }
}

/// An open gateway holding the buffered delivery `b-1`.
fn open(now: Instant) -> RelayMachine {
    // Outputs only: no keepalive, and a driver that forgets a socket once it closed it.
    let config = GatewayConfig {
        identities: vec![Identity::new("discord", "1")],
        ping_interval: None,
        liveness_timeout: None,
        close_timeout: None,
        ..GatewayConfig::default()
    };
    let mut gw = RelayMachine::new(config, 0).unwrap();
    gw.connect(now).unwrap();
    Pass::take(&mut gw);
    gw.on_connected(now, gw.generation());
    gw.handle_input(now, DESCRIPTOR);
    gw.handle_input(now, BUFFERED);
    Pass::take(&mut gw);
    gw
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
fn gateway_every_frame_comes_before_its_connections_end() {
    for commands in subsets() {
        for end in [End::Disconnect, End::Dormant, End::PeerClose] {
            let now = Instant::now();
            let mut gw = open(now);
            let mut request = None;
            for command in &commands {
                match command {
                    Command::Ack => gw.ack_inbound(now, &BufferId::from("b-1")).unwrap(),
                    Command::Interrupt => gw.interrupt(now, "s-1", None).unwrap(),
                    Command::Send => {
                        request = Some(gw.send(now, SendAction::default(), None).unwrap())
                    }
                }
            }
            match end {
                End::Disconnect => gw.disconnect(now, Some(Duration::ZERO)),
                End::Dormant => {
                    gw.go_dormant(now).unwrap();
                    gw.handle_input(now, b"{\"type\":\"going_idle_ack\"}\n");
                }
                End::PeerClose => gw.on_closed(now, Some(1001), "going away"),
            }
            let pass = Pass::take(&mut gw);
            let case = format!("{commands:?} then {end:?}");
            let types = pass.frame_types();
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
                    let close = pass
                        .close_at()
                        .unwrap_or_else(|| panic!("{case}: no close"));
                    assert!(
                        pass.outputs[close + 1..]
                            .iter()
                            .all(|o| !matches!(o, Output::Transmit(_))),
                        "{case}: a frame after the close"
                    );
                    if let Some(id) = &request {
                        let results = pass.response(id);
                        assert_eq!(results.len(), 1, "{case}");
                        assert!(results[0].as_ref().unwrap_err().is_ambiguous(), "{case}");
                    }
                    if let End::Disconnect = end {
                        assert!(
                            matches!(
                                pass.outputs.last(),
                                Some(Output::Event(GatewayEvent::Closed))
                            ),
                            "{case}: the terminal event is not last"
                        );
                    }
                }
                End::PeerClose => {
                    // The socket is gone: nothing of it is written, and each command is
                    // accounted for.
                    assert!(types.is_empty(), "{case}: {types:?}");
                    assert_eq!(pass.close_at(), None, "{case}");
                    if let Some(id) = &request {
                        assert_eq!(
                            pass.response(id),
                            vec![&Err(RequestFailure::NotWritten)],
                            "{case}"
                        );
                    }
                    let interrupted = pass.events().iter().any(|e| {
                        matches!(e, GatewayEvent::InterruptNotSent { session_key } if session_key == "s-1")
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
                let later = now + Duration::from_secs(60);
                gw.handle_timeout(later);
                let dial = Pass::take(&mut gw);
                assert!(
                    dial.outputs
                        .iter()
                        .any(|o| matches!(o, Output::Command(ConnectionCommand::Dial { .. }))),
                    "{case}: no redial"
                );
                gw.on_connected(later, gw.generation());
                gw.handle_input(later, DESCRIPTOR);
                let types = Pass::take(&mut gw).frame_types();
                let acked = commands.iter().any(|c| matches!(c, Command::Ack));
                let owed = acked && matches!(end, End::PeerClose);
                let expected: Vec<&str> = if owed {
                    vec!["hello", "inbound_ack"]
                } else {
                    vec!["hello"]
                };
                assert_eq!(types, expected, "{case}: the next connection");
            }
        }
    }
}

/// A peer close reported while the machine's own `Close` is still queued: the close and
/// the frames before it are discarded (the socket is gone), and nothing leaks into the
/// next connection.
#[test]
fn gateway_a_peer_close_before_the_driver_took_the_machines_close() {
    let now = Instant::now();
    let mut gw = open(now);
    gw.ack_inbound(now, &BufferId::from("b-1")).unwrap();
    gw.go_dormant(now).unwrap();
    gw.handle_input(now, b"{\"type\":\"going_idle_ack\"}\n");
    gw.on_closed(now, Some(1006), "reset");
    let pass = Pass::take(&mut gw);
    assert!(pass.frame_types().is_empty(), "{:?}", pass.frame_types());
    assert_eq!(pass.close_at(), None);
    let later = now + Duration::from_secs(2);
    gw.handle_timeout(later);
    Pass::take(&mut gw);
    gw.on_connected(later, gw.generation());
    gw.handle_input(later, DESCRIPTOR);
    assert_eq!(
        Pass::take(&mut gw).frame_types(),
        ["hello", "inbound_ack"],
        "the ack is owed, and only the ack"
    );
}

/// The terminal event is the machine's last output, even when a peer close is reported
/// before the driver took the final close.
#[test]
fn gateway_the_terminal_event_is_last() {
    let now = Instant::now();
    let mut gw = open(now);
    gw.interrupt(now, "s-1", None).unwrap();
    gw.disconnect(now, None);
    gw.on_closed(now, None, "reset");
    gw.handle_input(now, b"{\"type\":\"going_idle_ack\"}\n");
    let pass = Pass::take(&mut gw);
    assert!(matches!(
        pass.outputs.last(),
        Some(Output::Event(GatewayEvent::Closed))
    ));
    assert!(pass.frame_types().is_empty());
    assert!(pass.events().iter().any(
        |e| matches!(e, GatewayEvent::InterruptNotSent { session_key } if session_key == "s-1")
    ));
    assert_eq!(gw.poll_output(), None);
}

#[derive(Debug, Clone, Copy)]
enum Push {
    Respond,
    Buffered,
    Live,
    Interrupt,
}

#[derive(Debug, Clone, Copy)]
enum ConnectorEnd {
    Close,
    RejectAuth,
    PeerClose,
}

#[test]
fn connector_every_frame_comes_before_its_close() {
    let pushes = [Push::Respond, Push::Buffered, Push::Live, Push::Interrupt];
    for first in pushes {
        for second in pushes {
            for end in [
                ConnectorEnd::Close,
                ConnectorEnd::RejectAuth,
                ConnectorEnd::PeerClose,
            ] {
                let now = Instant::now();
                let mut conn =
                    ConnectorMachine::new(ConnectorConfig::default(), std::time::Instant::now());
                conn.handle_input(
                    now,
                    b"{\"type\":\"hello\",\"platform\":\"discord\",\"botId\":\"1\"}\n",
                );
                conn.send_descriptor(now, CapabilityDescriptor::new("discord", "Discord"))
                    .unwrap();
                conn.handle_input(now, b"{\"type\":\"outbound\",\"requestId\":\"r-1\",\"action\":{\"op\":\"send\",\"chat_id\":\"c\",\"content\":\"x\"}}\n");
                while conn.poll_output().is_some() {}
                let mut expected = Vec::new();
                for (n, push) in [first, second].into_iter().enumerate() {
                    let ok = match push {
                        Push::Respond => conn
                            .respond(now, &RequestId::from("r-1"), ActionResult::ok())
                            .is_ok(),
                        Push::Buffered => conn
                            .send_buffered(
                                now,
                                BufferId(format!("b-0-{}", n + 1)),
                                Delivery::from(MessageEvent::default()),
                            )
                            .is_ok(),
                        Push::Live => conn.send_live(now, MessageEvent::default()).is_ok(),
                        Push::Interrupt => conn.send_interrupt(now, "s", "c").is_ok(),
                    };
                    // Answering the same request twice is refused; nothing is written.
                    if ok {
                        expected.push(match push {
                            Push::Respond => "outbound_result",
                            Push::Buffered | Push::Live => "inbound",
                            Push::Interrupt => "interrupt_inbound",
                        });
                    }
                }
                match end {
                    ConnectorEnd::Close => conn.close(now, 1000, "bye"),
                    ConnectorEnd::RejectAuth => conn.reject_auth(now, "unauthorized"),
                    ConnectorEnd::PeerClose => conn.on_closed(now, None, "reset"),
                }
                let outputs: Vec<connector::Output> =
                    std::iter::from_fn(|| conn.poll_output()).collect();
                let case = format!("{first:?}, {second:?} then {end:?}");
                let types: Vec<String> = outputs
                    .iter()
                    .filter_map(|o| match o {
                        connector::Output::Transmit(t) => {
                            let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                            Some(v["type"].as_str().unwrap().to_owned())
                        }
                        _ => None,
                    })
                    .collect();
                if let ConnectorEnd::PeerClose = end {
                    assert!(outputs.is_empty(), "{case}: {outputs:?}");
                    continue;
                }
                assert_eq!(types, expected, "{case}");
                assert!(
                    matches!(
                        outputs.last(),
                        Some(connector::Output::Command(ConnectorCommand::Close { .. }))
                    ),
                    "{case}: the close is not last: {outputs:?}"
                );
                assert!(
                    conn.send_live(now, MessageEvent::default()).is_err(),
                    "{case}: a push after the close"
                );
                assert!(
                    conn.send_buffered(
                        now,
                        BufferId::from("b-0-9"),
                        Delivery::from(MessageEvent::default())
                    )
                    .is_err(),
                    "{case}: a buffered push after the close"
                );
                assert_eq!(conn.poll_output(), None, "{case}");
            }
        }
    }
}

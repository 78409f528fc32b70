//! The handshake (src/connector/handshake.rs): which hellos are taken, which refused, and
//! a refused credential.

use relay_machine::connector::ConnectorError as Refused;
use relay_machine::connector::{
    ConnectorCommand, ConnectorConfig, ConnectorDiagnostic, ConnectorError, ConnectorEvent,
};
use relay_machine::wire::{ActionResult, BufferId, CapabilityDescriptor, RequestId, close};

use relay_machine::testing::SoloConnector;

use crate::fixtures::{HELLO, ack, message};

#[test]
fn a_malformed_hello_announces_nothing_and_the_next_good_one_is_taken() {
    let mut run = SoloConnector::new(ConnectorConfig::default());
    // No botId: the line does not decode.
    run.line(r#"{"type":"hello","platform":"discord"}"#);
    assert!(run.machine.identities().is_empty());
    assert!(matches!(
        run.diagnostics()[..],
        [ConnectorDiagnostic::Decode(_)]
    ));
    assert!(
        run.frames().is_empty(),
        "a hello is never answered by the machine"
    );
    // Nor is a descriptor possible for it.
    assert_eq!(
        run.descriptor("discord"),
        Err(ConnectorError::NotAnnounced("discord".into()))
    );
    run.line(HELLO);
    assert_eq!(run.machine.identities().len(), 1);
    assert_eq!(run.machine.identities()[0].bot_id, "1");
    run.descriptor("discord").unwrap();
    assert!(run.machine.is_handshaken());
    assert_eq!(run.frames().len(), 1);
    assert!(run.frames()[0].starts_with(r#"{"type":"descriptor""#));
    insta::assert_snapshot!(run.log.transcript.render());
}

#[test]
fn a_repeated_platform_and_a_hello_past_max_identities_are_refused() {
    let mut run = SoloConnector::new(ConnectorConfig {
        max_identities: 2,
        ..ConnectorConfig::default()
    });
    run.line(HELLO);
    // The same platform again, even with another bot: refused, the first stays.
    run.line(r#"{"type":"hello","platform":"discord","botId":"2"}"#);
    run.line(r#"{"type":"hello","platform":"telegram","botId":"701"}"#);
    // A third identity, past max_identities (2).
    run.line(r#"{"type":"hello","platform":"slack","botId":"s"}"#);
    let hellos: Vec<_> = run
        .events()
        .iter()
        .filter_map(|e| match e {
            ConnectorEvent::Hello { identity } => {
                Some(format!("{}:{}", identity.platform, identity.bot_id))
            }
            _ => None,
        })
        .collect();
    assert_eq!(hellos, ["discord:1", "telegram:701"]);
    assert_eq!(
        run.diagnostics(),
        [
            ConnectorDiagnostic::RefusedHello("discord".into()),
            ConnectorDiagnostic::RefusedHello("slack".into()),
        ]
    );
    let announced: Vec<_> = run
        .machine
        .identities()
        .iter()
        .map(|i| (i.platform.as_str(), i.bot_id.as_str()))
        .collect();
    assert_eq!(announced, [("discord", "1"), ("telegram", "701")]);
    assert_eq!(
        run.descriptor("slack"),
        Err(ConnectorError::NotAnnounced("slack".into()))
    );
    run.descriptor("discord").unwrap();
    assert!(run.commands().is_empty(), "a refused hello closes nothing");
    insta::assert_snapshot!(run.log.transcript.render());
}

#[test]
fn a_rejected_credential_closes_4401_and_nothing_after_it_is_acted_on() {
    let mut run = SoloConnector::handshaken(ConnectorConfig::default()).unwrap();
    run.line(r#"{"type":"outbound","requestId":"r1","action":{"op":"typing","chat_id":"c"}}"#);
    assert_eq!(run.machine.in_flight(), 1);
    run.log
        .transcript
        .note(run.now, "app", "reject_auth expired");
    run.machine.reject_auth(run.now, close::REASON_EXPIRED);
    run.settle();
    assert_eq!(
        run.commands(),
        [ConnectorCommand::Close {
            code: close::UNAUTHORIZED,
            reason: close::REASON_EXPIRED.into()
        }]
    );
    assert!(run.machine.is_closed());
    let events_before = run.events().len();
    // The peer's frames until its socket ends are not acted on, acks included.
    run.line(&ack(&"b-0-1".into()));
    run.line(r#"{"type":"outbound","requestId":"r2","action":{"op":"typing","chat_id":"c"}}"#);
    assert_eq!(run.events().len(), events_before, "{:?}", run.events());
    // The application's late answer is refused: nothing is written after the close.
    let late = run
        .machine
        .respond(run.now, &RequestId("r1".into()), ActionResult::ok());
    assert_eq!(late, Err(ConnectorError::Closed));
    run.settle();
    assert_eq!(
        run.frames().len(),
        1,
        "only the descriptor: {:?}",
        run.frames()
    );
    insta::assert_snapshot!(run.log.transcript.render());
}

#[test]
fn refusing_the_credential_closes_4401_with_the_reason() {
    let mut run = SoloConnector::new(ConnectorConfig::default());
    run.machine.reject_auth(run.now, "expired");
    run.settle();
    assert_eq!(
        run.commands(),
        [ConnectorCommand::Close {
            code: 4401,
            reason: "expired".into()
        }]
    );
    assert!(run.machine.is_closed());
    // Closed: commands fail, input is ignored.
    assert_eq!(
        run.machine.send_live(run.now, message("x")),
        Err(Refused::Closed)
    );
    assert_eq!(
        run.machine
            .send_buffered(run.now, BufferId::from("b-0-1"), message("x").into()),
        Err(Refused::Closed)
    );
    let m = run.mark();
    run.line(HELLO);
    assert!(run.events_since(m).is_empty());
}

#[test]
fn hellos_past_the_limit_or_repeated_are_refused() {
    let mut run = SoloConnector::new(ConnectorConfig {
        max_identities: 1,
        ..ConnectorConfig::default()
    });
    run.line(r#"{"type":"hello","platform":"discord","botId":"1"}"#);
    run.line(r#"{"type":"hello","platform":"discord","botId":"2"}"#);
    run.line(r#"{"type":"hello","platform":"slack","botId":"3"}"#);
    let events = run.events();
    assert!(matches!(events[0], ConnectorEvent::Hello { .. }));
    assert!(
        matches!(&events[1], ConnectorEvent::Diagnostic(ConnectorDiagnostic::RefusedHello(p)) if p == "discord")
    );
    assert!(
        matches!(&events[2], ConnectorEvent::Diagnostic(ConnectorDiagnostic::RefusedHello(p)) if p == "slack")
    );
    assert_eq!(run.machine.identities().len(), 1);
    assert_eq!(
        run.machine
            .send_descriptor(run.now, CapabilityDescriptor::new("slack", "x")),
        Err(ConnectorError::NotAnnounced("slack".into()))
    );
}

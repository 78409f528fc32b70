//! The handshake (src/connector/handshake.rs): which hellos are taken, which refused, and
//! a refused credential.

use relay_machine::connector::{
    ConnectorCommand, ConnectorConfig, ConnectorDiagnostic, ConnectorError, ConnectorEvent,
};
use relay_machine::wire::{ActionResult, RequestId, close};

use crate::harness::{Conn, HELLO, ack, snap};

#[test]
fn a_malformed_hello_announces_nothing_and_the_next_good_one_is_taken() {
    let mut run = Conn::new(ConnectorConfig::default());
    // No botId: the line does not decode.
    run.line(r#"{"type":"hello","platform":"discord"}"#);
    assert!(run.m.identities().is_empty());
    assert!(matches!(
        run.diagnostics()[..],
        [ConnectorDiagnostic::Decode(_)]
    ));
    assert!(
        run.frames.is_empty(),
        "a hello is never answered by the machine"
    );
    // Nor is a descriptor possible for it.
    assert_eq!(
        run.descriptor("discord"),
        Err(ConnectorError::NotAnnounced("discord".into()))
    );
    run.line(HELLO);
    assert_eq!(run.m.identities().len(), 1);
    assert_eq!(run.m.identities()[0].bot_id, "1");
    run.descriptor("discord").unwrap();
    assert!(run.m.is_handshaken());
    assert_eq!(run.frames.len(), 1);
    assert!(run.frames[0].starts_with(r#"{"type":"descriptor""#));
    snap!(run.transcript);
}

#[test]
fn a_repeated_platform_and_a_hello_past_max_identities_are_refused() {
    let mut run = Conn::new(ConnectorConfig {
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
        .events
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
            &ConnectorDiagnostic::RefusedHello("discord".into()),
            &ConnectorDiagnostic::RefusedHello("slack".into()),
        ]
    );
    let announced: Vec<_> = run
        .m
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
    assert!(run.commands.is_empty(), "a refused hello closes nothing");
    snap!(run.transcript);
}

#[test]
fn a_rejected_credential_closes_4401_and_nothing_after_it_is_acted_on() {
    let mut run = Conn::handshaken(ConnectorConfig::default());
    run.line(r#"{"type":"outbound","requestId":"r1","action":{"op":"typing","chat_id":"c"}}"#);
    assert_eq!(run.m.in_flight(), 1);
    run.transcript.note(run.now, "app", "reject_auth expired");
    run.m.reject_auth(run.now, close::REASON_EXPIRED);
    run.drain();
    assert_eq!(
        run.commands,
        [ConnectorCommand::Close {
            code: close::UNAUTHORIZED,
            reason: close::REASON_EXPIRED.into()
        }]
    );
    assert!(run.m.is_closed());
    let events_before = run.events.len();
    // The peer's frames until its socket ends are not acted on, acks included.
    run.line(&ack(&"b-0-1".into()));
    run.line(r#"{"type":"outbound","requestId":"r2","action":{"op":"typing","chat_id":"c"}}"#);
    assert_eq!(run.events.len(), events_before, "{:?}", run.events);
    // The application's late answer is refused: nothing is written after the close.
    let late = run
        .m
        .respond(run.now, &RequestId("r1".into()), ActionResult::ok());
    assert_eq!(late, Err(ConnectorError::Closed));
    run.drain();
    assert_eq!(run.frames.len(), 1, "only the descriptor: {:?}", run.frames);
    snap!(run.transcript);
}

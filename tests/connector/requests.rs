//! Requests (src/connector/requests.rs): each `outbound` answered exactly once, by the
//! application or, when it cannot be executed, by the machine.

use relay_machine::connector::{
    ConnectorConfig, ConnectorDiagnostic, ConnectorError, ConnectorEvent, UNKNOWN_IDENTITY,
};
use relay_machine::wire::{ActionResult, RequestId};
use serde_json::Value;

use relay_machine::testing::SoloConnector;

use crate::fixtures::{outbound, two_identities};

fn results(run: &SoloConnector) -> Vec<Value> {
    run.frames()
        .iter()
        .map(|f| serde_json::from_str::<Value>(f).unwrap())
        .filter(|f| f["type"] == "outbound_result")
        .collect()
}

#[test]
fn an_outbound_is_answered_exactly_once() {
    let mut run = SoloConnector::handshaken(ConnectorConfig::default()).unwrap();
    run.line(&outbound("r1"));
    assert!(matches!(
        run.events().last(),
        Some(ConnectorEvent::Outbound { request, identity })
            if request.request_id.0 == "r1" && identity.platform == "discord"
    ));
    assert_eq!(run.machine.in_flight(), 1);
    let r1 = RequestId("r1".into());
    run.log.transcript.note(run.now, "app", "respond r1 ok");
    run.machine
        .respond(run.now, &r1, ActionResult::ok())
        .unwrap();
    run.settle();
    assert_eq!(run.machine.in_flight(), 0);
    // A second answer is refused and writes nothing.
    run.log.transcript.note(run.now, "app", "respond r1 again");
    let again = run.machine.respond(run.now, &r1, ActionResult::ok());
    assert_eq!(again, Err(ConnectorError::UnknownRequest(r1.clone())));
    run.settle();
    // So is an answer for a request never received.
    let never = RequestId("r9".into());
    assert_eq!(
        run.machine.respond(run.now, &never, ActionResult::ok()),
        Err(ConnectorError::UnknownRequest(never))
    );
    let results = results(&run);
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["requestId"], "r1");
    assert_eq!(results[0]["result"]["success"], true);
    insta::assert_snapshot!(run.log.transcript.render());
}

#[test]
fn a_repeated_open_request_id_is_ignored_not_handed_out_twice() {
    let mut run = SoloConnector::handshaken(ConnectorConfig::default()).unwrap();
    run.line(&outbound("r1"));
    run.line(&outbound("r1"));
    let handed = run
        .events()
        .iter()
        .filter(|e| matches!(e, ConnectorEvent::Outbound { .. }))
        .count();
    assert_eq!(handed, 1);
    assert_eq!(
        run.diagnostics(),
        [ConnectorDiagnostic::DuplicateRequest(RequestId(
            "r1".into()
        ))]
    );
    assert!(
        results(&run).is_empty(),
        "the open one is the application's to answer"
    );
    insta::assert_snapshot!(run.log.transcript.render());
}

#[test]
fn an_outbound_for_an_unannounced_identity_is_answered_by_the_machine() {
    let mut run = SoloConnector::handshaken(ConnectorConfig::default()).unwrap();
    // Another platform, and the announced platform with another bot.
    run.line(
        r#"{"type":"outbound","requestId":"a","action":{"op":"typing","chat_id":"c"},"platform":"slack"}"#,
    );
    run.line(
        r#"{"type":"outbound","requestId":"b","action":{"op":"typing","chat_id":"c"},"platform":"discord","botId":"999"}"#,
    );
    assert!(
        !run.events()
            .iter()
            .any(|e| matches!(e, ConnectorEvent::Outbound { .. })),
        "never handed to the application"
    );
    assert_eq!(run.machine.in_flight(), 0);
    let results = results(&run);
    assert_eq!(results.len(), 2);
    for (result, id) in results.iter().zip(["a", "b"]) {
        assert_eq!(result["requestId"], id);
        assert_eq!(result["result"]["success"], false);
        assert_eq!(result["result"]["code"], UNKNOWN_IDENTITY);
    }
    assert!(matches!(
        run.diagnostics()[..],
        [
            ConnectorDiagnostic::UnknownIdentity { .. },
            ConnectorDiagnostic::UnknownIdentity { .. }
        ]
    ));
    insta::assert_snapshot!(run.log.transcript.render());
}

#[test]
fn past_max_open_requests_an_outbound_is_answered_connector_busy() {
    let mut run = SoloConnector::handshaken(ConnectorConfig {
        max_open_requests: 2,
        ..ConnectorConfig::default()
    })
    .unwrap();
    run.line(&outbound("r1"));
    run.line(&outbound("r2"));
    run.line(&outbound("r3"));
    assert_eq!(run.machine.in_flight(), 2);
    let results = results(&run);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["requestId"], "r3");
    assert_eq!(results[0]["result"]["success"], false);
    assert!(
        results[0]["result"]["error"]
            .as_str()
            .unwrap()
            .starts_with("connector busy"),
        "{results:?}"
    );
    assert_eq!(
        run.diagnostics(),
        [ConnectorDiagnostic::TooManyRequests(RequestId("r3".into()))]
    );
    // r3 was answered: the application cannot answer it again.
    assert!(
        run.machine
            .respond(run.now, &RequestId("r3".into()), ActionResult::ok())
            .is_err()
    );
    // Room frees when one is answered: the next is taken.
    run.log.transcript.note(run.now, "app", "respond r1 ok");
    run.machine
        .respond(run.now, &RequestId("r1".into()), ActionResult::ok())
        .unwrap();
    run.settle();
    run.line(&outbound("r4"));
    assert_eq!(run.machine.in_flight(), 2);
    assert!(matches!(
        run.events().last(),
        Some(ConnectorEvent::Outbound { request, .. }) if request.request_id.0 == "r4"
    ));
    insta::assert_snapshot!(run.log.transcript.render());
}

#[test]
fn outbound_resolves_its_identity_and_gets_exactly_one_result() {
    let mut run = two_identities();
    assert_eq!(
        run.machine.identities()[0].platform,
        "discord",
        "first hello is the default"
    );
    // Untagged: the session default. Tagged: that identity.
    let m = run.mark();
    run.line(
        r#"{"type":"outbound","requestId":"r1","action":{"op":"send","chat_id":"c","content":"x","reply_to":null}}"#,
    );
    run.line(
        r#"{"type":"outbound","requestId":"r2","action":{"op":"typing","chat_id":"c"},"platform":"telegram","botId":"222"}"#,
    );
    let identities: Vec<_> = run
        .events_since(m)
        .into_iter()
        .map(|e| match e {
            ConnectorEvent::Outbound { request, identity } => {
                (request.request_id.0, identity.platform.clone())
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        identities,
        [
            ("r1".into(), "discord".into()),
            ("r2".into(), "telegram".into())
        ]
    );
    assert_eq!(run.machine.in_flight(), 2);
    let m = run.mark();
    run.machine
        .respond(run.now, &RequestId::from("r1"), ActionResult::ok())
        .unwrap();
    assert_eq!(
        run.machine
            .respond(run.now, &RequestId::from("r1"), ActionResult::ok()),
        Err(ConnectorError::UnknownRequest(RequestId::from("r1")))
    );
    run.settle();
    let out = run.frames_since(m);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["requestId"], "r1");
    // A duplicate of a still-open id is ignored, not executed twice.
    let m = run.mark();
    run.line(r#"{"type":"outbound","requestId":"r2","action":{"op":"typing","chat_id":"c"}}"#);
    assert_eq!(
        run.events_since(m),
        [ConnectorEvent::Diagnostic(
            ConnectorDiagnostic::DuplicateRequest(RequestId::from("r2"))
        )]
    );
    assert!(run.frames_since(m).is_empty());
}

#[test]
fn an_unannounced_identity_is_answered_with_a_structured_failure() {
    let mut run = two_identities();
    let m = run.mark();
    for line in [
        r#"{"type":"outbound","requestId":"a","action":{"op":"send","chat_id":"c","content":"x"},"platform":"slack"}"#,
        r#"{"type":"outbound","requestId":"b","action":{"op":"send","chat_id":"c","content":"x"},"platform":"discord","botId":"999"}"#,
    ] {
        run.line(line);
    }
    let out = run.frames_since(m);
    assert_eq!(out.len(), 2);
    for result in &out {
        assert_eq!(result["type"], "outbound_result");
        assert_eq!(result["result"]["success"], false);
        assert_eq!(result["result"]["code"], UNKNOWN_IDENTITY);
    }
    assert_eq!(run.machine.in_flight(), 0);
    assert!(run.events_since(m).iter().all(|e| matches!(
        e,
        ConnectorEvent::Diagnostic(ConnectorDiagnostic::UnknownIdentity { .. })
    )));
}

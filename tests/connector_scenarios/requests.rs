//! Requests (src/connector/requests.rs): each `outbound` answered exactly once, by the
//! application or, when it cannot be executed, by the machine.

use relay_machine::connector::{
    ConnectorConfig, ConnectorDiagnostic, ConnectorError, ConnectorEvent, UNKNOWN_IDENTITY,
};
use relay_machine::wire::{ActionResult, RequestId};
use serde_json::Value;

use crate::harness::{Conn, snap};

fn outbound(id: &str) -> String {
    format!(r#"{{"type":"outbound","requestId":"{id}","action":{{"op":"typing","chat_id":"c"}}}}"#)
}

fn results(run: &Conn) -> Vec<Value> {
    run.frames
        .iter()
        .map(|f| serde_json::from_str::<Value>(f).unwrap())
        .filter(|f| f["type"] == "outbound_result")
        .collect()
}

#[test]
fn an_outbound_is_answered_exactly_once() {
    let mut run = Conn::handshaken(ConnectorConfig::default());
    run.line(&outbound("r1"));
    assert!(matches!(
        run.events.last(),
        Some(ConnectorEvent::Outbound { request_id, identity, .. })
            if request_id.0 == "r1" && identity.platform == "discord"
    ));
    assert_eq!(run.m.in_flight(), 1);
    let r1 = RequestId("r1".into());
    run.transcript.note(run.now, "app", "respond r1 ok");
    run.m.respond(run.now, &r1, ActionResult::ok()).unwrap();
    run.drain();
    assert_eq!(run.m.in_flight(), 0);
    // A second answer is refused and writes nothing.
    run.transcript.note(run.now, "app", "respond r1 again");
    let again = run.m.respond(run.now, &r1, ActionResult::ok());
    assert_eq!(again, Err(ConnectorError::UnknownRequest(r1.clone())));
    run.drain();
    // So is an answer for a request never received.
    let never = RequestId("r9".into());
    assert_eq!(
        run.m.respond(run.now, &never, ActionResult::ok()),
        Err(ConnectorError::UnknownRequest(never))
    );
    let results = results(&run);
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["requestId"], "r1");
    assert_eq!(results[0]["result"]["success"], true);
    snap!(run.transcript);
}

#[test]
fn a_repeated_open_request_id_is_ignored_not_handed_out_twice() {
    let mut run = Conn::handshaken(ConnectorConfig::default());
    run.line(&outbound("r1"));
    run.line(&outbound("r1"));
    let handed = run
        .events
        .iter()
        .filter(|e| matches!(e, ConnectorEvent::Outbound { .. }))
        .count();
    assert_eq!(handed, 1);
    assert_eq!(
        run.diagnostics(),
        [&ConnectorDiagnostic::DuplicateRequest(RequestId(
            "r1".into()
        ))]
    );
    assert!(
        results(&run).is_empty(),
        "the open one is the application's to answer"
    );
    snap!(run.transcript);
}

#[test]
fn an_outbound_for_an_unannounced_identity_is_answered_by_the_machine() {
    let mut run = Conn::handshaken(ConnectorConfig::default());
    // Another platform, and the announced platform with another bot.
    run.line(
        r#"{"type":"outbound","requestId":"a","action":{"op":"typing","chat_id":"c"},"platform":"slack"}"#,
    );
    run.line(
        r#"{"type":"outbound","requestId":"b","action":{"op":"typing","chat_id":"c"},"platform":"discord","botId":"999"}"#,
    );
    assert!(
        !run.events
            .iter()
            .any(|e| matches!(e, ConnectorEvent::Outbound { .. })),
        "never handed to the application"
    );
    assert_eq!(run.m.in_flight(), 0);
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
    snap!(run.transcript);
}

#[test]
fn past_max_open_requests_an_outbound_is_answered_connector_busy() {
    let mut run = Conn::handshaken(ConnectorConfig {
        max_open_requests: 2,
        ..ConnectorConfig::default()
    });
    run.line(&outbound("r1"));
    run.line(&outbound("r2"));
    run.line(&outbound("r3"));
    assert_eq!(run.m.in_flight(), 2);
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
        [&ConnectorDiagnostic::TooManyRequests(RequestId(
            "r3".into()
        ))]
    );
    // r3 was answered: the application cannot answer it again.
    assert!(
        run.m
            .respond(run.now, &RequestId("r3".into()), ActionResult::ok())
            .is_err()
    );
    // Room frees when one is answered: the next is taken.
    run.transcript.note(run.now, "app", "respond r1 ok");
    run.m
        .respond(run.now, &RequestId("r1".into()), ActionResult::ok())
        .unwrap();
    run.drain();
    run.line(&outbound("r4"));
    assert_eq!(run.m.in_flight(), 2);
    assert!(matches!(
        run.events.last(),
        Some(ConnectorEvent::Outbound { request_id, .. }) if request_id.0 == "r4"
    ));
    snap!(run.transcript);
}

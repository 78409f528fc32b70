//! Decoding (the codec under src/connector/mod.rs): a bad line is salvaged when it names a
//! request, and the connection goes on.

use relay_machine::connector::{
    ConnectorConfig, ConnectorDiagnostic, ConnectorEvent, INVALID_ACTION,
};
use serde_json::Value;

use relay_machine::testing::SoloConnector;

use crate::fixtures::HELLO;

#[test]
fn a_bad_outbound_naming_its_request_is_answered_invalid_action_and_the_next_frame_handled() {
    let mut run = SoloConnector::handshaken(ConnectorConfig::default()).unwrap();
    // `typing` without its chat_id, then a good request.
    run.line(r#"{"type":"outbound","requestId":"bad","action":{"op":"typing"}}"#);
    run.line(r#"{"type":"outbound","requestId":"good","action":{"op":"typing","chat_id":"c"}}"#);
    let results: Vec<Value> = run
        .frames()
        .iter()
        .map(|f| serde_json::from_str::<Value>(f).unwrap())
        .filter(|f| f["type"] == "outbound_result")
        .collect();
    assert_eq!(results.len(), 1, "{results:?}");
    assert_eq!(results[0]["requestId"], "bad");
    assert_eq!(results[0]["result"]["success"], false);
    assert_eq!(results[0]["result"]["code"], INVALID_ACTION);
    assert!(matches!(
        run.diagnostics()[..],
        [ConnectorDiagnostic::Decode(_)]
    ));
    // The connection survives: the next frame reached the application.
    assert!(!run.machine.is_closed());
    assert!(run.commands().is_empty());
    assert!(matches!(
        run.events().last(),
        Some(ConnectorEvent::Outbound { request, .. }) if request.request_id.0 == "good"
    ));
    assert_eq!(run.machine.in_flight(), 1);
    // A line that is not JSON at all names nothing: a diagnostic only.
    run.line("not json");
    assert_eq!(run.diagnostics().len(), 2);
    assert_eq!(
        run.frames().len(),
        2,
        "descriptor and the one salvage answer"
    );
    insta::assert_snapshot!(run.log.transcript.render());
}

/// Before any descriptor, too: an outbound that does not decode but names its request is
/// answered (failed, `invalid_action`) instead of being dropped.
#[test]
fn the_connector_answers_an_undecodable_outbound_instead_of_dropping_it() {
    let mut run = SoloConnector::new(ConnectorConfig::default());
    run.line(HELLO);
    let m = run.mark();
    run.line(
        r#"{"type":"outbound","requestId":"r-1","action":{"op":"send","chat_id":5,"content":"x"}}"#,
    );
    let out = run.frames_since(m);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["type"], "outbound_result");
    assert_eq!(out[0]["requestId"], "r-1");
    assert_eq!(out[0]["result"]["success"], false);
    assert_eq!(out[0]["result"]["code"], INVALID_ACTION);
    assert_eq!(run.machine.in_flight(), 0);
}

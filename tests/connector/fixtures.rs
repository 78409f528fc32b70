//! Lines the scripted gateway writes, shared by the connector scenarios.

use relay_machine::connector::ConnectorConfig;
use relay_machine::testing::SoloConnector;
use relay_machine::wire::{BufferId, MessageEvent};

pub use relay_machine::testing::HELLO;

/// A line of `inbound_ack` for `id`.
pub fn ack(id: &BufferId) -> String {
    format!(r#"{{"type":"inbound_ack","bufferId":"{id}"}}"#)
}

/// An `outbound` line for request `id`: a typing action on chat `c`.
pub fn outbound(id: &str) -> String {
    format!(r#"{{"type":"outbound","requestId":"{id}","action":{{"op":"typing","chat_id":"c"}}}}"#)
}

/// A delivery with `text`.
pub fn message(text: &str) -> MessageEvent {
    MessageEvent {
        text: text.into(),
        ..MessageEvent::default()
    }
}

/// A machine with two identities, discord (`111`, the default: its hello came first) and
/// telegram (`222`), both answered with a descriptor.
pub fn two_identities() -> SoloConnector {
    let mut run = SoloConnector::new(ConnectorConfig::default());
    run.line(r#"{"type":"hello","platform":"discord","botId":"111"}"#);
    run.line(r#"{"type":"hello","platform":"telegram","botId":"222"}"#);
    run.descriptor("discord").unwrap();
    run.descriptor("telegram").unwrap();
    assert_eq!(run.frames().len(), 2);
    run
}

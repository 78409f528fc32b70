//! Every public outcome type displays for people: a lower-case phrase or a one-line
//! summary, never its Debug form. These strings are what logs and the examples print, so
//! they are pinned here.
#![allow(clippy::unwrap_used, clippy::panic, clippy::wildcard_enum_match_arm)]

use std::error::Error;

use relay_machine::codec::{DecodeErrorKind, FrameDecoder, Salvage};
use relay_machine::connector::{
    self, ConnId, ConnectorCommand, ConnectorDiagnostic, ConnectorEvent, InstanceOutput,
};
use relay_machine::gateway::{
    self, ConnectFailure, ConnectionCommand, Diagnostic, DialPurpose, GatewayEvent, GatewayState,
    RequestFailure, TimerKind,
};
use relay_machine::wire::{ActionResult, BufferId, RequestId};

/// An error whose Display is `expected` and that is usable as `dyn Error`.
fn error_displays(error: &(dyn Error + 'static), expected: &str) {
    assert_eq!(error.to_string(), expected);
}

#[test]
fn connect_failures_are_errors_in_words() {
    error_displays(
        &ConnectFailure::Unauthorized {
            reason: "unauthorized".into(),
        },
        "the connector refused the credential (4401 \"unauthorized\")",
    );
    error_displays(
        &ConnectFailure::Closed {
            code: Some(1006),
            reason: "reset".into(),
        },
        "the socket closed before the handshake (1006 \"reset\")",
    );
    error_displays(
        &ConnectFailure::Dial("connection refused".into()),
        "dial failed: connection refused",
    );
    error_displays(
        &ConnectFailure::HandshakeTimeout,
        "no descriptor within the handshake timeout",
    );
    error_displays(&RequestFailure::Timeout, "relay outbound timed out");
}

#[test]
fn decode_errors_and_their_kinds() {
    let mut decoder = FrameDecoder::new();
    decoder.push(b"{\"type\":\"hello\",\"platform\":\"discord\"}\nnot json\n");
    let first = decoder.next_frame().unwrap().unwrap_err();
    assert_eq!(first.kind.to_string(), "invalid_frame");
    assert_eq!(
        first.to_string(),
        "line 1, byte 36: invalid_frame (hello): missing field `botId`"
    );
    let second = decoder.next_frame().unwrap().unwrap_err();
    assert_eq!(DecodeErrorKind::InvalidJson.to_string(), "invalid_json");
    assert_eq!(
        second.to_string(),
        "line 2, byte 39: invalid_json: expected ident"
    );
    error_displays(&second, &second.to_string());

    assert_eq!(
        Salvage::Outbound(RequestId::from("r-1")).to_string(),
        "outbound r-1"
    );
    assert_eq!(
        Salvage::Delivery(BufferId::from("b-1")).to_string(),
        "delivery b-1"
    );

    let diagnostic = Diagnostic::Decode(second.clone());
    assert_eq!(
        diagnostic.to_string(),
        format!("undecodable line: {second}")
    );
}

#[test]
fn gateway_diagnostics_states_and_commands() {
    assert_eq!(
        Diagnostic::UnknownResult(RequestId::from("r-9")).to_string(),
        "result for no pending request r-9"
    );
    assert_eq!(
        Diagnostic::TooManyDescriptors("slack".into()).to_string(),
        "descriptor for \"slack\" dropped: too many platforms"
    );
    assert_eq!(
        DialPurpose::FreshToken.to_string(),
        "re-dial with a fresh token"
    );
    assert_eq!(
        ConnectionCommand::Dial {
            generation: 3,
            purpose: DialPurpose::Backoff,
        }
        .to_string(),
        "dial #3 (backoff re-dial)"
    );
    assert_eq!(
        ConnectionCommand::Close {
            code: 1000,
            reason: "bye".into(),
        }
        .to_string(),
        "close 1000 \"bye\""
    );
    assert_eq!(
        GatewayState::AwaitingDescriptor.to_string(),
        "awaiting descriptor"
    );
    assert_eq!(TimerKind::GoIdle.to_string(), "go_idle");
    assert_eq!(
        gateway::Output::Command(ConnectionCommand::Ping).to_string(),
        "command ping"
    );
}

#[test]
fn gateway_events_are_one_line_summaries() {
    assert_eq!(
        GatewayEvent::HandshakeComplete {
            platform: "discord".into(),
        }
        .to_string(),
        "HandshakeComplete default=discord"
    );
    assert_eq!(
        GatewayEvent::Disconnected {
            code: Some(1006),
            reason: "reset".into(),
        }
        .to_string(),
        "Disconnected 1006 \"reset\""
    );
    assert_eq!(
        gateway::Output::Event(GatewayEvent::Closed).to_string(),
        "event Closed"
    );
}

#[test]
fn action_results_say_the_outcome() {
    assert_eq!(ActionResult::ok().to_string(), "ok");
    assert_eq!(
        ActionResult::ok_with_message("m-1").to_string(),
        "ok message m-1"
    );
    assert_eq!(
        ActionResult::failure("blocked", Some("egress_declined")).to_string(),
        "failed (egress_declined): blocked"
    );
    assert_eq!(
        ActionResult::failure("missing permission", None).to_string(),
        "failed: missing permission"
    );
}

#[test]
fn connector_outcomes() {
    assert_eq!(
        ConnectorDiagnostic::DuplicateRequest(RequestId::from("r-1")).to_string(),
        "outbound r-1 repeats an open request, ignored"
    );
    assert_eq!(
        ConnectorEvent::Acked(BufferId::from("b-1")).to_string(),
        "Acked b-1"
    );
    assert_eq!(
        ConnectorCommand::Close {
            code: 4401,
            reason: "unauthorized".into(),
        }
        .to_string(),
        "close 4401 \"unauthorized\""
    );
    assert_eq!(
        connector::Output::Command(ConnectorCommand::Abort).to_string(),
        "command abort"
    );
    assert_eq!(
        InstanceOutput::Event(ConnId(1), ConnectorEvent::WentIdle).to_string(),
        "#1 event WentIdle"
    );
    assert_eq!(
        InstanceOutput::Acked(BufferId::from("b-3")).to_string(),
        "acked b-3"
    );
    assert_eq!(InstanceOutput::WakeNeeded.to_string(), "wake needed");
    error_displays(
        &connector::ConnectorError::UnknownConnection(ConnId(7)),
        "no connection #7",
    );
}

#[cfg(feature = "auth")]
#[test]
fn tokens() {
    use relay_machine::auth::{TokenError, mint_token, verify_token};

    let token = mint_token("gw-1", "s3", 60, 1_700_000_000);
    let verified = verify_token(&token, &["s3"], 1_700_000_000).unwrap();
    assert_eq!(
        verified.to_string(),
        "gateway gw-1, expires at unix 1700000060"
    );
    error_displays(
        &TokenError::Expired {
            expires_at: 1_700_000_060,
        },
        "token expired at unix time 1700000060",
    );
}

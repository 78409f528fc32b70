//! Memory and liveness under attack (docs/limits.md): each test floods one limit, checks
//! that memory stays bounded and the machine keeps its promises, then checks that
//! well-formed traffic still works. Time is an input, so nothing here sleeps.
// The pair harness needs the `testing` feature. The repository's self dev-dependency
// turns it on for `cargo test`, and tests/features.rs fails there should it ever be off;
// the published package runs these with `--features testing`.
#![cfg(feature = "testing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use relay_machine::codec::{DEFAULT_MAX_FRAME_LEN, DecodeErrorKind, FrameDecoder, encode};
use relay_machine::connector::{
    ConnectorConfig, ConnectorDiagnostic, ConnectorEvent, ConnectorMachine,
};
const MAX_IDENTITIES: usize = 64;

use relay_machine::gateway::{
    ConnectFailure, ConnectionCommand, Diagnostic, GatewayConfig, GatewayEvent, GatewayState,
    Identity, RelayMachine, RequestFailure, SendError,
};
use relay_machine::testing::{split_connector, split_gateway};
use relay_machine::wire::{
    ActionResult, BufferId, CapabilityDescriptor, Descriptor, Frame, Inbound, MessageEvent,
    Outbound, OutboundResult, RequestId, SendAction, SessionSource,
};

/// Bytes without a newline, as one WebSocket message of a flood.
fn no_newline(len: usize) -> Vec<u8> {
    vec![b'a'; len]
}

fn send_action(chat: &str) -> SendAction {
    SendAction {
        chat_id: chat.into(),
        content: "hi".into(),
        ..SendAction::default()
    }
}

fn descriptor_line() -> bytes::Bytes {
    encode(&Frame::Descriptor(Descriptor {
        descriptor: Box::new(CapabilityDescriptor::new("discord", "Discord")),
    }))
}

fn result_line(id: &RequestId) -> bytes::Bytes {
    encode(&Frame::OutboundResult(OutboundResult {
        request_id: id.clone(),
        result: Box::new(ActionResult::ok_with_message("m-1")),
    }))
}

fn inbound_line(chat: &str, buffer_id: Option<&str>) -> bytes::Bytes {
    encode(&Frame::from(Inbound {
        event: Box::new(MessageEvent {
            text: "hi".into(),
            source: SessionSource::new("discord", "group", chat),
            ..MessageEvent::default()
        }),
        buffer_id: buffer_id.map(BufferId::from),
    }))
}

/// Takes every output; returns the events.
fn drain(gw: &mut RelayMachine) -> Vec<GatewayEvent> {
    split_gateway(gw).events
}

/// A gateway with an open connection at `t0`.
fn open_gateway(config: GatewayConfig) -> (RelayMachine, Instant) {
    let config = GatewayConfig {
        identities: vec![Identity::new("discord", "111")],
        ..config
    };
    let mut gw = RelayMachine::new(config, 0).unwrap();
    let t0 = Instant::now();
    gw.connect(t0).unwrap();
    gw.on_connected(t0, gw.generation());
    gw.handle_input(t0, descriptor_line());
    drain(&mut gw);
    assert_eq!(gw.state(), GatewayState::Open);
    (gw, t0)
}

/// Well-formed traffic after an attack: a request goes out and its result comes back.
fn still_serves(gw: &mut RelayMachine, now: Instant) {
    let id = gw.send(now, send_action("after"), None).unwrap();
    drain(gw);
    gw.handle_input(now, result_line(&id));
    let events = drain(gw);
    assert!(
        events.iter().any(|e| matches!(
            e,
            GatewayEvent::Response { id: got, result: Ok(r) } if *got == id && r.success
        )),
        "no response after the attack: {events:?}"
    );
}

fn too_long_count(events: &[GatewayEvent]) -> usize {
    events
        .iter()
        .filter(|e| {
            matches!(e, GatewayEvent::Diagnostic(Diagnostic::Decode(d))
                if d.kind == DecodeErrorKind::FrameTooLong)
        })
        .count()
}

// ----- frame length -----------------------------------------------------------------

/// 64 MB with no newline, in 64 KB messages: one `FrameTooLong`, nothing stored beyond
/// the limit, and the next line decodes.
#[test]
fn an_endless_line_is_reported_once_and_never_stored() {
    let chunk = no_newline(64 * 1024);
    let mut decoder = FrameDecoder::new();
    let mut errors = 0;
    for _ in 0..1024 {
        decoder.push(&chunk);
        assert!(decoder.buffered_len() <= DEFAULT_MAX_FRAME_LEN);
        while let Some(item) = decoder.next_frame() {
            assert_eq!(item.unwrap_err().kind, DecodeErrorKind::FrameTooLong);
            errors += 1;
        }
    }
    assert_eq!(errors, 1, "an over-long line is reported exactly once");
    assert_eq!(decoder.buffered_len(), 0, "skipped bytes are not kept");

    // The same through a gateway: one diagnostic, the connection stays open and works.
    let (mut gw, t0) = open_gateway(GatewayConfig::default());
    let mut events = Vec::new();
    for _ in 0..1024 {
        gw.handle_input(t0, &chunk);
        assert!(gw.buffered_len() <= DEFAULT_MAX_FRAME_LEN);
        events.extend(drain(&mut gw));
    }
    assert_eq!(too_long_count(&events), 1);
    assert_eq!(
        events.len(),
        1,
        "only the one diagnostic: {:?}",
        events.len()
    );
    gw.handle_input(t0, b"\n");
    assert_eq!(gw.state(), GatewayState::Open);
    still_serves(&mut gw, t0);
}

/// A 100 MB line that does end: one `FrameTooLong`, then the next frame decodes.
#[test]
fn a_100_mb_line_then_a_good_frame() {
    let chunk = no_newline(64 * 1024);
    let mut decoder = FrameDecoder::new();
    let mut sent = 0;
    while sent < 100_000_000 {
        decoder.push(&chunk);
        sent += chunk.len();
        assert!(decoder.buffered_len() <= DEFAULT_MAX_FRAME_LEN);
    }
    let mut tail = b"\n".to_vec();
    tail.extend_from_slice(&encode(&Frame::GoingIdleAck));
    decoder.push(&tail);
    let items: Vec<_> = std::iter::from_fn(|| decoder.next_frame()).collect();
    assert_eq!(items.len(), 2, "{items:?}");
    let error = items[0].clone().unwrap_err();
    assert_eq!(error.kind, DecodeErrorKind::FrameTooLong);
    assert_eq!((error.line, error.offset), (1, 0));
    assert_eq!(items[1], Ok(Frame::GoingIdleAck));
    assert_eq!(decoder.buffered_len(), 0);
}

/// A line of exactly the limit decodes; one byte more is too long (the limit counts the
/// line without its `\n`).
#[test]
fn the_limit_is_inclusive() {
    let frame = encode(&Frame::GoingIdleAck);
    let len = frame.len() - 1;
    let mut at_limit = FrameDecoder::with_max_frame_len(len);
    at_limit.push(&frame);
    assert_eq!(at_limit.next_frame(), Some(Ok(Frame::GoingIdleAck)));
    let mut below = FrameDecoder::with_max_frame_len(len - 1);
    below.push(&frame);
    assert_eq!(
        below.next_frame().unwrap().unwrap_err().kind,
        DecodeErrorKind::FrameTooLong
    );
}

/// The connector bounds its input the same way; an over-long `outbound` cannot be
/// answered (its id was never read), so the gateway's request times out as ambiguous.
#[test]
fn the_connector_skips_an_endless_line() {
    let config = ConnectorConfig {
        max_frame_len: 4096,
        ..ConnectorConfig::default()
    };
    let mut conn = ConnectorMachine::new(config, std::time::Instant::now());
    let now = Instant::now();
    let chunk = no_newline(64 * 1024);
    for _ in 0..64 {
        conn.handle_input(now, &chunk);
        assert!(conn.buffered_len() <= 4096);
    }
    conn.handle_input(now, b"\n");
    let out = split_connector(&mut conn);
    let events = out.events;
    assert!(
        matches!(events.as_slice(), [ConnectorEvent::Diagnostic(ConnectorDiagnostic::Decode(e))]
            if e.kind == DecodeErrorKind::FrameTooLong),
        "{events:?}"
    );
    assert!(out.transmits.is_empty(), "nothing to answer");
    conn.handle_input(
        now,
        encode(&Frame::from(Identity {
            platform: "discord".into(),
            bot_id: String::new(),
            command_manifest: None,
        })),
    );
    assert!(matches!(
        split_connector(&mut conn).events.first(),
        Some(ConnectorEvent::Hello { .. })
    ));
}

// ----- many frames ------------------------------------------------------------------

/// Frames in the floods that run by default. A million takes 5–10 s per test in the debug
/// profile (serde decoding unoptimised), too slow for every `cargo test`; 100,000 is
/// well past every limit and keeps each test around a second. The million-scale variants
/// are `#[ignore]`d; run them with
/// `cargo test --release --test limits -- --ignored` (about a second each).
const FLOOD: usize = 100_000;

/// The million of the issue, for the ignored release-profile variants.
const MILLION: usize = 1_000_000;

/// Frames per WebSocket message in the floods: many per message, as a coalescing peer
/// sends them, and the machine is drained after each message.
const BATCH: usize = 1000;

/// 100,000 tiny frames (interrupts) through a gateway, drained after every message:
/// every one becomes one event, nothing is retained, the limits hold.
#[test]
fn a_flood_of_tiny_frames_leaves_nothing_behind() {
    tiny_frames(FLOOD);
}

/// [`a_flood_of_tiny_frames_leaves_nothing_behind`] with a million frames.
#[test]
#[ignore = "release profile: cargo test --release --test limits -- --ignored"]
fn a_million_tiny_frames_leave_nothing_behind() {
    tiny_frames(MILLION);
}

fn tiny_frames(n: usize) {
    let (mut gw, t0) = open_gateway(GatewayConfig::default());
    let pending = gw.send(t0, send_action("c"), None).unwrap();
    drain(&mut gw);
    let line = br#"{"type":"interrupt_inbound","session_key":"s","chat_id":"c"}"#;
    let mut message = Vec::with_capacity(BATCH * (line.len() + 1));
    for _ in 0..BATCH {
        message.extend_from_slice(line);
        message.push(b'\n');
    }
    let mut interrupts = 0;
    for _ in 0..n / BATCH {
        gw.handle_input(t0, &message);
        for event in drain(&mut gw) {
            assert!(matches!(event, GatewayEvent::Interrupt { .. }), "{event:?}");
            interrupts += 1;
        }
        assert_eq!(gw.buffered_len(), 0);
        assert_eq!(gw.in_flight(), 1);
        assert_eq!(gw.unacked(), 0);
    }
    assert_eq!(interrupts, n / BATCH * BATCH);
    assert!(gw.poll_output().is_none());
    // The request sent before the flood still resolves.
    gw.handle_input(t0, result_line(&pending));
    assert!(matches!(
        drain(&mut gw).as_slice(),
        [GatewayEvent::Response { result: Ok(_), .. }]
    ));
    still_serves(&mut gw, t0);
}

/// 100,000 results for ids that are not pending: one diagnostic each, nothing else;
/// `in_flight` unchanged and a real pending request still resolves.
#[test]
fn a_flood_of_unknown_results_is_only_diagnostics() {
    unknown_results(FLOOD);
}

/// [`a_flood_of_unknown_results_is_only_diagnostics`] with a million results.
#[test]
#[ignore = "release profile: cargo test --release --test limits -- --ignored"]
fn a_million_unknown_results_are_only_diagnostics() {
    unknown_results(MILLION);
}

fn unknown_results(n: usize) {
    let (mut gw, t0) = open_gateway(GatewayConfig::default());
    let pending = gw.send(t0, send_action("c"), None).unwrap();
    drain(&mut gw);
    let mut message = Vec::new();
    for i in 0..BATCH {
        message.extend_from_slice(&result_line(&RequestId::from(format!("bogus-{i}"))));
    }
    let mut diagnostics = 0;
    for _ in 0..n / BATCH {
        gw.handle_input(t0, &message);
        for event in drain(&mut gw) {
            // At most 64 are queued per input; the rest are counted in one `Suppressed`.
            diagnostics += match event {
                GatewayEvent::Diagnostic(Diagnostic::UnknownResult(_)) => 1,
                GatewayEvent::Diagnostic(Diagnostic::Suppressed(n)) => n as usize,
                other => panic!("{other:?}"),
            };
        }
        assert_eq!(gw.in_flight(), 1);
    }
    assert_eq!(diagnostics, n / BATCH * BATCH);
    gw.handle_input(t0, result_line(&pending));
    let events = drain(&mut gw);
    assert!(
        matches!(events.as_slice(), [GatewayEvent::Response { id, result: Ok(_) }] if *id == pending)
    );
    assert_eq!(gw.in_flight(), 0);
    still_serves(&mut gw, t0);
}

/// Buffered inbound that is never acked: the machine remembers at most `delivery_memory`,
/// forgetting the oldest (acking it fails; the connector redelivers it on the next
/// connection), and keeps serving. Each delivery also names a new chat, so the route
/// table is flooded too: it keeps only the most recent `route_capacity` chats.
#[test]
fn a_flood_of_unacked_deliveries_is_bounded() {
    let config = GatewayConfig {
        delivery_memory: 4096,
        route_capacity: 4096,
        ..GatewayConfig::default()
    };
    let (mut gw, t0) = open_gateway(config);
    let n = 5 * 4096;
    let mut message = Vec::new();
    for i in 0..n {
        message.extend_from_slice(&inbound_line(&format!("chat-{i}"), Some(&format!("b-{i}"))));
        if (i + 1) % 1024 == 0 {
            gw.handle_input(t0, &message);
            message.clear();
            let events = drain(&mut gw);
            assert_eq!(events.len(), 1024);
            assert!(gw.unacked() <= 4096);
        }
    }
    assert_eq!(gw.unacked(), 4096);
    assert!(
        gw.route("chat-0").is_none(),
        "the oldest route is forgotten"
    );
    assert!(gw.route(&format!("chat-{}", n - 1)).is_some());
    assert_eq!(
        gw.ack_inbound(t0, &BufferId::from("b-0")),
        Err(relay_machine::gateway::AckError::Unknown(BufferId::from(
            "b-0"
        ))),
        "the oldest is forgotten"
    );
    let newest = BufferId(format!("b-{}", n - 1).into());
    assert_eq!(gw.ack_inbound(t0, &newest), Ok(()));
    let oldest_kept = BufferId(format!("b-{}", n - 4096).into());
    assert_eq!(gw.ack_inbound(t0, &oldest_kept), Ok(()));
    assert_eq!(gw.unacked(), 4094);
    still_serves(&mut gw, t0);
}

// ----- a peer that never answers ----------------------------------------------------

/// Requests to a connector that never answers: at most `max_in_flight` are written, the
/// rest fail at once as not sent; at 30 s every written one fails as ambiguous; then the
/// machine serves again.
#[test]
fn a_silent_peer_times_requests_out_and_in_flight_stays_bounded() {
    let config = GatewayConfig {
        max_in_flight: 64,
        ..GatewayConfig::default()
    };
    let (mut gw, t0) = open_gateway(config);
    let mut ids = Vec::new();
    for i in 0..64 {
        ids.push(gw.send(t0, send_action(&format!("c{i}")), None).unwrap());
    }
    for _ in 0..1000 {
        let refused = gw.send(t0, send_action("c"), None).unwrap_err();
        assert_eq!(refused, SendError::InFlightLimit { limit: 64 });
    }
    assert_eq!(gw.in_flight(), 64);
    let writes = split_gateway(&mut gw).transmits.len();
    assert_eq!(writes, 64, "refused requests write nothing");

    let deadline = t0 + Duration::from_secs(30);
    assert_eq!(gw.poll_timeout(), Some(deadline));
    gw.handle_timeout(deadline - Duration::from_millis(1));
    assert!(drain(&mut gw).is_empty(), "nothing fires early");
    gw.handle_timeout(deadline);
    let failed: Vec<_> = drain(&mut gw)
        .into_iter()
        .map(|e| match e {
            GatewayEvent::Response {
                id,
                result: Err(RequestFailure::Timeout),
            } => id,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(failed.len(), 64);
    assert!(RequestFailure::Timeout.is_ambiguous());
    let mut sorted_ids = ids.clone();
    sorted_ids.sort();
    let mut sorted_failed = failed;
    sorted_failed.sort();
    assert_eq!(
        sorted_failed, sorted_ids,
        "each request resolves exactly once"
    );
    assert_eq!(gw.in_flight(), 0);
    assert!(gw.poll_timeout().is_none_or(|t| t > deadline));
    still_serves(&mut gw, deadline);
}

/// A connector that accepts the socket and never sends a descriptor: the first connection
/// fails with `HandshakeTimeout` at 30 s; on a later connection (after one handshake
/// succeeded) the socket is closed and re-dialled with backoff.
#[test]
fn a_silent_peer_fails_the_handshake_at_30_s() {
    let config = GatewayConfig {
        identities: vec![Identity::new("discord", "111")],
        ..GatewayConfig::default()
    };
    let mut gw = RelayMachine::new(config, 0).unwrap();
    let t0 = Instant::now();
    gw.connect(t0).unwrap();
    gw.on_connected(t0, gw.generation());
    drain(&mut gw);
    let at = t0 + Duration::from_secs(30);
    assert_eq!(gw.poll_timeout(), Some(at));
    // A silent peer may still send garbage; the handshake timer is not reset by it.
    gw.handle_input(t0 + Duration::from_secs(29), b"{}\n");
    drain(&mut gw);
    gw.handle_timeout(at);
    let out = split_gateway(&mut gw);
    assert!(matches!(
        out.commands.as_slice(),
        [ConnectionCommand::Close { .. }]
    ));
    let events = out.events;
    assert!(
        events.contains(&GatewayEvent::ConnectFailed(
            ConnectFailure::HandshakeTimeout
        )),
        "{events:?}"
    );
    assert_eq!(gw.state(), GatewayState::Idle);

    // A connection that worked once, then a reconnect to a peer that stays silent.
    gw.connect(at).unwrap();
    gw.on_connected(at, gw.generation());
    gw.handle_input(at, descriptor_line());
    drain(&mut gw);
    gw.on_closed(at, None, "reset");
    drain(&mut gw);
    let redial = gw.poll_timeout().unwrap();
    gw.handle_timeout(redial);
    assert!(matches!(
        split_gateway(&mut gw).commands.as_slice(),
        [ConnectionCommand::Dial { .. }]
    ));
    gw.on_connected(redial, gw.generation());
    drain(&mut gw);
    let timeout = redial + Duration::from_secs(30);
    assert_eq!(gw.poll_timeout(), Some(timeout));
    gw.handle_timeout(timeout);
    let out = split_gateway(&mut gw);
    assert!(matches!(
        out.commands.as_slice(),
        [ConnectionCommand::Close { .. }]
    ));
    assert_eq!(gw.state(), GatewayState::Waiting);
    // The redial is scheduled once the socket asked to close has ended.
    gw.on_closed(timeout, Some(1000), "handshake timeout");
    let events = split_gateway(&mut gw).events;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, GatewayEvent::Reconnecting { .. })),
        "{events:?}"
    );
    assert_eq!(gw.state(), GatewayState::Waiting);
}

// ----- the connector's limits -------------------------------------------------------

/// A gateway that floods `outbound`s and never reads results: at most
/// `max_open_requests` reach the application; each further one is answered at once with
/// a failure (definitely not executed), so no request is left without a result.
#[test]
fn the_connector_bounds_open_requests_and_answers_the_excess() {
    let config = ConnectorConfig {
        max_open_requests: 1024,
        ..ConnectorConfig::default()
    };
    let mut conn = ConnectorMachine::new(config, std::time::Instant::now());
    let now = Instant::now();
    conn.handle_input(
        now,
        encode(&Frame::from(Identity {
            platform: "discord".into(),
            bot_id: String::new(),
            command_manifest: None,
        })),
    );
    let _ = split_connector(&mut conn);
    let n = 20_000;
    let (mut handed_out, mut refused, mut answered) = (0, 0, 0);
    let mut message = Vec::new();
    for i in 0..n {
        message.extend_from_slice(&encode(&Frame::from(Outbound {
            request_id: RequestId::from(format!("r{i}")),
            action: send_action("c").into(),
            platform: None,
            bot_id: None,
        })));
        if (i + 1) % BATCH == 0 {
            conn.handle_input(now, &message);
            message.clear();
            let out = split_connector(&mut conn);
            for event in out.events {
                match event {
                    ConnectorEvent::Outbound { .. } => handed_out += 1,
                    ConnectorEvent::Diagnostic(ConnectorDiagnostic::TooManyRequests(_)) => {
                        refused += 1;
                    }
                    // At most 64 diagnostics are queued per input; the rest are counted.
                    ConnectorEvent::Diagnostic(ConnectorDiagnostic::Suppressed(k)) => {
                        refused += k as usize;
                    }
                    other => panic!("{other:?}"),
                }
            }
            answered += out.transmits.len();
            assert!(conn.in_flight() <= 1024);
        }
    }
    assert_eq!(handed_out, 1024);
    assert_eq!(refused, n - 1024);
    assert_eq!(answered, n - 1024, "every refused request is answered");
    // The application answers one; a new request fits again.
    conn.respond(now, &RequestId::from("r0"), ActionResult::ok())
        .unwrap();
    assert_eq!(conn.in_flight(), 1023);
}

/// A gateway that floods `hello`s: at most `max_identities` are accepted, the rest are
/// refused with a diagnostic, and the announced ones keep working.
#[test]
fn the_connector_bounds_identities() {
    let mut conn = ConnectorMachine::new(ConnectorConfig::default(), std::time::Instant::now());
    let now = Instant::now();
    let mut message = Vec::new();
    for i in 0..10_000 {
        message.extend_from_slice(&encode(&Frame::from(Identity {
            platform: format!("p{i}"),
            bot_id: String::new(),
            command_manifest: None,
        })));
    }
    conn.handle_input(now, &message);
    let events = split_connector(&mut conn).events;
    let hellos = events
        .iter()
        .filter(|e| matches!(e, ConnectorEvent::Hello { .. }))
        .count();
    assert_eq!(hellos, 64);
    assert_eq!(conn.identities().len(), 64);
    // The refusals: 64 queued diagnostics and one count of the rest.
    let refused: u64 = events
        .iter()
        .map(|e| match e {
            ConnectorEvent::Diagnostic(ConnectorDiagnostic::Suppressed(k)) => *k,
            ConnectorEvent::Diagnostic(ConnectorDiagnostic::RefusedHello(_)) => 1,
            _ => 0,
        })
        .sum();
    assert_eq!(refused, 10_000 - 64);
    assert_eq!(events.len(), 64 + 64 + 1);
    conn.send_descriptor(now, CapabilityDescriptor::new("p0", "P0"))
        .unwrap();
    assert!(!split_connector(&mut conn).transmits.is_empty());
}

// ----- descriptors ------------------------------------------------------------------

/// A connector that describes ever more platforms: the gateway keeps at most
/// `max_identities` (64) descriptors per connection (a connector can only describe what was
/// announced, and no more can be), drops the rest with a diagnostic, and keeps serving
/// with its session default.
#[test]
fn a_flood_of_descriptors_is_bounded() {
    // With an announced identity every invented platform is also "unannounced"; with none
    // (the catch-all `relay` identity) only the ones past the bound are reported.
    let past_bound = 1_000 - (MAX_IDENTITIES - 1);
    for (identities, expected) in [
        (vec![Identity::new("discord", "111")], 1_000),
        (Vec::new(), past_bound),
    ] {
        let mut gw = RelayMachine::new(
            GatewayConfig {
                identities,
                ..GatewayConfig::default()
            },
            0,
        )
        .unwrap();
        let t0 = Instant::now();
        gw.connect(t0).unwrap();
        gw.on_connected(t0, gw.generation());
        gw.handle_input(t0, descriptor_line());
        drain(&mut gw);
        let mut message = Vec::new();
        for i in 0..1_000 {
            message.extend_from_slice(&encode(&Frame::Descriptor(Descriptor {
                descriptor: Box::new(CapabilityDescriptor::new(format!("p{i}"), "P")),
            })));
        }
        gw.handle_input(t0, &message);
        let events = drain(&mut gw);
        assert!(gw.descriptors().count() <= MAX_IDENTITIES);
        // Of the diagnostics, at most 64 are queued and the rest counted in `Suppressed`.
        let reported: usize = events
            .iter()
            .map(|e| match e {
                GatewayEvent::Diagnostic(Diagnostic::Suppressed(n)) => *n as usize,
                GatewayEvent::Diagnostic(_) => 1,
                _ => 0,
            })
            .sum();
        assert_eq!(reported, expected);
        assert!(events.iter().any(|e| matches!(
            e,
            GatewayEvent::Diagnostic(Diagnostic::TooManyDescriptors(_))
        )));
        // Updates of a platform already described are still taken.
        gw.handle_input(t0, descriptor_line());
        assert!(
            drain(&mut gw)
                .iter()
                .any(|e| matches!(e, GatewayEvent::Descriptor(_)))
        );
        assert_eq!(gw.default_descriptor().unwrap().platform, "discord");
        assert!(gw.descriptor("discord").is_some());
        still_serves(&mut gw, t0);
    }
}

/// One 4 MiB message of tiny bad lines (2 Mi lines): every line is decoded and handled, but
/// at most 64 diagnostics wait in the queue and the rest are counted in one `Suppressed`,
/// so the queue does not grow with the message (16 MiB of them held 3.8 GiB before the cap).
#[test]
fn a_message_of_tiny_bad_lines_queues_a_bounded_number_of_diagnostics() {
    use relay_machine::connector::{
        ConnectorConfig, ConnectorDiagnostic, ConnectorEvent, ConnectorMachine,
    };
    use relay_machine::gateway::Diagnostic;
    let lines = 2 << 20; // "1\n" × 2 Mi = 4 MiB
    let message = b"1\n".repeat(lines);

    let (mut gw, now) = open_gateway(GatewayConfig::default());
    let id = gw.send(now, send_action("c"), None).unwrap();
    drain(&mut gw);
    gw.handle_input(now, &message);
    let events = drain(&mut gw);
    let decode_events = events
        .iter()
        .filter(|e| matches!(e, GatewayEvent::Diagnostic(Diagnostic::Decode(_))))
        .count();
    assert_eq!(decode_events, 64);
    assert_eq!(
        events.last(),
        Some(&GatewayEvent::Diagnostic(Diagnostic::Suppressed(
            (lines - 64) as u64
        )))
    );
    assert_eq!(events.len(), 65);
    // Draining frees the budget: the next bad line is reported again, and the connection
    // still serves well-formed traffic.
    gw.handle_input(now, result_line(&id));
    gw.handle_input(now, b"[]\n");
    let events = drain(&mut gw);
    assert!(matches!(events[0], GatewayEvent::Response { .. }));
    assert!(matches!(
        events[1],
        GatewayEvent::Diagnostic(Diagnostic::Decode(_))
    ));

    let mut conn = ConnectorMachine::new(ConnectorConfig::default(), std::time::Instant::now());
    conn.handle_input(now, &message);
    let events = split_connector(&mut conn).events;
    assert_eq!(events.len(), 65);
    assert_eq!(
        events.last(),
        Some(&ConnectorEvent::Diagnostic(
            ConnectorDiagnostic::Suppressed((lines - 64) as u64)
        ))
    );
}

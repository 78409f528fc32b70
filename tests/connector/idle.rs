//! Going idle (src/connector/instance): live deliveries are handed back to be buffered,
//! and the first buffered one asks for a wake-up.

use relay_machine::connector::{ConnectorConfig, ConnectorError, ConnectorEvent, Delivery, Live};
use relay_machine::connector::{DeliveryStore, InstanceOutput};
use relay_machine::testing::SoloInstance;

use crate::fixtures::{message, two_identities};

const GOING_IDLE: &str = r#"{"type":"going_idle"}"#;

#[test]
fn going_idle_is_acked_and_live_pushes_are_handed_back() {
    let mut run = SoloInstance::new(ConnectorConfig::default());
    let a = run.handshake().unwrap();
    assert_eq!(run.live(), Live::Sent);
    run.line(a, GOING_IDLE);
    assert!(run.instance.is_idle());
    assert!(run.instance.connection(a).unwrap().is_idle());
    assert_eq!(
        run.frame_types(a),
        ["descriptor", "inbound", "going_idle_ack"]
    );
    // Live is refused while idle: the delivery comes back to be buffered.
    assert!(matches!(run.live(), Live::Buffer(_)));
    assert_eq!(run.frame_types(a).len(), 3, "nothing written after the ack");
    assert!(!run.instance.connection(a).unwrap().is_closed());
    insta::assert_snapshot!(run.log.transcript.render());
}

#[test]
fn a_delivery_buffered_while_idle_asks_for_one_wake_per_idle_period() {
    let mut run = SoloInstance::new(ConnectorConfig::default());
    let a = run.handshake().unwrap();
    run.line(a, GOING_IDLE);
    let first = run.buffer(2);
    assert_eq!(run.wakes(), 1, "once per idle period, not per delivery");
    assert!(run.sent(a).is_empty(), "buffered only while idle");
    // The gateway wakes up: a new connection replays what waited.
    let b = run.handshake().unwrap();
    assert!(!run.instance.is_idle());
    assert_eq!(run.sent(b), first);
    for id in &first {
        run.ack(b, id);
    }
    // The next idle period asks again.
    run.line(b, GOING_IDLE);
    run.buffer(1);
    assert_eq!(run.wakes(), 2);
    insta::assert_snapshot!(run.log.transcript.render());
}

#[test]
fn going_idle_buffers_live_deliveries_and_asks_for_a_wake() {
    let mut run = SoloInstance::new(ConnectorConfig::default());
    let conn = run.handshake().unwrap();
    assert_eq!(run.instance.push_live(run.now, message("live")), Live::Sent);
    run.pump();
    assert_eq!(run.texts(conn), ["live"]);
    let m = run.mark();
    run.line(conn, GOING_IDLE);
    assert_eq!(
        run.frame_types(conn).last().map(String::as_str),
        Some("going_idle_ack")
    );
    assert!(
        run.since(m)
            .iter()
            .any(|r| r.output == InstanceOutput::Event(conn, ConnectorEvent::WentIdle))
    );
    assert!(run.instance.is_idle());
    assert!(run.instance.connection(conn).unwrap().is_idle());
    // Live deliveries are handed back to be buffered now; the first one buffered asks for
    // a wake, once.
    let sent = run.sent(conn).len();
    for text in ["while idle", "still idle"] {
        let Live::Buffer(delivery) = run.instance.push_live(run.now, message(text)) else {
            panic!("{text}: sent live while idle");
        };
        assert_eq!(delivery, Delivery::from(message(text)));
        run.push(delivery);
    }
    assert_eq!(run.sent(conn).len(), sent, "nothing written while idle");
    assert_eq!(run.wakes(), 1);
    assert_eq!(run.store.unacked_len(), 2);

    // The woken gateway connects again: the flip ends at its handshake, and the buffered
    // ones are replayed in order.
    let next = run.accept();
    run.closed(conn, "socket ended");
    assert!(run.instance.is_idle(), "idle until the next handshake");
    run.greet(next).unwrap();
    assert_eq!(run.texts(next), ["while idle", "still idle"]);
    assert_eq!(run.sent(next), ["b-0-1".into(), "b-0-2".into()]);
    assert!(!run.instance.is_idle());
    assert_eq!(
        run.instance.push_live(run.now, message("live again")),
        Live::Sent
    );
    run.pump();
    assert_eq!(
        run.texts(next).last().map(String::as_str),
        Some("live again")
    );
    // A new idle period asks for a wake again, once.
    run.line(next, GOING_IDLE);
    let sent = run.sent(next).len();
    for text in ["idle again", "and again"] {
        run.push(message(text));
    }
    assert_eq!(run.sent(next).len(), sent);
    assert_eq!(run.wakes(), 2);
    assert_eq!(run.store.unacked_len(), 4);
}

/// One connection alone refuses a live delivery once its gateway went idle.
#[test]
fn a_connection_refuses_live_deliveries_after_going_idle() {
    let mut run = two_identities();
    assert!(run.machine.is_handshaken());
    run.line(GOING_IDLE);
    assert!(run.machine.is_idle());
    let m = run.mark();
    assert_eq!(
        run.machine.send_live(run.now, message("x")),
        Err(ConnectorError::Idle)
    );
    run.settle();
    assert!(run.frames_since(m).is_empty());
}

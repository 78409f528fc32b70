//! Going idle (src/connector/instance): live deliveries are handed back to be buffered,
//! and the first buffered one asks for a wake-up.

use relay_machine::connector::{ConnectorConfig, Live};

use crate::harness::{Inst, snap};

const GOING_IDLE: &str = r#"{"type":"going_idle"}"#;

#[test]
fn going_idle_is_acked_and_live_pushes_are_handed_back() {
    let mut run = Inst::new(ConnectorConfig::default());
    let a = run.handshake();
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
    snap!(run.transcript);
}

#[test]
fn a_delivery_buffered_while_idle_asks_for_one_wake_per_idle_period() {
    let mut run = Inst::new(ConnectorConfig::default());
    let a = run.handshake();
    run.line(a, GOING_IDLE);
    let first = run.buffer(2);
    assert_eq!(run.wakes(), 1, "once per idle period, not per delivery");
    assert!(run.sent(a).is_empty(), "buffered only while idle");
    // The gateway wakes up: a new connection replays what waited.
    let b = run.handshake();
    assert!(!run.instance.is_idle());
    assert_eq!(run.sent(b), first);
    for id in &first {
        run.ack(b, id);
    }
    // The next idle period asks again.
    run.line(b, GOING_IDLE);
    run.buffer(1);
    assert_eq!(run.wakes(), 2);
    snap!(run.transcript);
}

//! The replay window (src/connector/instance/replay.rs): ack-gated, replayed from the
//! oldest unacked on the next connection, superseding.

use relay_machine::connector::{ConnectorCommand, DeliveryStore, InstanceOutput};
use relay_machine::wire::BufferId;
use relay_machine::wire::close;

use relay_machine::testing::SoloInstance;

#[test]
fn the_replay_window_lets_out_only_n_until_acks_free_room() {
    let mut run = SoloInstance::with_window(2);
    let a = run.handshake().unwrap();
    let ids = run.buffer(5);
    assert_eq!(run.sent(a), ids[..2], "only the window's two go out");
    assert_eq!(run.instance.in_window(), 2);
    // An ack of an id never sent frees nothing.
    run.ack(a, &"b-9-9".into());
    assert_eq!(run.sent(a), ids[..2]);
    run.ack(a, &ids[0]);
    assert_eq!(run.sent(a), ids[..3], "one ack, one more out");
    run.ack(a, &ids[1]);
    run.ack(a, &ids[2]);
    assert_eq!(run.sent(a), ids);
    assert_eq!(run.instance.in_window(), 2);
    run.ack(a, &ids[3]);
    run.ack(a, &ids[4]);
    assert_eq!(run.instance.in_window(), 0);
    assert_eq!(run.store.unacked_len(), 0);
    assert_eq!(run.sent(a).len(), 5, "nothing sent twice");
    insta::assert_snapshot!(run.log.transcript.render());
}

#[test]
fn after_a_reconnect_exactly_the_unacked_tail_is_replayed() {
    let mut run = SoloInstance::with_window(3);
    let a = run.handshake().unwrap();
    let ids = run.buffer(4);
    assert_eq!(run.sent(a), ids[..3]);
    run.ack(a, &ids[0]);
    assert_eq!(run.sent(a), ids);
    // Connection 1 ends with ids[1..] unacked.
    run.closed(a, "socket ended");
    assert_eq!(run.instance.current(), None);
    assert_eq!(run.store.unacked_len(), 3);
    let b = run.handshake().unwrap();
    assert_eq!(
        run.sent(b),
        ids[1..],
        "exactly the unacked tail, oldest first"
    );
    for id in &ids[1..] {
        run.ack(b, id);
    }
    assert_eq!(run.store.unacked_len(), 0);
    assert_eq!(run.acked(), ids);
    insta::assert_snapshot!(run.log.transcript.render());
}

#[test]
fn a_connection_that_ends_mid_replay_leaves_the_rest_for_the_next() {
    let mut run = SoloInstance::with_window(2);
    // The backlog waits in the store before any gateway connects.
    let ids = run.buffer(5);
    let a = run.handshake().unwrap();
    assert_eq!(run.sent(a), ids[..2]);
    run.ack(a, &ids[0]);
    assert_eq!(run.sent(a), ids[..3]);
    // Mid-replay: ids[1] and ids[2] out and unacked, ids[3..] never sent.
    run.closed(a, "socket ended");
    // The ended connection's late bytes are ignored.
    run.ack(a, &ids[1]);
    assert_eq!(run.acked(), ids[..1]);
    let b = run.handshake().unwrap();
    assert_eq!(run.sent(b), ids[1..3]);
    for id in &ids[1..] {
        run.ack(b, id);
    }
    assert_eq!(run.sent(b), ids[1..]);
    assert_eq!(run.store.unacked_len(), 0);
    insta::assert_snapshot!(run.log.transcript.render());
}

#[test]
fn a_second_accept_supersedes_the_first_and_its_late_acks_still_count() {
    let mut run = SoloInstance::with_window(2);
    let a = run.handshake().unwrap();
    let ids = run.buffer(3);
    assert_eq!(run.sent(a), ids[..2]);
    // The same gateway instance connects again (the first socket is half-open).
    let b = run.accept();
    assert_eq!(
        run.commands(a),
        [ConnectorCommand::Close {
            code: close::SUPERSEDED,
            reason: close::REASON_SUPERSEDED.into()
        }],
        "4409 superseded, never 4401"
    );
    assert_eq!(run.instance.current(), Some(b));
    assert_eq!(
        run.instance.connections(),
        2,
        "a's socket has not ended yet"
    );
    // An ack arriving on the old connection still counts.
    run.ack(a, &ids[0]);
    assert_eq!(run.acked(), ids[..1]);
    // b replays from the oldest unacked once handshaken: ids[0] is not among them.
    run.line(b, relay_machine::testing::HELLO);
    run.log
        .transcript
        .note(run.now, "app", "descriptor discord");
    run.instance
        .send_descriptor(
            run.now,
            b,
            relay_machine::wire::CapabilityDescriptor::new("discord", "D"),
        )
        .unwrap();
    run.pump();
    assert_eq!(run.sent(b), ids[1..]);
    assert_eq!(
        run.sent(a),
        ids[..2],
        "nothing more on the superseded socket"
    );
    run.closed(a, "socket ended");
    assert_eq!(run.instance.connections(), 1);
    assert_eq!(run.instance.current(), Some(b));
    insta::assert_snapshot!(run.log.transcript.render());
}

#[test]
fn replay_is_gated_by_acks_in_a_window() {
    let mut run = SoloInstance::with_window(2);
    let conn = run.accept();
    // Buffered before the handshake: nothing is sent until the first descriptor.
    run.buffer(5);
    assert!(run.sent(conn).is_empty());
    run.greet(conn).unwrap();
    let id = |s: &str| BufferId::from(s);
    assert_eq!(
        run.sent(conn),
        [id("b-0-1"), id("b-0-2")],
        "the window holds two"
    );
    assert_eq!(run.instance.in_window(), 2);
    run.ack(conn, &id("b-0-1"));
    assert_eq!(run.acked(), [id("b-0-1")]);
    assert_eq!(run.store.unacked_len(), 4);
    assert_eq!(
        run.sent(conn)[2..],
        [id("b-0-3")],
        "one ack makes room for exactly one more"
    );
    // An ack out of order also frees its slot.
    run.ack(conn, &id("b-0-3"));
    assert_eq!(run.sent(conn)[3..], [id("b-0-4")]);
    assert_eq!(run.store.unacked_len(), 3, "b-2, b-4, b-5");
    // A stray ack changes nothing: it is passed on (the instance cannot know the store),
    // the store does not know it as unacked, and the window does not move.
    let m = run.mark();
    run.ack(conn, &id("b-0-1"));
    let since: Vec<_> = run.since(m).iter().map(|r| r.output.clone()).collect();
    assert_eq!(since, [InstanceOutput::Acked(id("b-0-1"))]);
    assert_eq!(run.instance.in_window(), 2);
    assert_eq!(run.store.unacked_len(), 3);

    // The next connection supersedes this one and replays exactly the unacked tail, in
    // order, through the same window.
    let sent = run.sent(conn).len();
    let next = run.accept();
    assert_eq!(
        run.commands(conn),
        [ConnectorCommand::Close {
            code: close::SUPERSEDED,
            reason: close::REASON_SUPERSEDED.into()
        }]
    );
    assert_eq!(run.sent(conn).len(), sent);
    run.closed(conn, "socket ended");
    run.greet(next).unwrap();
    assert_eq!(run.texts(next), ["m2", "m4"], "the window holds two");
    run.ack(next, &id("b-0-2"));
    assert_eq!(run.texts(next), ["m2", "m4", "m5"]);
}

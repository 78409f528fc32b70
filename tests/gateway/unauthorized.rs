#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! 4401 refusals and the two-strike rule (protocol.md §7.3, rows 7–10): a refusal of the
//! first dial, of the fresh-token dial, an expired token that only spends the marker; and
//! the same end to end with both roles linked.

use std::time::Duration;

use relay_machine::gateway::{
    ConnectFailure, ConnectionCommand, DialPurpose, GatewayEvent, GatewayState,
};
use relay_machine::wire::{SendAction, close};

use crate::driver::*;
use crate::linked;

/// The one command since `m` is a dial for `purpose`.
fn only_a_dial(d: &Driver, m: usize, purpose: DialPurpose) -> bool {
    matches!(
        d.commands_since(m).as_slice(),
        [ConnectionCommand::Dial { purpose: p, .. }] if *p == purpose
    )
}

#[test]
fn a_4401_refusing_the_first_dial_is_reported_as_unauthorized() {
    let mut d = Driver::seeded(discord1(), 0);
    d.connect().unwrap();
    let m = d.mark();
    d.closed(4401, "unauthorized");
    assert_eq!(
        d.events_since(m),
        [GatewayEvent::ConnectFailed(ConnectFailure::Unauthorized {
            reason: "unauthorized".into()
        })]
    );
    assert_eq!(d.state(), GatewayState::Idle);
}

/// First strike on an open connection, then the fresh-token dial itself is refused with a
/// 4401: revoked (§7.3, row 8), not another backoff.
#[test]
fn a_refused_fresh_token_dial_revokes() {
    let mut d = Driver::open_seeded(discord1(), 0);
    let m = d.mark();
    d.closed(4401, "unauthorized");
    assert!(only_a_dial(&d, m, DialPurpose::FreshToken));
    let m = d.mark();
    d.closed(4401, "unauthorized");
    assert!(d.commands_since(m).is_empty());
    assert!(matches!(
        d.events_since(m).last(),
        Some(GatewayEvent::Revoked { .. })
    ));
    assert_eq!(d.state(), GatewayState::Revoked);
}

/// The same, but the refusal says only the token was stale: the marker is spent, no
/// revocation, back to backoff (row 7b/8); and a later refusal is a first strike again.
#[test]
fn an_expired_refusal_of_the_fresh_token_dial_only_spends_the_marker() {
    let mut d = Driver::open_seeded(discord1(), 0);
    d.closed(4401, "unauthorized");
    d.closed(4401, "expired");
    assert_eq!(d.state(), GatewayState::Waiting);
    let m = d.mark();
    d.fire();
    assert!(only_a_dial(&d, m, DialPurpose::Backoff));
    d.connected();
    d.feed(&descriptor("discord"));
    assert_eq!(d.state(), GatewayState::Open);
    // The backoff connection is not the retry generation: this is a new first strike.
    let m = d.mark();
    d.closed(4401, "unauthorized");
    assert!(only_a_dial(&d, m, DialPurpose::FreshToken));
}

#[test]
fn revocation_after_the_fresh_token_retry_is_terminal() {
    let mut pair = linked::pair();
    // First strike: the connector closes 4401 on an established connection.
    let conn = pair.conn.unwrap();
    pair.instance
        .close(pair.now, conn, close::UNAUTHORIZED, "unauthorized");
    pair.drive_until_idle().unwrap();
    // The gateway re-dialled at once (no backoff) and handshook again.
    assert_eq!(pair.gateway.state(), GatewayState::Open);
    assert_eq!(pair.gateway.generation(), 2);
    // Second strike on the retry connection: revoked for good.
    let conn = pair.conn.unwrap();
    pair.instance
        .close(pair.now, conn, close::UNAUTHORIZED, "unauthorized");
    pair.drive_until_idle().unwrap();
    assert_eq!(pair.gateway.state(), GatewayState::Revoked);
    assert!(
        pair.gateway_events
            .iter()
            .any(|e| matches!(e, GatewayEvent::Revoked { .. }))
    );
    pair.advance(Duration::from_secs(120)).unwrap();
    assert_eq!(pair.gateway.generation(), 2, "no dial after revocation");
    let failure = pair.send(SendAction::default(), None).unwrap_err();
    assert_eq!(failure, relay_machine::gateway::SendError::Revoked);
}

#[test]
fn an_expired_token_is_never_a_revocation() {
    let mut pair = linked::pair();
    for _ in 0..3 {
        let conn = pair.conn.unwrap();
        pair.instance
            .close(pair.now, conn, close::UNAUTHORIZED, "expired");
        pair.advance(Duration::from_secs(30)).unwrap();
        assert_eq!(pair.gateway.state(), GatewayState::Open);
    }
}

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Scenario 9: the reconnect ladder with a fixed seed (protocol.md §7.4 V-B, §11.1).

use relay_machine::gateway::{DialPurpose, GatewayState};

use crate::driver::*;

/// A connector that drops every connection right after its handshake, `n` times.
/// Returns the driver and the waits announced, in ms.
fn flapping(seed: u64, n: usize) -> (Driver, Vec<u64>) {
    let mut d = Driver::open_seeded(config1(), seed);
    let mut waits = Vec::new();
    for _ in 0..n {
        let m = d.mark();
        d.closed(1006, "abnormal closure");
        let announced = d.waits_since(m);
        assert_eq!(announced.len(), 1);
        assert_eq!(announced[0].1, DialPurpose::Backoff);
        waits.push(announced[0].0);
        // No dial before the wait is over, one dial when it is.
        d.advance(announced[0].0 - 1);
        assert!(d.dials_since(m).is_empty());
        d.advance(1);
        assert_eq!(d.dials_since(m).len(), 1);
        d.connected();
        d.feed(&descriptor("telegram"));
    }
    (d, waits)
}

const CEILINGS: [u64; 7] = [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000];

#[test]
fn short_lived_connections_climb_1_2_4_8_16_30_30() {
    let (d, waits) = flapping(7, CEILINGS.len());
    for (i, (wait, ceiling)) in waits.iter().zip(CEILINGS).enumerate() {
        assert!(
            (ceiling / 2..=ceiling).contains(wait),
            "wait {i} is {wait} ms, outside [{}, {ceiling}]",
            ceiling / 2
        );
    }
    insta::assert_snapshot!(d.transcript());
}

#[test]
fn the_ladder_holds_for_many_seeds() {
    for seed in 0..50 {
        let (_, waits) = flapping(seed, CEILINGS.len());
        for (wait, ceiling) in waits.iter().zip(CEILINGS) {
            assert!(
                (ceiling / 2..=ceiling).contains(wait),
                "seed {seed}: {waits:?}"
            );
        }
    }
}

#[test]
fn same_seed_same_transcript() {
    let (a, wa) = flapping(42, CEILINGS.len());
    let (b, wb) = flapping(42, CEILINGS.len());
    assert_eq!(wa, wb);
    assert_eq!(a.transcript(), b.transcript());
    // The seed is what makes them equal: another seed jitters differently.
    let (c, wc) = flapping(43, CEILINGS.len());
    assert_ne!(wa, wc);
    assert_ne!(a.transcript(), c.transcript());
}

#[test]
fn a_connection_up_for_60s_resets_the_ladder() {
    let (mut d, _) = flapping(7, 4); // the next ceiling is 16 s
    // Up 59.999 s after its handshake: not stable, the ladder keeps climbing.
    d.advance(59_999);
    let m = d.mark();
    d.dropped();
    let (wait, _) = d.waits_since(m)[0];
    assert!((8_000..=16_000).contains(&wait), "wait {wait}");
    d.advance(wait);
    d.connected();
    // The clock starts at the descriptor, not at the socket: 62 s since the socket
    // opened but 57 s since the handshake is not stable.
    d.advance(5_000);
    d.feed(&descriptor("telegram"));
    d.advance(57_000);
    let m = d.mark();
    d.dropped();
    let (wait, _) = d.waits_since(m)[0];
    assert!((15_000..=30_000).contains(&wait), "wait {wait}");
    d.advance(wait);
    d.connected();
    d.feed(&descriptor("telegram"));
    d.advance(60_000);
    let m = d.mark();
    d.dropped();
    let (wait, _) = d.waits_since(m)[0];
    assert!((500..=1_000).contains(&wait), "reset: wait {wait}");
    assert_eq!(d.state(), GatewayState::Waiting);
    // And it climbs again from there.
    d.advance(wait);
    d.connected();
    d.feed(&descriptor("telegram"));
    let m = d.mark();
    d.dropped();
    let (wait, _) = d.waits_since(m)[0];
    assert!((1_000..=2_000).contains(&wait), "after reset: wait {wait}");
    insta::assert_snapshot!(d.transcript());
}

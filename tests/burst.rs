//! Bursts through the real examples over loopback: the connector pushes thousands of
//! inbound events at once (live, buffered, both), the gateway sends as many requests as its
//! machine lets it have in flight. Every one arrives exactly once, on the first connection:
//! a burst larger than a driver's write queue waits for the writer, it never resets the
//! connection (it did: past 1,024 queued messages the driver gave the link up).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod process;
mod proxy;

use std::collections::BTreeMap;
use std::time::Duration;

use process::{Process, SOON, connector, free_port};
use proxy::{Direction, Proxy};

/// How many inbound events each burst pushes (the report: 2,000 reset, 10 did not).
const N: u32 = 2000;

/// How long a whole run may take; a few hundred milliseconds in a debug build.
const RUN: Duration = Duration::from_secs(30);

/// A gateway that must not need a second connection: its stages are bounded by 10 s, and
/// a reset would show as a `Disconnected` status and a re-dial.
fn gateway(port: u16, wait_inbound: u32, sends: u32) -> Process {
    let url = format!("ws://127.0.0.1:{port}/relay");
    let (wait, sends) = (wait_inbound.to_string(), sends.to_string());
    Process::spawn(
        "gateway",
        &[
            "--url",
            &url,
            "--identity",
            "discord:1",
            "--wait-inbound",
            &wait,
            "--sends",
            &sends,
            "--timeout",
            "10",
        ],
    )
}

/// Runs one burst to the gateway's end and checks it: exit 0, one connection on both
/// sides, `message 1` .. `message N` each exactly once (the buffered ones under distinct
/// buffer ids, every one acked), every send answered.
fn burst(connector_args: &[&str], sends: u32, buffered_every: u32) {
    let port = free_port();
    let mut conn = connector(port, connector_args);
    let mut gw = gateway(port, N, sends);
    let status = gw.finish(RUN);
    // The connector logs the end of the connection once the gateway has disconnected.
    let closed = conn.wait_for("the connection's end", SOON, |l| l["event"] == "closed");
    conn.kill();
    assert!(status.success(), "{status:?}: {:#?}", gw.seen);

    let statuses: Vec<&str> = gw
        .events("status")
        .iter()
        .map(|l| l["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| s.starts_with("HandshakeComplete"))
            .count(),
        1,
        "one handshake: {statuses:#?}"
    );
    assert!(
        !statuses
            .iter()
            .any(|s| s.starts_with("Disconnected") || s.starts_with("Reconnecting")),
        "the connection survived the burst: {statuses:#?}"
    );
    assert_eq!(conn.events("connected").len(), 1, "{:#?}", conn.seen);
    assert_eq!(conn.events("closed").len(), 1, "{:#?}", conn.seen);
    assert_eq!(closed["unacked"], 0, "{:#?}", conn.seen);

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut buffer_ids = std::collections::BTreeSet::new();
    for line in gw.events("inbound") {
        let text = line["inbound"]["text"].as_str().unwrap().to_owned();
        let i: u32 = text.strip_prefix("message ").unwrap().parse().unwrap();
        let buffered = buffered_every > 0 && i % buffered_every == 0;
        assert_eq!(line["bufferId"].is_string(), buffered, "{line}");
        if let Some(id) = line["bufferId"].as_str() {
            assert!(buffer_ids.insert(id.to_owned()), "{id} twice");
        }
        *seen.entry(text).or_default() += 1;
    }
    let missing: Vec<u32> = (1..=N)
        .filter(|i| !seen.contains_key(&format!("message {i}")))
        .collect();
    assert!(missing.is_empty(), "never arrived: {missing:?}");
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "arrived more than once: {twice:?}");
    assert_eq!(seen.len(), N as usize);
    let buffered = N.checked_div(buffered_every).unwrap_or(0);
    assert_eq!(buffer_ids.len(), buffered as usize);
    assert_eq!(conn.events("acked").len(), buffered as usize);

    let results = gw.events("result");
    assert_eq!(results.len(), sends as usize, "every send answered");
    assert!(results.iter().all(|r| r["error"].is_null()), "{results:#?}");
}

#[test]
fn two_thousand_live_inbound_arrive_exactly_once_on_one_connection() {
    let n = N.to_string();
    burst(&["--push-inbound", &n], 0, 0);
}

#[test]
fn two_thousand_buffered_inbound_arrive_exactly_once_and_are_acked() {
    let n = N.to_string();
    burst(&["--push-inbound", &n, "--buffered-every", "1"], 0, 1);
}

#[test]
fn a_mixed_burst_both_ways_loses_nothing() {
    // Every third inbound buffered, the rest live, while the gateway has as many sends in
    // flight as its machine allows (1,024): both drivers' write queues overflow at once.
    let n = N.to_string();
    burst(&["--push-inbound", &n, "--buffered-every", "3"], 1024, 3);
}

/// `--timings` (the figures of `benches/loopback.sh`): one `timing` line per timed stage,
/// with its count; the smol and the tokio gateway alike. Only the shape is checked, never
/// a figure.
#[test]
fn timings_report_each_timed_stage() {
    for example in ["gateway", "tokio_gateway"] {
        let port = free_port();
        let mut conn = connector(port, &["--push-inbound", "50", "--buffered-every", "2"]);
        let url = format!("ws://127.0.0.1:{port}/relay");
        let mut gw = Process::spawn(
            example,
            &[
                "--url",
                &url,
                "--identity",
                "discord:1",
                "--sends",
                "20",
                "--wait-inbound",
                "50",
                "--timings",
                "--timeout",
                "10",
            ],
        );
        let status = gw.finish(RUN);
        conn.kill();
        assert!(status.success(), "{example}: {status:?}: {:#?}", gw.seen);
        let timings = gw.events("timing");
        assert_eq!(timings.len(), 2, "{example}: {timings:#?}");
        for (line, (stage, count)) in timings.iter().zip([("results", 20), ("inbound", 50)]) {
            assert_eq!(line["stage"], stage, "{example}: {line}");
            assert_eq!(line["count"], count, "{example}: {line}");
            assert!(line["seconds"].is_f64(), "{example}: {line}");
            assert!(line["per_second"].is_f64(), "{example}: {line}");
        }
    }
}

/// A gateway that stops reading in the middle of a burst, and goes silent: the connector's
/// writes block and the rest of the burst waits in its driver, yet the connection still
/// ends by the machine's liveness timeout (its `Abort` is not stuck behind the burst).
#[test]
fn a_peer_that_stops_reading_mid_burst_is_left_by_the_liveness_timeout() {
    let port = free_port();
    let mut conn = connector(
        port,
        &[
            "--push-inbound",
            "50000",
            "--ping-interval",
            "0.2",
            "--liveness-timeout",
            "1",
        ],
    );
    let proxy = Proxy::start(format!("127.0.0.1:{port}").parse().unwrap());
    let url = format!("ws://{}/relay", proxy.addr());
    let _gw = Process::spawn(
        "gateway",
        &[
            "--url",
            &url,
            "--identity",
            "discord:1",
            "--wait-inbound",
            "50000",
            "--timeout",
            "30",
        ],
    );
    conn.wait_for("the hello", SOON, |l| l["event"] == "hello");
    // The gateway reads nothing more (the connector's writes fill the socket buffers) and
    // sends nothing that arrives (no Pong, no Ping: the connector hears nothing).
    proxy.stall_without_reading(Direction::UpstreamToClient);
    proxy.stall(Direction::ClientToUpstream);
    // Liveness 1 s, then at most 1 s for what the writer holds: well within SOON (5 s).
    conn.wait_for("the connection's end", SOON, |l| l["event"] == "closed");
    proxy.resume();
}

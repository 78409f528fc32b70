//! `examples/connector --store PATH` under crashes: a connector SIGKILLed at seeded
//! pseudo-random points mid-replay and restarted on the same SQLite file (and the same
//! port) ten times, with one gateway reconnecting throughout. Every delivery reaches the
//! gateway application exactly once, nothing acked comes back, and the store ends empty.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod process;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use process::{SOON, connector, delivered_exactly_once, free_port, gateway, scratch_dir};
use relay_machine::rng::SplitMix64;

/// Deliveries: several replay windows (32) with room for ten kills.
const N: usize = 200;
const KILLS: usize = 10;

#[test]
fn a_connector_killed_mid_replay_ten_times_loses_and_repeats_nothing() {
    let started = Instant::now();
    let dir = scratch_dir("relay-durability");
    let db = dir.join("buf.db");
    let db_arg = db.to_str().unwrap().to_owned();
    let n = N.to_string();
    let args = [
        "--store",
        &db_arg,
        "--push-inbound",
        &n,
        "--buffered-every",
        "1",
    ];
    let port = free_port();
    let mut rng = SplitMix64::new(0x00d0_7ab1_e5ee_d5ee);
    let mut run = connector(port, &args);
    let mut gw = gateway(port, N);
    // Per connector run: the acks it committed.
    let mut acked_by_run: Vec<Vec<String>> = Vec::new();
    let mut kill_points = Vec::new();
    for kill in 0..KILLS {
        // Alternately within a burst of the window (after 1 to 12 more deliveries reach the
        // gateway application) and within the stream of acks (after this run committed 1
        // to 18): either way well inside the replay of N.
        let (process, what, more) = if kill % 2 == 0 {
            (&mut gw, "inbound", 1 + rng.next_u64() % 12)
        } else {
            (&mut run, "acked", 1 + rng.next_u64() % 18)
        };
        for _ in 0..more {
            process.wait_for(what, SOON, |l| l["event"] == what);
        }
        kill_points.push(format!("{more} {what}"));
        run.kill();
        acked_by_run.push(acked(&run));
        run = connector(port, &args);
    }
    let status = gw.finish(Duration::from_secs(60));
    assert!(status.success(), "gateway: {status}: {:#?}", gw.seen);
    let closed = run.wait_for("the last connection's end", SOON, |l| {
        l["event"] == "closed"
    });
    assert_eq!(closed["unacked"], 0, "{:#?}", run.seen);
    run.kill();
    acked_by_run.push(acked(&run));

    let ids = delivered_exactly_once(&gw, N);
    // No ack was committed twice: an id reported acked by one run was never again in a
    // store answer that a later ack could delete. (A kill between a commit and its line
    // leaves a committed ack unreported: the lines are a subset.)
    let all: Vec<&String> = acked_by_run.iter().flatten().collect();
    let unique: BTreeSet<String> = all.iter().map(|s| (*s).clone()).collect();
    assert_eq!(all.len(), unique.len(), "{acked_by_run:#?}");
    assert!(unique.is_subset(&ids), "{acked_by_run:#?}");
    let store = rusqlite::Connection::open(&db).unwrap();
    let count = |sql: &str| store.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(count("SELECT count(*) FROM deliveries"), 0, "unacked left");
    assert_eq!(count("SELECT count(*) FROM seeded"), 1);
    drop(store);
    eprintln!(
        "durability: {N} deliveries, {KILLS} kills, each after {kill_points:?} lines, \
         acks per run {:?}, {:?}",
        acked_by_run.iter().map(Vec::len).collect::<Vec<_>>(),
        started.elapsed()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The ids a connector run reported acked (committed).
fn acked(run: &process::Process) -> Vec<String> {
    run.events("acked")
        .iter()
        .map(|l| l["bufferId"].as_str().unwrap().to_owned())
        .collect()
}

//! `examples/connector --store redis://...`: a fleet of connectors sharing their buffers in
//! Redis streams. Connector A is SIGKILLed mid-replay; connector B, on the same Redis and
//! the same port, takes the gateway's reconnect, seeds nothing (A's marker is there) and
//! replays exactly the unacked tail. Needs `redis-server` (CI installs it; elsewhere the
//! test says it is skipped, on standard error).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod process;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use process::{SOON, connector, delivered_exactly_once, free_port, gateway};

const N: usize = 200;

/// A `redis-server` of the test's own on a free loopback port, killed on drop.
struct RedisServer {
    child: Child,
    url: String,
}

impl RedisServer {
    /// `None` when there is no `redis-server` (a failure on CI).
    fn start() -> Option<Self> {
        let port = free_port().to_string();
        let spawned = Command::new("redis-server")
            .args(["--port", &port, "--save", "", "--appendonly", "no"])
            .args(["--bind", "127.0.0.1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("redis-server is required on CI: {e}")
            }
            Err(e) => {
                // Straight to the process's standard error: the test harness captures
                // `eprintln!` of a passing test, and this must be seen.
                let _ = writeln!(
                    std::io::stderr(),
                    "NOTICE: tests/fleet.rs skipped: cannot run redis-server ({e})"
                );
                return None;
            }
        };
        // It says when it accepts connections; then it must answer PING.
        let log = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(log).lines() {
                let Ok(line) = line else { break };
                if line.contains("Ready to accept connections") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("redis-server did not start");
        let server = Self {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
        };
        let pong: String = redis::cmd("PING").query(&mut server.connection()).unwrap();
        assert_eq!(pong, "PONG");
        Some(server)
    }

    fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_second_connector_takes_over_the_unacked_tail_of_a_killed_one() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let n = N.to_string();
    let args = [
        "--store",
        &redis.url,
        "--push-inbound",
        &n,
        "--buffered-every",
        "1",
    ];
    let port = free_port();
    let mut a = connector(port, &args);
    let mut gw = gateway(port, N);
    // A is killed once it has committed part of the buffer's acks, mid-replay.
    for _ in 0..45 {
        a.wait_for("an ack", SOON, |l| l["event"] == "acked");
    }
    a.kill();
    let mut db = redis.connection();
    let tail: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg("relay:buffer:")
        .arg("-")
        .arg("+")
        .query(&mut db)
        .unwrap();
    let tail: BTreeSet<String> = tail.into_iter().map(|(id, _)| id).collect();
    assert!(
        !tail.is_empty() && tail.len() <= N - 45,
        "A left part of the buffer unacked: {}",
        tail.len()
    );

    let mut b = connector(port, &args);
    let status = gw.finish(Duration::from_secs(60));
    assert!(status.success(), "gateway: {status}: {:#?}", gw.seen);
    let closed = b.wait_for("the gateway's disconnect", SOON, |l| l["event"] == "closed");
    assert_eq!(closed["unacked"], 0, "{:#?}", b.seen);
    b.kill();

    let ids = delivered_exactly_once(&gw, N);
    // B seeded nothing and sent only the tail: whatever the gateway got from it, and
    // whatever B acked, was unacked when A died.
    // The gateway's lines are in its machine's order: what came after its first
    // disconnect came from B.
    let disconnect = gw
        .seen
        .iter()
        .position(|l| {
            l["event"] == "status"
                && l["detail"]
                    .as_str()
                    .is_some_and(|d| d.starts_with("Disconnected"))
        })
        .unwrap();
    let seen_before = gw.seen[..disconnect]
        .iter()
        .filter(|l| l["event"] == "inbound")
        .count();
    let gateway_after: BTreeSet<String> = gw.seen[disconnect..]
        .iter()
        .filter(|l| l["event"] == "inbound")
        .map(|l| l["bufferId"].as_str().unwrap().to_owned())
        .collect();
    assert!(gateway_after.is_subset(&tail), "B sent what A had acked");
    let acked_b: BTreeSet<String> = b
        .events("acked")
        .iter()
        .map(|l| l["bufferId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(acked_b, tail, "B acked exactly the unacked tail");
    let acked_a: BTreeSet<String> = a
        .events("acked")
        .iter()
        .map(|l| l["bufferId"].as_str().unwrap().to_owned())
        .collect();
    assert!(acked_a.is_disjoint(&tail), "nothing acked came back");
    assert!(tail.is_subset(&ids));
    let left: usize = redis::cmd("XLEN")
        .arg("relay:buffer:")
        .query(&mut db)
        .unwrap();
    assert_eq!(left, 0, "the stream is empty at the end");
    eprintln!(
        "fleet: {N} deliveries; A killed after {} acks ({seen_before} at the gateway), B \
         replayed a tail of {}",
        acked_a.len(),
        tail.len()
    );
}

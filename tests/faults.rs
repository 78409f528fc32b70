//! The smol examples (`examples/gateway.rs`, `examples/connector.rs`) as processes under
//! network faults, most of them injected by the fault proxy of `tests/proxy/mod.rs`: a
//! half-open link (the gateway's liveness timeout gives it up and the unacked deliveries come
//! again), a server that never answers the upgrade (the dial timeout), a connector that stops
//! reading (request timeouts, the connector's liveness timeout, the reconnect), a flood of
//! silent sockets (the hello timeout and the pending cap), running out of descriptors (the
//! accept backoff) and an upgrade slowed down by the network (only the hello timeout may end
//! it). Every wait is on an output line or a socket event, with a short timeout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod proxy;

mod process;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use process::example;
use proxy::{Direction, Proxy};
use serde_json::Value;

/// The gateway's short timers for these tests: a Ping every 0.2 s, a link given up after
/// 0.6 s without a sign of life, redials 0.1 s to 0.2 s apart.
const FAST_GATEWAY: [&str; 8] = [
    "--ping-interval",
    "0.2",
    "--liveness-timeout",
    "0.6",
    "--backoff-base",
    "0.1",
    "--backoff-cap",
    "0.2",
];

/// How long a step that should take well under a second is waited for.
const SOON: Duration = Duration::from_secs(3);

/// A child's output, one JSON value per line, read on a thread so that a test can wait for
/// a line with a timeout. Every line taken is kept in `seen` with the time it arrived.
struct Lines {
    rx: Receiver<(Instant, Value)>,
    seen: Vec<(Instant, Value)>,
}

impl Lines {
    fn new(stdout: ChildStdout) -> Self {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line)
                    .unwrap_or_else(|_| Value::String(format!("not JSON: {line}")));
                if tx.send((Instant::now(), value)).is_err() {
                    break;
                }
            }
        });
        Self {
            rx,
            seen: Vec::new(),
        }
    }

    /// Takes lines until `until` accepts one, for at most `timeout`; returns its index in
    /// `seen`. Panics (with every line seen) when it does not come.
    fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        mut until: impl FnMut(&Value) -> bool,
    ) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    let done = until(&line.1);
                    self.seen.push(line);
                    if done {
                        return self.seen.len() - 1;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no {what} within {timeout:?}: {:#?}", self.values())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the output ended before {what}: {:#?}", self.values())
                }
            }
        }
    }

    /// Takes every line that arrives until `deadline`.
    fn take_until(&mut self, deadline: Instant) {
        while let Ok(line) = self
            .rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line);
        }
    }

    /// Takes the remaining lines of a process that has ended (or is being killed).
    fn take_rest(&mut self) {
        self.take_until(Instant::now() + Duration::from_secs(5));
    }

    fn values(&self) -> Vec<&Value> {
        self.seen.iter().map(|(_, v)| v).collect()
    }

    fn value(&self, index: usize) -> &Value {
        &self.seen[index].1
    }

    /// The indexes of the lines `which` accepts.
    fn indexes(&self, which: impl Fn(&Value) -> bool) -> Vec<usize> {
        (0..self.seen.len())
            .filter(|&i| which(&self.seen[i].1))
            .collect()
    }
}

fn event(kind: &'static str) -> impl Fn(&Value) -> bool {
    move |line| line["event"] == kind
}

/// A gateway `status` line whose detail starts with `prefix` (`Disconnected`, ...).
fn status(prefix: &'static str) -> impl Fn(&Value) -> bool {
    move |line| {
        line["event"] == "status"
            && line["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with(prefix))
    }
}

fn buffer_id(line: &Value) -> String {
    line["bufferId"].as_str().unwrap().to_owned()
}

/// A connector process, its address, and its output lines.
struct Connector {
    child: Child,
    url: String,
    addr: SocketAddr,
    lines: Lines,
}

impl Connector {
    fn start(args: &[&str]) -> Self {
        Self::spawn(Command::new(example("connector")).args(args))
    }

    fn spawn(command: &mut Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = Lines::new(child.stdout.take().unwrap());
        let first = lines.wait_for("listening line", Duration::from_secs(10), |l| {
            l["listening"].is_string()
        });
        let url = lines.value(first)["listening"].as_str().unwrap().to_owned();
        let addr = url
            .trim_start_matches("ws://")
            .trim_end_matches("/relay")
            .parse()
            .unwrap();
        Self {
            child,
            url,
            addr,
            lines,
        }
    }

    /// Stops the connector and takes the rest of its output.
    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.lines.take_rest();
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn gateway_command(args: &[&str]) -> Command {
    process::command("gateway", args)
}

/// A gateway run to its end: exit code, output lines, standard error, and how long it took.
fn gateway(args: &[&str]) -> (Option<i32>, Vec<Value>, String, Duration) {
    let started = Instant::now();
    let Output {
        status,
        stdout,
        stderr,
    } = gateway_command(args).output().unwrap();
    let took = started.elapsed();
    let lines = String::from_utf8(stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        status.code(),
        lines,
        String::from_utf8_lossy(&stderr).into_owned(),
        took,
    )
}

/// A gateway process whose output is read while it runs; killed on drop.
struct Gateway {
    child: Child,
    lines: Lines,
}

impl Gateway {
    fn spawn(args: &[&str]) -> Self {
        let mut child = gateway_command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = Lines::new(child.stdout.take().unwrap());
        Self { child, lines }
    }

    /// Kills the gateway and takes the rest of its output.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.lines.take_rest();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (up to [`SOON`]) until the listener at `addr` has accepted every connection queued
/// for it, as its accept queue in `/proc/net/tcp` shows (Linux; elsewhere, no wait).
fn wait_accepted(addr: SocketAddr) {
    let local = format!("0100007F:{:04X}", addr.port());
    let queued = || {
        let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
        table.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // A listening socket's rx_queue is its accept queue.
            (fields.get(1) == Some(&local.as_str()) && fields.get(3) == Some(&"0A"))
                .then(|| fields.get(4)?.split_once(':'))
                .flatten()
                .and_then(|(_, rx)| usize::from_str_radix(rx, 16).ok())
        })
    };
    let deadline = Instant::now() + SOON;
    while queued().is_some_and(|n| n > 0) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
}

fn relay_url(addr: SocketAddr) -> String {
    format!("ws://{addr}/relay")
}

/// Slows both directions of the proxy down: 128-byte segments 60 ms apart. The upgrade
/// request (under 256 bytes) still crosses in about 60 ms, well inside the connector's
/// timers, while a descriptor (about 400 bytes) takes about 180 ms and the buffered
/// deliveries behind it (about 250 bytes each) longer: long enough for a test to act
/// between what the connector writes and what the gateway has received.
fn trickle(proxy: &Proxy) {
    proxy.split_segments(128);
    proxy.segment_pause(Duration::from_millis(60));
}

/// The link goes half-open under the gateway (no FIN, no RST, no byte): only its liveness
/// timeout can notice. It gives the link up, reconnects, and the buffered deliveries the
/// connector had no ack for on the first connection come again on the second (and only
/// those: nothing acked is delivered twice).
#[test]
fn a_half_open_link_is_given_up_and_the_unacked_deliveries_come_again() {
    let mut connector = Connector::start(&[
        "--ping-interval",
        "0.2",
        "--liveness-timeout",
        "0.6",
        "--push-inbound",
        "3",
        "--buffered-every",
        "1",
    ]);
    let proxy = Proxy::start(connector.addr);
    // The deliveries are still on their way when the gateway shows the descriptor: the
    // half-open link catches some of them (or their acks) in flight.
    trickle(&proxy);
    let url = relay_url(proxy.addr());
    let mut args = vec!["--url", &url, "--identity", "discord:1"];
    args.extend(FAST_GATEWAY);
    args.extend(["--wait-inbound", "100", "--timeout", "10"]);
    let mut gw = Gateway::spawn(&args);
    gw.lines.wait_for(
        "first descriptor",
        Duration::from_secs(5),
        event("descriptor"),
    );
    proxy.half_open_client_side();
    proxy.unsplit();
    let cut = Instant::now();
    // Ping interval + liveness timeout, and slack.
    let disconnected = gw
        .lines
        .wait_for("Disconnected", SOON, status("Disconnected"));
    let noticed = cut.elapsed();
    // Let the redial through (one held meanwhile is shut, and fails as a dial).
    proxy.release();
    let reconnected = gw
        .lines
        .wait_for("second descriptor", SOON, event("descriptor"));
    assert!(proxy.wait_connections(2, Duration::ZERO));
    assert!(
        gw.lines.value(disconnected)["detail"]
            .as_str()
            .unwrap()
            .contains("liveness"),
        "only the liveness timeout can notice a half-open link: {:#?}",
        gw.lines.values()
    );
    // Every buffered delivery ends up acked, by the first connection or the second.
    let mut acked = BTreeSet::new();
    connector.lines.wait_for("three acks", SOON, |l| {
        if l["event"] == "acked" {
            acked.insert(buffer_id(l));
        }
        acked.len() == 3
    });
    gw.kill();
    connector.stop();

    // The connector saw the first connection end before the second one said hello.
    let c = &connector.lines;
    let closed = c.indexes(event("closed"));
    let hellos = c.indexes(event("hello"));
    assert_eq!(hellos.len(), 2, "{:#?}", c.values());
    assert!(
        !closed.is_empty() && closed[0] < hellos[1],
        "{:#?}",
        c.values()
    );
    let acked_first: BTreeSet<String> = c
        .indexes(event("acked"))
        .into_iter()
        .filter(|&i| i < closed[0])
        .map(|i| buffer_id(c.value(i)))
        .collect();
    let unacked = c.value(closed[0])["unacked"].as_u64().unwrap();
    assert_eq!(unacked as usize, 3 - acked_first.len(), "{:#?}", c.values());
    assert!(
        unacked >= 1,
        "the trickle keeps a delivery in flight at the cut: {:#?}",
        c.values()
    );

    // The gateway saw every delivery; after the reconnect, exactly the unacked ones, once.
    let g = &gw.lines;
    let inbound = g.indexes(event("inbound"));
    let all: BTreeSet<String> = inbound.iter().map(|&i| buffer_id(g.value(i))).collect();
    assert_eq!(all, acked, "{:#?}", g.values());
    let again: Vec<String> = inbound
        .iter()
        .filter(|&&i| i > disconnected)
        .map(|&i| buffer_id(g.value(i)))
        .collect();
    let expected: BTreeSet<String> = all.difference(&acked_first).cloned().collect();
    assert_eq!(
        again.iter().cloned().collect::<BTreeSet<_>>(),
        expected,
        "{:#?}",
        g.values()
    );
    assert_eq!(again.len(), expected.len(), "each redelivered once");
    assert!(reconnected > disconnected);
    eprintln!("half-open link noticed after {noticed:?}, {unacked} deliveries redelivered");
}

/// A server that accepts TCP and never answers the WebSocket upgrade: the first dial is
/// abandoned at the dial timeout (exit 2) instead of hanging.
#[test]
fn a_silent_upgrade_is_abandoned_at_the_dial_timeout() {
    let silent = Proxy::silent();
    let (code, lines, stderr, took) = gateway(&[
        "--url",
        &relay_url(silent.addr()),
        "--identity",
        "discord:1",
        "--dial-timeout",
        "1",
        "--timeout",
        "30",
    ]);
    assert_eq!(code, Some(2), "{lines:#?}\n{stderr}");
    assert!(silent.wait_connections(1, Duration::ZERO));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "the dial timeout (1 s) ends it: {took:?}\n{stderr}"
    );
}

/// The connector stops reading (the proxy holds client→connector bytes unread): the
/// requests the gateway sends meanwhile resolve at the request timeout (ambiguous), the
/// connector's liveness timeout drops the silent link, and the gateway, still responsive,
/// reports the end, reconnects and completes a new handshake.
#[test]
fn a_connector_that_stops_reading_times_requests_out_and_is_left() {
    // The connector's liveness (1.2 s) outlasts the gateway's request timeout (0.4 s), so
    // the requests resolve by their timeout, not by the end of the connection; its Pings
    // (every 0.3 s) keep the gateway's own liveness timer (1 s) from firing.
    let mut connector = Connector::start(&["--ping-interval", "0.3", "--liveness-timeout", "1.2"]);
    let proxy = Proxy::start(connector.addr);
    // The descriptor takes about 180 ms to reach the gateway, which sends its requests
    // right after it: the stall below is in place by then.
    trickle(&proxy);
    let url = relay_url(proxy.addr());
    let mut gw = Gateway::spawn(&[
        "--url",
        &url,
        "--identity",
        "discord:1",
        "--sends",
        "3",
        "--request-timeout",
        "0.4",
        "--ping-interval",
        "0.2",
        "--liveness-timeout",
        "1",
        "--backoff-base",
        "0.1",
        "--backoff-cap",
        "0.2",
        "--wait-inbound",
        "100",
        "--timeout",
        "5",
    ]);
    connector
        .lines
        .wait_for("hello", Duration::from_secs(5), event("hello"));
    proxy.stall_without_reading(Direction::ClientToUpstream);
    let stalled = Instant::now();
    let mut results = 0;
    let last_result = gw.lines.wait_for("three results", SOON, |l| {
        results += usize::from(l["event"] == "result");
        results == 3
    });
    let timed_out = stalled.elapsed();
    let disconnected = gw
        .lines
        .wait_for("Disconnected", SOON, status("Disconnected"));
    let left = stalled.elapsed();
    proxy.resume();
    proxy.unsplit();
    let reconnected = gw
        .lines
        .wait_for("second descriptor", SOON, event("descriptor"));
    gw.kill();
    connector.stop();

    let g = &gw.lines;
    for i in g.indexes(event("result")) {
        let result = g.value(i);
        assert_eq!(
            result["error"],
            "relay outbound timed out",
            "{:#?}",
            g.values()
        );
        assert_eq!(result["ambiguous"], true);
    }
    assert!(last_result < disconnected, "{:#?}", g.values());
    // The link was dropped by the connector, not by the gateway's liveness timer.
    assert!(
        !g.value(disconnected)["detail"]
            .as_str()
            .unwrap()
            .contains("liveness"),
        "{:#?}",
        g.values()
    );
    assert!(
        g.indexes(status("Reconnecting"))
            .iter()
            .any(|&i| disconnected < i && i < reconnected),
        "{:#?}",
        g.values()
    );
    let c = &connector.lines;
    assert!(
        c.indexes(event("outbound")).is_empty(),
        "no request reached the connector: {:#?}",
        c.values()
    );
    let closed = c.indexes(event("closed"));
    let hellos = c.indexes(event("hello"));
    assert_eq!(hellos.len(), 2, "{:#?}", c.values());
    assert!(
        !closed.is_empty() && closed[0] < hellos[1],
        "{:#?}",
        c.values()
    );
    eprintln!("requests timed out after {timed_out:?}, link left after {left:?}");
}

/// 300 sockets that never say anything do not keep a real gateway out, and each is closed
/// by the hello timeout (or, past `--max-pending`, dropped to make room).
#[test]
fn three_hundred_silent_sockets_neither_starve_nor_outlive_the_hello_timeout() {
    const SILENT: usize = 300;
    let mut connector = Connector::start(&["--hello-timeout", "0.5"]);
    let mut silent = Vec::with_capacity(SILENT);
    while silent.len() < SILENT {
        // In batches the connector's accept queue (128) can take at once: an overflow would
        // delay some connects by a SYN retransmission (1 s) on a busy host.
        wait_accepted(connector.addr);
        silent.extend((0..50).map(|_| TcpStream::connect_timeout(&connector.addr, SOON).unwrap()));
    }
    let opened = Instant::now();
    let (code, lines, stderr, took) = gateway(&[
        "--url",
        &connector.url,
        "--identity",
        "discord:1",
        "--wait-inbound",
        "0",
        "--timeout",
        "10",
    ]);
    assert_eq!(code, Some(0), "{lines:#?}\n{stderr}");
    let deadline = opened + SOON;
    for (i, socket) in silent.iter_mut().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match socket.read(&mut [0u8; 64]) {
            Ok(0) => {}
            Ok(n) => panic!("silent socket {i} was sent {n} bytes"),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("silent socket {i} still open {SOON:?} after it was opened")
            }
            Err(_) => {}
        }
    }
    let closed_by = opened.elapsed();
    let (mut timed_out, mut dropped) = (0, 0);
    connector
        .lines
        .wait_for("an end for every silent socket", SOON, |l| {
            timed_out += usize::from(l["event"] == "hello_timeout");
            dropped += usize::from(l["event"] == "dropped_pending");
            timed_out + dropped == SILENT
        });
    connector.stop();
    let c = &connector.lines;
    assert!(
        c.indexes(event("hello_timeout"))
            .iter()
            .all(|&i| c.value(i)["upgraded"] == false)
    );
    assert_eq!(
        c.indexes(event("hello_timeout")).len() + c.indexes(event("dropped_pending")).len(),
        SILENT,
        "{:#?}",
        c.values()
    );
    assert!(
        timed_out >= SILENT / 2,
        "{timed_out} timed out, {dropped} dropped"
    );
    // The gateway was served while the silent sockets were held: all of them but those the
    // pending cap dropped (on a very busy host, the first ones may have timed out already).
    let connected = c.indexes(event("connected"));
    assert_eq!(connected.len(), 1, "{:#?}", c.values());
    let ended_before = c
        .indexes(|l| l["event"] == "hello_timeout" || l["event"] == "dropped_pending")
        .into_iter()
        .filter(|&i| i < connected[0])
        .count();
    let held = SILENT - ended_before;
    assert!(
        held >= SILENT / 2,
        "only {held} silent sockets held when the gateway was served: {:#?}",
        c.values()
    );
    eprintln!(
        "gateway done in {took:?} with {held} silent sockets held; {timed_out} timed out, {dropped} dropped, all closed within {closed_by:?}"
    );
}

/// Out of descriptors, the connector's accepts fail: it backs off (10 ms doubling to 1 s)
/// instead of spinning, and accepts again once descriptors are free.
#[test]
fn accept_errors_back_off_and_the_connector_recovers() {
    let connector_path = example("connector");
    let mut connector = Connector::spawn(Command::new("sh").args([
        "-c",
        "ulimit -n 40 && exec \"$0\" \"$@\"",
        connector_path.to_str().unwrap(),
        // Held sockets are never closed by a hello timer or the pending cap.
        "--hello-timeout",
        "0",
        "--max-pending",
        "1000",
    ]));
    let held: Vec<TcpStream> = (0..60)
        .map(|_| TcpStream::connect_timeout(&connector.addr, SOON).unwrap())
        .collect();
    let first = connector
        .lines
        .wait_for("an accept error", SOON, event("accept_error"));
    let window = Duration::from_millis(1500);
    let start = connector.lines.seen[first].0;
    connector.lines.take_until(start + window);
    let c = &connector.lines;
    let errors: Vec<Value> = c
        .indexes(event("accept_error"))
        .into_iter()
        .filter(|&i| c.seen[i].0 <= start + window)
        .map(|i| c.value(i).clone())
        .collect();
    // 10 + 20 + ... + 640 ms = 1.27 s: 8 tries in the window, 9 with a late timer.
    assert!(
        !errors.is_empty() && errors.len() <= 15,
        "{} accept errors in {window:?}: {errors:#?}",
        errors.len()
    );
    assert!(
        errors[0]["error"]
            .as_str()
            .unwrap()
            .contains("Too many open files"),
        "{errors:#?}"
    );
    let waits: Vec<u64> = errors
        .iter()
        .map(|e| e["retry_in_ms"].as_u64().unwrap())
        .collect();
    assert_eq!(waits[0], 10, "{waits:?}");
    assert!(
        waits.windows(2).all(|w| w[1] == (w[0] * 2).min(1000)),
        "{waits:?}"
    );
    drop(held);
    let (code, lines, stderr, took) = gateway(&[
        "--url",
        &connector.url,
        "--identity",
        "discord:1",
        "--wait-inbound",
        "0",
        "--timeout",
        "10",
    ]);
    assert_eq!(code, Some(0), "{lines:#?}\n{stderr}");
    connector
        .lines
        .wait_for("the gateway's hello", SOON, event("hello"));
    eprintln!(
        "{} accept errors in {window:?} (waits {waits:?}); gateway served in {took:?}",
        errors.len()
    );
}

/// A slow network stretches the WebSocket upgrade (about 0.45 s here) past the connector's
/// ping interval (0.2 s) but far inside its hello timeout (5 s): only the hello timeout may
/// end a socket that has not said hello yet, so the upgrade completes and the gateway is
/// served.
#[test]
fn a_slow_upgrade_is_not_cut_before_the_hello_timeout() {
    let mut connector = Connector::start(&[
        "--hello-timeout",
        "5",
        "--ping-interval",
        "0.2",
        "--liveness-timeout",
        "5",
    ]);
    let proxy = Proxy::start(connector.addr);
    // The upgrade request (about 170 bytes) crosses in 16-byte segments 40 ms apart.
    proxy.split_segments(16);
    proxy.segment_pause(Duration::from_millis(40));
    let url = relay_url(proxy.addr());
    let mut gw = Gateway::spawn(&[
        "--url",
        &url,
        "--identity",
        "discord:1",
        "--dial-timeout",
        "5",
        "--wait-inbound",
        "0",
        "--timeout",
        "10",
    ]);
    let started = Instant::now();
    let outcome = connector
        .lines
        .wait_for("the end of the upgrade", Duration::from_secs(5), |l| {
            l["event"] == "connected" || l["event"] == "hello_timeout"
        });
    let upgraded_after = started.elapsed();
    proxy.unsplit();
    let code = gw.child.wait().unwrap().code();
    gw.lines.take_rest();
    assert_eq!(
        connector.lines.value(outcome)["event"],
        "connected",
        "the upgrade was cut after {upgraded_after:?}, with the hello timeout 5 s away: {:#?}",
        connector.lines.values()
    );
    assert_eq!(code, Some(0), "{:#?}", gw.lines.values());
}

//! The fault proxy of `tests/proxy/mod.rs` against plain TCP peers: every knob does what its
//! documentation says, promptly, and dropping the proxy closes what it holds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod proxy;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use proxy::{Direction, Proxy};

/// How long "nothing arrives" is watched for.
const QUIET: Duration = Duration::from_millis(200);
/// How long "it closes promptly" may take.
const PROMPT: Duration = Duration::from_millis(500);

/// An upstream server that hands every connection the proxy dials to the test.
struct Upstream {
    addr: SocketAddr,
    accepted: Receiver<TcpStream>,
}

impl Upstream {
    fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, accepted) = mpsc::channel();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if tx.send(stream.unwrap()).is_err() {
                    break;
                }
            }
        });
        Upstream { addr, accepted }
    }

    /// The next connection the proxy dialed.
    fn next(&self) -> TcpStream {
        let stream = self
            .accepted
            .recv_timeout(Duration::from_secs(1))
            .expect("the proxy dialed the upstream");
        stream.set_read_timeout(Some(PROMPT)).unwrap();
        stream
    }

    /// The proxy does not dial within `QUIET`.
    fn expect_no_dial(&self) {
        assert!(
            self.accepted.recv_timeout(QUIET).is_err(),
            "unexpected dial"
        );
    }
}

/// A trivial echo server; the receiver yields once per echoed connection that ended.
fn echo_server() -> (SocketAddr, Receiver<()>) {
    let upstream = Upstream::start();
    let addr = upstream.addr;
    let (ended_tx, ended) = mpsc::channel();
    thread::spawn(move || {
        while let Ok(mut stream) = upstream.accepted.recv() {
            let ended_tx = ended_tx.clone();
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = ended_tx.send(());
            });
        }
    });
    (addr, ended)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PROMPT)).unwrap();
    stream
}

fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    stream.read_exact(&mut buf).unwrap();
    buf
}

fn round_trip(client: &mut TcpStream, msg: &[u8]) {
    client.write_all(msg).unwrap();
    assert_eq!(read_n(client, msg.len()), msg);
}

/// Reads on `stream` time out for `QUIET`: no data and no EOF.
fn expect_silence(stream: &mut TcpStream) {
    stream.set_read_timeout(Some(QUIET)).unwrap();
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        Ok(0) => panic!("EOF where silence was expected"),
        Ok(n) => panic!("data where silence was expected: {:?}", &buf[..n]),
        Err(e) => panic!("error where silence was expected: {e}"),
    }
    stream.set_read_timeout(Some(PROMPT)).unwrap();
}

/// `stream` reads EOF or a connection error within `PROMPT` (no data, no timeout).
fn expect_closed(stream: &mut TcpStream) {
    stream.set_read_timeout(Some(PROMPT)).unwrap();
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("still open after {PROMPT:?}")
        }
        Err(_) => {}
        Ok(n) => panic!("data where a close was expected: {:?}", &buf[..n]),
    }
}

/// Polls `cond` for up to a second.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(1);
    while !cond() {
        assert!(Instant::now() < deadline, "never: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

fn pattern(from: usize, len: usize) -> Vec<u8> {
    (from..from + len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn relays_both_ways_and_counts_connections() {
    let (echo, ended) = echo_server();
    let proxy = Proxy::start(echo);
    assert_eq!(proxy.connections(), 0);
    let mut a = connect(proxy.addr());
    let mut b = connect(proxy.addr());
    round_trip(&mut a, b"hello");
    round_trip(&mut b, b"world");
    round_trip(&mut a, &pattern(0, 10_000));
    assert!(proxy.wait_connections(2, PROMPT));
    assert_eq!(proxy.connections(), 2);
    assert_eq!(proxy.open_connections(), 2);
    assert!(!proxy.wait_connections(3, Duration::from_millis(20)));

    // A client closing passes through: the upstream sees the end, the count drops.
    drop(a);
    ended
        .recv_timeout(PROMPT)
        .expect("the upstream saw the client leave");
    eventually("one open connection", || proxy.open_connections() == 1);
    round_trip(&mut b, b"still here");
    assert_eq!(proxy.connections(), 2);
}

#[test]
fn split_segments_deliver_everything_in_order() {
    let (echo, _ended) = echo_server();
    let proxy = Proxy::start(echo);
    proxy.split_segments(3);
    let mut client = connect(proxy.addr());
    round_trip(&mut client, &pattern(0, 5_000));

    // With a pause after each segment the receiver really reads the pieces separately.
    let upstream = Upstream::start();
    let proxy = Proxy::start(upstream.addr);
    proxy.split_segments(2);
    proxy.segment_pause(Duration::from_millis(5));
    let mut client = connect(proxy.addr());
    let mut up = upstream.next();
    client.write_all(b"abcdefghij").unwrap();
    let mut got = Vec::new();
    let mut reads = 0;
    while got.len() < 10 {
        let mut buf = [0u8; 64];
        let n = up.read(&mut buf).unwrap();
        assert!(n > 0, "EOF mid-message");
        got.extend_from_slice(&buf[..n]);
        reads += 1;
    }
    assert_eq!(got, b"abcdefghij");
    assert!(reads >= 2, "the message arrived in one read");

    // Undone: a single write arrives whole and in order.
    proxy.unsplit();
    up.write_all(&pattern(7, 3_000)).unwrap();
    assert_eq!(read_n(&mut client, 3_000), pattern(7, 3_000));
}

#[test]
fn cut_all_closes_both_sides_promptly() {
    let (echo, ended) = echo_server();
    let proxy = Proxy::start(echo);
    let mut client = connect(proxy.addr());
    round_trip(&mut client, b"before");
    let started = Instant::now();
    proxy.cut_all();
    expect_closed(&mut client);
    assert!(started.elapsed() < PROMPT);
    ended
        .recv_timeout(PROMPT)
        .expect("the upstream saw the cut");
    eventually("no open connection", || proxy.open_connections() == 0);

    // Later connections are relayed as usual.
    let mut again = connect(proxy.addr());
    round_trip(&mut again, b"after");
    assert_eq!(proxy.connections(), 2);

    // A cut right after the accept (before the proxy has dialed) still closes the connection.
    for n in 3..8 {
        let mut fresh = connect(proxy.addr());
        assert!(proxy.wait_connections(n, PROMPT));
        proxy.cut_all();
        expect_closed(&mut fresh);
    }
}

#[test]
fn half_open_client_side_leaves_the_client_hanging() {
    let upstream = Upstream::start();
    let proxy = Proxy::start(upstream.addr);
    let mut client = connect(proxy.addr());
    let mut up = upstream.next();
    client.write_all(b"ping").unwrap();
    assert_eq!(read_n(&mut up, 4), b"ping");
    up.write_all(b"pong").unwrap();
    assert_eq!(read_n(&mut client, 4), b"pong");

    proxy.half_open_client_side();
    // The upstream sees its connection end...
    expect_closed(&mut up);
    // ...while the client sees nothing at all, even when it writes.
    client.write_all(b"anyone?").unwrap();
    expect_silence(&mut client);
    assert_eq!(proxy.open_connections(), 0);

    // A reconnect while the link is half-open is held the same way, without a dial.
    let mut late = connect(proxy.addr());
    upstream.expect_no_dial();
    expect_silence(&mut late);
    assert_eq!(proxy.connections(), 2);

    // Released: the held legs are reset, new connections are relayed again.
    proxy.release();
    expect_closed(&mut client);
    expect_closed(&mut late);
    let mut healed = connect(proxy.addr());
    let mut up = upstream.next();
    up.write_all(b"back").unwrap();
    assert_eq!(read_n(&mut healed, 4), b"back");
}

#[test]
fn half_open_upstream_side_leaves_the_upstream_hanging() {
    let upstream = Upstream::start();
    let proxy = Proxy::start(upstream.addr);
    let mut client = connect(proxy.addr());
    let mut up = upstream.next();
    client.write_all(b"hi").unwrap();
    assert_eq!(read_n(&mut up, 2), b"hi");

    proxy.half_open_upstream_side();
    expect_closed(&mut client);
    up.write_all(b"hello?").unwrap();
    expect_silence(&mut up);

    // A connection made meanwhile reaches the upstream, then its client leg is shut.
    let mut late = connect(proxy.addr());
    let mut late_up = upstream.next();
    expect_closed(&mut late);
    expect_silence(&mut late_up);

    proxy.release();
    expect_closed(&mut up);
    expect_closed(&mut late_up);
}

#[test]
fn stall_drops_one_direction_while_the_other_flows() {
    let upstream = Upstream::start();
    let proxy = Proxy::start(upstream.addr);
    let mut client = connect(proxy.addr());
    let mut up = upstream.next();

    proxy.stall(Direction::ClientToUpstream);
    client.write_all(b"lost").unwrap();
    up.write_all(b"hello").unwrap();
    assert_eq!(read_n(&mut client, 5), b"hello");
    expect_silence(&mut up);
    proxy.resume();
    client.write_all(b"found").unwrap();
    assert_eq!(read_n(&mut up, 5), b"found");

    proxy.stall(Direction::UpstreamToClient);
    up.write_all(b"gone").unwrap();
    client.write_all(b"ping").unwrap();
    assert_eq!(read_n(&mut up, 4), b"ping");
    expect_silence(&mut client);
    proxy.resume();
    up.write_all(b"back").unwrap();
    assert_eq!(read_n(&mut client, 4), b"back");
    assert_eq!(proxy.open_connections(), 1);
}

#[test]
fn stall_without_reading_builds_backpressure() {
    let upstream = Upstream::start();
    let proxy = Proxy::start(upstream.addr);
    let mut client = connect(proxy.addr());
    let mut up = upstream.next();
    proxy.stall_without_reading(Direction::ClientToUpstream);

    // The client writes until its writes block (the write timeout fires).
    client
        .set_write_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut written = 0;
    loop {
        match client.write(&pattern(written, 64 * 1024)) {
            Ok(n) => written += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("write failed: {e}"),
        }
        assert!(written < 256 << 20, "no backpressure after {written} bytes");
    }
    assert!(written > 0);

    // The other direction still flows.
    up.write_all(b"still").unwrap();
    assert_eq!(read_n(&mut client, 5), b"still");

    // Resumed: nothing was lost.
    proxy.resume();
    up.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    assert!(read_n(&mut up, written) == pattern(0, written));
    expect_silence(&mut up);
}

#[test]
fn silent_accepts_and_never_answers() {
    let proxy = Proxy::silent();
    let mut client = connect(proxy.addr());
    client
        .write_all(b"GET /relay HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")
        .unwrap();
    expect_silence(&mut client);
    assert!(proxy.wait_connections(1, PROMPT));
    assert_eq!(proxy.open_connections(), 0);
    // cut_all also closes held sockets.
    proxy.cut_all();
    expect_closed(&mut client);
}

#[test]
fn refuse_upgrade_never_dials_until_allowed() {
    let upstream = Upstream::start();
    let proxy = Proxy::start(upstream.addr);
    proxy.refuse_upgrade();
    let mut refused = connect(proxy.addr());
    refused.write_all(b"GET /relay HTTP/1.1\r\n\r\n").unwrap();
    upstream.expect_no_dial();
    expect_silence(&mut refused);

    proxy.allow_upgrade();
    let mut client = connect(proxy.addr());
    let mut up = upstream.next();
    up.write_all(b"101").unwrap();
    assert_eq!(read_n(&mut client, 3), b"101");
    // The connection held while refusing stays silent.
    expect_silence(&mut refused);
    assert_eq!(proxy.connections(), 2);
    assert_eq!(proxy.open_connections(), 1);
}

#[test]
fn drop_closes_everything_promptly() {
    let (echo, ended) = echo_server();
    let proxy = Proxy::start(echo);
    let addr = proxy.addr();
    let mut relayed = connect(addr);
    round_trip(&mut relayed, b"x");
    proxy.stall_without_reading(Direction::UpstreamToClient);
    proxy.refuse_upgrade();
    let mut held = connect(addr);
    assert!(proxy.wait_connections(2, PROMPT));

    let started = Instant::now();
    drop(proxy);
    // Drop joins every proxy thread, so this bounds how long any of them outlives it.
    assert!(
        started.elapsed() < Duration::from_millis(200),
        "drop took {:?}",
        started.elapsed()
    );
    expect_closed(&mut relayed);
    expect_closed(&mut held);
    ended.recv_timeout(PROMPT).expect("the upstream leg closed");
    // Not listening any more.
    assert!(TcpStream::connect(addr).is_err());
}

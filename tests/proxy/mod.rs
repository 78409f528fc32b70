//! A TCP fault proxy for process-level tests: put it between a driver process and the peer
//! it dials, then break the link on purpose (cut it, make it half-open, stall one direction,
//! split writes into tiny segments, accept and never answer) to check how the driver copes.
//!
//! Std only: one accept thread, two relay threads per connection (one per direction), small
//! buffers, `TCP_NODELAY` on both legs. Blocking reads and writes with a 50 ms timeout let
//! every thread notice knob changes and the stop flag; dropping the [`Proxy`] closes every
//! socket it holds and joins every thread before it returns.
//!
//! Knobs are methods on [`Proxy`] (`&self`) and may be called at any time; unless a knob says
//! otherwise it applies both to the connections being relayed and to those accepted later.

#![allow(dead_code)]

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long a blocked read, write or wait lasts before a thread rechecks knobs and the stop flag.
const TICK: Duration = Duration::from_millis(50);
/// The relay buffer: small, so a large message crosses the proxy in several writes.
const BUF: usize = 1024;
/// How long the proxy keeps trying to dial the upstream before closing the client.
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// One direction of a relayed connection, for [`Proxy::stall`] and
/// [`Proxy::stall_without_reading`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Bytes the client sends towards the upstream.
    ClientToUpstream,
    /// Bytes the upstream sends back towards the client.
    UpstreamToClient,
}

impl Direction {
    fn index(self) -> usize {
        match self {
            Direction::ClientToUpstream => 0,
            Direction::UpstreamToClient => 1,
        }
    }
}

/// What a relay thread does with its direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Stall {
    /// Read and forward.
    #[default]
    Flowing,
    /// Read and discard.
    Dropping,
    /// Do not read (TCP backpressure builds up).
    Holding,
}

/// The leg a half-open link keeps open (and silent).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Held {
    Client,
    Upstream,
}

/// The settings shared by every connection, plus the accept count (under the same lock so
/// [`Proxy::wait_connections`] can wait on the condition variable).
#[derive(Default)]
struct Knobs {
    stall: [Stall; 2],
    split: Option<usize>,
    pause: Duration,
    refuse_upgrade: bool,
    half_open: Option<Held>,
    accepted: usize,
    /// Bumped by every `cut_all`: a connection accepted before a cut but registered after
    /// it is closed instead of registered.
    cut_epoch: u64,
}

// Connection states.
const RELAYING: u8 = 0;
const HALF_OPEN_CLIENT: u8 = 1;
const HALF_OPEN_UPSTREAM: u8 = 2;
const SILENT: u8 = 3;
const CLOSED: u8 = 4;

/// One accepted client connection and, when dialed, its upstream leg.
struct Conn {
    client: Option<TcpStream>,
    upstream: Option<TcpStream>,
    state: AtomicU8,
    /// Relay threads still running for this connection.
    live: AtomicU8,
}

impl Conn {
    fn state(&self) -> u8 {
        self.state.load(Ordering::Acquire)
    }

    fn relaying(&self) -> bool {
        self.state() == RELAYING
    }

    /// Moves a relayed connection to `to`; false when it was no longer relayed.
    fn leave_relaying(&self, to: u8) -> bool {
        self.state
            .compare_exchange(RELAYING, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn shutdown_all(&self) {
        for leg in [&self.client, &self.upstream].into_iter().flatten() {
            let _ = leg.shutdown(Shutdown::Both);
        }
    }
}

struct Shared {
    upstream: Option<SocketAddr>,
    stop: AtomicBool,
    knobs: Mutex<Knobs>,
    /// Signalled on every knob change, accept and stop.
    changed: Condvar,
    /// Every connection the proxy holds a socket of (relayed, half-open or silent).
    conns: Mutex<Vec<Arc<Conn>>>,
    /// Every thread spawned (but the accept thread), joined on drop.
    threads: Mutex<Vec<JoinHandle<()>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
    )
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn set(&self, change: impl FnOnce(&mut Knobs)) {
        change(&mut lock(&self.knobs));
        self.changed.notify_all();
    }

    fn spawn(self: &Arc<Self>, body: impl FnOnce(&Arc<Shared>) + Send + 'static) {
        let shared = Arc::clone(self);
        let handle = thread::Builder::new()
            .name("fault-proxy".into())
            .spawn(move || body(&shared))
            .expect("spawn a fault-proxy thread");
        let mut threads = lock(&self.threads);
        threads.retain(|h| !h.is_finished());
        threads.push(handle);
    }

    /// Registers the connection `build` makes from the half-open knob, or closes it when the
    /// proxy is stopping or `cut_all` ran since it was accepted (in `epoch`). The list lock is
    /// held while the knobs are read, so a knob set concurrently either shows here or finds
    /// the connection in the list.
    fn register(&self, epoch: u64, build: impl FnOnce(Option<Held>) -> Conn) -> Option<Arc<Conn>> {
        let mut conns = lock(&self.conns);
        let (half_open, cut) = {
            let k = lock(&self.knobs);
            (k.half_open, k.cut_epoch != epoch)
        };
        let conn = build(half_open);
        if cut || self.stopped() {
            conn.shutdown_all();
            return None;
        }
        let conn = Arc::new(conn);
        conns.push(Arc::clone(&conn));
        Some(conn)
    }

    fn remove(&self, conn: &Arc<Conn>) {
        lock(&self.conns).retain(|c| !Arc::ptr_eq(c, conn));
    }

    /// Closes a relayed connection on both legs (after an I/O error); no-op once it is not
    /// relayed any more (a half-open leg stays held).
    fn cut(&self, conn: &Conn) {
        if conn.leave_relaying(CLOSED) {
            conn.shutdown_all();
        }
    }

    /// A relay thread is done; the last one out closes and forgets a finished connection
    /// (but keeps a half-open one held until `release`, `cut_all` or drop).
    fn thread_done(&self, conn: &Arc<Conn>) {
        if conn.live.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        match conn
            .state
            .compare_exchange(RELAYING, CLOSED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) | Err(CLOSED) => {
                conn.shutdown_all();
                self.remove(conn);
            }
            Err(_) => {}
        }
    }
}

/// A TCP proxy on `127.0.0.1` that relays to one upstream address and injects faults on
/// command. Tests point the client (e.g. a driver process) at [`Proxy::addr`] instead of the
/// real server. Dropping it stops everything: no new accepts, every held socket shut down,
/// every thread joined.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    /// A proxy listening on `127.0.0.1:0` that dials `upstream` for every accepted client and
    /// relays both ways, faithfully until a knob says otherwise.
    pub fn start(upstream: SocketAddr) -> Proxy {
        Proxy::listen(Some(upstream))
    }

    /// A listener that accepts every connection and holds it open without reading or writing
    /// and without dialing anywhere: a server that never answers a WebSocket upgrade (or any
    /// request), for connect/handshake timeouts. Held sockets close on drop or [`cut_all`].
    ///
    /// [`cut_all`]: Proxy::cut_all
    pub fn silent() -> Proxy {
        Proxy::listen(None)
    }

    fn listen(upstream: Option<SocketAddr>) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        let addr = listener.local_addr().expect("fault proxy address");
        let shared = Arc::new(Shared {
            upstream,
            stop: AtomicBool::new(false),
            knobs: Mutex::new(Knobs::default()),
            changed: Condvar::new(),
            conns: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("fault-proxy-accept".into())
            .spawn(move || accept_loop(&accept_shared, &listener))
            .expect("spawn the fault-proxy accept thread");
        Proxy {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// The address clients should connect to (`127.0.0.1:<port>`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every connection the proxy holds right now, both legs, both directions (relayed,
    /// half-open and silent ones alike): a dropped link or a crashed peer, for reconnect
    /// tests. Connections accepted afterwards are relayed as usual.
    pub fn cut_all(&self) {
        self.shared.set(|k| k.cut_epoch += 1);
        let conns = std::mem::take(&mut *lock(&self.shared.conns));
        for conn in conns {
            conn.state.store(CLOSED, Ordering::Release);
            conn.shutdown_all();
        }
    }

    /// A half-open link as the client sees it (peer vanished, no FIN or RST ever arrives):
    /// relaying stops both ways, the upstream leg is shut down (the upstream sees its
    /// connection end), and the client leg stays open and silent — no data, no EOF — so only
    /// the client's own heartbeat/idle timeout can notice. Client writes are still accepted
    /// by the kernel (until its buffers fill) and discarded. Connections accepted while this
    /// holds are held the same way without dialing. Lasts until [`release`], [`cut_all`] or
    /// drop; connections already half-open on the other side are left as they are.
    ///
    /// [`release`]: Proxy::release
    /// [`cut_all`]: Proxy::cut_all
    pub fn half_open_client_side(&self) {
        self.half_open(Held::Client);
    }

    /// The mirror of [`half_open_client_side`]: the client leg is shut down (the client sees
    /// EOF) while the upstream leg stays open and silent, so the upstream never learns the
    /// client is gone — for testing the server side's idle detection. Connections accepted
    /// while this holds dial the upstream, then shut the client leg and hold the upstream one.
    ///
    /// [`half_open_client_side`]: Proxy::half_open_client_side
    pub fn half_open_upstream_side(&self) {
        self.half_open(Held::Upstream);
    }

    fn half_open(&self, held: Held) {
        self.shared.set(|k| k.half_open = Some(held));
        let (state, shut) = match held {
            Held::Client => (HALF_OPEN_CLIENT, Held::Upstream),
            Held::Upstream => (HALF_OPEN_UPSTREAM, Held::Client),
        };
        for conn in lock(&self.shared.conns).iter() {
            if conn.leave_relaying(state) {
                let leg = match shut {
                    Held::Client => &conn.client,
                    Held::Upstream => &conn.upstream,
                };
                if let Some(leg) = leg {
                    let _ = leg.shutdown(Shutdown::Both);
                }
            }
        }
    }

    /// Ends a half-open link: new connections are relayed again, and every held half-open leg
    /// is shut down now, as a real peer would reset a stale connection once packets flow
    /// again (the dead leg cannot be revived). Silent connections stay held.
    pub fn release(&self) {
        self.shared.set(|k| k.half_open = None);
        lock(&self.shared.conns).retain(|conn| {
            let state = conn.state();
            if state == HALF_OPEN_CLIENT || state == HALF_OPEN_UPSTREAM {
                conn.state.store(CLOSED, Ordering::Release);
                conn.shutdown_all();
                false
            } else {
                true
            }
        });
    }

    /// Stops forwarding one direction while still reading it: the bytes are read from the
    /// source and thrown away (a black-holing middlebox; lost frames, missed heartbeats or
    /// acks), while the other direction keeps flowing. Undone by [`resume`].
    ///
    /// [`resume`]: Proxy::resume
    pub fn stall(&self, direction: Direction) {
        self.shared
            .set(|k| k.stall[direction.index()] = Stall::Dropping);
    }

    /// Stops forwarding one direction without reading it at all, so TCP backpressure builds
    /// up and the sender's writes eventually block (a slow or frozen peer; for write timeouts
    /// and bounded outbound queues). A read already in progress when this is set may still
    /// pass one small buffer (1 KiB). Nothing is lost: [`resume`] delivers everything.
    ///
    /// [`resume`]: Proxy::resume
    pub fn stall_without_reading(&self, direction: Direction) {
        self.shared
            .set(|k| k.stall[direction.index()] = Stall::Holding);
    }

    /// Undoes [`stall`] and [`stall_without_reading`] in both directions.
    ///
    /// [`stall`]: Proxy::stall
    /// [`stall_without_reading`]: Proxy::stall_without_reading
    pub fn resume(&self) {
        self.shared.set(|k| k.stall = [Stall::Flowing; 2]);
    }

    /// Forwards in writes of at most `max` bytes (each one sent as its own segment, as
    /// `TCP_NODELAY` is set), so the receiver sees frames and handshakes split at arbitrary
    /// points; for partial-read handling. `max` must be at least 1. Undone by [`unsplit`].
    ///
    /// [`unsplit`]: Proxy::unsplit
    pub fn split_segments(&self, max: usize) {
        assert!(max > 0, "split_segments needs a positive size");
        self.shared.set(|k| k.split = Some(max));
    }

    /// With [`split_segments`], sleeps `pause` after every segment so the receiver's reads
    /// really do return the pieces separately (without it, a slow reader may get several
    /// segments in one read). `Duration::ZERO` (the default) means no pause.
    ///
    /// [`split_segments`]: Proxy::split_segments
    pub fn segment_pause(&self, pause: Duration) {
        self.shared.set(|k| k.pause = pause);
    }

    /// Undoes [`split_segments`] and [`segment_pause`]: each read is forwarded in one write.
    ///
    /// [`split_segments`]: Proxy::split_segments
    /// [`segment_pause`]: Proxy::segment_pause
    pub fn unsplit(&self) {
        self.shared.set(|k| {
            k.split = None;
            k.pause = Duration::ZERO;
        });
    }

    /// Connections accepted from now on are held open without dialing the upstream and
    /// without a byte either way (as [`Proxy::silent`]): a server that accepts TCP but never
    /// answers the WebSocket upgrade. Connections already relayed are not affected. Undone by
    /// [`allow_upgrade`].
    ///
    /// [`allow_upgrade`]: Proxy::allow_upgrade
    pub fn refuse_upgrade(&self) {
        self.shared.set(|k| k.refuse_upgrade = true);
    }

    /// Undoes [`refuse_upgrade`]: later connections dial the upstream again (connections held
    /// meanwhile stay silent). No effect on a [`Proxy::silent`], which has no upstream.
    ///
    /// [`refuse_upgrade`]: Proxy::refuse_upgrade
    pub fn allow_upgrade(&self) {
        self.shared.set(|k| k.refuse_upgrade = false);
    }

    /// How many client connections have been accepted so far (relayed, held or failed to
    /// dial): counts connection attempts, e.g. reconnects.
    pub fn connections(&self) -> usize {
        lock(&self.shared.knobs).accepted
    }

    /// How many connections are being relayed right now (not counting half-open, silent or
    /// closed ones).
    pub fn open_connections(&self) -> usize {
        lock(&self.shared.conns)
            .iter()
            .filter(|c| c.relaying())
            .count()
    }

    /// Waits until at least `n` client connections have been accepted in total, for at most
    /// `timeout`; true when they have. For "the client reconnected" checks without sleeps.
    pub fn wait_connections(&self, n: usize, timeout: Duration) -> bool {
        let knobs = lock(&self.shared.knobs);
        let (knobs, _) = self
            .shared
            .changed
            .wait_timeout_while(knobs, timeout, |k| k.accepted < n)
            .unwrap_or_else(PoisonError::into_inner);
        knobs.accepted >= n
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.set(|_| {});
        self.cut_all();
        // Wake the accept thread out of its blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        // Joining a connection's first thread may add its second one: drain until empty.
        loop {
            let threads = std::mem::take(&mut *lock(&self.shared.threads));
            if threads.is_empty() {
                break;
            }
            for thread in threads {
                let _ = thread.join();
            }
        }
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    for incoming in listener.incoming() {
        if shared.stopped() {
            return;
        }
        let Ok(client) = incoming else {
            // E.g. out of descriptors: back off instead of spinning.
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let mut epoch = 0;
        shared.set(|k| {
            k.accepted += 1;
            epoch = k.cut_epoch;
        });
        let _ = client.set_nodelay(true);
        shared.spawn(move |shared| serve(shared, client, epoch));
    }
}

/// Handles one accepted client: holds it, or dials the upstream and relays (this thread
/// relays client→upstream, a second one upstream→client).
fn serve(shared: &Arc<Shared>, client: TcpStream, epoch: u64) {
    let (refuse, half_open) = {
        let k = lock(&shared.knobs);
        (k.refuse_upgrade, k.half_open)
    };
    let hold = |client: TcpStream, state: u8| {
        shared.register(epoch, |_| Conn {
            client: Some(client),
            upstream: None,
            state: AtomicU8::new(state),
            live: AtomicU8::new(0),
        });
    };
    let Some(addr) = shared.upstream.filter(|_| !refuse) else {
        return hold(client, SILENT);
    };
    if half_open == Some(Held::Client) {
        // The upstream leg of a half-open link is gone: never dial it.
        return hold(client, HALF_OPEN_CLIENT);
    }
    let Some(upstream) = dial(shared, addr) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = upstream.set_nodelay(true);
    let legs = (|| {
        for leg in [&client, &upstream] {
            leg.set_read_timeout(Some(TICK))?;
            leg.set_write_timeout(Some(TICK))?;
        }
        Ok::<_, io::Error>((
            client.try_clone()?,
            client.try_clone()?,
            upstream.try_clone()?,
            upstream.try_clone()?,
        ))
    })();
    let Ok((client_in, client_out, upstream_in, upstream_out)) = legs else {
        let _ = client.shutdown(Shutdown::Both);
        let _ = upstream.shutdown(Shutdown::Both);
        return;
    };
    // The half-open knob is read again at registration: it may have been set while dialing.
    let registered = shared.register(epoch, |half_open| {
        let state = match half_open {
            None => RELAYING,
            Some(Held::Client) => {
                let _ = upstream.shutdown(Shutdown::Both);
                HALF_OPEN_CLIENT
            }
            Some(Held::Upstream) => {
                let _ = client.shutdown(Shutdown::Both);
                HALF_OPEN_UPSTREAM
            }
        };
        Conn {
            client: Some(client),
            upstream: Some(upstream),
            state: AtomicU8::new(state),
            live: AtomicU8::new(2),
        }
    });
    let Some(conn) = registered.filter(|c| c.relaying()) else {
        return;
    };
    let back = Arc::clone(&conn);
    shared.spawn(move |shared| {
        relay(
            shared,
            &back,
            Direction::UpstreamToClient,
            upstream_in,
            client_out,
        );
    });
    relay(
        shared,
        &conn,
        Direction::ClientToUpstream,
        client_in,
        upstream_out,
    );
}

fn dial(shared: &Shared, addr: SocketAddr) -> Option<TcpStream> {
    let deadline = Instant::now() + DIAL_TIMEOUT;
    loop {
        match TcpStream::connect_timeout(&addr, TICK) {
            Ok(stream) => return Some(stream),
            Err(e) if transient(&e) && Instant::now() < deadline && !shared.stopped() => {}
            Err(_) => return None,
        }
    }
}

/// Copies `src` to `dst` for one direction of `conn`, obeying the knobs, until EOF, an error,
/// the connection leaving the relaying state, or the proxy stopping.
fn relay(
    shared: &Shared,
    conn: &Arc<Conn>,
    direction: Direction,
    mut src: TcpStream,
    mut dst: TcpStream,
) {
    let mut buf = [0u8; BUF];
    loop {
        if shared.stopped() || !conn.relaying() {
            break;
        }
        {
            let knobs = lock(&shared.knobs);
            if knobs.stall[direction.index()] == Stall::Holding {
                // Not reading: wait for a knob change (or the tick, for the stop flag).
                drop(shared.changed.wait_timeout(knobs, TICK));
                continue;
            }
        }
        match src.read(&mut buf) {
            Ok(0) => {
                // Pass the half-close on, unless the link is half-open or being torn down.
                if conn.relaying() && !shared.stopped() {
                    let _ = dst.shutdown(Shutdown::Write);
                }
                break;
            }
            Ok(n) => {
                let (stall, split, pause) = {
                    let k = lock(&shared.knobs);
                    (k.stall[direction.index()], k.split, k.pause)
                };
                if stall == Stall::Dropping {
                    continue;
                }
                if forward(shared, conn, &mut dst, &buf[..n], split, pause).is_err() {
                    shared.cut(conn);
                    break;
                }
            }
            Err(e) if transient(&e) => {}
            Err(_) => {
                shared.cut(conn);
                break;
            }
        }
    }
    shared.thread_done(conn);
}

/// Writes `data` to `dst` in segments of at most `split` bytes, pausing after each.
fn forward(
    shared: &Shared,
    conn: &Conn,
    dst: &mut TcpStream,
    data: &[u8],
    split: Option<usize>,
    pause: Duration,
) -> io::Result<()> {
    let max = split.unwrap_or(data.len()).max(1);
    for segment in data.chunks(max) {
        write_fully(shared, conn, dst, segment)?;
        dst.flush()?;
        if split.is_some() && !pause.is_zero() {
            thread::sleep(pause);
        }
    }
    Ok(())
}

/// `write_all` that gives up (with an error) once the connection is no longer relayed or the
/// proxy stops, rather than blocking on a peer that does not read.
fn write_fully(
    shared: &Shared,
    conn: &Conn,
    dst: &mut TcpStream,
    mut data: &[u8],
) -> io::Result<()> {
    while !data.is_empty() {
        if shared.stopped() || !conn.relaying() {
            return Err(io::Error::other("connection no longer relayed"));
        }
        match dst.write(data) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if transient(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

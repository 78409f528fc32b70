//! The two smol + async-tungstenite drivers the examples share. Each only moves bytes,
//! time and commands between a socket and a machine; every protocol decision is the
//! machine's.
#![allow(dead_code)]

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use async_tungstenite::tungstenite::http::StatusCode;
use async_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use async_tungstenite::tungstenite::{Message, Utf8Bytes, client::IntoClientRequest};
use relay_machine::Transmit;
use relay_machine::auth;
use relay_machine::connector::{self, ConnId, ConnectorCommand, ConnectorMachine, InstanceOutput};
use relay_machine::gateway::{ConnectionCommand, GatewayEvent, GatewayState, Output, RelayMachine};
use smol::Timer;
use smol::future::FutureExt as _;
use smol::net::TcpStream;
use smol::stream::StreamExt as _;

type ClientSocket = WebSocketStream<TcpStream>;
pub type ServerSocket = WebSocketStream<TcpStream>;

/// Sees every frame written, labelled by direction (the demo prints them).
pub static TAP: OnceLock<fn(&str, &[u8])> = OnceLock::new();

fn tap(direction: &str, bytes: &[u8]) {
    if let Some(tap) = TAP.get() {
        tap(direction, bytes);
    }
}

/// The largest WebSocket message accepted, as in the reference (1 MiB): what one message
/// can make a machine queue grows with its size (docs/limits.md).
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(relay_machine::codec::DEFAULT_MAX_FRAME_LEN + 1))
}

fn text(line: Transmit) -> Message {
    // A transmit is UTF-8 by construction: no check, no copy.
    Message::Text(Utf8Bytes::from(line.into_string()))
}

/// Unix time in seconds, for upgrade tokens (the only wall-clock read).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A seed for the machine's request ids and jitter from the operating system (through
/// the standard library's random hashing keys), so that no two processes share one.
pub fn os_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// Most messages queued for a socket's writer task. A burst beyond it is not an error: what
/// does not fit waits in the [`Writer`], in order, and goes in as the writer task catches
/// up, while the driver keeps reading and feeding the machine its time and commands.
/// Whether a peer that reads nothing is dead is the machine's decision (its liveness
/// timeout, then `Abort`), never the size of a burst.
const WRITE_QUEUE: usize = 1024;

/// A socket's writing half on a task of its own, fed through a bounded queue, so that a
/// peer that stops reading never blocks the loop that feeds the machine its time, and a
/// burst of output is held back (never dropped) until the writer catches up.
struct Writer {
    queue: smol::channel::Sender<Message>,
    /// The oldest message that found the queue full, on its way in: a future that owns it,
    /// kept across polls so that no race of the driver's loop can drop it.
    waiting: Option<std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send>>>,
    /// The messages written after it, in order.
    held: std::collections::VecDeque<Message>,
    task: smol::Task<()>,
}

impl Writer {
    fn new(mut sender: async_tungstenite::WebSocketSender<TcpStream>) -> Self {
        let (queue, messages) = smol::channel::bounded::<Message>(WRITE_QUEUE);
        let task = smol::spawn(async move {
            // One write in flight at a time, in order.
            while let Ok(message) = messages.recv().await {
                if sender.send(message).await.is_err() {
                    break;
                }
            }
        });
        Self {
            queue,
            waiting: None,
            held: std::collections::VecDeque::new(),
            task,
        }
    }

    /// Queues `message` after everything written before, holding it while the queue is
    /// full. `false` when the writer task has ended (the socket failed): it cannot go out.
    fn write(&mut self, message: Message) -> bool {
        if self.waiting.is_some() {
            self.held.push_back(message);
            return true;
        }
        self.queue_or_hold(message)
    }

    fn queue_or_hold(&mut self, message: Message) -> bool {
        match self.queue.try_send(message) {
            Ok(()) => true,
            Err(smol::channel::TrySendError::Full(message)) => {
                let queue = self.queue.clone();
                self.waiting = Some(Box::pin(async move { queue.send(message).await.is_ok() }));
                true
            }
            Err(smol::channel::TrySendError::Closed(_)) => false,
        }
    }

    /// Moves held messages into the queue as it frees up; resolves each time the oldest
    /// one went in (never when none is held), `false` when the writer task ended first.
    /// Safe to race: a message in flight stays in `waiting` when this is dropped.
    async fn room(&mut self) -> bool {
        let Some(waiting) = self.waiting.as_mut() else {
            return smol::future::pending().await;
        };
        let queued = waiting.await;
        self.waiting = None;
        if !queued {
            return false;
        }
        while self.waiting.is_none() {
            let Some(message) = self.held.pop_front() else {
                break;
            };
            if !self.queue_or_hold(message) {
                return false;
            }
        }
        true
    }

    /// Lets the writer finish what it has, the held messages included, then ends it.
    async fn finish(mut self) {
        while self.waiting.is_some() {
            if !self.room().await {
                break;
            }
        }
        let Writer { queue, task, .. } = self;
        drop(queue);
        task.await;
    }
}

/// One open socket: its reading half, and its [`Writer`].
struct Link {
    reader: async_tungstenite::WebSocketReceiver<TcpStream>,
    writer: Writer,
}

impl Link {
    fn new(ws: ClientSocket) -> Self {
        let (sender, reader) = ws.split();
        Self {
            reader,
            writer: Writer::new(sender),
        }
    }

    /// Lets the writer finish what it has (the close frame, the close reply) and reads
    /// until the peer's end, aside and bounded, so nothing waits on the peer.
    fn finish(self) -> smol::Task<()> {
        let Link { mut reader, writer } = self;
        smol::spawn(async move {
            let finish = async {
                writer.finish().await;
                while let Some(Ok(_)) = reader.next().await {}
            };
            let _ = finish
                .or(async {
                    Timer::after(std::time::Duration::from_secs(10)).await;
                })
                .await;
        })
    }
}

/// The gateway driver: dials when told, feeds messages and deadlines, writes frames.
pub struct Gateway {
    pub machine: RelayMachine,
    url: String,
    /// `(gateway id, secret)` for the upgrade bearer, minted fresh for every dial.
    credentials: Option<(String, String)>,
    link: Option<Link>,
    /// Sockets finishing their close aside; awaited before the driver reports the end.
    closing: Vec<smol::Task<()>>,
}

/// Resolves at `deadline`, or never.
pub async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => {
            Timer::at(at).await;
        }
        None => smol::future::pending().await,
    }
}

impl Gateway {
    pub fn new(machine: RelayMachine, url: String, credentials: Option<(String, String)>) -> Self {
        Self {
            machine,
            url,
            credentials,
            link: None,
            closing: Vec::new(),
        }
    }

    /// The next event, after carrying out every frame and command before it. `None` once
    /// the machine is terminal and has nothing left, or has nothing left to wait for.
    pub async fn next_event(&mut self) -> Option<GatewayEvent> {
        loop {
            // Every output is taken at once, even while a burst waits for the writer (held
            // in order by it): a command (an Abort on a dead link) is never stuck behind it.
            while let Some(output) = self.machine.poll_output() {
                match output {
                    Output::Transmit(line) => {
                        tap("gw→conn", line.as_bytes());
                        self.write(text(line));
                    }
                    Output::Command(command) => self.command(command).await,
                    Output::Event(event) => return Some(event),
                    _ => {}
                }
            }
            let terminal = matches!(
                self.machine.state(),
                GatewayState::Closed | GatewayState::Revoked
            );
            let deadline = self.machine.poll_timeout();
            if (terminal && deadline.is_none()) || (self.link.is_none() && deadline.is_none()) {
                // Nothing more will happen: let the last close reach the peer, then end.
                self.finish_closes().await;
                return None;
            }
            let Some(link) = self.link.as_mut() else {
                until(deadline).await;
                self.machine.handle_timeout(Instant::now());
                continue;
            };
            enum Step {
                Read(Option<Result<Message, async_tungstenite::tungstenite::Error>>),
                Timer,
                /// Held messages went into the writer's queue (`false`: the writer failed).
                Room(bool),
            }
            let Link { reader, writer } = link;
            let next = async { Step::Read(reader.next().await) }
                .or(async {
                    until(deadline).await;
                    Step::Timer
                })
                .or(async { Step::Room(writer.room().await) })
                .await;
            let now = Instant::now();
            match next {
                // The runtime timer may fire late or early; the machine compares times.
                Step::Timer => self.machine.handle_timeout(now),
                Step::Room(true) => {}
                Step::Room(false) => self.ended(None, "the socket failed to write"),
                // The payload itself, not a copy: the frames' strings share it.
                Step::Read(Some(Ok(Message::Text(t)))) => {
                    self.machine.handle_input(now, bytes::Bytes::from(t))
                }
                Step::Read(Some(Ok(Message::Binary(b)))) => self.machine.handle_input(now, b),
                Step::Read(Some(Ok(Message::Pong(_) | Message::Ping(_)))) => {
                    self.machine.on_pong(now)
                }
                Step::Read(Some(Ok(Message::Close(frame)))) => {
                    let (code, reason) = close_of(frame);
                    self.ended(code, &reason);
                }
                Step::Read(Some(Ok(_))) => {}
                Step::Read(Some(Err(e))) => {
                    let (code, reason) = error_close(&e);
                    self.ended(code, &reason);
                }
                Step::Read(None) => self.ended(None, "connection ended"),
            }
        }
    }

    /// Waits for the sockets finishing their close aside (each bounded), so that a process
    /// that exits next does not cut them off.
    pub async fn finish_closes(&mut self) {
        for close in self.closing.drain(..) {
            close.await;
        }
    }

    /// The socket ended: finish its close handshake aside (answering the peer's close, or
    /// sending 1009 after an oversized message) and tell the machine.
    fn ended(&mut self, code: Option<u16>, reason: &str) {
        if let Some(mut link) = self.link.take() {
            if code == Some(1009) {
                link.writer
                    .write(Message::Close(Some(close_frame(1009, "message too big"))));
            }
            self.closing.push(link.finish());
        }
        self.machine.on_closed(Instant::now(), code, reason);
    }

    fn write(&mut self, message: Message) {
        let Some(link) = self.link.as_mut() else {
            return;
        };
        if !link.writer.write(message) {
            // The writer task ended: the socket failed for writing.
            self.link = None;
            self.machine
                .on_closed(Instant::now(), None, "the socket failed to write");
        }
    }

    async fn command(&mut self, command: ConnectionCommand) {
        match command {
            ConnectionCommand::Dial { generation, .. } => {
                // Raced against the machine's deadline (its dial timeout): when that comes
                // first, the machine abandons the dial itself.
                let deadline = self.machine.poll_timeout();
                let dial = async { Some(self.dial().await) };
                let outcome = dial.or(async {
                    until(deadline).await;
                    None
                });
                match outcome.await {
                    Some(Ok(ws)) => {
                        self.link = Some(Link::new(ws));
                        self.machine.on_connected(Instant::now(), generation);
                    }
                    Some(Err(e)) => self.machine.on_dial_failed(Instant::now(), generation, &e),
                    None => self.machine.handle_timeout(Instant::now()),
                }
            }
            ConnectionCommand::Close { code, reason } => {
                // Keep reading: the machine waits for the peer's answer (on_closed).
                self.write(Message::Close(Some(close_frame(code, &reason))));
            }
            ConnectionCommand::Ping => self.write(Message::Ping(Default::default())),
            ConnectionCommand::Abort => {
                // A dead link: drop it, no close handshake.
                self.link = None;
            }
            _ => {}
        }
    }

    async fn dial(&self) -> Result<ClientSocket, String> {
        let mut request = self
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| e.to_string())?;
        if let Some((id, secret)) = &self.credentials {
            let token = auth::mint_token(id, secret, auth::DEFAULT_TTL_SECS, unix_now());
            let value = auth::authorization_header(&token)
                .parse()
                .map_err(|_| "bad token".to_owned())?;
            request.headers_mut().insert(auth::HEADER_NAME, value);
        }
        let uri = request.uri();
        if uri.scheme_str() != Some("ws") {
            return Err("this example speaks ws:// only (no TLS)".into());
        }
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_owned();
        let tcp = TcpStream::connect((host, uri.port_u16().unwrap_or(80)))
            .await
            .map_err(|e| e.to_string())?;
        // One small frame per message, latency-bound: do not let Nagle hold them back.
        let _ = tcp.set_nodelay(true);
        let (ws, _) = async_tungstenite::client_async_with_config(request, tcp, Some(ws_config()))
            .await
            .map_err(|e| e.to_string())?;
        Ok(ws)
    }
}

pub fn close_frame(code: u16, reason: &str) -> CloseFrame {
    CloseFrame {
        code: code.into(),
        reason: reason.into(),
    }
}

/// A received close frame as the machine's `(code, reason)`.
pub fn close_of(frame: Option<CloseFrame>) -> (Option<u16>, String) {
    frame.map_or((None, String::new()), |f| {
        (Some(u16::from(f.code)), f.reason.to_string())
    })
}

/// A read error as the machine's `(code, reason)`: an oversized message is 1009, as the
/// reference's WebSocket library reports it; anything else ended without a close frame.
pub fn error_close(e: &async_tungstenite::tungstenite::Error) -> (Option<u16>, String) {
    use async_tungstenite::tungstenite::Error;
    use async_tungstenite::tungstenite::error::CapacityError;
    match e {
        Error::Capacity(CapacityError::MessageTooLong { .. }) => {
            (Some(1009), "message too big".to_owned())
        }
        other => (None, other.to_string()),
    }
}

/// Completes a socket's close handshake in the background, so the loop that feeds the
/// machine never waits on a peer: sends `frame` (or answers the peer's close), then reads
/// until the peer's answer or the end, for at most 10 s.
pub fn finish_close(mut ws: ClientSocket, frame: Option<CloseFrame>) -> smol::Task<()> {
    smol::spawn(async move {
        let close = async {
            let _ = ws.close(frame).await;
            while let Some(Ok(_)) = ws.next().await {}
        };
        let _ = close
            .or(async {
                Timer::after(std::time::Duration::from_secs(10)).await;
            })
            .await;
    })
}

/// Accepts an upgrade on `/relay` only (HTTP 400 elsewhere) and checks the bearer token
/// against `secret` when one is required. A bad token still completes the upgrade; the
/// caller closes with 4401 and the returned reason.
pub async fn accept(
    tcp: TcpStream,
    secret: Option<&str>,
) -> Result<(ServerSocket, Result<String, &'static str>), String> {
    let mut auth: Result<String, &'static str> = Ok(String::new());
    // The callback's signature is tungstenite's; its error type is an HTTP response.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        if request.uri().path().trim_end_matches('/') != "/relay" {
            let mut refusal = ErrorResponse::new(Some("serve /relay only".into()));
            *refusal.status_mut() = StatusCode::BAD_REQUEST;
            return Err(refusal);
        }
        if let Some(secret) = secret {
            let token = request
                .headers()
                .get(auth::HEADER_NAME)
                .and_then(|v| v.to_str().ok())
                .and_then(auth::bearer_token)
                .unwrap_or("");
            auth = auth::verify_token(token, &[secret], unix_now())
                .map(|t| t.gateway_id)
                .map_err(|e| e.close_reason());
        }
        Ok(response)
    };
    let _ = tcp.set_nodelay(true);
    let ws = async_tungstenite::accept_hdr_async_with_config(tcp, callback, Some(ws_config()))
        .await
        .map_err(|e| e.to_string())?;
    Ok((ws, auth))
}

/// What an [`Instance`](relay_machine::connector::Instance)'s outputs ask of one socket.
pub enum ToSocket {
    /// Write this line.
    Text(Transmit),
    /// Close with this code and reason, after the lines before.
    Close(u16, String),
    /// Send a keepalive Ping.
    Ping,
    /// Drop the connection without a close frame (a dead link, or a simulated failure).
    Drop,
}

/// A socket's mailbox: the instance's outputs for it are routed here, from whichever
/// socket's task produced them (a new connection closes the one it supersedes).
pub type Mailbox = (
    smol::channel::Sender<ToSocket>,
    smol::channel::Receiver<ToSocket>,
);

/// A new mailbox.
pub fn mailbox() -> Mailbox {
    smol::channel::unbounded()
}

/// What a socket brings to its instance.
pub enum Incoming {
    /// A message's payload, as the socket gave it: the machine decodes it in place.
    Bytes(bytes::Bytes),
    /// A Pong (or Ping): the link is alive.
    Pong,
    /// The deadline asked for passed (or the socket just started).
    Timeout,
}

/// The connector driver for one socket of an instance: hands what arrives to `input`
/// (which gives it to the instance, routes the outputs, and returns the instance's next
/// deadline) and carries out what arrives in the mailbox. Writes go through a bounded
/// writer task, so a gateway that stops reading never blocks this loop; a burst larger
/// than its queue is held by the [`Writer`], in order, until the writer catches up (the
/// loop keeps reading, taking mail and keeping the instance's time meanwhile). Returns
/// when the socket has ended; the caller then reports `on_closed`.
pub async fn serve_socket(
    ws: ServerSocket,
    mailbox: smol::channel::Receiver<ToSocket>,
    mut input: impl FnMut(Incoming) -> Option<Instant>,
) {
    enum Next {
        Socket(Option<Result<Message, async_tungstenite::tungstenite::Error>>),
        Mail(Option<ToSocket>),
        Timer,
        /// Held messages went into the writer's queue (`false`: the writer failed).
        Room(bool),
    }
    let (sender, mut reader) = ws.split();
    let mut writer = Writer::new(sender);
    let mut deadline = input(Incoming::Timeout);
    loop {
        // Mail is taken even while a burst waits for the writer (held in order by it), so
        // that a Close or a Drop (the machine's call on a dead link) is never stuck behind it.
        let next = async { Next::Mail(mailbox.recv().await.ok()) }
            .or(async { Next::Socket(reader.next().await) })
            .or(async {
                until(deadline).await;
                Next::Timer
            })
            .or(async { Next::Room(writer.room().await) })
            .await;
        let message = match next {
            Next::Timer => {
                deadline = input(Incoming::Timeout);
                continue;
            }
            Next::Room(true) => continue,
            // The writer task ended: the socket failed for writing.
            Next::Room(false) => return,
            Next::Mail(Some(ToSocket::Text(line))) => {
                tap("conn→gw", line.as_bytes());
                text(line)
            }
            Next::Mail(Some(ToSocket::Ping)) => Message::Ping(Default::default()),
            Next::Mail(Some(ToSocket::Close(code, reason))) => {
                writer.write(Message::Close(Some(close_frame(code, &reason))));
                // Let the peer answer the close, so it sees a clean close handshake.
                let _ = async {
                    writer.finish().await;
                    while let Some(Ok(_)) = reader.next().await {}
                }
                .or(async {
                    Timer::after(std::time::Duration::from_secs(10)).await;
                })
                .await;
                return;
            }
            Next::Mail(Some(ToSocket::Drop) | None) => {
                // What was queued before goes out (bounded); then the socket is dropped
                // without a close frame.
                let _ = async {
                    writer.finish().await;
                }
                .or(async {
                    Timer::after(std::time::Duration::from_secs(1)).await;
                })
                .await;
                return;
            }
            Next::Socket(Some(Ok(Message::Text(t)))) => {
                deadline = input(Incoming::Bytes(bytes::Bytes::from(t)));
                continue;
            }
            Next::Socket(Some(Ok(Message::Binary(b)))) => {
                deadline = input(Incoming::Bytes(b));
                continue;
            }
            Next::Socket(Some(Ok(Message::Pong(_) | Message::Ping(_)))) => {
                deadline = input(Incoming::Pong);
                continue;
            }
            Next::Socket(Some(Ok(Message::Close(_)))) => {
                // Answer the peer's close (tungstenite queued the reply), so it sees its
                // own code echoed, not 1006.
                let _ = async {
                    writer.finish().await;
                    while let Some(Ok(_)) = reader.next().await {}
                }
                .or(async {
                    Timer::after(std::time::Duration::from_secs(10)).await;
                })
                .await;
                return;
            }
            Next::Socket(Some(Err(e))) => {
                if let (Some(1009), reason) = error_close(&e) {
                    writer.write(Message::Close(Some(close_frame(1009, &reason))));
                    let _ = async {
                        writer.finish().await;
                    }
                    .or(async {
                        Timer::after(std::time::Duration::from_secs(1)).await;
                    })
                    .await;
                }
                return;
            }
            Next::Socket(None) => return,
            Next::Socket(Some(Ok(_))) => continue,
        };
        if !writer.write(message) {
            // The writer task ended: the socket failed for writing.
            return;
        }
    }
}

/// Refuses a connection whose credential failed: the machine closes it with 4401 and
/// `reason`, and the driver completes the close handshake.
pub async fn refuse(ws: &mut ServerSocket, reason: &str) {
    let mut machine = ConnectorMachine::new(
        connector::ConnectorConfig::default(),
        std::time::Instant::now(),
    );
    machine.reject_auth(Instant::now(), reason);
    while let Some(output) = machine.poll_output() {
        if let connector::Output::Command(ConnectorCommand::Close { code, reason }) = output {
            // The close handshake as a whole is bounded: a peer that neither reads nor
            // answers the close must not hold the socket.
            async {
                let _ = ws.close(Some(close_frame(code, &reason))).await;
                while let Some(Ok(_)) = ws.next().await {}
            }
            .or(async {
                Timer::after(std::time::Duration::from_secs(10)).await;
            })
            .await;
        }
    }
}

/// Routes an instance output that belongs to a socket to that socket's mailbox; hands
/// back any other output (an event, a load, an ack, a wake-up) for the application.
pub fn route(
    output: InstanceOutput,
    mailboxes: &std::collections::HashMap<ConnId, smol::channel::Sender<ToSocket>>,
) -> Option<InstanceOutput> {
    let (conn, message) = match output {
        InstanceOutput::Transmit(conn, line) => (conn, ToSocket::Text(line)),
        InstanceOutput::Command(conn, ConnectorCommand::Close { code, reason }) => {
            (conn, ToSocket::Close(code, reason))
        }
        InstanceOutput::Command(conn, ConnectorCommand::Ping) => (conn, ToSocket::Ping),
        InstanceOutput::Command(conn, ConnectorCommand::Abort) => (conn, ToSocket::Drop),
        other => return Some(other),
    };
    // A socket that has ended has no mailbox: its outputs were discarded with it.
    if let Some(mailbox) = mailboxes.get(&conn) {
        let _ = mailbox.try_send(message);
    }
    None
}

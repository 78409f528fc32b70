//! A gateway client (tokio + async-tungstenite) for any connector that speaks the protocol:
//! `examples/gateway.rs` on a tokio current-thread runtime, self-contained.
//!
//! ```text
//! cargo run --example tokio_gateway -- --url URL [--identity PLATFORM:BOTID]...
//!     [--gateway-id ID --secret S] [--sends N] [--wait-inbound K] [--go-idle] [--timings]
//!     [--timeout SECS] [--ping-interval S] [--liveness-timeout S] [--dial-timeout S]
//!     [--close-timeout S] [--request-timeout S] [--backoff-base S] [--backoff-cap S]
//! ```
//!
//! The command line and the application are `gateway`'s (examples/common/stages.rs); only
//! the driver differs.
//!
//! Without flags it takes the reference gateway's environment: `GATEWAY_RELAY_URL`,
//! `GATEWAY_RELAY_PLATFORMS`, `GATEWAY_RELAY_BOT_IDS`, `GATEWAY_RELAY_ID`,
//! `GATEWAY_RELAY_SECRET`. Prints one JSON line per event. Exit codes: 0 ok, 2 connect or
//! handshake failed (4401 included), 3 a wait timed out, 4 going idle not acknowledged,
//! 64 usage error (`--help` lists every flag).

#[path = "common/cli.rs"]
mod cli;
#[path = "common/stages.rs"]
mod stages;

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::client::IntoClientRequest;
use async_tungstenite::tungstenite::error::CapacityError;
use async_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use async_tungstenite::tungstenite::{Error as WsError, Message};
use futures_util::{SinkExt as _, StreamExt as _};
use relay_machine::auth;
use relay_machine::gateway::{ConnectionCommand, GatewayEvent, GatewayState, Output, RelayMachine};
use stages::{Exit, Options, Stages, fail};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::sleep_until;

type Socket = WebSocketStream<TokioAdapter<TcpStream>>;

fn main() -> std::process::ExitCode {
    let help = stages::help("tokio_gateway");
    let options = match stages::parse_args(&help) {
        Ok(o) => o,
        Err(e) => return cli::usage_error("tokio_gateway", &help, &e),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(options)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(exit) => std::process::ExitCode::from(exit as u8),
    }
}

async fn run(o: Options) -> Result<(), Exit> {
    let machine =
        RelayMachine::new(o.config.clone(), os_seed()).map_err(|e| fail(&e.to_string()))?;
    let mut gw = Gateway {
        machine,
        url: o.url.clone(),
        credentials: o.credentials.clone(),
        ws: None,
        closing: Vec::new(),
    };
    let result = stages(&mut gw, &o).await;
    // Whatever the outcome, let every close handshake begun reach the peer (each is
    // bounded), so it sees the real close code, not 1006.
    for close in gw.closing.drain(..) {
        let _ = close.await;
    }
    result
}

/// The application (`stages`), fed by this driver until it is over.
async fn stages(gw: &mut Gateway, o: &Options) -> Result<(), Exit> {
    let _ = gw.machine.connect(Instant::now());
    let mut stages = Stages::new(o.plan.clone(), Instant::now());
    loop {
        let event = tokio::select! {
            biased;
            event = gw.next_event() => event,
            () = sleep_until(stages.deadline.into()) => return Err(stages.timed_out()),
        };
        let Some(event) = event else {
            return stages.ended();
        };
        if let Some(done) = stages.on_event(&mut gw.machine, Instant::now(), event) {
            return done;
        }
    }
}

/// The driver: dials when told, feeds messages and deadlines, writes frames. It only moves
/// bytes, time and commands between a socket and the machine; every protocol decision is
/// the machine's.
struct Gateway {
    machine: RelayMachine,
    url: String,
    /// `(gateway id, secret)` for the upgrade bearer, minted fresh for every dial.
    credentials: Option<(String, String)>,
    ws: Option<Socket>,
    /// Close handshakes finishing aside; awaited before the process exits.
    closing: Vec<JoinHandle<()>>,
}

impl Gateway {
    /// The next event, after carrying out every frame and command before it. `None` once
    /// the machine is terminal and has nothing left, or has nothing left to wait for.
    async fn next_event(&mut self) -> Option<GatewayEvent> {
        loop {
            while let Some(output) = self.machine.poll_output() {
                match output {
                    Output::Transmit(line) => {
                        // A transmit is one text message (UTF-8 by construction).
                        self.write(Message::Text(line.into_string().into())).await;
                    }
                    Output::Command(ConnectionCommand::Dial { generation, .. }) => {
                        // Raced against the machine's deadline: when its dial timeout comes
                        // first, the machine abandons the dial itself.
                        let deadline = self.machine.poll_timeout();
                        let timer = async move {
                            match deadline {
                                Some(at) => sleep_until(at.into()).await,
                                None => std::future::pending().await,
                            }
                        };
                        tokio::select! {
                            dialed = self.dial() => match dialed {
                                Ok(ws) => {
                                    self.ws = Some(ws);
                                    self.machine.on_connected(Instant::now(), generation);
                                }
                                Err(e) => {
                                    self.machine.on_dial_failed(Instant::now(), generation, &e)
                                }
                            },
                            () = timer => self.machine.handle_timeout(Instant::now()),
                        }
                    }
                    Output::Command(ConnectionCommand::Close { code, reason }) => {
                        // The close handshake finishes aside (bounded); the socket is gone
                        // for the machine from here.
                        self.close_aside(Some(close_frame(code, &reason)));
                        self.machine.on_closed(Instant::now(), Some(code), &reason);
                    }
                    Output::Command(ConnectionCommand::Ping) => {
                        self.write(Message::Ping(Default::default())).await;
                    }
                    Output::Command(ConnectionCommand::Abort) => self.ws = None,
                    Output::Event(event) => return Some(event),
                    _ => {}
                }
            }
            let terminal = matches!(
                self.machine.state(),
                GatewayState::Closed | GatewayState::Revoked
            );
            let deadline = self.machine.poll_timeout();
            if (terminal && deadline.is_none()) || (self.ws.is_none() && deadline.is_none()) {
                return None;
            }
            let timer = async move {
                match deadline {
                    Some(at) => sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let Some(ws) = self.ws.as_mut() else {
                timer.await;
                self.machine.handle_timeout(Instant::now());
                continue;
            };
            tokio::select! {
                message = ws.next() => match message {
                    // The payload itself, not a copy: the frames' strings share it.
                    Some(Ok(Message::Text(t))) => {
                        self.machine.handle_input(Instant::now(), bytes::Bytes::from(t))
                    }
                    Some(Ok(Message::Binary(b))) => self.machine.handle_input(Instant::now(), b),
                    Some(Ok(Message::Close(frame))) => {
                        // Answer the peer's close aside, echoing its code.
                        self.close_aside(None);
                        let (code, reason) = close_of(frame);
                        self.machine.on_closed(Instant::now(), code, &reason);
                    }
                    // Any sign of the peer counts; its pings are answered by tungstenite.
                    Some(Ok(Message::Pong(_) | Message::Ping(_))) => {
                        self.machine.on_pong(Instant::now())
                    }
                    Some(Ok(_)) => {}
                    // Oversized, as the reference's WebSocket library reports it.
                    Some(Err(WsError::Capacity(CapacityError::MessageTooLong { .. }))) => {
                        self.close_aside(Some(close_frame(1009, "message too big")));
                        self.machine.on_closed(Instant::now(), Some(1009), "message too big");
                    }
                    Some(Err(e)) => {
                        self.ws = None;
                        self.machine.on_closed(Instant::now(), None, &e.to_string());
                    }
                    None => {
                        self.ws = None;
                        self.machine.on_closed(Instant::now(), None, "connection ended");
                    }
                },
                // The timer may fire late or early; the machine compares times itself.
                () = timer => self.machine.handle_timeout(Instant::now()),
            }
        }
    }

    /// Writes one message without ever blocking the machine's timers: the message is
    /// buffered at once, and the flush, which waits on a peer that does not read, is raced
    /// against the machine's next deadline. When the deadline comes first the machine
    /// handles it (it may abort the link) and the buffered bytes go out with a later write.
    async fn write(&mut self, message: Message) {
        let deadline = self.machine.poll_timeout();
        let Some(ws) = self.ws.as_mut() else { return };
        if let Err(e) = ws.feed(message).await {
            self.ws = None;
            return self.machine.on_closed(Instant::now(), None, &e.to_string());
        }
        let timer = async move {
            match deadline {
                Some(at) => sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            flushed = ws.flush() => {
                if let Err(e) = flushed {
                    self.ws = None;
                    self.machine.on_closed(Instant::now(), None, &e.to_string());
                }
            }
            () = timer => self.machine.handle_timeout(Instant::now()),
        }
    }

    /// Completes the socket's close handshake in a spawned task, so the loop that feeds
    /// the machine never waits on a peer: sends `frame` (or, with `None`, answers the
    /// peer's close), then reads until the peer's answer or the end, for at most 10 s.
    fn close_aside(&mut self, frame: Option<CloseFrame>) {
        let Some(mut ws) = self.ws.take() else { return };
        self.closing.push(tokio::spawn(async move {
            let close = async {
                let _ = ws.close(frame).await;
                while let Some(Ok(_)) = ws.next().await {}
            };
            let _ = tokio::time::timeout(Duration::from_secs(10), close).await;
        }));
    }

    async fn dial(&self) -> Result<Socket, String> {
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
        let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
        let tcp = TcpStream::connect((host, uri.port_u16().unwrap_or(80)))
            .await
            .map_err(|e| e.to_string())?;
        // One small frame per message, latency-bound: do not let Nagle hold them back.
        let _ = tcp.set_nodelay(true);
        // The largest message accepted, as in the reference (1 MiB, +1 for the newline).
        let config = WebSocketConfig::default()
            .max_message_size(Some(relay_machine::codec::DEFAULT_MAX_FRAME_LEN + 1));
        let (ws, _) =
            async_tungstenite::tokio::client_async_with_config(request, tcp, Some(config))
                .await
                .map_err(|e| e.to_string())?;
        Ok(ws)
    }
}

fn close_frame(code: u16, reason: &str) -> CloseFrame {
    CloseFrame {
        code: code.into(),
        reason: reason.into(),
    }
}

/// A received close frame as the machine's `(code, reason)`.
fn close_of(frame: Option<CloseFrame>) -> (Option<u16>, String) {
    frame.map_or((None, String::new()), |f| {
        (Some(u16::from(f.code)), f.reason.to_string())
    })
}

/// Unix time in seconds, for upgrade tokens (the only wall-clock read).
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A seed for the machine's request ids and jitter from the operating system (through the
/// standard library's random hashing keys), so that no two processes share one.
fn os_seed() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

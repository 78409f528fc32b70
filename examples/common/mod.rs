//! The two smol + async-tungstenite drivers the examples share. Each only moves bytes,
//! time and commands between a socket and a machine; every protocol decision is the
//! machine's.
#![allow(dead_code)]

use std::ops::ControlFlow;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use async_tungstenite::tungstenite::http::StatusCode;
use async_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use async_tungstenite::tungstenite::{Message, Utf8Bytes, client::IntoClientRequest};
use bytes::Bytes;
use relay_machine::auth;
use relay_machine::connector::{ConnectorEvent, ConnectorMachine};
use relay_machine::gateway::{ConnectionCommand, GatewayEvent, RelayMachine};
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

fn text(bytes: Bytes) -> Message {
    // Every transmit is a JSON line, so this never falls back.
    Message::Text(Utf8Bytes::try_from(bytes).unwrap_or_default())
}

/// Unix time in seconds, for upgrade tokens (the only wall-clock read).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The gateway driver: dials when told, feeds messages and deadlines, writes frames.
pub struct Gateway {
    pub machine: RelayMachine,
    url: String,
    /// `(gateway id, secret)` for the upgrade bearer, minted fresh for every dial.
    credentials: Option<(String, String)>,
    ws: Option<ClientSocket>,
}

impl Gateway {
    pub fn new(machine: RelayMachine, url: String, credentials: Option<(String, String)>) -> Self {
        Self {
            machine,
            url,
            credentials,
            ws: None,
        }
    }

    /// The next event, carrying out every command and frame before it. `None` when the
    /// machine has nothing left to wait for.
    pub async fn next_event(&mut self) -> Option<GatewayEvent> {
        loop {
            self.flush().await;
            if let Some(event) = self.machine.poll_event() {
                return Some(event);
            }
            let deadline = self.machine.poll_timeout();
            let Some(ws) = self.ws.as_mut() else {
                Timer::at(deadline?).await;
                self.machine.handle_timeout(Instant::now());
                continue;
            };
            let timer = async {
                match deadline {
                    Some(at) => Timer::at(at).await,
                    None => smol::future::pending().await,
                };
                None
            };
            match async { Some(ws.next().await) }.or(timer).await {
                // The runtime timer may fire late or early; the machine compares times.
                None => self.machine.handle_timeout(Instant::now()),
                Some(Some(Ok(Message::Text(t)))) => {
                    self.machine.handle_input(Instant::now(), t.as_bytes())
                }
                Some(Some(Ok(Message::Binary(b)))) => self.machine.handle_input(Instant::now(), &b),
                Some(Some(Ok(Message::Close(frame)))) => {
                    self.ws = None;
                    let (code, reason) = frame.map_or((None, String::new()), |f| {
                        (Some(u16::from(f.code)), f.reason.to_string())
                    });
                    self.machine.on_closed(Instant::now(), code, &reason);
                }
                Some(Some(Ok(_))) => {}
                Some(Some(Err(e))) => {
                    self.ws = None;
                    self.machine.on_closed(Instant::now(), None, &e.to_string());
                }
                Some(None) => {
                    self.ws = None;
                    self.machine
                        .on_closed(Instant::now(), None, "connection ended");
                }
            }
        }
    }

    /// Carries out commands and writes frames until the machine has none left.
    async fn flush(&mut self) {
        loop {
            let mut moved = false;
            while let Some(command) = self.machine.poll_command() {
                moved = true;
                match command {
                    ConnectionCommand::Dial { .. } => match self.dial().await {
                        Ok(ws) => {
                            self.ws = Some(ws);
                            self.machine.on_connected(Instant::now());
                        }
                        Err(e) => self.machine.on_dial_failed(Instant::now(), &e),
                    },
                    ConnectionCommand::Close { code, reason } => {
                        if let Some(mut ws) = self.ws.take() {
                            let frame = CloseFrame {
                                code: code.into(),
                                reason: reason.into(),
                            };
                            let _ = ws.close(Some(frame)).await;
                        }
                    }
                    _ => {}
                }
            }
            while let Some(bytes) = self.machine.poll_transmit() {
                moved = true;
                let Some(ws) = self.ws.as_mut() else { break };
                tap("gw→conn", &bytes);
                if let Err(e) = ws.send(text(bytes)).await {
                    self.ws = None;
                    self.machine.on_closed(Instant::now(), None, &e.to_string());
                }
            }
            if !moved {
                return;
            }
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
                .and_then(|v| v.strip_prefix("Bearer "))
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

/// The connector driver for one connection: feeds messages, lets `app` answer each event,
/// writes frames, closes when the machine asks. Returns when the socket is gone, or, when
/// `app` breaks, right after writing the queued frames, dropping the socket unclosed.
pub async fn serve<S: relay_machine::connector::DeliveryStore>(
    ws: &mut ServerSocket,
    machine: &mut ConnectorMachine<S>,
    mut app: impl FnMut(&mut ConnectorMachine<S>, ConnectorEvent) -> ControlFlow<()>,
) {
    let mut dropping = false;
    loop {
        loop {
            let mut moved = false;
            while let Some(event) = machine.poll_event() {
                moved = true;
                dropping |= app(machine, event).is_break();
            }
            while let Some(bytes) = machine.poll_transmit() {
                moved = true;
                tap("conn→gw", &bytes);
                if ws.send(text(bytes)).await.is_err() {
                    return machine.on_closed(Instant::now());
                }
            }
            if dropping {
                return machine.on_closed(Instant::now());
            }
            if let Some(close) = machine.poll_close() {
                let frame = CloseFrame {
                    code: close.code.into(),
                    reason: close.reason.into(),
                };
                let _ = ws.close(Some(frame)).await;
                // Let the peer answer the close, so it sees a clean close handshake.
                while let Some(Ok(_)) = ws.next().await {}
                return;
            }
            if !moved {
                break;
            }
        }
        match ws.next().await {
            Some(Ok(Message::Text(t))) => machine.handle_input(Instant::now(), t.as_bytes()),
            Some(Ok(Message::Binary(b))) => machine.handle_input(Instant::now(), &b),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                return machine.on_closed(Instant::now());
            }
            Some(Ok(_)) => {}
        }
    }
}

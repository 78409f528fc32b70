//! A gateway driven from a plain synchronous loop: tungstenite over std::net, no async
//! runtime. Proof that `RelayMachine` needs nothing but bytes, a clock and commands.
//!
//! ```text
//! cargo run --example blocking_gateway -- --url ws://HOST:PORT/relay [--identity PLATFORM:BOTID]...
//!     [--gateway-id ID --secret S]
//! ```
//!
//! Connects, completes the handshake, sends one `send` action to chat `demo`, prints the
//! descriptors and the result as JSON lines, acks any buffered inbound that arrives
//! meanwhile, disconnects cleanly and exits 0; exits 2 if the connection or handshake
//! fails, 4401 included (and 64 on a usage error; `--help` lists every flag). With
//! `--gateway-id` and `--secret` every dial carries a freshly minted upgrade token, as the
//! smol gateway's.

#[path = "common/cli.rs"]
mod cli;

use std::io::ErrorKind;
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use relay_machine::gateway::{
    ConnectionCommand, GatewayConfig, GatewayEvent, GatewayState, Identity, Output, RelayMachine,
};
use relay_machine::wire::SendAction;
use serde_json::json;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

/// The flags.
struct Options {
    url: String,
    identities: Vec<Identity>,
    /// `(gateway id, secret)` for the upgrade bearer.
    credentials: Option<(String, String)>,
}

fn main() -> ExitCode {
    let Options {
        url,
        identities,
        credentials,
    } = match parse_args() {
        Ok(args) => args,
        Err(e) => return cli::usage_error("blocking_gateway", HELP, &e),
    };
    let config = GatewayConfig {
        identities,
        reconnect: false,
        retry_first_dial: false,
        ..GatewayConfig::default()
    };
    // From the operating system (the standard library's random hash keys): no two
    // processes share request ids or backoff jitter.
    let seed = {
        use std::hash::{BuildHasher, Hasher};
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    let mut gw = match RelayMachine::new(config, seed) {
        Ok(gw) => gw,
        // Only the flags vary the config (a platform twice): a usage error.
        Err(e) => return cli::usage_error("blocking_gateway", HELP, &e.to_string()),
    };
    let _ = gw.connect(Instant::now());
    let mut socket: Option<Socket> = None;
    let mut request = None;

    loop {
        // Carry out every output, in order. Handling an event may issue a command (the
        // send after the handshake), whose outputs simply follow in the same stream.
        while let Some(output) = gw.poll_output() {
            let now = Instant::now();
            match output {
                Output::Transmit(line) => {
                    let Some(ws) = socket.as_mut() else { continue };
                    // A peer that does not read must not stall the machine's timers: the
                    // write gives up at the machine's next deadline.
                    if let MaybeTlsStream::Plain(tcp) = ws.get_mut() {
                        let _ = tcp.set_write_timeout(Some(until(gw.poll_timeout())));
                    }
                    let text = tungstenite::Utf8Bytes::from(line.into_string());
                    if let Err(e) = ws.send(Message::Text(text)) {
                        socket = None;
                        gw.on_closed(now, None, &e.to_string());
                    }
                }
                Output::Command(ConnectionCommand::Dial { generation, .. }) => {
                    // The dial (connect and upgrade) is bounded by the machine's deadline,
                    // its dial timeout: past it the machine abandons the dial itself.
                    match dial(&url, credentials.as_ref(), until(gw.poll_timeout())) {
                        Ok(ws) => {
                            socket = Some(ws);
                            gw.on_connected(now, generation);
                        }
                        Err(e) => gw.on_dial_failed(now, generation, &e.to_string()),
                    }
                }
                Output::Command(ConnectionCommand::Close { code, reason }) => {
                    if let Some(ws) = socket.take() {
                        finish_close(ws, Some((code, reason.clone())));
                        gw.on_closed(Instant::now(), Some(code), &reason);
                    }
                }
                Output::Command(ConnectionCommand::Ping) => {
                    if let Some(ws) = socket.as_mut() {
                        let _ = ws.send(Message::Ping(Default::default()));
                    }
                }
                Output::Command(ConnectionCommand::Abort) => socket = None,
                Output::Event(event) => match event {
                    GatewayEvent::HandshakeComplete { .. } => {
                        let action = SendAction {
                            chat_id: "demo".into(),
                            content: "hello from a blocking gateway".into(),
                            ..SendAction::default()
                        };
                        request = gw.send(now, action, None).ok();
                    }
                    GatewayEvent::Descriptor(d) => println!("{}", json!({ "descriptor": d })),
                    GatewayEvent::Inbound {
                        buffer_id: Some(id),
                        ..
                    }
                    | GatewayEvent::Passthrough {
                        buffer_id: Some(id),
                        ..
                    }
                    | GatewayEvent::Undeliverable { buffer_id: id, .. } => {
                        let _ = gw.ack_inbound(now, &id);
                    }
                    GatewayEvent::Response { id, result } if Some(&id) == request.as_ref() => {
                        match result {
                            Ok(result) => {
                                println!("{}", json!({ "requestId": id, "result": result }))
                            }
                            Err(e) => println!(
                                "{}",
                                json!({ "requestId": id, "error": e.to_string(), "ambiguous": e.is_ambiguous() })
                            ),
                        }
                        gw.disconnect(now, None);
                    }
                    GatewayEvent::ConnectFailed(why) => {
                        eprintln!("blocking_gateway: connection failed: {why}");
                        return ExitCode::from(2);
                    }
                    GatewayEvent::Diagnostic(d) => eprintln!("blocking_gateway: {d}"),
                    _ => {}
                },
                _ => {}
            }
        }

        // Every output is carried out, the final close included.
        if gw.state() == GatewayState::Closed {
            return ExitCode::SUCCESS;
        }
        // Wait for the next socket message or deadline, whichever comes first.
        let Some(ws) = socket.as_mut() else {
            match gw.poll_timeout() {
                Some(at) => {
                    std::thread::sleep(at.saturating_duration_since(Instant::now()));
                    gw.handle_timeout(Instant::now());
                    continue;
                }
                None => {
                    eprintln!("blocking_gateway: no connection and nothing to wait for");
                    return ExitCode::from(2);
                }
            }
        };
        let wait = gw
            .poll_timeout()
            .map(|at| at.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_secs(60))
            .max(Duration::from_millis(1));
        if let MaybeTlsStream::Plain(tcp) = ws.get_mut() {
            let _ = tcp.set_read_timeout(Some(wait));
        }
        match ws.read() {
            // The payload itself, not a copy: the frames' strings share it.
            Ok(Message::Text(text)) => gw.handle_input(Instant::now(), bytes::Bytes::from(text)),
            Ok(Message::Binary(bytes)) => gw.handle_input(Instant::now(), bytes),
            Ok(Message::Close(frame)) => {
                let (code, reason) = frame.map_or((None, String::new()), |f| {
                    (Some(u16::from(f.code)), f.reason.to_string())
                });
                // Answer the peer's close so it sees its own code, not 1006.
                if let Some(ws) = socket.take() {
                    finish_close(ws, None);
                }
                gw.on_closed(Instant::now(), code, &reason);
            }
            Ok(Message::Pong(_) | Message::Ping(_)) => gw.on_pong(Instant::now()),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                gw.handle_timeout(Instant::now());
            }
            Err(tungstenite::Error::Capacity(_)) => {
                if let Some(ws) = socket.take() {
                    finish_close(ws, Some((1009, "message too big".into())));
                }
                gw.on_closed(Instant::now(), Some(1009), "message too big");
            }
            Err(e) => {
                socket = None;
                gw.on_closed(Instant::now(), None, &e.to_string());
            }
        }
    }
}

/// How long until `deadline` (at least a millisecond; a minute when there is none): the
/// bound of the next blocking call.
fn until(deadline: Option<Instant>) -> Duration {
    deadline
        .map(|at| at.saturating_duration_since(Instant::now()))
        .unwrap_or(Duration::from_secs(60))
        .max(Duration::from_millis(1))
}

/// Connects and upgrades within `limit`, with a freshly minted upgrade token when there
/// are credentials.
fn dial(
    url: &str,
    credentials: Option<&(String, String)>,
    limit: Duration,
) -> Result<Socket, String> {
    use tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    if let Some((id, secret)) = credentials {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let token =
            relay_machine::auth::mint_token(id, secret, relay_machine::auth::DEFAULT_TTL_SECS, now);
        let value = relay_machine::auth::authorization_header(&token)
            .parse()
            .map_err(|_| "bad token".to_owned())?;
        request
            .headers_mut()
            .insert(relay_machine::auth::HEADER_NAME, value);
    }
    let uri = request.uri().clone();
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    let port = uri.port_u16().unwrap_or(80);
    let address = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let tcp = TcpStream::connect_timeout(&address, limit).map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let _ = tcp.set_read_timeout(Some(limit));
    let _ = tcp.set_write_timeout(Some(limit));
    let (ws, _) = tungstenite::client::client_with_config(
        request,
        MaybeTlsStream::Plain(tcp),
        Some(ws_config()),
    )
    .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// Sends our close frame (or, with `None`, answers the peer's) and reads until the close
/// handshake completes, for at most a second, so the peer sees a clean close.
fn finish_close(mut ws: Socket, frame: Option<(u16, String)>) {
    if let MaybeTlsStream::Plain(tcp) = ws.get_mut() {
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(1)));
    }
    let frame = frame.map(|(code, reason)| tungstenite::protocol::CloseFrame {
        code: code.into(),
        reason: reason.into(),
    });
    let _ = ws.close(frame);
    while ws.read().is_ok() {}
}

/// Messages up to 1 MiB, as in the reference: one message's frames are queued at once.
fn ws_config() -> tungstenite::protocol::WebSocketConfig {
    let max = relay_machine::codec::DEFAULT_MAX_FRAME_LEN + 1;
    tungstenite::protocol::WebSocketConfig::default().max_message_size(Some(max))
}

const HELP: &str = "\
usage: blocking_gateway --url URL [--identity PLATFORM:BOTID]... [--gateway-id ID --secret S]

  --url URL               the connector (http(s) or ws)
  --identity P:BOT        a platform identity, repeatable; BOT may be empty (\"discord:\")
  --gateway-id ID         the upgrade token's gateway id
  --secret S              the upgrade token's secret (a token is minted for every dial);
                          needs --gateway-id
  -h, --help              this text

Handshake, one `send` to chat `demo`, then a clean disconnect; prints the descriptors and
the result as JSON lines.
Exit codes: 0 ok, 2 the connection or handshake failed (4401 included: the connector
refused the credential), 64 usage error.
";

fn parse_args() -> Result<Options, String> {
    let mut url = None;
    let mut identities = Vec::new();
    let (mut id, mut secret) = (None, None);
    let mut args = cli::args(HELP).into_iter();
    while let Some(arg) = args.next() {
        let mut value = || cli::value(&arg, &mut args);
        match arg.as_str() {
            "--url" => {
                url = Some(
                    relay_machine::url::dial_url(&value()?).map_err(|e| format!("--url: {e}"))?,
                )
            }
            "--identity" => identities.push(cli::identity(&value()?)?),
            "--gateway-id" => id = Some(value()?),
            "--secret" => secret = Some(value()?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Options {
        url: url.ok_or("--url is required")?,
        identities,
        // No environment here: the message names the flags only.
        credentials: cli::credentials(id, secret)
            .map_err(|_| "--secret needs --gateway-id".to_owned())?,
    })
}

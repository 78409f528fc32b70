//! The smol drivers (`examples/connector.rs`, `examples/gateway.rs`, `examples/demo.rs`)
//! as processes over loopback: flags, output shapes and exit codes are a contract.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod process;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::time::Duration;

use process::example;
use serde_json::Value;
use tungstenite::{Message, WebSocket};

/// A connector process, the URL from its first output line, and its output.
struct Connector {
    child: Child,
    url: String,
    output: BufReader<ChildStdout>,
}

impl Connector {
    fn start(args: &[&str]) -> Self {
        let mut child = Command::new(example("connector"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut output = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        output.read_line(&mut first).unwrap();
        let line: Value = serde_json::from_str(&first).unwrap();
        let url = line["listening"].as_str().unwrap().to_owned();
        assert!(
            url.starts_with("ws://127.0.0.1:") && url.ends_with("/relay"),
            "{url}"
        );
        Self { child, url, output }
    }

    /// Reads output lines up to and including the first that `until` accepts.
    fn read_until(&mut self, until: impl Fn(&Value) -> bool) -> Vec<Value> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(self.output.read_line(&mut line).unwrap() > 0, "{lines:#?}");
            let value: Value = serde_json::from_str(&line).unwrap();
            let done = until(&value);
            lines.push(value);
            if done {
                return lines;
            }
        }
    }

    /// Waits for a `--once` connector and returns its exit code and remaining lines.
    fn finish(mut self) -> (Option<i32>, Vec<Value>) {
        let lines = self.rest();
        (self.child.wait().unwrap().code(), lines)
    }

    /// Stops a connector that runs on, and returns its remaining lines.
    fn stop(mut self) -> Vec<Value> {
        let _ = self.child.kill();
        self.rest()
    }

    fn rest(&mut self) -> Vec<Value> {
        (&mut self.output)
            .lines()
            .map(|line| serde_json::from_str(&line.unwrap()).unwrap())
            .collect()
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn gateway(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, Vec<Value>) {
    run_gateway("gateway", args, env)
}

/// Runs a gateway example (`gateway` on smol, `tokio_gateway`: the same flags and output).
fn run_gateway(name: &str, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, Vec<Value>) {
    let mut command = process::command(name, args);
    command.envs(env.iter().copied());
    let Output { status, stdout, .. } = command.output().unwrap();
    let lines = String::from_utf8(stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (status.code(), lines)
}

fn events<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["event"] == kind).collect()
}

#[test]
fn gateway_and_connector_run_the_whole_protocol_with_auth() {
    let connector = Connector::start(&[
        "--once",
        "--secret",
        "s3cr3t",
        "--push-inbound",
        "6",
        "--buffered-every",
        "3",
        "--passthrough",
        "2",
    ]);
    let http_url = connector
        .url
        .replace("ws://", "http://")
        .replace("/relay", "/");
    let (code, lines) = gateway(
        &[
            "--url",
            &http_url,
            "--identity",
            "discord:111",
            "--identity",
            "telegram:222",
            "--gateway-id",
            "gw-7",
            "--secret",
            "s3cr3t",
            "--sends",
            "5",
            "--wait-inbound",
            "6",
            "--go-idle",
            "--timeout",
            "10",
        ],
        &[],
    );
    assert_eq!(code, Some(0), "{lines:#?}");
    let descriptors = events(&lines, "descriptor");
    assert_eq!(descriptors.len(), 2);
    assert_eq!(descriptors[0]["descriptor"]["platform"], "discord");
    let results = events(&lines, "result");
    assert_eq!(results.len(), 5);
    assert!(results.iter().all(|r| r["result"]["success"] == true));
    let inbound = events(&lines, "inbound");
    assert_eq!(inbound.len(), 6);
    let buffered: Vec<_> = inbound
        .iter()
        .filter(|i| !i["bufferId"].is_null())
        .collect();
    assert_eq!(buffered.len(), 2, "every 3rd of 6");
    let passthrough = events(&lines, "passthrough");
    assert_eq!(passthrough.len(), 2);
    assert!(
        passthrough[0]["body"]
            .as_str()
            .unwrap()
            .contains("\"type\":2")
    );
    assert_eq!(events(&lines, "going_idle")[0]["acked"], true);

    let (code, lines) = connector.finish();
    assert_eq!(
        code,
        Some(0),
        "every buffered delivery was acked: {lines:#?}"
    );
    assert_eq!(events(&lines, "connected")[0]["gateway"], "gw-7");
    let hellos = events(&lines, "hello");
    assert_eq!(hellos.len(), 2);
    assert_eq!(hellos[1]["botId"], "222");
    assert_eq!(events(&lines, "outbound").len(), 5);
    assert_eq!(events(&lines, "acked").len(), 2);
    assert_eq!(events(&lines, "going_idle").len(), 1);
}

#[test]
fn a_wrong_secret_is_refused_with_4401_and_exit_2() {
    let connector = Connector::start(&["--once", "--secret", "right"]);
    let (code, lines) = gateway(
        &[
            "--url",
            &connector.url,
            "--gateway-id",
            "gw-1",
            "--secret",
            "wrong",
            "--timeout",
            "10",
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{lines:#?}");
    let (_, lines) = connector.finish();
    assert_eq!(events(&lines, "auth_failed")[0]["reason"], "unauthorized");
}

#[test]
fn the_reference_environment_supplies_the_defaults() {
    let connector = Connector::start(&["--once", "--push-inbound", "1"]);
    let (code, lines) = gateway(
        &["--wait-inbound", "1", "--timeout", "10"],
        &[
            ("GATEWAY_RELAY_URL", &connector.url.replace("/relay", "")),
            ("GATEWAY_RELAY_PLATFORMS", "telegram, discord"),
            ("GATEWAY_RELAY_BOT_IDS", r#"{"discord": {"botId": "55"}}"#),
        ],
    );
    assert_eq!(code, Some(0), "{lines:#?}");
    let (_, lines) = connector.finish();
    let hellos = events(&lines, "hello");
    assert_eq!(hellos.len(), 2);
    assert_eq!(hellos[0]["platform"], "telegram");
    assert_eq!(hellos[0]["botId"], "");
    assert_eq!(hellos[1]["platform"], "discord");
    assert_eq!(hellos[1]["botId"], "55");
}

#[test]
fn waiting_for_inbound_that_never_comes_exits_3() {
    let connector = Connector::start(&["--push-inbound", "1"]);
    let (code, lines) = gateway(
        &[
            "--url",
            &connector.url,
            "--wait-inbound",
            "2",
            "--timeout",
            "0.5",
        ],
        &[],
    );
    assert_eq!(code, Some(3), "{lines:#?}");
    assert_eq!(events(&lines, "inbound").len(), 1);
}

#[test]
fn nothing_listening_exits_2() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, _) = gateway(&["--url", &format!("ws://127.0.0.1:{port}")], &[]);
    assert_eq!(code, Some(2));
}

/// A peer that writes like the Python reference: `json.dumps` spacing and `\uXXXX`
/// escapes, one frame per message and frames split across messages; and it never acks,
/// so a `--once` connector exits 1.
#[test]
fn connector_interoperates_with_reference_formatting_and_exits_1_when_unacked() {
    let connector = Connector::start(&["--once", "--push-inbound", "2", "--buffered-every", "1"]);
    let address = connector
        .url
        .trim_start_matches("ws://")
        .trim_end_matches("/relay");
    let tcp = TcpStream::connect(address).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (mut ws, _) = tungstenite::client(connector.url.as_str(), tcp).unwrap();
    let hello = "{\"type\": \"hello\", \"platform\": \"discord\", \"botId\": \"caf\\u00e9\"}\n";
    ws.send(Message::text(&hello[..20])).unwrap();
    ws.send(Message::text(&hello[20..])).unwrap();
    let frames = read_frames(&mut ws, 3);
    assert_eq!(frames[0]["type"], "descriptor");
    assert_eq!(frames[1]["type"], "inbound");
    // `b-<the store's random epoch>-<n>`: ids never repeat across connector restarts.
    let ids: Vec<&str> = frames[1..]
        .iter()
        .map(|f| f["bufferId"].as_str().unwrap())
        .collect();
    assert!(
        ids[0].starts_with("b-") && ids[0].ends_with("-1"),
        "{ids:?}"
    );
    assert_eq!(ids[1], format!("{}2", ids[0].trim_end_matches('1')));
    let outbound = "{\"type\": \"outbound\", \"requestId\": \"0a9b8c7d6e5f40312233445566778899\", \"action\": {\"op\": \"send\", \"chat_id\": \"4455\", \"content\": \"\\ud83d\\ude80\", \"reply_to\": null, \"metadata\": {}}, \"platform\": \"discord\", \"botId\": \"caf\\u00e9\"}\n";
    ws.send(Message::text(outbound)).unwrap();
    let result = &read_frames(&mut ws, 1)[0];
    assert_eq!(result["type"], "outbound_result");
    assert_eq!(result["requestId"], "0a9b8c7d6e5f40312233445566778899");
    assert_eq!(result["result"]["success"], true);
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
    let (code, lines) = connector.finish();
    assert_eq!(code, Some(1), "two buffered deliveries were never acked");
    let outbound = events(&lines, "outbound");
    assert_eq!(outbound[0]["action"]["content"], "🚀");
    assert_eq!(events(&lines, "hello")[0]["botId"], "café");
}

fn read_frames(ws: &mut WebSocket<TcpStream>, count: usize) -> Vec<Value> {
    let mut frames = Vec::new();
    let mut buffer = String::new();
    while frames.len() < count {
        if let Message::Text(text) = ws.read().unwrap() {
            buffer.push_str(text.as_str());
        }
        while let Some(i) = buffer.find('\n') {
            let line: String = buffer.drain(..=i).collect();
            frames.push(serde_json::from_str(&line).unwrap());
        }
    }
    frames
}

#[test]
fn the_demo_shows_every_scenario_and_exits_0() {
    let out = Command::new(example("demo")).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let transcript = String::from_utf8(out.stdout).unwrap();
    let position = |needle: &str| {
        transcript
            .find(needle)
            .unwrap_or_else(|| panic!("{needle:?} missing from\n{transcript}"))
    };
    let order = [
        "gw→conn  hello {\"botId\":\"1122334455\",\"platform\":\"discord\"}",
        "gw       event HandshakeComplete default=discord",
        "gw→conn  inbound_ack {\"bufferId\":\"b-d3-1\"}",
        "decoded interaction: \"/skill run deploy\" by Al in session agent:main:discord:group:4455:77",
        "gw       event Response",
        "gw→conn  interrupt",
        "gw       event Interrupt",
        "gw       event Disconnected",
        "gw       event Reconnecting",
        "gw→conn  inbound_ack {\"bufferId\":\"b-d3-2\"}",
        "gw       event GoingIdle acked=true",
        "gw       event Closed",
    ];
    let positions: Vec<usize> = order.iter().map(|n| position(n)).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{transcript}");
    // The replay after the reconnect is exactly the unacked tail: b-2, never b-1 again.
    assert_eq!(
        transcript
            .matches("\"bufferId\":\"b-d3-1\",\"event\"")
            .count(),
        1
    );
    assert_eq!(
        transcript
            .matches("conn→gw  inbound {\"bufferId\":\"b-d3-2\"")
            .count(),
        2
    );
}

/// The smol gateway against an independent connector written like the reference's peers:
/// several frames in one message, a frame split across messages (mid-character, in binary
/// messages), `json.dumps` spacing and `\uXXXX` escapes.
#[test]
fn gateway_interoperates_with_a_reference_style_connector() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/relay", listener.local_addr().unwrap());
    let connector = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut ws = tungstenite::accept(tcp).unwrap();
        let hellos = read_frames(&mut ws, 1);
        assert_eq!(hellos[0]["platform"], "telegram");
        let descriptor = "{\"type\": \"descriptor\", \"descriptor\": {\"contract_version\": 1, \"platform\": \"telegram\", \"label\": \"Telegram\", \"max_message_length\": 4096, \"supports_draft_streaming\": true, \"supports_edit\": true, \"supports_threads\": true, \"markdown_dialect\": \"markdown_v2\", \"len_unit\": \"utf16\", \"supported_ops\": [\"send\", \"edit\", \"typing\", \"draft\", \"react\"]}}\n";
        let live = "{\"type\": \"inbound\", \"event\": {\"text\": \"caf\\u00e9 \\ud83d\\ude80\", \"source\": {\"platform\": \"telegram\", \"chat_id\": \"-100\", \"chat_type\": \"group\", \"user_id\": \"5\"}}}\n";
        ws.send(Message::text(format!("{descriptor}{live}")))
            .unwrap();
        let buffered = "{\"type\":\"inbound\",\"event\":{\"text\":\"日本語\",\"source\":{\"platform\":\"telegram\",\"chat_id\":\"-100\"}},\"bufferId\":\"b-9\"}\n";
        let cut = buffered.find('本').unwrap() + 1;
        ws.send(Message::binary(buffered.as_bytes()[..cut].to_vec()))
            .unwrap();
        ws.send(Message::binary(buffered.as_bytes()[cut..].to_vec()))
            .unwrap();
        let mut seen = Vec::new();
        while !seen.iter().any(|f: &Value| f["type"] == "outbound")
            || !seen.iter().any(|f| f["type"] == "inbound_ack")
        {
            seen.extend(read_frames(&mut ws, 1));
        }
        let outbound = seen.iter().find(|f| f["type"] == "outbound").unwrap();
        let result = format!(
            "{{\"type\": \"outbound_result\", \"requestId\": \"{}\", \"result\": {{\"success\": true, \"message_id\": \"m\\u00e9\"}}}}\n",
            outbound["requestId"].as_str().unwrap()
        );
        ws.send(Message::text(result)).unwrap();
        while ws.read().is_ok() {}
        seen
    });
    let (code, lines) = gateway(
        &[
            "--url",
            &url,
            "--identity",
            "telegram:701",
            "--sends",
            "1",
            "--wait-inbound",
            "2",
            "--timeout",
            "10",
        ],
        &[],
    );
    let seen = connector.join().unwrap();
    assert_eq!(code, Some(0), "{lines:#?}");
    let inbound = events(&lines, "inbound");
    assert_eq!(inbound[0]["inbound"]["text"], "café 🚀");
    assert_eq!(inbound[1]["inbound"]["text"], "日本語");
    assert_eq!(inbound[1]["bufferId"], "b-9");
    assert_eq!(events(&lines, "result")[0]["result"]["message_id"], "mé");
    let acks: Vec<_> = seen.iter().filter(|f| f["type"] == "inbound_ack").collect();
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0]["bufferId"], "b-9");
}

/// The last ack before a disconnect reaches the connector: the application acks a buffered
/// delivery and disconnects in the same pass (round 1 lost that ack in every driver). The
/// connector exits 0 only if nothing it buffered is left unacked; 20 runs in a row.
fn the_last_ack_is_written_before_the_close(name: &str) {
    for run in 0..20 {
        let connector =
            Connector::start(&["--once", "--push-inbound", "3", "--buffered-every", "1"]);
        let (code, lines) = run_gateway(
            name,
            &[
                "--url",
                &connector.url,
                "--identity",
                "discord:111",
                "--wait-inbound",
                "3",
                "--timeout",
                "10",
            ],
            &[],
        );
        assert_eq!(code, Some(0), "{name} run {run}: {lines:#?}");
        assert_eq!(events(&lines, "inbound").len(), 3);
        let (code, lines) = connector.finish();
        assert_eq!(code, Some(0), "{name} run {run}: unacked left: {lines:#?}");
        assert_eq!(events(&lines, "acked").len(), 3, "{name} run {run}");
        assert_eq!(events(&lines, "closed")[0]["unacked"], 0);
    }
}

#[test]
fn the_last_ack_is_written_before_the_close_smol() {
    the_last_ack_is_written_before_the_close("gateway");
}

#[test]
fn the_last_ack_is_written_before_the_close_tokio() {
    the_last_ack_is_written_before_the_close("tokio_gateway");
}

/// The tokio example takes the gateway example's flags and keeps its contract.
#[test]
fn the_tokio_gateway_runs_the_whole_protocol_with_auth() {
    let connector = Connector::start(&[
        "--once",
        "--secret",
        "s3cr3t",
        "--push-inbound",
        "4",
        "--buffered-every",
        "2",
    ]);
    let (code, lines) = run_gateway(
        "tokio_gateway",
        &[
            "--url",
            &connector.url,
            "--identity",
            "discord:111",
            "--gateway-id",
            "gw-7",
            "--secret",
            "s3cr3t",
            "--sends",
            "3",
            "--wait-inbound",
            "4",
            "--go-idle",
            "--timeout",
            "10",
        ],
        &[],
    );
    assert_eq!(code, Some(0), "{lines:#?}");
    assert_eq!(events(&lines, "result").len(), 3);
    assert_eq!(events(&lines, "inbound").len(), 4);
    assert_eq!(events(&lines, "going_idle")[0]["acked"], true);
    let (code, lines) = connector.finish();
    assert_eq!(code, Some(0), "{lines:#?}");
    assert_eq!(events(&lines, "connected")[0]["gateway"], "gw-7");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}/relay");
    assert_eq!(
        run_gateway("tokio_gateway", &["--url", &url], &[]).0,
        Some(2)
    );
}

/// Python's json writes lone surrogates (`"\ud800"`) and chat text carries them: an
/// `outbound` with one is answered, over a real WebSocket.
#[test]
fn the_connector_answers_an_outbound_with_a_lone_surrogate() {
    let connector = Connector::start(&["--once"]);
    let address = connector
        .url
        .trim_start_matches("ws://")
        .trim_end_matches("/relay");
    let tcp = TcpStream::connect(address).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (mut ws, _) = tungstenite::client(connector.url.as_str(), tcp).unwrap();
    ws.send(Message::text(
        "{\"type\": \"hello\", \"platform\": \"discord\", \"botId\": \"1\"}\n",
    ))
    .unwrap();
    assert_eq!(read_frames(&mut ws, 1)[0]["type"], "descriptor");
    let outbound = "{\"type\": \"outbound\", \"requestId\": \"r-1\", \"action\": {\"op\": \"send\", \"chat_id\": \"4455\", \"content\": \"half \\ud83d of a rocket\"}}\n";
    ws.send(Message::text(outbound)).unwrap();
    let result = &read_frames(&mut ws, 1)[0];
    assert_eq!(result["type"], "outbound_result");
    assert_eq!(result["requestId"], "r-1");
    assert_eq!(result["result"]["success"], true);
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
    let (code, lines) = connector.finish();
    assert_eq!(code, Some(0));
    assert_eq!(
        events(&lines, "outbound")[0]["action"]["content"],
        "half \u{fffd} of a rocket"
    );
}

/// A buffered `inbound` with a lone surrogate is delivered (U+FFFD in its place) and acked,
/// so it is not redelivered forever.
#[test]
fn the_gateway_delivers_and_acks_a_buffered_inbound_with_a_lone_surrogate() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/relay", listener.local_addr().unwrap());
    let connector = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut ws = tungstenite::accept(tcp).unwrap();
        read_frames(&mut ws, 1);
        let descriptor = "{\"type\": \"descriptor\", \"descriptor\": {\"contract_version\": 1, \"platform\": \"telegram\", \"label\": \"Telegram\", \"max_message_length\": 4096, \"supports_draft_streaming\": false, \"supports_edit\": true, \"supports_threads\": false, \"markdown_dialect\": \"plain\", \"len_unit\": \"utf16\"}}\n";
        let inbound = "{\"type\": \"inbound\", \"event\": {\"text\": \"\\udc00 tail\", \"source\": {\"platform\": \"telegram\", \"chat_id\": \"-100\"}}, \"bufferId\": \"b-7\"}\n";
        ws.send(Message::text(format!("{descriptor}{inbound}")))
            .unwrap();
        let ack = read_frames(&mut ws, 1);
        // The gateway closes after the ack: answer it, then see the end.
        while ws.read().is_ok() {}
        ack
    });
    let (code, lines) = gateway(
        &[
            "--url",
            &url,
            "--identity",
            "telegram:701",
            "--wait-inbound",
            "1",
            "--timeout",
            "10",
        ],
        &[],
    );
    let ack = connector.join().unwrap();
    assert_eq!(code, Some(0), "{lines:#?}");
    assert_eq!(
        events(&lines, "inbound")[0]["inbound"]["text"],
        "\u{fffd} tail"
    );
    assert_eq!(ack[0]["type"], "inbound_ack");
    assert_eq!(ack[0]["bufferId"], "b-7");
}

/// A raw gateway: a WebSocket with an optional upgrade token, that says hello.
fn raw_gateway(url: &str, credentials: Option<(&str, &str)>) -> WebSocket<TcpStream> {
    use tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().unwrap();
    if let Some((id, secret)) = credentials {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let token = relay_machine::auth::mint_token(id, secret, 300, now);
        let header = relay_machine::auth::authorization_header(&token);
        request
            .headers_mut()
            .insert(relay_machine::auth::HEADER_NAME, header.parse().unwrap());
    }
    let address = url.trim_start_matches("ws://").trim_end_matches("/relay");
    let tcp = TcpStream::connect(address).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (ws, _) = tungstenite::client(request, tcp).unwrap();
    ws
}

fn say_hello(ws: &mut WebSocket<TcpStream>) {
    ws.send(Message::text(
        "{\"type\":\"hello\",\"platform\":\"discord\",\"botId\":\"111\"}\n",
    ))
    .unwrap();
}

fn ack(ws: &mut WebSocket<TcpStream>, id: &str) {
    ws.send(Message::text(format!(
        "{{\"type\":\"inbound_ack\",\"bufferId\":\"{id}\"}}\n"
    )))
    .unwrap();
}

/// A gateway whose socket goes half-open (silent, never closed) while it reconnects:
/// the new connection supersedes it (4409, never 4401), gets exactly the unacked tail,
/// and nothing is lost or acked twice.
#[test]
fn a_half_open_connection_is_superseded_and_nothing_is_lost() {
    let mut connector = Connector::start(&["--push-inbound", "10", "--buffered-every", "1"]);
    let mut first = raw_gateway(&connector.url, None);
    say_hello(&mut first);
    let frames = read_frames(&mut first, 11);
    let ids: Vec<String> = frames[1..]
        .iter()
        .map(|f| f["bufferId"].as_str().unwrap().to_owned())
        .collect();
    for id in &ids[..3] {
        ack(&mut first, id);
    }
    connector.read_until(|l| l["event"] == "acked" && l["bufferId"] == ids[2].as_str());
    // The first socket stays open and silent; the gateway comes back on a new one.
    let (code, lines) = gateway(
        &[
            "--url",
            &connector.url,
            "--identity",
            "discord:111",
            "--wait-inbound",
            "7",
            "--timeout",
            "10",
        ],
        &[],
    );
    assert_eq!(code, Some(0), "{lines:#?}");
    let replayed: Vec<&str> = events(&lines, "inbound")
        .iter()
        .map(|l| l["bufferId"].as_str().unwrap())
        .collect();
    assert_eq!(replayed, ids[3..], "exactly the unacked tail, in order");
    let close = loop {
        match first.read() {
            Ok(Message::Close(frame)) => {
                break frame.map(|f| (u16::from(f.code), f.reason.to_string()));
            }
            Ok(_) => continue,
            Err(e) => panic!("the superseded socket was not closed: {e}"),
        }
    };
    assert_eq!(close, Some((4409, "superseded".to_owned())));
    // The store thread reports each ack once committed, after the gateway has gone: wait
    // for the `closed` line that counts none unacked (queued after every ack) before the
    // kill, or a loaded machine kills the connector before its last `acked` lines.
    let mut lines = connector.read_until(|l| l["event"] == "closed" && l["unacked"] == 0);
    lines.extend(connector.stop());
    let acked: Vec<&str> = events(&lines, "acked")
        .iter()
        .map(|l| l["bufferId"].as_str().unwrap())
        .collect();
    assert_eq!(acked, ids[3..], "each acked once, none lost");
}

/// An intruder with a bad token holds a socket open across the honest gateway's
/// reconnect: it never touches the instance's buffer, and the next honest connection gets
/// every unacked delivery.
#[test]
fn an_intruder_alongside_an_honest_connection_changes_nothing() {
    let mut connector = Connector::start(&[
        "--secret",
        "s3",
        "--push-inbound",
        "10",
        "--buffered-every",
        "1",
    ]);
    let mut honest = raw_gateway(&connector.url, Some(("gw-1", "s3")));
    say_hello(&mut honest);
    let frames = read_frames(&mut honest, 11);
    assert!(frames[1..].iter().all(|f| f["type"] == "inbound"));
    // An intruder connects meanwhile and is refused, but keeps its socket open.
    let mut intruder = raw_gateway(&connector.url, Some(("gw-1", "wrong")));
    match intruder.read() {
        Ok(Message::Close(frame)) => assert_eq!(frame.map(|f| u16::from(f.code)), Some(4401)),
        other => panic!("the intruder was not refused: {other:?}"),
    }
    connector.read_until(|l| l["event"] == "auth_failed");
    // The honest gateway leaves without acking anything, and comes back.
    honest.close(None).unwrap();
    while honest.read().is_ok() {}
    let (code, lines) = gateway(
        &[
            "--url",
            &connector.url,
            "--identity",
            "discord:111",
            "--gateway-id",
            "gw-1",
            "--secret",
            "s3",
            "--wait-inbound",
            "10",
            "--timeout",
            "10",
        ],
        &[],
    );
    assert_eq!(code, Some(0), "{lines:#?}");
    assert_eq!(events(&lines, "inbound").len(), 10, "{lines:#?}");
    drop(intruder);
    let lines = connector.stop();
    assert_eq!(events(&lines, "acked").len(), 10, "{lines:#?}");
}

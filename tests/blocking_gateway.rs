//! End-to-end: `examples/blocking_gateway` against a scripted connector on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod process;

use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};
use std::thread;
use std::time::Duration;

use process::example;
use serde_json::Value;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

fn run_gateway(args: &[&str]) -> Output {
    Command::new(example("blocking_gateway"))
        .args(args)
        .output()
        .expect("the blocking_gateway example is built by cargo test")
}

/// Reads frames until `pred` matches one; returns every frame read.
fn read_until(ws: &mut WebSocket<TcpStream>, pred: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut buffer = String::new();
    loop {
        match ws.read().unwrap() {
            Message::Text(t) => buffer.push_str(t.as_str()),
            Message::Close(_) => panic!("closed early; saw {seen:?}"),
            _ => continue,
        }
        while let Some(i) = buffer.find('\n') {
            let line: String = buffer.drain(..=i).collect();
            let frame: Value = serde_json::from_str(&line).unwrap();
            let done = pred(&frame);
            seen.push(frame);
            if done {
                return seen;
            }
        }
    }
}

fn descriptor(platform: &str) -> String {
    format!(
        r#"{{"type": "descriptor", "descriptor": {{"contract_version": 1, "platform": "{platform}", "label": "{platform}", "max_message_length": 2000, "supports_draft_streaming": false, "supports_edit": true, "supports_threads": true, "markdown_dialect": "discord", "len_unit": "utf16"}}}}"#
    )
}

#[test]
fn handshake_send_ack_and_clean_disconnect() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connector = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut ws = tungstenite::accept(tcp).unwrap();
        let hellos = read_until(&mut ws, |f| f["platform"] == "telegram");
        assert_eq!(hellos.len(), 2, "{hellos:?}");
        assert_eq!(hellos[0]["type"], "hello");
        assert_eq!(hellos[0]["platform"], "discord");
        assert_eq!(hellos[0]["botId"], "111");
        assert_eq!(hellos[1]["botId"], "222");
        // During the handshake, a buffered inbound split across two messages mid-character
        // (é is 2 bytes): it teaches the gateway the chat's platform.
        let inbound = "{\"type\":\"inbound\",\"event\":{\"text\":\"caf\u{e9}\",\"source\":{\"platform\":\"discord\",\"chat_id\":\"demo\"}},\"bufferId\":\"b-1\"}\n";
        let cut = inbound.find('\u{e9}').unwrap() + 1;
        ws.send(Message::binary(inbound.as_bytes()[..cut].to_vec()))
            .unwrap();
        ws.send(Message::binary(inbound.as_bytes()[cut..].to_vec()))
            .unwrap();
        // Two descriptors coalesced into one message, in the reference's formatting.
        let both = format!("{}\n{}\n", descriptor("discord"), descriptor("telegram"));
        ws.send(Message::text(both)).unwrap();
        let frames = read_until(&mut ws, |f| f["type"] == "outbound");
        let outbound = frames.last().unwrap().clone();
        assert_eq!(outbound["action"]["op"], "send");
        assert_eq!(outbound["action"]["chat_id"], "demo");
        // The chat was seen on discord: the reply is tagged with it.
        assert_eq!(outbound["platform"], "discord");
        assert_eq!(outbound["botId"], "111");
        let request_id = outbound["requestId"].as_str().unwrap().to_owned();
        let result = format!(
            r#"{{"type": "outbound_result", "requestId": "{request_id}", "result": {{"success": true, "message_id": "m-9"}}}}"#
        );
        ws.send(Message::text(result + "\n")).unwrap();
        let mut all = frames;
        if !all.iter().any(|f| f["type"] == "inbound_ack") {
            all.extend(read_until(&mut ws, |f| f["type"] == "inbound_ack"));
        }
        let acks: Vec<_> = all.iter().filter(|f| f["type"] == "inbound_ack").collect();
        assert_eq!(acks.len(), 1);
        assert_eq!(acks[0]["bufferId"], "b-1");
        // The gateway closes cleanly.
        loop {
            match ws.read() {
                Ok(Message::Close(frame)) => {
                    assert_eq!(frame.map(|f| f.code), Some(CloseCode::Normal));
                    break;
                }
                Ok(_) => continue,
                Err(e) => panic!("expected a close frame, got {e}"),
            }
        }
        request_id
    });

    let url = format!("http://127.0.0.1:{port}/");
    let out = run_gateway(&[
        "--url",
        &url,
        "--identity",
        "discord:111",
        "--identity",
        "telegram:222",
    ]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    let Ok(request_id) = connector.join() else {
        panic!(
            "connector failed; gateway said:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    assert!(
        out.status.success(),
        "{:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(lines[0]["descriptor"]["platform"], "discord");
    assert_eq!(lines[1]["descriptor"]["platform"], "telegram");
    assert_eq!(lines[2]["requestId"], request_id.as_str());
    assert_eq!(lines[2]["result"]["success"], true);
    assert_eq!(lines[2]["result"]["message_id"], "m-9");
    assert_eq!(request_id.len(), 32);
    assert!(
        request_id
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    );
}

#[test]
fn exits_2_when_nothing_listens() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let out = run_gateway(&["--url", &format!("ws://127.0.0.1:{port}/relay")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn exits_2_when_the_connector_refuses_the_credential() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connector = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut ws = tungstenite::accept(tcp).unwrap();
        let frame = CloseFrame {
            code: CloseCode::from(4401),
            reason: "unauthorized".into(),
        };
        ws.close(Some(frame)).unwrap();
        // Let the close handshake finish.
        while ws.read().is_ok() {}
    });
    let out = run_gateway(&["--url", &format!("ws://127.0.0.1:{port}")]);
    connector.join().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refused the credential"), "{stderr}");
}

#[test]
fn exits_64_on_bad_arguments() {
    assert_eq!(run_gateway(&[]).status.code(), Some(64));
    assert_eq!(
        run_gateway(&["--url", "connector.example"]).status.code(),
        Some(64)
    );
}

/// A buffered delivery in the same message as the result that makes the gateway
/// disconnect: the application sees the delivery after it asked to disconnect, and its
/// ack still reaches the connector before the close. 20 runs in a row.
#[test]
fn a_delivery_in_the_same_message_as_the_last_result_is_acked_before_the_close() {
    for run in 0..20 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connector = thread::spawn(move || {
            let (tcp, _) = listener.accept().unwrap();
            tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut ws = tungstenite::accept(tcp).unwrap();
            read_until(&mut ws, |f| f["type"] == "hello");
            ws.send(Message::text(descriptor("discord") + "\n"))
                .unwrap();
            let frames = read_until(&mut ws, |f| f["type"] == "outbound");
            let request_id = frames.last().unwrap()["requestId"]
                .as_str()
                .unwrap()
                .to_owned();
            let both = format!(
                "{{\"type\": \"outbound_result\", \"requestId\": \"{request_id}\", \"result\": {{\"success\": true}}}}\n{{\"type\": \"inbound\", \"event\": {{\"text\": \"late\", \"source\": {{\"platform\": \"discord\", \"chat_id\": \"demo\"}}}}, \"bufferId\": \"b-{run}\"}}\n"
            );
            ws.send(Message::text(both)).unwrap();
            let mut acked = Vec::new();
            loop {
                match ws.read() {
                    Ok(Message::Text(t)) => {
                        for line in t.as_str().lines() {
                            let frame: Value = serde_json::from_str(line).unwrap();
                            if frame["type"] == "inbound_ack" {
                                acked.push(frame["bufferId"].as_str().unwrap().to_owned());
                            }
                        }
                    }
                    Ok(Message::Close(frame)) => {
                        return (acked, frame.map(|f| f.code));
                    }
                    Ok(_) => {}
                    Err(e) => panic!("run {run}: no close frame: {e}; acked {acked:?}"),
                }
            }
        });
        let out = run_gateway(&["--url", &format!("ws://127.0.0.1:{port}/relay")]);
        let (acked, code) = connector.join().unwrap();
        assert!(out.status.success(), "run {run}: {out:?}");
        assert_eq!(acked, [format!("b-{run}")], "run {run}");
        assert_eq!(code, Some(CloseCode::Normal), "run {run}");
    }
}

//! The connector example standing in for a real connector (issue 16, part 5), against the
//! gateway examples as processes: per-platform descriptors, interrupts, buffered
//! passthrough, chosen and large inbound text, and `blocking_gateway`'s credentials.
//! Every wait is on an output line or an exit, bounded; none is a fixed sleep.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod process;

use std::process::{Command, Stdio};
use std::time::Duration;

use process::{Process, SOON};
use serde_json::Value;

/// Long enough for a debug build on two busy cores; a passing run takes well under it.
const WAIT: Duration = Duration::from_secs(30);

/// A connector with `args`, and its URL once it listens.
fn connector(args: &[&str]) -> (Process, String) {
    let mut connector = Process::spawn("connector", args);
    let line = connector.wait_for("the listening line", WAIT, |l| l["listening"].is_string());
    let url = line["listening"].as_str().unwrap().to_owned();
    (connector, url)
}

/// The smol gateway on `url` with these identities, waiting for `wait_inbound` deliveries.
fn gateway(url: &str, identities: &[&str], wait_inbound: usize) -> Process {
    let wait = wait_inbound.to_string();
    let mut args = vec!["--url", url, "--wait-inbound", &wait, "--timeout", "30"];
    for identity in identities {
        args.extend(["--identity", identity]);
    }
    Process::spawn("gateway", &args)
}

/// The gateway ends cleanly, then the `--once` connector (every buffered delivery acked).
fn both_exit_0(gw: &mut Process, connector: &mut Process) {
    assert_eq!(gw.finish(WAIT).code(), Some(0), "{:#?}", gw.seen);
    let code = connector.finish(WAIT).code();
    assert_eq!(code, Some(0), "{:#?}", connector.seen);
}

fn event(kind: &'static str) -> impl Fn(&Value) -> bool {
    move |line| line["event"] == kind
}

#[test]
fn each_announced_platform_gets_its_own_descriptor_with_a_real_label() {
    let (_connector, url) = connector(&[]);
    // Nothing is pushed: the gateway waits, and every descriptor is seen meanwhile.
    let identities = ["discord:111", "telegram:222", "slack:333", "acme:4"];
    let mut gw = gateway(&url, &identities, 1);
    let mut descriptors = Vec::new();
    for _ in identities {
        let line = gw.wait_for("a descriptor", WAIT, event("descriptor"));
        descriptors.push(line["descriptor"].clone());
    }
    let row = |d: &Value| {
        (
            d["platform"].as_str().unwrap().to_owned(),
            d["label"].as_str().unwrap().to_owned(),
            d["max_message_length"].as_u64().unwrap(),
            d["len_unit"].as_str().unwrap().to_owned(),
        )
    };
    let rows: Vec<_> = descriptors.iter().map(row).collect();
    let expected = [
        ("discord", "Discord", 2000, "chars"),
        ("telegram", "Telegram", 4096, "utf16"),
        // protocol.md gives no figure: the example's own (documented in --help).
        ("slack", "Slack", 4096, "chars"),
        ("acme", "Acme", 4096, "chars"),
    ]
    .map(|(p, l, m, u)| (p.to_owned(), l.to_owned(), m, u.to_owned()));
    assert_eq!(rows, expected, "{descriptors:#?}");
    assert_eq!(descriptors[0]["markdown_dialect"], "discord");
    assert_eq!(descriptors[1]["markdown_dialect"], "markdown_v2");
    assert_eq!(descriptors[1]["supports_draft_streaming"], true);
}

#[test]
fn an_interrupt_follows_every_nth_inbound_for_its_chat() {
    let (mut connector, url) = connector(&["--push-inbound", "5", "--interrupt-after", "2"]);
    let mut gw = gateway(&url, &["discord:111"], 5);
    assert_eq!(gw.finish(WAIT).code(), Some(0), "{:#?}", gw.seen);
    // Live, on one socket: in the order pushed.
    let order: Vec<String> = gw
        .seen
        .iter()
        .filter_map(|l| match l["event"].as_str() {
            Some("inbound") => Some(l["inbound"]["text"].as_str().unwrap().to_owned()),
            Some("interrupt") => {
                assert_eq!(l["session_key"], "agent:main:discord:group:4455:77");
                assert_eq!(l["chat_id"], "4455");
                Some("interrupt".to_owned())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        order,
        [
            "message 1",
            "message 2",
            "interrupt",
            "message 3",
            "message 4",
            "interrupt",
            "message 5"
        ],
        "{:#?}",
        gw.seen
    );
    connector.wait_for(
        "the first interrupt_inbound",
        SOON,
        event("interrupt_inbound"),
    );
    let second = connector.wait_for("the second", SOON, event("interrupt_inbound"));
    assert_eq!(second["session_key"], "agent:main:discord:group:4455:77");
}

#[test]
fn a_buffered_passthrough_carries_the_discord_bots_id_and_path_and_is_acked() {
    let (mut connector, url) = connector(&["--passthrough", "1", "--buffered-passthrough"]);
    // Waits for an inbound that never comes: the forward is seen and acked meanwhile.
    let mut gw = gateway(&url, &["discord:111", "telegram:222"], 1);
    let forward = gw.wait_for("the passthrough", WAIT, event("passthrough"));
    assert_eq!(forward["platform"], "discord");
    assert_eq!(forward["botId"], "111");
    assert_eq!(forward["path"], "/interactions/discord/111");
    let buffer_id = forward["bufferId"].as_str().expect("buffered").to_owned();
    let body: Value = serde_json::from_str(forward["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["type"], 2);
    connector.wait_for("its ack", WAIT, |l| {
        l["event"] == "acked" && l["bufferId"] == buffer_id.as_str()
    });
}

#[test]
fn a_unicode_inbound_text_round_trips_exactly() {
    let text = "héllo wörld — 你好 😀 🏳️‍🌈 e\u{301} \"quoted\" \\ tab\there";
    let (mut connector, url) =
        connector(&["--once", "--push-inbound", "1", "--inbound-text", text]);
    // Telegram announced first: the inbound comes from the session's default platform.
    let mut gw = gateway(&url, &["telegram:222", "discord:111"], 1);
    let inbound = gw.wait_for("the inbound", WAIT, event("inbound"));
    assert_eq!(inbound["inbound"]["text"], text);
    assert_eq!(inbound["inbound"]["source"]["platform"], "telegram");
    both_exit_0(&mut gw, &mut connector);
}

#[test]
fn inbound_text_numbers_each_event() {
    let (_connector, url) = connector(&["--push-inbound", "2", "--inbound-text", "n°{i}"]);
    let mut gw = gateway(&url, &["discord:1"], 2);
    assert_eq!(gw.finish(WAIT).code(), Some(0), "{:#?}", gw.seen);
    let texts: Vec<&Value> = gw
        .events("inbound")
        .iter()
        .map(|l| &l["inbound"]["text"])
        .collect();
    assert_eq!(texts, ["n°1", "n°2"]);
}

/// `--inbound-bytes`'s rule, restated: the text repeated and cut to `n` bytes, a character
/// the cut would split replaced by `.`s.
fn sized(text: &str, n: usize) -> String {
    let mut out = String::new();
    for c in text.chars().cycle() {
        if out.len() + c.len_utf8() > n {
            break;
        }
        out.push(c);
    }
    let pad = n - out.len();
    out + &".".repeat(pad)
}

#[test]
fn an_inbound_of_200000_bytes_arrives_intact() {
    let args = [
        "--once",
        "--push-inbound",
        "1",
        "--buffered-every",
        "1",
        "--inbound-text",
        "ab😀{i}",
        "--inbound-bytes",
        "200000",
    ];
    let (mut connector, url) = connector(&args);
    let mut gw = gateway(&url, &["discord:1"], 1);
    let inbound = gw.wait_for("the inbound", WAIT, event("inbound"));
    let got = inbound["inbound"]["text"].as_str().unwrap();
    assert_eq!(got.len(), 200_000);
    // 7 bytes a copy, 28571 of them, then `ab` and an emoji the cut would split: a `.`.
    assert!(got.ends_with("😀1ab."), "{:?}", got.get(got.len() - 8..));
    assert!(got == sized("ab😀1", 200_000), "the text differs");
    assert!(inbound["bufferId"].is_string());
    // Buffered and acked: a clean --once exit.
    both_exit_0(&mut gw, &mut connector);
}

/// Runs `blocking_gateway` against `url` with these credentials; its exit code, stdout
/// lines and stderr.
fn blocking(url: &str, id: &str, secret: &str) -> (Option<i32>, Vec<Value>, String) {
    let mut command = Command::new(process::example("blocking_gateway"));
    command
        .args([
            "--url",
            url,
            "--identity",
            "discord:111",
            "--gateway-id",
            id,
            "--secret",
            secret,
        ])
        .stdin(Stdio::null());
    let out = command.output().unwrap();
    let lines = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), lines, stderr)
}

#[test]
fn blocking_gateway_handshakes_with_the_matching_secret() {
    let (mut connector, url) = connector(&["--once", "--secret", "s3cr3t"]);
    let (code, lines, stderr) = blocking(&url, "gw-b", "s3cr3t");
    assert_eq!(code, Some(0), "{lines:#?} {stderr}");
    assert_eq!(lines[0]["descriptor"]["label"], "Discord");
    assert_eq!(lines[1]["result"]["success"], true, "{lines:#?}");
    assert_eq!(
        connector.finish(WAIT).code(),
        Some(0),
        "{:#?}",
        connector.seen
    );
    assert_eq!(connector.events("connected")[0]["gateway"], "gw-b");
}

#[test]
fn blocking_gateway_with_a_wrong_secret_is_refused_and_exits_2() {
    let (mut connector, url) = connector(&["--once", "--secret", "s3cr3t"]);
    let (code, lines, stderr) = blocking(&url, "gw-b", "wrong");
    assert_eq!(code, Some(2), "{lines:#?} {stderr}");
    assert!(stderr.contains("refused the credential"), "{stderr}");
    assert!(!stderr.contains("Unauthorized {"), "{stderr}");
    assert_eq!(connector.finish(WAIT).code(), Some(1));
    assert_eq!(connector.events("auth_failed")[0]["reason"], "unauthorized");
}

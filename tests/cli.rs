//! The examples' command lines as processes: `--help`, usage errors (exit 64, never a
//! panic), and the exit codes a script relies on. No network waits beyond a loopback
//! connect.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod process;

use std::net::TcpStream;
use std::process::Output;

use process::{Process, SOON, command, free_port};

const EXAMPLES: [&str; 7] = [
    "gateway",
    "tokio_gateway",
    "blocking_gateway",
    "connector",
    "demo",
    "decode",
    "follow_up",
];
const GATEWAYS: [&str; 3] = ["gateway", "tokio_gateway", "blocking_gateway"];

/// Runs an example to its end with a clean gateway environment plus `env`.
fn run(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = command(name, args);
    command.envs(env.iter().copied());
    command.output().unwrap()
}

/// Checks `args` is a usage error: exit 64, stderr naming `problem`, then the usage line.
fn usage_error(name: &str, args: &[&str], env: &[(&str, &str)], problem: &str) {
    let out = run(name, args, env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{name} {args:?}: {stderr}");
    let mut lines = stderr.lines();
    let first = lines.next().unwrap_or_default();
    assert!(first.starts_with(&format!("{name}: ")), "{stderr}");
    assert!(first.contains(problem), "{name} {args:?}: {stderr}");
    assert!(
        lines.next().unwrap_or_default().starts_with("usage: "),
        "{stderr}"
    );
}

fn dead_url() -> String {
    format!("ws://127.0.0.1:{}/relay", free_port())
}

#[test]
fn help_prints_usage_flags_and_exit_codes_to_stdout() {
    for name in EXAMPLES {
        for flag in ["--help", "-h"] {
            let out = run(name, &[flag], &[]);
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(0), "{name} {flag}");
            assert!(stdout.starts_with(&format!("usage: {name}")), "{stdout}");
            assert!(stdout.contains("Exit codes:"), "{stdout}");
            assert!(stdout.contains("64 usage error"), "{stdout}");
            assert!(stdout.contains("--help"), "{stdout}");
        }
    }
    // Every flag of the richest ones is listed.
    let help = String::from_utf8(run("gateway", &["-h"], &[]).stdout).unwrap();
    for flag in [
        "--url",
        "--identity",
        "--gateway-id",
        "--secret",
        "--sends",
        "--wait-inbound",
        "--go-idle",
        "--timeout",
        "--ping-interval",
        "--liveness-timeout",
        "--dial-timeout",
        "--close-timeout",
        "--request-timeout",
        "--backoff-base",
        "--backoff-cap",
    ] {
        assert!(help.contains(flag), "{flag}: {help}");
    }
    let help = String::from_utf8(run("connector", &["-h"], &[]).stdout).unwrap();
    for flag in [
        "--listen",
        "--secret",
        "--push-inbound",
        "--buffered-every",
        "--passthrough",
        "--once",
        "--hello-timeout",
        "--ping-interval",
        "--liveness-timeout",
        "--max-pending",
        "--store",
        "--inbound-text",
        "--inbound-bytes",
        "--interrupt-after",
        "--buffered-passthrough",
    ] {
        assert!(help.contains(flag), "{flag}: {help}");
    }
    let help = String::from_utf8(run("blocking_gateway", &["-h"], &[]).stdout).unwrap();
    for flag in ["--url", "--identity", "--gateway-id", "--secret"] {
        assert!(help.contains(flag), "{flag}: {help}");
    }
}

/// The flags an example's source matches on (`"--flag" =>`), its shared modules included
/// (`#[path = "common/stages.rs"]`: the gateway examples parse their flags there).
fn parsed_flags(name: &str) -> Vec<String> {
    let dir = format!("{}/examples", env!("CARGO_MANIFEST_DIR"));
    let mut source = std::fs::read_to_string(format!("{dir}/{name}.rs")).unwrap();
    let included: Vec<String> = source
        .lines()
        .filter_map(|line| line.trim().strip_prefix("#[path = \"")?.strip_suffix("\"]"))
        .map(|path| std::fs::read_to_string(format!("{dir}/{path}")).unwrap())
        .collect();
    source.extend(included);
    source
        .lines()
        .filter_map(|line| {
            let flag = line.trim().strip_prefix('"')?.split_once("\" =>")?.0;
            flag.starts_with("--").then(|| flag.to_owned())
        })
        .collect()
}

#[test]
fn every_flag_an_example_parses_is_in_its_help() {
    for name in EXAMPLES {
        let help = String::from_utf8(run(name, &["--help"], &[]).stdout).unwrap();
        for flag in parsed_flags(name) {
            // Listed as a flag, not just mentioned inside another one's name.
            let listed = help
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .any(|word| word == flag);
            assert!(
                listed,
                "{name}: {flag} is parsed but not in --help:\n{help}"
            );
        }
    }
    assert!(parsed_flags("connector").contains(&"--interrupt-after".to_owned()));
    assert!(parsed_flags("tokio_gateway").contains(&"--ping-interval".to_owned()));
}

#[test]
fn the_connectors_new_flags_refuse_bad_values() {
    for (args, problem) in [
        (
            &["--inbound-bytes", "1000001"][..],
            "--inbound-bytes: at most 1000000",
        ),
        (&["--inbound-bytes", "-1"], "--inbound-bytes"),
        // Escapes count: 600000 quotes are 1200000 bytes of JSON.
        (
            &["--inbound-bytes", "600000", "--inbound-text", "\""],
            "--inbound-bytes: at most",
        ),
        (&["--interrupt-after", "often"], "--interrupt-after"),
        (&["--inbound-text"], "--inbound-text needs a value"),
    ] {
        usage_error("connector", args, &[], problem);
    }
}

#[test]
fn an_unknown_flag_exits_64_on_every_example() {
    for name in EXAMPLES {
        usage_error(name, &["--bogus"], &[], "unknown argument --bogus");
    }
}

#[test]
fn a_missing_or_bad_value_exits_64() {
    for name in GATEWAYS {
        usage_error(name, &["--url"], &[], "--url needs a value");
        usage_error(name, &[], &[], "--url");
    }
    usage_error(
        "gateway",
        &["--url", "ws://x", "--sends", "-3"],
        &[],
        "--sends",
    );
    usage_error(
        "connector",
        &["--max-pending", "many"],
        &[],
        "--max-pending",
    );
}

#[test]
fn no_duration_panics() {
    for bad in ["-1", "NaN", "inf", "-inf", "1e300", "86401", "soon"] {
        for name in ["gateway", "tokio_gateway"] {
            usage_error(
                name,
                &["--url", "ws://x", "--timeout", bad],
                &[],
                "--timeout",
            );
        }
        usage_error(
            "gateway",
            &["--url", "ws://x", "--ping-interval", bad],
            &[],
            "--ping-interval",
        );
        usage_error(
            "connector",
            &["--hello-timeout", bad],
            &[],
            "--hello-timeout",
        );
    }
}

#[test]
fn a_secret_without_a_gateway_id_is_refused() {
    usage_error(
        "blocking_gateway",
        &["--url", "ws://x", "--secret", "s"],
        &[],
        "--secret needs --gateway-id",
    );
    for name in ["gateway", "tokio_gateway"] {
        usage_error(
            name,
            &["--url", "ws://x", "--secret", "s"],
            &[],
            "--gateway-id",
        );
        usage_error(
            name,
            &["--url", "ws://x"],
            &[("GATEWAY_RELAY_SECRET", "s")],
            "--gateway-id",
        );
    }
}

#[test]
fn an_identity_needs_its_colon_but_not_a_bot_id() {
    let url = dead_url();
    for name in GATEWAYS {
        usage_error(
            name,
            &["--url", &url, "--identity", "discord"],
            &[],
            "PLATFORM:BOTID",
        );
        // Legal: it gets as far as dialing a port nobody listens on (exit 2).
        let out = run(name, &["--url", &url, "--identity", "discord:"], &[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_platform_configured_twice_is_a_usage_error() {
    let url = dead_url();
    for name in GATEWAYS {
        usage_error(
            name,
            &[
                "--url",
                &url,
                "--identity",
                "discord:1",
                "--identity",
                "discord:2",
            ],
            &[],
            "platform \"discord\" is configured twice",
        );
    }
}

#[test]
fn a_malformed_environment_value_is_refused_by_name() {
    for name in ["gateway", "tokio_gateway"] {
        usage_error(
            name,
            &["--url", "ws://x"],
            &[
                ("GATEWAY_RELAY_PLATFORMS", "discord"),
                ("GATEWAY_RELAY_BOT_IDS", "111,222"),
            ],
            "GATEWAY_RELAY_BOT_IDS: expected a JSON object",
        );
    }
}

/// A connector started with `args`, and its URL once it listens.
fn once_connector(args: &[&str]) -> (Process, String) {
    let mut connector = Process::spawn("connector", args);
    let line = connector.wait_for("the listening line", SOON, |l| l["listening"].is_string());
    let url = line["listening"].as_str().unwrap().to_owned();
    (connector, url)
}

#[test]
fn a_refused_credential_is_told_for_people_and_fails_a_once_connector() {
    for name in ["gateway", "tokio_gateway"] {
        let (mut connector, url) = once_connector(&["--once", "--secret", "right"]);
        let args = ["--url", &url, "--gateway-id", "gw", "--secret", "wrong"];
        let out = run(name, &args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("refused the credential"), "{stderr}");
        assert!(!stderr.contains("Unauthorized {"), "{stderr}");
        // The status line says it for people too, not as a Debug value.
        let stdout = String::from_utf8_lossy(&out.stdout);
        let failed = stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .find(|l| {
                l["event"] == "status"
                    && l["detail"]
                        .as_str()
                        .is_some_and(|d| d.starts_with("ConnectFailed"))
            })
            .unwrap_or_else(|| panic!("{stdout}"));
        let detail = failed["detail"].as_str().unwrap();
        assert!(detail.contains("refused the credential"), "{detail}");
        assert!(!detail.contains('{'), "{detail}");
        assert_eq!(connector.finish(SOON).code(), Some(1), "{name}");
    }
}

#[test]
fn a_once_connector_closed_before_a_handshake_exits_1() {
    let (mut connector, url) = once_connector(&["--once"]);
    let address = url.trim_start_matches("ws://").trim_end_matches("/relay");
    drop(TcpStream::connect(address).unwrap());
    assert_eq!(connector.finish(SOON).code(), Some(1));
}

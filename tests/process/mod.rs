//! Example processes for the process-level tests: the connector and the gateway examples run
//! as children, their JSON lines read on a thread so that a test waits for a line with a
//! timeout, never with a sleep.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::Once;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long a step that should take well under a second is waited for.
pub const SOON: Duration = Duration::from_secs(5);

/// An example's binary. A plain `cargo test` builds examples next to the test binaries; a
/// filtered run (`cargo test --test faults`) does not, so they are built here, once (cheap
/// when up to date, and a filtered run never tests a stale binary).
pub fn example(name: &str) -> PathBuf {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "--examples"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success());
    });
    let mut dir = std::env::current_exe().unwrap();
    dir.pop();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join("examples").join(name)
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh scratch directory under the system's temporary one.
pub fn scratch_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The command that runs example `name` with `args` and none of the reference gateway's
/// environment (`GATEWAY_RELAY_*`), so a developer's shell cannot change what a test sees.
pub fn command(name: &str, args: &[&str]) -> Command {
    let mut command = Command::new(example(name));
    command.args(args);
    for var in [
        "GATEWAY_RELAY_URL",
        "GATEWAY_RELAY_PLATFORMS",
        "GATEWAY_RELAY_BOT_IDS",
        "GATEWAY_RELAY_ID",
        "GATEWAY_RELAY_SECRET",
    ] {
        command.env_remove(var);
    }
    command
}

/// A child example whose output lines are read while it runs; killed (SIGKILL) on drop.
pub struct Process {
    pub child: Child,
    rx: Receiver<Value>,
    /// Every line taken so far, in order.
    pub seen: Vec<Value>,
}

impl Process {
    pub fn spawn(name: &str, args: &[&str]) -> Self {
        let mut command = command(name, args);
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let rx = read_lines(child.stdout.take().unwrap());
        Self {
            child,
            rx,
            seen: Vec::new(),
        }
    }

    /// Takes lines until `until` accepts one, for at most `timeout`; returns it. Panics
    /// (with every line seen) when it does not come.
    pub fn wait_for(
        &mut self,
        what: &str,
        timeout: Duration,
        mut until: impl FnMut(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            match self
                .rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if until(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no {what} within {timeout:?}: {:#?}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the output ended before {what}: {:#?}", self.seen)
                }
            }
        }
    }

    /// Takes lines until the output ends (the process exited or was killed), for at most
    /// `timeout`, then reaps the process.
    pub fn finish(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            match self
                .rx
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => self.seen.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("still running after {timeout:?}: {:#?}", self.seen)
                }
            }
        }
        self.child.wait().unwrap()
    }

    /// SIGKILL, then the lines it wrote before.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.finish(SOON);
    }

    /// The lines seen whose `event` is `kind`.
    pub fn events(&self, kind: &str) -> Vec<&Value> {
        self.seen.iter().filter(|l| l["event"] == kind).collect()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_lines(stdout: ChildStdout) -> Receiver<Value> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let value = serde_json::from_str(&line)
                .unwrap_or_else(|_| Value::String(format!("not JSON: {line}")));
            if tx.send(value).is_err() {
                break;
            }
        }
    });
    rx
}

/// A connector example listening on `port` (the same port across restarts, so that the
/// gateway's URL reaches the new process), once it says it listens.
pub fn connector(port: u16, args: &[&str]) -> Process {
    let listen = format!("127.0.0.1:{port}");
    let mut all = vec!["--listen", listen.as_str()];
    all.extend(args);
    let mut connector = Process::spawn("connector", &all);
    connector.wait_for("the listening line", Duration::from_secs(30), |l| {
        l["listening"].is_string()
    });
    connector
}

/// A gateway that keeps reconnecting fast (a dead link noticed within a second, redials
/// 0.05 s to 0.2 s apart) until it has `wait_inbound` deliveries, then disconnects.
pub fn gateway(port: u16, wait_inbound: usize) -> Process {
    let url = format!("ws://127.0.0.1:{port}/relay");
    let wait = wait_inbound.to_string();
    Process::spawn(
        "gateway",
        &[
            "--url",
            &url,
            "--identity",
            "discord:1",
            "--wait-inbound",
            &wait,
            "--timeout",
            "60",
            "--ping-interval",
            "0.2",
            "--liveness-timeout",
            "0.6",
            "--backoff-base",
            "0.05",
            "--backoff-cap",
            "0.2",
        ],
    )
}

/// Checks the gateway application got `message 1` .. `message n`, each exactly once, under
/// `n` distinct buffer ids; returns those ids.
pub fn delivered_exactly_once(gateway: &Process, n: usize) -> std::collections::BTreeSet<String> {
    let inbound = gateway.events("inbound");
    let mut texts: Vec<&str> = inbound
        .iter()
        .map(|l| l["inbound"]["text"].as_str().unwrap())
        .collect();
    texts.sort_unstable();
    let mut expected: Vec<String> = (1..=n).map(|i| format!("message {i}")).collect();
    expected.sort_unstable();
    assert_eq!(texts, expected, "each delivery exactly once: {inbound:#?}");
    let ids: std::collections::BTreeSet<String> = inbound
        .iter()
        .map(|l| l["bufferId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), n, "{inbound:#?}");
    ids
}

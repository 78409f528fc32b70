//! Argument handling every example shares (no runtime, so any example may include it with
//! `#[path = "common/cli.rs"] mod cli;`): `--help`, usage errors with exit 64, and the
//! values that must never panic (seconds, identities, the gateway's environment).
#![allow(dead_code)]

use std::process::ExitCode;
use std::time::Duration;

use relay_machine::gateway::Identity;

/// The exit code of a usage error (BSD's `EX_USAGE`).
pub const USAGE: u8 = 64;

/// The command-line arguments; with `--help` or `-h` among them, prints `help` to stdout
/// and exits 0. `help`'s first line is the usage line.
pub fn args(help: &str) -> Vec<String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{help}");
        std::process::exit(0);
    }
    args
}

/// Reports a usage error on stderr (the problem, then the usage line) and returns 64.
pub fn usage_error(name: &str, help: &str, problem: &str) -> ExitCode {
    eprintln!("{name}: {problem}");
    eprintln!("{}", help.lines().next().unwrap_or_default());
    ExitCode::from(USAGE)
}

/// The value after `flag`, or the problem.
pub fn value(flag: &str, args: &mut impl Iterator<Item = String>) -> Result<String, String> {
    args.next().ok_or(format!("{flag} needs a value"))
}

/// A number, or the problem naming `flag`.
pub fn number<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    v.parse().map_err(|e| format!("{flag}: {e} (got {v:?})"))
}

/// Seconds as a float: finite, not negative, at most a day; never a panic.
pub fn seconds(flag: &str, v: &str) -> Result<Duration, String> {
    let bad = || format!("{flag}: expected seconds between 0 and 86400, got {v:?}");
    let s: f64 = v.parse().map_err(|_| bad())?;
    if !(0.0..=86_400.0).contains(&s) {
        return Err(bad());
    }
    Duration::try_from_secs_f64(s).map_err(|_| bad())
}

/// `PLATFORM:BOTID` (the bot id may be empty: `discord:`).
pub fn identity(v: &str) -> Result<Identity, String> {
    match v.split_once(':') {
        Some((platform, bot)) if !platform.is_empty() => Ok(Identity::new(platform, bot)),
        _ => Err(format!("--identity: expected PLATFORM:BOTID, got {v:?}")),
    }
}

/// A non-empty, trimmed environment variable.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// The identities of the reference gateway's environment (protocol.md Appendix A, §6.2):
/// `GATEWAY_RELAY_PLATFORMS` (`discord,telegram`) and `GATEWAY_RELAY_BOT_IDS` (a JSON
/// object: `{"discord": {"botId": "111"}}`).
pub fn env_identities() -> Result<Vec<Identity>, String> {
    let bot_ids = match env("GATEWAY_RELAY_BOT_IDS") {
        Some(v) => match serde_json::from_str::<serde_json::Value>(&v) {
            Ok(o) if o.is_object() => o,
            _ => {
                return Err(format!(
                    "GATEWAY_RELAY_BOT_IDS: expected a JSON object like {{\"discord\": {{\"botId\": \"111\"}}}}, got {v:?}"
                ));
            }
        },
        None => serde_json::Value::Null,
    };
    Ok(env("GATEWAY_RELAY_PLATFORMS")
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| Identity::new(p, bot_ids[p]["botId"].as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default())
}

/// The upgrade credentials: a secret without a gateway id is a usage error (it would
/// silently go unused).
pub fn credentials(
    id: Option<String>,
    secret: Option<String>,
) -> Result<Option<(String, String)>, String> {
    match (id, secret) {
        (Some(id), Some(secret)) => Ok(Some((id, secret))),
        (None, Some(_)) => {
            Err("--secret (GATEWAY_RELAY_SECRET) needs --gateway-id (GATEWAY_RELAY_ID)".into())
        }
        // An id alone: an unauthenticated upgrade, as in the reference.
        _ => Ok(None),
    }
}

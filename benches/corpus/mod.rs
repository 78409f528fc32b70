//! A byte-for-byte Rust port of the benchmark corpus generator
//! (`shared/bench/gen_corpus.py`): the same splitmix64 draws ([`SplitMix64`], the crate's
//! generator) in the same order, the same string templates, generated into memory.
//!
//! `gen_mixed(N_FRAMES)` is the content of `mixed_100k.ndjson` and
//! `gen_big(BIG_TOTAL) + "\n"` that of `big_1mib.ndjson` (see `tests/corpus.rs`).
#![allow(dead_code)] // each bench or test uses only part of it

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use relay_machine::rng::SplitMix64;

/// Seed of the mixed corpus.
pub const MIXED_SEED: u64 = 0x243F_6A88_85A3_08D3;
/// Seed of the big frame.
pub const BIG_SEED: u64 = 0x1319_8A2E_0370_7344;
/// Frames in the mixed corpus.
pub const N_FRAMES: usize = 100_000;
/// Size of the big frame in bytes, including its newline.
pub const BIG_TOTAL: usize = 1 << 20;

const WORDS: [&str; 50] = [
    "the",
    "relay",
    "gateway",
    "connector",
    "message",
    "thread",
    "please",
    "deploy",
    "build",
    "review",
    "ship",
    "it",
    "today",
    "tomorrow",
    "can",
    "you",
    "check",
    "logs",
    "for",
    "error",
    "latency",
    "spike",
    "on",
    "node",
    "seven",
    "and",
    "then",
    "rollback",
    "if",
    "needed",
    "ok",
    "thanks",
    "ping",
    "me",
    "when",
    "done",
    "café",
    "naïve",
    "résumé",
    "日本語",
    "привет",
    "🚀",
    "👍",
    "🙂",
    "lgtm",
    "merge",
    "queue",
    "flaky",
    "test",
    "again",
];
const NAMES: [&str; 20] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "zoë",
];
const PLATFORMS: [&str; 3] = ["discord", "telegram", "slack"];
const CHAT_TYPES: [&str; 4] = ["group", "channel", "dm", "thread"];

/// The draws of the Python generator, on the crate's one splitmix64.
trait Draws {
    fn below(&mut self, n: u64) -> u64;
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str;
    fn snowflake(&mut self) -> u64;
    fn hexn(&mut self, out: &mut String, n_u64: usize);
    fn bytes(&mut self, n: usize) -> Vec<u8>;
}

impl Draws for SplitMix64 {
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    /// 18 decimal digits.
    fn snowflake(&mut self) -> u64 {
        100_000_000_000_000_000 + self.below(900_000_000_000_000_000)
    }

    /// `n_u64` draws as 16 lowercase hex digits each.
    fn hexn(&mut self, out: &mut String, n_u64: usize) {
        for _ in 0..n_u64 {
            let _ = write!(out, "{:016x}", self.next_u64());
        }
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n + 8);
        while out.len() < n {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(n);
        out
    }
}

fn inbound(r: &mut SplitMix64, i: usize, out: &mut String) {
    let plat = r.pick(&PLATFORMS);
    let ctype = r.pick(&CHAT_TYPES);
    let nwords = 10 + r.below(21);
    out.push_str(r#"{"type":"inbound","event":{"text":""#);
    for w in 0..nwords {
        if w > 0 {
            out.push(' ');
        }
        out.push_str(r.pick(&WORDS));
    }
    let chat_id = r.snowflake();
    let user_id = r.snowflake();
    let scope_id = r.snowflake();
    let msg_id = r.snowflake();
    let uname = r.pick(&NAMES);
    let buffered = r.below(8) == 0;
    let _ = write!(
        out,
        r#"","message_type":"text","message_id":"{msg_id}","source":{{"platform":"{plat}","chat_id":"{chat_id}","chat_type":"{ctype}","user_id":"{user_id}","user_name":"{uname}","scope_id":"{scope_id}","message_id":"{msg_id}"}}}}"#
    );
    if buffered {
        let _ = write!(out, r#","bufferId":"buf-{i}""#);
    }
    out.push('}');
}

fn outbound_result(r: &mut SplitMix64, out: &mut String) {
    out.push_str(r#"{"type":"outbound_result","requestId":""#);
    r.hexn(out, 2);
    out.push_str(r#"","result":"#);
    if r.below(4) == 0 {
        let _ = write!(
            out,
            r#"{{"success":true,"message_id":"{}"}}"#,
            r.snowflake()
        );
    } else {
        out.push_str(r#"{"success":true}"#);
    }
    out.push('}');
}

fn passthrough(r: &mut SplitMix64, i: usize, out: &mut String) {
    let bot = r.snowflake();
    let _ = write!(
        out,
        r#"{{"type":"passthrough_forward","forward":{{"platform":"discord","botId":"{bot}","method":"POST","path":"/interactions","headers":[["content-type","application/json"],["x-signature-ed25519",""#
    );
    r.hexn(out, 8);
    let ts = 1_700_000_000 + r.below(100_000_000);
    let _ = write!(out, r#""],["x-signature-timestamp","{ts}"]],"bodyB64":""#);
    STANDARD.encode_string(r.bytes(1024), out);
    out.push_str(r#""}"#);
    if r.below(4) == 0 {
        let _ = write!(out, r#","bufferId":"pt-{i}""#);
    }
    out.push('}');
}

/// The lines of Python's `gen_mixed(n)`, each followed by `\n`: for `n = N_FRAMES`,
/// exactly the bytes of `mixed_100k.ndjson`.
pub fn gen_mixed(n: usize) -> String {
    let mut r = SplitMix64::new(MIXED_SEED);
    let mut out = String::with_capacity(n * 460);
    for i in 0..n {
        match r.below(100) {
            0..60 => inbound(&mut r, i, &mut out),
            60..90 => outbound_result(&mut r, &mut out),
            _ => passthrough(&mut r, i, &mut out),
        }
        out.push('\n');
    }
    out
}

/// Python's `gen_big(total)`: one `passthrough_forward` line, without its newline, whose
/// length plus the newline is exactly `total` bytes (ASCII only).
pub fn gen_big(total: usize) -> String {
    const HEAD: &str = r#"{"type":"passthrough_forward","forward":{"platform":"discord","botId":"100000000000000001","method":"POST","path":"/interactions/big","headers":[["content-type","application/octet-stream"],["x-pad",""#;
    const MID: &str = r#""]],"bodyB64":""#;
    const END: &str = r#""},"bufferId":"big-0"}"#;
    let overhead = HEAD.len() + MID.len() + END.len() + 1;
    assert!(
        total >= overhead,
        "gen_big: total must be at least {overhead}"
    );
    let k = (total - overhead) / 4;
    let mut line = String::with_capacity(total);
    line.push_str(HEAD);
    line.push_str(&"x".repeat(total - overhead - 4 * k));
    line.push_str(MID);
    STANDARD.encode_string(SplitMix64::new(BIG_SEED).bytes(3 * k), &mut line);
    line.push_str(END);
    assert_eq!(line.len() + 1, total);
    line
}

/// Python's `json.dumps` of a string, as the reference gateway writes the connector-bound
/// replies of the benches and tests: `\uXXXX` for every non-ASCII character (surrogate
/// pairs above the BMP), the short escapes for `"`, `\`, `\n`, `\r`, `\t`, `\b`, `\f`.
pub fn py_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

//! Both machines against the floor, in one run (issue 15, docs/performance.md).
//!
//! `cargo bench --bench machine`. Every throughput bench here has the same shape: one
//! iteration is one corpus line, handed in as one WebSocket message (a `Bytes`, as a
//! WebSocket library gives it to a driver, so it is decoded in place), with everything it
//! causes taken out of `poll_output` and answered the way an application would (acks,
//! responses). Iterations run in samples of [`SAMPLE`] lines, and [`SAMPLES`] samples
//! walk the whole corpus once, so each bench sees the same mix of frames as the floor.
//! Whatever must happen outside the timed section (minting the request a result answers)
//! happens in divan's input generator, which runs before each sample is timed.
//!
//! - `floor`: `serde_json::from_slice::<IgnoredAny>` of each line, the least work any
//!   validating JSON reader must do.
//! - `decoder`: [`FrameDecoder`] alone.
//! - `gateway_receive`: [`RelayMachine`] fed the corpus, each `outbound_result` carrying
//!   the id of a request the gateway really issued (at most [`SAMPLE`] in flight); the
//!   application acks every buffered delivery.
//! - `connector_receive`: [`ConnectorMachine`] fed one gateway reply per corpus line,
//!   serialised as Python's `json.dumps` does; the application answers every request.
//! - `connector_floor`, `connector_decoder`: the floor and the codec alone on those
//!   replies, for context.
//! - `gateway_frame_type`, `connector_frame_type`: the same, one frame type at a time,
//!   for the allocation counts of each (divan's `AllocProfiler` is the global allocator).
//! - `chunked`: one `passthrough_forward` frame of 1, 4 or 16 MiB through the gateway,
//!   in 4 KiB messages or whole.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod corpus;

use corpus::py_str;

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::LazyLock;
use std::time::Instant;

use bytes::Bytes;
use divan::counter::{BytesCount, ItemsCount};
use divan::{AllocProfiler, Bencher, black_box};
use relay_machine::codec::FrameDecoder;
use relay_machine::connector::{
    ConnectorConfig, ConnectorEvent, ConnectorMachine, Output as ConnectorOutput,
};
use relay_machine::gateway::{
    ConnectionCommand, GatewayConfig, GatewayEvent, Identity, Output, RelayMachine,
};
use relay_machine::rng::SplitMix64;
use relay_machine::wire::{ActionResult, CapabilityDescriptor, SendAction};
use serde_json::Value;

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

fn main() {
    divan::main();
}

/// Lines per sample: also the most requests the gateway has in flight.
const SAMPLE: u32 = 1_000;
/// Samples per bench: [`SAMPLE`] × `SAMPLES` is the whole corpus.
const SAMPLES: u32 = (corpus::N_FRAMES / SAMPLE as usize) as u32;

/// The identities both sides announce: the corpus's three platforms.
const IDENTITIES: [(&str, &str); 3] = [
    ("discord", "1122334455"),
    ("telegram", "7012345678"),
    ("slack", "B0123456789"),
];

/// `mixed_100k.ndjson`.
static MIXED: LazyLock<String> = LazyLock::new(|| corpus::gen_mixed(corpus::N_FRAMES));

/// The frame type of a corpus line, for the per-type benches.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Inbound,
    InboundBuffered,
    Result,
    Passthrough,
    PassthroughBuffered,
}

/// One corpus line, with its newline.
struct Line {
    bytes: &'static [u8],
    kind: Kind,
}

/// The corpus's lines, each with its `\n`, and their kinds.
static LINES: LazyLock<Vec<Line>> = LazyLock::new(|| {
    MIXED
        .as_bytes()
        .split_inclusive(|&b| b == b'\n')
        .map(|bytes| {
            let buffered = memchr_find(bytes, b"\"bufferId\"");
            let kind = if bytes.starts_with(br#"{"type":"inbound""#) {
                if buffered {
                    Kind::InboundBuffered
                } else {
                    Kind::Inbound
                }
            } else if bytes.starts_with(br#"{"type":"outbound_result""#) {
                Kind::Result
            } else if buffered {
                Kind::PassthroughBuffered
            } else {
                Kind::Passthrough
            };
            Line { bytes, kind }
        })
        .collect()
});

fn memchr_find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Offset of the 32 hex digits of an `outbound_result` line's requestId.
const RESULT_ID_AT: usize = r#"{"type":"outbound_result","requestId":""#.len();

// ---------------------------------------------------------------------------------------
// The gateway

/// A gateway with the three identities announced and described, its outputs drained.
fn handshaken_gateway(max_frame_len: usize) -> RelayMachine {
    let config = GatewayConfig {
        identities: IDENTITIES
            .iter()
            .map(|(p, b)| Identity::new(*p, *b))
            .collect(),
        max_frame_len,
        ..GatewayConfig::default()
    };
    let now = Instant::now();
    let mut gw = RelayMachine::new(config, 0x5EED).unwrap();
    gw.connect(now).unwrap();
    let Some(Output::Command(ConnectionCommand::Dial { generation, .. })) = gw.poll_output() else {
        panic!("no dial")
    };
    gw.on_connected(now, generation);
    let mut descriptors = String::new();
    for (platform, _) in IDENTITIES {
        let d = CapabilityDescriptor::new(platform, platform);
        let frame = serde_json::json!({"type": "descriptor", "descriptor": d});
        writeln!(descriptors, "{frame}").unwrap();
    }
    gw.handle_input(now, descriptors.as_bytes());
    while gw.poll_output().is_some() {}
    assert_eq!(gw.descriptors().count(), 3);
    gw
}

/// The application's side of the gateway: acks every buffered delivery once it has it,
/// takes every output. Returns the events handed over.
fn gateway_app(gw: &mut RelayMachine, now: Instant) -> usize {
    let mut events = 0;
    while let Some(output) = gw.poll_output() {
        if let Output::Event(event) = output {
            events += 1;
            match event {
                GatewayEvent::Inbound {
                    buffer_id: Some(id),
                    ..
                }
                | GatewayEvent::Passthrough {
                    buffer_id: Some(id),
                    ..
                } => gw.ack_inbound(now, &id).unwrap(),
                GatewayEvent::Diagnostic(d) => panic!("diagnostic {d:?}"),
                other => {
                    black_box(other);
                }
            }
        } else {
            let _ = black_box(output);
        }
    }
    events
}

/// A gateway walking `lines` round and round; the generator of its inputs.
struct GatewayRun {
    gw: RelayMachine,
    now: Instant,
    lines: Vec<&'static Line>,
    next: usize,
}

impl GatewayRun {
    fn new(kinds: &[Kind]) -> Self {
        let mut lines: Vec<_> = LINES.iter().filter(|l| kinds.contains(&l.kind)).collect();
        // Whole samples only, so that the walk starts over between samples.
        lines.truncate(lines.len() / SAMPLE as usize * SAMPLE as usize);
        Self {
            gw: handshaken_gateway(1 << 20),
            now: Instant::now(),
            lines,
            next: 0,
        }
    }

    /// The next line to hand in. A result gets the id of a request issued now (outside
    /// the timed section): the same 32 hex digits long, so the line's size is unchanged.
    /// The next line, as the `Bytes` a driver hands over (tungstenite's payload type), so
    /// the machine decodes it in place.
    fn next_input(&mut self) -> Bytes {
        if self.next == self.lines.len() {
            // Starting over: a fresh gateway, which has handed over none of the buffered
            // deliveries yet (one that had would only ack their redelivery).
            self.gw = handshaken_gateway(1 << 20);
            self.next = 0;
        }
        let line = self.lines[self.next];
        self.next += 1;
        if line.kind != Kind::Result {
            return Bytes::from_static(line.bytes);
        }
        let mut bytes = line.bytes.to_vec();
        let action = SendAction {
            chat_id: "4455".into(),
            content: "ok".into(),
            ..SendAction::default()
        };
        let id = self.gw.send(self.now, action, None).unwrap();
        while self.gw.poll_output().is_some() {}
        let digits = &mut bytes[RESULT_ID_AT..RESULT_ID_AT + 32];
        assert_eq!(id.0.len(), 32);
        digits.copy_from_slice(id.0.as_bytes());
        // A library's payload is a shared buffer already: made so here (a clone of a
        // `Bytes` built from a `Vec` allocates its reference count), not in the timed part.
        let bytes = Bytes::from(bytes);
        drop(bytes.clone());
        bytes
    }
}

/// Benches the gateway on the lines of `kinds`, one line per iteration.
fn bench_gateway(bencher: Bencher, kinds: &[Kind]) {
    let run = RefCell::new(GatewayRun::new(kinds));
    bencher
        .with_inputs(|| run.borrow_mut().next_input())
        .input_counter(|line: &Bytes| BytesCount::of_slice(line))
        .counter(ItemsCount::new(1usize))
        .bench_local_values(|line| {
            let mut run = run.borrow_mut();
            let now = run.now;
            run.gw.handle_input(now, line);
            assert_eq!(gateway_app(&mut run.gw, now), 1);
        });
    assert!(run.borrow().gw.in_flight() <= SAMPLE as usize);
}

// ---------------------------------------------------------------------------------------
// The connector

/// Python's `json.dumps` of an object of strings or nested objects, in the given key
/// order (Python dicts keep insertion order), with its default separators `", "`, `": "`.
enum Py<'a> {
    Str(&'a str),
    Obj(Vec<(&'a str, Py<'a>)>),
}

fn py_dumps(out: &mut String, value: &Py<'_>) {
    match value {
        Py::Str(s) => py_str(out, s),
        Py::Obj(fields) => {
            out.push('{');
            for (i, (key, item)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                py_str(out, key);
                out.push_str(": ");
                py_dumps(out, item);
            }
            out.push('}');
        }
    }
}

/// The gateway's reply to each corpus line, as the reference writes it: a `send` to the
/// inbound's chat, a `typing` in the latest chat per result, a `follow_up` per
/// passthrough; each line with its newline. They lie one after another in one buffer,
/// as the corpus lines the floor reads do: a reply in a heap block of its own would
/// start with a cache miss the floor's lines do not have (a driver's message is fresh
/// in the cache, having just been read).
static REPLIES: LazyLock<Vec<(&'static [u8], Kind)>> = LazyLock::new(|| {
    let replies = replies();
    let all: &'static [u8] = replies
        .iter()
        .flat_map(|(r, _)| r)
        .copied()
        .collect::<Vec<u8>>()
        .leak();
    let mut rest = all;
    replies
        .iter()
        .map(|(r, kind)| {
            let (reply, tail) = rest.split_at(r.len());
            rest = tail;
            (reply, *kind)
        })
        .collect()
});

fn replies() -> Vec<(Vec<u8>, Kind)> {
    let mut ids = SplitMix64::new(0xC0FFEE);
    let mut chat = String::from("4455");
    let mut platform = "discord";
    LINES
        .iter()
        .map(|line| {
            let frame: Value = serde_json::from_slice(line.bytes).unwrap();
            let mut action = String::new();
            match line.kind {
                Kind::Inbound | Kind::InboundBuffered => {
                    let event = &frame["event"];
                    let source = &event["source"];
                    let text = event["text"].as_str().unwrap();
                    chat = source["chat_id"].as_str().unwrap().to_owned();
                    platform = IDENTITIES
                        .iter()
                        .find(|(p, _)| source["platform"] == *p)
                        .unwrap()
                        .0;
                    let content = format!("Re: {text} \u{2014} noted \u{2705}");
                    let field = |v: &'static str| source[v].as_str().unwrap();
                    let send = Py::Obj(vec![
                        ("op", Py::Str("send")),
                        ("chat_id", Py::Str(&chat)),
                        ("content", Py::Str(&content)),
                        ("reply_to", Py::Str(event["message_id"].as_str().unwrap())),
                        (
                            "metadata",
                            Py::Obj(vec![
                                ("scope_id", Py::Str(field("scope_id"))),
                                ("user_id", Py::Str(field("user_id"))),
                            ]),
                        ),
                    ]);
                    py_dumps(&mut action, &send);
                }
                Kind::Result => {
                    let typing =
                        Py::Obj(vec![("op", Py::Str("typing")), ("chat_id", Py::Str(&chat))]);
                    py_dumps(&mut action, &typing);
                }
                Kind::Passthrough | Kind::PassthroughBuffered => {
                    platform = "discord";
                    let session_key = format!("agent:main:discord:group:{chat}");
                    let follow_up = Py::Obj(vec![
                        ("op", Py::Str("follow_up")),
                        ("session_key", Py::Str(&session_key)),
                        ("kind", Py::Str("discord.interaction_token")),
                        ("content", Py::Str("Working on it \u{2026} \u{1F680}")),
                        ("metadata", Py::Obj(Vec::new())),
                    ]);
                    py_dumps(&mut action, &follow_up);
                }
            }
            let bot = IDENTITIES.iter().find(|(p, _)| *p == platform).unwrap().1;
            let mut request_id = String::new();
            write!(request_id, "{:016x}{:016x}", ids.next_u64(), ids.next_u64()).unwrap();
            let mut out = String::from("{\"type\": \"outbound\", \"requestId\": ");
            py_str(&mut out, &request_id);
            out.push_str(", \"action\": ");
            out.push_str(&action);
            out.push_str(", \"platform\": ");
            py_str(&mut out, platform);
            out.push_str(", \"botId\": ");
            py_str(&mut out, bot);
            out.push_str("}\n");
            (out.into_bytes(), line.kind)
        })
        .collect()
}

/// A connector that accepted the three hellos and answered them.
fn handshaken_connector() -> ConnectorMachine {
    let now = Instant::now();
    let mut conn = ConnectorMachine::new(ConnectorConfig::default(), now);
    for (platform, bot) in IDENTITIES {
        let hello = format!(
            "{{\"type\": \"hello\", \"platform\": \"{platform}\", \"botId\": \"{bot}\"}}\n"
        );
        conn.handle_input(now, hello.as_bytes());
        while let Some(output) = conn.poll_output() {
            if let ConnectorOutput::Event(ConnectorEvent::Hello { identity }) = output {
                conn.send_descriptor(now, CapabilityDescriptor::new(identity.platform, "x"))
                    .unwrap();
            }
        }
    }
    assert_eq!(conn.identities().len(), 3);
    conn
}

/// The application's side of the connector: answers every request at once.
fn connector_app(conn: &mut ConnectorMachine, now: Instant) -> usize {
    let mut events = 0;
    while let Some(output) = conn.poll_output() {
        if let ConnectorOutput::Event(event) = output {
            events += 1;
            match event {
                ConnectorEvent::Outbound { request, .. } => conn
                    .respond(now, &request.request_id, ActionResult::ok())
                    .unwrap(),
                ConnectorEvent::Diagnostic(d) => panic!("diagnostic {d:?}"),
                other => {
                    black_box(other);
                }
            }
        } else {
            let _ = black_box(output);
        }
    }
    events
}

/// Benches the connector on the replies to the lines of `kinds`, one per iteration.
fn bench_connector(bencher: Bencher, kinds: &[Kind]) {
    let replies: Vec<Bytes> = REPLIES
        .iter()
        .filter(|(_, k)| kinds.contains(k))
        .map(|(r, _)| Bytes::from_static(r))
        .collect();
    let mut next = 0;
    let now = Instant::now();
    let mut conn = handshaken_connector();
    bencher
        .with_inputs(|| {
            let reply = replies[next].clone();
            next = (next + 1) % replies.len();
            reply
        })
        .input_counter(|reply: &Bytes| BytesCount::of_slice(reply))
        .counter(ItemsCount::new(1usize))
        .bench_local_values(|reply| {
            conn.handle_input(now, reply);
            assert_eq!(connector_app(&mut conn, now), 1);
        });
}

// ---------------------------------------------------------------------------------------
// The benches

const ALL: [Kind; 5] = [
    Kind::Inbound,
    Kind::InboundBuffered,
    Kind::Result,
    Kind::Passthrough,
    Kind::PassthroughBuffered,
];

/// The least work any validating JSON reader must do.
#[divan::bench(sample_count = SAMPLES, sample_size = SAMPLE)]
fn floor(bencher: Bencher) {
    let mut next = 0;
    bencher
        .with_inputs(|| {
            let line = LINES[next].bytes;
            next = (next + 1) % LINES.len();
            line
        })
        .input_counter(|line: &&[u8]| BytesCount::of_slice(*line))
        .counter(ItemsCount::new(1usize))
        .bench_local_refs(|line| {
            serde_json::from_slice::<serde::de::IgnoredAny>(line).unwrap();
        });
}

/// The codec alone: one decoder, a line per push, its frame taken.
#[divan::bench(sample_count = SAMPLES, sample_size = SAMPLE)]
fn decoder(bencher: Bencher) {
    let mut next = 0;
    let mut decoder = FrameDecoder::new();
    bencher
        .with_inputs(|| {
            let line = LINES[next].bytes;
            next = (next + 1) % LINES.len();
            line
        })
        .input_counter(|line: &&[u8]| BytesCount::of_slice(*line))
        .counter(ItemsCount::new(1usize))
        .bench_local_refs(|line| {
            decoder.push_bytes(Bytes::from_static(line));
            black_box(decoder.next_frame().unwrap().unwrap());
        });
}

/// The gateway's receive path, the application acking.
#[divan::bench(sample_count = SAMPLES, sample_size = SAMPLE)]
fn gateway_receive(bencher: Bencher) {
    bench_gateway(bencher, &ALL);
}

/// The connector's receive path, the application answering every request.
#[divan::bench(sample_count = SAMPLES, sample_size = SAMPLE)]
fn connector_receive(bencher: Bencher) {
    bench_connector(bencher, &ALL);
}

/// One frame type at a time, for its allocations.
#[divan::bench(sample_count = 20, sample_size = SAMPLE, args = ALL)]
fn gateway_frame_type(bencher: Bencher, kind: Kind) {
    bench_gateway(bencher, &[kind]);
}

/// The connector's replies by the kind of corpus line they answer (`Inbound`: a `send`,
/// `Result`: a `typing`, `Passthrough`: a `follow_up`), for their allocations.
#[divan::bench(sample_count = 20, sample_size = SAMPLE, args = [Kind::Inbound, Kind::Result, Kind::Passthrough])]
fn connector_frame_type(bencher: Bencher, reply_to: Kind) {
    let kinds = match reply_to {
        Kind::Inbound | Kind::InboundBuffered => [Kind::Inbound, Kind::InboundBuffered],
        Kind::Result => [Kind::Result, Kind::Result],
        Kind::Passthrough | Kind::PassthroughBuffered => {
            [Kind::Passthrough, Kind::PassthroughBuffered]
        }
    };
    bench_connector(bencher, &kinds);
}

/// A frame of `mib` MiB through the gateway: in 4 KiB messages, or whole. A fresh
/// handshaken gateway per iteration, made outside the timed section. 100 samples: with
/// 20, a 1 MiB bench lasted 10 ms, and one slow spell of the machine covered all of one
/// side and none of the other.
#[divan::bench_group(sample_count = 100, sample_size = 1)]
mod chunked {
    use super::*;

    /// `gen_big(mib MiB)` with its newline.
    fn big(mib: usize) -> Vec<u8> {
        let mut line = corpus::gen_big(mib << 20).into_bytes();
        line.push(b'\n');
        line
    }

    fn bench(bencher: Bencher, mib: usize, chunk: usize) {
        let frame = big(mib);
        let now = Instant::now();
        bencher
            .counter(BytesCount::of_slice(&frame))
            .with_inputs(|| handshaken_gateway(32 << 20))
            .bench_local_values(|mut gw| {
                for message in frame.chunks(chunk) {
                    gw.handle_input(now, message);
                    gateway_app(&mut gw, now);
                }
                assert_eq!(gw.unacked(), 0);
                gw
            });
    }

    #[divan::bench(args = [1, 4, 16])]
    fn in_4k_messages(bencher: Bencher, mib: usize) {
        bench(bencher, mib, 4096);
    }

    #[divan::bench(args = [1, 4, 16])]
    fn whole(bencher: Bencher, mib: usize) {
        bench(bencher, mib, usize::MAX);
    }
}

/// The floor on the connector's input (the replies, in order): context for
/// `connector_receive`, whose goal is set against the corpus's floor. Python's escapes and
/// separators make a reply cost the floor more per byte than a corpus line.
#[divan::bench(sample_count = SAMPLES, sample_size = SAMPLE)]
fn connector_floor(bencher: Bencher) {
    let mut next = 0;
    bencher
        .with_inputs(|| {
            let reply = REPLIES[next].0;
            next = (next + 1) % REPLIES.len();
            reply
        })
        .input_counter(|line: &&[u8]| BytesCount::of_slice(*line))
        .counter(ItemsCount::new(1usize))
        .bench_local_refs(|line| {
            serde_json::from_slice::<serde::de::IgnoredAny>(line).unwrap();
        });
}

/// The codec alone on the connector's input: what `connector_receive` spends beyond it
/// is the machine's and the application's answer.
#[divan::bench(sample_count = SAMPLES, sample_size = SAMPLE)]
fn connector_decoder(bencher: Bencher) {
    let mut next = 0;
    let mut decoder = FrameDecoder::new();
    bencher
        .with_inputs(|| {
            let reply = Bytes::from_static(REPLIES[next].0);
            next = (next + 1) % REPLIES.len();
            reply
        })
        .input_counter(|line: &Bytes| BytesCount::of_slice(line))
        .counter(ItemsCount::new(1usize))
        .bench_local_values(|line| {
            decoder.push_bytes(line);
            black_box(decoder.next_frame().unwrap().unwrap());
        });
}

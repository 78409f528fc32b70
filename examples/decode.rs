//! Reads newline-delimited relay frames from stdin and writes one JSON line per non-blank
//! input line, in order: the frame re-encoded in canonical form, or
//! `{"error":{"kind":...,"line":N,"message":...}}`.
//!
//! The output is the same however stdin is chunked, and memory stays bounded by the frame
//! limit (1 MiB) even for a line of hundreds of megabytes. Exit status 0 unless stdin
//! cannot be read (1), 64 on a usage error (`--help`).
//!
//! ```text
//! cargo run --example decode < capture.ndjson
//! ```

#[path = "common/cli.rs"]
mod cli;

use std::io::{self, Read, Write};
use std::process::ExitCode;

use relay_machine::codec::{FrameDecoder, encode_into};

const HELP: &str = "\
usage: decode < capture.ndjson

Reads newline-delimited relay frames from stdin; writes one JSON line per non-blank input
line: the frame in canonical form, or {\"error\":{\"kind\":...,\"line\":N,\"message\":...}}.
Takes no flags but -h/--help (this text).
Exit codes: 0 ok, 1 stdin (or stdout) failed, 64 usage error.
";

fn main() -> ExitCode {
    if let Some(arg) = cli::args(HELP).first() {
        return cli::usage_error("decode", HELP, &format!("unknown argument {arg}"));
    }
    let mut stdin = io::stdin().lock();
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut decoder = FrameDecoder::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut line = Vec::new();
    loop {
        let n = match stdin.read(&mut chunk) {
            Ok(0) => {
                decoder.finish();
                break;
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("decode: cannot read stdin: {e}");
                return ExitCode::FAILURE;
            }
        };
        decoder.push(&chunk[..n]);
        if let Err(e) = drain(&mut decoder, &mut line, &mut out) {
            return write_failed(&e);
        }
    }
    match drain(&mut decoder, &mut line, &mut out).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => write_failed(&e),
    }
}

fn drain(decoder: &mut FrameDecoder, line: &mut Vec<u8>, out: &mut impl Write) -> io::Result<()> {
    while let Some(item) = decoder.next_frame() {
        line.clear();
        match item {
            Ok(frame) => encode_into(&frame, line),
            Err(e) => {
                let error = serde_json::json!({
                    "error": { "kind": e.kind.as_str(), "line": e.line, "message": e.to_string() }
                });
                serde_json::to_writer(&mut *line, &error)?;
                line.push(b'\n');
            }
        }
        out.write_all(line)?;
    }
    Ok(())
}

/// A reader that stopped reading (`decode | head`) is not a failure.
fn write_failed(e: &io::Error) -> ExitCode {
    if e.kind() == io::ErrorKind::BrokenPipe {
        ExitCode::SUCCESS
    } else {
        eprintln!("decode: cannot write stdout: {e}");
        ExitCode::FAILURE
    }
}

//! The fast path: the frames the two machines receive most, read by hand in one pass over
//! the line — `inbound`, `outbound_result` and `passthrough_forward` (a gateway's) and
//! `outbound` (a connector's; its `send`, `typing`, `follow_up` and `edit` actions by
//! hand, any other action by serde_json from its slice).
//!
//! Why: serde_json's derived visitors cost about three times what serde_json spends just
//! to read the same JSON (`IgnoredAny`), even for a struct of borrowed strings — in
//! checking every key against every field, in building each field in a local and moving
//! it, in validating each string's UTF-8 again. A frame of the protocol has a fixed shape,
//! so a reader that knows it can write each value straight into its place.
//!
//! The contract that keeps this safe: [`frame`] returns `Some` only for a line that
//! serde_json, through the general path, decodes without error to *the same frame*
//! (`PartialEq`), and `None` whenever it is not certain — an unusual key order, an escape
//! in a key, a repeated key, a type it does not read itself, anything malformed. `None`
//! costs only the time spent so far: the line then goes through the general path, which
//! decides, and whose errors and messages are therefore exactly what they were.
//! Sub-values the fast path does not model (media lists, a result's extra keys, an
//! action's `metadata` other than strings, an unusual action, ...) are
//! handed to serde_json on their own slice of the line. `tests/fast_path.rs` and the
//! `fast_path` fuzz target hold the two paths to agreeing.
#![deny(clippy::indexing_slicing)]

mod inbound;
mod outbound;

use bytes::Bytes;
use serde::Deserialize;

use crate::wire::{BufferId, Frame, Str, text};

/// Deeper nesting than this goes the general way, which has its own limit.
const MAX_DEPTH: usize = 64;

/// The frame `line` holds, if the fast path can tell for certain; `line` lies within
/// `source`, of which unescaped long strings become slices.
pub(super) fn frame(line: &[u8], source: &Bytes) -> Option<Frame> {
    let (frame, end) = read(line, source)?;
    // Only whitespace may follow the object (the decoder has already cut the newline).
    (end == line.len()).then_some(frame)
}

/// The frame of the line `input` starts with, and the index of the newline that ends
/// the line, if the fast path can tell for certain: the decoder's way for a message of
/// whole lines, which spares it searching each line for its newline before reading it.
/// The reader stops at the first newline whatever it reads (no JSON token, string or
/// whitespace it accepts holds one), so it reads exactly what [`frame`] reads of the line
/// cut there, and decides the same.
#[inline]
pub(super) fn frame_line(input: &[u8], source: &Bytes) -> Option<(Frame, usize)> {
    let (frame, end) = read(input, source)?;
    (input.get(end) == Some(&b'\n')).then_some((frame, end))
}

/// The frame `text` starts with, and where the whitespace after it ends.
fn read(text: &[u8], source: &Bytes) -> Option<(Frame, usize)> {
    let mut r = Reader {
        text,
        at: 0,
        source,
        line: None,
    };
    r.open(b'{')?;
    if r.key()? != b"type" {
        return None;
    }
    let frame = match r.raw_string()? {
        (b"inbound", false) => r.inbound().map(Frame::Inbound),
        (b"outbound", false) => r.outbound().map(Frame::Outbound),
        (b"outbound_result", false) => r.outbound_result().map(Frame::OutboundResult),
        (b"passthrough_forward", false) => r.passthrough().map(Frame::PassthroughForward),
        _ => None,
    }?;
    r.ws();
    Some((frame, r.at))
}

#[cfg(feature = "fuzzing")]
thread_local! {
    /// Values this thread's readers handed to serde_json (see [`Reader::serde`]): for the
    /// tests that hold the usual frames to being read wholly by hand.
    pub(crate) static SERDE_VALUES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Keys seen in one object, by bit: a repeated key is an error on the general path.
#[derive(Default)]
struct Seen(u64);

impl Seen {
    fn first(&mut self, bit: u32) -> Option<()> {
        let mask = 1u64 << bit;
        let fresh = self.0 & mask == 0;
        self.0 |= mask;
        fresh.then_some(())
    }
}

struct Reader<'a> {
    /// The line: bytes, not yet known to be UTF-8. Every string the reader passes over is
    /// checked as it is scanned (see [`find_special`]), and every byte outside strings
    /// must be ASCII JSON syntax, so a line the reader accepts is UTF-8 throughout.
    text: &'a [u8],
    at: usize,
    source: &'a Bytes,
    /// The line as text, once a part of it was needed as text: see [`Reader::text_of`].
    line: Option<&'a str>,
}

impl<'a> Reader<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text
    }

    /// `raw`, a part of the line, as text. A `String` (or a decoded escape's
    /// surroundings) cannot be made of bytes without checking them again (there is no
    /// `unsafe` here), and many small checks cost more than one of the line: so the first
    /// part needed as text checks the line once, up to its newline, and every later part
    /// is a slice of it. A line made only of `Str`s and bytes (a gateway's `inbound`,
    /// `passthrough_forward`) is never checked again at all.
    fn text_of(&mut self, raw: &'a [u8]) -> Option<&'a str> {
        let start = (raw.as_ptr() as usize).checked_sub(self.text.as_ptr() as usize)?;
        self.line_from(start)?.get(..raw.len())
    }

    /// The line as text from byte `start` (a character boundary) to its end.
    fn line_from(&mut self, start: usize) -> Option<&'a str> {
        let line = match self.line {
            Some(line) => line,
            None => {
                let end = memchr::memchr(b'\n', self.text).unwrap_or(self.text.len());
                let line = std::str::from_utf8(self.text.get(..end)?).ok()?;
                *self.line.insert(line)
            }
        };
        line.get(start..)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    /// Skips JSON whitespace, but for a newline: the end of the line (see [`frame_line`]).
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// The next non-blank byte, consumed.
    fn next_byte(&mut self) -> Option<u8> {
        self.ws();
        let b = self.peek()?;
        self.at += 1;
        Some(b)
    }

    fn open(&mut self, b: u8) -> Option<()> {
        (self.next_byte()? == b).then_some(())
    }

    /// After a value in an object: `true` if another key follows, `false` at the end.
    fn more(&mut self) -> Option<bool> {
        match self.next_byte()? {
            b',' => Some(true),
            b'}' => Some(false),
            _ => None,
        }
    }

    /// An object's first key, or `None` for `{}` as for anything unexpected: callers
    /// that accept an empty object check for it first.
    fn key(&mut self) -> Option<&'a [u8]> {
        match self.raw_string()? {
            (key, false) => (self.next_byte()? == b':').then_some(key),
            // A key spelled with escapes: rare enough to leave to serde.
            (_, true) => None,
        }
    }

    /// Reads the members of an object whose `{` was consumed: `member` is called with
    /// each key, and must consume its value.
    fn members(&mut self, mut member: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.ws();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        loop {
            let key = self.key()?;
            member(self, key)?;
            if !self.more()? {
                return Some(());
            }
        }
    }

    /// A string's raw text between its quotes, and whether it contains escapes (which are
    /// checked, not decoded). Its other characters are checked as UTF-8.
    fn raw_string(&mut self) -> Option<(&'a [u8], bool)> {
        self.open(b'"')?;
        let start = self.at;
        let mut escaped = false;
        loop {
            self.at += find_special(self.bytes().get(self.at..)?)?;
            match self.peek()? {
                b'"' => {
                    let raw = self.bytes().get(start..self.at)?;
                    self.at += 1;
                    return Some((raw, escaped));
                }
                b'\\' => {}
                0x80.. => {
                    self.at += utf8_char(self.bytes().get(self.at..)?)?;
                    continue;
                }
                // A raw control character, which JSON does not allow in a string.
                _ => return None,
            }
            escaped = true;
            self.at += 1;
            match self.peek()? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.at += 1,
                b'u' => {
                    let hex = self.bytes().get(self.at + 1..self.at + 5)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    self.at += 5;
                }
                _ => return None,
            }
        }
    }

    /// A string value's text: its raw text, a slice of the line, when it has no escapes
    /// (most have none); else its decoded text. An escaped string is not checked escape
    /// by escape and then decoded, as [`raw_string`](Self::raw_string) and [`unescape`]
    /// would do: [`decode`] finds its end as it decodes and checks it (Python writes every
    /// non-ASCII character as `\uXXXX`, so a reply's text is dense with escapes, and a
    /// second walk over them cost as much as the first).
    fn string_text(&mut self) -> Option<Result<&'a [u8], String>> {
        self.open(b'"')?;
        let start = self.at;
        let rest = self.bytes().get(start..)?;
        let mut at = 0;
        loop {
            at += find_special(rest.get(at..)?)?;
            match rest.get(at)? {
                b'"' => {
                    self.at = start + at + 1;
                    return rest.get(..at).map(Ok);
                }
                b'\\' => {
                    // The rest of the line, as text: where the string ends is not known yet.
                    let text = self.line_from(start)?;
                    let (decoded, end) = decode(text);
                    // Only a closing quote ends it well (not the line's end, nor a fault).
                    text.as_bytes().get(end).filter(|&&b| b == b'"')?;
                    self.at = start + end + 1;
                    return decoded.map(Err);
                }
                0x80.. => at += utf8_char(rest.get(at..)?)?,
                // A raw control character, which JSON does not allow in a string.
                _ => return None,
            }
        }
    }

    /// A string value as a [`Str`]: a slice of the line when it has no escapes.
    fn string(&mut self) -> Option<Str> {
        Some(match self.string_text()? {
            Ok(raw) => text::from_source(self.source, raw),
            Err(decoded) => Str::from(decoded),
        })
    }

    /// `null`, consumed, if it is next.
    fn null(&mut self) -> Option<bool> {
        self.ws();
        if self.bytes().get(self.at..)?.starts_with(b"null") {
            self.at += 4;
            return Some(true);
        }
        Some(false)
    }

    fn optional_string(&mut self) -> Option<Option<Str>> {
        if self.null()? {
            return Some(None);
        }
        self.string().map(Some)
    }

    fn boolean(&mut self) -> Option<bool> {
        self.ws();
        let rest = self.bytes().get(self.at..)?;
        if rest.starts_with(b"true") {
            self.at += 4;
            Some(true)
        } else if rest.starts_with(b"false") {
            self.at += 5;
            Some(false)
        } else {
            None
        }
    }

    fn optional_boolean(&mut self) -> Option<Option<bool>> {
        if self.null()? {
            return Some(None);
        }
        self.boolean().map(Some)
    }

    /// The text of the next value, skipped (and checked).
    fn value_text(&mut self) -> Option<&'a [u8]> {
        self.ws();
        let start = self.at;
        self.skip(0)?;
        self.text.get(start..self.at)
    }

    /// The next value decoded by serde_json from its own slice: for the parts of a frame
    /// the fast path does not model.
    fn serde<T: Deserialize<'a>>(&mut self) -> Option<T> {
        #[cfg(feature = "fuzzing")]
        SERDE_VALUES.with(|n| n.set(n.get() + 1));
        let text = self.value_text()?;
        // Its strings are checked UTF-8 (it was skipped), so serde_json reads it from the
        // bytes exactly as it would from text.
        text::with_source(self.source, || serde_json::from_slice(text).ok())
    }

    /// Skips one value, checking it is well-formed JSON.
    fn skip(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match self.peek()? {
            b'"' => self.raw_string().map(drop),
            b'{' => {
                self.at += 1;
                self.members(|r, _| r.skip(depth + 1))
            }
            b'[' => {
                self.at += 1;
                self.ws();
                if self.peek()? == b']' {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    self.skip(depth + 1)?;
                    match self.next_byte()? {
                        b',' => {}
                        b']' => return Some(()),
                        _ => return None,
                    }
                }
            }
            b't' | b'f' => self.boolean().map(drop),
            b'n' => self.null()?.then_some(()),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// Skips a number: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) -> Option<()> {
        if self.peek()? == b'-' {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }

    /// `bufferId`: a non-empty string is an id; `null` and `""` mean none. Integers (which
    /// the general path accepts) are left to it.
    fn buffer_id(&mut self) -> Option<Option<BufferId>> {
        if self.null()? {
            return Some(None);
        }
        let id = self.string()?;
        Some((!id.is_empty()).then_some(BufferId(id)))
    }
}

/// A struct-typed value, accepted only as an object (as the general path does).
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::wire::tagged::object(d).map(Object)
    }
}

/// The text a JSON string's raw contents stand for; `None` for a lone surrogate, which
/// the general path deals with, and for anything JSON does not allow in a string (a raw
/// control character, an unknown escape, a bare quote).
fn unescape(raw: &str) -> Option<String> {
    match decode(raw) {
        (decoded, end) if end == raw.len() => decoded,
        _ => None,
    }
}

/// Decodes string contents from the start of `text` up to the first quote not escaped, or
/// the end of `text`: the decoded text, and where it stopped (the quote's index, or
/// `text.len()`). The text is `None`, and the index where it stopped is then no string's
/// end, for a lone surrogate (which the general path deals with) and anything JSON does
/// not allow in a string (a raw control character, an unknown escape). The plain runs
/// between escapes are found eight bytes at a time and copied whole.
fn decode(text: &str) -> (Option<String>, usize) {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len().min(256));
    let mut at = 0;
    while let Some(&b) = bytes.get(at) {
        let Some(rest) = text.get(at..) else {
            return (None, at);
        };
        match b {
            b'"' => return (Some(out), at),
            b'\\' => match bytes.get(at + 1..).and_then(escape) {
                Some((c, len)) => {
                    out.push(c);
                    at += 1 + len;
                }
                None => return (None, at),
            },
            0x80.. => {
                let Some(c) = rest.chars().next() else {
                    return (None, at);
                };
                out.push(c);
                at += c.len_utf8();
            }
            _ => {
                let run = find_special(rest.as_bytes()).unwrap_or(rest.len());
                if run == 0 {
                    // A raw control character.
                    return (None, at);
                }
                // The run ends before a non-ASCII byte or at the end: whole characters.
                out.push_str(rest.get(..run).unwrap_or_default());
                at += run;
            }
        }
    }
    (Some(out), at)
}

/// The character an escape stands for, from the bytes after its backslash, and how many
/// of them it takes; `None` for a lone surrogate or anything malformed.
fn escape(after: &[u8]) -> Option<(char, usize)> {
    Some(match after.first()? {
        b'"' => ('"', 1),
        b'\\' => ('\\', 1),
        b'/' => ('/', 1),
        b'b' => ('\u{8}', 1),
        b'f' => ('\u{c}', 1),
        b'n' => ('\n', 1),
        b'r' => ('\r', 1),
        b't' => ('\t', 1),
        b'u' => {
            let unit = hex4(after.get(1..5)?)?;
            match unit {
                0xD800..=0xDBFF => {
                    let [b'\\', b'u', low @ ..] = after.get(5..11)? else {
                        return None;
                    };
                    let low = hex4(low)?;
                    if !(0xDC00..=0xDFFF).contains(&low) {
                        return None;
                    }
                    let c = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                    (char::from_u32(c)?, 11)
                }
                0xDC00..=0xDFFF => return None,
                _ => (char::from_u32(unit)?, 5),
            }
        }
        _ => return None,
    })
}

/// Four hex digits' value.
fn hex4(digits: &[u8]) -> Option<u32> {
    if digits.len() != 4 {
        return None;
    }
    digits
        .iter()
        .try_fold(0, |unit, &d| Some(unit << 4 | char::from(d).to_digit(16)?))
}

/// Index of the first `"`, `\\`, control character or non-ASCII byte in `bytes`: what
/// ends a run of plain ASCII string text. Eight bytes at a time, as serde_json scans: a
/// byte equal to `x` is a zero byte of `word ^ x`, and a zero byte (or one below `0x20`)
/// is the only kind that borrows into its high bit when `0x01` (or `0x20`) is subtracted
/// from every byte; a non-ASCII byte has its high bit set already. Only the lowest
/// flagged byte is exact, which is the one wanted.
///
/// Stopping at non-ASCII bytes is what spares the reader a UTF-8 check of the whole line
/// (serde_json's `IgnoredAny` makes none): each such character is checked where it is met
/// ([`utf8_char`]), and a line of ASCII costs nothing more than the scan.
fn find_special(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().ok()?);
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        let flagged = (below(quote, 1) | below(backslash, 1) | below(word, 0x20) | word) & HIGH;
        if flagged != 0 {
            return Some(offset + flagged.trailing_zeros() as usize / 8);
        }
        offset += 8;
    }
    let tail = chunks.remainder().iter();
    tail.map(|&b| b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b))
        .position(|special| special)
        .map(|at| offset + at)
}

/// The length of the UTF-8 character `bytes` starts with, whose first byte is not ASCII;
/// `None` if it is not a well-formed one (Unicode's table 3-7: no overlong forms, no
/// surrogates, nothing above U+10FFFF), as `std::str::from_utf8` judges it.
fn utf8_char(bytes: &[u8]) -> Option<usize> {
    let continuation = |i: usize| bytes.get(i).is_some_and(|&b| b & 0xC0 == 0x80);
    let second =
        |range: std::ops::RangeInclusive<u8>| bytes.get(1).is_some_and(|b| range.contains(b));
    let len = match *bytes.first()? {
        0xC2..=0xDF => 2,
        0xE0 if second(0xA0..=0xBF) => 3,
        0xE1..=0xEC | 0xEE..=0xEF if continuation(1) => 3,
        0xED if second(0x80..=0x9F) => 3,
        0xF0 if second(0x90..=0xBF) => 4,
        0xF1..=0xF3 if continuation(1) => 4,
        0xF4 if second(0x80..=0x8F) => 4,
        _ => return None,
    };
    (2..len)
        .all(continuation)
        .then_some(len)
        .filter(|_| continuation(1))
}

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

use crate::wire::{BufferId, Frame, Outbound, Str, text};

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

/// [`frame_line`] for a line that is an `outbound`, the frame a connector receives most:
/// its box and the index of its newline, returned in two registers where a [`Frame`] is
/// returned through memory and then moved through the decoder's and the machine's
/// matches, a load that waits on several pending stores at each step. `None` for any
/// other line, and for what `frame_line` would not read.
pub(super) fn outbound_line(input: &[u8], source: &Bytes) -> Option<(Box<Outbound>, usize)> {
    let mut r = Reader::new(input, source);
    r.open(b'{')?;
    static OUTBOUND: Keys<1> = Keys::strings([b"outbound"]);
    if r.known_key(&TYPE, &mut 0)? != 0 || r.known_string(&OUTBOUND)? != 0 {
        return None;
    }
    let outbound = r.outbound()?;
    r.ws();
    (input.get(r.at) == Some(&b'\n')).then_some((outbound, r.at))
}

/// A frame's first key: the fast path reads only frames that start with their type.
static TYPE: Keys<1> = Keys::new([b"type"]);

/// The frame `text` starts with, and where the whitespace after it ends.
fn read(text: &[u8], source: &Bytes) -> Option<(Frame, usize)> {
    let mut r = Reader::new(text, source);
    r.open(b'{')?;
    if r.known_key(&TYPE, &mut 0)? != 0 {
        return None;
    }
    static TYPES: Keys<4> = Keys::strings([
        b"inbound",
        b"outbound",
        b"outbound_result",
        b"passthrough_forward",
    ]);
    let frame = match r.known_string(&TYPES)? {
        0 => r.inbound().map(Frame::Inbound),
        1 => r.outbound().map(Frame::Outbound),
        2 => r.outbound_result().map(Frame::OutboundResult),
        3 => r.passthrough().map(Frame::PassthroughForward),
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

/// The keys of one kind of object that a reader knows, in the order writers put them
/// (see [`Reader::known_key`]); or the strings a value is expected to be one of (see
/// [`Reader::known_string`]).
struct Keys<const N: usize>([Key; N]);

impl<const N: usize> Keys<N> {
    /// Keys: each pattern is the quoted name and its colon.
    const fn new(names: [&'static [u8]; N]) -> Self {
        Self::of(names, true)
    }

    /// String values: each pattern is the quoted name.
    const fn strings(names: [&'static [u8]; N]) -> Self {
        Self::of(names, false)
    }

    const fn of(names: [&'static [u8]; N], colon: bool) -> Self {
        let mut keys = [Key::new(b"", false); N];
        let mut i = 0;
        while i < N {
            #[expect(
                clippy::indexing_slicing,
                reason = "`i` is below `N`, both arrays' length (a `const` loop cannot use iterators)"
            )]
            {
                keys[i] = Key::new(names[i], colon);
            }
            i += 1;
        }
        Self(keys)
    }
}

/// A known key (or string), with the sixteen bytes its member (or value) starts with when
/// written as usual: `"name":` (the key, its quotes and the colon right after; for a
/// string, `"name"`), and a mask of the bytes of those sixteen that hold it. Names are
/// plain ASCII (no quote, backslash, control or non-ASCII byte), so that a pattern's
/// closing quote is where the scanner would stop too.
#[derive(Clone, Copy)]
struct Key {
    name: &'static [u8],
    /// The pattern's length, or 0 for a name too long for sixteen bytes.
    len: usize,
    pattern: [u64; 2],
    mask: [u64; 2],
}

impl Key {
    const fn new(name: &'static [u8], colon: bool) -> Self {
        let mut pattern = [0u8; 16];
        let mut mask = [0u8; 16];
        let quoted = name.len() + 2;
        let len = quoted + colon as usize;
        if len > 16 {
            return Self {
                name,
                len: 0,
                pattern: [0; 2],
                mask: [0; 2],
            };
        }
        let mut i = 0;
        while i < len {
            #[expect(
                clippy::indexing_slicing,
                reason = "`i` is below `len`, at most 16, the arrays' length, and `i - 1` below `name.len()` where read"
            )]
            {
                pattern[i] = if i == 0 || i == quoted - 1 {
                    b'"'
                } else if i == quoted {
                    b':'
                } else {
                    name[i - 1]
                };
                mask[i] = 0xFF;
            }
            i += 1;
        }
        Self {
            name,
            len,
            pattern: words(pattern),
            mask: words(mask),
        }
    }
}

/// Sixteen bytes as two little-endian words.
const fn words(bytes: [u8; 16]) -> [u64; 2] {
    let [
        a0,
        a1,
        a2,
        a3,
        a4,
        a5,
        a6,
        a7,
        b0,
        b1,
        b2,
        b3,
        b4,
        b5,
        b6,
        b7,
    ] = bytes;
    [
        u64::from_le_bytes([a0, a1, a2, a3, a4, a5, a6, a7]),
        u64::from_le_bytes([b0, b1, b2, b3, b4, b5, b6, b7]),
    ]
}

/// Keys seen in one object, by bit: a repeated key is an error on the general path.
#[derive(Default)]
struct Seen(u64);

impl Seen {
    fn first(&mut self, bit: usize) -> Option<()> {
        // (Bits are field indices, all far below 64.)
        let mask = 1u64 << (bit % 64);
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
    /// A reader at the start of `text`, which lies within `source`.
    fn new(text: &'a [u8], source: &'a Bytes) -> Self {
        Self {
            text,
            at: 0,
            source,
            line: None,
        }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text
    }

    /// `raw`, a part of the line, as text. A `String` cannot be made of bytes without
    /// checking them again (there is no `unsafe` here), and many small checks cost more
    /// than one of the line: so the first part needed as text checks the line once, up to
    /// its newline, and every later part is a slice of it. A line made only of `Str`s and
    /// bytes (a gateway's `inbound`, `passthrough_forward`, a connector's `outbound`) is
    /// never checked again at all: an escaped string is decoded from the bytes (see
    /// [`string_text`](Self::string_text)).
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
    ///
    /// A key is short plain ASCII: its closing quote is the first special byte, and its
    /// colon mostly follows at once (`":"`) or after a space (Python's `": "`). Read so,
    /// without the string scanner's loop; any other key goes through the scanner.
    fn key(&mut self) -> Option<&'a [u8]> {
        self.ws();
        let quote = self.at;
        let start = quote + 1;
        let rest = self
            .bytes()
            .get(start..)
            .filter(|_| self.peek() == Some(b'"'))?;
        let len = find_special(rest)?;
        if let (Some(b'"'), Some(key)) = (rest.get(len), rest.get(..len)) {
            let colon = match rest.get(len + 1..len + 3) {
                Some([b':', _]) => 2,
                Some([b' ', b':']) => 3,
                _ => {
                    self.at = start + len + 1;
                    return (self.next_byte()? == b':').then_some(key);
                }
            };
            self.at = start + len + colon;
            return Some(key);
        }
        // Not plain ASCII: scanned as any string is.
        self.at = quote;
        match self.raw_string()? {
            (key, false) => (self.next_byte()? == b':').then_some(key),
            // A key spelled with escapes: rare enough to leave to serde.
            (_, true) => None,
        }
    }

    /// The next key, as its index in `keys` (`N` for a key not in it), consumed with its
    /// colon as [`key`](Self::key) consumes it; `next` is the index of the key expected
    /// (the one after the last found), and is moved on past the one found.
    ///
    /// Keys are recognised by their patterns ([`pattern_at`](Self::pattern_at)), starting
    /// with the expected key: members come in the order their writer puts them (some left
    /// out), so the first or second pattern tried is the one. That is a few instructions,
    /// where reading the key (scanning it for its closing quote, checking what follows)
    /// and then matching it against each name was a tenth of a connector's time. A
    /// pattern matches exactly where [`key`](Self::key) would read that name (a quote,
    /// the name's plain ASCII, a quote, a colon); anything else is read by `key` and
    /// looked up.
    #[inline(always)]
    fn known_key<const N: usize>(&mut self, keys: &Keys<N>, next: &mut usize) -> Option<usize> {
        self.ws();
        if let Some(found) = self.pattern_at(keys, *next) {
            *next = found + 1;
            return Some(found);
        }
        let name = self.key()?;
        let found = keys.0.iter().position(|k| k.name == name).unwrap_or(N);
        *next = found + 1;
        Some(found)
    }

    /// The next value, a string, as its index in `values` (`N` for any other string, and
    /// for one spelled with escapes), consumed as [`raw_string`](Self::raw_string)
    /// consumes it; by pattern as [`known_key`](Self::known_key) reads a key.
    #[inline(always)]
    fn known_string<const N: usize>(&mut self, values: &Keys<N>) -> Option<usize> {
        self.ws();
        if let Some(found) = self.pattern_at(values, 0) {
            return Some(found);
        }
        Some(match self.raw_string()? {
            (raw, false) => values.0.iter().position(|k| k.name == raw).unwrap_or(N),
            (_, true) => N,
        })
    }

    /// The index of the pattern of `keys` that the sixteen bytes at the reader start
    /// with, trying `first` and those after it first, consumed; compared two words
    /// masked.
    #[inline(always)]
    fn pattern_at<const N: usize>(&mut self, keys: &Keys<N>, first: usize) -> Option<usize> {
        let window = self.bytes().get(self.at..self.at + 16)?;
        let word = |at: usize| {
            window
                .get(at..at + 8)
                .and_then(|w| <[u8; 8]>::try_from(w).ok())
                .map_or(0, u64::from_le_bytes)
        };
        let (w0, w1) = (word(0), word(8));
        let here = |key: &Key| {
            let ([p0, p1], [m0, m1]) = (key.pattern, key.mask);
            key.len != 0 && ((w0 ^ p0) & m0) | ((w1 ^ p1) & m1) == 0
        };
        let (before, after) = keys.0.split_at(first.min(N));
        let found = match after.iter().position(here) {
            Some(i) => first + i,
            None => before.iter().position(here)?,
        };
        self.at += keys.0.get(found)?.len;
        Some(found)
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

    /// [`members`](Self::members) of an object whose keys are known (see
    /// [`known_key`](Self::known_key)): `member` is called with each key's index in `keys`
    /// (`N` for another key).
    fn known_members<const N: usize>(
        &mut self,
        keys: &Keys<N>,
        mut member: impl FnMut(&mut Self, usize) -> Option<()>,
    ) -> Option<()> {
        self.ws();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(());
        }
        let mut next = 0;
        loop {
            let key = self.known_key(keys, &mut next)?;
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
    /// (most have none); else `decoded` of its decoded text's bytes (UTF-8, see [`decode`]),
    /// lent from this thread's scratch buffer (see [`with_scratch`]).
    ///
    /// An escaped string is not checked escape by escape and then decoded, as
    /// [`raw_string`](Self::raw_string) and [`unescape`] would do: [`decode`] finds its end
    /// as it decodes and checks it (Python writes every non-ASCII character as `\uXXXX`,
    /// so a reply's text is dense with escapes, and a second walk over them cost as much
    /// as the first). It decodes from the bytes, checking each raw non-ASCII character as
    /// it meets it, as the scan does: not from the line checked as UTF-8 up to its newline
    /// first, which cost as much again for a line that needed no other text.
    fn string_text<T>(
        &mut self,
        decoded: impl FnOnce(&[u8]) -> Option<T>,
    ) -> Option<Result<&'a [u8], T>> {
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
                    let (value, end) = escaped_string(rest, at, decoded)?;
                    self.at = start + end + 1;
                    return Some(Err(value));
                }
                0x80.. => at += utf8_char(rest.get(at..)?)?,
                // A raw control character, which JSON does not allow in a string.
                _ => return None,
            }
        }
    }

    /// A string value as a [`Str`]: a slice of the line when it has no escapes, else a
    /// copy of its decoded text (inline when short, else one allocation of its size).
    ///
    /// Inlined, with [`text::from_source`], into each field's reader: a `Str` returned
    /// through memory was written as a byte, a word and two overlapping copies, then read
    /// back at once as two 16-byte halves to be copied into its field, and a load that
    /// spans several pending stores waits for them (no store-to-load forwarding). Built
    /// where it goes, nothing reads it back: gateway and codec about 3.5% faster.
    #[inline(always)]
    fn string(&mut self) -> Option<Str> {
        let decoded = |decoded: &[u8]| Some(text::from_decoded(decoded));
        Some(match self.string_text(decoded)? {
            Ok(raw) => text::from_source(self.source, raw),
            Err(decoded) => decoded,
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

    #[inline(always)]
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

/// `decoded` of the text of the string whose contents `rest` starts with, and which has an
/// escape at `at` (the plain ASCII and checked characters before it need no decoding),
/// and the index of its closing quote.
///
/// Kept out of line: inlined into [`Reader::string_text`], whose scan of unescaped strings
/// (the usual kind) it made larger, the `decoder` bench measured 4% slower.
#[inline(never)]
fn escaped_string<T>(
    rest: &[u8],
    at: usize,
    decoded: impl FnOnce(&[u8]) -> Option<T>,
) -> Option<(T, usize)> {
    with_scratch(|buffer| {
        // The plain text before the escape, then the rest decoded after it, the buffer
        // grown as it fills (it is not sized for the rest of the input, which may be a
        // whole large message).
        let prefix = rest.get(..at)?;
        if buffer.len() < at + 64 {
            buffer.resize(at + 64, 0);
        }
        buffer.get_mut(..at)?.copy_from_slice(prefix);
        let (mut read, mut written) = (at, at);
        while !decode_into(rest, &mut read, buffer, &mut written)? {
            let grown = (buffer.len() * 2).max(written + 64);
            buffer.resize(grown, 0);
        }
        // Only a closing quote ends it well (not the end of the input).
        rest.get(read).filter(|&&b| b == b'"')?;
        Some((decoded(buffer.get(..written)?)?, read))
    })
}

/// The text a JSON string's raw contents stand for; `None` for a lone surrogate, which
/// the general path deals with, and for anything JSON does not allow in a string (a raw
/// control character, an unknown escape, a bare quote).
fn unescape(raw: &str) -> Option<String> {
    // Decoding never lengthens a string (an escape is at least as long as what it writes),
    // so this is its one allocation. Rare (an escaped `message_type` or body), so simply
    // done: the decoded text is checked again, whole, to make a `String` of it.
    let mut out = Vec::with_capacity(raw.len());
    if decode(raw.as_bytes(), &mut out)? != raw.len() {
        return None;
    }
    String::from_utf8(out).ok()
}

thread_local! {
    /// The buffer escaped strings are decoded into on this thread, kept from one to the
    /// next: decoding into a fresh `String` of a guessed capacity, then made a `Bytes`,
    /// was two allocations per string (a `Bytes` made of a buffer with spare capacity
    /// needs a shared header), and shrinking it first a reallocation that cost more. A
    /// decoded string is instead copied out of here into a buffer of exactly its size.
    /// Thread-local rather than the decoder's because a [`Reader`] lasts one line, and the
    /// codec's entry points ([`frame`], [`frame_line`]) are reached through `&self`
    /// methods of the decoder and from free functions, which have nowhere to keep it.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The most scratch kept between strings: a longer string's buffer is freed after it, so
/// one long message does not pin its size in every thread that decoded it.
const SCRATCH_KEPT: usize = 64 << 10;

/// `f` of this thread's scratch buffer; of a fresh, empty buffer if the scratch is not
/// available (in use further up the stack, or the thread is ending), which nothing here
/// does but which must not panic. The buffer holds the bytes its last user left: it is
/// written by index (see [`decode_into`]), its length the room made so far.
fn with_scratch<T>(f: impl FnOnce(&mut Vec<u8>) -> Option<T>) -> Option<T> {
    let mut f = Some(f);
    let shared = SCRATCH.try_with(|scratch| {
        let mut out = scratch.try_borrow_mut().ok()?;
        let result = f.take().and_then(|f| f(&mut out));
        if out.capacity() > SCRATCH_KEPT {
            *out = Vec::new();
        }
        Some(result)
    });
    match shared {
        Ok(Some(result)) => result,
        _ => f.and_then(|f| f(&mut Vec::new())),
    }
}

/// Decodes string contents from the start of `raw`, appended to `out`, up to the first
/// quote not escaped or the end of `raw`: where it stopped (the quote's index, or
/// `raw.len()`). `None` as for [`decode_into`].
fn decode(raw: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let start = out.len();
    // Decoding never lengthens a string (an escape is at least as long as what it
    // writes), so room for all of `raw` and a step is room enough.
    out.resize(start + raw.len() + STEP, 0);
    let (mut read, mut written) = (0, start);
    let done = decode_into(raw, &mut read, out, &mut written);
    out.truncate(written);
    done?.then_some(read)
}

/// The most a step of [`decode_into`] writes: a word of plain text (a character is up to
/// four bytes, written as a four-byte window).
const STEP: usize = 8;

/// Decodes string contents from `raw[*read..]` into `out[*written..]`, moving both on:
/// `Some(true)` at the first quote not escaped or the end of `raw`, `Some(false)` when `out`
/// has less than a step of room left (make more, and call again). `None` for a lone
/// surrogate (which the general path deals with) and anything JSON does not allow in a
/// string (a raw control character, an unknown escape, a byte that is not part of a
/// well-formed UTF-8 character).
///
/// `raw` is bytes, not yet known to be UTF-8, and what this writes is UTF-8 by
/// construction: runs of plain ASCII (up to what [`find_special`] would find), each
/// non-ASCII character checked as std checks one ([`utf8_char`]), and each escape's `char`
/// encoded.
///
/// Written by index into a slice rather than pushed onto a `Vec`: the `Vec`'s length and
/// capacity lived in memory, loaded and stored around every word, for three times the
/// instructions of the scan itself. Plain text goes eight bytes at a time, each word
/// written whole and the count moved on only past its plain bytes (in text dense with
/// escapes the runs are words, and a `memcpy` of each run's length cost more than the
/// copying); a character is written as a fixed four-byte window, the count moved on by
/// its length.
fn decode_into(raw: &[u8], read: &mut usize, out: &mut [u8], written: &mut usize) -> Option<bool> {
    let (mut r, mut w) = (*read, *written);
    let done = loop {
        let Some(room) = out.get_mut(w..w + STEP) else {
            break false;
        };
        match raw.get(r..r + 8).and_then(|c| <[u8; 8]>::try_from(c).ok()) {
            Some(word) => {
                room.copy_from_slice(&word);
                let flagged = specials(u64::from_le_bytes(word));
                if flagged == 0 {
                    (r, w) = (r + 8, w + 8);
                    continue;
                }
                let run = flagged.trailing_zeros() as usize / 8;
                (r, w) = (r + run, w + run);
            }
            // Less than a word left: a byte at a time.
            None => match (raw.get(r), room.first_mut()) {
                (Some(&b), Some(slot)) if !is_special(b) => {
                    *slot = b;
                    (r, w) = (r + 1, w + 1);
                    continue;
                }
                _ => {}
            },
        }
        let Some(&b) = raw.get(r) else {
            break true;
        };
        let (window, len, used) = match b {
            b'"' => break true,
            b'\\' => {
                let (c, used) = escape(raw.get(r + 1..)?)?;
                let mut utf8 = [0; 4];
                let len = c.encode_utf8(&mut utf8).len();
                (utf8, len, 1 + used)
            }
            0x80.. => {
                let rest = raw.get(r..)?;
                let len = utf8_char(rest)?;
                let mut window = [0; 4];
                // (A character that ends the input is too near its end for a whole
                // window: its own bytes.)
                let bytes = rest.get(..4).unwrap_or(rest);
                window.get_mut(..bytes.len())?.copy_from_slice(bytes);
                (window, len, len)
            }
            // A raw control character, which JSON does not allow in a string.
            _ => return None,
        };
        out.get_mut(w..w + 4)?.copy_from_slice(&window);
        (r, w) = (r + used, w + len);
    };
    (*read, *written) = (r, w);
    Some(done)
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

/// Each byte's value as a hex digit, or `0xFF` if it is not one.
#[expect(
    clippy::indexing_slicing,
    reason = "`b` is below 256, the table's length (a `const` loop cannot use iterators)"
)]
static HEX: [u8; 256] = {
    let mut table = [0xFF; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = match b as u8 {
            d @ b'0'..=b'9' => d - b'0',
            d @ b'a'..=b'f' => d - b'a' + 10,
            d @ b'A'..=b'F' => d - b'A' + 10,
            _ => 0xFF,
        };
        b += 1;
    }
    table
};

/// Four hex digits' value. By table, without a branch per digit: Python's replies hold
/// one `\uXXXX` for every non-ASCII character.
fn hex4(digits: &[u8]) -> Option<u32> {
    let digits: [u8; 4] = digits.try_into().ok()?;
    let (mut unit, mut invalid) = (0, 0);
    for d in digits {
        // `HEX` has an entry for every byte: the `get` never fails.
        let value = HEX.get(usize::from(d)).copied().unwrap_or(0xFF);
        invalid |= value;
        unit = unit << 4 | u32::from(value);
    }
    // A digit's value has no high bits; the `0xFF` of a non-digit has.
    (invalid & 0xF0 == 0).then_some(unit)
}

/// Whether `b` ends a run of plain ASCII string text: a `"`, `\\`, control character or
/// non-ASCII byte.
fn is_special(b: u8) -> bool {
    b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b)
}

/// The bytes of `word` (eight of the text, little-endian) that end a run of plain ASCII
/// string text ([`is_special`]), flagged in their high bits; exact up to the lowest flagged
/// one. A byte equal to `x` is a zero byte of `word ^ x`, and a zero byte (or one below
/// `0x20`) is the only kind that borrows into its high bit when `0x01` (or `0x20`) is
/// subtracted from every byte; a non-ASCII byte has its high bit set already. Only the
/// lowest flagged byte is exact (a borrow runs on upwards), which is the one wanted.
fn specials(word: u64) -> u64 {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = ONES << 7;
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    (below(quote, 1) | below(backslash, 1) | below(word, 0x20) | word) & HIGH
}

/// Index of the first `"`, `\\`, control character or non-ASCII byte in `bytes`: what
/// ends a run of plain ASCII string text. Eight bytes at a time, as serde_json scans (see
/// [`specials`]).
///
/// Stopping at non-ASCII bytes is what spares the reader a UTF-8 check of the whole line
/// (serde_json's `IgnoredAny` makes none): each such character is checked where it is met
/// ([`utf8_char`]), and a line of ASCII costs nothing more than the scan.
fn find_special(bytes: &[u8]) -> Option<usize> {
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let flagged = specials(u64::from_le_bytes(chunk.try_into().ok()?));
        if flagged != 0 {
            return Some(offset + flagged.trailing_zeros() as usize / 8);
        }
        offset += 8;
    }
    let tail = chunks.remainder().iter();
    tail.map(|&b| is_special(b))
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    /// A known key is read exactly as `key` reads it and then looked up, whichever key is
    /// expected: the same index, the same position after it, and `None` alike. The cases
    /// are where a pattern could be fooled: a longer name, a space before the colon, an
    /// escape, a name too long for a pattern, and a member too near the end of the text
    /// for sixteen bytes.
    #[test]
    fn known_keys_read_as_keys_do() {
        static KEYS: Keys<4> = Keys::new([b"op", b"chat_id", b"a_name_too_long", b"x"]);
        let texts: [&[u8]; 13] = [
            br#""op":"send"}"#,
            br#" "chat_id": "1", "x": 2}"#,
            br#""chat_idx":"1", "op": "send"}"#,
            br#""chat_id" :"1","op":"send","x":1}"#,
            br#""chat\u005fid":"1", "op": "send"}"#,
            br#""a_name_too_long":"1", "op": "send"}"#,
            br#""x":1}"#,
            br#""x" : 1}"#,
            br#""op""#,
            br#""op":"#,
            br#"op":"send","x":1,"chat_id":2}"#,
            br#""o":"send","x":1,"chat_id":2}"#,
            br#"}"#,
        ];
        let source = Bytes::new();
        let reader = |text| Reader::new(text, &source);
        for text in texts {
            let mut by_key = reader(text);
            let expected = by_key
                .key()
                .map(|name| KEYS.0.iter().position(|k| k.name == name).unwrap_or(4));
            for guess in 0..=4 {
                let mut known = reader(text);
                let mut next = guess;
                let found = known.known_key(&KEYS, &mut next);
                let what = String::from_utf8_lossy(text);
                assert_eq!(found, expected, "{what}, expecting {guess}");
                if let Some(found) = found {
                    assert_eq!(known.at, by_key.at, "{what}, expecting {guess}");
                    assert_eq!(next, found + 1);
                }
            }
        }
    }

    /// A known string is read exactly as `raw_string` reads it and then looked up: the
    /// same index (`N` for another string or an escaped one), the same position after it.
    #[test]
    fn known_strings_read_as_raw_strings_do() {
        static VALUES: Keys<3> = Keys::strings([b"send", b"typing", b"a_name_much_too_long"]);
        let texts: [&[u8]; 10] = [
            br#""send", "chat_id": "1"}"#,
            br#" "typing", "chat_id": "1"}"#,
            br#""sendx", "chat_id": "1"}"#,
            br#""sen", "chat_id": "1"}"#,
            br#""se\u006ed", "chat_id": "1"}"#,
            br#""a_name_much_too_long", "chat_id": "1"}"#,
            br#""send"}"#,
            br#""send"#,
            br#"send", "chat_id": "1"}"#,
            br#""", "chat_id": "1"}"#,
        ];
        let source = Bytes::new();
        let reader = |text| Reader::new(text, &source);
        for text in texts {
            let mut by_raw = reader(text);
            let expected = by_raw.raw_string().map(|(raw, escaped)| match escaped {
                false => VALUES.0.iter().position(|k| k.name == raw).unwrap_or(3),
                true => 3,
            });
            let mut known = reader(text);
            let what = String::from_utf8_lossy(text);
            assert_eq!(known.known_string(&VALUES), expected, "{what}");
            if expected.is_some() {
                assert_eq!(known.at, by_raw.at, "{what}");
            }
        }
    }

    /// What serde_json makes of the string whose raw contents are `raw`, as bytes; `None`
    /// where it fails.
    fn serde_string(raw: &[u8]) -> Option<Vec<u8>> {
        let quoted = [&b"\""[..], raw, b"\""].concat();
        serde_json::from_slice::<String>(&quoted)
            .ok()
            .map(String::into_bytes)
    }

    /// `decode` of `raw` followed by a closing quote (and more text, which it must not
    /// read), as `string_text` calls it.
    fn decoded(raw: &[u8]) -> Option<Vec<u8>> {
        let text = [raw, b"\",\"x\":\"\\u00e9\""].concat();
        let mut out = Vec::new();
        let end = decode(&text, &mut out)?;
        assert_eq!(end, raw.len(), "{raw:?}");
        Some(out)
    }

    /// Strings of raw ASCII, raw non-ASCII characters and escapes in every mix (at every
    /// offset within the eight-byte words), and malformed ones: `decode` takes exactly
    /// what serde_json takes, to the same text, with or without the scratch's earlier
    /// contents, and `unescape` (which decodes to the end of its input) agrees.
    #[test]
    fn decode_agrees_with_serde_json() {
        let pieces: [&[u8]; 22] = [
            b"a",
            b"plain words",
            "\u{e9}".as_bytes(),
            "\u{65e5}\u{672c}".as_bytes(),
            "\u{1F680}".as_bytes(),
            br"\u00e9",
            br"\u00E9",
            br"\u2705",
            br"\ud83d\ude80",
            br"\uD83D\uDE80",
            br#"\"\\\/\b\f\n\r\t"#,
            br"\u0000\u001f\u0041",
            // Malformed: each must fail both ways.
            br"\ud800",
            br"\ud800\u0041",
            br"\udc00",
            br"\x",
            br"\u00g0",
            b"\x01",
            b"\xff",
            b"\xc3",
            b"\xed\xa0\x80",
            b"\xf0\x9f\x98",
        ];
        let mut rng = crate::rng::SplitMix64::new(0xDEC0DE);
        let (mut good, mut bad) = (0, 0);
        for _ in 0..20_000 {
            let mut raw = Vec::new();
            for _ in 0..=rng.next_u64() % 6 {
                let piece = pieces[(rng.next_u64() % pieces.len() as u64) as usize];
                raw.extend_from_slice(piece);
            }
            let expected = serde_string(&raw);
            assert_eq!(decoded(&raw), expected, "{raw:?}");
            let text = std::str::from_utf8(&raw).ok();
            if let Some(text) = text {
                let unescaped = unescape(text).map(String::into_bytes);
                assert_eq!(unescaped, expected, "{raw:?}");
            }
            match expected {
                Some(_) => good += 1,
                None => bad += 1,
            }
        }
        assert!(good > 2_000 && bad > 2_000, "{good} {bad}");
    }

    /// A character right at the end of the input (too near for the four-byte window):
    /// copied exactly, and an unterminated string is no string.
    #[test]
    fn a_character_at_the_end_of_the_input() {
        for raw in ["\u{e9}", "a\\n\u{e9}", "\\u00e9\u{1F680}", "\u{65e5}"] {
            let expected = serde_string(raw.as_bytes()).unwrap();
            assert_eq!(unescape(raw).unwrap().into_bytes(), expected);
            let mut out = Vec::new();
            assert_eq!(decode(raw.as_bytes(), &mut out), Some(raw.len()));
            assert_eq!(out, expected);
        }
        let empty = Bytes::new();
        let mut r = Reader::new(b"\"\\u00e9", &empty);
        assert!(r.string().is_none());
    }

    /// The scratch is lent to one user at a time (a nested use gets a fresh buffer and
    /// leaves the outer one's contents alone), keeps what its last user left, and is
    /// freed after a string longer than it keeps.
    #[test]
    fn the_scratch() {
        let outer = with_scratch(|out| {
            out.clear();
            out.extend_from_slice(b"outer");
            let inner = with_scratch(|inner| {
                assert!(inner.is_empty());
                inner.extend_from_slice(b"inner");
                Some(inner.clone())
            });
            assert_eq!(inner.unwrap(), b"inner");
            Some(out.clone())
        });
        assert_eq!(outer.unwrap(), b"outer");
        with_scratch(|out| {
            assert_eq!(out, b"outer");
            out.resize(SCRATCH_KEPT + 1, b'a');
            Some(())
        });
        let capacity = SCRATCH.with_borrow(Vec::capacity);
        assert!(capacity <= SCRATCH_KEPT, "{capacity}");
        with_scratch(|out| {
            out.resize(100, b'a');
            Some(())
        });
        assert!(SCRATCH.with_borrow(Vec::capacity) >= 100);
    }

    /// An escaped string read as a `Str`: its decoded text, whatever its length (inline
    /// up to 23 bytes, else a copy), and the reader goes on after its closing quote.
    #[test]
    fn escaped_strings_as_str_and_string() {
        let cases = [0, 1, 21, 22, 23, 24, 25, 64, 300].map(|len| {
            let a = "a".repeat(len);
            (format!("\u{e9}{a}"), format!("\"\\u00e9{a}\","))
        });
        // A long plain prefix, then many escapes: the scratch grows more than once.
        let (prefix, many) = ("p".repeat(100), "\u{2014}x".repeat(200));
        let long = (
            format!("{prefix}{many}"),
            format!("\"{prefix}{}\",", "\\u2014x".repeat(200)),
        );
        for (text, raw) in cases.into_iter().chain([long]) {
            let source = Bytes::from(raw);
            let mut r = Reader::new(&source, &source);
            let s = r.string().unwrap();
            assert_eq!(s, text.as_str());
            assert!(!s.is_shared_slice(&source));
            assert_eq!(r.peek(), Some(b','));
        }
    }
}

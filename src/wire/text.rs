//! [`Str`]: the string type of the event fields the gateway reads most (message text and
//! the session source), a slice of the received message when it can be.
//!
//! Decoding used to copy every string of a frame into its own `String`: for an `inbound`
//! that was ten allocations and copies before the application saw it. A JSON string with
//! no escapes is, byte for byte, the text it stands for, so while the codec decodes a line
//! it makes the line's bytes the *source* (a thread-local, set only for the duration of
//! that one line), and a [`Str`] deserialised from a string lying inside it becomes a
//! reference-counted slice of it instead of a copy. Anything else (an escaped string, a
//! value built in code) is owned as usual.
//!
//! A slice keeps its whole line alive, so only events hold them: state the machines keep
//! past `poll_output` (routes, acked ids, descriptors) is made of plain `String`s, copied
//! out, so that a 30-byte chat id never pins a 1 MiB message.

use std::borrow::Borrow;
use std::cell::RefCell;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use bytes::Bytes;
use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::{Serialize, Serializer};

/// An immutable UTF-8 string that may share the bytes of the message it was decoded from.
///
/// It reads like a `&str` (it derefs to `str`), compares equal to `str`, `&str` and
/// `String`, converts from both, and prints (`Display` and `Debug`) and serialises exactly
/// as a `String` would, so code written for `String` fields mostly compiles unchanged.
/// Short strings (ids, names: up to 23 bytes) are kept inline, without an allocation or a
/// reference count; longer ones share the received message's bytes when they can, without
/// an allocation either. It is as large as a `Bytes` (32 bytes). Use `String::from` for an
/// owned copy that does not keep
/// the message alive.
#[derive(Clone)]
pub struct Str(Repr);

/// Longest string kept inline: the 24 bytes of `Bytes` beside its vtable pointer (whose
/// non-null niche tells the variants apart), less the length.
const INLINE: usize = 23;

#[derive(Clone)]
enum Repr {
    /// The first `len` bytes of `bytes`.
    Inline { len: u8, bytes: [u8; INLINE] },
    /// A reference-counted buffer, or a slice of one. Held as it is, not boxed: a box
    /// was an allocation for every long string of every event (an inbound's `text`),
    /// which is what slicing the message is meant to save; it makes `Str` 32 bytes
    /// instead of 24, now that events are boxed once and no longer moved by value.
    Shared(Bytes),
}

impl Str {
    /// The empty string.
    pub const fn new() -> Self {
        Self(Repr::Inline {
            len: 0,
            bytes: [0; INLINE],
        })
    }

    /// A string for `text` known at compile time, without copying it.
    #[expect(
        clippy::indexing_slicing,
        reason = "`i` is below `text.len()`, which is at most `INLINE` there"
    )]
    pub const fn from_static(text: &'static str) -> Self {
        // `const`, so that defaults built of these (an event's `platform` and
        // `chat_type`) are constants rather than a copy made on every call.
        let text = text.as_bytes();
        if text.len() > INLINE {
            return Self(Repr::Shared(Bytes::from_static(text)));
        }
        let mut bytes = [0; INLINE];
        let mut i = 0;
        while i < text.len() {
            bytes[i] = text[i];
            i += 1;
        }
        Self(Repr::Inline {
            len: text.len() as u8,
            bytes,
        })
    }

    /// `text` inline when it is short enough.
    fn inline(text: &str) -> Option<Self> {
        Self::inline_bytes(text.as_bytes())
    }

    /// `text` (UTF-8) inline when it is short enough.
    fn inline_bytes(text: &[u8]) -> Option<Self> {
        let len = u8::try_from(text.len())
            .ok()
            .filter(|&n| usize::from(n) <= INLINE)?;
        let mut bytes = [0; INLINE];
        bytes.get_mut(..text.len())?.copy_from_slice(text);
        Some(Self(Repr::Inline { len, bytes }))
    }

    /// The text's bytes. Unlike [`as_str`](Self::as_str) (and deref), this does not
    /// re-check that they are UTF-8, so hashing or comparing by bytes on a hot path costs
    /// no validation.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            Repr::Shared(bytes) => bytes,
        }
    }

    /// Length in bytes. (Inherent, as `is_empty` is, so that neither goes through
    /// `Deref` to `str`, which checks the bytes as UTF-8 first.)
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the string is empty.
    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // The bytes come from a `str` (every constructor takes one), so this never falls
        // back; without `unsafe` the check cannot be skipped, and it is a fast scan.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// Whether this string is a slice of `message` (it shares its bytes) rather than a
    /// copy: for tests and memory accounting.
    pub fn is_shared_slice(&self, message: &Bytes) -> bool {
        match &self.0 {
            Repr::Shared(bytes) => contains(message, bytes),
            Repr::Inline { .. } => false,
        }
    }
}

impl Default for Str {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for Str {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Str {}

impl PartialOrd for Str {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Str {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

/// `inner` lies within `outer`'s memory.
fn contains(outer: &Bytes, inner: &[u8]) -> bool {
    let start = outer.as_ptr() as usize;
    let at = inner.as_ptr() as usize;
    !inner.is_empty() && at >= start && at + inner.len() <= start + outer.len()
}

thread_local! {
    /// The line being decoded on this thread, if the codec is decoding one.
    static SOURCE: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// Makes `line` the source of borrowed strings until the guard is dropped.
pub(crate) fn with_source<T>(line: &Bytes, decode: impl FnOnce() -> T) -> T {
    struct Reset(Option<Bytes>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let previous = self.0.take();
            SOURCE.with(|s| *s.borrow_mut() = previous);
        }
    }
    let previous = SOURCE.with(|s| s.borrow_mut().replace(line.clone()));
    let _reset = Reset(previous);
    decode()
}

/// A `Str` for `text` borrowed from the decoder's input: a slice of the source line when
/// it lies inside it, else a copy.
pub(crate) fn from_borrowed(text: &str) -> Str {
    if let Some(short) = Str::inline(text) {
        return short;
    }
    SOURCE.with(|source| match source.borrow().as_ref() {
        Some(line) if contains(line, text.as_bytes()) => {
            Str(Repr::Shared(line.slice_ref(text.as_bytes())))
        }
        _ => Str::from(text),
    })
}

/// A `Str` for `text`, which lies within `source` when it was read from it: a slice of
/// `source` then (unless short enough to be inline), else a copy.
///
/// `text` must be UTF-8, which the codec's reader has checked as it scanned it: taking
/// bytes spares checking it again. Were it not, the `Str` would read as empty (see
/// [`Str::as_str`]), never as invalid text.
// Inlined into the codec's string reader: see `Reader::string` in `codec::fast`.
#[inline(always)]
pub(crate) fn from_source(source: &Bytes, text: &[u8]) -> Str {
    debug_assert!(std::str::from_utf8(text).is_ok());
    let within = contains(source, text).then(|| text.as_ptr() as usize - source.as_ptr() as usize);
    if let Ok(len) = u8::try_from(text.len()) {
        if usize::from(len) <= INLINE {
            // A short string is copied as the whole inline array from where it starts in
            // the message, when the message goes on that far: a fixed-size copy is a
            // couple of moves, where one of the string's own length is a call to
            // `memcpy`, for each of the dozen ids of an event. The bytes past `len` are
            // never read.
            let window = within.and_then(|at| source.get(at..at + INLINE));
            if let Some(bytes) = window.and_then(|w| <[u8; INLINE]>::try_from(w).ok()) {
                return Str(Repr::Inline { len, bytes });
            }
            if let Some(short) = Str::inline_bytes(text) {
                return short;
            }
        }
    }
    Str(Repr::Shared(match within {
        Some(_) => source.slice_ref(text),
        None => Bytes::copy_from_slice(text),
    }))
}

/// A `Str` holding a copy of `text`, text the codec's reader decoded from an escaped
/// string: inline when short enough, else a buffer of exactly its length, one allocation
/// (a `Bytes` adopts a buffer whose capacity is its length as it is, where any other needs
/// a second allocation, its shared header).
///
/// `text` must be UTF-8, which the reader makes sure of as it decodes (every piece it
/// writes is checked ASCII, a checked character, or an escape's encoded `char`): taking
/// bytes spares checking them again (`std::str::from_utf8` of the decoded text added a
/// third to the cost of decoding a typical reply's escaped content). Were they not, the
/// `Str` would read as empty (see [`Str::as_str`]), never as invalid text.
pub(crate) fn from_decoded(text: &[u8]) -> Str {
    debug_assert!(std::str::from_utf8(text).is_ok());
    Str::inline_bytes(text).unwrap_or_else(|| Str(Repr::Shared(Bytes::copy_from_slice(text))))
}

impl Deref for Str {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Str {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<[u8]> for Str {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<str> for Str {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Hash for Str {
    // As `str` hashes, so that `Borrow<str>` lookups find it.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl From<&str> for Str {
    fn from(text: &str) -> Self {
        Self::inline(text)
            .unwrap_or_else(|| Self(Repr::Shared(Bytes::copy_from_slice(text.as_bytes()))))
    }
}

impl From<String> for Str {
    fn from(text: String) -> Self {
        Self::inline(&text).unwrap_or_else(|| Self(Repr::Shared(Bytes::from(text.into_bytes()))))
    }
}

impl From<&String> for Str {
    fn from(text: &String) -> Self {
        Self::from(text.as_str())
    }
}

impl From<Box<str>> for Str {
    fn from(text: Box<str>) -> Self {
        Self::from(String::from(text))
    }
}

impl From<Str> for String {
    fn from(text: Str) -> Self {
        text.as_str().to_owned()
    }
}

impl From<&Str> for String {
    fn from(text: &Str) -> Self {
        text.as_str().to_owned()
    }
}

// The comparisons are by bytes, as `str`'s are, but without `as_str`'s UTF-8 check (see
// `as_bytes`): a connector compares each request's platform tag with its identities'.
impl PartialEq<str> for Str {
    fn eq(&self, other: &str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<&str> for Str {
    fn eq(&self, other: &&str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<String> for Str {
    fn eq(&self, other: &String) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<Str> for str {
    fn eq(&self, other: &Str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<Str> for &str {
    fn eq(&self, other: &Str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl PartialEq<Str> for String {
    fn eq(&self, other: &Str) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl fmt::Display for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for Str {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for Str {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Str {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StrVisitor;
        impl<'de> Visitor<'de> for StrVisitor {
            type Value = Str;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Str, E> {
                Ok(from_borrowed(v))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Str, E> {
                Ok(Str::from(v))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Str, E> {
                Ok(Str::from(v))
            }
        }
        d.deserialize_string(StrVisitor)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(serde::Deserialize)]
    struct Two {
        a: Str,
        b: Str,
    }

    #[test]
    fn unescaped_strings_are_slices_of_the_source_and_escaped_ones_are_owned() {
        let line = Bytes::from_static(
            br#"{"a":"a plain string longer than thirty bytes","b":"esc\u00e9"}"#,
        );
        let two: Two = with_source(&line, || serde_json::from_slice(&line).unwrap());
        assert_eq!(two.a, "a plain string longer than thirty bytes");
        assert_eq!(two.b, "esc\u{e9}");
        assert!(two.a.is_shared_slice(&line));
        assert!(!two.b.is_shared_slice(&line));
        // Short strings are inline; outside a decode nothing is borrowed.
        let short = Bytes::from_static(br#"{"a":"plain","b":"x"}"#);
        let two: Two = with_source(&short, || serde_json::from_slice(&short).unwrap());
        assert!(!two.a.is_shared_slice(&short));
        let other: Two = serde_json::from_slice(&line).unwrap();
        assert!(!other.a.is_shared_slice(&line));
    }

    /// A constant string is the string it was made from, inline up to 23 bytes and
    /// shared (static) beyond, as one made at run time is.
    #[test]
    fn a_constant_is_the_same_string() {
        const EMPTY: Str = Str::from_static("");
        const SHORT: Str = Str::from_static("relay");
        const EDGE: Str = Str::from_static("0123456789abcdef0123456");
        const LONG: Str = Str::from_static("0123456789abcdef01234567");
        for (constant, text) in [
            (EMPTY, ""),
            (SHORT, "relay"),
            (EDGE, "0123456789abcdef0123456"),
            (LONG, "0123456789abcdef01234567"),
        ] {
            assert_eq!(constant.as_str(), text);
            assert_eq!(constant, Str::from(text));
            assert_eq!(constant.len(), text.len());
            assert_eq!(
                matches!(constant.0, Repr::Inline { .. }),
                text.len() <= INLINE
            );
        }
    }

    /// Decoded text is the same string, inline up to 23 bytes and one exact-size copy
    /// beyond.
    #[test]
    fn decoded_text_is_the_same_string() {
        for len in (0..=25).chain([100]) {
            let text: String = "abcdefghijklmnopqrstuvwxyz\u{e9}\u{e8}"
                .chars()
                .cycle()
                .take(len)
                .collect();
            let s = from_decoded(text.as_bytes());
            assert_eq!(s, text.as_str());
            assert_eq!(s.len(), text.len());
            assert_eq!(matches!(s.0, Repr::Inline { .. }), text.len() <= INLINE);
        }
    }

    #[test]
    fn it_reads_compares_and_prints_as_a_string() {
        let s = Str::from("chat");
        assert_eq!(s, "chat");
        assert_eq!(s, *"chat");
        assert_eq!(s, String::from("chat"));
        assert_eq!("chat", s);
        assert_eq!(format!("{s} {s:?}"), "chat \"chat\"");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"chat\"");
        assert_eq!(s.len(), 4);
        assert_eq!(String::from(s.clone()), "chat");
        let mut map = std::collections::HashMap::new();
        map.insert(s, 1);
        assert_eq!(map.get("chat"), Some(&1));
    }
}

#[cfg(test)]
mod size {
    #[test]
    fn a_str_is_no_larger_than_bytes() {
        assert_eq!(size_of::<super::Str>(), size_of::<bytes::Bytes>());
        // `Bytes` has one niche (its vtable pointer), which tells `Str`'s variants apart.
        assert!(size_of::<Option<super::Str>>() <= size_of::<bytes::Bytes>() + 8);
    }
}

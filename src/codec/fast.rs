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

use bytes::Bytes;
use serde::Deserialize;

use crate::wire::tagged::{Objects, OptionalObject};
use crate::wire::{
    ActionResult, BufferId, EditAction, FollowUpAction, Frame, Inbound, MessageEvent, MessageType,
    Metadata, Outbound, OutboundAction, OutboundResult, PassthroughForward, PassthroughFrame,
    RequestId, SendAction, SessionSource, Str, TypingAction, decode_base64, text,
};

/// Deeper nesting than this goes the general way, which has its own limit.
const MAX_DEPTH: usize = 64;

/// The frame `line` holds, if the fast path can tell for certain; `line` lies within
/// `source`, of which unescaped long strings become slices.
pub(super) fn frame(line: &str, source: &Bytes) -> Option<Frame> {
    let mut r = Reader {
        text: line,
        at: 0,
        source,
    };
    r.open(b'{')?;
    if r.key()? != "type" {
        return None;
    }
    let frame = match r.raw_string()? {
        ("inbound", false) => r.inbound().map(Frame::Inbound),
        ("outbound", false) => r.outbound().map(Frame::Outbound),
        ("outbound_result", false) => r.outbound_result().map(Frame::OutboundResult),
        ("passthrough_forward", false) => r.passthrough().map(Frame::PassthroughForward),
        _ => None,
    }?;
    r.ws();
    // Only whitespace may follow the object (the decoder has already cut the newline).
    (r.at == line.len()).then_some(frame)
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
    text: &'a str,
    at: usize,
    source: &'a Bytes,
}

impl<'a> Reader<'a> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    /// Skips JSON whitespace.
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
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
    fn key(&mut self) -> Option<&'a str> {
        match self.raw_string()? {
            (key, false) => (self.next_byte()? == b':').then_some(key),
            // A key spelled with escapes: rare enough to leave to serde.
            (_, true) => None,
        }
    }

    /// Reads the members of an object whose `{` was consumed: `member` is called with
    /// each key, and must consume its value.
    fn members(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
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
    /// checked, not decoded).
    fn raw_string(&mut self) -> Option<(&'a str, bool)> {
        self.open(b'"')?;
        let start = self.at;
        let mut escaped = false;
        loop {
            self.at += find_special(self.bytes().get(self.at..)?)?;
            if self.peek()? == b'"' {
                let raw = self.text.get(start..self.at)?;
                self.at += 1;
                return Some((raw, escaped));
            }
            if self.peek()? != b'\\' {
                // A raw control character, which JSON does not allow in a string.
                return None;
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
    /// would do: its end is found with `memchr`, and [`unescape`] checks it as it decodes
    /// (Python writes every non-ASCII character as `\uXXXX`, so a reply's text is dense
    /// with escapes, and the second walk over them cost as much as the first).
    fn string_text(&mut self) -> Option<Result<&'a str, String>> {
        self.open(b'"')?;
        let start = self.at;
        let rest = self.bytes().get(start..)?;
        let first = find_special(rest)?;
        match rest.get(first)? {
            b'"' => {
                self.at = start + first + 1;
                self.text.get(start..start + first).map(Ok)
            }
            b'\\' => {
                let end = closing_quote(rest, first)?;
                self.at = start + end + 1;
                unescape(self.text.get(start..start + end)?).map(Err)
            }
            // A raw control character, which JSON does not allow in a string.
            _ => None,
        }
    }

    /// A string value as a [`Str`]: a slice of the line when it has no escapes.
    fn string(&mut self) -> Option<Str> {
        Some(match self.string_text()? {
            Ok(raw) => text::from_source(self.source, raw),
            Err(decoded) => Str::from(decoded),
        })
    }

    /// A string value as an owned `String`.
    fn owned_string(&mut self) -> Option<String> {
        Some(match self.string_text()? {
            Ok(raw) => raw.to_owned(),
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

    fn optional_owned_string(&mut self) -> Option<Option<String>> {
        if self.null()? {
            return Some(None);
        }
        self.owned_string().map(Some)
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
    fn value_text(&mut self) -> Option<&'a str> {
        self.ws();
        let start = self.at;
        self.skip(0)?;
        self.text.get(start..self.at)
    }

    /// The next value decoded by serde_json from its own slice: for the parts of a frame
    /// the fast path does not model.
    fn serde<T: Deserialize<'a>>(&mut self) -> Option<T> {
        let text = self.value_text()?;
        text::with_source(self.source, || serde_json::from_str(text).ok())
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

    fn inbound(&mut self) -> Option<Inbound> {
        let mut event = None;
        let mut buffer_id = None;
        let mut seen = Seen::default();
        while self.more()? {
            match self.key()? {
                "event" => {
                    seen.first(0)?;
                    event = Some(self.event()?);
                }
                "bufferId" => {
                    seen.first(1)?;
                    buffer_id = self.buffer_id()?;
                }
                _ => self.skip(1)?,
            }
        }
        Some(Inbound {
            event: event?,
            buffer_id,
        })
    }

    fn event(&mut self) -> Option<Box<MessageEvent>> {
        self.open(b'{')?;
        let mut event = Box::<MessageEvent>::default();
        let e = &mut *event;
        let mut seen = Seen::default();
        self.members(|r, key| {
            match key {
                "text" => {
                    seen.first(0)?;
                    e.text = r.string()?;
                }
                "message_type" => {
                    seen.first(1)?;
                    e.message_type = match r.raw_string()? {
                        (raw, false) => MessageType::from_wire(raw),
                        (raw, true) => MessageType::from_wire(&unescape(raw)?),
                    };
                }
                "message_id" => {
                    seen.first(2)?;
                    e.message_id = r.optional_string()?;
                }
                "reply_to_message_id" => {
                    seen.first(3)?;
                    e.reply_to_message_id = r.optional_string()?;
                }
                "reply_to" => {
                    seen.first(4)?;
                    e.reply_to = r.serde::<OptionalObject<_>>()?.0;
                }
                "media_urls" => {
                    seen.first(5)?;
                    e.media_urls = r.serde()?;
                }
                "media" => {
                    seen.first(6)?;
                    e.media = r.serde::<Objects<_>>()?.0;
                }
                "context" => {
                    seen.first(7)?;
                    e.context = r.serde::<Objects<_>>()?.0;
                }
                "context_error" => {
                    seen.first(8)?;
                    e.context_error = r.optional_boolean()?;
                }
                "prompt_response" => {
                    seen.first(9)?;
                    e.prompt_response = r.serde::<OptionalObject<_>>()?.0;
                }
                "source" => {
                    seen.first(10)?;
                    r.source(&mut e.source)?;
                }
                _ => r.skip(2)?,
            }
            Some(())
        })?;
        Some(event)
    }

    fn source(&mut self, s: &mut SessionSource) -> Option<()> {
        self.open(b'{')?;
        let mut seen = Seen::default();
        let mut guild_id = None;
        self.members(|r, key| {
            let (bit, slot) = match key {
                "platform" => (0, Slot::Str(&mut s.platform)),
                "chat_id" => (1, Slot::Str(&mut s.chat_id)),
                "chat_name" => (2, Slot::Opt(&mut s.chat_name)),
                "chat_type" => (3, Slot::Str(&mut s.chat_type)),
                "user_id" => (4, Slot::Opt(&mut s.user_id)),
                "user_name" => (5, Slot::Opt(&mut s.user_name)),
                "user_display_name" => (6, Slot::Opt(&mut s.user_display_name)),
                "user_handle" => (7, Slot::Opt(&mut s.user_handle)),
                "thread_id" => (8, Slot::Opt(&mut s.thread_id)),
                "chat_topic" => (9, Slot::Opt(&mut s.chat_topic)),
                "user_id_alt" => (10, Slot::Opt(&mut s.user_id_alt)),
                "chat_id_alt" => (11, Slot::Opt(&mut s.chat_id_alt)),
                "scope_id" => (12, Slot::Opt(&mut s.scope_id)),
                "guild_id" => (13, Slot::Opt(&mut guild_id)),
                "parent_chat_id" => (14, Slot::Opt(&mut s.parent_chat_id)),
                "message_id" => (15, Slot::Opt(&mut s.message_id)),
                "profile" => (16, Slot::Opt(&mut s.profile)),
                "auto_thread_created" => (17, Slot::Bool(&mut s.auto_thread_created)),
                "auto_thread_initial_name" => (18, Slot::Opt(&mut s.auto_thread_initial_name)),
                "prospective_thread_id" => (19, Slot::Opt(&mut s.prospective_thread_id)),
                "is_bot" => (20, Slot::OptBool(&mut s.is_bot)),
                "one_to_one_verified" => (21, Slot::OptBool(&mut s.one_to_one_verified)),
                "message_is_edit" => (22, Slot::OptBool(&mut s.message_is_edit)),
                _ => return r.skip(3),
            };
            seen.first(bit)?;
            match slot {
                Slot::Str(place) => *place = r.string()?,
                Slot::Opt(place) => *place = r.optional_string()?,
                Slot::Bool(place) => *place = r.boolean()?,
                Slot::OptBool(place) => *place = r.optional_boolean()?,
            }
            Some(())
        })?;
        if s.scope_id.is_none() {
            s.scope_id = guild_id;
        }
        Some(())
    }

    fn outbound_result(&mut self) -> Option<OutboundResult> {
        let mut request_id = None;
        let mut result = None;
        let mut seen = Seen::default();
        while self.more()? {
            match self.key()? {
                "requestId" => {
                    seen.first(0)?;
                    request_id = Some(RequestId(self.owned_string()?));
                }
                "result" => {
                    seen.first(1)?;
                    result = Some(self.result()?);
                }
                _ => self.skip(1)?,
            }
        }
        Some(OutboundResult {
            request_id: request_id?,
            result: result?,
        })
    }

    /// The common results (`success` and perhaps `message_id`) by hand; any other shape
    /// by serde_json from the result's slice.
    fn result(&mut self) -> Option<ActionResult> {
        let start = self.at;
        let mut result = ActionResult::default();
        let mut seen = Seen::default();
        let by_hand = self.open(b'{').and_then(|()| {
            self.members(|r, key| match key {
                "success" => {
                    seen.first(0)?;
                    result.success = r.boolean()?;
                    Some(())
                }
                "message_id" => {
                    seen.first(1)?;
                    result.message_id = r.optional_string()?;
                    Some(())
                }
                _ => None,
            })
        });
        if by_hand.is_some() {
            return Some(result);
        }
        self.at = start;
        self.serde::<Object<ActionResult>>().map(|o| o.0)
    }

    fn outbound(&mut self) -> Option<Outbound> {
        let mut request_id = None;
        let mut action = None;
        let mut platform = None;
        let mut bot_id = None;
        let mut seen = Seen::default();
        while self.more()? {
            match self.key()? {
                "requestId" => {
                    seen.first(0)?;
                    request_id = Some(RequestId(self.owned_string()?));
                }
                "action" => {
                    seen.first(1)?;
                    action = Some(self.action()?);
                }
                "platform" => {
                    seen.first(2)?;
                    platform = self.optional_owned_string()?;
                }
                "botId" => {
                    seen.first(3)?;
                    bot_id = self.optional_owned_string()?;
                }
                _ => self.skip(1)?,
            }
        }
        Some(Outbound {
            request_id: request_id?,
            action: action?,
            platform,
            bot_id,
        })
    }

    /// The common actions (`send`, `typing`, `follow_up`, `edit`) by hand; any other op,
    /// an `op` that is not the first key (which the general path buffers into a tree
    /// first), or anything the hand reader does not take, by serde_json from the action's
    /// slice: that is exactly what the general path makes of the same value.
    fn action(&mut self) -> Option<OutboundAction> {
        let start = self.at;
        let by_hand = self.open(b'{').and_then(|()| {
            if self.key()? != "op" {
                return None;
            }
            match self.raw_string()? {
                ("send", false) => self.send().map(OutboundAction::Send),
                ("typing", false) => self.typing().map(OutboundAction::Typing),
                ("follow_up", false) => self.follow_up().map(OutboundAction::FollowUp),
                ("edit", false) => self.edit().map(OutboundAction::Edit),
                _ => None,
            }
        });
        if by_hand.is_some() {
            return by_hand;
        }
        self.at = start;
        self.serde()
    }

    // The actions' readers start after the `op` member, as the derived visitors the
    // general path hands the rest of the object to do: a later `op` (like any unknown
    // key) is skipped, a repeated field or a missing required one fails (and the action
    // then goes to serde, which reports it).

    fn send(&mut self) -> Option<SendAction> {
        let (mut chat_id, mut content) = (None, None);
        let mut action = SendAction::default();
        let mut seen = Seen::default();
        while self.more()? {
            match self.key()? {
                "chat_id" => {
                    seen.first(0)?;
                    chat_id = Some(self.string()?);
                }
                "content" => {
                    seen.first(1)?;
                    content = Some(self.string()?);
                }
                "reply_to" => {
                    seen.first(2)?;
                    action.reply_to = self.optional_string()?;
                }
                "metadata" => {
                    seen.first(3)?;
                    action.metadata = self.metadata()?;
                }
                _ => self.skip(2)?,
            }
        }
        action.chat_id = chat_id?;
        action.content = content?;
        Some(action)
    }

    fn typing(&mut self) -> Option<TypingAction> {
        let mut chat_id = None;
        let mut action = TypingAction::default();
        let mut seen = Seen::default();
        while self.more()? {
            match self.key()? {
                "chat_id" => {
                    seen.first(0)?;
                    chat_id = Some(self.string()?);
                }
                "content" => {
                    seen.first(1)?;
                    action.content = self.optional_string()?;
                }
                "metadata" => {
                    seen.first(2)?;
                    action.metadata = self.metadata()?;
                }
                _ => self.skip(2)?,
            }
        }
        action.chat_id = chat_id?;
        Some(action)
    }

    fn follow_up(&mut self) -> Option<FollowUpAction> {
        let (mut session_key, mut kind, mut content) = (None, None, None);
        let mut action = FollowUpAction::default();
        let mut seen = Seen::default();
        while self.more()? {
            match self.key()? {
                "session_key" => {
                    seen.first(0)?;
                    session_key = Some(self.string()?);
                }
                "kind" => {
                    seen.first(1)?;
                    kind = Some(self.string()?);
                }
                "content" => {
                    seen.first(2)?;
                    content = Some(self.string()?);
                }
                "metadata" => {
                    seen.first(3)?;
                    action.metadata = self.metadata()?;
                }
                _ => self.skip(2)?,
            }
        }
        action.session_key = session_key?;
        action.kind = kind?;
        action.content = content?;
        Some(action)
    }

    fn edit(&mut self) -> Option<EditAction> {
        let (mut chat_id, mut message_id, mut content) = (None, None, None);
        let mut action = EditAction::default();
        let mut seen = Seen::default();
        while self.more()? {
            match self.key()? {
                "chat_id" => {
                    seen.first(0)?;
                    chat_id = Some(self.string()?);
                }
                "message_id" => {
                    seen.first(1)?;
                    message_id = Some(self.string()?);
                }
                "content" => {
                    seen.first(2)?;
                    content = Some(self.string()?);
                }
                "metadata" => {
                    seen.first(3)?;
                    action.metadata = self.metadata()?;
                }
                _ => self.skip(2)?,
            }
        }
        action.chat_id = chat_id?;
        action.message_id = message_id?;
        action.content = content?;
        Some(action)
    }

    /// `metadata`: an object of strings (what gateways send: tenant ids, anchors) by
    /// hand, inserted as serde_json's own map visitor inserts them (a repeated key
    /// replaces the value, as there); any other shape by serde_json from its slice.
    fn metadata(&mut self) -> Option<Metadata> {
        let start = self.at;
        let mut metadata = Metadata::new();
        let by_hand = self.open(b'{').and_then(|()| {
            self.members(|r, key| {
                let value = r.owned_string()?;
                metadata.insert(key.to_owned(), serde_json::Value::String(value));
                Some(())
            })
        });
        if by_hand.is_some() {
            return Some(metadata);
        }
        self.at = start;
        self.serde()
    }

    fn passthrough(&mut self) -> Option<PassthroughFrame> {
        let mut forward = None;
        let mut buffer_id = None;
        let mut seen = Seen::default();
        while self.more()? {
            match self.key()? {
                "forward" => {
                    seen.first(0)?;
                    forward = Some(self.forward()?);
                }
                "bufferId" => {
                    seen.first(1)?;
                    buffer_id = self.buffer_id()?;
                }
                _ => self.skip(1)?,
            }
        }
        Some(PassthroughFrame {
            forward: forward?,
            buffer_id,
        })
    }

    fn forward(&mut self) -> Option<Box<PassthroughForward>> {
        self.open(b'{')?;
        let mut forward = Box::new(PassthroughForward::new(Str::new(), Bytes::new()));
        let f = &mut *forward;
        let mut seen = Seen::default();
        self.members(|r, key| {
            match key {
                "platform" => {
                    seen.first(0)?;
                    f.platform = r.string()?;
                }
                "botId" => {
                    seen.first(1)?;
                    f.bot_id = r.string()?;
                }
                "method" => {
                    seen.first(2)?;
                    f.method = r.string()?;
                }
                "path" => {
                    seen.first(3)?;
                    f.path = r.string()?;
                }
                "headers" => {
                    seen.first(4)?;
                    f.headers = r.headers()?;
                }
                "bodyB64" => {
                    seen.first(5)?;
                    f.body = match r.raw_string()? {
                        (raw, false) => body(raw),
                        (raw, true) => body(&unescape(raw)?),
                    };
                }
                "profile" => {
                    seen.first(6)?;
                    f.profile = r.optional_string()?;
                }
                _ => r.skip(2)?,
            }
            Some(())
        })?;
        Some(forward)
    }

    /// `[[name, value], ...]`.
    fn headers(&mut self) -> Option<Vec<(Str, Str)>> {
        self.open(b'[')?;
        let mut headers = Vec::new();
        self.ws();
        if self.peek()? == b']' {
            self.at += 1;
            return Some(headers);
        }
        loop {
            self.open(b'[')?;
            let name = self.string()?;
            self.open(b',')?;
            let value = self.string()?;
            self.open(b']')?;
            headers.push((name, value));
            match self.next_byte()? {
                b',' => {}
                b']' => return Some(headers),
                _ => return None,
            }
        }
    }
}

/// Where a source field goes.
enum Slot<'s> {
    Str(&'s mut Str),
    Opt(&'s mut Option<Str>),
    Bool(&'s mut bool),
    OptBool(&'s mut Option<bool>),
}

/// A body as the general path decodes it.
fn body(text: &str) -> Result<Bytes, crate::wire::BodyError> {
    decode_base64(text).map_err(|reason| crate::wire::BodyError {
        reason,
        encoded: text.to_owned(),
    })
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
/// control character, an unknown escape), which makes it the check of an escaped string
/// [`Reader::string_text`] has not checked. The plain runs between escapes are found
/// eight bytes at a time and copied whole.
fn unescape(raw: &str) -> Option<String> {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let mut at = 0;
    while let Some(&b) = bytes.get(at) {
        if b == b'\\' {
            let (c, len) = escape(bytes.get(at + 1..)?)?;
            out.push(c);
            at += 1 + len;
            continue;
        }
        let rest = bytes.get(at..)?;
        let run = find_special(rest).unwrap_or(rest.len());
        if run == 0 {
            // A raw control character (or a stray quote).
            return None;
        }
        // The run ends at an ASCII byte or at the end: a whole number of characters.
        out.push_str(raw.get(at..at + run)?);
        at += run;
    }
    Some(out)
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

/// The index in `rest` (a string's contents on) of the quote that closes the string,
/// when a backslash comes first at `from`: the first quote after an even number of
/// backslashes. Right for a well-formed string; anything else is then rejected by
/// [`unescape`], whose escapes pair backslashes exactly as this counts them.
fn closing_quote(rest: &[u8], from: usize) -> Option<usize> {
    let mut at = from;
    loop {
        let quote = at + memchr::memchr(b'"', rest.get(at..)?)?;
        let before = rest.get(..quote)?;
        let backslashes = before.iter().rev().take_while(|&&b| b == b'\\').count();
        if backslashes % 2 == 0 {
            return Some(quote);
        }
        at = quote + 1;
    }
}

/// Index of the first `"`, `\\` or control character in `bytes`: what ends a run of
/// plain string text. Eight bytes at a time, as serde_json scans: a byte equal to `x` is
/// a zero byte of `word ^ x`, and a zero byte (or one below `0x20`) is the only kind that
/// borrows into its high bit when `0x01` (or `0x20`) is subtracted from every byte. Only
/// the lowest flagged byte is exact, which is the one wanted.
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
        let flagged = (below(quote, 1) | below(backslash, 1) | below(word, 0x20)) & HIGH;
        if flagged != 0 {
            return Some(offset + flagged.trailing_zeros() as usize / 8);
        }
        offset += 8;
    }
    let tail = chunks.remainder().iter();
    tail.map(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .position(|special| special)
        .map(|at| offset + at)
}

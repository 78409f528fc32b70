//! The frames a gateway receives: `inbound`, `outbound_result`, `passthrough_forward`.
#![deny(clippy::indexing_slicing)]

use bytes::Bytes;

use super::{Keys, Object, Reader, Seen, unescape};
use crate::wire::tagged::{Objects, OptionalObject};
use crate::wire::{
    ActionResult, Inbound, MessageEvent, MessageType, OutboundResult, PassthroughForward,
    PassthroughFrame, RequestId, SessionSource, Str, decode_base64_bytes,
};

impl Reader<'_> {
    pub(super) fn inbound(&mut self) -> Option<Inbound> {
        let mut event = None;
        let mut buffer_id = None;
        static KEYS: Keys<2> = Keys::new([b"event", b"bufferId"]);
        let (mut seen, mut next) = (Seen::default(), 0);
        while self.more()? {
            // Each key by its index in `KEYS`, which is also its bit in `seen`.
            match self.known_key(&KEYS, &mut next)? {
                key @ 0 => {
                    seen.first(key)?;
                    event = Some(self.event()?);
                }
                key @ 1 => {
                    seen.first(key)?;
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
        static KEYS: Keys<11> = Keys::new([
            b"text",
            b"message_type",
            b"message_id",
            b"reply_to_message_id",
            b"reply_to",
            b"media_urls",
            b"media",
            b"context",
            b"context_error",
            b"prompt_response",
            b"source",
        ]);
        let mut seen = Seen::default();
        // Each key by its index in `KEYS`, which is also its bit in `seen`.
        self.known_members(&KEYS, |r, key| {
            match key {
                0 => {
                    seen.first(key)?;
                    e.text = r.string()?;
                }
                1 => {
                    seen.first(key)?;
                    e.message_type = match r.raw_string()? {
                        (raw, false) => match MessageType::known(raw) {
                            Some(known) => known,
                            None => MessageType::from_wire(r.text_of(raw)?),
                        },
                        (raw, true) => MessageType::from_wire(&unescape(r.text_of(raw)?)?),
                    };
                }
                2 => {
                    seen.first(key)?;
                    e.message_id = r.optional_string()?;
                }
                3 => {
                    seen.first(key)?;
                    e.reply_to_message_id = r.optional_string()?;
                }
                4 => {
                    seen.first(key)?;
                    e.reply_to = r.serde::<OptionalObject<_>>()?.0;
                }
                5 => {
                    seen.first(key)?;
                    e.media_urls = r.serde()?;
                }
                6 => {
                    seen.first(key)?;
                    e.media = r.serde::<Objects<_>>()?.0;
                }
                7 => {
                    seen.first(key)?;
                    e.context = r.serde::<Objects<_>>()?.0;
                }
                8 => {
                    seen.first(key)?;
                    e.context_error = r.optional_boolean()?;
                }
                9 => {
                    seen.first(key)?;
                    e.prompt_response = r.serde::<OptionalObject<_>>()?.0;
                }
                10 => {
                    seen.first(key)?;
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
        static KEYS: Keys<23> = Keys::new([
            b"platform",
            b"chat_id",
            b"chat_name",
            b"chat_type",
            b"user_id",
            b"user_name",
            b"user_display_name",
            b"user_handle",
            b"thread_id",
            b"chat_topic",
            b"user_id_alt",
            b"chat_id_alt",
            b"scope_id",
            b"guild_id",
            b"parent_chat_id",
            b"message_id",
            b"profile",
            b"auto_thread_created",
            b"auto_thread_initial_name",
            b"prospective_thread_id",
            b"is_bot",
            b"one_to_one_verified",
            b"message_is_edit",
        ]);
        // Each key by its index in `KEYS`, which is also its bit in `seen`.
        self.known_members(&KEYS, |r, key| {
            let slot = match key {
                0 => Slot::Str(&mut s.platform),
                1 => Slot::Str(&mut s.chat_id),
                2 => Slot::Opt(&mut s.chat_name),
                3 => Slot::Str(&mut s.chat_type),
                4 => Slot::Opt(&mut s.user_id),
                5 => Slot::Opt(&mut s.user_name),
                6 => Slot::Opt(&mut s.user_display_name),
                7 => Slot::Opt(&mut s.user_handle),
                8 => Slot::Opt(&mut s.thread_id),
                9 => Slot::Opt(&mut s.chat_topic),
                10 => Slot::Opt(&mut s.user_id_alt),
                11 => Slot::Opt(&mut s.chat_id_alt),
                12 => Slot::Opt(&mut s.scope_id),
                13 => Slot::Opt(&mut guild_id),
                14 => Slot::Opt(&mut s.parent_chat_id),
                15 => Slot::Opt(&mut s.message_id),
                16 => Slot::Opt(&mut s.profile),
                17 => Slot::Bool(&mut s.auto_thread_created),
                18 => Slot::Opt(&mut s.auto_thread_initial_name),
                19 => Slot::Opt(&mut s.prospective_thread_id),
                20 => Slot::OptBool(&mut s.is_bot),
                21 => Slot::OptBool(&mut s.one_to_one_verified),
                22 => Slot::OptBool(&mut s.message_is_edit),
                _ => return r.skip(3),
            };
            seen.first(key)?;
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

    pub(super) fn outbound_result(&mut self) -> Option<OutboundResult> {
        let mut request_id = None;
        let mut result = None;
        static KEYS: Keys<2> = Keys::new([b"requestId", b"result"]);
        let (mut seen, mut next) = (Seen::default(), 0);
        while self.more()? {
            // Each key by its index in `KEYS`, which is also its bit in `seen`.
            match self.known_key(&KEYS, &mut next)? {
                key @ 0 => {
                    seen.first(key)?;
                    request_id = Some(RequestId(self.string()?));
                }
                key @ 1 => {
                    seen.first(key)?;
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
    fn result(&mut self) -> Option<Box<ActionResult>> {
        let start = self.at;
        let mut result = ActionResult::default();
        let mut seen = Seen::default();
        static KEYS: Keys<2> = Keys::new([b"success", b"message_id"]);
        let by_hand = self.open(b'{').and_then(|()| {
            // Each key by its index in `KEYS`, which is also its bit in `seen`.
            self.known_members(&KEYS, |r, key| match key {
                0 => {
                    seen.first(key)?;
                    result.success = r.boolean()?;
                    Some(())
                }
                1 => {
                    seen.first(key)?;
                    result.message_id = r.optional_string()?;
                    Some(())
                }
                _ => None,
            })
        });
        if by_hand.is_some() {
            return Some(Box::new(result));
        }
        self.at = start;
        self.serde::<Object<Box<ActionResult>>>().map(|o| o.0)
    }

    pub(super) fn passthrough(&mut self) -> Option<PassthroughFrame> {
        let mut forward = None;
        let mut buffer_id = None;
        static KEYS: Keys<2> = Keys::new([b"forward", b"bufferId"]);
        let (mut seen, mut next) = (Seen::default(), 0);
        while self.more()? {
            // Each key by its index in `KEYS`, which is also its bit in `seen`.
            match self.known_key(&KEYS, &mut next)? {
                key @ 0 => {
                    seen.first(key)?;
                    forward = Some(self.forward()?);
                }
                key @ 1 => {
                    seen.first(key)?;
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
        static KEYS: Keys<7> = Keys::new([
            b"platform",
            b"botId",
            b"method",
            b"path",
            b"headers",
            b"bodyB64",
            b"profile",
        ]);
        let mut seen = Seen::default();
        // Each key by its index in `KEYS`, which is also its bit in `seen`.
        self.known_members(&KEYS, |r, key| {
            match key {
                0 => {
                    seen.first(key)?;
                    f.platform = r.string()?;
                }
                1 => {
                    seen.first(key)?;
                    f.bot_id = r.string()?;
                }
                2 => {
                    seen.first(key)?;
                    f.method = r.string()?;
                }
                3 => {
                    seen.first(key)?;
                    f.path = r.string()?;
                }
                4 => {
                    seen.first(key)?;
                    f.headers = r.headers()?;
                }
                5 => {
                    seen.first(key)?;
                    f.body = r.body()?;
                }
                6 => {
                    seen.first(key)?;
                    f.profile = r.optional_string()?;
                }
                _ => r.skip(2)?,
            }
            Some(())
        })?;
        Some(forward)
    }

    /// `bodyB64`, decoded. The usual body is decoded straight from the line up to the
    /// first quote, found with `memchr`, without scanning it as a string first: base64's
    /// alphabet has no quote, backslash, control or non-ASCII byte, so a body that decodes
    /// was a plain JSON string ending at that quote, and the scan would have found nothing.
    /// Anything else (escapes, a bad body, no quote) is read as a string, as before.
    fn body(&mut self) -> Option<Result<Bytes, crate::wire::BodyError>> {
        self.ws();
        let start = self.at;
        if self.peek()? == b'"' {
            let rest = self.bytes().get(start + 1..)?;
            let decoded = memchr::memchr(b'"', rest)
                .and_then(|end| Some((end, decode_base64_bytes(rest.get(..end)?).ok()?)));
            if let Some((end, body)) = decoded {
                self.at = start + 1 + end + 1;
                return Some(Ok(body));
            }
        }
        Some(match self.raw_string()? {
            (raw, false) => body(raw),
            (raw, true) => body(unescape(self.text_of(raw)?)?.as_bytes()),
        })
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

/// A body as the general path decodes it, from its (checked UTF-8) text.
fn body(text: &[u8]) -> Result<Bytes, crate::wire::BodyError> {
    decode_base64_bytes(text).map_err(|reason| crate::wire::BodyError {
        reason,
        encoded: String::from_utf8_lossy(text).into_owned(),
    })
}

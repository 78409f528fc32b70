//! The frames a gateway receives: `inbound`, `outbound_result`, `passthrough_forward`.
#![deny(clippy::indexing_slicing)]

use bytes::Bytes;

use super::{Object, Reader, Seen, unescape};
use crate::wire::tagged::{Objects, OptionalObject};
use crate::wire::{
    ActionResult, Inbound, MessageEvent, MessageType, OutboundResult, PassthroughForward,
    PassthroughFrame, RequestId, SessionSource, Str, decode_base64_bytes,
};

impl Reader<'_> {
    pub(super) fn inbound(&mut self) -> Option<Inbound> {
        let mut event = None;
        let mut buffer_id = None;
        let mut seen = Seen::default();
        while self.more()? {
            match self.key()? {
                b"event" => {
                    seen.first(0)?;
                    event = Some(self.event()?);
                }
                b"bufferId" => {
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
                b"text" => {
                    seen.first(0)?;
                    e.text = r.string()?;
                }
                b"message_type" => {
                    seen.first(1)?;
                    e.message_type = match r.raw_string()? {
                        (raw, false) => match MessageType::known(raw) {
                            Some(known) => known,
                            None => MessageType::from_wire(r.text_of(raw)?),
                        },
                        (raw, true) => MessageType::from_wire(&unescape(r.text_of(raw)?)?),
                    };
                }
                b"message_id" => {
                    seen.first(2)?;
                    e.message_id = r.optional_string()?;
                }
                b"reply_to_message_id" => {
                    seen.first(3)?;
                    e.reply_to_message_id = r.optional_string()?;
                }
                b"reply_to" => {
                    seen.first(4)?;
                    e.reply_to = r.serde::<OptionalObject<_>>()?.0;
                }
                b"media_urls" => {
                    seen.first(5)?;
                    e.media_urls = r.serde()?;
                }
                b"media" => {
                    seen.first(6)?;
                    e.media = r.serde::<Objects<_>>()?.0;
                }
                b"context" => {
                    seen.first(7)?;
                    e.context = r.serde::<Objects<_>>()?.0;
                }
                b"context_error" => {
                    seen.first(8)?;
                    e.context_error = r.optional_boolean()?;
                }
                b"prompt_response" => {
                    seen.first(9)?;
                    e.prompt_response = r.serde::<OptionalObject<_>>()?.0;
                }
                b"source" => {
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
                b"platform" => (0, Slot::Str(&mut s.platform)),
                b"chat_id" => (1, Slot::Str(&mut s.chat_id)),
                b"chat_name" => (2, Slot::Opt(&mut s.chat_name)),
                b"chat_type" => (3, Slot::Str(&mut s.chat_type)),
                b"user_id" => (4, Slot::Opt(&mut s.user_id)),
                b"user_name" => (5, Slot::Opt(&mut s.user_name)),
                b"user_display_name" => (6, Slot::Opt(&mut s.user_display_name)),
                b"user_handle" => (7, Slot::Opt(&mut s.user_handle)),
                b"thread_id" => (8, Slot::Opt(&mut s.thread_id)),
                b"chat_topic" => (9, Slot::Opt(&mut s.chat_topic)),
                b"user_id_alt" => (10, Slot::Opt(&mut s.user_id_alt)),
                b"chat_id_alt" => (11, Slot::Opt(&mut s.chat_id_alt)),
                b"scope_id" => (12, Slot::Opt(&mut s.scope_id)),
                b"guild_id" => (13, Slot::Opt(&mut guild_id)),
                b"parent_chat_id" => (14, Slot::Opt(&mut s.parent_chat_id)),
                b"message_id" => (15, Slot::Opt(&mut s.message_id)),
                b"profile" => (16, Slot::Opt(&mut s.profile)),
                b"auto_thread_created" => (17, Slot::Bool(&mut s.auto_thread_created)),
                b"auto_thread_initial_name" => (18, Slot::Opt(&mut s.auto_thread_initial_name)),
                b"prospective_thread_id" => (19, Slot::Opt(&mut s.prospective_thread_id)),
                b"is_bot" => (20, Slot::OptBool(&mut s.is_bot)),
                b"one_to_one_verified" => (21, Slot::OptBool(&mut s.one_to_one_verified)),
                b"message_is_edit" => (22, Slot::OptBool(&mut s.message_is_edit)),
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

    pub(super) fn outbound_result(&mut self) -> Option<OutboundResult> {
        let mut request_id = None;
        let mut result = None;
        let mut seen = Seen::default();
        while self.more()? {
            match self.key()? {
                b"requestId" => {
                    seen.first(0)?;
                    request_id = Some(RequestId(self.string()?));
                }
                b"result" => {
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
    fn result(&mut self) -> Option<Box<ActionResult>> {
        let start = self.at;
        let mut result = ActionResult::default();
        let mut seen = Seen::default();
        let by_hand = self.open(b'{').and_then(|()| {
            self.members(|r, key| match key {
                b"success" => {
                    seen.first(0)?;
                    result.success = r.boolean()?;
                    Some(())
                }
                b"message_id" => {
                    seen.first(1)?;
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
        let mut seen = Seen::default();
        while self.more()? {
            match self.key()? {
                b"forward" => {
                    seen.first(0)?;
                    forward = Some(self.forward()?);
                }
                b"bufferId" => {
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
                b"platform" => {
                    seen.first(0)?;
                    f.platform = r.string()?;
                }
                b"botId" => {
                    seen.first(1)?;
                    f.bot_id = r.string()?;
                }
                b"method" => {
                    seen.first(2)?;
                    f.method = r.string()?;
                }
                b"path" => {
                    seen.first(3)?;
                    f.path = r.string()?;
                }
                b"headers" => {
                    seen.first(4)?;
                    f.headers = r.headers()?;
                }
                b"bodyB64" => {
                    seen.first(5)?;
                    f.body = r.body()?;
                }
                b"profile" => {
                    seen.first(6)?;
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

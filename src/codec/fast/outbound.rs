//! The frame a connector receives: `outbound`, its `send`, `typing`, `follow_up` and `edit`
//! actions by hand, any other by serde_json from the action's slice.
#![deny(clippy::indexing_slicing)]

use super::{Keys, Reader, Seen, hex4};
use crate::wire::text;
use crate::wire::{
    EditAction, FollowUpAction, Metadata, Outbound, OutboundAction, RequestId, SendAction, Str,
    TypingAction,
};

impl Reader<'_> {
    /// Built in its box, each field written in place: the frame holds it boxed and the
    /// connector hands that box to the application, so the request (a few hundred bytes)
    /// is never moved.
    pub(super) fn outbound(&mut self) -> Option<Box<Outbound>> {
        let mut outbound = Box::new(Outbound {
            request_id: RequestId(Str::new()),
            action: OutboundAction::Typing(TypingAction::default()),
            platform: None,
            bot_id: None,
        });
        let out = &mut *outbound;
        static KEYS: Keys<4> = Keys::new([b"requestId", b"action", b"platform", b"botId"]);
        let (mut seen, mut next) = (Seen::default(), 0);
        while self.more()? {
            // Each key by its index in `KEYS`, which is also its bit in `seen`.
            match self.known_key(&KEYS, &mut next)? {
                key @ 0 => {
                    seen.first(key)?;
                    out.request_id = RequestId(self.string()?);
                }
                key @ 1 => {
                    seen.first(key)?;
                    self.action(&mut out.action)?;
                }
                key @ 2 => {
                    seen.first(key)?;
                    out.platform = self.optional_string()?;
                }
                key @ 3 => {
                    seen.first(key)?;
                    out.bot_id = self.optional_string()?;
                }
                _ => self.skip(1)?,
            }
        }
        // The id and the action are required.
        (seen.0 & 0b11 == 0b11).then_some(outbound)
    }

    /// The action, into `slot`: the common ones (`send`, `typing`, `follow_up`, `edit`)
    /// by hand; any other op, an `op` that is not the first key (which the general path
    /// buffers into a tree first), or anything the hand reader does not take, by
    /// serde_json from the action's slice: that is exactly what the general path makes of
    /// the same value.
    fn action(&mut self, slot: &mut OutboundAction) -> Option<()> {
        let start = self.at;
        static OP: Keys<1> = Keys::new([b"op"]);
        let by_hand = self.open(b'{').and_then(|()| {
            if self.known_key(&OP, &mut 0)? != 0 {
                return None;
            }
            static OPS: Keys<4> = Keys::strings([b"send", b"typing", b"follow_up", b"edit"]);
            match self.known_string(&OPS)? {
                0 => {
                    *slot = OutboundAction::Send(SendAction::default());
                    let OutboundAction::Send(send) = slot else {
                        return None;
                    };
                    self.send(send)
                }
                1 => {
                    *slot = OutboundAction::Typing(TypingAction::default());
                    let OutboundAction::Typing(typing) = slot else {
                        return None;
                    };
                    self.typing(typing)
                }
                2 => {
                    static KEYS: Keys<4> =
                        Keys::new([b"session_key", b"kind", b"content", b"metadata"]);
                    let ([session_key, kind, content], metadata) = self.three_strings(&KEYS)?;
                    *slot = OutboundAction::FollowUp(FollowUpAction {
                        session_key,
                        kind,
                        content,
                        metadata,
                    });
                    Some(())
                }
                3 => {
                    static KEYS: Keys<4> =
                        Keys::new([b"chat_id", b"message_id", b"content", b"metadata"]);
                    let ([chat_id, message_id, content], metadata) = self.three_strings(&KEYS)?;
                    *slot = OutboundAction::Edit(EditAction {
                        chat_id,
                        message_id,
                        content,
                        metadata,
                    });
                    Some(())
                }
                _ => None,
            }
        });
        if by_hand.is_some() {
            return by_hand;
        }
        self.at = start;
        *slot = self.serde()?;
        Some(())
    }

    // The actions' readers start after the `op` member, as the derived visitors the
    // general path hands the rest of the object to do: a later `op` (like any unknown
    // key) is skipped, a repeated field or a missing required one fails (and the action
    // then goes to serde, which reports it).

    fn send(&mut self, action: &mut SendAction) -> Option<()> {
        static KEYS: Keys<4> = Keys::new([b"chat_id", b"content", b"reply_to", b"metadata"]);
        let (mut seen, mut next) = (Seen::default(), 0);
        while self.more()? {
            // Each key by its index in `KEYS`, which is also its bit in `seen`.
            match self.known_key(&KEYS, &mut next)? {
                key @ 0 => {
                    seen.first(key)?;
                    action.chat_id = self.string()?;
                }
                key @ 1 => {
                    seen.first(key)?;
                    action.content = self.string()?;
                }
                key @ 2 => {
                    seen.first(key)?;
                    action.reply_to = self.optional_string()?;
                }
                key @ 3 => {
                    seen.first(key)?;
                    action.metadata = self.metadata()?;
                }
                _ => self.skip(2)?,
            }
        }
        // `chat_id` and `content` are required.
        (seen.0 & 0b11 == 0b11).then_some(())
    }

    fn typing(&mut self, action: &mut TypingAction) -> Option<()> {
        static KEYS: Keys<3> = Keys::new([b"chat_id", b"content", b"metadata"]);
        let (mut seen, mut next) = (Seen::default(), 0);
        while self.more()? {
            // Each key by its index in `KEYS`, which is also its bit in `seen`.
            match self.known_key(&KEYS, &mut next)? {
                key @ 0 => {
                    seen.first(key)?;
                    action.chat_id = self.string()?;
                }
                key @ 1 => {
                    seen.first(key)?;
                    action.content = self.optional_string()?;
                }
                key @ 2 => {
                    seen.first(key)?;
                    action.metadata = self.metadata()?;
                }
                _ => self.skip(2)?,
            }
        }
        // `chat_id` is required.
        (seen.0 & 1 == 1).then_some(())
    }

    /// The members of an action made of three required strings and an optional
    /// `metadata` (`follow_up`, `edit`), whose keys are `keys` in that order.
    fn three_strings(&mut self, keys: &Keys<4>) -> Option<([Str; 3], Metadata)> {
        let mut values: [Option<Str>; 3] = Default::default();
        let mut metadata = Metadata::new();
        let (mut seen, mut next) = (Seen::default(), 0);
        while self.more()? {
            let key = self.known_key(keys, &mut next)?;
            if key == 3 {
                seen.first(3)?;
                metadata = self.metadata()?;
                continue;
            }
            match values.get_mut(key) {
                Some(value) => {
                    seen.first(key)?;
                    *value = Some(self.string()?);
                }
                None => self.skip(2)?,
            }
        }
        let [a, b, c] = values;
        Some(([a?, b?, c?], metadata))
    }

    /// `metadata`: an object of strings (what gateways send: tenant ids, anchors) is kept
    /// as its text, checked as it is scanned, and parsed only if the application reads it
    /// (see [`Metadata`]); any other shape is read by serde_json from its slice.
    fn metadata(&mut self) -> Option<Metadata> {
        let start = self.at;
        let by_hand = self.open(b'{').and_then(|()| {
            let open = self.at.checked_sub(1)?;
            self.members(|r, _| match r.raw_string()? {
                (_, false) => Some(()),
                (raw, true) => surrogates_paired(raw).then_some(()),
            })?;
            self.bytes().get(open..self.at)
        });
        if let Some(raw) = by_hand {
            return Some(Metadata::received(text::from_source(self.source, raw)));
        }
        self.at = start;
        self.serde()
    }
}

/// Whether every `\u` escape of a string's raw text (whose escapes [`Reader::raw_string`]
/// has checked for form) that is a UTF-16 surrogate is one of a high-low pair: serde_json
/// refuses a lone one, so metadata text holding one must go its way.
fn surrogates_paired(raw: &[u8]) -> bool {
    let mut at = 0;
    while let Some(found) = memchr::memchr(b'\\', raw.get(at..).unwrap_or_default()) {
        at += found;
        let unit = |at: usize| match raw.get(at..at + 2) {
            Some(b"\\u") => raw.get(at + 2..at + 6).and_then(hex4),
            _ => None,
        };
        at += match unit(at) {
            Some(0xD800..=0xDBFF) => match unit(at + 6) {
                Some(0xDC00..=0xDFFF) => 12,
                _ => return false,
            },
            Some(0xDC00..=0xDFFF) => return false,
            Some(_) => 6,
            // A one-character escape (`\n`, `\\`, ...).
            None => 2,
        };
    }
    true
}

//! The frame a connector receives: `outbound`, its `send`, `typing`, `follow_up` and `edit`
//! actions by hand, any other by serde_json from the action's slice.
#![deny(clippy::indexing_slicing)]

use super::{Reader, Seen, hex4};
use crate::wire::text;
use crate::wire::{
    EditAction, FollowUpAction, Metadata, Outbound, OutboundAction, RequestId, SendAction, Str,
    TypingAction,
};

impl Reader<'_> {
    /// Boxed here, where it is built: the frame holds it boxed.
    pub(super) fn outbound(&mut self) -> Option<Box<Outbound>> {
        let mut request_id = None;
        let mut action = None;
        let mut platform = None;
        let mut bot_id = None;
        let mut seen = Seen::default();
        while self.more()? {
            match self.key()? {
                b"requestId" => {
                    seen.first(0)?;
                    request_id = Some(RequestId(self.string()?));
                }
                b"action" => {
                    seen.first(1)?;
                    action = Some(self.action()?);
                }
                b"platform" => {
                    seen.first(2)?;
                    platform = self.optional_string()?;
                }
                b"botId" => {
                    seen.first(3)?;
                    bot_id = self.optional_string()?;
                }
                _ => self.skip(1)?,
            }
        }
        Some(Box::new(Outbound {
            request_id: request_id?,
            action: action?,
            platform,
            bot_id,
        }))
    }

    /// The common actions (`send`, `typing`, `follow_up`, `edit`) by hand; any other op,
    /// an `op` that is not the first key (which the general path buffers into a tree
    /// first), or anything the hand reader does not take, by serde_json from the action's
    /// slice: that is exactly what the general path makes of the same value.
    fn action(&mut self) -> Option<OutboundAction> {
        let start = self.at;
        let by_hand = self.open(b'{').and_then(|()| {
            if self.key()? != b"op" {
                return None;
            }
            match self.raw_string()? {
                (b"send", false) => self.send().map(OutboundAction::Send),
                (b"typing", false) => self.typing().map(OutboundAction::Typing),
                (b"follow_up", false) => self.follow_up().map(OutboundAction::FollowUp),
                (b"edit", false) => self.edit().map(OutboundAction::Edit),
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
                b"chat_id" => {
                    seen.first(0)?;
                    chat_id = Some(self.string()?);
                }
                b"content" => {
                    seen.first(1)?;
                    content = Some(self.string()?);
                }
                b"reply_to" => {
                    seen.first(2)?;
                    action.reply_to = self.optional_string()?;
                }
                b"metadata" => {
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
                b"chat_id" => {
                    seen.first(0)?;
                    chat_id = Some(self.string()?);
                }
                b"content" => {
                    seen.first(1)?;
                    action.content = self.optional_string()?;
                }
                b"metadata" => {
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
        let ([session_key, kind, content], metadata) =
            self.three_strings(["session_key", "kind", "content"])?;
        Some(FollowUpAction {
            session_key,
            kind,
            content,
            metadata,
        })
    }

    fn edit(&mut self) -> Option<EditAction> {
        let ([chat_id, message_id, content], metadata) =
            self.three_strings(["chat_id", "message_id", "content"])?;
        Some(EditAction {
            chat_id,
            message_id,
            content,
            metadata,
        })
    }

    /// The members of an action made of three required strings, named `names`, and an
    /// optional `metadata` (`follow_up`, `edit`).
    fn three_strings(&mut self, names: [&str; 3]) -> Option<([Str; 3], Metadata)> {
        let mut values: [Option<Str>; 3] = Default::default();
        let mut metadata = Metadata::new();
        let mut seen = Seen::default();
        while self.more()? {
            let key = self.key()?;
            if key == b"metadata" {
                seen.first(3)?;
                metadata = self.metadata()?;
                continue;
            }
            match names
                .iter()
                .zip(&mut values)
                .zip(0..)
                .find(|((name, _), _)| name.as_bytes() == key)
            {
                Some(((_, value), bit)) => {
                    seen.first(bit)?;
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

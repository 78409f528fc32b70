//! What the gateway remembers about each chat so that replies reach the right tenant
//! (protocol.md §5.1–§5.2): bounded, least recently used first out.

use std::sync::Arc;

use super::*;

/// The routing facts of a chat's latest inbound: its platform, and the tenant facts
/// (scope, user, profile) a reply to the chat inherits.
///
/// The chat id and every fact concatenated, with the offsets where each ends: held inline
/// up to 86 bytes (snowflake ids and a platform name take about 70), else in one
/// shared allocation. Every inbound of a new chat records a route and, at capacity,
/// evicts the oldest: inline, that writes the new route over the evicted one's slot and
/// allocates and frees nothing. The bytes are copied from the message's strings as they
/// are and read back as text when a reply asks for them: checking them as UTF-8 on every
/// inbound was a cost paid for routes mostly never read.
#[derive(Clone)]
pub struct ChatRoute {
    /// The chat id, platform, scope, user and profile, in that order: whole UTF-8
    /// strings concatenated.
    bytes: RouteBytes,
    /// Where each of them ends in `bytes`.
    ends: [u32; 5],
    /// Which of scope, user and profile are present (bits 0, 1, 2): an absent fact and
    /// an empty one are different to the metadata a reply inherits.
    present: u8,
}

/// Longest route kept inline: what makes [`RouteBytes`] 88 bytes, and a route table slot
/// two cache lines.
const INLINE: usize = 86;

#[derive(Clone)]
enum RouteBytes {
    /// The first `len` bytes of `bytes`.
    Inline { len: u8, bytes: [u8; INLINE] },
    /// A longer route (a long profile or ids), rare.
    Shared(Arc<[u8]>),
}

/// Copies `part` into `to` (of the same length) as fixed-size moves: the first and last
/// 4, 8 or 16 bytes (overlapping in the middle), with 16-byte moves between for a longer
/// part. A route's parts are short ids of every length, and a `copy_from_slice` of each
/// was a `memcpy` call per part; these are a few loads and stores.
fn put(to: &mut [u8], part: &[u8]) {
    /// The first and last `N` bytes of `part` into `to`'s.
    fn ends<const N: usize>(to: &mut [u8], part: &[u8]) {
        if let (Some(d), Some(s)) = (to.first_chunk_mut::<N>(), part.first_chunk::<N>()) {
            *d = *s;
        }
        if let (Some(d), Some(s)) = (to.last_chunk_mut::<N>(), part.last_chunk::<N>()) {
            *d = *s;
        }
    }
    match part.len() {
        0..4 => {
            for (d, s) in to.iter_mut().zip(part) {
                *d = *s;
            }
        }
        4..8 => ends::<4>(to, part),
        8..=16 => ends::<8>(to, part),
        _ => {
            let mut at = 16;
            while at + 16 < part.len() {
                let d = to.get_mut(at..).and_then(<[u8]>::first_chunk_mut::<16>);
                let s = part.get(at..).and_then(<[u8]>::first_chunk::<16>);
                if let (Some(d), Some(s)) = (d, s) {
                    *d = *s;
                }
                at += 16;
            }
            ends::<16>(to, part);
        }
    }
}

impl PartialEq for ChatRoute {
    fn eq(&self, other: &Self) -> bool {
        // As text: which representation holds it does not matter.
        self.all_bytes() == other.all_bytes()
            && self.ends == other.ends
            && self.present == other.present
    }
}

impl Eq for ChatRoute {}

impl ChatRoute {
    /// A route of `chat_id` with these facts (each the bytes of a string); `None` if their
    /// total length does not fit the offsets (over 4 GiB, which no frame within any sane
    /// line limit carries).
    fn new(
        chat_id: &[u8],
        platform: &[u8],
        scope_id: Option<&[u8]>,
        user_id: Option<&[u8]>,
        profile: Option<&[u8]>,
    ) -> Option<Self> {
        // An absent part is empty; `present` tells it from an empty one.
        let parts = [
            chat_id,
            platform,
            scope_id.unwrap_or_default(),
            user_id.unwrap_or_default(),
            profile.unwrap_or_default(),
        ];
        let mut ends = [0usize; 5];
        let mut len = 0usize;
        for (end, part) in ends.iter_mut().zip(parts) {
            len += part.len();
            *end = len;
        }
        // The total bounds every end: one check covers them all, and no cast truncates.
        u32::try_from(len).ok()?;
        let ends = ends.map(|end| end as u32);
        let bytes = match u8::try_from(len) {
            Ok(short) if len <= INLINE => {
                let mut inline = [0u8; INLINE];
                let mut at = 0;
                for part in parts {
                    if let Some(to) = inline.get_mut(at..at + part.len()) {
                        put(to, part);
                    }
                    at += part.len();
                }
                RouteBytes::Inline {
                    len: short,
                    bytes: inline,
                }
            }
            // Two allocations (`Arc` cannot adopt the `Vec`'s buffer), for a rare route.
            _ => RouteBytes::Shared(Arc::from(parts.concat())),
        };
        let present = u8::from(scope_id.is_some())
            | u8::from(user_id.is_some()) << 1
            | u8::from(profile.is_some()) << 2;
        Some(Self {
            bytes,
            ends,
            present,
        })
    }

    /// The whole concatenation.
    fn all_bytes(&self) -> &[u8] {
        match &self.bytes {
            RouteBytes::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            RouteBytes::Shared(bytes) => bytes,
        }
    }

    /// The bytes of field `i` of the concatenation.
    fn part_bytes(&self, i: usize) -> &[u8] {
        let start = i
            .checked_sub(1)
            .and_then(|j| self.ends.get(j))
            .copied()
            .unwrap_or(0);
        let end = self.ends.get(i).copied().unwrap_or(0);
        self.all_bytes()
            .get(start as usize..end as usize)
            .unwrap_or_default()
    }

    /// Field `i` of the concatenation.
    fn part(&self, i: usize) -> &str {
        // Copied whole from strings, so the check never fails.
        std::str::from_utf8(self.part_bytes(i)).unwrap_or_default()
    }

    /// Whether optional field `i` (2, 3 or 4) is present.
    fn has(&self, i: usize) -> bool {
        self.present >> (i - 2) & 1 == 1
    }

    /// Optional field `i` (2, 3 or 4).
    fn optional(&self, i: usize) -> Option<&str> {
        self.has(i).then(|| self.part(i))
    }

    /// The bytes of optional field `i` (2, 3 or 4).
    fn optional_bytes(&self, i: usize) -> Option<&[u8]> {
        self.has(i).then(|| self.part_bytes(i))
    }

    /// The chat.
    pub fn chat_id(&self) -> &str {
        self.part(0)
    }

    /// The chat's platform.
    pub fn platform(&self) -> &str {
        self.part(1)
    }

    /// Guild / workspace.
    pub fn scope_id(&self) -> Option<&str> {
        self.optional(2)
    }

    /// Author of the latest inbound.
    pub fn user_id(&self) -> Option<&str> {
        self.optional(3)
    }

    /// Multiplex profile.
    pub fn profile(&self) -> Option<&str> {
        self.optional(4)
    }

    /// Whether `source` carries exactly these facts (compared as bytes).
    fn matches(&self, source: &crate::wire::SessionSource) -> bool {
        self.part_bytes(1) == source.platform.as_bytes()
            && self.optional_bytes(2) == source.scope_id.as_ref().map(|s| s.as_bytes())
            && self.optional_bytes(3) == source.user_id.as_ref().map(|s| s.as_bytes())
            && self.optional_bytes(4) == source.profile.as_ref().map(|s| s.as_bytes())
    }
}

impl std::fmt::Debug for ChatRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatRoute")
            .field("chat_id", &self.chat_id())
            .field("platform", &self.platform())
            .field("scope_id", &self.scope_id())
            .field("user_id", &self.user_id())
            .field("profile", &self.profile())
            .finish()
    }
}

/// A route as the key of the route table: it is known by its chat id alone, so the table
/// is looked up by the chat id's bytes and holds each route once.
#[derive(Clone, Debug)]
pub(super) struct RouteKey(ChatRoute);

impl crate::bounded::KeyBytes for RouteKey {
    fn key_bytes(&self) -> &[u8] {
        self.0.part_bytes(0)
    }
}

impl RelayMachine {
    /// The capabilities that govern replies to `chat_id` (protocol.md §3.5): the descriptor
    /// of the chat's platform when an inbound told us the platform and the connector
    /// described it, else the session default. Use it for `max_message_length`, text length
    /// in the chat's `len_unit` ([`CapabilityDescriptor::text_len`],
    /// [`CapabilityDescriptor::split`]) and op gating ([`CapabilityDescriptor::supports_op`]).
    pub fn chat_descriptor(&self, chat_id: &str) -> Option<&CapabilityDescriptor> {
        self.route(chat_id)
            .and_then(|route| self.descriptors.get(route.platform()))
            .or_else(|| self.descriptors.default())
    }

    /// What the machine remembers of `chat_id` from its latest inbound.
    pub fn route(&self, chat_id: &str) -> Option<&ChatRoute> {
        self.routes.get_key(chat_id.as_bytes()).map(|key| &key.0)
    }

    /// Remembers the routing facts of a chat's latest inbound.
    pub(super) fn record_route(&mut self, source: &crate::wire::SessionSource) {
        let chat_id = source.chat_id.as_bytes();
        if chat_id.is_empty() {
            return;
        }
        // A chat's facts seldom change between its messages: then only its age moves, and
        // nothing is copied.
        let probe = self.routes.probe(chat_id);
        if let Some((key, ())) = self.routes.probed(&probe) {
            if key.0.matches(source) {
                self.routes.touch_probed(&probe);
                return;
            }
        }
        // A copy, not slices: the route outlives the message it came in. An insert
        // replaces the chat's old route, key and all.
        fn bytes(s: &Option<crate::wire::Str>) -> Option<&[u8]> {
            s.as_ref().map(crate::wire::Str::as_bytes)
        }
        let route = ChatRoute::new(
            chat_id,
            source.platform.as_bytes(),
            bytes(&source.scope_id),
            bytes(&source.user_id),
            bytes(&source.profile),
        );
        if let Some(route) = route {
            self.routes.insert_probed(probe, RouteKey(route), ());
        }
    }

    /// Routes a reply (§5.1–§5.2): fills in the tenant metadata of its chat's latest
    /// inbound that the caller did not set, and returns the platform tag and `botId`.
    pub(super) fn apply_route(
        &self,
        action: &mut OutboundAction,
        platform: Option<&str>,
    ) -> (Option<String>, Option<String>) {
        let route = action.chat_id().and_then(|c| self.route(c));
        if let (Some(route), Some(metadata)) = (route, action.metadata_mut()) {
            for (key, value) in [
                ("scope_id", route.scope_id()),
                ("user_id", route.user_id()),
                ("profile", route.profile()),
            ] {
                if let Some(value) = value {
                    metadata
                        .entry(key)
                        .or_insert_with(|| Value::String(value.to_owned()));
                }
            }
        }
        // A chat's platform tags the reply only if this socket announced it: a connector
        // must refuse a tag for any other platform, while untagged falls back to the
        // session default.
        let platform = platform
            .map(str::to_owned)
            .or_else(|| {
                route
                    .filter(|r| self.identity(r.platform()).is_some())
                    .map(|r| r.platform().to_owned())
            })
            .or_else(|| self.follow_up_platform(action));
        let bot_id = platform
            .as_deref()
            .and_then(|p| self.identity(p))
            .map(|i| i.bot_id.clone())
            .filter(|b| !b.is_empty());
        (platform, bot_id)
    }

    /// A `follow_up` whose capability kind names an announced platform
    /// (`discord.interaction_token`) goes to that platform.
    pub(super) fn follow_up_platform(&self, action: &OutboundAction) -> Option<String> {
        let OutboundAction::FollowUp(f) = action else {
            return None;
        };
        let prefix = f.kind.split('.').next()?;
        self.identity(prefix).map(|i| i.platform.clone())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::ChatRoute;

    /// Every part length the fixed-size copies treat differently (under 4, 8 and 16, over
    /// 16 with and without a tail), at every offset the parts before leave, reads back as
    /// written, inline or shared.
    #[test]
    fn routes_read_back_their_parts_at_every_length() {
        let text: Vec<u8> = (0..90u8).map(|i| b'a' + i % 26).collect();
        let part = |start: usize, len: usize| &text[start % 40..start % 40 + len];
        for chat in 0..=35usize {
            for platform in [0, 1, 3, 4, 7, 8, 15, 16, 17, 33] {
                for user in [None, Some(0), Some(5), Some(18), Some(31)] {
                    let (c, p) = (part(1, chat), part(chat + 2, platform));
                    let u = user.map(|len| part(chat + 5, len));
                    let profile = Some(part(7, 9));
                    let route = ChatRoute::new(c, p, None, u, profile).unwrap();
                    assert_eq!(route.chat_id().as_bytes(), c);
                    assert_eq!(route.platform().as_bytes(), p);
                    assert_eq!(route.scope_id(), None);
                    assert_eq!(route.user_id().map(str::as_bytes), u);
                    assert_eq!(route.profile().map(str::as_bytes), profile);
                }
            }
        }
    }
}

//! What the gateway remembers about each chat so that replies reach the right tenant
//! (protocol.md §5.1–§5.2): bounded, least recently used first out.

use std::sync::Arc;

use super::*;

/// The routing facts of a chat's latest inbound: its platform, and the tenant facts
/// (scope, user, profile) a reply to the chat inherits.
///
/// Stored in one shared allocation: the chat id and every fact concatenated, with the
/// offsets where each ends. Every inbound of a new chat records a route (and, at capacity,
/// evicts the oldest), so four separately allocated strings per route were most of an
/// inbound's allocations; cloning a route is a reference count.
#[derive(Clone, PartialEq, Eq)]
pub struct ChatRoute {
    /// The chat id, platform, scope, user and profile, in that order.
    text: Arc<str>,
    /// Where each of them ends in `text`.
    ends: [u32; 5],
    /// Which of scope, user and profile are present (bits 0, 1, 2): an absent fact and
    /// an empty one are different to the metadata a reply inherits.
    present: u8,
}

impl ChatRoute {
    /// A route of `chat_id` with these facts; `None` if their total length does not fit
    /// the offsets (over 4 GiB, which no frame within any sane line limit carries).
    fn new(
        chat_id: &str,
        platform: &str,
        scope_id: Option<&str>,
        user_id: Option<&str>,
        profile: Option<&str>,
    ) -> Option<Self> {
        let parts = [Some(chat_id), Some(platform), scope_id, user_id, profile];
        // Built on the stack and copied once into its shared allocation: a `String` would
        // be a second allocation, since `Arc<str>` cannot adopt its buffer. A longer route
        // (over 256 bytes, rare) is built in a `String`.
        let mut stack = [0u8; 256];
        let mut heap = String::new();
        let mut ends = [0; 5];
        let mut len = 0usize;
        for (end, part) in ends.iter_mut().zip(parts) {
            let part = part.unwrap_or_default();
            if heap.is_empty() {
                match stack.get_mut(len..len + part.len()) {
                    Some(room) => room.copy_from_slice(part.as_bytes()),
                    None => {
                        let done = stack.get(..len).unwrap_or_default();
                        heap = String::from_utf8_lossy(done).into_owned();
                        heap.push_str(part);
                    }
                }
            } else {
                heap.push_str(part);
            }
            len += part.len();
            *end = u32::try_from(len).ok()?;
        }
        let text: Arc<str> = if heap.is_empty() {
            // Whole `str`s concatenated: valid UTF-8, so this never falls back.
            Arc::from(std::str::from_utf8(stack.get(..len)?).ok()?)
        } else {
            Arc::from(heap)
        };
        let present = u8::from(scope_id.is_some())
            | u8::from(user_id.is_some()) << 1
            | u8::from(profile.is_some()) << 2;
        Some(Self {
            text,
            ends,
            present,
        })
    }

    /// Field `i` of the concatenation.
    fn part(&self, i: usize) -> &str {
        let start = i
            .checked_sub(1)
            .and_then(|j| self.ends.get(j))
            .copied()
            .unwrap_or(0);
        let end = self.ends.get(i).copied().unwrap_or(0);
        // The offsets were taken at char boundaries of `text` when it was built.
        self.text
            .get(start as usize..end as usize)
            .unwrap_or_default()
    }

    /// Optional field `i` (2, 3 or 4).
    fn optional(&self, i: usize) -> Option<&str> {
        (self.present >> (i - 2) & 1 == 1).then(|| self.part(i))
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

    /// Whether `source` carries exactly these facts.
    fn matches(&self, source: &crate::wire::SessionSource) -> bool {
        self.platform() == source.platform
            && self.scope_id() == source.scope_id.as_deref()
            && self.user_id() == source.user_id.as_deref()
            && self.profile() == source.profile.as_deref()
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

/// A route as the key of the route table: it hashes and compares as its chat id alone, so
/// the table is looked up by `&str` and holds each route once (the age index shares it).
#[derive(Clone, Debug)]
pub(super) struct RouteKey(ChatRoute);

impl PartialEq for RouteKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.chat_id() == other.0.chat_id()
    }
}

impl Eq for RouteKey {}

impl std::hash::Hash for RouteKey {
    // As `str` hashes, so that `Borrow<str>` lookups find it.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.chat_id().hash(state);
    }
}

impl std::borrow::Borrow<str> for RouteKey {
    fn borrow(&self) -> &str {
        self.0.chat_id()
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
        self.routes.get_key(chat_id).map(|key| &key.0)
    }

    /// Remembers the routing facts of a chat's latest inbound.
    pub(super) fn record_route(&mut self, source: &crate::wire::SessionSource) {
        if source.chat_id.is_empty() {
            return;
        }
        // A chat's facts seldom change between its messages: then only its age moves, and
        // nothing is copied.
        match self
            .route(source.chat_id.as_str())
            .map(|r| r.matches(source))
        {
            Some(true) => {
                self.routes.touch(source.chat_id.as_str());
                return;
            }
            // The table keeps the key it holds on an insert: the old route goes first.
            Some(false) => {
                self.routes.remove(source.chat_id.as_str());
            }
            None => {}
        }
        // A copy, not slices: the route outlives the message it came in.
        let route = ChatRoute::new(
            source.chat_id.as_str(),
            source.platform.as_str(),
            source.scope_id.as_deref(),
            source.user_id.as_deref(),
            source.profile.as_deref(),
        );
        if let Some(route) = route {
            self.routes.insert(RouteKey(route), ());
        }
    }

    /// Routes a reply (§5.1–§5.2): fills in the tenant metadata of its chat's latest
    /// inbound that the caller did not set, and returns the platform tag and `botId`.
    pub(super) fn apply_route(
        &self,
        action: &mut OutboundAction,
        platform: Option<&str>,
    ) -> (Option<String>, Option<String>) {
        let route = action.chat_id().and_then(|c| self.route(c)).cloned();
        if let (Some(route), Some(metadata)) = (&route, action.metadata_mut()) {
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

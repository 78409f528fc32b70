//! What the gateway remembers about each chat so that replies reach the right tenant
//! (protocol.md §5.1–§5.2): bounded, least recently used first out.

use super::*;

/// The routing facts of a chat's latest inbound.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChatRoute {
    /// The chat's platform.
    pub platform: String,
    /// Guild / workspace.
    pub scope_id: Option<String>,
    /// Author of the latest inbound.
    pub user_id: Option<String>,
    /// Multiplex profile.
    pub profile: Option<String>,
}

impl RelayMachine {
    /// The capabilities that govern replies to `chat_id` (protocol.md §3.5): the descriptor
    /// of the chat's platform when an inbound told us the platform and the connector
    /// described it, else the session default. Use it for `max_message_length`, text length
    /// in the chat's `len_unit` ([`CapabilityDescriptor::text_len`],
    /// [`CapabilityDescriptor::split`]) and op gating ([`CapabilityDescriptor::supports_op`]).
    pub fn chat_descriptor(&self, chat_id: &str) -> Option<&CapabilityDescriptor> {
        self.routes
            .get(chat_id)
            .and_then(|route| self.descriptors.get(&route.platform))
            .or_else(|| self.descriptors.default())
    }

    /// What the machine remembers of `chat_id` from its latest inbound.
    pub fn route(&self, chat_id: &str) -> Option<&ChatRoute> {
        self.routes.get(chat_id)
    }

    /// Remembers the routing facts of a chat's latest inbound.
    pub(super) fn record_route(&mut self, source: &crate::wire::SessionSource) {
        if source.chat_id.is_empty() {
            return;
        }
        // A chat's facts seldom change between its messages: then only its age moves, and
        // nothing is cloned.
        let same = self
            .routes
            .get(source.chat_id.as_str())
            .is_some_and(|route| {
                route.platform == source.platform
                    && route.scope_id.as_deref() == source.scope_id.as_deref()
                    && route.user_id.as_deref() == source.user_id.as_deref()
                    && route.profile.as_deref() == source.profile.as_deref()
            });
        if same {
            self.routes.touch(source.chat_id.as_str());
        } else {
            self.routes.insert(
                // Copies, not slices: the route outlives the message it came in.
                std::sync::Arc::from(source.chat_id.as_str()),
                ChatRoute {
                    platform: String::from(source.platform.as_str()),
                    scope_id: source.scope_id.as_deref().map(str::to_owned),
                    user_id: source.user_id.as_deref().map(str::to_owned),
                    profile: source.profile.as_deref().map(str::to_owned),
                },
            );
        }
    }

    /// Routes a reply (§5.1–§5.2): fills in the tenant metadata of its chat's latest
    /// inbound that the caller did not set, and returns the platform tag and `botId`.
    pub(super) fn apply_route(
        &self,
        action: &mut OutboundAction,
        platform: Option<&str>,
    ) -> (Option<String>, Option<String>) {
        let route = action.chat_id().and_then(|c| self.routes.get(c)).cloned();
        if let (Some(route), Some(metadata)) = (&route, action.metadata_mut()) {
            for (key, value) in [
                ("scope_id", &route.scope_id),
                ("user_id", &route.user_id),
                ("profile", &route.profile),
            ] {
                if let Some(value) = value {
                    metadata
                        .entry(key)
                        .or_insert_with(|| Value::String(value.clone()));
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
                    .map(|r| r.platform)
                    .filter(|p| self.identity(p).is_some())
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

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
            .or(self.default_descriptor.as_ref())
    }

    /// What the machine remembers of `chat_id` from its latest inbound.
    pub fn route(&self, chat_id: &str) -> Option<&ChatRoute> {
        self.routes.get(chat_id)
    }
}

//! What the gateway remembers about each chat so that replies reach the right tenant
//! (protocol.md §5.1–§5.2): bounded, least recently used first out.

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

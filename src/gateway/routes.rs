//! What the gateway remembers about each chat so that replies reach the right tenant
//! (protocol.md §5.1–§5.2): bounded, least recently used first out.

use std::collections::{BTreeMap, HashMap};

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

/// A least-recently-used map from chat id to route. Lookups and inserts are O(log n):
/// a stamp per entry, and an ordered index from stamp to chat for eviction.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    capacity: usize,
    clock: u64,
    by_chat: HashMap<String, (ChatRoute, u64)>,
    by_age: BTreeMap<u64, String>,
}

impl Routes {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            ..Self::default()
        }
    }

    pub(crate) fn remember(&mut self, chat_id: &str, route: ChatRoute) {
        if self.capacity == 0 {
            return;
        }
        self.clock += 1;
        if let Some((old, stamp)) = self.by_chat.get_mut(chat_id) {
            self.by_age.remove(stamp);
            *old = route;
            *stamp = self.clock;
        } else {
            while self.by_chat.len() >= self.capacity {
                let Some((_, oldest)) = self.by_age.pop_first() else {
                    break;
                };
                self.by_chat.remove(&oldest);
            }
            self.by_chat.insert(chat_id.to_owned(), (route, self.clock));
        }
        self.by_age.insert(self.clock, chat_id.to_owned());
    }

    pub(crate) fn get(&self, chat_id: &str) -> Option<&ChatRoute> {
        self.by_chat.get(chat_id).map(|(route, _)| route)
    }
}

//! Requests (protocol.md §6.3) and interrupts (§6.6): each `send` resolves exactly once,
//! and every resolution goes through [`RelayMachine::resolve`], which also ends a
//! disconnect's drain when it was the last.

use super::*;

impl RelayMachine {
    /// Asks the connector to perform `action`, tagged with `platform` when given.
    ///
    /// Untagged actions for a chat seen in an inbound are tagged with that chat's
    /// platform, and the routing facts the connector needs to find the tenant
    /// (`metadata.scope_id`, `metadata.user_id`, `metadata.profile`) are added when the
    /// caller did not set them. `botId` rides with the platform when that platform was
    /// announced with one.
    ///
    /// Returns the request id, which resolves in exactly one
    /// [`GatewayEvent::Response`]; or fails at once, nothing written. Requests are accepted
    /// as soon as the socket is open, before the first descriptor, as in the reference
    /// (protocol.md §6.3): the connector processes frames in order, after the hellos.
    pub fn send(
        &mut self,
        now: Instant,
        action: impl Into<OutboundAction>,
        platform: Option<&str>,
    ) -> Result<RequestId, RequestFailure> {
        self.flush_input();
        self.writable()?;
        if self.pending.len() >= self.config.max_in_flight {
            return Err(RequestFailure::InFlightLimit {
                limit: self.config.max_in_flight,
            });
        }
        let mut action = action.into();
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
            .or_else(|| self.follow_up_platform(&action));
        let bot_id = platform
            .as_deref()
            .and_then(|p| self.identity(p))
            .map(|i| i.bot_id.clone())
            .filter(|b| !b.is_empty());
        let mut id = RequestId(self.rng.hex32());
        while self.pending.contains(&id) {
            id = RequestId(self.rng.hex32());
        }
        self.transmit(
            &Frame::Outbound(Outbound {
                request_id: id.clone(),
                action,
                platform,
                bot_id,
            }),
            Carries::Request(id.clone()),
        );
        self.pending
            .insert(id.clone(), now + self.config.request_timeout);
        Ok(id)
    }

    /// Asks the connector to stop the running turn of `session_key`. Fire-and-forget on
    /// the wire; fails at once, like a request, when it cannot be written.
    pub fn interrupt(
        &mut self,
        _now: Instant,
        session_key: &str,
        reason: Option<&str>,
    ) -> Result<(), RequestFailure> {
        self.flush_input();
        self.writable()?;
        self.transmit(
            &Frame::Interrupt(Interrupt {
                session_key: session_key.to_owned(),
                reason: reason.map(str::to_owned),
            }),
            Carries::Interrupt(session_key.to_owned()),
        );
        Ok(())
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

    pub(super) fn respond(
        &mut self,
        id: RequestId,
        result: Result<crate::wire::ActionResult, RequestFailure>,
    ) {
        self.event(GatewayEvent::Response { id, result });
    }

    /// Resolves a request taken out of `pending`, and ends a disconnect's drain when it was
    /// the last.
    pub(super) fn resolve(
        &mut self,
        id: RequestId,
        result: Result<crate::wire::ActionResult, RequestFailure>,
    ) {
        self.respond(id, result);
        self.finish_close_if_drained();
    }
}

//! Requests (protocol.md §6.3) and interrupts (§6.6): each `send` resolves exactly once,
//! and every resolution goes through [`RelayMachine::resolve`], which also ends a
//! disconnect's drain when it was the last.

use super::*;
use crate::wire::{ActionResult, Str};

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
    ) -> Result<RequestId, SendError> {
        self.flush_input();
        self.writable()?;
        if self.pending.len() >= self.config.max_in_flight {
            return Err(SendError::InFlightLimit {
                limit: self.config.max_in_flight,
            });
        }
        let mut action = action.into();
        let (platform, bot_id) = self.apply_route(&mut action, platform);
        let mut id = RequestId::from(self.rng.hex32());
        while self.pending.contains(&id) {
            id = RequestId::from(self.rng.hex32());
        }
        self.transmit(
            &Frame::Outbound(Box::new(Outbound {
                request_id: id.clone(),
                action,
                platform: platform.map(Str::from),
                bot_id: bot_id.map(Str::from),
            })),
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
    ) -> Result<(), SendError> {
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

    /// The one place a request resolves, once it is taken out of `pending`: its
    /// `Response`, and the end of a disconnect's drain when it was the last.
    pub(super) fn resolve(
        &mut self,
        id: RequestId,
        result: Result<Box<ActionResult>, RequestFailure>,
    ) {
        crate::trace::debug!(generation = self.generation, request_id = %id, outcome = %crate::trace::Outcome(&result), "request resolved");
        self.event(GatewayEvent::Response { id, result });
        self.finish_close_if_drained();
    }

    /// Requests whose result did not come in time resolve as ambiguous.
    pub(super) fn expire_requests(&mut self, now: Instant) {
        while let Some(id) = self.pending.pop_expired(now) {
            crate::trace::warn!(generation = self.generation, request_id = %id, "request timeout");
            self.resolve(id, Err(RequestFailure::Timeout));
        }
    }

    /// An `outbound_result`: resolves its request, if it is pending.
    pub(super) fn on_result(&mut self, request_id: RequestId, result: Box<ActionResult>) {
        if self.pending.remove(&request_id) {
            self.resolve(request_id, Ok(result));
        } else {
            self.diagnostic(Diagnostic::UnknownResult(request_id));
        }
    }

    /// Requests awaiting their result.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

//! Requests on the connector (protocol.md §6.3, §5): each `outbound` is handed to the
//! application once, with the identity it names, and answered exactly once; what cannot be
//! executed is answered by the machine itself.

use super::*;

impl ConnectorMachine {
    /// Requests awaiting [`respond`](Self::respond).
    pub fn in_flight(&self) -> usize {
        self.open_requests.len()
    }

    /// Sends the one `outbound_result` for `request_id`.
    pub fn respond(
        &mut self,
        _now: Instant,
        request_id: &RequestId,
        result: ActionResult,
    ) -> Result<(), ConnectorError> {
        self.flush_input();
        self.open()?;
        // The set hands back its own copy of the id for the frame: no clone.
        let Some(request_id) = self.open_requests.take(request_id) else {
            return Err(ConnectorError::UnknownRequest(request_id.clone()));
        };
        crate::trace::debug!(request_id = %request_id, outcome = %result, "request resolved");
        self.transmit(&Frame::OutboundResult(OutboundResult {
            request_id,
            result,
        }));
        Ok(())
    }

    /// An `outbound` that did not decode but names its `requestId` is answered with an
    /// `invalid_action` failure, so the gateway's request resolves now (definitely not
    /// executed) instead of timing out as ambiguous.
    pub(super) fn on_bad_frame(&mut self, e: DecodeError) {
        // An id still open belongs to a request the application will answer: a second
        // answer for it would be a duplicate result.
        if let Some(Salvage::Outbound(id)) = &e.salvage {
            if !self.open_requests.contains(id) {
                crate::trace::info!(request_id = %id, "request refused: undecodable outbound");
                let error = format!("invalid outbound: {}", e.message);
                self.transmit(&Frame::OutboundResult(OutboundResult {
                    request_id: id.clone(),
                    result: ActionResult::failure(error, Some(INVALID_ACTION)),
                }));
            }
        }
        self.diagnostic(ConnectorDiagnostic::Decode(e));
    }

    pub(super) fn on_outbound(&mut self, outbound: Outbound) {
        let Outbound {
            request_id,
            action,
            platform,
            bot_id,
        } = outbound;
        if self.open_requests.contains(&request_id) {
            return self.diagnostic(ConnectorDiagnostic::DuplicateRequest(request_id));
        }
        let identity = match &platform {
            Some(p) => self.identities.iter().find(|i| &i.platform == p),
            None => self.identities.first(),
        }
        .filter(|i| bot_id.as_ref().is_none_or(|b| *b == i.bot_id))
        .cloned();
        let Some(identity) = identity else {
            let error = format!(
                "identity {}:{} is not announced on this connection",
                platform.as_deref().unwrap_or("<default>"),
                bot_id.as_deref().unwrap_or("")
            );
            self.transmit(&Frame::OutboundResult(OutboundResult {
                request_id: request_id.clone(),
                result: ActionResult::failure(error, Some(UNKNOWN_IDENTITY)),
            }));
            crate::trace::info!(request_id = %request_id, platform, bot_id, "request refused: identity not announced");
            return self.diagnostic(ConnectorDiagnostic::UnknownIdentity {
                request_id,
                platform,
                bot_id,
            });
        };
        if self.open_requests.len() >= self.config.max_open_requests {
            self.transmit(&Frame::OutboundResult(OutboundResult {
                request_id: request_id.clone(),
                result: ActionResult::failure("connector busy: too many open requests", None),
            }));
            crate::trace::warn!(request_id = %request_id, "request refused: too many open requests");
            return self.diagnostic(ConnectorDiagnostic::TooManyRequests(request_id));
        }
        crate::trace::debug!(request_id = %request_id, platform = %identity.platform, "request received");
        self.open_requests.insert(request_id.clone());
        self.event(ConnectorEvent::Outbound {
            request_id,
            action,
            identity,
        });
    }
}

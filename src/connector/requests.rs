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
        if !self.open_requests.remove(&OpenId::of(request_id)) {
            return Err(ConnectorError::UnknownRequest(request_id.clone()));
        }
        crate::trace::debug!(request_id = %request_id, outcome = %result, "request resolved");
        if !self.closed {
            // Encoded from the caller's id and result as they are: building the frame
            // would take a copy of the id.
            let line = Transmit::outbound_result(request_id, &result);
            self.core
                .outputs
                .transmit_line(CONNECTION, line, Carries::Nothing);
        }
        Ok(())
    }

    /// An `outbound` that did not decode but names its `requestId` is answered with an
    /// `invalid_action` failure, so the gateway's request resolves now (definitely not
    /// executed) instead of timing out as ambiguous.
    pub(super) fn on_bad_frame(&mut self, e: DecodeError) {
        // An id still open belongs to a request the application will answer: a second
        // answer for it would be a duplicate result.
        if let Some(Salvage::Outbound(id)) = &e.salvage {
            if !self.open_requests.contains(&OpenId::of(id)) {
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
        let key = OpenId::of(&request_id);
        if self.open_requests.contains(&key) {
            return self.diagnostic(ConnectorDiagnostic::DuplicateRequest(request_id));
        }
        let identity = match &platform {
            Some(p) => self.identities.iter().find(|i| &i.platform == p),
            None => self.identities.first(),
        }
        .filter(|i| bot_id.as_ref().is_none_or(|b| *b == i.bot_id))
        .map(Arc::clone);
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
        self.open_requests.insert(key);
        self.event(ConnectorEvent::Outbound {
            request_id,
            action,
            identity,
        });
    }
}

/// An open request's id as the machine keeps it. Ids of up to 32 bytes (the 32 hex
/// characters gateways built on this crate mint) are kept inline, so opening and
/// answering a request allocates nothing for its bookkeeping; a longer id (any string is
/// accepted from a peer) is copied, as before. Exact either way: never a hash standing in
/// for the id, so two requests are never mistaken for one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum OpenId {
    /// The first `len` bytes of `bytes`; the rest are zero.
    Inline { len: u8, bytes: [u8; INLINE_ID] },
    /// A longer id.
    Heap(Box<str>),
}

/// Longest id kept inline.
const INLINE_ID: usize = 32;

impl OpenId {
    pub(super) fn of(id: &RequestId) -> Self {
        let text = id.as_str();
        let mut bytes = [0; INLINE_ID];
        match (u8::try_from(text.len()), bytes.get_mut(..text.len())) {
            (Ok(len), Some(prefix)) => {
                prefix.copy_from_slice(text.as_bytes());
                OpenId::Inline { len, bytes }
            }
            _ => OpenId::Heap(text.into()),
        }
    }
}

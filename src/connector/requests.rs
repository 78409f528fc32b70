//! Requests on the connector (protocol.md §6.3, §5): each `outbound` is handed to the
//! application once, with the identity it names, and answered exactly once; what cannot be
//! executed is answered by the machine itself.

use std::hash::{BuildHasher, Hash, Hasher};

use crate::hash::SeededFx;

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
    pub(super) fn on_bad_frame(&mut self, e: Box<DecodeError>) {
        // An id still open belongs to a request the application will answer: a second
        // answer for it would be a duplicate result.
        if let Some(Salvage::Outbound(id)) = &e.salvage {
            if !self.open_requests.contains(&OpenId::of(id)) {
                crate::trace::info!(request_id = %id, "request refused: undecodable outbound");
                let error = format!("invalid outbound: {}", e.message);
                self.transmit(&Frame::OutboundResult(OutboundResult {
                    request_id: id.clone(),
                    result: Box::new(ActionResult::failure(error, Some(INVALID_ACTION))),
                }));
            }
        }
        self.diagnostic(ConnectorDiagnostic::Decode(e));
    }

    pub(super) fn on_outbound(&mut self, request: Box<Outbound>) {
        let Outbound {
            request_id,
            platform,
            bot_id,
            ..
        } = &*request;
        let identity = match platform {
            Some(p) => self.identities.iter().find(|i| &i.platform == p),
            None => self.identities.first(),
        }
        .filter(|i| bot_id.as_ref().is_none_or(|b| *b == i.bot_id))
        .map(Arc::clone);
        let open = self.open_requests.len();
        // Opened first, so that a request is hashed once on its way in; a duplicate is
        // refused before anything else, and a refusal below closes it again.
        if !self.open_requests.insert(OpenId::of(request_id)) {
            let Outbound { request_id, .. } = *request;
            return self.diagnostic(ConnectorDiagnostic::DuplicateRequest(request_id));
        }
        let Some(identity) = identity else {
            self.open_requests.remove(&OpenId::of(request_id));
            let Outbound {
                request_id,
                platform,
                bot_id,
                ..
            } = *request;
            let error = format!(
                "identity {}:{} is not announced on this connection",
                platform.as_deref().unwrap_or("<default>"),
                bot_id.as_deref().unwrap_or("")
            );
            self.transmit(&Frame::OutboundResult(OutboundResult {
                request_id: request_id.clone(),
                result: Box::new(ActionResult::failure(error, Some(UNKNOWN_IDENTITY))),
            }));
            crate::trace::info!(request_id = %request_id, platform = platform.as_deref(), bot_id = bot_id.as_deref(), "request refused: identity not announced");
            return self.diagnostic(ConnectorDiagnostic::UnknownIdentity {
                request_id,
                platform: platform.map(String::from),
                bot_id: bot_id.map(String::from),
            });
        };
        if open >= self.config.max_open_requests {
            self.open_requests.remove(&OpenId::of(request_id));
            let Outbound { request_id, .. } = *request;
            self.transmit(&Frame::OutboundResult(OutboundResult {
                request_id: request_id.clone(),
                result: Box::new(ActionResult::failure(
                    "connector busy: too many open requests",
                    None,
                )),
            }));
            crate::trace::warn!(request_id = %request_id, "request refused: too many open requests");
            return self.diagnostic(ConnectorDiagnostic::TooManyRequests(request_id));
        }
        crate::trace::debug!(request_id = %request_id, platform = %identity.platform, "request received");
        self.event(ConnectorEvent::Outbound { request, identity });
    }
}

/// An open request's id as the machine keeps it. Ids of up to 32 bytes (the 32 hex
/// characters gateways built on this crate mint) are kept inline, so opening and
/// answering a request allocates nothing for its bookkeeping; a longer id (any string is
/// accepted from a peer) is copied, as before. Exact either way: never a hash standing in
/// for the id, so two requests are never mistaken for one.
#[derive(Debug, Clone, PartialEq, Eq)]
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
        // Bytes, not `as_str`: that checks them as UTF-8 again on every call.
        let text = id.0.as_bytes();
        // The usual id fills the array: a copy of fixed size, not a call to `memcpy`.
        if let Ok(bytes) = <[u8; INLINE_ID]>::try_from(text) {
            return OpenId::Inline {
                len: INLINE_ID as u8,
                bytes,
            };
        }
        let mut bytes = [0; INLINE_ID];
        match (u8::try_from(text.len()), bytes.get_mut(..text.len())) {
            (Ok(len), Some(prefix)) => {
                prefix.copy_from_slice(text);
                OpenId::Inline { len, bytes }
            }
            _ => OpenId::Heap(id.as_str().into()),
        }
    }
}

impl Hash for OpenId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The id's bytes, whichever way it is kept: equal ids are equal keys.
        state.write(self.as_bytes());
    }
}

impl OpenId {
    fn as_bytes(&self) -> &[u8] {
        match self {
            OpenId::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            OpenId::Heap(text) => text.as_bytes(),
        }
    }
}

/// Builds the hashers of the open-request table: the gateway's tables' hash
/// ([`SeededFx`]), from a per-machine random seed. A 32-byte id is two folded multiplies.
///
/// SipHash, the default, hashed each id three times per request (the duplicate check,
/// the insert, the answer) for several percent of the receive path. The ids come from
/// the authenticated gateway and the table is bounded (`max_open_requests`), so, as for
/// the gateway's tables, a fast seeded hash is enough: colliding ids cannot be computed
/// offline, and even all-colliding ids cost a bounded probe.
pub(super) fn id_hashing() -> SeededFx {
    SeededFx::new(std::collections::hash_map::RandomState::new().hash_one(0x6f70_656e_u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inline up to 32 bytes, heap beyond; equal ids are equal keys that hash alike, and
    /// ids that differ only past a prefix or by length stay apart.
    #[test]
    fn open_ids_are_exact_and_hash_alike() {
        let hashing = id_hashing();
        let ids = ["", "a", "a\0", "0123456789abcdef0123456789abcdef"];
        let long = "0123456789abcdef0123456789abcdef0";
        let keys: Vec<OpenId> = ids
            .iter()
            .chain([&long])
            .map(|id| OpenId::of(&RequestId::from(*id)))
            .collect();
        assert!(matches!(keys[3], OpenId::Inline { len: 32, .. }));
        assert!(matches!(keys[4], OpenId::Heap(_)));
        for (i, a) in keys.iter().enumerate() {
            for (j, b) in keys.iter().enumerate() {
                assert_eq!(a == b, i == j, "{a:?} {b:?}");
            }
            let again = a.clone();
            assert_eq!(hashing.hash_one(a), hashing.hash_one(&again));
        }
        let mut set = HashSet::with_hasher(hashing);
        assert!(keys.iter().all(|k| set.insert(k.clone())));
        assert!(keys.iter().all(|k| !set.insert(k.clone())));
    }
}

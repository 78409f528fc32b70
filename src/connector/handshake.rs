//! The connector's side of the handshake (protocol.md §6.2): each `hello` adds an
//! identity to the socket; the application answers with a descriptor.

use super::*;

impl ConnectorMachine {
    /// The identities announced so far, in order; the first is the session default.
    pub fn identities(&self) -> &[Arc<Identity>] {
        &self.identities
    }

    /// A descriptor was sent: the handshake is answered.
    pub fn is_handshaken(&self) -> bool {
        self.handshaken
    }

    /// Answers a `hello` with the platform's capabilities. The first descriptor completes
    /// the handshake and starts the replay of the buffered backlog.
    pub fn send_descriptor(
        &mut self,
        _now: Instant,
        descriptor: CapabilityDescriptor,
    ) -> Result<(), ConnectorError> {
        self.flush_input();
        self.open()?;
        if !self
            .identities
            .iter()
            .any(|i| i.platform == descriptor.platform)
        {
            return Err(ConnectorError::NotAnnounced(descriptor.platform));
        }
        crate::trace::debug!(platform = %descriptor.platform, first = !self.handshaken, "descriptor sent: identity handshaken");
        self.transmit(&Frame::Descriptor(Descriptor {
            descriptor: Box::new(descriptor),
        }));
        self.handshaken = true;
        Ok(())
    }

    pub(super) fn on_hello(&mut self, now: Instant, identity: Identity) {
        let repeated = self
            .identities
            .iter()
            .any(|i| i.platform == identity.platform);
        if repeated || self.identities.len() >= self.config.max_identities {
            crate::trace::info!(platform = %identity.platform, repeated, "hello refused");
            return self.diagnostic(ConnectorDiagnostic::RefusedHello(identity.platform));
        }
        // The manifest is the application's, once; what the socket keeps is who it is.
        self.identities.push(Arc::new(Identity::new(
            &identity.platform,
            &identity.bot_id,
        )));
        self.hello_due = None;
        if self.ping_due.is_none() && !self.closed {
            self.ping_due = self
                .config
                .ping_interval
                .filter(|d| !d.is_zero())
                .map(|t| now + t);
        }
        crate::trace::debug!(platform = %identity.platform, bot_id = %identity.bot_id, "hello received");
        self.event(ConnectorEvent::Hello { identity });
    }
}

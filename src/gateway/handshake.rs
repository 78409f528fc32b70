//! The handshake (protocol.md §6.2): dial, one `hello` per identity, and the descriptors
//! that open the connection and say what each platform can do (§3.5).

use super::*;

impl RelayMachine {
    /// Starts the first connection: asks the driver to dial. Does nothing unless idle.
    pub fn connect(&mut self, now: Instant) -> Result<(), SendError> {
        self.flush_input();
        self.observe(now);
        match self.state {
            State::Idle => {
                self.dial(now, DialPurpose::Initial);
                Ok(())
            }
            State::Closed => Err(SendError::Closed),
            State::Revoked => Err(SendError::Revoked),
            State::Dialing(_) | State::Connected | State::Waiting | State::Held => Ok(()),
        }
    }

    /// The dial asked for succeeded: the WebSocket is open. Writes one `hello` per
    /// identity and starts the handshake timer. Ignored unless a dial is in progress.
    pub fn on_connected(&mut self, now: Instant, generation: u64) {
        self.flush_input();
        self.observe(now);
        let State::Dialing(_) = self.state else {
            return;
        };
        if generation != self.generation {
            // The answer to a dial that was abandoned: its socket is the driver's to drop.
            return;
        }
        self.timers.clear(TimerKind::Dial);
        if let Some(interval) = self.config.ping_interval {
            self.timers.set(TimerKind::Ping, now + interval);
        }
        if let Some(timeout) = self.config.liveness_timeout {
            self.timers.set(TimerKind::Liveness, now + timeout);
        }
        if std::mem::take(&mut self.auth_retry_pending) {
            // Stamped only once the upgrade succeeded, so a network failure leaves the
            // marker for the next attempt.
            self.auth_retry_generation = std::num::NonZeroU64::new(self.generation);
        }
        self.dormant = false;
        self.descriptors.clear();
        self.core.reset_input();
        self.socket = Some(self.generation);
        self.connection = Some(Connection {
            generation: self.generation,
            open_since: None,
            idle_sent: 0,
            idle_acked: 0,
            idle_waiter: None,
            closing: false,
            dormant_close: false,
        });
        self.state = State::Connected;
        crate::trace::debug!(
            generation = self.generation,
            identities = self.config.identities.len(),
            "connected: one hello per identity"
        );
        for identity in self.config.identities.clone() {
            self.transmit(
                &Frame::Hello(Box::new(Identity {
                    platform: identity.platform,
                    bot_id: identity.bot_id,
                    command_manifest: identity.command_manifest,
                })),
                Carries::Nothing,
            );
        }
        self.timers
            .set(TimerKind::Handshake, now + self.config.handshake_timeout);
    }

    pub(super) fn on_descriptor(&mut self, now: Instant, descriptor: Box<CapabilityDescriptor>) {
        let new_platform =
            !descriptor.platform.is_empty() && !self.descriptors.contains(&descriptor.platform);
        if new_platform && self.descriptors.len() >= self.config.max_identities {
            // A connector describes what was announced, and no more than `max_identities`
            // can be; without this bound every new platform name a peer invents would be
            // kept until the connection ends.
            return self.diagnostic(Diagnostic::TooManyDescriptors(descriptor.platform));
        }
        let announced = self
            .config
            .identities
            .iter()
            .any(|i| i.platform == descriptor.platform || i.platform == "relay");
        if !announced {
            self.diagnostic(Diagnostic::UnannouncedDescriptor(
                descriptor.platform.clone(),
            ));
        }
        // The machine keeps one copy (none twice for the default); the event has the other.
        let first = self
            .descriptors
            .insert(CapabilityDescriptor::clone(&descriptor));
        if first {
            self.handshake_succeeded = true;
            self.timers.clear(TimerKind::Handshake);
            if let Some(connection) = self.connection.as_mut() {
                connection.open_since = Some(now);
            }
            // Acks the application made while no connection could carry them.
            for id in self.handed.take_owed() {
                self.write_ack(id);
            }
            crate::trace::debug!(generation = self.generation, platform = %descriptor.platform, "handshake complete");
            self.event(GatewayEvent::HandshakeComplete {
                platform: descriptor.platform.clone(),
            });
        }
        crate::trace::debug!(generation = self.generation, platform = %descriptor.platform, bot_id = self.identity(&descriptor.platform).map(|i| i.bot_id.as_str()), first, "descriptor received: identity handshaken");
        self.event(GatewayEvent::Descriptor(descriptor));
    }

    /// The first descriptor of the current connection: the session default.
    pub fn default_descriptor(&self) -> Option<&CapabilityDescriptor> {
        self.descriptors.default()
    }

    /// The latest descriptor for `platform` on the current connection.
    pub fn descriptor(&self, platform: &str) -> Option<&CapabilityDescriptor> {
        self.descriptors.get(platform)
    }

    /// Every descriptor of the current connection, by platform.
    pub fn descriptors(&self) -> impl Iterator<Item = &CapabilityDescriptor> {
        self.descriptors.iter()
    }

    pub(super) fn identity(&self, platform: &str) -> Option<&Identity> {
        self.config
            .identities
            .iter()
            .find(|i| i.platform == platform)
    }

    /// No descriptor came in time: the connection is given up.
    pub(super) fn on_handshake_timeout(&mut self, now: Instant) {
        if self.state == State::Connected {
            crate::trace::warn!(
                generation = self.generation,
                "handshake timeout: no descriptor in time"
            );
            self.close_socket("handshake timeout", now);
            self.end_connection(now, End::HandshakeTimeout);
        }
    }

    /// The configured identities, in `hello` order.
    pub fn identities(&self) -> &[Identity] {
        &self.config.identities
    }
}

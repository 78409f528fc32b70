//! Going idle and dormant (protocol.md §6.7, §6.8): `going_idle` correlated by count on
//! its connection, and the dormant close.

use super::*;

impl RelayMachine {
    /// The last `go_dormant` was acknowledged and no dial has succeeded since.
    pub fn is_dormant(&self) -> bool {
        self.dormant
    }

    /// Asks the connector to deliver further inbound for this instance to its durable
    /// buffer only. Ends in one [`GatewayEvent::GoingIdle`] (acked, or not within the
    /// go-idle timeout). While one is pending, another call joins it.
    ///
    /// The wire has no correlation id, so acks are matched by count on this connection: a
    /// late ack for a timed-out request can never satisfy a newer one. The price is that
    /// if a connector never answers one `going_idle`, no later one on the same connection
    /// can be acknowledged either; a new connection starts the count afresh.
    pub fn go_idle(&mut self, now: Instant) -> Result<(), SendError> {
        self.flush_input();
        self.start_idle(now, false)
    }

    /// [`go_idle`](Self::go_idle), then on ack close the socket and re-dial on the dormant
    /// cadence (usually parked by [`hold_redial`](Self::hold_redial) until the application
    /// has work). Without an ack the connection stays as it is.
    pub fn go_dormant(&mut self, now: Instant) -> Result<(), SendError> {
        self.flush_input();
        self.start_idle(now, true)
    }

    pub(super) fn start_idle(&mut self, now: Instant, dormant: bool) -> Result<(), SendError> {
        self.writable()?;
        let Some(connection) = self.connection.as_mut() else {
            return Err(SendError::NotConnected);
        };
        if let Some(waiter) = connection.idle_waiter.as_mut() {
            *waiter |= dormant;
            return Ok(());
        }
        connection.idle_waiter = Some(dormant);
        connection.idle_sent += 1;
        self.transmit(&Frame::GoingIdle, Carries::Nothing);
        self.timers
            .set(TimerKind::GoIdle, now + self.config.go_idle_timeout);
        Ok(())
    }

    pub(super) fn on_going_idle_ack(&mut self) {
        let Some(connection) = self.connection.as_mut() else {
            return;
        };
        if connection.idle_acked >= connection.idle_sent {
            // No `going_idle` is outstanding: this ack answers nothing. Counting it would
            // put the counts out of step for good, and no later request could ever be
            // answered on this connection.
            return self.diagnostic(Diagnostic::StrayGoingIdleAck);
        }
        connection.idle_acked += 1;
        let answers_latest = connection.idle_acked == connection.idle_sent;
        let waiter = if answers_latest {
            connection.idle_waiter.take()
        } else {
            None
        };
        let Some(dormant) = waiter else {
            return self.diagnostic(Diagnostic::StrayGoingIdleAck);
        };
        self.timers.clear(TimerKind::GoIdle);
        self.event(GatewayEvent::GoingIdle {
            acked: true,
            dormant,
        });
        if dormant {
            // Close once the rest of this input is processed: frames the connector wrote
            // before its ack (a result, say) arrived and must not be lost.
            if let Some(connection) = self.connection.as_mut() {
                connection.dormant_close = true;
            }
        }
    }

    /// No `going_idle_ack` came in time: the wait ends unacknowledged.
    pub(super) fn on_go_idle_timeout(&mut self) {
        if let Some(dormant) = self.connection.as_mut().and_then(|c| c.idle_waiter.take()) {
            self.event(GatewayEvent::GoingIdle {
                acked: false,
                dormant,
            });
        }
    }
}

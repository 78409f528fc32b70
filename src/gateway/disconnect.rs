//! Disconnect and its drain grace (protocol.md §6.9).

use super::*;

/// The pause a disconnect grants pending requests, from the remaining shutdown budget:
/// `max(0, min(5 s, budget − 3.5 s))` (protocol.md §6.9). 5 s gives 1.5 s; 3.5 s or less
/// gives none.
pub fn drain_grace(budget: Duration) -> Duration {
    budget
        .saturating_sub(Duration::from_millis(3500))
        .min(Duration::from_secs(5))
}

impl RelayMachine {
    /// Shuts down for good: new commands fail at once; pending requests may finish for
    /// [`drain_grace`] of `budget` (the configured `disconnect_budget` when `None`); then,
    /// once the application has taken every output queued before (so a delivery that came
    /// in the same message as the last result can still be acked), the socket is closed,
    /// what is left fails as ambiguous ([`RequestFailure::Drained`]) and
    /// [`GatewayEvent::Closed`] ends the stream.
    pub fn disconnect(&mut self, now: Instant, budget: Option<Duration>) {
        self.flush_input();
        self.observe(now);
        match self.state {
            State::Closed | State::Revoked => {}
            State::Connected => {
                let Some(connection) = self.connection.as_mut() else {
                    return self.finish_close();
                };
                if connection.closing {
                    return;
                }
                connection.closing = true;
                let grace = drain_grace(budget.unwrap_or(self.config.disconnect_budget));
                if self.pending.is_empty() || grace.is_zero() {
                    self.close_due = true;
                } else {
                    self.timers.set(TimerKind::Drain, now + grace);
                }
            }
            State::Dialing(_) => {
                // A socket may be opening; tell the driver to abandon it.
                self.core.outputs.command(
                    Some(self.generation),
                    ConnectionCommand::Close {
                        code: 1000,
                        reason: "disconnect".to_owned(),
                    },
                );
                self.finish_close();
            }
            State::Idle | State::Waiting | State::Held => self.finish_close(),
        }
    }

    pub(super) fn finish_close_if_drained(&mut self) {
        let draining = self.connection.as_ref().is_some_and(|c| c.closing);
        if draining && self.pending.is_empty() {
            self.close_due = true;
        }
    }

    pub(super) fn finish_close(&mut self) {
        self.close_due = false;
        if let Some(connection) = self.connection.take() {
            let now = self.now;
            self.close_socket_of(connection.generation, "disconnect", now);
            if let Some(dormant) = connection.idle_waiter {
                self.event(GatewayEvent::GoingIdle {
                    acked: false,
                    dormant,
                });
            }
        }
        for id in self.pending.drain() {
            self.resolve(id, Err(RequestFailure::Drained));
        }
        self.state = State::Closed;
        self.pending_timers_clear();
        match self.closing_socket.as_mut() {
            // The terminal event waits for the socket's end: the driver keeps reading.
            Some((_, after)) => *after = AfterClose::Terminal,
            None => self.terminate(),
        }
    }

    /// The terminal event of a disconnect: the machine's last output.
    pub(super) fn terminate(&mut self) {
        self.timers = Timers::default();
        crate::trace::debug!(generation = self.generation, "closed for good");
        self.event(GatewayEvent::Closed);
        self.terminal = true;
    }

    /// Clears every timer but the wait for a closing socket.
    fn pending_timers_clear(&mut self) {
        for kind in [
            TimerKind::Handshake,
            TimerKind::GoIdle,
            TimerKind::Redial,
            TimerKind::Drain,
            TimerKind::Ping,
            TimerKind::Liveness,
            TimerKind::Dial,
        ] {
            self.timers.clear(kind);
        }
    }

    /// Asks the driver to close the current connection's socket, after its queued frames.
    pub(super) fn close_socket(&mut self, reason: &str, now: Instant) {
        if let Some(generation) = self.connection.as_ref().map(|c| c.generation) {
            self.close_socket_of(generation, reason, Some(now));
        }
    }

    /// Asks the driver to close socket `generation`; with a close timeout, the machine
    /// then waits for its end before what follows.
    pub(super) fn close_socket_of(&mut self, generation: u64, reason: &str, now: Option<Instant>) {
        let close = ConnectionCommand::Close {
            code: 1000,
            reason: reason.to_owned(),
        };
        crate::trace::debug!(generation, code = 1000, reason, "close decided");
        self.core.outputs.command(Some(generation), close);
        if let (Some(timeout), Some(now)) = (self.config.close_timeout, now) {
            if self.socket == Some(generation) {
                self.closing_socket = Some((generation, AfterClose::Nothing));
                self.timers.set(TimerKind::Close, now + timeout);
            }
        }
    }

    /// The socket asked to close reported its end, or the close timeout gave up on it.
    pub(super) fn after_close(&mut self, now: Instant, after: AfterClose) {
        match after {
            AfterClose::Nothing => {}
            AfterClose::Terminal => self.terminate(),
            AfterClose::Redial => self.schedule_redial(now),
        }
    }

    /// The socket asked to close never reported its end: drop it.
    pub(super) fn on_close_timeout(&mut self, now: Instant) {
        if let Some((socket, after)) = self.closing_socket.take() {
            crate::trace::info!(generation = socket, "close timeout: socket dropped");
            self.discard(socket);
            self.core.outputs.command(None, ConnectionCommand::Abort);
            self.socket = None;
            self.after_close(now, after);
        }
    }
}

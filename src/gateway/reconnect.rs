//! The end of a connection and what comes next (protocol.md §6.10, §7): the reader-exit
//! accounting, the two-strike 4401 rule, the backoff ladder, the redial hold.

use super::*;
use crate::wire::close::{REASON_EXPIRED, UNAUTHORIZED as CLOSE_UNAUTHORIZED};

/// Reconnect timing. The defaults are the reference's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackoffConfig {
    /// First ceiling of the ladder (1 s).
    pub base: Duration,
    /// Largest ceiling (30 s).
    pub cap: Duration,
    /// A connection that lived this long after its handshake resets the ladder (60 s).
    pub stable_after: Duration,
    /// Wait before re-dialling after going dormant (1 s); does not climb the ladder.
    pub dormant_cadence: Duration,
    /// Longest a redial hold parks a due dial (60 s).
    pub hold_cap: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(30),
            stable_after: Duration::from_secs(60),
            dormant_cadence: Duration::from_secs(1),
            hold_cap: Duration::from_secs(60),
        }
    }
}

/// Position on the ladder. It survives reconnections, so a connector that accepts and
/// drops at once sees waits that keep growing instead of a dial every second.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ladder {
    attempt: u32,
}

impl Ladder {
    /// The ceiling of the next step, then a wait uniform in `[ceiling/2, ceiling]` so a
    /// fleet that lost the same connector does not come back in step.
    pub(crate) fn next_wait(&mut self, config: &BackoffConfig, rng: &mut Rng) -> Duration {
        self.attempt = self.attempt.saturating_add(1);
        let ceiling = self.ceiling(config);
        let ms = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rng.between(ms / 2, ms))
    }

    fn ceiling(&self, config: &BackoffConfig) -> Duration {
        if config.base.is_zero() || config.cap.is_zero() {
            return Duration::ZERO;
        }
        let doublings = self.attempt.saturating_sub(1).min(32);
        config
            .base
            .checked_mul(1 << doublings)
            .map_or(config.cap, |d| d.min(config.cap))
    }

    pub(crate) fn reset(&mut self) {
        self.attempt = 0;
    }
}

impl RelayMachine {
    /// The dial asked for failed before a WebSocket was open. Ignored unless a dial is in
    /// progress.
    ///
    /// `generation` is the dial's (from [`ConnectionCommand::Dial`]); the answer to an
    /// abandoned dial is ignored.
    pub fn on_dial_failed(&mut self, now: Instant, generation: u64, reason: &str) {
        self.flush_input();
        self.observe(now);
        if generation == self.generation {
            self.dial_failed(now, None, reason);
        }
    }

    /// The socket closed (by the peer or after an error), with the close code and reason
    /// when there was a close frame.
    ///
    /// It is about the socket the driver holds. Outputs of that socket not yet taken are
    /// discarded and accounted for (see the type's documentation). While a dial is in
    /// progress and no socket is held, it counts as a failed dial that keeps its code, so
    /// a 4401 refusing the upgrade follows the auth rules; otherwise it is ignored.
    pub fn on_closed(&mut self, now: Instant, code: Option<u16>, reason: &str) {
        self.flush_input();
        self.observe(now);
        if let Some(socket) = self.socket.take() {
            self.discard(socket);
            if let Some((closing, after)) = self.closing_socket {
                if closing == socket {
                    self.closing_socket = None;
                    self.timers.clear(TimerKind::Close);
                    return self.after_close(now, after);
                }
            }
            let current = self.connection.as_ref().map(|c| c.generation);
            if current != Some(socket) {
                // The machine had already ended this connection (its `Close` was queued).
                return;
            }
        }
        match self.state {
            State::Connected => self.end_connection(
                now,
                End::Closed {
                    code,
                    reason: reason.to_owned(),
                },
            ),
            State::Dialing(_) => self.dial_failed(now, code, reason),
            State::Idle | State::Waiting | State::Held | State::Closed | State::Revoked => {}
        }
    }

    /// A dial that never produced an open connection (§7.3, "failed dial").
    pub(super) fn dial_failed(&mut self, now: Instant, code: Option<u16>, reason: &str) {
        let State::Dialing(purpose) = self.state else {
            return;
        };
        self.timers.clear(TimerKind::Dial);
        crate::trace::info!(generation = self.generation, purpose = %purpose, code, reason, "dial failed");
        let refused = code == Some(CLOSE_UNAUTHORIZED);
        let fail_fast = !self.config.retry_first_dial || refused;
        if purpose == DialPurpose::Initial && fail_fast {
            self.state = State::Idle;
            let failure = if refused {
                ConnectFailure::Unauthorized {
                    reason: reason.to_owned(),
                }
            } else {
                ConnectFailure::Dial(reason.to_owned())
            };
            self.event(GatewayEvent::ConnectFailed(failure));
            return;
        }
        if refused && self.auth_retry_pending {
            if reason == REASON_EXPIRED {
                // Only the token's age was wrong: the marker is spent, no latch.
                self.auth_retry_pending = false;
            } else {
                // The fresh-token retry was refused: the credential is revoked.
                return self.revoke(reason);
            }
        }
        if self.config.reconnect {
            self.schedule_redial(now);
        } else {
            self.state = State::Idle;
        }
    }

    pub(super) fn revoke(&mut self, reason: &str) {
        crate::trace::warn!(
            generation = self.generation,
            strike = 2,
            reason,
            "auth strike 2 of 2: credential revoked"
        );
        self.state = State::Revoked;
        self.timers = Timers::default();
        self.event(GatewayEvent::Revoked {
            reason: reason.to_owned(),
        });
        self.terminal = true;
    }

    /// Tears down the current connection and decides what comes next (§7.3).
    pub(super) fn end_connection(&mut self, now: Instant, end: End) {
        let Some(connection) = self.connection.take() else {
            return;
        };
        // Descriptors describe a connection; the next one must send its own (§3.5).
        self.descriptors.clear();
        for kind in [
            TimerKind::Handshake,
            TimerKind::GoIdle,
            TimerKind::Ping,
            TimerKind::Liveness,
        ] {
            self.timers.clear(kind);
        }
        let lived = connection
            .open_since
            .map(|t| now.saturating_duration_since(t));
        for id in self.pending.drain() {
            self.resolve(id, Err(RequestFailure::ConnectionLost));
        }
        if let Some(dormant) = connection.idle_waiter {
            self.event(GatewayEvent::GoingIdle {
                acked: false,
                dormant,
            });
        }
        let (code, reason) = match &end {
            End::Closed { code, reason } => (*code, reason.clone()),
            End::HandshakeTimeout => (None, "handshake timeout".to_owned()),
            End::Dormant => (Some(1000), "dormant".to_owned()),
        };
        crate::trace::info!(generation = connection.generation, code, reason = %reason, lived = ?lived, "connection ended");
        self.event(GatewayEvent::Disconnected {
            code,
            reason: reason.clone(),
        });
        if connection.closing {
            return self.finish_close();
        }
        if lived.is_some_and(|l| l >= self.config.backoff.stable_after) {
            self.ladder.reset();
        }
        if !self.handshake_succeeded {
            // The first connection never completed: report it and let the caller decide.
            self.state = State::Idle;
            let failure = match end {
                End::HandshakeTimeout => ConnectFailure::HandshakeTimeout,
                End::Closed {
                    code: Some(CLOSE_UNAUTHORIZED),
                    reason,
                } => ConnectFailure::Unauthorized { reason },
                End::Closed { code, reason } => ConnectFailure::Closed { code, reason },
                End::Dormant => ConnectFailure::Closed { code, reason },
            };
            crate::trace::warn!(generation = connection.generation, failure = %failure, "first connection failed");
            self.event(GatewayEvent::ConnectFailed(failure));
            return;
        }
        if code == Some(CLOSE_UNAUTHORIZED) && reason != REASON_EXPIRED {
            if self.auth_retry_generation.map(std::num::NonZeroU64::get)
                == Some(connection.generation)
            {
                return self.revoke(&reason);
            }
            // First strike: re-dial at once with a fresh token, no backoff.
            crate::trace::warn!(generation = connection.generation, strike = 1, reason = %reason, "auth strike 1 of 2: re-dialling with a fresh token");
            self.auth_retry_pending = true;
            self.event(GatewayEvent::Reconnecting {
                at: now,
                purpose: DialPurpose::FreshToken,
            });
            self.dial(now, DialPurpose::FreshToken);
            return;
        }
        if matches!(end, End::Dormant) {
            self.dormant = true;
            self.dormant_wait = true;
        }
        if !self.config.reconnect {
            self.state = State::Idle;
        } else if let Some((_, after)) = self.closing_socket.as_mut() {
            // The driver still holds the socket it is closing: dial once it is gone.
            *after = AfterClose::Redial;
            self.state = State::Waiting;
        } else {
            self.schedule_redial(now);
        }
    }

    pub(super) fn schedule_redial(&mut self, now: Instant) {
        let wait = if std::mem::take(&mut self.dormant_wait) {
            self.config.backoff.dormant_cadence
        } else {
            self.ladder.next_wait(&self.config.backoff, &mut self.rng)
        };
        let at = now + wait;
        self.state = State::Waiting;
        self.timers.set(TimerKind::Redial, at);
        crate::trace::debug!(generation = self.generation, delay = ?wait, purpose = %DialPurpose::Backoff, attempt = self.ladder.attempt, "reconnect scheduled");
        self.event(GatewayEvent::Reconnecting {
            at,
            purpose: DialPurpose::Backoff,
        });
    }

    pub(super) fn dial(&mut self, now: Instant, purpose: DialPurpose) {
        if let Some((socket, _)) = self.closing_socket.take() {
            // The driver holds one socket at a time: one still closing is dropped now.
            self.timers.clear(TimerKind::Close);
            self.discard(socket);
            self.core.outputs.command(None, ConnectionCommand::Abort);
            self.socket = None;
        }
        if let Some(timeout) = self.config.dial_timeout {
            self.timers.set(TimerKind::Dial, now + timeout);
        }
        self.generation += 1;
        crate::trace::debug!(generation = self.generation, purpose = %purpose, "dial requested");
        self.state = State::Dialing(purpose);
        self.core.outputs.command(
            Some(self.generation),
            ConnectionCommand::Dial {
                generation: self.generation,
                purpose,
            },
        );
    }

    /// Parks the next due re-dial until [`release_redial`](Self::release_redial) or the
    /// hold cap passes. Applies to one wait only.
    pub fn hold_redial(&mut self, _now: Instant) {
        self.flush_input();
        self.hold_redial = true;
    }

    /// Releases a redial hold; a parked dial goes ahead now.
    pub fn release_redial(&mut self, now: Instant) {
        self.flush_input();
        self.hold_redial = false;
        if self.state == State::Held {
            self.timers.clear(TimerKind::Redial);
            self.dial(now, DialPurpose::Backoff);
        }
    }

    /// Takes back what the driver never took of connection `generation` and accounts for
    /// each: a request was definitely not sent, an ack is owed, an interrupt is reported.
    pub(super) fn discard(&mut self, generation: u64) {
        for carried in self.core.outputs.discard(generation) {
            match carried {
                Carries::Request(id) => {
                    // Already resolved (as ambiguous) if the machine ended the connection
                    // itself; that stays true, and a request resolves only once.
                    if self.pending.remove(&id) {
                        self.resolve(id, Err(RequestFailure::NotWritten));
                    }
                }
                Carries::Ack(id) => self.handed.owe(id),
                Carries::Interrupt(session_key) => {
                    self.event(GatewayEvent::InterruptNotSent { session_key });
                }
                Carries::Nothing => {}
            }
        }
    }

    /// A backoff wait or a redial hold ended: dial, or park the dial if a hold was asked.
    pub(super) fn on_redial_timer(&mut self, now: Instant) {
        match self.state {
            State::Waiting if self.hold_redial => {
                self.state = State::Held;
                let until = now + self.config.backoff.hold_cap;
                self.timers.set(TimerKind::Redial, until);
                self.event(GatewayEvent::RedialHeld { until });
            }
            State::Waiting | State::Held => {
                self.hold_redial = false;
                self.dial(now, DialPurpose::Backoff);
            }
            State::Idle | State::Dialing(_) | State::Connected | State::Closed | State::Revoked => {
            }
        }
    }

    /// The dial took too long: abandon it and count it as failed.
    pub(super) fn on_dial_timeout(&mut self, now: Instant) {
        if let State::Dialing(_) = self.state {
            crate::trace::warn!(generation = self.generation, "dial timeout");
            self.core.outputs.command(None, ConnectionCommand::Abort);
            self.dial_failed(now, None, "dial timeout");
        }
    }

    /// Keepalive: ask for a Ping on the current connection.
    pub(super) fn on_ping_timer(&mut self, now: Instant) {
        let (Some(connection), Some(interval)) = (&self.connection, self.config.ping_interval)
        else {
            return;
        };
        let generation = connection.generation;
        self.core
            .outputs
            .command(Some(generation), ConnectionCommand::Ping);
        self.timers.set(TimerKind::Ping, now + interval);
    }

    /// Nothing arrived for the liveness timeout: the link is dead. Drop the socket (a dead
    /// link cannot complete a close handshake) and reconnect, as after any unexpected
    /// close; requests in flight resolve as ambiguous.
    pub(super) fn on_liveness_timeout(&mut self, now: Instant) {
        let Some(generation) = self.connection.as_ref().map(|c| c.generation) else {
            return;
        };
        crate::trace::warn!(
            generation,
            "liveness timeout: no sign of life, socket dropped"
        );
        self.discard(generation);
        self.core.outputs.command(None, ConnectionCommand::Abort);
        self.socket = None;
        let reason = "no sign of life within the liveness timeout".to_owned();
        self.end_connection(now, End::Closed { code: None, reason });
    }

    /// A Pong came: the link is alive.
    pub fn on_pong(&mut self, now: Instant) {
        self.flush_input();
        self.observe(now);
        self.proof_of_life(now);
    }

    /// Anything from the peer proves the link alive: the liveness deadline moves on.
    pub(super) fn proof_of_life(&mut self, now: Instant) {
        if let (Some(_), Some(timeout)) = (&self.connection, self.config.liveness_timeout) {
            self.timers.set(TimerKind::Liveness, now + timeout);
        }
    }

    /// Remembers the latest `now`, for deadlines set while outputs are taken.
    pub(super) fn observe(&mut self, now: Instant) {
        self.now = Some(self.now.map_or(now, |seen| seen.max(now)));
    }
}

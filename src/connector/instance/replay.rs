//! The replay of one gateway instance's durable buffer (protocol.md §6.4, Appendix D):
//! in store order, through an ack-gated window on the current connection; what the window
//! has no room for is asked of the application's store when room frees.

use std::time::Instant;

use super::*;

/// The replay of the durable buffer on the current connection.
#[derive(Debug, Default)]
pub(super) struct Replay {
    /// The current connection is handshaken: replay runs (unless idle).
    pub(super) active: bool,
    /// Sent on the current connection and not acked, oldest first.
    pub(super) window: VecDeque<BufferId>,
    /// The last delivery sent; the store is read after it.
    pub(super) cursor: Option<BufferId>,
    /// The store holds nothing unacked after `cursor`: a new delivery may go straight out.
    pub(super) caught_up: bool,
    /// A load awaits its answer: its token and limit.
    pub(super) loading: Option<(LoadToken, usize)>,
    /// Acks seen while the load was out: the store may have answered before it made them
    /// durable, so they are not sent again.
    pub(super) acked_while_loading: Vec<BufferId>,
    /// A delivery was pushed while the load was out: a store that read before it was
    /// appended answered without it, so that answer does not mean caught up.
    pub(super) pushed_while_loading: bool,
}

impl Instance {
    /// Buffered deliveries sent on the current connection and not yet acked.
    pub fn in_window(&self) -> usize {
        self.replay.window.len()
    }

    /// A delivery the application has just persisted, with the id its store gave it. It
    /// goes out now if the window has room and nothing older waits in the store;
    /// otherwise a later [`InstanceOutput::Load`] brings it. While the gateway is idle it
    /// waits in the store, and the first one asks for a wake-up
    /// ([`InstanceOutput::WakeNeeded`]).
    pub fn push_buffered(&mut self, now: Instant, id: BufferId, delivery: Delivery) {
        self.flush();
        if self.idle {
            if !std::mem::replace(&mut self.woke, true) {
                self.outputs.push_back(InstanceOutput::WakeNeeded);
            }
            return;
        }
        let direct = self.replay.active
            && self.replay.caught_up
            && self.replay.loading.is_none()
            && self.room() > 0;
        if direct {
            self.send(now, id, delivery);
        } else {
            // It is in the store, after whatever the window has not reached yet.
            self.replay.caught_up = false;
            self.replay.pushed_while_loading |= self.replay.loading.is_some();
            self.load();
        }
    }

    /// The answer to the [`InstanceOutput::Load`] that carried `token`: the unacked
    /// deliveries after its `after`, in append order, at most its `limit`. Returns `false`
    /// (and sends nothing) when the token is stale: its connection ended or was
    /// superseded, or the gateway went idle.
    pub fn offer(
        &mut self,
        now: Instant,
        token: LoadToken,
        deliveries: Vec<(BufferId, Delivery)>,
    ) -> bool {
        self.flush();
        let Some((_, asked)) = self.replay.loading.filter(|(t, _)| *t == token) else {
            return false;
        };
        self.replay.loading = None;
        let acked = std::mem::take(&mut self.replay.acked_while_loading);
        let pushed = std::mem::take(&mut self.replay.pushed_while_loading);
        if self.idle || !self.replay.active {
            self.replay.caught_up = false;
            return false;
        }
        let exhausted = deliveries.len() < asked;
        let room = self.room();
        let fresh = deliveries
            .into_iter()
            .take(asked)
            .filter(|(id, _)| !self.replay.window.contains(id) && !acked.contains(id));
        for (id, delivery) in fresh.collect::<Vec<_>>().into_iter().take(room) {
            self.send(now, id, delivery);
        }
        self.replay.caught_up = exhausted && !pushed;
        self.load();
        true
    }

    pub(super) fn room(&self) -> usize {
        self.config
            .replay_window
            .saturating_sub(self.replay.window.len())
    }

    /// Writes a buffered delivery on the current connection, into the window.
    pub(super) fn send(&mut self, now: Instant, id: BufferId, delivery: Delivery) {
        let Some(conn) = self.current else { return };
        let Some(machine) = self.connections.get_mut(&conn) else {
            return;
        };
        if machine.send_buffered(now, id.clone(), delivery).is_ok() {
            self.replay.cursor = Some(id.clone());
            self.replay.window.push_back(id);
            self.collect(conn);
        }
    }

    /// Asks for the next deliveries if the window has room and the store may hold more.
    pub(super) fn load(&mut self) {
        let replay = &mut self.replay;
        let room = self
            .config
            .replay_window
            .saturating_sub(replay.window.len());
        if !replay.active || self.idle || replay.caught_up || replay.loading.is_some() || room == 0
        {
            return;
        }
        let token = LoadToken(self.next_token);
        self.next_token += 1;
        replay.loading = Some((token, room));
        replay.acked_while_loading.clear();
        replay.pushed_while_loading = false;
        self.outputs.push_back(InstanceOutput::Load {
            token,
            after: replay.cursor.clone(),
            limit: room,
        });
    }
}

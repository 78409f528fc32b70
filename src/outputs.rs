//! The one ordered output queue both machines share, scoped by connection.
//!
//! Every output goes into one queue in the order the machine produced it, so a driver that
//! carries them out one by one writes every frame before the close that follows it. Frames
//! and commands are tagged with the connection they belong to: when that connection ends
//! before the driver took them, they are removed and handed back, so the machine can
//! account for each (a request never written, an ack still owed) and nothing is ever
//! written on the next connection.

use std::collections::VecDeque;

use crate::transmit::Transmit;
use crate::wire::{BufferId, Frame, RequestId};

/// What a queued frame stands for, so that a discarded one can be accounted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Carries {
    /// Nothing that needs accounting (a hello, a descriptor, a result, ...).
    Nothing,
    /// The `outbound` of this request.
    Request(RequestId),
    /// The `inbound_ack` of this delivery.
    Ack(BufferId),
    /// An `interrupt` for this session.
    Interrupt(String),
}

#[derive(Debug)]
pub(crate) enum Item<C, E> {
    Transmit {
        conn: u64,
        line: Transmit,
        carries: Carries,
    },
    Command {
        conn: Option<u64>,
        command: C,
    },
    Event(E),
}

#[derive(Debug)]
pub(crate) struct Queue<C, E> {
    items: VecDeque<Item<C, E>>,
}

impl<C, E> Default for Queue<C, E> {
    fn default() -> Self {
        Self {
            items: VecDeque::new(),
        }
    }
}

impl<C, E> Queue<C, E> {
    pub(crate) fn transmit(&mut self, conn: u64, frame: &Frame, carries: Carries) {
        self.items.push_back(Item::Transmit {
            conn,
            line: Transmit::encode(frame),
            carries,
        });
    }

    /// Queues a line encoded by the caller: for a frame that is moved into its
    /// accounting once encoded (an ack's id), where a clone would cost an allocation.
    pub(crate) fn transmit_line(&mut self, conn: u64, line: Transmit, carries: Carries) {
        self.items.push_back(Item::Transmit {
            conn,
            line,
            carries,
        });
    }

    pub(crate) fn command(&mut self, conn: Option<u64>, command: C) {
        self.items.push_back(Item::Command { conn, command });
    }

    pub(crate) fn event(&mut self, event: E) {
        self.items.push_back(Item::Event(event));
    }

    /// Puts `event` just before the last output (the terminal event stays last).
    pub(crate) fn event_before_last(&mut self, event: E) {
        let at = self.items.len().saturating_sub(1);
        self.items.insert(at, Item::Event(event));
    }

    // Inlined into the machine's `poll_output`, so the item is moved out of the queue
    // once, into the output it becomes, rather than through a returned temporary: an
    // item is near 200 bytes (a result event), and the copies showed in profiles.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Item<C, E>> {
        let item = self.items.pop_front();
        if self.items.is_empty() && self.items.capacity() > 1 {
            self.shrink();
        }
        item
    }

    /// A burst (a handshake, a replayed backlog) should not pin its peak for the
    /// connection's life. One slot stays: a frame mostly makes one output at a time (an
    /// event, then the ack or result the application answers with), so steady traffic
    /// neither grows nor shrinks the queue.
    #[cold]
    #[inline(never)]
    fn shrink(&mut self) {
        self.items.shrink_to(1);
    }

    /// Removes every frame and command of connection `conn` not yet taken, and returns
    /// what the frames carried, in queue order.
    pub(crate) fn discard(&mut self, conn: u64) -> Vec<Carries> {
        let mut carried = Vec::new();
        self.items.retain_mut(|item| match item {
            Item::Transmit {
                conn: c, carries, ..
            } if *c == conn => {
                let taken = std::mem::replace(carries, Carries::Nothing);
                if taken != Carries::Nothing {
                    carried.push(taken);
                }
                false
            }
            Item::Command { conn: Some(c), .. } => *c != conn,
            Item::Transmit { .. } | Item::Command { conn: None, .. } | Item::Event(_) => true,
        });
        carried
    }
}

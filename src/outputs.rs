//! The one ordered output queue both machines share, scoped by connection.
//!
//! Every output goes into one queue in the order the machine produced it, so a driver that
//! carries them out one by one writes every frame before the close that follows it. Frames
//! and commands are tagged with the connection they belong to: when that connection ends
//! before the driver took them, they are removed and handed back, so the machine can
//! account for each (a request never written, an ack still owed) and nothing is ever
//! written on the next connection.

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

/// The outputs in order: a vector whose slots before `head` were taken.
///
/// A vector, not a `VecDeque`: `VecDeque::push_back` was not inlined, and 85% of its time
/// went to loading the output just built by its caller (a load that spans several
/// narrower pending stores waits for them). `Vec::push` is inlined into the machine's
/// code: the connector got 2% faster; the gateway's events still pass through a
/// temporary, and it did not change. The queue drains to empty after every input, which
/// resets it, so taken slots never pile up.
#[derive(Debug)]
pub(crate) struct Queue<C, E> {
    items: Vec<Option<Item<C, E>>>,
    /// The next output to take.
    head: usize,
}

impl<C, E> Default for Queue<C, E> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            head: 0,
        }
    }
}

impl<C, E> Queue<C, E> {
    #[inline]
    pub(crate) fn transmit(&mut self, conn: u64, frame: &Frame, carries: Carries) {
        self.items.push(Some(Item::Transmit {
            conn,
            line: Transmit::encode(frame),
            carries,
        }));
    }

    /// Queues a line encoded by the caller: for a frame that is moved into its
    /// accounting once encoded (an ack's id), where a clone would cost an allocation.
    #[inline]
    pub(crate) fn transmit_line(&mut self, conn: u64, line: Transmit, carries: Carries) {
        self.items.push(Some(Item::Transmit {
            conn,
            line,
            carries,
        }));
    }

    #[inline]
    pub(crate) fn command(&mut self, conn: Option<u64>, command: C) {
        self.items.push(Some(Item::Command { conn, command }));
    }

    #[inline]
    pub(crate) fn event(&mut self, event: E) {
        self.items.push(Some(Item::Event(event)));
    }

    /// Puts `event` just before the last output (the terminal event stays last).
    pub(crate) fn event_before_last(&mut self, event: E) {
        let at = self.items.len().saturating_sub(1).max(self.head);
        self.items.insert(at, Some(Item::Event(event)));
    }

    // Inlined into the machine's `poll_output`, so the item is moved out of the queue
    // once, into the output it becomes, rather than through a returned temporary.
    #[inline]
    pub(crate) fn pop(&mut self) -> Option<Item<C, E>> {
        let item = self.items.get_mut(self.head).and_then(Option::take);
        self.head += usize::from(item.is_some());
        if self.head == self.items.len() {
            self.drained();
        }
        item
    }

    /// Every output was taken: the queue starts over. A burst (a handshake, a replayed
    /// backlog) should not pin its peak for the connection's life. One slot stays: a frame
    /// mostly makes one output at a time (an event, then the ack or result the
    /// application answers with), so steady traffic neither grows nor shrinks the queue.
    #[inline]
    fn drained(&mut self) {
        self.items.clear();
        self.head = 0;
        if self.items.capacity() > 1 {
            self.shrink();
        }
    }

    #[cold]
    #[inline(never)]
    fn shrink(&mut self) {
        self.items.shrink_to(1);
    }

    /// Removes every frame and command of connection `conn` not yet taken, and returns
    /// what the frames carried, in queue order.
    pub(crate) fn discard(&mut self, conn: u64) -> Vec<Carries> {
        let mut carried = Vec::new();
        // The taken slots (all before `head`) go too.
        self.items.retain_mut(|slot| match slot {
            None => false,
            Some(Item::Transmit {
                conn: c, carries, ..
            }) if *c == conn => {
                let taken = std::mem::replace(carries, Carries::Nothing);
                if taken != Carries::Nothing {
                    carried.push(taken);
                }
                false
            }
            Some(Item::Command { conn: Some(c), .. }) => *c != conn,
            Some(Item::Transmit { .. } | Item::Command { conn: None, .. } | Item::Event(_)) => true,
        });
        self.head = 0;
        carried
    }
}

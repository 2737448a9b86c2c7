//! A single-threaded "something changed" signal: a generation counter plus the wakers of
//! the tasks waiting for it to move. Long-polling fetches wait on their shard's event and
//! produce signals it; both run on the same core, so no atomics or locks are needed.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// One shard's change signal (see the module doc); starts at generation 0 with no waiters.
/// Built on `Cell`s, so it is not `Sync` and stays on the thread of its shard.
#[derive(Default)]
pub struct Event {
    generation: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

impl Event {
    /// The current generation, bumped (wrapping) by every [`Event::notify`]. Read it before
    /// checking for data, then wait with [`Event::changed_since`].
    pub fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// Wakes every task waiting for a generation change.
    pub fn notify(&self) {
        self.generation.set(self.generation.get().wrapping_add(1));
        for waker in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Whether some task is parked waiting for a change (tests use it to know a task has
    /// reached its wait).
    pub fn has_waiters(&self) -> bool {
        !self.waiters.borrow().is_empty()
    }

    /// Completes once the generation differs from `seen`. Taking the generation before
    /// checking for data and waiting on it afterwards closes the lost-wake-up window.
    pub fn changed_since(&self, seen: u64) -> Changed<'_> {
        Changed { event: self, seen }
    }
}

/// Future of [`Event::changed_since`]: ready once the event's generation differs from the
/// one seen; while pending it keeps one waker per task in the event.
pub struct Changed<'a> {
    event: &'a Event,
    seen: u64,
}

impl Future for Changed<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.event.generation.get() != self.seen {
            return Poll::Ready(());
        }
        // A connection task waits many times between notifications (each long-poll that
        // times out leaves its waker behind); keep one waker per task so the list stays
        // bounded by the number of connections.
        let mut waiters = self.event.waiters.borrow_mut();
        if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
            waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_before_waiting_is_not_lost() {
        let event = Event::default();
        let seen = event.generation();
        event.notify();
        futures_lite::future::block_on(event.changed_since(seen));
        assert_eq!(event.generation(), seen + 1);
    }
}

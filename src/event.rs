//! A single-threaded "something changed" signal: a generation counter plus the wakers of
//! the tasks waiting for it to move. Each partition has one: its appends and high-watermark
//! moves signal it, and a long-polling fetch waits on the events of the partitions it reads
//! (any of them), so a produce wakes only the fetches it can satisfy. Waiters and signallers
//! run on the partition's core, so no atomics or locks are needed.

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
        Changed {
            event: self,
            seen,
            registered: None,
        }
    }

    /// Registers the task's waker unless it is there already (one per task, however often
    /// it waits).
    fn register(&self, waker: &Waker) {
        let mut waiters = self.waiters.borrow_mut();
        if !waiters.iter().any(|w| w.will_wake(waker)) {
            waiters.push(waker.clone());
        }
    }

    /// Removes the task's waker: a wait that ended another way (its deadline, another event)
    /// must not leave it behind. A waker keeps its task's memory alive, and an event that is
    /// never signalled (an idle partition, the shutdown event) would otherwise collect one
    /// per connection that ever waited on it.
    fn unregister(&self, waker: &Waker) {
        self.waiters.borrow_mut().retain(|w| !w.will_wake(waker));
    }
}

/// Completes once any of the events' generations differs from the one seen with it: a
/// fetch's wait on the partitions it reads. With no events it never completes (the caller's
/// deadline ends the wait).
pub fn any_changed<'a>(seen: impl IntoIterator<Item = (&'a Event, u64)>) -> AnyChanged<'a> {
    AnyChanged {
        seen: seen.into_iter().collect(),
        registered: None,
    }
}

/// Future of [`any_changed`]; takes its waker out of every event when dropped.
pub struct AnyChanged<'a> {
    seen: Vec<(&'a Event, u64)>,
    registered: Option<Waker>,
}

impl Future for AnyChanged<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.seen.iter().any(|(e, g)| e.generation.get() != *g) {
            return Poll::Ready(());
        }
        for (event, _) in &self.seen {
            event.register(cx.waker());
        }
        self.registered = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for AnyChanged<'_> {
    fn drop(&mut self) {
        if let Some(waker) = &self.registered {
            for (event, _) in &self.seen {
                event.unregister(waker);
            }
        }
    }
}

/// Future of [`Event::changed_since`]: ready once the event's generation differs from the
/// one seen; while pending it keeps one waker per task in the event, and takes it out when
/// dropped.
pub struct Changed<'a> {
    event: &'a Event,
    seen: u64,
    registered: Option<Waker>,
}

impl Future for Changed<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.event.generation.get() != self.seen {
            return Poll::Ready(());
        }
        self.event.register(cx.waker());
        self.registered = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for Changed<'_> {
    fn drop(&mut self) {
        if let Some(waker) = &self.registered {
            self.event.unregister(waker);
        }
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

    #[test]
    fn any_changed_completes_on_the_one_that_moved() {
        let (a, b) = (Event::default(), Event::default());
        let seen = [(&a, a.generation()), (&b, b.generation())];
        b.notify();
        futures_lite::future::block_on(any_changed(seen));
    }

    #[test]
    fn any_changed_waits_while_nothing_moved() {
        let (a, b) = (Event::default(), Event::default());
        let mut wait = Box::pin(any_changed([(&a, a.generation()), (&b, b.generation())]));
        let waker = futures_lite::future::block_on(futures_lite::future::poll_fn(|cx| {
            std::task::Poll::Ready(cx.waker().clone())
        }));
        let mut cx = Context::from_waker(&waker);
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        assert!(a.has_waiters() && b.has_waiters());
        a.notify();
        assert!(wait.as_mut().poll(&mut cx).is_ready());
        drop(wait);
        assert!(
            !b.has_waiters(),
            "the event that did not fire kept the waker"
        );
    }

    #[test]
    fn a_wait_given_up_leaves_no_waker() {
        let event = Event::default();
        let waker = futures_lite::future::block_on(futures_lite::future::poll_fn(|cx| {
            std::task::Poll::Ready(cx.waker().clone())
        }));
        let mut cx = Context::from_waker(&waker);
        let mut wait = Box::pin(event.changed_since(event.generation()));
        assert!(wait.as_mut().poll(&mut cx).is_pending());
        assert!(event.has_waiters());
        drop(wait);
        assert!(!event.has_waiters());
    }
}

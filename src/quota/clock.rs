//! The handler time a `request_percentage` quota counts: the time the shard thread spends
//! inside the request's handler (Kafka counts the I/O thread's time), not the time the
//! handler waits (a long-poll fetch, acks=all, a write to disk). [`Timed`] adds up the
//! duration of every poll of the handler's future; [`HandlerClock`] holds the sum for the
//! request, and the throttle the quotas computed for it, for the connection to read.
//! Single-threaded (`Cell`s), on the shard serving the request.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// One request's handler time and throttle (see the module doc).
#[derive(Debug, Default)]
pub struct HandlerClock {
    spent: Cell<Duration>,
    /// Start of the poll running now, if the handler is being polled.
    polling_since: Cell<Option<Instant>>,
    throttle: Cell<Duration>,
}

impl HandlerClock {
    /// Time spent polling so far, the running poll included.
    #[must_use]
    pub fn spent(&self) -> Duration {
        let running = self
            .polling_since
            .get()
            .map_or(Duration::ZERO, |t| t.elapsed());
        self.spent.get() + running
    }

    /// Notes the throttle the quotas called for (the longest one wins).
    pub fn throttle(&self, time: Duration) {
        self.throttle.set(self.throttle.get().max(time));
    }

    /// How long the connection must stay muted after answering (KIP-219).
    #[must_use]
    pub fn throttle_time(&self) -> Duration {
        self.throttle.get()
    }

    /// `future`, with each of its polls counted in this clock.
    pub fn time<F: Future>(&self, future: F) -> Timed<'_, F> {
        Timed {
            clock: self,
            future: Box::pin(future),
        }
    }
}

/// A future whose polls are counted in a [`HandlerClock`].
pub struct Timed<'a, F> {
    clock: &'a HandlerClock,
    future: Pin<Box<F>>,
}

impl<F: Future> Future for Timed<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let started = Instant::now();
        let clock = self.clock;
        // Nested timing (a handler timing part of itself) keeps the outer start.
        let outer = clock
            .polling_since
            .replace(Some(clock.polling_since.get().unwrap_or(started)));
        let result = self.future.as_mut().poll(cx);
        clock.polling_since.set(outer);
        if outer.is_none() {
            clock.spent.set(clock.spent.get() + started.elapsed());
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pending once, woken 100 ms later by another thread: a wait, not work.
    struct WaitOnce(bool);

    impl Future for WaitOnce {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                return Poll::Ready(());
            }
            self.0 = true;
            let waker = cx.waker().clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                waker.wake();
            });
            Poll::Pending
        }
    }

    #[test]
    fn waiting_is_not_counted_but_work_is() {
        let clock = HandlerClock::default();
        futures_lite::future::block_on(clock.time(async {
            std::thread::sleep(Duration::from_millis(20)); // busy on the thread
            WaitOnce(false).await;
        }));
        let spent = clock.spent();
        assert!(spent >= Duration::from_millis(20), "{spent:?}");
        assert!(spent < Duration::from_millis(90), "{spent:?}");
        clock.throttle(Duration::from_millis(5));
        clock.throttle(Duration::from_millis(3));
        assert_eq!(clock.throttle_time(), Duration::from_millis(5));
    }
}

//! The broker lease of a node in cluster mode: until when this node may answer as a
//! partition leader (ListOffsets) without having heard from the controller quorum. Written by
//! the membership thread after each heartbeat the controller acknowledged (the controller
//! confirms its leadership with a quorum first); read by shard threads, one relaxed atomic
//! load and a clock read, written twice a second.
//!
//! Why: a node paused (SIGSTOP) or cut off past `broker.session.timeout.ms` is fenced and its
//! partitions get new leaders, but until it applies that image it still believes it leads
//! them. Without a lease it answers ListOffsets with its old high watermark, below offsets the
//! new leader has since acknowledged (found by the chaos harness: latest 1308 right after a
//! write was acknowledged at 1618). The controller fences a node only after the session
//! timeout has passed since the node's last confirmed heartbeat was received, which is later
//! than it was sent; so a lease of a fraction of the session timeout counted from the send
//! time ends before any fencing can take effect.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Until when the node holds its lease, as milliseconds since `origin` (0: never held).
#[derive(Debug)]
pub struct Lease {
    origin: Instant,
    until_ms: AtomicU64,
}

impl Default for Lease {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            until_ms: AtomicU64::new(0),
        }
    }
}

impl Lease {
    /// How much of the session timeout a confirmed heartbeat buys: the rest is the margin
    /// for the fencing check's own timing and for clocks that drift between nodes.
    pub const SHARE_OF_SESSION: (u32, u32) = (4, 5);

    /// The lease a heartbeat sent at `sent` and acknowledged buys, for `session_timeout`.
    #[must_use]
    pub fn end_for(sent: Instant, session_timeout: Duration) -> Instant {
        let (num, den) = Self::SHARE_OF_SESSION;
        sent + session_timeout * num / den
    }

    /// Extends the lease to `until` (never shortens it: heartbeats may be answered out of
    /// order).
    pub fn extend(&self, until: Instant) {
        let ms = until.saturating_duration_since(self.origin).as_millis();
        let ms = u64::try_from(ms).unwrap_or(u64::MAX);
        self.until_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// True while the lease runs at `now`.
    #[must_use]
    pub fn held_at(&self, now: Instant) -> bool {
        let now_ms = now.saturating_duration_since(self.origin).as_millis();
        u128::from(self.until_ms.load(Ordering::Relaxed)) > now_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_runs_for_its_share_of_the_session_from_the_send_time() {
        let lease = Lease::default();
        let start = Instant::now();
        assert!(!lease.held_at(start), "never held before a heartbeat");
        let session = Duration::from_millis(3000);
        lease.extend(Lease::end_for(start, session));
        assert!(lease.held_at(start + Duration::from_millis(2399)));
        assert!(!lease.held_at(start + Duration::from_millis(2400)));
        // An older heartbeat answered late does not shorten it.
        lease.extend(Lease::end_for(start - Duration::from_millis(1000), session));
        assert!(lease.held_at(start + Duration::from_millis(2399)));
    }
}

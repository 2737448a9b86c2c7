//! What a partition leader knows about its followers (issue 14): each follower's log end as
//! its fetches report it and when it was last caught up, and from that the high watermark and
//! the ISR changes Kafka's rules call for. Pure state and pure functions, so the rules are
//! unit-tested without a cluster; owned by the leader's shard (`replication::Replication`).
//!
//! The rules, as Kafka's `Partition` and `Replica` classes apply them:
//! - a fetch at offset `o` says the follower holds everything below `o` (its log end);
//! - a follower is caught up at the time of a fetch whose offset reaches the leader's log end
//!   as it was then, or as it was at its previous fetch (the follower cannot have fetched what
//!   was appended after its previous request was answered);
//! - the high watermark is the smallest log end over the ISR (the leader's own included), and
//!   only moves while the ISR holds at least `min.insync.replicas` members (KIP-966): with
//!   fewer, records stay invisible to consumers rather than being exposed with fewer copies
//!   than promised. An ISR member that has not fetched since this leader took over holds the
//!   watermark where it is: its log end is unknown;
//! - an ISR follower not caught up for `replica.lag.time.max.ms` leaves the ISR; an
//!   out-of-sync follower whose log end reaches the high watermark, and the start of the
//!   leader's epoch, rejoins it (KIP-101: before that it may still hold a divergent tail).

use std::collections::BTreeMap;

/// One follower as its leader has seen it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Follower {
    /// The follower's log end: the offset of its latest fetch.
    log_end: i64,
    /// Last time (ms) its fetch reached the leader's log end.
    caught_up_ms: i64,
    /// The leader's log end and the time of the follower's previous fetch.
    previous_fetch: (i64, i64),
    /// The high watermark last sent to it: a fetch answer is due as soon as the watermark
    /// moves past it, so followers (which serve consumers, KIP-392) learn it without waiting
    /// for new records or the end of their long poll.
    high_watermark_sent: i64,
    /// The follower's log start as its latest fetch reported it (-1: not reported).
    log_start: i64,
}

/// A follower's log range and freshness as the leader last saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerState {
    /// Its log start (-1 when its fetches do not report one).
    pub log_start: i64,
    /// Its log end.
    pub log_end: i64,
    /// When it was last caught up with the leader (ms).
    pub caught_up_ms: i64,
}

/// The leader's view of one partition's followers, for one leader epoch.
#[derive(Debug, Clone)]
pub struct LeaderProgress {
    /// The leader epoch this view belongs to; a new epoch starts a new view.
    pub leader_epoch: i32,
    /// When this shard took leadership (ms): followers are judged caught up at that moment, so
    /// none is dropped from the ISR before it had `replica.lag.time.max.ms` to fetch.
    since_ms: i64,
    followers: BTreeMap<i32, Follower>,
}

impl LeaderProgress {
    /// A leader that took over at `now_ms` in `leader_epoch` and has heard from no follower.
    #[must_use]
    pub fn new(leader_epoch: i32, now_ms: i64) -> Self {
        Self {
            leader_epoch,
            since_ms: now_ms,
            followers: BTreeMap::new(),
        }
    }

    /// Records a fetch by `follower` at `fetch_offset` while the leader's log ends at
    /// `leader_log_end`.
    pub fn on_fetch(&mut self, follower: i32, fetch_offset: i64, leader_log_end: i64, now_ms: i64) {
        let since = self.since_ms;
        let entry = self.followers.entry(follower).or_insert(Follower {
            log_end: fetch_offset,
            caught_up_ms: since,
            previous_fetch: (leader_log_end, now_ms),
            high_watermark_sent: -1,
            log_start: -1,
        });
        entry.log_end = fetch_offset;
        if fetch_offset >= leader_log_end {
            entry.caught_up_ms = entry.caught_up_ms.max(now_ms);
        } else if fetch_offset >= entry.previous_fetch.0 {
            entry.caught_up_ms = entry.caught_up_ms.max(entry.previous_fetch.1);
        }
        entry.previous_fetch = (leader_log_end, now_ms);
    }

    /// The follower's log end as its latest fetch reported it.
    #[must_use]
    pub fn log_end_of(&self, follower: i32) -> Option<i64> {
        self.followers.get(&follower).map(|f| f.log_end)
    }

    /// Records the log start a follower's fetch reported (`log_start_offset`).
    pub fn note_log_start(&mut self, follower: i32, log_start: i64) {
        if let Some(f) = self.followers.get_mut(&follower) {
            f.log_start = log_start;
        }
    }

    /// What Kafka's replica selector knows of a follower that fetched in this leader epoch:
    /// its log start (-1 if not reported), its log end, and when it was last caught up (ms).
    #[must_use]
    pub fn follower_state(&self, follower: i32) -> Option<FollowerState> {
        self.followers.get(&follower).map(|f| FollowerState {
            log_start: f.log_start,
            log_end: f.log_end,
            caught_up_ms: f.caught_up_ms,
        })
    }

    /// Whether the follower has not been sent `high_watermark` yet.
    #[must_use]
    pub fn owes_high_watermark(&self, follower: i32, high_watermark: i64) -> bool {
        self.followers
            .get(&follower)
            .is_some_and(|f| f.high_watermark_sent < high_watermark)
    }

    /// Notes that an answer carrying `high_watermark` went to the follower.
    pub fn sent_high_watermark(&mut self, follower: i32, high_watermark: i64) {
        if let Some(f) = self.followers.get_mut(&follower) {
            f.high_watermark_sent = f.high_watermark_sent.max(high_watermark);
        }
    }

    /// The high watermark the ISR supports, or `None` when it may not move: fewer than
    /// `min_isr` members, or a follower in it whose log end is unknown. `leader` is the
    /// leader's own broker id, whose log end is `leader_log_end`.
    #[must_use]
    pub fn high_watermark(
        &self,
        leader: i32,
        leader_log_end: i64,
        isr: &[i32],
        min_isr: usize,
    ) -> Option<i64> {
        if isr.len() < min_isr.max(1) {
            return None;
        }
        isr.iter()
            .filter(|&&r| r != leader)
            .try_fold(leader_log_end, |hw, r| {
                self.log_end_of(*r).map(|end| hw.min(end))
            })
    }

    /// ISR followers not caught up within the last `lag_max_ms`: those the leader drops.
    #[must_use]
    pub fn lagging(&self, leader: i32, isr: &[i32], now_ms: i64, lag_max_ms: i64) -> Vec<i32> {
        isr.iter()
            .copied()
            .filter(|&r| r != leader)
            .filter(|r| {
                let caught_up = self
                    .followers
                    .get(r)
                    .map_or(self.since_ms, |f| f.caught_up_ms);
                now_ms - caught_up > lag_max_ms
            })
            .collect()
    }

    /// Whether an out-of-sync `follower` may rejoin the ISR: its log end has reached the high
    /// watermark and the first offset of the leader's current epoch.
    #[must_use]
    pub fn may_rejoin(&self, follower: i32, high_watermark: i64, epoch_start: i64) -> bool {
        self.log_end_of(follower)
            .is_some_and(|end| end >= high_watermark && end >= epoch_start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEADER: i32 = 1000;

    #[test]
    fn the_high_watermark_is_the_smallest_log_end_in_the_isr() {
        let mut p = LeaderProgress::new(1, 0);
        let isr = [LEADER, 2000, 3000];
        // Nobody fetched yet: the watermark cannot move.
        assert_eq!(p.high_watermark(LEADER, 10, &isr, 1), None);
        p.on_fetch(2000, 10, 10, 1);
        assert_eq!(p.high_watermark(LEADER, 10, &isr, 1), None);
        p.on_fetch(3000, 4, 10, 1);
        assert_eq!(p.high_watermark(LEADER, 10, &isr, 1), Some(4));
        // A follower outside the ISR does not hold it back.
        assert_eq!(p.high_watermark(LEADER, 10, &[LEADER, 2000], 1), Some(10));
        // The leader alone: its own log end.
        assert_eq!(p.high_watermark(LEADER, 10, &[LEADER], 1), Some(10));
    }

    #[test]
    fn the_high_watermark_stays_while_the_isr_is_below_min_insync() {
        let mut p = LeaderProgress::new(1, 0);
        p.on_fetch(2000, 10, 10, 1);
        assert_eq!(p.high_watermark(LEADER, 10, &[LEADER, 2000], 2), Some(10));
        assert_eq!(p.high_watermark(LEADER, 12, &[LEADER], 2), None);
    }

    #[test]
    fn a_follower_that_stops_reaching_the_log_end_lags_after_the_timeout() {
        let mut p = LeaderProgress::new(1, 0);
        let isr = [LEADER, 2000, 3000];
        p.on_fetch(2000, 5, 5, 100);
        p.on_fetch(3000, 5, 5, 100);
        // The leader appends; 2000 keeps up, 3000 stays at 5.
        p.on_fetch(2000, 9, 9, 20_000);
        p.on_fetch(3000, 5, 9, 20_000);
        assert!(p.lagging(LEADER, &isr, 25_000, 30_000).is_empty());
        p.on_fetch(2000, 9, 9, 35_000);
        assert_eq!(p.lagging(LEADER, &isr, 35_000, 30_000), vec![3000]);
    }

    #[test]
    fn reaching_the_previous_log_end_counts_as_caught_up_then() {
        let mut p = LeaderProgress::new(1, 0);
        p.on_fetch(2000, 5, 8, 1_000);
        // Appends keep the leader ahead, but each fetch reaches where the leader was before.
        p.on_fetch(2000, 8, 12, 2_000);
        p.on_fetch(2000, 12, 15, 3_000);
        assert!(
            p.lagging(LEADER, &[LEADER, 2000], 3_000 + 30_000 - 1_000, 30_000)
                .is_empty()
        );
    }

    #[test]
    fn followers_that_never_fetch_get_the_full_lag_time_from_the_takeover() {
        let p = LeaderProgress::new(3, 50_000);
        assert!(
            p.lagging(LEADER, &[LEADER, 2000], 79_000, 30_000)
                .is_empty()
        );
        assert_eq!(
            p.lagging(LEADER, &[LEADER, 2000], 81_000, 30_000),
            vec![2000]
        );
    }

    #[test]
    fn a_follower_is_owed_each_new_high_watermark_once() {
        let mut p = LeaderProgress::new(1, 0);
        assert!(!p.owes_high_watermark(2000, 5), "never fetched");
        p.on_fetch(2000, 5, 5, 1);
        assert!(p.owes_high_watermark(2000, 5));
        p.sent_high_watermark(2000, 5);
        assert!(!p.owes_high_watermark(2000, 5));
        assert!(p.owes_high_watermark(2000, 6));
        p.note_log_start(2000, 2);
        let state = FollowerState {
            log_start: 2,
            log_end: 5,
            caught_up_ms: 1,
        };
        assert_eq!(p.follower_state(2000), Some(state));
    }

    #[test]
    fn a_follower_rejoins_only_past_the_watermark_and_the_epoch_start() {
        let mut p = LeaderProgress::new(2, 0);
        p.on_fetch(3000, 7, 10, 1);
        assert!(!p.may_rejoin(3000, 8, 5));
        p.on_fetch(3000, 8, 10, 2);
        assert!(p.may_rejoin(3000, 8, 5));
        assert!(
            !p.may_rejoin(3000, 8, 9),
            "its tail may still diverge from this epoch"
        );
        assert!(!p.may_rejoin(4000, 0, 0), "never fetched");
    }
}

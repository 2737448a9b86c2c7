//! Log reconciliation after a leader change (KIP-101, KIP-279, KIP-320's Fetch form), as two
//! pure functions over leader epoch caches: the leader's test of a follower's fetch, and the
//! follower's choice of where to truncate. The fetch handler and the replica fetcher call
//! them; keeping them pure lets the scenarios those KIPs were written for be replayed here
//! without a cluster. Runs wherever its callers run (the shard).

use crate::storage::leader_epochs::LeaderEpochs;

/// The leader's side: `Some((epoch, end))` when a follower that last fetched a batch of
/// `last_fetched_epoch` and now fetches from `fetch_offset` holds records this leader does not
/// have (its copy of that epoch ends before `fetch_offset`, or the epoch never existed here);
/// the follower is told the largest epoch at or below its own and where that ends here.
/// `None` when the log is consistent, or when this leader knows nothing about the epoch (the
/// fetch then proceeds, and an offset past this log's end is OFFSET_OUT_OF_RANGE).
pub fn diverging_epoch(
    leader: &LeaderEpochs,
    leader_log_end: i64,
    last_fetched_epoch: i32,
    fetch_offset: i64,
) -> Option<(i32, i64)> {
    if last_fetched_epoch < 0 {
        return None;
    }
    let (epoch, end) = leader.end_offset_for(last_fetched_epoch, leader_log_end);
    if end < 0 {
        return None;
    }
    (epoch != last_fetched_epoch || end < fetch_offset).then_some((epoch, end))
}

/// The follower's side: where to truncate after the leader answered `diverging`. The
/// leader's copy of that epoch ends at `end`; ours may end sooner (KIP-279: we may never have
/// had that epoch, when leaders changed fast), and then our end of it is the cut, after
/// which the next fetch checks the epoch before it. Never above our log end.
pub fn truncation_offset(
    follower: &LeaderEpochs,
    follower_log_end: i64,
    diverging: (i32, i64),
) -> i64 {
    let (epoch, leader_end) = diverging;
    let (_, local_end) = follower.end_offset_for(epoch, follower_log_end);
    let target = if local_end >= 0 {
        leader_end.min(local_end)
    } else {
        leader_end
    };
    target.clamp(0, follower_log_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log as far as reconciliation sees it: the epoch of every record, and its cache.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    struct Log {
        records: Vec<i32>,
    }

    impl Log {
        fn of(epochs: &[(i32, usize)]) -> Self {
            let mut log = Log::default();
            for (epoch, count) in epochs {
                log.records.extend(std::iter::repeat_n(*epoch, *count));
            }
            log
        }
        fn end(&self) -> i64 {
            self.records.len() as i64
        }
        fn cache(&self) -> LeaderEpochs {
            let mut c = LeaderEpochs::default();
            for (offset, epoch) in self.records.iter().enumerate() {
                c.assign(*epoch, offset as i64);
            }
            c
        }
        fn last_epoch(&self) -> i32 {
            self.records.last().copied().unwrap_or(-1)
        }
    }

    /// Fetch rounds as the fetcher and the fetch handler run them, until the follower has
    /// the leader's log; returns how many truncations it took.
    fn reconcile(follower: &mut Log, leader: &Log) -> usize {
        let mut truncations = 0;
        for _ in 0..10 {
            let fetch_offset = follower.end();
            match diverging_epoch(
                &leader.cache(),
                leader.end(),
                follower.last_epoch(),
                fetch_offset,
            ) {
                Some(d) => {
                    let cut = truncation_offset(&follower.cache(), follower.end(), d);
                    follower.records.truncate(cut as usize);
                    truncations += 1;
                }
                None => {
                    follower
                        .records
                        .extend_from_slice(&leader.records[fetch_offset as usize..]);
                    return truncations;
                }
            }
        }
        panic!("no convergence: follower {follower:?} leader {leader:?}");
    }

    #[test]
    fn kip_101_a_follower_restarting_keeps_what_the_leader_has() {
        // Leader A and follower B both hold m0, m1 of epoch 0, but B's high watermark had
        // not reached 2 yet. Truncating to the high watermark at restart (the pre-KIP-101
        // rule) would drop m1 from B; with epochs B keeps it, so m1 survives A's loss.
        let leader = Log::of(&[(0, 2)]);
        let mut follower = Log::of(&[(0, 2)]);
        assert_eq!(reconcile(&mut follower, &leader), 0);
        assert_eq!(follower, leader);
    }

    #[test]
    fn kip_101_replicas_that_diverged_after_a_double_crash_converge() {
        // A had m0, m1 (epoch 0), B only m0. Both crash; B comes back first, leads epoch 1
        // and writes m2 at offset 1. A returns as a follower: its m1 must go, not stay at
        // offset 1 beside B's m2.
        let leader = Log::of(&[(0, 1), (1, 1)]);
        let mut follower = Log::of(&[(0, 2)]);
        assert_eq!(reconcile(&mut follower, &leader), 1);
        assert_eq!(follower, leader);
    }

    #[test]
    fn kip_279_fast_leader_changes_converge_in_steps() {
        // F led epoch 2 briefly and wrote offsets 5..8 nobody else has; meanwhile L led
        // epochs 1 and 3. L answers epoch 1 ending at 7, which F never had: F cuts at the end
        // of its own epoch 0 (5), then finds epoch 0 consistent and fetches from there.
        let leader = Log::of(&[(0, 5), (1, 2), (3, 3)]);
        let mut follower = Log::of(&[(0, 5), (2, 3)]);
        assert_eq!(reconcile(&mut follower, &leader), 1);
        assert_eq!(follower, leader);
    }

    #[test]
    fn a_follower_behind_in_the_same_epoch_just_fetches() {
        let leader = Log::of(&[(0, 3), (2, 4)]);
        let mut follower = Log::of(&[(0, 3), (2, 1)]);
        assert_eq!(reconcile(&mut follower, &leader), 0);
        assert_eq!(follower, leader);
    }

    #[test]
    fn an_epoch_the_leader_never_heard_of_is_not_a_divergence_answer() {
        // The follower claims a newer epoch than any the leader has (its log is ahead of
        // the leader's knowledge): no diverging answer, so the fetch goes on and an offset
        // past the leader's end is OFFSET_OUT_OF_RANGE (then cut to the high watermark).
        let leader = Log::of(&[(0, 3)]);
        assert_eq!(diverging_epoch(&leader.cache(), leader.end(), 5, 4), None);
    }

    /// Found by the chaos harness (tests/chaos, a partition isolating a leader): a replica
    /// led epoch 2 without writing (its cache noted (2, 165) at its log end), then followed
    /// a leader of epoch 5 that never had epoch 2. The leader answers "epoch 1 ends at 165";
    /// the cut at 165 removes no record, so only dropping the empty epoch from the cache
    /// lets the next fetch (last fetched epoch 1) go through instead of repeating forever.
    #[test]
    fn an_epoch_led_without_writing_is_dropped_by_a_cut_at_the_log_end() {
        let mut follower = LeaderEpochs::default();
        follower.assign(0, 0);
        follower.assign(1, 42);
        follower.assign(2, 165); // became leader at its log end, wrote nothing
        let mut leader = LeaderEpochs::default();
        leader.assign(0, 0);
        leader.assign(1, 42);
        leader.assign(5, 165);
        let last = follower.latest().expect("epochs");
        let answer = diverging_epoch(&leader, 300, last, 165).expect("diverged");
        assert_eq!(answer, (1, 165));
        let cut = truncation_offset(&follower, 165, answer);
        assert_eq!(cut, 165, "no record to cut");
        follower.truncate_from(cut);
        let last = follower.latest().expect("epochs");
        assert_eq!(last, 1);
        assert_eq!(diverging_epoch(&leader, 300, last, 165), None);
    }

    #[test]
    fn a_truncation_never_goes_above_the_follower_log_end() {
        let follower = Log::of(&[(0, 2)]);
        assert_eq!(
            truncation_offset(&follower.cache(), follower.end(), (0, 9)),
            2
        );
    }
}

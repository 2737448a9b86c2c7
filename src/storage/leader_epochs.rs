//! The leader epoch cache of a partition log (KIP-101, KIP-279): for every leader epoch that
//! appended to the log, the offset of its first record. Followers compare their last
//! fetched epoch against it to find where their log diverged from the leader's, and a
//! leader uses it to answer that question (Fetch `diverging_epoch`). Built at open from the
//! batch headers (each carries the epoch of the leader that wrote it), so it cannot fall out
//! of step with the segments; the `leader-epoch-checkpoint` file is written from it as a view.
//! Pure; lives inside the partition log on its shard.

/// Epoch start offsets in increasing order of both epoch and offset.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LeaderEpochs {
    entries: Vec<(i32, i64)>,
}

impl LeaderEpochs {
    /// Notes that `epoch` wrote (or, for a new leader, will write) from `start_offset` on.
    /// Older or equal epochs change nothing; an entry whose start is not below the new one
    /// is a leftover of an epoch that never wrote and is replaced.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) {
        if epoch < 0 || self.latest().is_some_and(|e| epoch <= e) {
            return;
        }
        while self
            .entries
            .last()
            .is_some_and(|(_, start)| *start >= start_offset)
        {
            self.entries.pop();
        }
        self.entries.push((epoch, start_offset));
    }

    /// Drops the epochs starting at or after `offset` (Kafka's `truncateFromEnd`): once a
    /// follower's log ends at `offset` they hold nothing. This includes an epoch noted when
    /// this replica became leader but never wrote with, which would otherwise stay its last
    /// fetched epoch and draw the same diverging-epoch answer from the new leader forever.
    pub fn truncate_from(&mut self, offset: i64) {
        while self
            .entries
            .last()
            .is_some_and(|(_, start)| *start >= offset)
        {
            self.entries.pop();
        }
    }

    /// The newest epoch, if any leader stamped the log.
    pub fn latest(&self) -> Option<i32> {
        self.entries.last().map(|(e, _)| *e)
    }

    /// Every (epoch, start offset), oldest first.
    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    /// Kafka's `endOffsetFor`: the largest epoch at or below `requested` and the offset where
    /// it ends (the next epoch's start, or `log_end` for the latest). `(-1, -1)` when
    /// `requested` is newer than every epoch here or the cache is empty; an epoch older than
    /// the first one ends where the first starts.
    pub fn end_offset_for(&self, requested: i32, log_end: i64) -> (i32, i64) {
        if requested < 0 {
            return (-1, -1);
        }
        if self.latest() == Some(requested) {
            return (requested, log_end);
        }
        let Some(higher) = self.entries.iter().position(|(e, _)| *e > requested) else {
            return (-1, -1);
        };
        let higher_start = self.entries[higher].1;
        match higher.checked_sub(1) {
            Some(floor) => (self.entries[floor].0, higher_start),
            None => (requested, higher_start),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochs {
        let mut c = LeaderEpochs::default();
        for (e, s) in entries {
            c.assign(*e, *s);
        }
        c
    }

    #[test]
    fn assign_keeps_epochs_and_offsets_increasing() {
        let mut c = cache(&[(0, 0), (2, 10)]);
        c.assign(1, 20);
        c.assign(2, 30);
        c.assign(-1, 40);
        assert_eq!(c.entries(), &[(0, 0), (2, 10)]);
        // A new leader assigned at the log end, then a newer one before any append.
        c.assign(3, 15);
        c.assign(4, 15);
        assert_eq!(c.entries(), &[(0, 0), (2, 10), (4, 15)]);
    }

    #[test]
    fn truncate_from_drops_epochs_that_start_at_or_after_the_cut() {
        let mut c = cache(&[(0, 0), (1, 42), (2, 165)]);
        c.truncate_from(165);
        assert_eq!(c.entries(), &[(0, 0), (1, 42)]);
        c.truncate_from(200);
        assert_eq!(c.entries(), &[(0, 0), (1, 42)]);
        c.truncate_from(0);
        assert_eq!(c.entries(), &[]);
    }

    #[test]
    fn end_offsets_follow_kafka() {
        let c = cache(&[(1, 5), (3, 10), (4, 20)]);
        assert_eq!(c.end_offset_for(4, 25), (4, 25));
        assert_eq!(c.end_offset_for(3, 25), (3, 20));
        assert_eq!(c.end_offset_for(2, 25), (1, 10));
        assert_eq!(c.end_offset_for(0, 25), (0, 5));
        assert_eq!(c.end_offset_for(5, 25), (-1, -1));
        assert_eq!(c.end_offset_for(-1, 25), (-1, -1));
        assert_eq!(LeaderEpochs::default().end_offset_for(0, 3), (-1, -1));
    }
}

//! The active segment's directory of its newest batches: every batch from the one the last
//! offset-index entry names to the segment's end, with its offsets and place in the file.
//! A fetch from a consumer or follower that keeps up asks for an offset in this range, and
//! finds its batch here without reading a batch header from the file (a `pread` on the shard
//! thread, which blocks it when the page is not cached). Older offsets go through the sparse
//! index and a scan as before. Owned by the segment, on the partition's shard.

use std::collections::VecDeque;

use super::BatchLocation;

/// Batches the directory holds at most: with the default `index.interval.bytes` (4 KiB) it
/// never holds more than about 70 (the smallest batch is 61 bytes); a topic with a huge
/// interval keeps only its newest batches here, and the rest are found by scanning.
const MAX_BATCHES: usize = 1024;

/// One batch of the directory.
#[derive(Debug, Clone, Copy)]
struct Recent {
    location: BatchLocation,
    last_offset: i64,
}

/// See the module doc.
#[derive(Debug, Default)]
pub struct RecentBatches {
    batches: VecDeque<Recent>,
}

impl RecentBatches {
    /// Notes a batch appended at the segment's end; `indexed` when an offset-index entry was
    /// just made for it, which starts the directory over from it.
    pub fn note(&mut self, location: BatchLocation, last_offset: i64, indexed: bool) {
        if indexed {
            self.batches.clear();
        }
        if self.batches.len() == MAX_BATCHES {
            self.batches.pop_front();
        }
        self.batches.push_back(Recent {
            location,
            last_offset,
        });
    }

    /// Forgets every batch (the segment stopped being active).
    pub fn clear(&mut self) {
        self.batches = VecDeque::new();
    }

    /// The batch holding `offset` (or the first one after it, across a gap), when the
    /// directory covers it: `Some(None)` when `offset` is past the segment's data, `None`
    /// when it is older than the directory.
    pub fn find(&self, offset: i64) -> Option<Option<BatchLocation>> {
        let first = self.batches.front()?;
        if offset < first.location.base_offset {
            return None;
        }
        let at = self.batches.partition_point(|b| b.last_offset < offset);
        Some(self.batches.get(at).map(|b| b.location))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(base: i64, last: i64, position: u64) -> (BatchLocation, i64) {
        let location = BatchLocation {
            position,
            size: 100,
            base_offset: base,
        };
        (location, last)
    }

    #[test]
    fn finds_the_batch_holding_an_offset_and_says_what_it_does_not_cover() {
        let mut recent = RecentBatches::default();
        assert_eq!(recent.find(0).map(|l| l.map(|l| l.position)), None);
        for (base, last, pos) in [(0, 4, 0), (5, 9, 100), (12, 14, 200)] {
            let (location, last) = batch(base, last, pos);
            recent.note(location, last, base == 0);
        }
        let found =
            |recent: &RecentBatches, offset| recent.find(offset).map(|l| l.map(|l| l.position));
        assert_eq!(found(&recent, 0), Some(Some(0)));
        assert_eq!(found(&recent, 7), Some(Some(100)));
        assert_eq!(
            found(&recent, 10),
            Some(Some(200)),
            "a gap reads from the next batch"
        );
        assert_eq!(found(&recent, 15), Some(None), "past the data");
        let (location, last) = batch(15, 20, 300);
        recent.note(location, last, true);
        assert_eq!(
            found(&recent, 7),
            None,
            "an index entry starts the directory over"
        );
        assert_eq!(found(&recent, 16), Some(Some(300)));
    }

    #[test]
    fn holds_only_its_newest_batches() {
        let mut recent = RecentBatches::default();
        for i in 0..(MAX_BATCHES as i64 + 10) {
            let (location, last) = batch(i, i, i as u64 * 100);
            recent.note(location, last, i == 0);
        }
        assert_eq!(recent.batches.len(), MAX_BATCHES);
        assert_eq!(recent.find(5), None, "the oldest fell out");
        assert_eq!(
            recent.find(1030).map(|l| l.map(|l| l.position)),
            Some(Some(103_000))
        );
    }
}

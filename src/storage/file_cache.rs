//! The per-shard cache of open `.log` descriptors of closed (non-active) segments.
//!
//! A closed segment's files need not stay open: its indexes are in memory and its log is
//! only read by fetches, timestamp lookups and start-up scans. Keeping every segment of
//! every partition open runs a node with many partitions out of descriptors (`EMFILE`),
//! so closed segments open their log on a read and this bounded LRU closes the least
//! recently used one when it is full. The active segment of each partition keeps its files
//! open outside the cache (appends).
//!
//! Thread-local: every shard thread (and any blocking-pool thread that opens segments, such
//! as the cleaner's) has its own cache, so nothing is shared across cores and no lock is
//! taken. Entries are `Rc<File>`: evicting one only drops the cache's reference, so a file
//! handed to an in-flight fetch (sendfile or a copy) stays valid until that send finishes.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;
use std::rc::Rc;

use crate::metrics::CacheStats;

/// Limit of a thread whose shard never set one (unit tests, blocking-pool threads).
pub const DEFAULT_LIMIT: usize = 64;

thread_local! {
    /// Ids of segment instances: a segment rewritten in place (compaction) gets a new id, so
    /// a descriptor of the old file is never served for the new one. Per thread, like the
    /// cache (a segment never leaves the thread that made it), so a roll touches no state
    /// shared with another core.
    static NEXT_ID: std::cell::Cell<u64> = const { std::cell::Cell::new(1) };
}

/// A fresh cache key for one segment instance, unique on this thread.
pub fn new_id() -> u64 {
    NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id + 1);
        id
    })
}

struct Entry {
    file: Rc<File>,
    last_use: u64,
}

/// A bounded LRU of open files, keyed by segment id.
pub struct FileCache {
    limit: usize,
    entries: HashMap<u64, Entry>,
    /// Last-use tick → segment id, oldest first.
    by_age: BTreeMap<u64, u64>,
    tick: u64,
    opened: u64,
    evicted: u64,
}

impl FileCache {
    /// An empty cache that keeps at most `limit` files open (at least 1).
    pub fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            entries: HashMap::new(),
            by_age: BTreeMap::new(),
            tick: 0,
            opened: 0,
            evicted: 0,
        }
    }

    fn touch(&mut self, id: u64) -> Option<Rc<File>> {
        self.tick += 1;
        let tick = self.tick;
        let entry = self.entries.get_mut(&id)?;
        self.by_age.remove(&entry.last_use);
        entry.last_use = tick;
        self.by_age.insert(tick, id);
        Some(entry.file.clone())
    }

    /// The open file of segment `id`, opening `path` on a miss and closing the least
    /// recently used files beyond the limit.
    pub fn get_or_open(&mut self, id: u64, path: &Path) -> io::Result<Rc<File>> {
        if let Some(file) = self.touch(id) {
            return Ok(file);
        }
        // Make room first, so the open itself never needs the descriptor over the limit.
        self.shrink_to(self.limit - 1);
        let file = Rc::new(OpenOptions::new().read(true).write(true).open(path)?);
        self.opened += 1;
        self.tick += 1;
        self.entries.insert(
            id,
            Entry {
                file: file.clone(),
                last_use: self.tick,
            },
        );
        self.by_age.insert(self.tick, id);
        Ok(file)
    }

    /// Drops the entry of a segment that is gone (deleted, replaced or made active).
    pub fn forget(&mut self, id: u64) {
        if let Some(entry) = self.entries.remove(&id) {
            self.by_age.remove(&entry.last_use);
        }
    }

    fn shrink_to(&mut self, keep: usize) {
        while self.entries.len() > keep {
            let Some((_, id)) = self.by_age.pop_first() else {
                break;
            };
            self.entries.remove(&id);
            self.evicted += 1;
        }
    }

    /// Changes the bound (at least 1), closing the least recently used files beyond it.
    pub fn set_limit(&mut self, limit: usize) {
        self.limit = limit.max(1);
        self.shrink_to(self.limit);
    }

    /// Open count, limit and the lifetime opened/evicted counters, for the metrics endpoint.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            open: self.entries.len(),
            limit: self.limit,
            opened: self.opened,
            evicted: self.evicted,
        }
    }
}

thread_local! {
    static CACHE: RefCell<FileCache> = RefCell::new(FileCache::new(DEFAULT_LIMIT));
}

/// Sets this thread's (shard's) limit; called once when the shard starts.
pub fn set_limit(limit: usize) {
    CACHE.with(|c| c.borrow_mut().set_limit(limit));
}

/// The open log file of closed segment `id` at `path` (see [`FileCache::get_or_open`]).
pub fn get_or_open(id: u64, path: &Path) -> io::Result<Rc<File>> {
    CACHE.with(|c| c.borrow_mut().get_or_open(id, path))
}

/// Forgets segment `id` on this thread's cache.
pub fn forget(id: u64) {
    // `try_with`: a segment dropped while the thread's locals are torn down has nothing
    // left to forget.
    let _ = CACHE.try_with(|c| c.borrow_mut().forget(id));
}

/// This thread's cache counters.
pub fn stats() -> CacheStats {
    CACHE.with(|c| c.borrow().stats())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_recently_used_is_closed_and_handed_out_files_stay_valid() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<_> = (0..3)
            .map(|i| {
                let p = dir.path().join(format!("{i}.log"));
                std::fs::write(&p, format!("file {i}")).unwrap();
                p
            })
            .collect();
        let mut cache = FileCache::new(2);
        let held = cache.get_or_open(10, &paths[0]).unwrap();
        cache.get_or_open(11, &paths[1]).unwrap();
        cache.get_or_open(10, &paths[0]).unwrap(); // 10 is now the most recent
        cache.get_or_open(12, &paths[2]).unwrap(); // evicts 11
        assert_eq!(cache.stats().open, 2);
        assert_eq!(cache.stats().evicted, 1);
        assert!(cache.entries.contains_key(&10) && !cache.entries.contains_key(&11));
        cache.get_or_open(13, &paths[1]).unwrap(); // evicts 10, which a reader still holds
        let mut text = String::new();
        (&*held).read_to_string(&mut text).unwrap();
        assert_eq!(text, "file 0", "an evicted file stays open for its holder");
        cache.forget(12);
        assert_eq!(cache.stats().open, 1);
        assert_eq!(cache.stats().opened, 4);
    }

    /// Writes `count` one-record segments of `per_segment` batches each into `dir`.
    fn write_segments(dir: &Path, count: i64, per_segment: i64) {
        use crate::protocol::record_batch::{BatchBuilder, set_base_offset};
        std::fs::create_dir_all(dir).unwrap();
        for s in 0..count {
            let base = s * per_segment;
            let mut all = Vec::new();
            for i in 0..per_segment {
                let mut b = BatchBuilder {
                    record_count: 1,
                    base_timestamp: base + i,
                    max_timestamp: base + i,
                    ..Default::default()
                }
                .build(&[7u8; 50]);
                set_base_offset(&mut b, base + i);
                all.extend_from_slice(&b);
            }
            std::fs::write(dir.join(format!("{base:020}.log")), all).unwrap();
        }
    }

    /// A log of many segments opens holding no closed-segment descriptor beyond the cache's
    /// limit, serves every segment through it, and a slice of an evicted (even deleted)
    /// segment stays readable; retention's removal forgets the cached descriptor.
    #[test]
    fn a_log_reads_every_closed_segment_through_the_bounded_cache() {
        use crate::config::TopicConfig;
        use crate::storage::log::PartitionLog;
        use std::os::unix::fs::FileExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("t-0");
        write_segments(&dir, 12, 3);
        set_limit(2);
        let before = stats();
        let (mut log, _) = PartitionLog::open(dir, "t", 0, TopicConfig::default()).unwrap();
        assert!(stats().open <= 2, "{:?}", stats());
        assert_eq!(log.watermarks().high_watermark, 36);
        let first = log
            .read(0, 1)
            .unwrap()
            .expect("offset 0 is in the first segment");
        for offset in (0..36).step_by(3) {
            let slice = log
                .read(offset, 1)
                .unwrap()
                .expect("every offset is readable");
            let mut header = [0u8; 8];
            slice
                .file
                .read_exact_at(&mut header, slice.position)
                .unwrap();
            assert_eq!(i64::from_be_bytes(header), offset);
            assert!(stats().open <= 2);
        }
        assert!(
            stats().opened - before.opened >= 11,
            "closed segments were reopened"
        );
        let (ts_offset, ts) = log
            .offset_for_timestamp(7)
            .unwrap()
            .expect("a record has timestamp 7")
            .resolve_here()
            .unwrap();
        assert_eq!((ts_offset, ts), (7, 7));
        // Retention removes the first eleven segments: their cache entries go with them.
        log.set_config(TopicConfig {
            retention_bytes: 0,
            ..TopicConfig::default()
        });
        let removed = log.collect_expired_segments(crate::now_ms());
        removed
            .iter()
            .for_each(|p| std::fs::remove_file(p).unwrap());
        assert_eq!(stats().open, 0, "the active segment is never cached");
        let mut header = [0u8; 8];
        first
            .file
            .read_exact_at(&mut header, first.position)
            .unwrap();
        assert_eq!(
            i64::from_be_bytes(header),
            0,
            "a held slice outlives eviction and deletion"
        );
        set_limit(DEFAULT_LIMIT);
    }
}

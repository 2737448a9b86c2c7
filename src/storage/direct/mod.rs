//! The O_DIRECT log mode (`sluice.log.io=direct`), an experiment next to the default
//! page-cache log: appends are written with O_DIRECT through glommio's DMA files from its
//! registered, pre-touched buffer arena, and the newest appended bytes of each partition stay
//! in a user-space cache that serves fetches (as Redpanda does), since the page cache no longer
//! holds them. Everything here runs on the shard that owns the partition.
//!
//! Why an experiment: the page-cache log lets the kernel absorb bursts and lets fetches use
//! sendfile with no copy; O_DIRECT gives the broker control over memory and write timing (no
//! dirty-page throttling, an fdatasync with nothing to write back) at the price of a copy into
//! an aligned buffer per append, a rewrite of the last partial block, and a copy per fetch
//! from the cache. The tuning lab measures both side by side (`log_io` sweep).

mod tail_cache;
mod writer;

pub use tail_cache::TailCache;
pub use writer::DirectWriter;

use std::fmt;
use std::rc::Rc;
use std::str::FromStr;

/// How a partition's appends reach the disk (`sluice.log.io`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogIoMode {
    /// Buffered writes into the page cache; fetches use sendfile. The default.
    #[default]
    PageCache,
    /// O_DIRECT writes; fetches of the newest data come from the partition's tail cache.
    Direct,
}

impl fmt::Display for LogIoMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogIoMode::PageCache => "page-cache",
            LogIoMode::Direct => "direct",
        })
    }
}

impl FromStr for LogIoMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "page-cache" => Ok(LogIoMode::PageCache),
            "direct" => Ok(LogIoMode::Direct),
            other => Err(format!("'{other}' is neither page-cache nor direct")),
        }
    }
}

/// A partition's log I/O settings, as its segments' writers are opened with them.
#[derive(Clone)]
pub enum SegmentIo {
    /// Buffered writes with early writeback every `writeback_bytes` (0: the kernel's).
    PageCache {
        /// `sluice.log.writeback.bytes`.
        writeback_bytes: u64,
    },
    /// O_DIRECT writes; the partition's tail cache, shared by its segments.
    Direct(Rc<TailCache>),
}

impl SegmentIo {
    /// The settings of one partition: a tail cache of its own in direct mode.
    pub fn for_partition(mode: LogIoMode, writeback_bytes: u64, direct_cache_bytes: u64) -> Self {
        match mode {
            LogIoMode::PageCache => SegmentIo::PageCache { writeback_bytes },
            LogIoMode::Direct => SegmentIo::Direct(Rc::new(TailCache::new(direct_cache_bytes))),
        }
    }

    /// Bytes between early writeback requests: none in direct mode (no dirty pages).
    pub fn writeback_bytes(&self) -> u64 {
        match self {
            SegmentIo::PageCache { writeback_bytes } => *writeback_bytes,
            SegmentIo::Direct(_) => 0,
        }
    }
}

/// Each shard's registered buffer arena for io_uring (glommio's `io_memory`; its default is
/// 10 MiB): direct appends copy into buffers from it. An append larger than what is free
/// falls back to a fresh aligned allocation.
pub const DMA_ARENA_BYTES: usize = 16 << 20;

/// Fills most of the shard's registered DMA buffer arena once, so appends do not fault its
/// pages in (on a VM with free page reporting, first touches cost about ten times more).
/// Called once per shard at start-up in direct mode; the allocator keeps some of the arena
/// for its own bookkeeping, hence not all of it.
pub fn pre_touch_dma_arena() {
    let mut buf = glommio::allocate_dma_buffer(DMA_ARENA_BYTES / 2);
    buf.as_bytes_mut().fill(0);
    let mut rest = glommio::allocate_dma_buffer(DMA_ARENA_BYTES / 4);
    rest.as_bytes_mut().fill(0);
}

#[cfg(test)]
mod tests;

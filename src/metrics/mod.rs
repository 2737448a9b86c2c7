//! Metrics: per-shard counters and latency histograms, written only by their own shard, and a
//! Prometheus text exporter on a plain thread that reads them. On the request path a shard
//! takes no lock: counters are relaxed atomics, and the latency and fsync histograms and the
//! per-topic traffic are recorded into the shard thread's own copy ([`LocalRecords`]), added
//! to the shared one once a second by the housekeeping loop ([`ShardMetrics::publish_local`]),
//! which is the only time the shard takes those locks (the exporter's reads lag by at most a
//! second). Every shard registers its
//! [`ShardMetrics`] at start-up and reaches it through a thread-local, so storage and
//! handlers can count without plumbing.

mod exporter;

pub use exporter::serve_metrics;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hdrhistogram::Histogram;

/// Counters of a shard's cache of closed segments' open files (`storage::file_cache`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Closed-segment log files the cache holds open now.
    pub open: usize,
    /// Most files the cache keeps open (at least 1).
    pub limit: usize,
    /// Files opened since start-up (cache misses).
    pub opened: u64,
    /// Files closed since start-up to stay within `limit`.
    pub evicted: u64,
}

/// Highest Kafka API key we keep a counter slot for.
const API_SLOTS: usize = 128;

/// Bytes and messages per topic, counted once per request (not per record).
#[derive(Debug, Default, Clone, Copy)]
pub struct TopicTraffic {
    /// Record-batch bytes appended by Produce since start-up.
    pub bytes_in: u64,
    /// Records appended by Produce since start-up (the batches' record counts).
    pub messages_in: u64,
    /// Record bytes sent in Fetch responses since start-up.
    pub bytes_out: u64,
}

/// Size of one partition's log, published by its shard once a second.
#[derive(Debug, Clone)]
pub struct PartitionGauge {
    /// Topic of the partition.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Bytes of the log's segment files, active segment included.
    pub size_bytes: u64,
    /// Segments in the log, active segment included.
    pub segments: usize,
    /// Offset after the last record replicated to the ISR.
    pub high_watermark: i64,
    /// First offset still in the log (it advances with retention and DeleteRecords).
    pub log_start_offset: i64,
}

/// A group's committed offset for one partition, published by the group's coordinating shard;
/// the exporter joins it with the partition's high watermark (from its owning shard) for lag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// Consumer group id.
    pub group: String,
    /// Topic of the partition.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Committed offset: the next offset the group will consume.
    pub offset: i64,
}

/// File I/O a shard submitted to its io_uring rings (glommio's ring statistics), summed since
/// start-up. Socket I/O is not in glommio's statistics and not counted here.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RingIo {
    /// Direct (DMA) file reads.
    pub reads: u64,
    /// Bytes read by those direct reads.
    pub read_bytes: u64,
    /// Reads through the page cache (glommio's buffered files).
    pub buffered_reads: u64,
    /// Bytes read by those buffered reads.
    pub buffered_read_bytes: u64,
    /// Direct (DMA) file writes.
    pub writes: u64,
    /// Bytes written by those direct writes.
    pub write_bytes: u64,
    /// Writes through the page cache (glommio's buffered files; log appends are these).
    pub buffered_writes: u64,
    /// Bytes written by those buffered writes.
    pub buffered_write_bytes: u64,
    /// Files opened through the rings.
    pub files_opened: u64,
    /// Files closed through the rings.
    pub files_closed: u64,
}

impl RingIo {
    /// Adds glommio's counters since the previous call (glommio resets them when read).
    pub fn add(&mut self, delta: &glommio::RingIoStats) {
        let (reads, read_bytes) = delta.file_reads();
        let (buffered_reads, buffered_read_bytes) = delta.file_buffered_reads();
        let (writes, write_bytes) = delta.file_writes();
        let (buffered_writes, buffered_write_bytes) = delta.file_buffered_writes();
        self.reads += reads;
        self.read_bytes += read_bytes;
        self.buffered_reads += buffered_reads;
        self.buffered_read_bytes += buffered_read_bytes;
        self.writes += writes;
        self.write_bytes += write_bytes;
        self.buffered_writes += buffered_writes;
        self.buffered_write_bytes += buffered_write_bytes;
        self.files_opened += delta.files_opened();
        self.files_closed += delta.files_closed();
    }
}

/// Memory a shard keeps in its pools for reuse.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PoolGauge {
    /// Fetch copy-path buffers waiting for reuse, and their capacity in bytes.
    pub copy_buffers: usize,
    /// Total capacity of those buffers in bytes.
    pub copy_buffer_bytes: usize,
    /// Request-frame buffers waiting for reuse (`server/frame_pool.rs`).
    pub frame_buffers: usize,
    /// Total capacity of those buffers in bytes.
    pub frame_buffer_bytes: usize,
}

/// One shard's counters, latency histograms and published gauges: written by its own shard
/// (through [`with_current`]), read by the exporter thread.
pub struct ShardMetrics {
    /// Index of the shard's core; the `shard` label of its series.
    pub core: usize,
    requests: Vec<AtomicU64>,
    errors: Vec<AtomicU64>,
    /// Open client connections of this shard (opened minus closed).
    pub connections: AtomicI64,
    /// Partition flushes (fdatasync) since start-up; the count of the fsync histogram.
    pub fsyncs: AtomicU64,
    /// Connections closed at accept for being over a connection limit.
    pub connections_refused: AtomicU64,
    /// Connections closed for idling or for sending a frame too slowly.
    pub connections_timed_out: AtomicU64,
    /// Long-polling fetches woken before their deadline to look at their partitions again.
    pub fetch_wakeups: AtomicU64,
    /// Stall-probe wake-ups ([`crate::shard::stall_probe`]) since start-up.
    pub stall_probes: AtomicU64,
    /// Of those, the ones late by more than [`STALL`].
    pub stalls: AtomicU64,
    /// Of those, the ones late by more than [`LONG_STALL`].
    pub long_stalls: AtomicU64,
    /// The longest stall-probe lateness seen, in microseconds.
    pub stall_max_us: AtomicU64,
    /// Connections refused for bad SASL credentials.
    pub sasl_failures: AtomicU64,
    /// TLS connections refused: failed handshake or a certificate mapped to no principal.
    pub tls_failures: AtomicU64,
    /// Bytes left in the shard's request-memory budget (-1: unbounded), published each second.
    pub request_memory_free: AtomicI64,
    /// Partitions of this shard whose open failed, published each second.
    pub partitions_offline: AtomicI64,
    /// The shard's closed-segment descriptor cache, published each second.
    segment_files: Mutex<CacheStats>,
    latency_us: Mutex<BTreeMap<i16, Histogram<u64>>>,
    fsync_us: Mutex<Histogram<u64>>,
    stall_us: Mutex<Histogram<u64>>,
    topics: Mutex<BTreeMap<String, TopicTraffic>>,
    partitions: Mutex<Vec<PartitionGauge>>,
    committed: Mutex<Vec<CommittedOffset>>,
    ring_io: Mutex<RingIo>,
    pools: Mutex<PoolGauge>,
}

/// What a shard records per request and per flush, on its own thread, until the next
/// [`ShardMetrics::publish_local`] adds it to the shared copy.
struct LocalRecords {
    latency_us: BTreeMap<i16, Histogram<u64>>,
    fsync_us: Option<Histogram<u64>>,
    stall_us: Option<Histogram<u64>>,
    topics: BTreeMap<String, TopicTraffic>,
    /// Requests this thread has recorded since it started (never reset): the stall probe
    /// watches it to tell a busy shard from an idle one.
    requests: u64,
    /// Something was recorded since the last publish.
    changed: bool,
}

thread_local! {
    // A const initialiser: no lazy-initialisation check on every request.
    static LOCAL: std::cell::RefCell<LocalRecords> = const {
        std::cell::RefCell::new(LocalRecords {
            latency_us: BTreeMap::new(),
            fsync_us: None,
            stall_us: None,
            topics: BTreeMap::new(),
            requests: 0,
            changed: false,
        })
    };
}

/// Stall-probe lateness counted as a stall (`sluice_shard_stalls_total`).
pub const STALL: Duration = Duration::from_millis(1);

/// Stall-probe lateness counted as a long stall (`sluice_shard_long_stalls_total`): the
/// performance targets allow none over 20 ms.
pub const LONG_STALL: Duration = Duration::from_millis(20);

fn new_histogram() -> Histogram<u64> {
    // 1 µs .. 60 s at 3 significant digits; the bounds are constants, so this cannot fail.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant histogram bounds are valid")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Writers never panic while holding these locks; if one did, the counts are still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ShardMetrics {
    /// Zeroed metrics for the shard on `core`, `request_memory_free` at -1 (unbounded).
    /// Shards get theirs from [`install_for_current_shard`].
    pub fn new(core: usize) -> Self {
        Self {
            core,
            requests: (0..API_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            errors: (0..API_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            connections: AtomicI64::new(0),
            fsyncs: AtomicU64::new(0),
            sasl_failures: AtomicU64::new(0),
            tls_failures: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            connections_timed_out: AtomicU64::new(0),
            fetch_wakeups: AtomicU64::new(0),
            stall_probes: AtomicU64::new(0),
            stalls: AtomicU64::new(0),
            long_stalls: AtomicU64::new(0),
            stall_max_us: AtomicU64::new(0),
            request_memory_free: AtomicI64::new(-1),
            partitions_offline: AtomicI64::new(0),
            segment_files: Mutex::default(),
            latency_us: Mutex::new(BTreeMap::new()),
            fsync_us: Mutex::new(new_histogram()),
            stall_us: Mutex::new(new_histogram()),
            topics: Mutex::new(BTreeMap::new()),
            partitions: Mutex::new(Vec::new()),
            committed: Mutex::new(Vec::new()),
            ring_io: Mutex::new(RingIo::default()),
            pools: Mutex::new(PoolGauge::default()),
        }
    }

    fn slot(api_key: i16) -> Option<usize> {
        usize::try_from(api_key).ok().filter(|k| *k < API_SLOTS)
    }

    /// One request served (or failed), with its latency from frame read to reply written.
    pub fn record_request(&self, api_key: i16, failed: bool, elapsed: Duration) {
        let Some(slot) = Self::slot(api_key) else {
            return;
        };
        self.requests[slot].fetch_add(1, Ordering::Relaxed);
        if failed {
            self.errors[slot].fetch_add(1, Ordering::Relaxed);
        }
        let micros = (elapsed.as_micros() as u64).clamp(1, 60_000_000);
        LOCAL.with_borrow_mut(|l| {
            l.requests += 1;
            let _ = l
                .latency_us
                .entry(api_key)
                .or_insert_with(new_histogram)
                .record(micros);
            l.changed = true;
        });
    }

    /// Adds what this thread recorded since the last call to the shared histograms and
    /// totals the exporter reads, and starts the thread's copy afresh. The shard's
    /// housekeeping loop calls it once a second; nothing else on the shard takes these locks.
    pub fn publish_local(&self) {
        LOCAL.with_borrow_mut(|l| {
            if !l.changed {
                return;
            }
            let mut latency = lock(&self.latency_us);
            for (key, local) in &mut l.latency_us {
                let shared = latency.entry(*key).or_insert_with(new_histogram);
                let _ = shared.add(&*local);
                local.reset();
            }
            drop(latency);
            if let Some(local) = &mut l.fsync_us {
                let _ = lock(&self.fsync_us).add(&*local);
                local.reset();
            }
            if let Some(local) = &mut l.stall_us {
                let _ = lock(&self.stall_us).add(&*local);
                local.reset();
            }
            let mut topics = lock(&self.topics);
            for (topic, t) in std::mem::take(&mut l.topics) {
                let total = topics.entry(topic).or_default();
                total.bytes_in += t.bytes_in;
                total.messages_in += t.messages_in;
                total.bytes_out += t.bytes_out;
            }
            l.changed = false;
        });
    }

    /// Counts a connection accepted past the limits (raises the `sluice_connections` gauge).
    pub fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection that ended, however it ended.
    pub fn connection_closed(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// Counts a TLS connection refused at its handshake.
    pub fn tls_failure(&self) {
        self.tls_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection closed at accept for being over a connection limit.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection closed for idling or for sending a frame too slowly.
    pub fn connection_timed_out(&self) {
        self.connections_timed_out.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a long-polling fetch woken before its deadline.
    pub fn fetch_woken(&self) {
        self.fetch_wakeups.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one partition flush and records its fdatasync latency (clamped to 1 µs..60 s).
    pub fn record_fsync(&self, elapsed: Duration) {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        let micros = (elapsed.as_micros() as u64).clamp(1, 60_000_000);
        LOCAL.with_borrow_mut(|l| {
            let _ = l.fsync_us.get_or_insert_with(new_histogram).record(micros);
            l.changed = true;
        });
    }

    /// One stall-probe wake-up, `late` after it was due (see [`crate::shard::stall_probe`]).
    /// Only the over-1 ms ones reach the histogram, so it stays cheap at 1,000 a second.
    pub fn record_stall_probe(&self, late: Duration) {
        self.stall_probes.fetch_add(1, Ordering::Relaxed);
        if late <= STALL {
            return;
        }
        self.stalls.fetch_add(1, Ordering::Relaxed);
        if late > LONG_STALL {
            self.long_stalls.fetch_add(1, Ordering::Relaxed);
        }
        let micros = (late.as_micros() as u64).clamp(1, 60_000_000);
        self.stall_max_us.fetch_max(micros, Ordering::Relaxed);
        LOCAL.with_borrow_mut(|l| {
            let _ = l.stall_us.get_or_insert_with(new_histogram).record(micros);
            l.changed = true;
        });
    }

    /// Adds to `topic`'s totals: a partition's Produce append (`bytes_in`, `messages_in`) or a
    /// Fetch response's record bytes for it (`bytes_out`).
    pub fn add_topic_traffic(&self, topic: &str, bytes_in: u64, messages_in: u64, bytes_out: u64) {
        LOCAL.with_borrow_mut(|l| {
            let t = match l.topics.get_mut(topic) {
                Some(t) => t,
                None => l.topics.entry(topic.to_string()).or_default(),
            };
            t.bytes_in += bytes_in;
            t.messages_in += messages_in;
            t.bytes_out += bytes_out;
            l.changed = true;
        });
    }

    /// Replaces the shard's partition gauges (from housekeeping, once a second).
    pub fn publish_partitions(&self, gauges: Vec<PartitionGauge>) {
        *lock(&self.partitions) = gauges;
    }

    /// Replaces the committed offsets of the groups this shard coordinates (once a second).
    pub fn publish_committed(&self, committed: Vec<CommittedOffset>) {
        *lock(&self.committed) = committed;
    }

    /// Adds glommio's ring counters since the previous call (glommio resets them when read).
    pub fn add_ring_io(&self, delta: &glommio::RingIoStats) {
        lock(&self.ring_io).add(delta);
    }

    /// Offline partitions and the closed-segment descriptor cache.
    pub fn publish_storage_health(&self, offline: i64, files: CacheStats) {
        self.partitions_offline.store(offline, Ordering::Relaxed);
        *lock(&self.segment_files) = files;
    }

    /// Replaces the shard's copy-buffer pool gauge (from housekeeping, once a second).
    pub fn publish_pools(&self, pools: PoolGauge) {
        *lock(&self.pools) = pools;
    }
}

static REGISTRY: OnceLock<Mutex<Vec<Arc<ShardMetrics>>>> = OnceLock::new();

fn registry() -> &'static Mutex<Vec<Arc<ShardMetrics>>> {
    REGISTRY.get_or_init(|| Mutex::new(Vec::new()))
}

thread_local! {
    static CURRENT: std::cell::RefCell<Option<Arc<ShardMetrics>>> = const { std::cell::RefCell::new(None) };
}

/// Registers the metrics of the shard running on this thread.
pub fn install_for_current_shard(core: usize) -> Arc<ShardMetrics> {
    let metrics = Arc::new(ShardMetrics::new(core));
    lock(registry()).push(metrics.clone());
    CURRENT.with(|c| *c.borrow_mut() = Some(metrics.clone()));
    metrics
}

/// Requests recorded on this thread since it started: the stall probe watches it to tell a
/// busy shard from an idle one.
pub fn requests_recorded_here() -> u64 {
    LOCAL.with_borrow(|l| l.requests)
}

/// Runs `f` with this thread's shard metrics, if a shard runs here (tests may not have one).
pub fn with_current(f: impl FnOnce(&ShardMetrics)) {
    CURRENT.with(|c| {
        if let Some(m) = c.borrow().as_ref() {
            f(m)
        }
    });
}

/// The partition sizes shard `core` last published (at most a second old).
pub fn published_partitions(core: usize) -> Vec<PartitionGauge> {
    all_shards()
        .iter()
        .filter(|s| s.core == core)
        .flat_map(|s| lock(&s.partitions).clone())
        .collect()
}

fn all_shards() -> Vec<Arc<ShardMetrics>> {
    lock(registry()).clone()
}

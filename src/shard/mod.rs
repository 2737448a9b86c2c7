//! A shard: the per-core state of one glommio executor. It owns the partitions placed on its
//! core (opened lazily or at start-up; each partition carries the event its long polls wait on), and the
//! reconcile loop that applies control-plane changes (deleted topics, config changes) to its
//! own partitions, and (`replication/`) the replication of the partitions it leads or follows in
//! a cluster. Everything here is `!Send` and lives on exactly one core.

pub mod broker_link;
pub mod coordinator_moves;
pub mod groups;
pub mod join;
pub mod mailbox;
pub mod offsets_log;
pub mod open_partitions;
pub mod replication;
pub mod request_memory;
pub mod share_offsets;
pub mod share_requests;
pub mod share_state;
pub mod share_state_log;
pub mod stall_probe;
pub mod txns;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::BrokerConfig;
use crate::event::Event;
use crate::metadata::{Cluster, TopicMeta};
use crate::shard::request_memory::RequestMemory;
use crate::storage::direct::SegmentIo;
use crate::storage::log::{Partition, PartitionLog, partition_dir_name};

/// Why a shard cannot serve a partition; each maps to a Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    /// No such topic, or the index is not one of its partitions (UNKNOWN_TOPIC_OR_PARTITION).
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    /// The partition is placed on another shard (NOT_LEADER_OR_FOLLOWER).
    #[error("partition is owned by another shard")]
    NotLeader,
    /// Opening the partition's log failed (KAFKA_STORAGE_ERROR); it stays offline and every request
    /// tries again.
    #[error("partition storage failed: {0}")]
    Storage(#[from] std::io::Error),
}

type PartitionKey = (String, i32);

/// A shard's copy of the topics by name.
type LocalTopics = Rc<TopicIndex>;

/// Dynamic configs by group id.
type GroupConfigs = std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>;

/// A shard's copy of every topic, by name and by topic id (Fetch v13+ and the replica
/// fetcher name topics by id), rebuilt when the node's metadata version moves.
#[derive(Debug, Default)]
pub struct TopicIndex {
    /// Every topic by name.
    pub by_name: HashMap<String, Arc<TopicMeta>>,
    /// Every topic by id.
    pub by_id: HashMap<uuid::Uuid, Arc<TopicMeta>>,
}

impl TopicIndex {
    /// Copies each topic rather than sharing the node's `Arc`s: every produce and fetch
    /// clones the topic it looks up, and a reference count shared by all cores would bounce
    /// its cache line between the shards serving the same topic.
    fn of(topics: Vec<Arc<TopicMeta>>) -> Self {
        let topics: Vec<Arc<TopicMeta>> = topics
            .iter()
            .map(|t| Arc::new(TopicMeta::clone(t)))
            .collect();
        let by_id = topics.iter().map(|t| (t.id, Arc::clone(t))).collect();
        let by_name = topics.into_iter().map(|t| (t.name.clone(), t)).collect();
        Self { by_name, by_id }
    }
}

/// The state of one shard, shared as `Rc<Shard>` by the tasks of its core; never crosses cores.
pub struct Shard {
    /// The core (0-based) this shard's executor is pinned to; its broker id derives from it.
    pub core: usize,
    /// The node's configuration, the same for every shard.
    pub config: Arc<BrokerConfig>,
    /// The node's cluster metadata (topics, partition placement, dynamic configs), shared by every
    /// shard.
    pub cluster: Arc<Cluster>,
    partitions: RefCell<open_partitions::OpenPartitions>,
    opening: RefCell<HashSet<PartitionKey>>,
    /// Partitions whose last open failed (clients get KAFKA_STORAGE_ERROR; every request
    /// tries again), published as `sluice_partitions_offline`.
    offline: RefCell<HashSet<PartitionKey>>,
    /// Signalled once when shutdown begins; accept loops and idle connections wait on it.
    pub shutdown_event: Event,
    shutdown: Arc<AtomicBool>,
    /// Requests being processed right now, so shutdown can let them finish.
    pub in_flight: Cell<usize>,
    /// This shard's share of `queued.max.request.bytes` for frames held in memory.
    pub request_memory: RequestMemory,
    reconciled_version: Cell<u64>,
    /// This shard's own copy of the topics and the metadata version it was taken at: the
    /// produce and fetch path looks partitions up here, so it reads only the version counter
    /// shared with other cores (no lock); the copy is retaken once per metadata change.
    topics: RefCell<(u64, LocalTopics)>,
    /// This shard's copy of the ACL bindings and the metadata version it was taken at, for
    /// the authorizer (retaken once per metadata change, like `topics`).
    acls: RefCell<(u64, Rc<[crate::acl::AclBinding]>)>,
    /// This shard's copy of the groups' dynamic configs, with the metadata version it was
    /// taken at.
    group_configs: RefCell<(u64, Rc<GroupConfigs>)>,
    /// Consumer groups coordinated here (those whose `__consumer_offsets` partition this
    /// shard owns).
    pub groups: groups::Groups,
    /// Transactional ids coordinated here (those whose `__transaction_state` partition
    /// this shard owns).
    pub txns: txns::Txns,
    /// Leadership bookkeeping and ISR proposals of the partitions this shard replicates
    /// (cluster mode).
    pub replication: crate::shard::replication::Replication,
    /// This shard's client quota sensors and its index of the quota configurations.
    pub quotas: crate::quota::ShardQuotas,
    /// Share groups' record states of the partitions this shard leads, and the share
    /// sessions of the members fetching here.
    pub shares: crate::share::ShardShares,
    /// The share-state coordinator of the `__share_group_state` partitions it leads.
    pub share_states: share_state_log::ShareStates,
    /// The way to ask other shards to write markers; set once at start-up.
    pub mailbox: std::cell::OnceCell<Rc<mailbox::Mailbox<txns::ShardRequest, txns::ShardAnswer>>>,
}

/// A shard's share of `queued.max.request.bytes` (None when unbounded).
fn shard_request_budget(config: &BrokerConfig) -> Option<u64> {
    let total = u64::try_from(config.queued_max_request_bytes).ok()?;
    Some((total / config.cores.max(1) as u64).max(1))
}

impl Shard {
    /// A shard with no partition open yet; `shutdown` is the node-wide flag the main thread sets to
    /// stop every shard.
    pub fn new(
        core: usize,
        config: Arc<BrokerConfig>,
        cluster: Arc<Cluster>,
        shutdown: Arc<AtomicBool>,
    ) -> Self {
        Self {
            core,
            groups: groups::Groups::new(config.group.clone()),
            txns: txns::Txns::new(config.transaction_max_timeout_ms),
            mailbox: std::cell::OnceCell::new(),
            replication: crate::shard::replication::Replication::default(),
            request_memory: RequestMemory::new(shard_request_budget(&config)),
            quotas: crate::quota::ShardQuotas::new(config.quota_window),
            shares: crate::share::ShardShares::default(),
            share_states: share_state_log::ShareStates::default(),
            config,
            cluster,
            partitions: RefCell::new(open_partitions::OpenPartitions::default()),
            opening: RefCell::new(HashSet::new()),
            offline: RefCell::new(HashSet::new()),
            shutdown_event: Event::default(),
            shutdown,
            in_flight: Cell::new(0),
            reconciled_version: Cell::new(0),
            topics: RefCell::new((0, Rc::new(TopicIndex::default()))),
            acls: RefCell::new((0, Rc::from(Vec::new()))),
            group_configs: RefCell::new((0, Rc::new(GroupConfigs::new()))),
        }
    }

    /// Topic `name` from this shard's copy of the metadata (see [`Shard::topics`]'s field doc),
    /// refreshed first if the node's metadata changed since it was taken.
    pub fn topic(&self, name: &str) -> Option<Arc<TopicMeta>> {
        self.local_topics().by_name.get(name).cloned()
    }

    /// The topic with id `id` from this shard's copy of the metadata.
    pub fn topic_by_id(&self, id: uuid::Uuid) -> Option<Arc<TopicMeta>> {
        self.local_topics().by_id.get(&id).cloned()
    }

    /// This shard's copy of every topic, by name and by id (see [`Shard::topic`]).
    pub fn topics(&self) -> Rc<TopicIndex> {
        self.local_topics()
    }

    /// This shard's copy of every ACL binding, refreshed first if the metadata changed.
    pub fn acls(&self) -> Rc<[crate::acl::AclBinding]> {
        let version = self.cluster.version();
        if self.acls.borrow().0 != version {
            let copy: Rc<[crate::acl::AclBinding]> =
                Rc::from(self.cluster.security().acls.as_slice());
            *self.acls.borrow_mut() = (version, copy);
        }
        Rc::clone(&self.acls.borrow().1)
    }

    /// The share-group settings of `group`: the broker's, with the group's own configs
    /// (IncrementalAlterConfigs on a GROUP resource) over them, from this shard's copy.
    pub fn share_config(
        &self,
        group: &str,
    ) -> crate::coordinator::group::share::config::ShareGroupConfig {
        let version = self.cluster.version();
        if self.group_configs.borrow().0 != version {
            let copy = Rc::new(self.cluster.all_group_configs());
            *self.group_configs.borrow_mut() = (version, copy);
        }
        let configs = Rc::clone(&self.group_configs.borrow().1);
        self.config.group.share.for_group(configs.get(group))
    }

    fn local_topics(&self) -> LocalTopics {
        let version = self.cluster.version();
        if self.topics.borrow().0 != version {
            let copy = TopicIndex::of(self.cluster.topics());
            *self.topics.borrow_mut() = (version, Rc::new(copy));
        }
        Rc::clone(&self.topics.borrow().1)
    }

    /// The Kafka broker id this shard answers as: `node_id * 1000 + core`.
    pub fn broker_id(&self) -> i32 {
        self.config.broker_id(self.core)
    }

    /// Whether the main thread has set the node-wide shutdown flag (SIGTERM/SIGINT, or a shard
    /// died).
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.config
            .data_dir
            .join(partition_dir_name(topic, partition))
    }

    /// The partition if this shard leads it (owns it, on a single node), opening its log on
    /// first use. In cluster mode the log's leader epoch is brought up to the metadata's here,
    /// so no batch is ever stamped with an epoch older than the one clients were told.
    pub async fn partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Rc<Partition>, PartitionError> {
        let (meta, opened) = self.local_replica(topic, partition, true).await?;
        if let Some(l) = meta.leadership.get(partition as usize) {
            crate::shard::replication::become_leader(self, &meta, partition, l, &opened);
        }
        Ok(opened)
    }

    /// The partition's local replica whether this shard leads it or follows the leader
    /// (cluster mode), opening its log on first use. For the replica fetcher and the
    /// leader's own bookkeeping, never for client produce or consume.
    pub async fn replica(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Rc<Partition>, PartitionError> {
        Ok(self.local_replica(topic, partition, false).await?.1)
    }

    async fn local_replica(
        &self,
        topic: &str,
        partition: i32,
        must_lead: bool,
    ) -> Result<(Arc<TopicMeta>, Rc<Partition>), PartitionError> {
        loop {
            let meta = self
                .topic(topic)
                .ok_or(PartitionError::UnknownTopicOrPartition)?;
            let index =
                usize::try_from(partition).map_err(|_| PartitionError::UnknownTopicOrPartition)?;
            let leader = *meta
                .partitions
                .get(index)
                .ok_or(PartitionError::UnknownTopicOrPartition)?;
            let here = match must_lead {
                true => leader == self.core,
                false => meta.replica_core(index) == Some(self.core),
            };
            if !here {
                return Err(PartitionError::NotLeader);
            }
            if let Some((id, p)) = self.partitions.borrow().get(topic, partition)
                && *id == meta.id
            {
                return Ok((meta, p.clone()));
            }
            // Only opening a partition allocates its key.
            let key = (topic.to_string(), partition);
            if self.opening.borrow_mut().insert(key.clone()) {
                let opened = self.open_partition(&meta, partition).await;
                self.opening.borrow_mut().remove(&key);
                self.note_open_outcome(&key, &opened);
                return opened.map(|p| (meta, p));
            }
            // Another request is opening it; wait for that to finish and look again.
            glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    async fn open_partition(
        &self,
        meta: &TopicMeta,
        partition: i32,
    ) -> Result<Rc<Partition>, PartitionError> {
        let stale = self.partitions.borrow_mut().remove(&meta.name, partition);
        if let Some((old_id, old)) = stale {
            self.drop_partition(old, old_id).await;
        }
        let dir = self.partition_dir(&meta.name, partition);
        ensure_dir_belongs_to(&dir, meta.id)?;
        let config = self
            .topic_defaults()
            .resolve(&meta.configs)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let (mut log, report) = PartitionLog::open(dir, &meta.name, partition, config)?;
        if meta.is_replicated(partition as usize) {
            // A replicated partition's high watermark comes from the ISR (as leader) or the
            // leader's fetch responses (as follower); until then it is what the last run
            // checkpointed (never above this log's end), or the log start.
            log.set_hw_follows_leo(false);
            let start = log.watermarks().log_start_offset;
            log.reset_high_watermark(log.checkpointed_high_watermark().unwrap_or(start));
        }
        if report.truncated_bytes > 0 {
            tracing::warn!(topic = %meta.name, partition, truncated_bytes = report.truncated_bytes, "recovery truncated a torn or corrupt tail");
        }
        let io = SegmentIo::for_partition(
            self.config.log_io,
            self.config.writeback_bytes,
            self.config.direct_cache_bytes,
        );
        let opened = Partition::activate(log, io).await?;
        self.partitions
            .borrow_mut()
            .insert(&meta.name, partition, (meta.id, opened.clone()));
        Ok(opened)
    }

    /// Closes a partition's files and deletes its directory (topic deleted or recreated).
    /// The directory is deleted only if it still belongs to the deleted incarnation (`id`):
    /// a topic re-created under the same name may already own `<topic>-<p>` again. It is first
    /// renamed aside (atomic), then removed on the blocking pool.
    async fn drop_partition(&self, partition: Rc<Partition>, id: uuid::Uuid) {
        if let Err(e) = partition.close().await {
            tracing::warn!(error = %e, "closing a deleted partition failed");
        }
        let dir = partition.with_log(|log| log.dir().to_path_buf());
        // No await between this check and the rename: nothing on this shard can re-create
        // the directory in between, and no other shard touches it.
        if !dir_belongs_to(&dir, id) {
            return;
        }
        let doomed = dir.with_file_name(format!(
            "{}.{}-delete",
            dir.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            id.simple()
        ));
        if let Err(e) = std::fs::rename(&dir, &doomed) {
            tracing::warn!(dir = %dir.display(), error = %e, "removing a deleted partition failed");
            return;
        }
        glommio::executor()
            .spawn_blocking(move || {
                if let Err(e) = std::fs::remove_dir_all(&doomed) {
                    tracing::warn!(dir = %doomed.display(), error = %e, "removing a deleted partition failed");
                }
            })
            .await;
    }

    /// Keeps the offline set and says loudly, once per failure, that a partition is offline
    /// (every request retries the open; it is logged again only after it came back).
    fn note_open_outcome(
        &self,
        key: &PartitionKey,
        opened: &Result<Rc<Partition>, PartitionError>,
    ) {
        match opened {
            Ok(_) => {
                if self.offline.borrow_mut().remove(key) {
                    tracing::info!(topic = %key.0, partition = key.1, "partition opened; it is online again");
                }
            }
            Err(PartitionError::Storage(e)) => {
                if self.offline.borrow_mut().insert(key.clone()) {
                    tracing::error!(topic = %key.0, partition = key.1, error = %e, "partition failed to open; it is OFFLINE (clients get KAFKA_STORAGE_ERROR; each request retries the open)");
                }
            }
            Err(_) => {}
        }
    }

    /// Opens every partition placed on this shard (start-up recovery happens here) and
    /// returns those that failed, with their errors.
    pub async fn open_owned_partitions(&self) -> Vec<(String, i32, PartitionError)> {
        let mut failed = Vec::new();
        for topic in self.cluster.topics() {
            for p in 0..topic.partitions.len() {
                if topic.replica_core(p) == Some(self.core)
                    && let Err(e) = self.replica(&topic.name, p as i32).await
                {
                    failed.push((topic.name.clone(), p as i32, e));
                }
            }
        }
        failed
    }

    /// Partitions of this shard that are offline now.
    pub fn offline_count(&self) -> usize {
        self.offline.borrow().len()
    }

    /// Topic defaults as they stand now: the config file's, with the dynamic broker configs
    /// (AlterConfigs on a broker) on top.
    pub fn topic_defaults(&self) -> crate::config::TopicDefaults {
        self.config
            .topic_defaults
            .with_dynamic(&self.cluster.broker_configs())
    }

    /// Applies control-plane changes to this shard's partitions: drops partitions of deleted
    /// topics and replicas reassigned away from this shard, and pushes new topic configs
    /// (their own or new defaults) into open logs.
    pub async fn reconcile(&self) {
        let version = self.cluster.version();
        if version == self.reconciled_version.get() {
            return;
        }
        self.reconciled_version.set(version);
        // An offline partition of a deleted topic is not offline any more: it is gone.
        self.offline.borrow_mut().retain(|(topic, p)| {
            self.cluster
                .topic(topic)
                .is_some_and(|m| (*p as usize) < m.partitions.len())
        });
        let defaults = self.topic_defaults();
        let open = self.partitions.borrow().all();
        for (topic, index, id, partition) in open {
            match self.cluster.topic(&topic) {
                Some(meta) if meta.id == id && self.still_holds(&meta, index) => {
                    if let Ok(cfg) = defaults.resolve(&meta.configs) {
                        partition.with_log_mut(|log| log.set_config(cfg));
                    }
                }
                _ => {
                    // A request may have re-opened a newer incarnation meanwhile: remove
                    // only the entry that is still this stale one.
                    {
                        let mut map = self.partitions.borrow_mut();
                        if map
                            .get(&topic, index)
                            .is_some_and(|(current, _)| *current == id)
                        {
                            map.remove(&topic, index);
                        }
                    }
                    self.drop_partition(partition, id).await;
                    tracing::info!(topic = %topic, partition = index, "deleted or reassigned-away partition removed from disk");
                }
            }
        }
    }

    /// Whether this shard still holds a replica of partition `p` of `meta`: always on a
    /// single node; in a cluster, until a reassignment moves the replica away.
    fn still_holds(&self, meta: &crate::metadata::TopicMeta, p: i32) -> bool {
        !self.cluster.is_clustered()
            || usize::try_from(p).is_ok_and(|p| meta.replica_core(p) == Some(self.core))
    }

    /// Deletes segments past retention on every partition of this shard. The unlinks run on
    /// glommio's blocking pool so a large file's deletion never stalls produce or fetch.
    pub async fn apply_retention(&self, now_ms: i64) {
        let all = self.open_partitions();
        for p in all {
            retire_expired_segments(&p, now_ms).await;
        }
    }

    /// Forgets idempotent producers idle for `producer.id.expiration.ms` in every open
    /// partition (those with a transaction open stay).
    pub fn expire_producers(&self, now_ms: i64) {
        let expiration_ms = self.config.producer_id_expiration_ms;
        for p in self.open_partitions() {
            p.with_log_mut(|log| {
                let expired = log.expire_producers(now_ms, expiration_ms);
                if expired > 0 {
                    tracing::info!(topic = %log.topic, partition = log.partition, producers = expired, "idle producer ids expired");
                }
            });
        }
    }

    /// Compacts the partitions that need it, one at a time, on the blocking pool.
    pub async fn run_cleaner(&self, now_ms: i64) {
        let all = self.open_partitions();
        for p in all {
            let Some(job) = p.with_log_mut(|log| log.plan_clean(now_ms)) else {
                continue;
            };
            let work = job.clone();
            let result = glommio::executor()
                .spawn_blocking(move || crate::storage::cleaner::run_clean(&work))
                .await;
            p.with_log_mut(|log| {
                match result {
                    Ok(outcome) => {
                        if let Err(e) = log.finish_clean(&job, Some(&outcome)) {
                            tracing::error!(topic = %log.topic, partition = log.partition, error = %e, "cannot swap in cleaned segments");
                        } else if !outcome.rewritten.is_empty() {
                            tracing::info!(
                                topic = %log.topic,
                                partition = log.partition,
                                segments = outcome.rewritten.len(),
                                records_removed = outcome.records_removed,
                                bytes_before = outcome.bytes_before,
                                bytes_after = outcome.bytes_after,
                                "log compacted"
                            );
                        }
                    }
                    Err(e) => {
                        let _ = log.finish_clean(&job, None);
                        tracing::error!(topic = %log.topic, partition = log.partition, error = %e, "compaction failed; the log is unchanged");
                    }
                }
            });
        }
    }

    /// Publishes this shard's gauges for the metrics exporter (once a second, from
    /// housekeeping): partition sizes and offsets, committed offsets of the groups it
    /// coordinates, and its io_uring file I/O since the last call.
    pub fn publish_metrics(&self) {
        self.publish_partition_metrics();
        let committed = self.groups.read(|c| {
            c.groups()
                .flat_map(|g| {
                    g.offsets().iter().map(|(topic, partition, o)| {
                        crate::metrics::CommittedOffset {
                            group: g.group_id().to_string(),
                            topic: topic.to_string(),
                            partition,
                            offset: o.offset,
                        }
                    })
                })
                .collect()
        });
        // glommio hands out its ring counters and resets them: add, do not overwrite.
        let io = glommio::executor().io_stats().all_rings();
        let memory_free = self
            .request_memory
            .available()
            .map_or(-1, |b| i64::try_from(b).unwrap_or(i64::MAX));
        let files = crate::storage::file_cache::stats();
        let offline = self.offline_count() as i64;
        crate::metrics::with_current(|m| {
            m.request_memory_free
                .store(memory_free, std::sync::atomic::Ordering::Relaxed);
            m.publish_storage_health(offline, files);
            m.publish_committed(committed);
            m.add_ring_io(&io);
        });
    }

    /// Publishes each partition's size and offsets for the metrics exporter.
    fn publish_partition_metrics(&self) {
        let gauges = self
            .partitions
            .borrow()
            .all()
            .into_iter()
            .map(|(topic, partition, _, p)| {
                p.with_log(|log| {
                    let marks = log.watermarks();
                    crate::metrics::PartitionGauge {
                        topic,
                        partition,
                        size_bytes: log.size_bytes(),
                        segments: log.segment_count(),
                        high_watermark: marks.high_watermark,
                        log_start_offset: marks.log_start_offset,
                    }
                })
            })
            .collect();
        crate::metrics::with_current(|m| m.publish_partitions(gauges));
    }

    /// Writes the high watermark checkpoint of every replicated partition whose watermark
    /// moved, and the leader epoch checkpoint of every partition whose epochs changed
    /// (`replica.high.watermark.checkpoint.interval.ms`, and at shutdown). The files are
    /// written on glommio's blocking pool, so the shard never waits on the file system.
    pub async fn checkpoint_high_watermarks(&self) {
        let jobs: Vec<_> = self
            .open_partitions()
            .into_iter()
            .filter_map(|p| p.with_log(|log| log.checkpoint_job()).map(|job| (p, job)))
            .collect();
        if jobs.is_empty() {
            return;
        }
        let work: Vec<_> = jobs.iter().map(|(_, job)| job.clone()).collect();
        let written: Vec<bool> = glommio::executor()
            .spawn_blocking(move || {
                work.iter()
                    .map(|job| {
                        job.write()
                            .map_err(|e| tracing::warn!(error = %e, "cannot write a checkpoint"))
                            .is_ok()
                    })
                    .collect()
            })
            .await;
        for ((p, job), ok) in jobs.into_iter().zip(written) {
            if ok {
                p.with_log_mut(|log| log.checkpointed(job));
            }
        }
    }

    /// Flushes partitions whose unflushed records are older than their `flush.ms`.
    pub async fn flush_overdue(&self, now_ms: i64) {
        let all = self.open_partitions();
        for p in all.into_iter().filter(|p| p.flush_overdue(now_ms)) {
            let through = p.watermarks().log_end_offset;
            if let Err(e) = p.flush_through(through).await {
                tracing::error!(error = %e, "scheduled flush failed");
            }
        }
    }

    /// Flushes and closes every partition (clean shutdown).
    pub async fn close_all(&self) {
        self.checkpoint_high_watermarks().await;
        let all = self.open_partitions();
        for p in all {
            if let Err(e) = p.close().await {
                tracing::error!(error = %e, "flush at shutdown failed");
            }
        }
    }

    /// Every partition open on this shard (cloned handles, so no borrow is held across an
    /// await by the caller).
    fn open_partitions(&self) -> Vec<Rc<Partition>> {
        self.partitions.borrow().handles().cloned().collect()
    }

    /// Partitions open on this shard now; those placed here but not opened yet are not counted.
    pub fn partition_count(&self) -> usize {
        self.partitions.borrow().len()
    }
}

/// Removes one partition's expired segments from its log and deletes their files on
/// glommio's blocking pool.
pub async fn retire_expired_segments(p: &Partition, now_ms: i64) {
    let expired = p.with_log_mut(|log| log.collect_expired_segments(now_ms));
    if expired.is_empty() {
        return;
    }
    let (topic, partition) = p.with_log(|log| (log.topic.clone(), log.partition));
    let segments = expired
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .count();
    glommio::executor()
        .spawn_blocking(move || {
            for path in expired {
                if let Err(e) = std::fs::remove_file(&path)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!(path = %path.display(), error = %e, "cannot delete segment file");
                }
            }
        })
        .await;
    tracing::info!(topic = %topic, partition, segments, "retention deleted segments");
}

/// True when `dir/partition.metadata` names topic `id`.
fn dir_belongs_to(dir: &std::path::Path, id: uuid::Uuid) -> bool {
    std::fs::read_to_string(dir.join("partition.metadata"))
        .is_ok_and(|text| text == partition_metadata(id))
}

fn partition_metadata(id: uuid::Uuid) -> String {
    format!(
        "version: 0\ntopic_id: {}\n",
        crate::metadata::cluster::kafka_base64_uuid(&id)
    )
}

/// Kafka's `partition.metadata` file ties a directory to a topic id, so a directory left by
/// a deleted topic is never served as the data of a new topic with the same name.
fn ensure_dir_belongs_to(dir: &std::path::Path, id: uuid::Uuid) -> std::io::Result<()> {
    let marker = dir.join("partition.metadata");
    let expected = partition_metadata(id);
    match std::fs::read_to_string(&marker) {
        Ok(found) if found == expected => return Ok(()),
        Ok(_) => {
            tracing::warn!(dir = %dir.display(), "directory belongs to an older topic with this name; removing it");
            std::fs::remove_dir_all(dir)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(&marker, expected)
}

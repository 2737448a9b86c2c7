//! The node's cluster metadata: topics, their ids, partition-to-shard placement and topic
//! configs. One copy per node behind a lock, read by every shard and written only by
//! control-plane requests (create/delete topics, partitions, configs); never touched on the
//! produce or fetch path once a shard has opened its partitions. Persisted as JSON in the
//! data directory with an atomic rename, so a restart keeps placement and topic ids.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

const METADATA_FILE: &str = "sluice-metadata.json";

/// Why a cluster metadata change, or loading it, failed.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// The topic to create already exists (TOPIC_ALREADY_EXISTS).
    #[error("topic '{0}' already exists")]
    TopicExists(String),
    /// The named topic does not exist (UNKNOWN_TOPIC_OR_PARTITION).
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    /// The name breaks Kafka's topic name rules (INVALID_TOPIC_EXCEPTION).
    #[error("invalid topic name '{name}': {reason}")]
    InvalidTopicName {
        /// The refused name.
        name: String,
        /// Which rule it breaks, for the error message.
        reason: &'static str,
    },
    /// A partition count below 1, or not above the current one when adding partitions
    /// (INVALID_PARTITIONS); holds the message.
    #[error("{0}")]
    InvalidPartitions(String),
    /// Writing the metadata file failed, or reading it at start-up (other than not found).
    #[error("cannot persist cluster metadata: {0}")]
    Io(#[from] std::io::Error),
    /// The metadata file does not parse as the expected JSON (or the state failed to serialise).
    #[error("cluster metadata file is corrupt: {0}")]
    Corrupt(String),
    #[error(
        "this node serves at most {max} partitions and has {existing} (with {reserved} kept for internal topics); {adding} more would exceed that: {hint}"
    )]
    /// The change would take the node past its [`PartitionLimit`] (answered POLICY_VIOLATION).
    TooManyPartitions {
        /// The node's limit, [`PartitionLimit::max`].
        max: usize,
        /// Partitions the node already has.
        existing: usize,
        /// Partitions held back for internal topics not created yet.
        reserved: usize,
        /// Partitions the refused change would add.
        adding: usize,
        /// What to raise to serve more, from [`PartitionLimit::hint`].
        hint: String,
    },
    /// A cluster-mode change was asked of a single node.
    #[error("this node is not part of a multi-node cluster")]
    NotClustered,
    /// The controller quorum refused the command, with the Kafka error code it answered.
    #[error("{message}")]
    Refused {
        /// Kafka error code (`ResponseError::code()`).
        code: i16,
        /// Why, for the client.
        message: String,
    },
    /// The command did not commit (no controller leader in time, or the controller stopped).
    #[error("the controller quorum did not commit the change: {0}")]
    Quorum(String),
    /// An internal topic is being created through the quorum; ask again shortly.
    #[error("topic '{0}' is being created")]
    Pending(String),
}

impl MetadataError {
    /// The Kafka error a client gets for this failure.
    #[must_use]
    pub fn kafka_error(&self) -> kafka_protocol::ResponseError {
        use kafka_protocol::ResponseError as E;
        match self {
            Self::TopicExists(_) => E::TopicAlreadyExists,
            Self::UnknownTopic(_) => E::UnknownTopicOrPartition,
            Self::InvalidTopicName { .. } => E::InvalidTopicException,
            Self::InvalidPartitions(_) => E::InvalidPartitions,
            Self::TooManyPartitions { .. } => E::PolicyViolation,
            Self::Refused { code, .. } => E::try_from_code(*code).unwrap_or(E::UnknownServerError),
            Self::Quorum(_) => E::RequestTimedOut,
            Self::Pending(_) => E::CoordinatorNotAvailable,
            Self::NotClustered | Self::Io(_) | Self::Corrupt(_) => E::UnknownServerError,
        }
    }
}

/// The most partitions the node accepts (derived from its descriptor budget) and the
/// internal topics whose partitions are kept free until they are created.
#[derive(Debug, Clone)]
pub struct PartitionLimit {
    /// Most partitions the node serves over all topics, internal ones included.
    pub max: usize,
    /// Internal topic name → partitions it will have when created.
    pub reserved: BTreeMap<String, usize>,
    /// What to raise to serve more, for the refusal message.
    pub hint: String,
}

/// One topic as the node knows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TopicMeta {
    /// Topic name, valid by [`validate_topic_name`].
    pub name: String,
    /// Topic id (KIP-516): a random v4 UUID made at creation, kept across restarts.
    pub id: Uuid,
    /// Owning shard (core index) of each partition, indexed by partition number.
    pub partitions: Vec<usize>,
    /// Topic-level config overrides (Kafka key names).
    pub configs: BTreeMap<String, String>,
    /// True for names starting with `__` (`__consumer_offsets`, `__transaction_state`).
    pub internal: bool,
    /// Replicas and leadership of each partition as the controller quorum holds them (cluster
    /// mode); empty on a single node, where each partition's one replica is its owning shard.
    /// Not persisted: in cluster mode the quorum's log is the record.
    #[serde(skip)]
    pub leadership: Vec<Leadership>,
}

/// [`TopicMeta::partitions`] entry of a partition that no shard of this node leads.
pub const NOT_ON_THIS_NODE: usize = usize::MAX;

/// One partition's replicas and leader, as Metadata reports them (Kafka broker ids).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leadership {
    /// Leader broker id (`node_id * 1000 + core`), or -1 when none can lead.
    pub leader: i32,
    /// Kafka leader epoch.
    pub leader_epoch: i32,
    /// Replica broker ids, preferred leader first.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
    /// KIP-497 partition epoch: an ISR change proposed by the leader names it, so a change
    /// based on a stale view is refused.
    pub partition_epoch: i32,
    /// The core of this node that holds a replica of the partition (leader or follower), if
    /// any.
    pub local_core: Option<usize>,
}

impl TopicMeta {
    /// The core of this node holding a replica of partition `p` (leader or follower): in
    /// cluster mode from the quorum's replicas, on a single node the owning shard.
    #[must_use]
    pub fn replica_core(&self, p: usize) -> Option<usize> {
        match self.leadership.get(p) {
            Some(l) => l.local_core,
            None if self.leadership.is_empty() => self.partitions.get(p).copied(),
            None => None,
        }
    }

    /// Whether partition `p` is replicated by followers (cluster mode with more than one
    /// replica): its high watermark then follows the ISR instead of the local log end.
    #[must_use]
    pub fn is_replicated(&self, p: usize) -> bool {
        self.leadership.get(p).is_some_and(|l| l.replicas.len() > 1)
    }

    /// Partition `p`'s replicas and leader: from the quorum in cluster mode, else the owning
    /// shard of this node (`broker_id` maps a core to its broker id) as the only replica.
    /// `None` when the topic has no partition `p`.
    pub fn leadership_at(&self, p: usize, broker_id: impl Fn(usize) -> i32) -> Option<Leadership> {
        if let Some(l) = self.leadership.get(p) {
            return Some(l.clone());
        }
        let owner = broker_id(*self.partitions.get(p)?);
        Some(Leadership {
            leader: owner,
            leader_epoch: 0,
            replicas: vec![owner],
            isr: vec![owner],
            partition_epoch: 0,
            local_core: self.partitions.get(p).copied(),
        })
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(super) struct PersistedState {
    cluster_id: String,
    pub(super) topics: BTreeMap<String, Arc<TopicMeta>>,
    /// Producer ids below this may have been handed out; a restart continues above it.
    #[serde(default)]
    producer_id_block_end: i64,
    /// Dynamic broker configs (AlterConfigs on a broker resource), Kafka key names. They
    /// apply to the whole node: its shards are one process sharing one configuration.
    #[serde(default)]
    pub(super) broker_configs: BTreeMap<String, String>,
    /// Dynamic group configs (IncrementalAlterConfigs on a group resource), by group id.
    #[serde(default)]
    pub(super) group_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// ACL bindings and SCRAM credentials made with the admin APIs.
    #[serde(default)]
    pub(super) security: super::security::SecurityState,
}

/// Producer ids are reserved in blocks so that allocation persists only once per block.
const PRODUCER_ID_BLOCK: i64 = 1000;

/// The node's cluster metadata (see the module doc): one per node, shared by every shard;
/// each change is persisted before it becomes visible.
pub struct Cluster {
    /// Cluster id for Metadata responses: 22 characters of URL-safe base64 of a random UUID,
    /// made on first start and persisted.
    pub cluster_id: String,
    shard_count: usize,
    path: PathBuf,
    state: RwLock<PersistedState>,
    /// Bumped on every change so shards can skip reconciling when nothing moved.
    pub(super) version: AtomicU64,
    /// Next producer id to hand out; starts at the persisted block end, so ids never repeat
    /// across restarts.
    next_producer_id: std::sync::Mutex<i64>,
    /// Set once at start-up; without it (tools, unit tests) partitions are not limited.
    partition_limit: std::sync::OnceLock<PartitionLimit>,
    /// Cluster mode: the controller quorum this node's metadata mirrors; `None` on a single
    /// node, whose metadata is the JSON file.
    pub(super) quorum: Option<super::quorum_state::QuorumState>,
}

/// Kafka's topic name rules: 1..=249 chars of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), MetadataError> {
    let invalid = |reason| {
        Err(MetadataError::InvalidTopicName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return invalid("must not be empty");
    }
    if name == "." || name == ".." {
        return invalid("must not be '.' or '..'");
    }
    if name.len() > 249 {
        return invalid("longer than 249 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return invalid("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

impl Cluster {
    /// Loads the node's metadata, or starts an empty cluster with a fresh id.
    pub fn load_or_init(data_dir: &Path, shard_count: usize) -> Result<Self, MetadataError> {
        let path = data_dir.join(METADATA_FILE);
        let state = match std::fs::read(&path) {
            Ok(raw) => serde_json::from_slice::<PersistedState>(&raw)
                .map_err(|e| MetadataError::Corrupt(e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => PersistedState {
                cluster_id: new_cluster_id(),
                // A lost metadata file must not turn existing data into orphans (which
                // start-up deletes): topics are rebuilt from their partition directories.
                topics: adopt_partition_dirs(data_dir, shard_count),
                // Producer ids handed out before are unknown: start far above any plausible
                // earlier allocation rather than risk reusing one.
                producer_id_block_end: 1 << 40,
                broker_configs: BTreeMap::new(),
                group_configs: BTreeMap::new(),
                security: super::security::SecurityState::default(),
            },
            Err(e) => return Err(e.into()),
        };
        let first_producer_id = state.producer_id_block_end;
        let cluster = Self {
            next_producer_id: std::sync::Mutex::new(first_producer_id),
            cluster_id: state.cluster_id.clone(),
            shard_count,
            path,
            state: RwLock::new(state),
            version: AtomicU64::new(1),
            partition_limit: std::sync::OnceLock::new(),
            quorum: None,
        };
        cluster.rebalance_orphans()?;
        cluster.persist_if_changed(&cluster.read())?;
        Ok(cluster)
    }

    /// Cluster mode: an empty mirror of the quorum reached through `controller`, filled by
    /// [`Cluster::install_image`]. Nothing is persisted here: the quorum's log is the record.
    #[must_use]
    pub fn for_quorum(
        data_dir: &Path,
        shard_count: usize,
        node_id: i32,
        cluster_id: String,
        controller: super::quorum::ControllerHandle<super::image::ClusterImage>,
    ) -> Self {
        Self {
            cluster_id,
            shard_count,
            path: data_dir.join(METADATA_FILE),
            state: RwLock::new(PersistedState::default()),
            version: AtomicU64::new(1),
            next_producer_id: std::sync::Mutex::new(0),
            partition_limit: std::sync::OnceLock::new(),
            quorum: Some(super::quorum_state::QuorumState::new(node_id, controller)),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, PersistedState> {
        // A poisoned lock means a writer panicked mid-update; the state is still a valid
        // value (updates are built aside and swapped in), so keep serving it.
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }
    pub(super) fn write(&self) -> std::sync::RwLockWriteGuard<'_, PersistedState> {
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    /// After a restart with fewer cores, partitions of vanished shards move to live ones
    /// (their data directories are shared, so the new owner simply opens them).
    fn rebalance_orphans(&self) -> Result<(), MetadataError> {
        let mut state = self.write();
        let shards = self.shard_count;
        for topic in state.topics.values_mut() {
            if topic.partitions.iter().any(|s| *s >= shards) {
                let t = Arc::make_mut(topic);
                for (p, owner) in t.partitions.iter_mut().enumerate() {
                    if *owner >= shards {
                        *owner = p % shards;
                    }
                }
            }
        }
        Ok(())
    }

    /// Sets the node's partition limit (once, at start-up).
    pub fn set_partition_limit(&self, limit: PartitionLimit) {
        if self.partition_limit.set(limit).is_err() {
            tracing::warn!("the partition limit was already set; keeping the first");
        }
    }

    /// Partitions this node serves (in a cluster, those a shard of this node leads).
    pub fn partition_count(&self) -> usize {
        let state = self.read();
        state
            .topics
            .values()
            .flat_map(|t| t.partitions.iter())
            .filter(|owner| **owner != NOT_ON_THIS_NODE)
            .count()
    }

    fn count_partitions(state: &PersistedState) -> usize {
        state.topics.values().map(|t| t.partitions.len()).sum()
    }

    /// Refuses `adding` partitions (for topic `name`) that would take the node past its
    /// limit. Internal topics not created yet keep their partitions reserved, so user topics
    /// cannot take the room consumer groups and transactions will need.
    fn check_room(
        &self,
        state: &PersistedState,
        name: &str,
        adding: usize,
    ) -> Result<(), MetadataError> {
        let Some(limit) = self.partition_limit.get() else {
            return Ok(());
        };
        let existing = Self::count_partitions(state);
        let reserved: usize = limit
            .reserved
            .iter()
            .filter(|(topic, _)| topic.as_str() != name && !state.topics.contains_key(*topic))
            .map(|(_, n)| *n)
            .sum();
        if existing + reserved + adding > limit.max {
            return Err(MetadataError::TooManyPartitions {
                max: limit.max,
                existing,
                reserved,
                adding,
                hint: limit.hint.clone(),
            });
        }
        Ok(())
    }

    /// Counter bumped by every committed change (1 at load); shards compare it to skip
    /// reconciling when nothing moved.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The topic `name`; `None` when it does not exist.
    pub fn topic(&self, name: &str) -> Option<Arc<TopicMeta>> {
        self.read().topics.get(name).cloned()
    }

    /// The topic with id `id` (a scan over all topics); `None` when there is none.
    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<TopicMeta>> {
        self.read().topics.values().find(|t| t.id == id).cloned()
    }

    /// A snapshot of all topics, ordered by name.
    pub fn topics(&self) -> Vec<Arc<TopicMeta>> {
        self.read().topics.values().cloned().collect()
    }

    /// Partitions per shard, for least-loaded placement.
    fn load_per_shard(state: &PersistedState, shards: usize) -> Vec<usize> {
        let mut load = vec![0usize; shards];
        for t in state.topics.values() {
            for s in &t.partitions {
                load[*s] += 1;
            }
        }
        load
    }

    /// Places `count` new partitions, each on the currently least-loaded shard.
    fn place(load: &mut [usize], count: usize) -> Vec<usize> {
        (0..count)
            .map(|_| {
                let shard = (0..load.len())
                    .min_by_key(|s| (load[*s], *s))
                    .expect("at least one shard");
                load[shard] += 1;
                shard
            })
            .collect()
    }

    /// Creates a topic (or, with `dry_run`, only checks that it could be created).
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        dry_run: bool,
    ) -> Result<Arc<TopicMeta>, MetadataError> {
        self.create_topic_placed(name, partitions, None, configs, dry_run)
    }

    /// Creates a topic; `placement` (one shard per partition) overrides least-loaded
    /// placement, as a manual replica assignment does in Kafka.
    pub fn create_topic_placed(
        &self,
        name: &str,
        partitions: i32,
        placement: Option<Vec<usize>>,
        configs: BTreeMap<String, String>,
        dry_run: bool,
    ) -> Result<Arc<TopicMeta>, MetadataError> {
        validate_topic_name(name)?;
        if partitions < 1 {
            return Err(MetadataError::InvalidPartitions(
                "number of partitions must be larger than 0".into(),
            ));
        }
        let mut state = self.write();
        if state.topics.contains_key(name) {
            return Err(MetadataError::TopicExists(name.to_string()));
        }
        self.check_room(&state, name, partitions as usize)?;
        let mut load = Self::load_per_shard(&state, self.shard_count);
        let topic = Arc::new(TopicMeta {
            name: name.to_string(),
            id: Uuid::new_v4(),
            partitions: placement.unwrap_or_else(|| Self::place(&mut load, partitions as usize)),
            configs,
            internal: name.starts_with("__"),
            leadership: Vec::new(),
        });
        if dry_run {
            return Ok(topic);
        }
        let mut next = state.clone();
        next.topics.insert(name.to_string(), topic.clone());
        self.commit(&mut state, next)?;
        tracing::info!(topic = name, partitions, "topic created");
        Ok(topic)
    }

    /// Removes topic `name` from the metadata (persisted before it returns) and returns its last
    /// metadata. Only the metadata changes here; the partitions' data is not touched.
    pub fn delete_topic(&self, name: &str) -> Result<Arc<TopicMeta>, MetadataError> {
        let mut state = self.write();
        let mut next = state.clone();
        let removed = next
            .topics
            .remove(name)
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
        self.commit(&mut state, next)?;
        tracing::info!(topic = name, "topic deleted");
        Ok(removed)
    }

    /// Grows a topic to `total` partitions.
    pub fn add_partitions(
        &self,
        name: &str,
        total: i32,
        dry_run: bool,
    ) -> Result<Arc<TopicMeta>, MetadataError> {
        self.add_partitions_placed(name, total, None, dry_run)
    }

    /// Grows a topic; `placement` names the shard of each new partition.
    pub fn add_partitions_placed(
        &self,
        name: &str,
        total: i32,
        placement: Option<Vec<usize>>,
        dry_run: bool,
    ) -> Result<Arc<TopicMeta>, MetadataError> {
        let mut state = self.write();
        let current = state
            .topics
            .get(name)
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?
            .clone();
        let have = current.partitions.len() as i32;
        if total <= have {
            return Err(MetadataError::InvalidPartitions(format!(
                "topic currently has {have} partitions, which is higher than or equal to the requested {total}"
            )));
        }
        self.check_room(&state, name, (total - have) as usize)?;
        let mut load = Self::load_per_shard(&state, self.shard_count);
        let mut grown = (*current).clone();
        let added = placement.unwrap_or_else(|| Self::place(&mut load, (total - have) as usize));
        grown.partitions.extend(added);
        let grown = Arc::new(grown);
        if dry_run {
            return Ok(grown);
        }
        let mut next = state.clone();
        next.topics.insert(name.to_string(), grown.clone());
        self.commit(&mut state, next)?;
        tracing::info!(topic = name, partitions = total, "partitions added");
        Ok(grown)
    }

    /// Replaces a topic's config overrides.
    pub fn set_topic_configs(
        &self,
        name: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), MetadataError> {
        let mut state = self.write();
        let current = state
            .topics
            .get(name)
            .ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
        let mut changed = (**current).clone();
        changed.configs = configs;
        let mut next = state.clone();
        next.topics.insert(name.to_string(), Arc::new(changed));
        self.commit(&mut state, next)
    }

    /// The dynamic broker configs (empty until an AlterConfigs on a broker resource).
    pub fn broker_configs(&self) -> BTreeMap<String, String> {
        self.read().broker_configs.clone()
    }

    /// Replaces the dynamic broker configs; shards apply them at their next reconcile.
    pub fn set_broker_configs(
        &self,
        configs: BTreeMap<String, String>,
    ) -> Result<(), MetadataError> {
        let mut state = self.write();
        let mut next = state.clone();
        next.broker_configs = configs;
        self.commit(&mut state, next)
    }

    /// The dynamic configs of `group` (empty when it has none).
    pub fn group_configs(&self, group: &str) -> BTreeMap<String, String> {
        self.read()
            .group_configs
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    /// Every group's dynamic configs, by group id (a shard's copy).
    pub fn all_group_configs(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.read().group_configs.clone()
    }

    /// Replaces one group's dynamic configs (empty: none).
    pub fn set_group_configs(
        &self,
        group: &str,
        configs: BTreeMap<String, String>,
    ) -> Result<(), MetadataError> {
        let mut state = self.write();
        let mut next = state.clone();
        if configs.is_empty() {
            next.group_configs.remove(group);
        } else {
            next.group_configs.insert(group.to_owned(), configs);
        }
        self.commit(&mut state, next)
    }

    /// A producer id never handed out before, on this node, across restarts.
    pub fn allocate_producer_id(&self) -> Result<i64, MetadataError> {
        if self.quorum.is_some() {
            return Err(MetadataError::NotClustered);
        }
        let mut next = self
            .next_producer_id
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let id = *next;
        let mut state = self.write();
        if id >= state.producer_id_block_end {
            let mut grown = state.clone();
            grown.producer_id_block_end = id + PRODUCER_ID_BLOCK;
            self.persist(&grown)?;
            state.producer_id_block_end = grown.producer_id_block_end;
        }
        *next = id + 1;
        Ok(id)
    }

    /// The ACL bindings and SCRAM credentials.
    pub fn security(&self) -> super::security::SecurityState {
        self.read().security.clone()
    }

    /// Single node: applies `change` to the security state and persists it.
    pub(super) fn change_security_local<R>(
        &self,
        change: impl FnOnce(&mut super::security::SecurityState) -> R,
    ) -> Result<R, MetadataError> {
        let mut state = self.write();
        let mut next = state.clone();
        let answer = change(&mut next.security);
        self.commit(&mut state, next)?;
        Ok(answer)
    }

    /// Persists `next` and only then makes it visible: a failed write changes nothing.
    fn commit(
        &self,
        state: &mut PersistedState,
        next: PersistedState,
    ) -> Result<(), MetadataError> {
        if self.quorum.is_some() {
            // Cluster mode changes go through the quorum (`propose_*`); a local write would
            // diverge from the other nodes.
            return Err(MetadataError::NotClustered);
        }
        self.persist(&next)?;
        *state = next;
        self.version.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Start-up's write: only when the file would change (first start, adopted directories,
    /// moved partitions, an older format), so a node whose data disk is full still starts.
    fn persist_if_changed(&self, state: &PersistedState) -> Result<(), MetadataError> {
        let bytes =
            serde_json::to_vec_pretty(state).map_err(|e| MetadataError::Corrupt(e.to_string()))?;
        if std::fs::read(&self.path).is_ok_and(|on_disk| on_disk == bytes) {
            return Ok(());
        }
        self.write_file(&bytes)
    }

    fn persist(&self, state: &PersistedState) -> Result<(), MetadataError> {
        let bytes =
            serde_json::to_vec_pretty(state).map_err(|e| MetadataError::Corrupt(e.to_string()))?;
        self.write_file(&bytes)
    }

    fn write_file(&self, bytes: &[u8]) -> Result<(), MetadataError> {
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_data()?;
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// Rebuilds topics from `<topic>-<partition>/partition.metadata` files: ids from the files,
/// partition counts from the directories present, default configs, round-robin placement.
fn adopt_partition_dirs(data_dir: &Path, shard_count: usize) -> BTreeMap<String, Arc<TopicMeta>> {
    let mut found: BTreeMap<String, (Uuid, i32)> = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return BTreeMap::new();
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some((topic, partition)) = name.rsplit_once('-') else {
            continue;
        };
        let (Ok(partition), Ok(text)) = (
            partition.parse::<i32>(),
            std::fs::read_to_string(entry.path().join("partition.metadata")),
        ) else {
            continue;
        };
        let Some(id) = text
            .lines()
            .find_map(|l| l.strip_prefix("topic_id: "))
            .and_then(parse_kafka_base64_uuid)
        else {
            continue;
        };
        let slot = found.entry(topic.to_string()).or_insert((id, 0));
        slot.1 = slot.1.max(partition + 1);
    }
    found
        .into_iter()
        .map(|(name, (id, partitions))| {
            tracing::warn!(topic = %name, partitions, "cluster metadata missing: topic recovered from its partition directories");
            let meta = TopicMeta {
                internal: name.starts_with("__"),
                name: name.clone(),
                id,
                partitions: (0..partitions as usize).map(|p| p % shard_count.max(1)).collect(),
                configs: BTreeMap::new(),
                leadership: Vec::new(),
            };
            (name, Arc::new(meta))
        })
        .collect()
}

/// Inverse of [`kafka_base64_uuid`].
fn parse_kafka_base64_uuid(text: &str) -> Option<Uuid> {
    let bytes = URL_SAFE_NO_PAD.decode(text.trim()).ok()?;
    Uuid::from_slice(&bytes).ok()
}

fn new_cluster_id() -> String {
    kafka_base64_uuid(&Uuid::new_v4())
}

/// A UUID the way Kafka prints topic and cluster ids: 22 characters of URL-safe base64
/// without padding.
pub fn kafka_base64_uuid(id: &Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Past the limit nothing is created (also with dry runs), internal topics keep their
    /// reserved room, and the refusal says what the limit is and what to raise.
    #[test]
    fn partitions_past_the_limit_are_refused_and_internal_topics_keep_their_room() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cluster::load_or_init(dir.path(), 2).unwrap();
        c.set_partition_limit(PartitionLimit {
            max: 10,
            reserved: [("__consumer_offsets".to_string(), 3)].into(),
            hint: "raise nofile".into(),
        });
        c.create_topic("a", 5, BTreeMap::new(), false).unwrap();
        let refused = c.create_topic("b", 3, BTreeMap::new(), true).unwrap_err();
        assert!(matches!(
            refused,
            MetadataError::TooManyPartitions {
                max: 10,
                existing: 5,
                reserved: 3,
                adding: 3,
                ..
            }
        ));
        assert!(
            refused.to_string().contains("at most 10 partitions")
                && refused.to_string().contains("raise nofile")
        );
        assert!(
            c.add_partitions("a", 8, false).is_err(),
            "5 + 3 reserved + 3 > 10"
        );
        assert!(c.topic("b").is_none());
        c.create_topic("__consumer_offsets", 3, BTreeMap::new(), false)
            .expect("the reserved room is the internal topic's");
        c.add_partitions("a", 7, false).unwrap();
        assert!(c.create_topic("c", 1, BTreeMap::new(), false).is_err());
        assert_eq!(c.partition_count(), 10);
    }

    /// Loading unchanged metadata writes nothing (a full disk must not stop a restart).
    #[test]
    fn loading_unchanged_metadata_does_not_rewrite_it() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cluster::load_or_init(dir.path(), 2).unwrap();
        c.create_topic("a", 3, BTreeMap::new(), false).unwrap();
        drop(c);
        let path = dir.path().join(METADATA_FILE);
        let before = std::fs::metadata(&path).unwrap().modified().unwrap();
        let loaded = Cluster::load_or_init(dir.path(), 2);
        assert_eq!(loaded.unwrap().topic("a").unwrap().partitions.len(), 3);
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            before
        );
    }

    #[test]
    fn topics_persist_and_spread_over_shards() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cluster::load_or_init(dir.path(), 2).unwrap();
        assert_eq!(c.cluster_id.len(), 22);
        let t = c.create_topic("a", 3, BTreeMap::new(), false).unwrap();
        assert_eq!(t.partitions, vec![0, 1, 0]);
        let u = c.create_topic("b", 1, BTreeMap::new(), false).unwrap();
        assert_eq!(u.partitions, vec![1]);
        assert!(matches!(
            c.create_topic("a", 1, BTreeMap::new(), false),
            Err(MetadataError::TopicExists(_))
        ));
        let reloaded = Cluster::load_or_init(dir.path(), 2).unwrap();
        assert_eq!(reloaded.topic("a").unwrap().id, t.id);
        assert_eq!(reloaded.cluster_id, c.cluster_id);
        let p0 = reloaded.allocate_producer_id().unwrap();
        let p1 = reloaded.allocate_producer_id().unwrap();
        assert_eq!(p1, p0 + 1);
        let again = Cluster::load_or_init(dir.path(), 2).unwrap();
        assert!(
            again.allocate_producer_id().unwrap() > p1,
            "ids never repeat across restarts"
        );
        let shrunk = Cluster::load_or_init(dir.path(), 1).unwrap();
        assert_eq!(shrunk.topic("a").unwrap().partitions, vec![0, 0, 0]);
    }

    #[test]
    fn kafka_base64_ids_round_trip() {
        for _ in 0..100 {
            let id = Uuid::new_v4();
            assert_eq!(parse_kafka_base64_uuid(&kafka_base64_uuid(&id)), Some(id));
        }
        assert_eq!(parse_kafka_base64_uuid("short"), None);
    }

    #[test]
    fn a_lost_metadata_file_recovers_topics_from_partition_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let id = Uuid::new_v4();
        for p in [0, 2] {
            let part = dir.path().join(format!("orders-{p}"));
            std::fs::create_dir_all(&part).unwrap();
            let text = format!("version: 0\ntopic_id: {}\n", kafka_base64_uuid(&id));
            std::fs::write(part.join("partition.metadata"), text).unwrap();
        }
        let c = Cluster::load_or_init(dir.path(), 2).unwrap();
        let t = c.topic("orders").expect("topic recovered");
        assert_eq!(t.id, id);
        assert_eq!(t.partitions, vec![0, 1, 0]);
        assert!(c.allocate_producer_id().unwrap() >= 1 << 40);
    }

    #[test]
    fn names_and_partition_counts_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cluster::load_or_init(dir.path(), 1).unwrap();
        for bad in ["", ".", "..", "a b", "x/y"] {
            assert!(
                c.create_topic(bad, 1, BTreeMap::new(), false).is_err(),
                "{bad:?}"
            );
        }
        assert!(c.create_topic("ok", 0, BTreeMap::new(), false).is_err());
        c.create_topic("ok", 1, BTreeMap::new(), false).unwrap();
        assert!(c.add_partitions("ok", 1, false).is_err());
        assert_eq!(
            c.add_partitions("ok", 4, false).unwrap().partitions.len(),
            4
        );
        assert!(c.create_topic("dry", 2, BTreeMap::new(), true).is_ok());
        assert!(c.topic("dry").is_none());
    }
}

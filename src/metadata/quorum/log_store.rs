//! The durable Raft log of the metadata quorum: openraft's `RaftLogStorage` and
//! `RaftLogReader` over the segment files ([`super::segments`]), the vote and the purge point
//! (`quorum-state`, fsynced atomic writes) and the committed pointer (`quorum-committed`).
//!
//! Runs on the controller thread's tokio runtime. Unpurged entries are also kept in memory
//! (metadata logs are small and snapshots purge them), so reads never touch the disk; appends
//! `write` inline and leave the fsync to the flusher thread, which calls openraft's
//! `LogFlushed` callback once the entries are durable.

use std::collections::BTreeMap;
use std::fmt::{self, Debug};
use std::fs;
use std::io;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockWriteGuard};

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{
    LogId, LogState, OptionalSend, RaftLogId, RaftLogReader, RaftTypeConfig, StorageError, Vote,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::durable::{Flusher, read_framed, write_atomic};
use super::error::QuorumStoreError;
use super::segments::{Record, Segments};

/// Size at which the active log segment is closed and a new one started, in bytes.
pub const DEFAULT_SEGMENT_BYTES: u64 = 8 << 20;

/// The vote and purge point: rare writes, each fsynced before openraft goes on.
const STATE_FILE: &str = "quorum-state";
/// The committed log id: written often, not fsynced (openraft only uses it to re-apply
/// committed entries at start-up; an older value is safe).
const COMMITTED_FILE: &str = "quorum-committed";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound = "")]
struct PersistedState<NID: openraft::NodeId> {
    vote: Option<Vote<NID>>,
    last_purged: Option<LogId<NID>>,
}

impl<NID: openraft::NodeId> Default for PersistedState<NID> {
    fn default() -> Self {
        Self {
            vote: None,
            last_purged: None,
        }
    }
}

type Cache<C> = Arc<RwLock<BTreeMap<u64, <C as RaftTypeConfig>::Entry>>>;

/// The metadata log of one node: segment files plus an in-memory copy of the unpurged entries.
pub struct MetaLogStore<C: RaftTypeConfig> {
    dir: PathBuf,
    cache: Cache<C>,
    segments: Segments,
    state: PersistedState<C::NodeId>,
    committed: Option<LogId<C::NodeId>>,
    /// Id of the last entry, or the purge point when every entry is purged.
    last_log_id: Option<LogId<C::NodeId>>,
    flusher: Flusher,
}

impl<C: RaftTypeConfig> Debug for MetaLogStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaLogStore")
            .field("dir", &self.dir)
            .field("last_log_id", &self.last_log_id)
            .field("last_purged", &self.state.last_purged)
            .finish_non_exhaustive()
    }
}

/// A reader of the same log for openraft's replication tasks; sees every entry appended.
pub struct MetaLogReader<C: RaftTypeConfig> {
    cache: Cache<C>,
}

impl<C: RaftTypeConfig> Clone for MetaLogReader<C> {
    fn clone(&self) -> Self {
        Self {
            cache: Arc::clone(&self.cache),
        }
    }
}

fn read_range<C, RB>(cache: &Cache<C>, range: RB) -> Result<Vec<C::Entry>, QuorumStoreError>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
    RB: RangeBounds<u64>,
{
    let entries = cache.read().map_err(|_| QuorumStoreError::Poisoned)?;
    Ok(entries.range(range).map(|(_, e)| e.clone()).collect())
}

impl<C> MetaLogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone + Serialize + DeserializeOwned,
{
    /// Opens (creating if needed) the log in `dir`, the node's `__cluster_metadata-0/`, with
    /// [`DEFAULT_SEGMENT_BYTES`] segments.
    ///
    /// # Errors
    /// File system errors, and damage a torn append cannot explain (see [`Segments::open`]).
    pub fn open(dir: &Path) -> Result<Self, QuorumStoreError> {
        Self::open_with(dir, DEFAULT_SEGMENT_BYTES)
    }

    /// [`open`](Self::open) with segments rolled at `segment_bytes` (tests use small ones).
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(dir: &Path, segment_bytes: u64) -> Result<Self, QuorumStoreError> {
        fs::create_dir_all(dir).map_err(QuorumStoreError::io("create dir", dir))?;
        let state: PersistedState<C::NodeId> =
            decode_file(&dir.join(STATE_FILE), "quorum state")?.unwrap_or_default();
        let committed = match decode_file(&dir.join(COMMITTED_FILE), "committed log id") {
            Ok(committed) => committed,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring unreadable committed log id (an optional hint)");
                None
            }
        };
        let (mut segments, records) = Segments::open(dir, segment_bytes)?;
        let purged_index = state.last_purged.as_ref().map(|id| id.index);
        if let Some(index) = purged_index {
            // A crash between saving the purge point and removing the segments leaves them.
            segments.purge_upto(index).run()?;
        }
        let mut entries = BTreeMap::new();
        for record in records {
            if purged_index.is_some_and(|p| record.index <= p) {
                continue;
            }
            let entry: C::Entry = serde_json::from_slice(&record.body).map_err(|source| {
                QuorumStoreError::Decode {
                    path: dir.to_owned(),
                    what: "log entry",
                    source,
                }
            })?;
            // The record's index is where the entry is kept and served from; an entry naming
            // another index (CRC intact: a bug or an edit) would answer reads for the wrong
            // index, so it is refused like an entry that does not decode (found by fuzzing).
            if entry.get_log_id().index != record.index {
                return Err(QuorumStoreError::Decode {
                    path: dir.to_owned(),
                    what: "log entry",
                    source: serde::de::Error::custom(format!(
                        "entry of log id {} stored as record {}",
                        entry.get_log_id(),
                        record.index
                    )),
                });
            }
            entries.insert(record.index, entry);
        }
        if let (Some(p), Some(&first)) = (purged_index, entries.keys().next())
            && first != p + 1
        {
            return Err(QuorumStoreError::Gap {
                expected: p + 1,
                found: first,
            });
        }
        let last_log_id = entries
            .values()
            .next_back()
            .map(|e| e.get_log_id().clone())
            .or_else(|| state.last_purged.clone());
        Ok(Self {
            dir: dir.to_owned(),
            cache: Arc::new(RwLock::new(entries)),
            segments,
            state,
            committed,
            last_log_id,
            flusher: Flusher::start()?,
        })
    }

    /// Writes the vote and purge point durably, on the flusher thread (after earlier log
    /// fsyncs, so vote and log writes become durable in order).
    async fn save_state(&self) -> Result<(), QuorumStoreError> {
        let body = serde_json::to_vec(&self.state).map_err(|source| QuorumStoreError::Encode {
            what: "quorum state",
            source,
        })?;
        let path = self.dir.join(STATE_FILE);
        self.flusher
            .run(move || write_atomic(&path, &body, true))
            .await?
    }

    fn encode(&self, entry: &C::Entry) -> Result<Record, QuorumStoreError> {
        let body = serde_json::to_vec(entry).map_err(|source| QuorumStoreError::Encode {
            what: "log entry",
            source,
        })?;
        Ok(Record {
            index: entry.get_log_id().index,
            body,
        })
    }
}

fn lock_mut<C: RaftTypeConfig>(
    cache: &Cache<C>,
) -> Result<RwLockWriteGuard<'_, BTreeMap<u64, C::Entry>>, QuorumStoreError> {
    cache.write().map_err(|_| QuorumStoreError::Poisoned)
}

/// Reads and JSON-decodes a framed small file; `Ok(None)` when it does not exist.
fn decode_file<T: DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<Option<T>, QuorumStoreError> {
    let Some(body) = read_framed(path)? else {
        return Ok(None);
    };
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|source| QuorumStoreError::Decode {
            path: path.to_owned(),
            what,
            source,
        })
}

impl<C> RaftLogReader<C> for MetaLogReader<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        read_range::<C, RB>(&self.cache, range).map_err(|e| e.logs(false))
    }
}

impl<C> RaftLogReader<C> for MetaLogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone,
{
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        read_range::<C, RB>(&self.cache, range).map_err(|e| e.logs(false))
    }
}

impl<C> RaftLogStorage<C> for MetaLogStore<C>
where
    C: RaftTypeConfig,
    C::Entry: Clone + Serialize + DeserializeOwned,
{
    type LogReader = MetaLogReader<C>;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        Ok(LogState {
            last_purged_log_id: self.state.last_purged.clone(),
            last_log_id: self.last_log_id.clone(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        MetaLogReader {
            cache: Arc::clone(&self.cache),
        }
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        self.state.vote = Some(vote.clone());
        self.save_state().await.map_err(|e| e.vote(true))
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self.state.vote.clone())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<C::NodeId>>,
    ) -> Result<(), StorageError<C::NodeId>> {
        self.committed = committed.clone();
        let body = serde_json::to_vec(&committed).map_err(|source| {
            QuorumStoreError::Encode {
                what: "committed log id",
                source,
            }
            .logs(true)
        })?;
        write_atomic(&self.dir.join(COMMITTED_FILE), &body, false).map_err(|e| e.logs(true))
    }

    async fn read_committed(
        &mut self,
    ) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        // The committed id is saved without fsync while entries may still be in flight, so after
        // a crash it can name an entry this log no longer has: then claim nothing.
        let Some(committed) = self.committed.clone() else {
            return Ok(None);
        };
        if self
            .state
            .last_purged
            .as_ref()
            .is_some_and(|p| committed.index <= p.index)
        {
            return Ok(Some(committed));
        }
        let entries = self
            .cache
            .read()
            .map_err(|_| QuorumStoreError::Poisoned.logs(false))?;
        let present = entries
            .get(&committed.index)
            .is_some_and(|e| *e.get_log_id() == committed);
        Ok(present.then_some(committed))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<C::Entry> = entries.into_iter().collect();
        let records = entries
            .iter()
            .map(|e| self.encode(e))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.logs(true))?;
        let plan = self.segments.append(&records).map_err(|e| e.logs(true))?;
        {
            let mut cache = lock_mut::<C>(&self.cache).map_err(|e| e.logs(true))?;
            for entry in entries {
                self.last_log_id = Some(entry.get_log_id().clone());
                cache.insert(entry.get_log_id().index, entry);
            }
        }
        self.flusher
            .submit(move || callback.log_io_completed(plan.run().map_err(io::Error::other)))
            .map_err(|e| e.logs(true))
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        let plan = self
            .segments
            .truncate_from(log_id.index)
            .map_err(|e| e.logs(true))?;
        {
            let mut cache = lock_mut::<C>(&self.cache).map_err(|e| e.logs(true))?;
            drop(cache.split_off(&log_id.index));
            self.last_log_id = cache
                .values()
                .next_back()
                .map(|e| e.get_log_id().clone())
                .or_else(|| self.state.last_purged.clone());
        }
        self.flusher
            .run(move || plan.run())
            .await
            .and_then(|r| r)
            .map_err(|e| e.logs(true))
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        // The purge point is durable before any entry goes, so a reopened log never has a hole
        // below its first entry that it does not know about.
        self.state.last_purged = Some(log_id.clone());
        self.save_state().await.map_err(|e| e.logs(true))?;
        {
            let mut cache = lock_mut::<C>(&self.cache).map_err(|e| e.logs(true))?;
            let kept = cache.split_off(&(log_id.index + 1));
            *cache = kept;
        }
        let plan = self.segments.purge_upto(log_id.index);
        if self
            .last_log_id
            .as_ref()
            .is_none_or(|last| last.index < log_id.index)
        {
            self.last_log_id = Some(log_id);
        }
        self.flusher
            .run(move || plan.run())
            .await
            .and_then(|r| r)
            .map_err(|e| e.logs(true))
    }
}

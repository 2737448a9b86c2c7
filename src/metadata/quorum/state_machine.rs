//! The metadata quorum's state machine: openraft's `RaftStateMachine` and
//! `RaftSnapshotBuilder` over any [`MetadataMachine`]. Applies committed entries in memory,
//! keeps the applied log id and last membership, persists state only as snapshot files
//! ([`super::checkpoint`]) and publishes every new state through a `tokio::sync::watch`.
//!
//! Runs on the controller thread's tokio runtime; snapshot encoding and file writes run on
//! the flusher thread. Shards only ever see the published `Arc<M>` (through a watch receiver),
//! so nothing on the data path takes a lock shared with this thread.

use std::fmt;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::RaftStateMachine;
use openraft::{
    EntryPayload, LogId, RaftSnapshotBuilder, Snapshot, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use tokio::sync::watch;

use super::checkpoint::{self, Checkpoint};
use super::durable::Flusher;
use super::error::QuorumStoreError;
use super::types::{ControllerNode, MetadataMachine, QuorumTypes};

type Meta = SnapshotMeta<u64, ControllerNode>;
type Membership = StoredMembership<u64, ControllerNode>;

/// The applied metadata of one node, rebuilt at open from the newest snapshot file (openraft
/// then re-applies the committed log after it).
pub struct MetaStateMachine<M: MetadataMachine> {
    dir: PathBuf,
    machine: Arc<M>,
    applied: Option<LogId<u64>>,
    membership: Membership,
    published: watch::Sender<Arc<M>>,
    flusher: Flusher,
}

impl<M: MetadataMachine> fmt::Debug for MetaStateMachine<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetaStateMachine")
            .field("dir", &self.dir)
            .field("applied", &self.applied)
            .field("membership", &self.membership)
            .finish_non_exhaustive()
    }
}

/// Builds a snapshot of the state as it was when openraft asked for the builder.
pub struct MetaSnapshotBuilder<M: MetadataMachine> {
    dir: PathBuf,
    machine: Arc<M>,
    applied: Option<LogId<u64>>,
    membership: Membership,
    flusher: Flusher,
}

/// Index and term naming the snapshot that ends at `applied`; (0, 0) before any entry.
fn position(applied: Option<&LogId<u64>>) -> (u64, u64) {
    applied.map_or((0, 0), |id| (id.index, id.leader_id.term))
}

fn snapshot_error(e: &QuorumStoreError, write: bool) -> StorageError<u64> {
    e.snapshot(write)
}

impl<M: MetadataMachine> MetaStateMachine<M> {
    /// Opens the state machine over `dir` (the node's `__cluster_metadata-0/`): loads the
    /// newest snapshot file there, or starts from `M::default()`.
    ///
    /// # Errors
    /// File system errors, a damaged snapshot file, or bytes `M::from_snapshot` refuses.
    pub fn open(dir: &Path) -> Result<Self, QuorumStoreError> {
        std::fs::create_dir_all(dir).map_err(QuorumStoreError::io("create dir", dir))?;
        let (machine, applied, membership) = match checkpoint::read_latest::<Meta>(dir)? {
            Some(cp) => (
                M::from_snapshot(&cp.data)?,
                cp.meta.last_log_id,
                cp.meta.last_membership,
            ),
            None => (M::default(), None, Membership::default()),
        };
        let machine = Arc::new(machine);
        let (published, _) = watch::channel(Arc::clone(&machine));
        Ok(Self {
            dir: dir.to_owned(),
            machine,
            applied,
            membership,
            published,
            flusher: Flusher::start()?,
        })
    }

    /// A receiver of every state applied from now on (the current one is its initial value).
    /// Intermediate states may be skipped by a slow receiver: each one is complete.
    #[must_use]
    pub fn subscribe(&self) -> watch::Receiver<Arc<M>> {
        self.published.subscribe()
    }

    /// The current state.
    #[must_use]
    pub fn machine(&self) -> Arc<M> {
        Arc::clone(&self.machine)
    }

    fn publish(&self) {
        // `send_replace` stores the value even with no receiver, so a later `subscribe` sees it.
        self.published.send_replace(Arc::clone(&self.machine));
    }
}

impl<M: MetadataMachine> RaftSnapshotBuilder<QuorumTypes<M>> for MetaSnapshotBuilder<M> {
    async fn build_snapshot(&mut self) -> Result<Snapshot<QuorumTypes<M>>, StorageError<u64>> {
        let (index, term) = position(self.applied.as_ref());
        let meta = Meta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id: checkpoint::stem(index, term),
        };
        let machine = Arc::clone(&self.machine);
        let dir = self.dir.clone();
        let file_meta = meta.clone();
        let data = self
            .flusher
            .run(move || {
                let cp = Checkpoint {
                    meta: file_meta,
                    data: machine.to_snapshot(),
                };
                checkpoint::write(&dir, index, term, &cp).map(|()| cp.data)
            })
            .await
            .and_then(|r| r)
            .map_err(|e| snapshot_error(&e, true))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl<M: MetadataMachine> RaftStateMachine<QuorumTypes<M>> for MetaStateMachine<M> {
    type SnapshotBuilder = MetaSnapshotBuilder<M>;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<u64>>, Membership), StorageError<u64>> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<M::Reply>, StorageError<u64>>
    where
        I: IntoIterator<Item = openraft::Entry<QuorumTypes<M>>> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut replies = Vec::new();
        let mut changed = false;
        for entry in entries {
            let id = entry.log_id;
            self.applied = Some(id);
            let reply = match entry.payload {
                EntryPayload::Normal(cmd) => {
                    changed = true;
                    Arc::make_mut(&mut self.machine).apply(&cmd, id.index, id.leader_id.term)
                }
                EntryPayload::Membership(m) => {
                    self.membership = Membership::new(Some(id), m);
                    M::Reply::default()
                }
                EntryPayload::Blank => M::Reply::default(),
            };
            replies.push(reply);
        }
        if changed {
            self.publish();
        }
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        MetaSnapshotBuilder {
            dir: self.dir.clone(),
            machine: Arc::clone(&self.machine),
            applied: self.applied,
            membership: self.membership.clone(),
            flusher: self.flusher.clone(),
        }
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<u64>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<u64>> {
        let data = snapshot.into_inner();
        let machine = M::from_snapshot(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let (index, term) = position(meta.last_log_id.as_ref());
        let dir = self.dir.clone();
        let cp = Checkpoint {
            meta: meta.clone(),
            data,
        };
        self.flusher
            .run(move || checkpoint::write(&dir, index, term, &cp))
            .await
            .and_then(|r| r)
            .map_err(|e| snapshot_error(&e, true))?;
        self.machine = Arc::new(machine);
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.publish();
        // Operators (and the catch-up test) see that the node skipped the log up to here.
        tracing::info!(index, term, "metadata snapshot installed from the leader");
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<QuorumTypes<M>>>, StorageError<u64>> {
        let dir = self.dir.clone();
        let latest = self
            .flusher
            .run(move || checkpoint::read_latest::<Meta>(&dir))
            .await
            .and_then(|r| r)
            .map_err(|e| snapshot_error(&e, false))?;
        Ok(latest.map(|cp| Snapshot {
            meta: cp.meta,
            snapshot: Box::new(Cursor::new(cp.data)),
        }))
    }
}

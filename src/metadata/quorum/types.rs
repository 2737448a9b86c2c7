//! The Raft type configuration of the metadata quorum and the trait the metadata state
//! implements. Pure types: no I/O, used on the controller thread and by whoever drives `Raft`.

use std::cmp::Ordering;
use std::fmt;
use std::io::Cursor;
use std::marker::PhantomData;

use openraft::{AppData, AppDataResponse, RaftTypeConfig};
use serde::{Deserialize, Serialize};

/// The replicated metadata: a deterministic state machine folded over committed commands.
///
/// `apply` must be pure and deterministic (no clock, RNG or map iteration order): every node
/// folds the same commands and must reach the same state. The leader computes ids and
/// placement before proposing and puts them in the command.
pub trait MetadataMachine: Default + Clone + Send + Sync + 'static {
    /// A command in the metadata log (a Raft "normal" entry's payload).
    type Command: AppData + Clone + fmt::Debug;
    /// What applying a command answers to the proposer. `Default` is the reply openraft gets
    /// for blank and membership entries, which do not reach the machine.
    type Reply: AppDataResponse + Default + fmt::Debug;

    /// Applies one committed command found at log position `index` written in `term`.
    fn apply(&mut self, cmd: &Self::Command, index: u64, term: u64) -> Self::Reply;

    /// Serializes the whole state, for a snapshot file and for a lagging follower.
    fn to_snapshot(&self) -> Vec<u8>;

    /// Rebuilds the state from bytes [`to_snapshot`](Self::to_snapshot) produced.
    ///
    /// # Errors
    /// [`SnapshotError`] when the bytes do not decode (they come from disk or the network).
    fn from_snapshot(bytes: &[u8]) -> Result<Self, SnapshotError>;
}

/// A snapshot's bytes did not decode into a [`MetadataMachine`].
#[derive(Debug, thiserror::Error)]
#[error("cannot decode metadata snapshot: {reason}")]
pub struct SnapshotError {
    /// Why, in words (the decoder's message).
    pub reason: String,
}

/// A quorum member as openraft knows it: the address of its CONTROLLER listener (Kafka's
/// `controller.quorum.voters` entry `id@host:port`), not its client port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerNode {
    /// Host name or IP address of the CONTROLLER listener.
    pub host: String,
    /// TCP port of the CONTROLLER listener.
    pub port: u16,
}

impl fmt::Display for ControllerNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// openraft's type configuration for a quorum replicating machine `M`: node ids are Kafka
/// `node.id`s (`u64`), snapshots travel as one in-memory buffer (metadata is small), and the
/// runtime is tokio (the controller thread's current-thread runtime).
///
/// Generic rather than declared with `declare_raft_types!` so this module can be tested with
/// a small machine while the real metadata image is written elsewhere. The marker derives are
/// written by hand because `derive` would demand them of `M` too.
pub struct QuorumTypes<M>(PhantomData<fn() -> M>);

impl<M: MetadataMachine> RaftTypeConfig for QuorumTypes<M> {
    type D = M::Command;
    type R = M::Reply;
    type NodeId = u64;
    type Node = ControllerNode;
    type Entry = openraft::Entry<Self>;
    type SnapshotData = Cursor<Vec<u8>>;
    type AsyncRuntime = openraft::TokioRuntime;
    type Responder = openraft::impls::OneshotResponder<Self>;
}

impl<M> fmt::Debug for QuorumTypes<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("QuorumTypes")
    }
}

impl<M> Clone for QuorumTypes<M> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<M> Copy for QuorumTypes<M> {}

impl<M> Default for QuorumTypes<M> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<M> PartialEq for QuorumTypes<M> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<M> Eq for QuorumTypes<M> {}

impl<M> PartialOrd for QuorumTypes<M> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<M> Ord for QuorumTypes<M> {
    fn cmp(&self, _: &Self) -> Ordering {
        Ordering::Equal
    }
}

//! The controller quorum's storage on openraft 0.9 (issue 13): the Raft type configuration,
//! the durable log store and the snapshotting state machine.
//!
//! Everything openraft-specific lives under this module, so the 0.9 -> 0.10 break (storage
//! traits, snapshot API, runtime crates) stays inside it. The metadata itself is behind the
//! [`MetadataMachine`] trait: this module knows nothing about topics or brokers.
//!
//! Threads: everything here runs on the controller thread's tokio runtime, never on a shard.
//! Blocking file I/O is short (a `write` of a few records); every fsync runs on a per-store
//! flusher thread ([`durable::Flusher`]) so the runtime keeps sending heartbeats meanwhile.

mod checkpoint;
mod controller;
#[cfg(test)]
mod controller_tests;
mod durable;
mod error;
mod log_store;
mod network;
#[cfg(test)]
mod raft_tests;
mod rpc;
mod segments;
mod server;
mod state_machine;
mod status;
#[cfg(test)]
mod tests;
mod types;

pub use controller::{Controller, ControllerError, ControllerHandle, ControllerSettings};
pub use error::QuorumStoreError;
pub use log_store::{DEFAULT_SEGMENT_BYTES, MetaLogReader, MetaLogStore};
pub use network::{ControllerNetwork, FaultPlan, PeerClient, TransportError};
pub use rpc::{Committed, ForwardError, FrameError, MAX_FRAME_BYTES};
// The CONTROLLER frame codec, for the fuzz targets (`crate::fuzzing`) only.
pub(crate) use rpc::{RequestFrame, ResponseFrame, Rpc, RpcReply, read_frame, write_frame};
pub use server::{Liveness, ServeContext, heartbeat_local, serve, write_local};
pub use state_machine::{MetaSnapshotBuilder, MetaStateMachine};
pub use status::{QuorumMetrics, metrics_of};
pub use types::{ControllerNode, MetadataMachine, QuorumTypes, SnapshotError};

//! Typed errors of the quorum's files, and their conversion into openraft's `StorageError`
//! at the trait boundary.

use std::io;
use std::path::PathBuf;

use openraft::{NodeId, StorageError, StorageIOError};

/// Opening or writing the quorum's files failed.
#[derive(Debug, thiserror::Error)]
pub enum QuorumStoreError {
    /// A file system call failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`open`, `write`, `fsync`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A file's content is damaged somewhere a torn write cannot explain (not the tail of
    /// the last log segment), so it is not cut silently.
    #[error("{path} is corrupt at byte {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the first bad record.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A record's CRC was right but its content did not decode (a format change or a bug).
    #[error("{path}: cannot decode {what}: {source}")]
    Decode {
        /// The file holding the record.
        path: PathBuf,
        /// What was being decoded.
        what: &'static str,
        /// The decoder's error.
        source: serde_json::Error,
    },
    /// A value did not encode (a serde impl refused it: a bug, not bad input from disk).
    #[error("cannot encode {what}: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// The encoder's error.
        source: serde_json::Error,
    },
    /// The log would have a hole: openraft needs consecutive indexes.
    #[error("log index {found} where {expected} was expected")]
    Gap {
        /// The index that should come next.
        expected: u64,
        /// The index found or offered.
        found: u64,
    },
    /// A record too large for its 32-bit length field.
    #[error("record of {len} bytes does not fit a frame")]
    TooLarge {
        /// The record's length in bytes.
        len: usize,
    },
    /// The latest snapshot file did not decode into the metadata machine.
    #[error(transparent)]
    Snapshot(#[from] super::types::SnapshotError),
    /// A lock over the in-memory log was poisoned by a panic on another task.
    #[error("log cache lock poisoned")]
    Poisoned,
    /// The flusher thread is gone (it panicked), so nothing can be made durable any more.
    #[error("quorum flusher thread stopped")]
    FlusherGone,
}

impl QuorumStoreError {
    /// Builds an [`Io`](Self::Io) error; a helper for `map_err`.
    pub(super) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { op, path, source }
    }

    /// As openraft's error about the log (a read or write of entries, the vote, committed).
    pub(super) fn logs<NID: NodeId>(&self, write: bool) -> StorageError<NID> {
        let io = if write {
            StorageIOError::write_logs(self)
        } else {
            StorageIOError::read_logs(self)
        };
        StorageError::IO { source: io }
    }

    /// As openraft's error about the vote.
    pub(super) fn vote<NID: NodeId>(&self, write: bool) -> StorageError<NID> {
        let io = if write {
            StorageIOError::write_vote(self)
        } else {
            StorageIOError::read_vote(self)
        };
        StorageError::IO { source: io }
    }

    /// As openraft's error about a snapshot.
    pub(super) fn snapshot<NID: NodeId>(&self, write: bool) -> StorageError<NID> {
        let io = if write {
            StorageIOError::write_snapshot(None, self)
        } else {
            StorageIOError::read_snapshot(None, self)
        };
        StorageError::IO { source: io }
    }
}

//! The io_uring writer of the active segment's index files: the unwritten tails of its
//! `.index` and `.timeindex` ([`crate::storage::index::Index::take_unwritten`]) go to the
//! files through the shard's ring, a batch of entries at a time, so an append never makes a
//! `write(2)` of its own on the shard thread. Runs on the partition's shard.
//!
//! Ordering: writes take turns (one at a time per segment), and whoever closes the segment
//! (roll, shutdown, a follower's truncation) takes the last turn, so every earlier write has
//! landed before the files are synced, cut or rewritten.

use std::io;
use std::path::Path;

use crate::storage::index::IndexTail;

/// The unwritten tails of both index files of one segment.
#[derive(Debug, Default)]
pub struct IndexTails {
    /// Of the `.index` file.
    pub offsets: Option<IndexTail>,
    /// Of the `.timeindex` file.
    pub times: Option<IndexTail>,
}

impl IndexTails {
    /// True when neither file has anything to write.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_none() && self.times.is_none()
    }
}

/// The ring-side handles of one active segment's index files (see the module doc).
pub struct IndexRing {
    offsets: glommio::io::BufferedFile,
    times: glommio::io::BufferedFile,
    turn: glommio::sync::Semaphore,
}

impl IndexRing {
    /// Index entries a partition gathers in memory before it writes them out. A crash loses
    /// at most this many from the file, which recovery rebuilds by scanning that much more
    /// log.
    pub const TAIL_BATCH: usize = 64;

    /// Opens both index files for writing through io_uring.
    pub async fn open(offsets: &Path, times: &Path) -> io::Result<Self> {
        Ok(Self {
            offsets: open_for_write(offsets).await?,
            times: open_for_write(times).await?,
            turn: glommio::sync::Semaphore::new(1),
        })
    }

    /// Writes `tails` once every earlier write of this segment has landed. The index files
    /// are a cache of the log (recovery rebuilds what is missing), so a failed write only
    /// warns: it must fail neither an append nor the flush of the log around it.
    pub async fn write(&self, tails: IndexTails) {
        if let Err(e) = self.write_in_turn(tails).await {
            tracing::warn!(error = %e, "index write failed; recovery rebuilds the entries");
        }
    }

    async fn write_in_turn(&self, tails: IndexTails) -> io::Result<()> {
        let _turn = self
            .turn
            .acquire_permit(1)
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
        if let Some(tail) = tails.offsets {
            write_fully(&self.offsets, tail).await?;
        }
        if let Some(tail) = tails.times {
            write_fully(&self.times, tail).await?;
        }
        Ok(())
    }

    /// Closes both files through the ring, after the last write.
    pub async fn close(self) -> io::Result<()> {
        let offsets = self.offsets.close().await.map_err(io::Error::from);
        let times = self.times.close().await.map_err(io::Error::from);
        offsets.and(times)
    }
}

/// Writes `tail` to the index file at `path` with a blocking positional write (a segment
/// without a ring: only where blocking is allowed). A missing file is not an error: its
/// segment is gone.
pub fn write_tail_blocking(path: &Path, tail: Option<IndexTail>) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let Some(tail) = tail else {
        return Ok(());
    };
    match std::fs::OpenOptions::new().write(true).open(path) {
        Ok(file) => file.write_all_at(&tail.bytes, tail.position),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

async fn open_for_write(path: &Path) -> io::Result<glommio::io::BufferedFile> {
    glommio::io::OpenOptions::new()
        .write(true)
        .buffered_open(path)
        .await
        .map_err(io::Error::from)
}

/// Writes all of `tail`, resuming after a short write.
async fn write_fully(file: &glommio::io::BufferedFile, tail: IndexTail) -> io::Result<()> {
    let (mut position, mut bytes) = (tail.position, tail.bytes);
    while !bytes.is_empty() {
        let written = file
            .write_at(bytes.clone(), position)
            .await
            .map_err(io::Error::from)?;
        if written == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "index file took no bytes",
            ));
        }
        bytes.drain(..written);
        position += written as u64;
    }
    Ok(())
}

//! A rolled segment's last duty: its log is fdatasync'ed and closed through io_uring, its
//! last index entries are written through the ring, then its indexes are synced on the
//! shard's blocking pool, a few at a time. Runs in the background on the partition's shard
//! after a roll; flushes that must cover it wait for it.

use std::fs::File;
use std::io;
use std::path::Path;
use std::rc::Rc;

/// Index syncs of rolled segments a shard runs at once on its blocking pool (one thread).
/// A roll storm (many partitions with small segments) then opens a few index files at a
/// time instead of every rolled segment's together.
const INDEX_SYNCS_AT_ONCE: u64 = 4;

thread_local! {
    static INDEX_SYNCS: Rc<glommio::sync::Semaphore> =
        Rc::new(glommio::sync::Semaphore::new(INDEX_SYNCS_AT_ONCE));
}

/// The files of a just-closed segment that still need an fdatasync.
pub struct RetiredWriter {
    /// Synced and closed at once: the log's durability never depends on opening it again
    /// (which could fail when descriptors are short), and the descriptor is held only for
    /// the fdatasync itself.
    pub(super) writer: Option<Rc<super::SegmentWriter>>,
    /// The ring writer of its index files, for their last entries.
    pub(super) index_ring: Option<Rc<super::IndexRing>>,
    /// Index entries not yet written when the segment was rolled.
    pub(super) index_tails: super::IndexTails,
    /// The log's indexes, reopened by path for their sync (fdatasync covers a file's dirty
    /// pages whichever descriptor wrote them), so a closed segment keeps no index open while
    /// its sync waits for the blocking pool.
    pub(super) index_paths: [std::path::PathBuf; 2],
}

impl RetiredWriter {
    /// Fdatasyncs and closes the log through io_uring, then, with one of the shard's few
    /// index-sync slots, syncs the index files on glommio's blocking pool; nothing here runs
    /// on the append path. An index gone meanwhile (retention, compaction) needs no sync.
    pub async fn flush_and_close(self) -> io::Result<()> {
        if let Some(writer) = self.writer {
            writer.fdatasync().await?;
            if let Ok(writer) = Rc::try_unwrap(writer) {
                writer.close().await?;
            }
        }
        let tails = self.index_tails;
        let blocking_tails = match self.index_ring {
            Some(ring) => {
                ring.write(tails).await;
                if let Ok(ring) = Rc::try_unwrap(ring) {
                    ring.close().await?;
                }
                super::IndexTails::default()
            }
            None => tails,
        };
        let slots = INDEX_SYNCS.with(Rc::clone);
        let _slot = slots
            .acquire_permit(1)
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
        let paths = self.index_paths;
        glommio::executor()
            .spawn_blocking(move || {
                super::write_tail_blocking(&paths[0], blocking_tails.offsets)?;
                super::write_tail_blocking(&paths[1], blocking_tails.times)?;
                paths.iter().try_for_each(|p| sync_path(p))
            })
            .await
    }
}

/// fdatasync of the file at `path` through a descriptor opened for it; a missing file is
/// not an error.
fn sync_path(path: &Path) -> io::Result<()> {
    match File::open(path) {
        Ok(file) => file.sync_data(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

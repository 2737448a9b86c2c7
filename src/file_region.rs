//! A byte range of an open segment file: what a log read returns, what a fetch response
//! carries as a part, and what the connection sends with sendfile. One type from storage to
//! socket, so the range is described once. It holds an `Rc` of the file and so stays on the
//! shard thread that read it; the file stays open for an in-flight send even if the segment
//! is closed or evicted meanwhile.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::rc::Rc;

use bytes::Bytes;

/// A byte range of one open segment file, sent as is (see the module doc).
pub struct FileRegion {
    /// The segment's file, shared with the segment, so it stays open while a send is in flight.
    pub file: Rc<File>,
    /// Byte position of the range in the file.
    pub position: u64,
    /// Length in bytes from `position`, never past the end of the segment. A log read cuts it
    /// at the fetch's max bytes (but keeps at least the first batch), so it may end mid-batch.
    pub len: u64,
    /// The range lies in the active segment: the tail, almost surely in the page cache.
    pub is_tail: bool,
    /// The range's bytes from the partition's tail cache (`sluice.log.io=direct`, where the
    /// page cache does not hold the newest data): at least `len` bytes from `position`, sent
    /// from memory instead of the file. `None` in page-cache mode.
    pub cached: Option<Bytes>,
}

impl FileRegion {
    /// The range's bytes in memory: the tail cache's slice, the page cache's read inline for
    /// the tail (hot, as the copying send path reads it), or a read on the blocking pool for
    /// older segments, so a disk read never stalls the shard.
    pub async fn to_bytes(&self) -> io::Result<Bytes> {
        let len = usize::try_from(self.len).map_err(io::Error::other)?;
        if let Some(cached) = &self.cached {
            return Ok(cached.slice(..len.min(cached.len())));
        }
        let mut buffer = vec![0u8; len];
        if self.is_tail {
            self.file.read_exact_at(&mut buffer, self.position)?;
            return Ok(Bytes::from(buffer));
        }
        read_off_shard(&self.file, buffer, self.position)
            .await
            .map(Bytes::from)
    }
}

/// Fills `buffer` from `file` at `position` on a blocking-pool thread and hands it back.
pub async fn read_off_shard(
    file: &File,
    mut buffer: Vec<u8>,
    position: u64,
) -> io::Result<Vec<u8>> {
    // The thread gets its own descriptor (a dup), so it never depends on the shard keeping
    // `file` open while it reads.
    let file = file.try_clone()?;
    glommio::executor()
        .spawn_blocking(move || file.read_exact_at(&mut buffer, position).map(|()| buffer))
        .await
}

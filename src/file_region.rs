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
        if self.is_tail {
            return read_exact_fresh(&self.file, len, self.position).map(Bytes::from);
        }
        let (file, position) = (self.file.try_clone()?, self.position);
        glommio::executor()
            .spawn_blocking(move || read_exact_fresh(&file, len, position))
            .await
            .map(Bytes::from)
    }
}

/// `len` bytes of `file` from `position`, read into a buffer that is not zeroed first: every
/// byte is written by `pread` before the buffer's length covers it. (Zeroing a fetch's worth
/// of buffer before overwriting it was 5% of a share-consuming broker's CPU.)
pub fn read_exact_fresh(file: &File, len: usize, position: u64) -> io::Result<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let mut buffer: Vec<u8> = Vec::with_capacity(len);
    while buffer.len() < len {
        let filled = buffer.len();
        let at = libc::off_t::try_from(position + filled as u64).map_err(io::Error::other)?;
        let spare = &mut buffer.spare_capacity_mut()[..len - filled];
        // SAFETY: `spare` is the vector's own unused capacity, valid for `spare.len()` bytes of
        // writes; pread writes at most that many.
        let n =
            unsafe { libc::pread(file.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len(), at) };
        match n {
            n if n > 0 => {
                // SAFETY: pread initialised the `n` bytes after the current length.
                unsafe { buffer.set_len(filled + n as usize) }
            }
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(buffer)
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

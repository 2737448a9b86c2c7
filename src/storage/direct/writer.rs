//! The O_DIRECT writer of an active segment: each append is copied, behind the bytes of the
//! segment's last partial block, into an aligned buffer from glommio's registered arena and
//! written with one io_uring write at the block boundary; the file holds zero padding past
//! the logical end until the writer is finished (truncated to the segment's size). Runs on
//! the partition's shard; appends are serialized by the partition's append permit.

use std::cell::RefCell;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use glommio::io::DmaFile;

use super::TailCache;

/// Writes are aligned to whole pages at least: a device with 512-byte sectors would take
/// smaller ones, but a 4 KiB-block filesystem would then read-modify-write.
const MIN_ALIGN: u64 = 4096;

/// The bytes of the block the next append starts in, from its start to the logical end.
struct PartialBlock {
    start: u64,
    bytes: Vec<u8>,
}

/// The O_DIRECT writer of one active segment (see the module doc).
pub struct DirectWriter {
    file: DmaFile,
    /// For reading a partial block back on the blocking pool (an O_DIRECT read of the DMA
    /// file is refused on some virtual devices).
    path: PathBuf,
    /// The segment's base offset: the tail cache's key.
    segment: i64,
    cache: Rc<TailCache>,
    align: u64,
    /// `None` until the first append, or after a failed one: read back from the file then.
    partial: RefCell<Option<PartialBlock>>,
}

impl DirectWriter {
    /// Opens `path` (the segment's `.log`, which exists) for O_DIRECT appends.
    pub async fn open(path: &Path, segment: i64, cache: Rc<TailCache>) -> io::Result<Self> {
        let file = glommio::io::OpenOptions::new()
            .read(true)
            .write(true)
            .dma_open(path)
            .await
            .map_err(io::Error::from)?;
        let align = file.alignment().max(MIN_ALIGN);
        Ok(Self {
            file,
            path: path.to_path_buf(),
            segment,
            cache,
            align,
            partial: RefCell::new(None),
        })
    }

    /// Writes `bytes` at `position` (the segment's logical end) and keeps them in the tail
    /// cache. On error nothing is cached and the partial block is read back next time.
    pub async fn append(&self, bytes: Vec<u8>, position: u64) -> io::Result<()> {
        let start = position / self.align * self.align;
        let prefix = self.partial_block(start, position).await?;
        let total = prefix.len() + bytes.len();
        let padded = (total as u64).div_ceil(self.align) * self.align;
        let mut buf = self.file.alloc_dma_buffer(padded as usize);
        let out = buf.as_bytes_mut();
        out[..prefix.len()].copy_from_slice(&prefix);
        out[prefix.len()..total].copy_from_slice(&bytes);
        // Zeros past the end: recovery stops at them, as at any torn tail.
        out[total..].fill(0);
        let end = position + bytes.len() as u64;
        let next_start = end / self.align * self.align;
        let next = PartialBlock {
            start: next_start,
            bytes: out[(next_start - start) as usize..total].to_vec(),
        };
        self.partial.borrow_mut().take();
        let written = self
            .file
            .write_at(buf, start)
            .await
            .map_err(io::Error::from)?;
        if written as u64 != padded {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!("short direct write: {written} of {padded} bytes"),
            ));
        }
        *self.partial.borrow_mut() = Some(next);
        self.cache
            .insert(self.segment, position, Bytes::from(bytes));
        Ok(())
    }

    /// The bytes from `start` (a block boundary) to `position`: the remembered partial block,
    /// else from the tail cache, else read back from the file on the blocking pool (after a
    /// truncation or at the first append of a reopened segment).
    async fn partial_block(&self, start: u64, position: u64) -> io::Result<Vec<u8>> {
        let want = (position - start) as usize;
        if want == 0 {
            return Ok(Vec::new());
        }
        if let Some(p) = self.partial.borrow().as_ref()
            && p.start == start
            && p.bytes.len() == want
        {
            return Ok(p.bytes.clone());
        }
        let mut block = vec![0u8; want];
        if self.cache.copy_to(self.segment, start, &mut block) {
            return Ok(block);
        }
        let path = self.path.clone();
        glommio::executor()
            .spawn_blocking(move || {
                std::fs::File::open(&path)?.read_exact_at(&mut block, start)?;
                Ok(block)
            })
            .await
    }

    /// fdatasync: the file's size and the device's write cache (the data itself is already on
    /// the device).
    pub async fn fdatasync(&self) -> io::Result<()> {
        self.file.fdatasync().await.map_err(io::Error::from)
    }

    /// Cuts the zero padding past `size`, the segment's logical end; called before the writer
    /// is closed, so a closed segment ends at its last batch as a page-cache one does.
    pub async fn finish(&self, size: u64) -> io::Result<()> {
        self.partial.borrow_mut().take();
        self.file.truncate(size).await.map_err(io::Error::from)
    }

    /// Closes the file through io_uring.
    pub async fn close(self) -> io::Result<()> {
        self.file.close().await.map_err(io::Error::from)
    }
}

//! The io_uring writer of an active segment: buffered through the page cache (the default) or
//! O_DIRECT (`sluice.log.io=direct`, see [`crate::storage::direct`]). One type for the
//! append, flush, roll and close paths, so they do not care which. Runs on the partition's
//! shard.

use std::io;
use std::path::Path;

use crate::storage::direct::{DirectWriter, SegmentIo};

/// The writer of one active segment (see the module doc).
pub enum SegmentWriter {
    /// Buffered writes into the page cache.
    PageCache(glommio::io::BufferedFile),
    /// O_DIRECT writes, the appended bytes kept in the partition's tail cache.
    Direct(DirectWriter),
}

impl SegmentWriter {
    /// Opens the writer of the segment at `path` (base offset `segment`) as `io` says.
    pub async fn open(path: &Path, segment: i64, io: &SegmentIo) -> io::Result<Self> {
        match io {
            SegmentIo::PageCache { .. } => glommio::io::OpenOptions::new()
                .read(true)
                .write(true)
                .buffered_open(path)
                .await
                .map(SegmentWriter::PageCache)
                .map_err(io::Error::from),
            SegmentIo::Direct(cache) => DirectWriter::open(path, segment, cache.clone())
                .await
                .map(SegmentWriter::Direct),
        }
    }

    /// Writes `bytes` at `position`, all of them or an error.
    pub async fn append(&self, bytes: Vec<u8>, position: u64) -> io::Result<()> {
        match self {
            SegmentWriter::PageCache(file) => write_fully(file, bytes, position).await,
            SegmentWriter::Direct(writer) => writer.append(bytes, position).await,
        }
    }

    /// fdatasync of the segment's file.
    pub async fn fdatasync(&self) -> io::Result<()> {
        match self {
            SegmentWriter::PageCache(file) => file.fdatasync().await.map_err(io::Error::from),
            SegmentWriter::Direct(writer) => writer.fdatasync().await,
        }
    }

    /// Ends appends at `size` bytes: a direct writer cuts its zero padding, so the closed
    /// segment ends at its last batch; nothing to do for the page cache.
    pub async fn seal(&self, size: u64) -> io::Result<()> {
        match self {
            SegmentWriter::PageCache(_) => Ok(()),
            SegmentWriter::Direct(writer) => writer.finish(size).await,
        }
    }

    /// Closes the file through io_uring.
    pub async fn close(self) -> io::Result<()> {
        match self {
            SegmentWriter::PageCache(file) => file.close().await.map_err(io::Error::from),
            SegmentWriter::Direct(writer) => writer.close().await,
        }
    }
}

/// One buffered io_uring write of the whole of `bytes`; a short write is an error.
async fn write_fully(
    writer: &glommio::io::BufferedFile,
    bytes: Vec<u8>,
    position: u64,
) -> io::Result<()> {
    let len = bytes.len();
    let written = writer
        .write_at(bytes, position)
        .await
        .map_err(io::Error::from)?;
    if written != len {
        return Err(io::Error::new(
            io::ErrorKind::StorageFull,
            format!("short write: {written} of {len} bytes"),
        ));
    }
    Ok(())
}

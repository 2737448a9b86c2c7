//! Timestamp lookups in one segment (ListOffsets by timestamp): the time index narrows the
//! search to a batch, whose records are then decoded (off the shard, by the caller's choice
//! of thread) to find the first record at or after the timestamp.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::rc::Rc;

use crate::protocol::record_batch::BatchView;

/// A batch that holds the first record at or after `timestamp` (ListOffsets by timestamp).
pub struct TimestampLookup {
    pub(super) file: Rc<File>,
    pub(super) position: u64,
    pub(super) size: usize,
    pub(super) timestamp: i64,
}

thread_local! {
    /// One timestamp lookup decodes at a time per shard: the shard's blocking pool (one
    /// thread) also serves cold reads and flushes, which then wait for at most one decode,
    /// and the memory a decode holds (up to `MAX_DECOMPRESSED_BYTES`) is taken once.
    static TIMESTAMP_DECODES: Rc<glommio::sync::Semaphore> =
        Rc::new(glommio::sync::Semaphore::new(1));
}

impl TimestampLookup {
    /// Offset and timestamp of the first record at or after the timestamp. Reading the batch
    /// and decompressing it (up to `MAX_DECOMPRESSED_BYTES`) runs on glommio's blocking pool
    /// with its own descriptor, so a lookup never stalls the shard's produce and fetch.
    pub async fn resolve(self) -> io::Result<(i64, i64)> {
        let slots = TIMESTAMP_DECODES.with(Rc::clone);
        let _slot = slots
            .acquire_permit(1)
            .await
            .map_err(|e| io::Error::other(e.to_string()))?;
        let file = self.file.try_clone()?;
        let (position, size, timestamp) = (self.position, self.size, self.timestamp);
        glommio::executor()
            .spawn_blocking(move || resolve_in_batch(&file, position, size, timestamp))
            .await
    }

    /// [`TimestampLookup::resolve`] on the calling thread (tests and tools).
    pub fn resolve_here(&self) -> io::Result<(i64, i64)> {
        resolve_in_batch(&self.file, self.position, self.size, self.timestamp)
    }
}

fn resolve_in_batch(
    file: &File,
    position: u64,
    size: usize,
    timestamp: i64,
) -> io::Result<(i64, i64)> {
    let mut full = vec![0u8; size];
    file.read_exact_at(&mut full, position)?;
    let view = BatchView::parse(&full).map_err(io::Error::other)?;
    Ok(first_record_at_or_after(&view, timestamp))
}

/// Offset and timestamp of the first record in `view` with timestamp >= `timestamp`;
/// falls back to the batch's base offset and max timestamp when records cannot be read.
fn first_record_at_or_after(view: &BatchView<'_>, timestamp: i64) -> (i64, i64) {
    if view.is_log_append_time() {
        return (view.base_offset(), view.max_timestamp());
    }
    if let Ok(records) = crate::protocol::records::decode_records(view) {
        for r in records {
            let ts = view.base_timestamp() + r.timestamp_delta;
            if ts >= timestamp {
                return (view.base_offset() + i64::from(r.offset_delta), ts);
            }
        }
    }
    (view.base_offset(), view.max_timestamp())
}

//! Reads of a partition log: the file range a fetch sends (KIP-74's whole first batch,
//! read_committed stopping at the last stable offset), whole batches as bytes for the
//! coordinators' replay, and timestamp lookups for ListOffsets. Runs on the partition's shard
//! (a timestamp lookup that must decode goes to the blocking pool by its caller).

use std::io;
use std::rc::Rc;

use super::{PartitionLog, ReadError};
use crate::file_region::FileRegion;
use crate::storage::segment::TimestampLookup;

impl PartitionLog {
    /// The byte range a fetch from `offset` sends: from the batch holding `offset` up to
    /// `max_bytes`, but always at least that whole first batch (KIP-74), within one segment.
    pub fn read(&self, offset: i64, max_bytes: u64) -> Result<Option<FileRegion>, ReadError> {
        if offset < self.log_start_offset || offset > self.next_offset {
            return Err(ReadError::OutOfRange {
                offset,
                start: self.log_start_offset,
                end: self.next_offset,
            });
        }
        if offset == self.next_offset {
            return Ok(None);
        }
        let active_base = self.active().base_offset;
        for (base, segment) in self
            .segments
            .range(..=offset)
            .next_back()
            .into_iter()
            .chain(self.segments.range(offset + 1..))
        {
            let Some(location) = segment.position_of(offset)? else {
                continue;
            };
            let available = segment.size() - location.position;
            let len = available.min(max_bytes.max(location.size));
            return Ok(Some(FileRegion {
                file: segment.file()?,
                position: location.position,
                len,
                is_tail: *base == active_base,
                cached: segment.cached(location.position, len),
            }));
        }
        Ok(None)
    }

    /// [`PartitionLog::read`] for read_committed readers: stops before the last stable
    /// offset. The LSO is always the base offset of a batch (the first of an open
    /// transaction, or the high watermark), so the cut falls on a batch boundary and the
    /// range stays zero-copy.
    pub fn read_committed(
        &self,
        offset: i64,
        max_bytes: u64,
    ) -> Result<Option<FileRegion>, ReadError> {
        self.read_upto(offset, max_bytes, self.last_stable_offset())
    }

    /// [`PartitionLog::read`] that stops before `upto` (the high watermark for consumers of
    /// a replicated partition, the LSO for read_committed ones), which must be a batch
    /// boundary. Reading at or past `upto` but within the log returns nothing, as Kafka
    /// answers a consumer ahead of the high watermark.
    pub fn read_upto(
        &self,
        offset: i64,
        max_bytes: u64,
        upto: i64,
    ) -> Result<Option<FileRegion>, ReadError> {
        if offset >= upto && offset <= self.next_offset && offset >= self.log_start_offset {
            return Ok(None);
        }
        let Some(mut slice) = self.read(offset, max_bytes)? else {
            return Ok(None);
        };
        if upto < self.next_offset
            && let Some((_, segment)) = self.segments.range(..=upto).next_back()
            && let Some(stop) = segment.position_of(upto)?
            && Rc::ptr_eq(&segment.file()?, &slice.file)
            && stop.position < slice.position + slice.len
        {
            slice.len = stop.position.saturating_sub(slice.position);
            if slice.len == 0 {
                return Ok(None);
            }
        }
        Ok(Some(slice))
    }

    /// Copies the bytes [`PartitionLog::read`] would send from `offset`. The last batch may
    /// be cut at `max_bytes`. This is a blocking pread: meant for replaying internal topics
    /// while a shard starts, before it serves requests, never for the fetch path.
    pub fn read_bytes(&self, offset: i64, max_bytes: u64) -> Result<Option<Vec<u8>>, ReadError> {
        use std::os::unix::fs::FileExt;
        let Some(slice) = self.read(offset, max_bytes)? else {
            return Ok(None);
        };
        let len = usize::try_from(slice.len).map_err(io::Error::other)?;
        if let Some(cached) = &slice.cached {
            return Ok(Some(cached[..len].to_vec()));
        }
        let mut buf = vec![0u8; len];
        slice.file.read_exact_at(&mut buf, slice.position)?;
        Ok(Some(buf))
    }

    /// ListOffsets by timestamp: the batch holding the first offset whose timestamp is >=
    /// `timestamp` (resolve it off the shard); `None` when every record is older.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> io::Result<Option<TimestampLookup>> {
        for segment in self.segments.values() {
            if let Some(found) = segment.locate_timestamp(timestamp)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The batch with the largest timestamp in the log (ListOffsets -3).
    pub fn max_timestamp(&self) -> Option<TimestampLookup> {
        self.segments
            .values()
            .filter(|s| s.max_timestamp() >= 0)
            .max_by_key(|s| s.max_timestamp())
            .and_then(|s| s.locate_timestamp(s.max_timestamp()).ok().flatten())
    }
}

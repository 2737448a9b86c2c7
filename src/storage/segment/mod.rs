//! One log segment: `<base_offset:020>.log` with its `.index` and `.timeindex`, start-up
//! recovery of its tail, positional reads, and the io_uring writer of the active segment.
//! Owned by a partition log on the shard that owns the partition.
//!
//! Only the active segment keeps its files open; a closed segment opens its `.log` through
//! the shard's bounded descriptor cache ([`crate::storage::file_cache`]) when it is read,
//! and its indexes live in memory.

use std::cell::Cell;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;

use crate::protocol::record_batch::{self, BatchHeader, BatchView, HEADER_LEN};
use crate::storage::direct::{SegmentIo, TailCache};
use crate::storage::file_cache;
use crate::storage::index::{Index, OffsetEntry, TimeEntry};
use crate::storage::leader_epochs::LeaderEpochs;
use crate::storage::producer_state::{BatchIdentity, ProducerStates};
use crate::storage::txn_index::{AbortedTxn, TxnBatch, TxnIndex};

mod index_ring;
mod recent;
mod retired;
mod timestamp;
mod writer;

use index_ring::write_tail_blocking;
pub use index_ring::{IndexRing, IndexTails};
use recent::RecentBatches;
pub use retired::RetiredWriter;
pub use timestamp::TimestampLookup;
pub use writer::SegmentWriter;

/// File name stem of a segment: the base offset, zero-padded to 20 digits as Kafka does.
pub fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// Paths of the three files of one segment.
pub struct SegmentPaths {
    /// The records file, `<base_offset:020>.log`.
    pub log: PathBuf,
    /// The sparse offset index, `<base_offset:020>.index`.
    pub index: PathBuf,
    /// The sparse timestamp index, `<base_offset:020>.timeindex`.
    pub time_index: PathBuf,
    /// Kafka's aborted-transaction index; exists only once the segment holds an ABORT.
    pub txn_index: PathBuf,
}

impl SegmentPaths {
    /// The paths of the segment with `base_offset` in partition directory `dir` (nothing is
    /// created or checked).
    pub fn new(dir: &Path, base_offset: i64) -> Self {
        let stem = file_stem(base_offset);
        Self {
            log: dir.join(format!("{stem}.log")),
            index: dir.join(format!("{stem}.index")),
            time_index: dir.join(format!("{stem}.timeindex")),
            txn_index: dir.join(format!("{stem}.txnindex")),
        }
    }
}

/// What a recovery scan found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Bytes cut from the tail (torn or corrupt).
    pub truncated_bytes: u64,
    /// Batches validated by the scan.
    pub batches_scanned: u64,
}

/// An append that would break the segment's invariants; refused before any state changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppendInvariant {
    /// A batch would be written somewhere other than the segment's current end (a lost or
    /// repeated write); reported as KAFKA_STORAGE_ERROR.
    #[error("batch written at byte {position} but the segment holds {size} bytes")]
    NotAtTheEnd {
        /// Byte position the batch was written at.
        position: u64,
        /// Bytes the segment held before it.
        size: u64,
    },
    /// A batch's last offset is below the segment's next offset; reported as KAFKA_STORAGE_ERROR.
    #[error("batch ending at offset {last_offset} does not follow offset {next_offset}")]
    OffsetsBackwards {
        /// Offset of the batch's last record.
        last_offset: i64,
        /// The segment's next offset before the batch.
        next_offset: i64,
    },
}

/// Summary of one appended batch, used to maintain the indexes.
#[derive(Debug, Clone, Copy)]
pub struct AppendedBatch {
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// Offset of the batch's last record.
    pub last_offset: i64,
    /// The batch's max timestamp in ms, as stored (LogAppendTime already stamped).
    pub max_timestamp: i64,
    /// Byte position of the batch in the `.log` file.
    pub position: u64,
    /// Bytes of the batch, log overhead included.
    pub size: u64,
}

/// One segment of a partition log. Only the last (active) segment is appended to, through its
/// io_uring writer; a closed one changes only when compaction rewrites it.
pub struct Segment {
    /// Offset of the first record the segment may hold; also its file name stem.
    pub base_offset: i64,
    paths: SegmentPaths,
    /// Reader handle of the active segment (positional reads, sendfile, truncation), shared
    /// with in-flight fetches. `None` for a closed segment: its log is opened through the
    /// shard's descriptor cache under `cache_id` when read.
    file: Option<Rc<File>>,
    cache_id: u64,
    /// The io_uring writer, present only while this is the active segment.
    writer: Option<Rc<SegmentWriter>>,
    /// The io_uring writer of the index files, alongside `writer`.
    index_ring: Option<Rc<IndexRing>>,
    /// In direct mode, the partition's cache of its newest appends: reads of this segment
    /// look there before the file (the page cache does not hold what O_DIRECT wrote).
    tail_cache: Option<Rc<TailCache>>,
    /// Bytes fully written and visible to readers.
    size: Cell<u64>,
    /// One past the last offset stored in this segment (== base_offset when empty).
    next_offset: i64,
    offset_index: Index<OffsetEntry>,
    time_index: Index<TimeEntry>,
    bytes_since_index_entry: u64,
    /// The active segment's batches from its last index entry on (reads without a pread).
    recent: RecentBatches,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    /// Wall-clock time of the first append, for `segment.ms` rolls.
    pub first_append_ms: Option<i64>,
}

impl Segment {
    /// Creates the files of a new, empty segment.
    /// On failure nothing is left behind: a half-created segment would make every later
    /// attempt (the next append's roll) fail on the existing file.
    pub fn create(dir: &Path, base_offset: i64) -> io::Result<Self> {
        let paths = SegmentPaths::new(dir, base_offset);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&paths.log)?;
        let created = file
            .metadata()
            .and_then(|m| Self::from_parts(paths, Some(Rc::new(file)), m.len(), base_offset));
        if created.is_err() {
            remove_files(&SegmentPaths::new(dir, base_offset));
        }
        created
    }

    /// Opens an existing segment without scanning it (closed segments are trusted; the
    /// active one is checked by [`Segment::recover`]). The segment starts closed: no file
    /// stays open until [`Segment::keep_files_open`] (the active segment) or a read.
    pub fn open(dir: &Path, base_offset: i64) -> io::Result<Self> {
        let paths = SegmentPaths::new(dir, base_offset);
        let size = std::fs::metadata(&paths.log)?.len();
        let mut seg = Self::from_parts(paths, None, size, base_offset)?;
        seg.offset_index.release_file();
        seg.time_index.release_file();
        Ok(seg)
    }

    fn from_parts(
        paths: SegmentPaths,
        file: Option<Rc<File>>,
        size: u64,
        base_offset: i64,
    ) -> io::Result<Self> {
        let offset_index = Index::open(&paths.index)?;
        let time_index = Index::open(&paths.time_index)?;
        let mut seg = Self {
            base_offset,
            paths,
            file,
            cache_id: file_cache::new_id(),
            writer: None,
            index_ring: None,
            tail_cache: None,
            size: Cell::new(size),
            next_offset: base_offset,
            offset_index,
            time_index,
            bytes_since_index_entry: 0,
            recent: RecentBatches::default(),
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            first_append_ms: None,
        };
        seg.drop_index_entries_past(size)?;
        if let Some(last) = seg.time_index.last() {
            seg.max_timestamp = last.timestamp;
            seg.offset_of_max_timestamp = base_offset + i64::from(last.relative_offset);
        }
        Ok(seg)
    }

    /// Keeps the log and index files open: this segment becomes the active one.
    pub fn keep_files_open(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&self.paths.log)?;
            self.file = Some(Rc::new(file));
            file_cache::forget(self.cache_id);
        }
        self.offset_index.keep_file_open()?;
        self.time_index.keep_file_open()
    }

    /// Closes this segment's own descriptors (it stopped being active); reads reopen the log
    /// through the shard's descriptor cache. Readers holding the file keep it open.
    fn release_files(&mut self) {
        self.file = None;
        self.recent.clear();
        self.offset_index.release_file();
        self.time_index.release_file();
    }

    /// The log file: the active segment's own handle, or a closed segment's from the cache.
    pub fn file(&self) -> io::Result<Rc<File>> {
        match &self.file {
            Some(f) => Ok(f.clone()),
            None => file_cache::get_or_open(self.cache_id, &self.paths.log),
        }
    }

    fn drop_index_entries_past(&mut self, size: u64) -> io::Result<()> {
        self.offset_index
            .truncate_while(|e| u64::from(e.position) < size)?;
        let last_indexed = self
            .offset_index
            .last()
            .map(|e| e.relative_offset)
            .unwrap_or(0);
        self.time_index
            .truncate_while(|e| e.relative_offset <= last_indexed)
    }

    /// Validates batches from the last trustworthy index entry to the end of the file,
    /// truncates a torn or corrupt tail, and rebuilds the index entries it scanned.
    /// Never lets an unvalidated byte stay below `size`.
    pub fn recover(&mut self, index_interval_bytes: u64) -> io::Result<RecoveryReport> {
        let file_len = self.file()?.metadata()?.len();
        let start = self.trusted_scan_start(file_len)?;
        let mut pos = start;
        let mut batches = 0u64;
        self.size.set(start);
        self.bytes_since_index_entry = 0;
        while let Some(header) = self.read_header(pos, file_len)? {
            let total = header.len() as u64;
            let bytes = self.read_exact_at(pos, total as usize)?;
            let Ok(view) = BatchView::parse_validated(&bytes) else {
                break;
            };
            let appended = AppendedBatch {
                base_offset: view.base_offset(),
                last_offset: view.last_offset(),
                max_timestamp: view.max_timestamp(),
                position: pos,
                size: total,
            };
            if appended.last_offset < self.next_offset {
                break; // offsets must grow; anything else is not ours to serve
            }
            self.size.set(pos + total);
            self.note_appended(appended, index_interval_bytes);
            pos += total;
            batches += 1;
        }
        let truncated = file_len - self.size.get();
        if truncated > 0 {
            self.file()?.set_len(self.size.get())?;
        }
        // Recovery may block (start-up, the cleaner): the rebuilt entries go straight out.
        self.offset_index.write_unwritten()?;
        self.time_index.write_unwritten()?;
        Ok(RecoveryReport {
            truncated_bytes: truncated,
            batches_scanned: batches,
        })
    }

    /// Picks where the recovery scan starts: the last index entry if the batch found there
    /// really is the one the entry names, else the start of the file.
    fn trusted_scan_start(&mut self, file_len: u64) -> io::Result<u64> {
        while let Some(entry) = self.offset_index.last() {
            let pos = u64::from(entry.position);
            let expected_last = self.base_offset + i64::from(entry.relative_offset);
            if let Some(view_bytes) = self.read_batch_at(pos, file_len)?
                && let Ok(view) = BatchView::parse_validated(&view_bytes)
                && view.last_offset() == expected_last
            {
                self.next_offset = view.base_offset();
                self.offset_index
                    .truncate_while(|e| u64::from(e.position) < pos)?;
                let keep_rel = self.offset_index.last().map(|e| e.relative_offset);
                self.time_index
                    .truncate_while(|t| keep_rel.is_some_and(|r| t.relative_offset <= r))?;
                self.reload_max_timestamp();
                return Ok(pos);
            }
            // The entry points at something that is not a valid batch: distrust all entries.
            self.offset_index.truncate_while(|_| false)?;
        }
        self.time_index.truncate_while(|_| false)?;
        self.next_offset = self.base_offset;
        self.reload_max_timestamp();
        Ok(0)
    }

    fn reload_max_timestamp(&mut self) {
        match self.time_index.last() {
            Some(t) => {
                self.max_timestamp = t.timestamp;
                self.offset_of_max_timestamp = self.base_offset + i64::from(t.relative_offset);
            }
            None => {
                self.max_timestamp = -1;
                self.offset_of_max_timestamp = -1;
            }
        }
    }

    /// Reads the 12-byte prefix of the batch at `pos` and returns it if the whole declared
    /// batch fits in the file.
    fn read_header(&self, pos: u64, file_len: u64) -> io::Result<Option<Vec<u8>>> {
        if pos + HEADER_LEN as u64 > file_len {
            return Ok(None);
        }
        let prefix = self.read_exact_at(pos, record_batch::LOG_OVERHEAD)?;
        let Ok(total) = record_batch::total_size(&prefix) else {
            return Ok(None);
        };
        if pos + total as u64 > file_len {
            return Ok(None);
        }
        Ok(Some(vec![0u8; total]))
    }

    fn read_batch_at(&self, pos: u64, file_len: u64) -> io::Result<Option<Vec<u8>>> {
        match self.read_header(pos, file_len)? {
            Some(buf) => Ok(Some(self.read_exact_at(pos, buf.len())?)),
            None => Ok(None),
        }
    }

    fn read_exact_at(&self, pos: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        self.read_into(&*self.file()?, &mut buf, pos)?;
        Ok(buf)
    }

    /// Fills `buf` from byte `pos`: from the tail cache when it holds the range (direct
    /// mode), else a positional read of `file`, this segment's log.
    fn read_into(&self, file: &File, buf: &mut [u8], pos: u64) -> io::Result<()> {
        if let Some(cache) = &self.tail_cache
            && cache.copy_to(self.base_offset, pos, buf)
        {
            return Ok(());
        }
        file.read_exact_at(buf, pos)
    }

    /// The `len` bytes at `position` from the tail cache, when it holds all of them (direct
    /// mode only).
    pub fn cached(&self, position: u64, len: u64) -> Option<Bytes> {
        self.tail_cache
            .as_ref()?
            .get(self.base_offset, position, len)
    }

    /// Records a batch written at the end of this segment: checks that it sits exactly at
    /// the end (the segment's size is the last batch's position plus its length) and that
    /// offsets only grow, then moves the size and notes the batch. Nothing changes when a
    /// check fails: a broken invariant is reported, never written into the indexes.
    pub fn record_append(
        &mut self,
        b: AppendedBatch,
        index_interval_bytes: u64,
    ) -> Result<(), AppendInvariant> {
        self.check_append(b.position, b.last_offset)?;
        self.set_size(b.position + b.size);
        self.note_appended(b, index_interval_bytes);
        Ok(())
    }

    /// Whether a batch ending at `last_offset` written at byte `position` would follow this
    /// segment's end.
    pub fn check_append(&self, position: u64, last_offset: i64) -> Result<(), AppendInvariant> {
        if position != self.size() {
            return Err(AppendInvariant::NotAtTheEnd {
                position,
                size: self.size(),
            });
        }
        if last_offset < self.next_offset {
            return Err(AppendInvariant::OffsetsBackwards {
                last_offset,
                next_offset: self.next_offset,
            });
        }
        Ok(())
    }

    /// Records a batch that is now on disk: next offset and sparse index entries.
    pub fn note_appended(&mut self, b: AppendedBatch, index_interval_bytes: u64) {
        self.next_offset = b.last_offset + 1;
        if b.max_timestamp > self.max_timestamp {
            self.max_timestamp = b.max_timestamp;
            self.offset_of_max_timestamp = b.last_offset;
        }
        let indexed = self.offset_index.entries().is_empty()
            || self.bytes_since_index_entry >= index_interval_bytes;
        let location = BatchLocation {
            position: b.position,
            size: b.size,
            base_offset: b.base_offset,
        };
        self.recent.note(location, b.last_offset, indexed);
        if indexed {
            let relative = (b.last_offset - self.base_offset) as u32;
            // Memory only: the entries reach the files in batches (`index_tails_due`).
            self.offset_index.append(OffsetEntry {
                relative_offset: relative,
                position: b.position as u32,
            });
            let time_is_newer = self
                .time_index
                .last()
                .is_none_or(|t| self.max_timestamp > t.timestamp);
            if time_is_newer && self.max_timestamp >= 0 {
                let rel = (self.offset_of_max_timestamp - self.base_offset) as u32;
                self.time_index.append(TimeEntry {
                    timestamp: self.max_timestamp,
                    relative_offset: rel,
                });
            }
            self.bytes_since_index_entry = 0;
        }
        self.bytes_since_index_entry += b.size;
    }

    /// Opens the io_uring writer for appends as `io` says; called when this segment becomes
    /// active.
    pub async fn attach_writer(&mut self, io: &SegmentIo) -> io::Result<()> {
        let writer = SegmentWriter::open(&self.paths.log, self.base_offset, io).await?;
        let ring = IndexRing::open(&self.paths.index, &self.paths.time_index).await?;
        if let SegmentIo::Direct(cache) = io {
            self.tail_cache = Some(cache.clone());
        }
        self.writer = Some(Rc::new(writer));
        self.index_ring = Some(Rc::new(ring));
        // The ring's descriptors take the place of the plain ones: a partition still holds
        // four (`fd_budget::FDS_PER_PARTITION`); a rare rewrite or sync opens its own.
        self.offset_index.release_file();
        self.time_index.release_file();
        Ok(())
    }

    /// Takes the index entries not yet written (see [`crate::storage::index`]).
    pub fn take_index_tails(&mut self) -> IndexTails {
        IndexTails {
            offsets: self.offset_index.take_unwritten(),
            times: self.time_index.take_unwritten(),
        }
    }

    /// The index entries to write through the ring, once a batch of them has gathered in
    /// the active segment; the caller writes them in the background.
    pub fn index_tails_due(&mut self) -> Option<(Rc<IndexRing>, IndexTails)> {
        if self.offset_index.unwritten_len() < IndexRing::TAIL_BATCH {
            return None;
        }
        let ring = self.index_ring.clone()?;
        Some((ring, self.take_index_tails()))
    }

    /// Writes the unwritten index entries through the ring after every earlier write of
    /// them, then closes the ring's files; with no ring, a blocking write.
    async fn finish_index_writes(&mut self) -> io::Result<()> {
        let tails = self.take_index_tails();
        match self.index_ring.take() {
            Some(ring) => {
                ring.write(tails).await;
                match Rc::try_unwrap(ring) {
                    Ok(ring) => ring.close().await,
                    Err(_) => Ok(()), // a background write still holds it; its drop closes
                }
            }
            None => {
                write_tail_blocking(&self.paths.index, tails.offsets)?;
                write_tail_blocking(&self.paths.time_index, tails.times)
            }
        }
    }

    /// Closes the writer when the segment stops being active (after a roll or at shutdown).
    pub async fn detach_writer(&mut self) -> io::Result<()> {
        if let Some(writer) = self.writer.take() {
            writer.seal(self.size()).await?;
            writer.fdatasync().await?;
            if let Ok(writer) = Rc::try_unwrap(writer) {
                writer.close().await?;
            }
        }
        self.finish_index_writes().await?;
        self.offset_index.sync()?;
        self.time_index.sync()
    }

    /// Hands over the writer of a segment that stopped being active, so its files are
    /// flushed in the background instead of holding up the next append. The segment then
    /// holds no descriptor of its own (see [`Segment::file`]).
    pub fn retire_writer(&mut self) -> io::Result<RetiredWriter> {
        let retired = RetiredWriter {
            writer: self.writer.take(),
            index_ring: self.index_ring.take(),
            index_tails: self.take_index_tails(),
            index_paths: [self.paths.index.clone(), self.paths.time_index.clone()],
        };
        self.release_files();
        Ok(retired)
    }

    /// The active segment's io_uring writer; `None` for a closed (or retired) segment.
    pub fn writer(&self) -> Option<Rc<SegmentWriter>> {
        self.writer.clone()
    }

    /// Bytes of the `.log` file that are written and visible to readers.
    pub fn size(&self) -> u64 {
        self.size.get()
    }
    /// Sets the visible size in bytes, without touching the file (see [`Self::truncate_to`]).
    pub fn set_size(&self, size: u64) {
        self.size.set(size);
    }
    /// One past the last offset stored here; `base_offset` when empty. For a closed segment, the
    /// next segment's base offset.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    /// Sets the next offset; used at open (to the next segment's base) and when a clean or
    /// retention replaces a segment.
    pub fn set_next_offset(&mut self, next: i64) {
        self.next_offset = next;
    }
    /// Largest batch max timestamp in the segment, in ms (at open, the time index's last
    /// entry); -1 when none is known. Time retention and the compaction lag read it.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }
    /// True when the segment holds data but its offset index has no entry.
    pub fn index_is_missing(&self) -> bool {
        self.size.get() > 0 && self.offset_index.entries().is_empty()
    }
    /// True when the `.log` file holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.size.get() == 0
    }
    /// The paths of this segment's files.
    pub fn paths(&self) -> &SegmentPaths {
        &self.paths
    }

    /// Cuts a failed append's partial bytes so the next append starts on a batch boundary.
    pub fn truncate_to(&self, size: u64) -> io::Result<()> {
        self.file()?.set_len(size)?;
        self.size.set(size);
        if let Some(cache) = &self.tail_cache {
            cache.cut(self.base_offset, size);
        }
        Ok(())
    }

    /// File position of the batch that contains `offset`, scanning forward from the sparse
    /// index entry at or before it. `None` when the offset is past this segment's data.
    pub fn position_of(&self, offset: i64) -> io::Result<Option<BatchLocation>> {
        if let Some(found) = self.recent.find(offset) {
            return Ok(found);
        }
        let size = self.size.get();
        let mut pos = self
            .offset_index
            .floor(offset - self.base_offset)
            .map(|e| u64::from(e.position))
            .unwrap_or(0);
        // The floor entry names the *last* offset of its batch; if that is still below the
        // target the batch itself is skipped by the scan below.
        let mut header = [0u8; 27];
        let file = self.file()?;
        while pos + HEADER_LEN as u64 <= size {
            self.read_into(&file, &mut header, pos)?;
            let base = i64::from_be_bytes(header[0..8].try_into().expect("8 bytes"));
            let length = i32::from_be_bytes(header[8..12].try_into().expect("4 bytes"));
            let delta = i32::from_be_bytes(header[23..27].try_into().expect("4 bytes"));
            let total = record_batch::LOG_OVERHEAD as u64 + length.max(0) as u64;
            if base + i64::from(delta) >= offset {
                return Ok(Some(BatchLocation {
                    position: pos,
                    size: total,
                    base_offset: base,
                }));
            }
            pos += total;
        }
        Ok(None)
    }

    /// The first batch whose max timestamp is at least `timestamp`, found from the time
    /// index and batch headers only (a few small reads); the batch itself is read and
    /// decoded by [`TimestampLookup::resolve`], off the shard.
    pub fn locate_timestamp(&self, timestamp: i64) -> io::Result<Option<TimestampLookup>> {
        if self.max_timestamp < timestamp {
            return Ok(None);
        }
        let start_offset = self
            .time_index
            .floor(timestamp - 1)
            .map(|t| self.base_offset + i64::from(t.relative_offset))
            .unwrap_or(self.base_offset);
        let mut pos = self
            .position_of(start_offset)?
            .map(|l| l.position)
            .unwrap_or(0);
        let size = self.size.get();
        let file = self.file()?;
        let mut header = [0u8; HEADER_LEN];
        while pos + HEADER_LEN as u64 <= size {
            self.read_into(&file, &mut header, pos)?;
            let view = BatchView::parse_header(&header).map_err(io::Error::other)?;
            if view.max_timestamp >= timestamp {
                return Ok(Some(TimestampLookup {
                    file,
                    position: pos,
                    size: view.total_size,
                    timestamp,
                }));
            }
            pos += view.total_size as u64;
        }
        Ok(None)
    }

    /// Calls `f` with the file position and header of every whole batch, in order, reading
    /// headers only; stops at the first position that does not hold a batch header.
    fn for_each_header(
        &self,
        mut f: impl FnMut(u64, &BatchHeader) -> io::Result<()>,
    ) -> io::Result<()> {
        let size = self.size.get();
        let mut pos = 0u64;
        let mut header = [0u8; HEADER_LEN];
        let file = self.file()?;
        while pos + HEADER_LEN as u64 <= size {
            self.read_into(&file, &mut header, pos)?;
            let Ok(view) = BatchView::parse_header(&header) else {
                break;
            };
            f(pos, &view)?;
            pos += view.total_size as u64;
        }
        Ok(())
    }

    /// Feeds this segment's batch headers, in order, to a partition's idempotent-producer
    /// state and leader epoch cache (start-up and truncation rebuild both from the headers of
    /// every segment, oldest first, so a producer whose last batch is in an older segment is
    /// still known). A transaction marker's record is read too, for its coordinator epoch.
    pub fn scan_headers(
        &self,
        producers: &mut ProducerStates,
        epochs: &mut LeaderEpochs,
    ) -> io::Result<()> {
        self.for_each_header(|pos, view| {
            let coordinator_epoch = if view.is_control() && view.producer_id >= 0 {
                let mut whole = vec![0u8; view.total_size];
                self.read_into(&*self.file()?, &mut whole, pos)?;
                crate::protocol::control_batch::marker_info(&whole).map_or(-1, |(_, e)| e)
            } else {
                -1
            };
            let identity = BatchIdentity {
                producer_id: view.producer_id,
                producer_epoch: view.producer_epoch,
                base_sequence: view.base_sequence,
                last_offset_delta: view.last_offset_delta,
                control: view.is_control(),
                coordinator_epoch,
            };
            let last_offset = view.base_offset + i64::from(view.last_offset_delta);
            producers.record(&identity, last_offset, view.max_timestamp);
            epochs.assign(view.partition_leader_epoch, view.base_offset);
            Ok(())
        })
    }

    /// Feeds every batch of this segment to a partition's transaction index: headers only,
    /// except control batches, whose single record says COMMIT or ABORT.
    pub fn scan_transactions(&self, index: &mut TxnIndex) -> io::Result<()> {
        self.for_each_header(|pos, view| {
            if !view.is_transactional() {
                return Ok(());
            }
            let marker = if view.is_control() {
                let mut whole = vec![0u8; view.total_size];
                self.read_into(&*self.file()?, &mut whole, pos)?;
                crate::protocol::control_batch::marker_of(&whole)
            } else {
                None
            };
            // A control batch that is not a marker ends nothing: skip it.
            if !view.is_control() || marker.is_some() {
                index.note(&TxnBatch {
                    producer_id: view.producer_id,
                    base_offset: view.base_offset,
                    transactional: true,
                    marker,
                });
            }
            Ok(())
        })
    }

    /// Appends one aborted transaction to this segment's `.txnindex`. A plain blocking
    /// append: aborts are rare and the entry is 34 bytes.
    pub fn append_aborted(&self, aborted: &AbortedTxn) -> io::Result<()> {
        use std::io::Write;
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.paths.txn_index)?
            .write_all(&aborted.encode())
    }

    /// Rewrites `.txnindex` with exactly `entries` (removing it when there are none).
    pub fn rewrite_txn_index(&self, entries: &[AbortedTxn]) -> io::Result<()> {
        if entries.is_empty() {
            return match std::fs::remove_file(&self.paths.txn_index) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            };
        }
        let bytes: Vec<u8> = entries.iter().flat_map(|a| a.encode()).collect();
        let on_disk = std::fs::read(&self.paths.txn_index).unwrap_or_default();
        if on_disk == bytes {
            return Ok(());
        }
        std::fs::write(&self.paths.txn_index, bytes)
    }

    /// Removes the files of a segment that just failed to become active (best effort: the
    /// error that got us here is the one reported).
    pub fn discard(self) {
        remove_files(&self.paths);
    }

    /// Deletes the segment's files.
    pub fn delete_files(&self) -> io::Result<()> {
        for p in [
            &self.paths.log,
            &self.paths.index,
            &self.paths.time_index,
            &self.paths.txn_index,
        ] {
            match std::fs::remove_file(p) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Removes whatever files of a segment exist, ignoring errors (cleanup after a failure).
fn remove_files(paths: &SegmentPaths) {
    for p in [
        &paths.log,
        &paths.index,
        &paths.time_index,
        &paths.txn_index,
    ] {
        let _ = std::fs::remove_file(p);
    }
}

impl Drop for Segment {
    /// A segment that is gone (deleted by retention, replaced by the cleaner, or the log
    /// closed) closes its cached descriptor at once, so a deleted file's space is freed.
    fn drop(&mut self) {
        file_cache::forget(self.cache_id);
        if let Some(cache) = &self.tail_cache {
            cache.forget(self.base_offset);
        }
    }
}

/// Where a batch sits in a segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLocation {
    /// Byte position of the batch in the `.log` file.
    pub position: u64,
    /// Bytes of the batch, log overhead included.
    pub size: u64,
    /// Offset of the batch's first record.
    pub base_offset: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A segment whose creation fails half-way leaves no file, so creating it again (the
    /// next append's roll) succeeds once the cause is gone.
    #[test]
    fn a_failed_create_leaves_nothing_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = SegmentPaths::new(tmp.path(), 5);
        std::fs::create_dir(&paths.index).unwrap(); // the index cannot be opened
        assert!(Segment::create(tmp.path(), 5).is_err());
        assert!(!paths.log.exists(), "the half-created log was removed");
        std::fs::remove_dir(&paths.index).unwrap();
        let seg = Segment::create(tmp.path(), 5).expect("a retry succeeds");
        assert!(seg.is_empty() && paths.log.exists());
    }

    /// Batches of 1..=7 records with a gap of 2 offsets after every fifth (as compaction
    /// leaves), written to the file and recorded as appends.
    fn segment_with_batches(dir: &Path, interval: u64) -> Segment {
        use crate::protocol::record_batch::BatchBuilder;
        use std::io::Write;
        let mut seg = Segment::create(dir, 0).unwrap();
        let mut file = OpenOptions::new()
            .append(true)
            .open(&seg.paths.log)
            .unwrap();
        let mut base = 0i64;
        for i in 0..300i64 {
            let records = (i % 7 + 1) as i32;
            let mut batch = BatchBuilder {
                last_offset_delta: records - 1,
                record_count: records,
                ..Default::default()
            }
            .build(&vec![0u8; 40 * records as usize]);
            batch[..8].copy_from_slice(&base.to_be_bytes());
            file.write_all(&batch).unwrap();
            let appended = AppendedBatch {
                base_offset: base,
                last_offset: base + i64::from(records) - 1,
                max_timestamp: 0,
                position: seg.size(),
                size: batch.len() as u64,
            };
            seg.record_append(appended, interval).unwrap();
            base += i64::from(records) + if i % 5 == 4 { 2 } else { 0 };
        }
        seg
    }

    /// The directory of recent batches answers exactly as the index and a scan of the file
    /// do, for every offset, gaps and the end included.
    #[test]
    fn the_recent_batches_answer_as_the_file_scan_does() {
        let tmp = tempfile::tempdir().unwrap();
        let mut seg = segment_with_batches(tmp.path(), 4096);
        let end = seg.next_offset();
        let (mut from_memory, mut served) = (Vec::new(), 0);
        for offset in 0..end + 3 {
            served += usize::from(seg.recent.find(offset).is_some());
            from_memory.push(seg.position_of(offset).unwrap());
        }
        assert!(
            served > 20,
            "the directory served the newest offsets ({served})"
        );
        seg.recent.clear();
        for offset in 0..end + 3 {
            let scanned = seg.position_of(offset).unwrap();
            let remembered = from_memory[offset as usize];
            assert_eq!(
                scanned.map(|l| (l.position, l.size, l.base_offset)),
                remembered.map(|l| (l.position, l.size, l.base_offset)),
                "offset {offset}"
            );
        }
    }
}

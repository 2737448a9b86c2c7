//! The log's segment files under `__cluster_metadata-0/`: `<first index:020>.log`, each a run of
//! frames (`len`, `crc32c`, then `index: u64 LE` and the entry's bytes). Owns the file handles
//! and byte offsets; knows nothing of openraft. Runs on the controller thread; the fsyncs it
//! plans run on the flusher thread.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use super::durable::{get_frame, put_frame, sync_dir, write_all_waiting};
use super::error::QuorumStoreError;

/// One log record as stored: its Raft index and the encoded entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Record {
    /// Raft log index.
    pub index: u64,
    /// The entry as the log store encoded it.
    pub body: Vec<u8>,
}

/// The fsyncs that make a change durable; run on the flusher thread.
#[derive(Debug, Default)]
pub(super) struct SyncPlan {
    files: Vec<(PathBuf, File)>,
    removed: Vec<PathBuf>,
    dir: Option<PathBuf>,
}

impl SyncPlan {
    /// Removes the files to remove, fsyncs the files written, then the directory if an entry
    /// in it was created or removed.
    pub(super) fn run(self) -> Result<(), QuorumStoreError> {
        for path in &self.removed {
            match fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(QuorumStoreError::io("remove", path)(e));
                }
                _ => {}
            }
        }
        for (path, file) in &self.files {
            file.sync_data()
                .map_err(QuorumStoreError::io("fsync", path))?;
        }
        match &self.dir {
            Some(dir) => sync_dir(dir),
            None => Ok(()),
        }
    }
}

#[derive(Debug)]
struct Segment {
    first_index: u64,
    path: PathBuf,
    file: File,
    /// Bytes in the file.
    len: u64,
    /// Byte offset of each record; record `i` has index `first_index + i`.
    offsets: Vec<u64>,
}

impl Segment {
    fn next_index(&self) -> u64 {
        self.first_index + self.offsets.len() as u64
    }

    fn sync_handle(&self) -> Result<(PathBuf, File), QuorumStoreError> {
        let file = self
            .file
            .try_clone()
            .map_err(QuorumStoreError::io("dup", &self.path))?;
        Ok((self.path.clone(), file))
    }
}

/// The segment files of one log, oldest first; the last one takes appends.
#[derive(Debug)]
pub(super) struct Segments {
    dir: PathBuf,
    segment_bytes: u64,
    list: Vec<Segment>,
}

fn segment_path(dir: &Path, first_index: u64) -> PathBuf {
    dir.join(format!("{first_index:020}.log"))
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 {
        return None;
    }
    digits.parse().ok()
}

impl Segments {
    /// Opens every segment in `dir`, returning the records in index order. A torn tail of the
    /// last segment (short frame, bad CRC: a crash mid-append) is cut off and the cut fsynced;
    /// damage anywhere else is [`QuorumStoreError::Corrupt`]. Empty segments are removed.
    pub(super) fn open(
        dir: &Path,
        segment_bytes: u64,
    ) -> Result<(Self, Vec<Record>), QuorumStoreError> {
        let mut firsts = Vec::new();
        for entry in fs::read_dir(dir).map_err(QuorumStoreError::io("read dir", dir))? {
            let entry = entry.map_err(QuorumStoreError::io("read dir", dir))?;
            if let Some(first) = entry.file_name().to_str().and_then(parse_segment_name) {
                firsts.push(first);
            }
        }
        firsts.sort_unstable();
        let mut segments = Self {
            dir: dir.to_owned(),
            segment_bytes,
            list: Vec::new(),
        };
        let mut records = Vec::new();
        let count = firsts.len();
        for (i, first) in firsts.into_iter().enumerate() {
            segments.open_one(first, i + 1 == count, &mut records)?;
        }
        Ok((segments, records))
    }

    fn open_one(
        &mut self,
        first_index: u64,
        is_last: bool,
        out: &mut Vec<Record>,
    ) -> Result<(), QuorumStoreError> {
        let path = segment_path(&self.dir, first_index);
        let bytes = fs::read(&path).map_err(QuorumStoreError::io("read", &path))?;
        let corrupt = |offset: usize, reason: String| QuorumStoreError::Corrupt {
            path: path.clone(),
            offset: offset as u64,
            reason,
        };
        let mut offsets = Vec::new();
        let mut pos = 0;
        let mut torn = None;
        loop {
            let (body, used) = match get_frame(&bytes[pos..]) {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(reason) if is_last => {
                    torn = Some(reason);
                    break;
                }
                Err(reason) => return Err(corrupt(pos, reason)),
            };
            let index_bytes: [u8; 8] = body
                .get(..8)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| corrupt(pos, "record shorter than its index".to_owned()))?;
            let index = u64::from_le_bytes(index_bytes);
            // A record at u64::MAX leaves no index for the next one: the next expected index
            // and `next_index` overflowed (a `metadata_log_segment` fuzz input). Only a damaged
            // name or record can say it, so it is refused like any other wrong index.
            if index == u64::MAX {
                return Err(corrupt(pos, format!("index {index} leaves no next index")));
            }
            let expected = first_index + offsets.len() as u64;
            if index != expected {
                return Err(corrupt(
                    pos,
                    format!("index {index} where {expected} was expected"),
                ));
            }
            offsets.push(pos as u64);
            out.push(Record {
                index,
                body: body[8..].to_vec(),
            });
            pos += used;
        }
        if let Some(last) = self.list.last()
            && !offsets.is_empty()
            && last.next_index() != first_index
        {
            return Err(QuorumStoreError::Gap {
                expected: last.next_index(),
                found: first_index,
            });
        }
        if offsets.is_empty() {
            fs::remove_file(&path).map_err(QuorumStoreError::io("remove", &path))?;
            return sync_dir(&self.dir);
        }
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(QuorumStoreError::io("open", &path))?;
        if let Some(reason) = torn {
            tracing::warn!(path = %path.display(), at = pos, %reason, "cutting torn tail of the metadata log");
            file.set_len(pos as u64)
                .map_err(QuorumStoreError::io("truncate", &path))?;
            file.sync_all()
                .map_err(QuorumStoreError::io("fsync", &path))?;
        }
        self.list.push(Segment {
            first_index,
            path,
            file,
            len: pos as u64,
            offsets,
        });
        Ok(())
    }

    /// The index the next appended record must have, if any record is stored.
    pub(super) fn next_index(&self) -> Option<u64> {
        self.list.last().map(Segment::next_index)
    }

    /// Writes `records` (consecutive indexes, following the stored ones) to the active segment,
    /// rolling to a new one past `segment_bytes`. The data is written but not yet durable: run
    /// the returned plan for that.
    pub(super) fn append(&mut self, records: &[Record]) -> Result<SyncPlan, QuorumStoreError> {
        let mut plan = SyncPlan::default();
        let mut pending = Vec::new();
        for record in records {
            if let Some(expected) = self.next_index()
                && expected != record.index
            {
                return Err(QuorumStoreError::Gap {
                    expected,
                    found: record.index,
                });
            }
            let roll = self
                .list
                .last()
                .is_none_or(|s| s.len + pending.len() as u64 >= self.segment_bytes);
            if roll {
                self.write_pending(&mut pending, &mut plan)?;
                self.seal_active()?;
                self.create_segment(record.index)?;
                plan.dir = Some(self.dir.clone());
            }
            let mut body = Vec::with_capacity(8 + record.body.len());
            body.extend_from_slice(&record.index.to_le_bytes());
            body.extend_from_slice(&record.body);
            let active = self
                .list
                .last_mut()
                .expect("a segment exists: rolled above when the list was empty");
            active.offsets.push(active.len + pending.len() as u64);
            put_frame(&mut pending, &body)?;
        }
        self.write_pending(&mut pending, &mut plan)?;
        Ok(plan)
    }

    fn write_pending(
        &mut self,
        pending: &mut Vec<u8>,
        plan: &mut SyncPlan,
    ) -> Result<(), QuorumStoreError> {
        let Some(active) = self.list.last_mut() else {
            return Ok(());
        };
        if pending.is_empty() {
            return Ok(());
        }
        write_all_waiting(&mut active.file, pending, &active.path)
            .map_err(QuorumStoreError::io("write", &active.path))?;
        active.len += pending.len() as u64;
        pending.clear();
        plan.files.push(active.sync_handle()?);
        Ok(())
    }

    /// fsyncs the active segment before a new one is started, inline: once per
    /// `segment_bytes` of log, so rare. Then only the last segment can ever have a torn tail,
    /// and damage in a closed one is real corruption that [`open`](Self::open) refuses.
    fn seal_active(&self) -> Result<(), QuorumStoreError> {
        match self.list.last() {
            Some(active) => active
                .file
                .sync_data()
                .map_err(QuorumStoreError::io("fsync", &active.path)),
            None => Ok(()),
        }
    }

    fn create_segment(&mut self, first_index: u64) -> Result<(), QuorumStoreError> {
        let path = segment_path(&self.dir, first_index);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(QuorumStoreError::io("create", &path))?;
        // A leftover file of that name (its records were purged or truncated away) is reused
        // from byte 0.
        file.set_len(0)
            .map_err(QuorumStoreError::io("truncate", &path))?;
        self.list.push(Segment {
            first_index,
            path,
            file,
            len: 0,
            offsets: Vec::new(),
        });
        Ok(())
    }

    /// Cuts every record from `index` on (Raft's conflict truncation). Segments left empty are
    /// removed; the returned plan makes the cut durable.
    pub(super) fn truncate_from(&mut self, index: u64) -> Result<SyncPlan, QuorumStoreError> {
        let mut plan = SyncPlan::default();
        while let Some(last) = self.list.last() {
            if last.first_index < index {
                break;
            }
            if let Some(gone) = self.list.pop() {
                plan.removed.push(gone.path);
                plan.dir = Some(self.dir.clone());
            }
        }
        if let Some(last) = self.list.last_mut()
            && index < last.next_index()
        {
            let keep = usize::try_from(index - last.first_index).unwrap_or(usize::MAX);
            let cut = last.offsets[keep];
            last.file
                .set_len(cut)
                .map_err(QuorumStoreError::io("truncate", &last.path))?;
            last.offsets.truncate(keep);
            last.len = cut;
            plan.files.push(last.sync_handle()?);
        }
        Ok(plan)
    }

    /// Drops the segments whose records are all at or below `index` (after a snapshot); the
    /// returned plan removes their files. Records at or below `index` in a kept segment stay
    /// on disk and are skipped at open.
    pub(super) fn purge_upto(&mut self, index: u64) -> SyncPlan {
        let mut plan = SyncPlan::default();
        // Saturating: at open, `index` comes from the state file, and a damaged one saying
        // u64::MAX overflowed here (a `metadata_log_segment` fuzz input); no record is past
        // it, so all segments go.
        let keep_from = self
            .list
            .iter()
            .position(|s| s.next_index() > index.saturating_add(1))
            .unwrap_or(self.list.len());
        for gone in self.list.drain(..keep_from) {
            plan.removed.push(gone.path);
            plan.dir = Some(self.dir.clone());
        }
        plan
    }
}

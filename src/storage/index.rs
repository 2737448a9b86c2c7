//! Sparse offset (`.index`) and time (`.timeindex`) indexes of one segment, in Kafka's
//! on-disk format: fixed-size big-endian entries relative to the segment's base offset.
//! Entries live in memory for lookups; an append only adds to memory, and the entries not
//! yet in the file (the *unwritten tail*) are taken out in one piece and written by the
//! segment: through the shard's io_uring ring while the segment is active
//! ([`crate::storage::segment::IndexRing`]), with a plain write where blocking is allowed
//! (start-up recovery, the cleaner). The file is a cache of the log: recovery validates it and
//! rebuilds what is missing, so a tail lost in a crash costs a longer scan, never a wrong
//! answer. Only the active segment keeps its index files open; a closed segment releases them
//! after loading, and a rare rewrite reopens the file for the write only.
//! Owned by the segment, on the shard that owns the partition.
//!
//! `.index` entry: relative offset u32, file position u32 (8 bytes).
//! `.timeindex` entry: timestamp i64, relative offset u32 (12 bytes).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// One fixed-size index entry.
pub trait IndexEntry: Copy {
    /// Bytes of one entry in the file.
    const SIZE: usize;
    /// Writes the entry big-endian into `out`, which is exactly [`Self::SIZE`] bytes.
    fn encode(&self, out: &mut [u8]);
    /// Reads an entry from exactly [`Self::SIZE`] big-endian bytes.
    fn decode(buf: &[u8]) -> Self;
    /// The key entries are sorted by (offset or timestamp).
    fn key(&self) -> i64;
}

/// `.index`: maps an offset (relative to the segment base) to a byte position in `.log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    /// Last offset of the indexed batch minus the segment's base offset.
    pub relative_offset: u32,
    /// Byte position of that batch in the segment's `.log`.
    pub position: u32,
}

impl IndexEntry for OffsetEntry {
    const SIZE: usize = 8;
    fn encode(&self, out: &mut [u8]) {
        out[0..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        out[4..8].copy_from_slice(&self.position.to_be_bytes());
    }
    fn decode(buf: &[u8]) -> Self {
        Self {
            relative_offset: u32::from_be_bytes(buf[0..4].try_into().expect("4 bytes")),
            position: u32::from_be_bytes(buf[4..8].try_into().expect("4 bytes")),
        }
    }
    fn key(&self) -> i64 {
        i64::from(self.relative_offset)
    }
}

/// `.timeindex`: the largest timestamp seen so far and the offset where it was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    /// Largest batch max timestamp (ms) in the segment up to this entry.
    pub timestamp: i64,
    /// Last offset of the batch where that timestamp was seen, minus the segment's base offset.
    pub relative_offset: u32,
}

impl IndexEntry for TimeEntry {
    const SIZE: usize = 12;
    fn encode(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn decode(buf: &[u8]) -> Self {
        Self {
            timestamp: i64::from_be_bytes(buf[0..8].try_into().expect("8 bytes")),
            relative_offset: u32::from_be_bytes(buf[8..12].try_into().expect("4 bytes")),
        }
    }
    fn key(&self) -> i64 {
        self.timestamp
    }
}

/// An index file and its entries in memory.
pub struct Index<E: IndexEntry> {
    entries: Vec<E>,
    /// How many of `entries` (a prefix) are in the file or on their way to it.
    written: usize,
    path: PathBuf,
    /// Open while the segment is active; `None` after [`Index::release_file`].
    file: Option<File>,
}

fn open_rw(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

impl<E: IndexEntry> Index<E> {
    /// Opens (or creates) an index file and loads its longest sorted prefix of entries.
    /// Zero-filled tails (Kafka preallocates index files) and torn entries are dropped.
    pub fn open(path: &Path) -> io::Result<Self> {
        let mut file = open_rw(path)?;
        let mut raw = Vec::new();
        file.read_to_end(&mut raw)?;
        let mut entries: Vec<E> = Vec::with_capacity(raw.len() / E::SIZE);
        for chunk in raw.chunks_exact(E::SIZE) {
            let entry = E::decode(chunk);
            let sorted = entries.last().is_none_or(|last| entry.key() > last.key());
            if !sorted || (chunk.iter().all(|b| *b == 0) && !entries.is_empty()) {
                break;
            }
            entries.push(entry);
        }
        let mut index = Self {
            written: entries.len(),
            entries,
            path: path.to_path_buf(),
            file: Some(file),
        };
        if index.entries.len() * E::SIZE != raw.len() {
            index.rewrite()?;
        }
        Ok(index)
    }

    /// All entries in memory, in file order (keys non-decreasing).
    pub fn entries(&self) -> &[E] {
        &self.entries
    }

    /// The newest entry; `None` for an empty index.
    pub fn last(&self) -> Option<E> {
        self.entries.last().copied()
    }

    /// Appends one entry to memory only; it joins the unwritten tail (see the module doc).
    pub fn append(&mut self, entry: E) {
        self.entries.push(entry);
    }

    /// Entries not yet handed to the file.
    pub fn unwritten_len(&self) -> usize {
        self.entries.len() - self.written
    }

    /// Takes the unwritten tail: its byte position in the file and its encoded entries, or
    /// `None` when the file has them all. The entries count as written from here on; the
    /// caller writes the bytes (a failed write is only warned about: recovery rebuilds them).
    pub fn take_unwritten(&mut self) -> Option<IndexTail> {
        if self.written == self.entries.len() {
            return None;
        }
        let position = (self.written * E::SIZE) as u64;
        let mut bytes = vec![0u8; self.unwritten_len() * E::SIZE];
        for (entry, chunk) in self.entries[self.written..]
            .iter()
            .zip(bytes.chunks_exact_mut(E::SIZE))
        {
            entry.encode(chunk);
        }
        self.written = self.entries.len();
        Some(IndexTail { position, bytes })
    }

    /// Writes the unwritten tail with a blocking positional write, for the places allowed to
    /// block (start-up recovery, the cleaner, a follower's truncation).
    pub fn write_unwritten(&mut self) -> io::Result<()> {
        match self.take_unwritten() {
            Some(tail) => {
                use std::os::unix::fs::FileExt;
                self.file()?.write_all_at(&tail.bytes, tail.position)
            }
            None => Ok(()),
        }
    }

    /// The open file, or (for a closed segment) a handle opened for this one write at the
    /// end of the file.
    fn file(&self) -> io::Result<FileRef<'_>> {
        match &self.file {
            Some(f) => Ok(FileRef::Kept(f)),
            None => {
                let mut f = open_rw(&self.path)?;
                use std::io::{Seek, SeekFrom};
                f.seek(SeekFrom::End(0))?;
                Ok(FileRef::Once(f))
            }
        }
    }

    /// Closes the file (the segment stopped being active); entries stay in memory.
    pub fn release_file(&mut self) {
        self.file = None;
    }

    /// Reopens the file for appends (the segment became active).
    pub fn keep_file_open(&mut self) -> io::Result<()> {
        if self.file.is_none() {
            let mut f = open_rw(&self.path)?;
            use std::io::{Seek, SeekFrom};
            f.seek(SeekFrom::End(0))?;
            self.file = Some(f);
        }
        Ok(())
    }

    /// Keeps only the entries for which `keep` holds (a prefix), and rewrites the file.
    pub fn truncate_while(&mut self, keep: impl Fn(&E) -> bool) -> io::Result<()> {
        let n = self.entries.iter().take_while(|e| keep(e)).count();
        if n != self.entries.len() {
            self.entries.truncate(n);
            self.written = self.written.min(n);
            self.rewrite()?;
        }
        Ok(())
    }

    /// Replaces the file's contents with the in-memory entries.
    pub fn rewrite(&mut self) -> io::Result<()> {
        let mut buf = vec![0u8; self.entries.len() * E::SIZE];
        for (entry, chunk) in self.entries.iter().zip(buf.chunks_exact_mut(E::SIZE)) {
            entry.encode(chunk);
        }
        let mut file = self.file()?;
        file.set_len(0)?;
        use std::io::{Seek, SeekFrom};
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&buf)?;
        drop(file);
        self.written = self.entries.len();
        Ok(())
    }

    /// The last entry whose key is at most `key`.
    pub fn floor(&self, key: i64) -> Option<E> {
        let n = self.entries.partition_point(|e| e.key() <= key);
        n.checked_sub(1).map(|i| self.entries[i])
    }

    /// fdatasync of the index file (opened for the call when the index released it).
    pub fn sync(&self) -> io::Result<()> {
        self.file()?.sync_data()
    }
}

/// Encoded entries that belong at `position` of an index file (see [`Index::take_unwritten`]).
#[derive(Debug)]
pub struct IndexTail {
    /// Byte position in the file.
    pub position: u64,
    /// The encoded entries.
    pub bytes: Vec<u8>,
}

/// An index file borrowed from the index, or opened for a single operation.
enum FileRef<'a> {
    Kept(&'a File),
    Once(File),
}

impl std::ops::Deref for FileRef<'_> {
    type Target = File;
    fn deref(&self) -> &File {
        match self {
            FileRef::Kept(f) => f,
            FileRef::Once(f) => f,
        }
    }
}

impl Write for FileRef<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&**self).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&**self).flush()
    }
}

impl std::io::Seek for FileRef<'_> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> io::Result<u64> {
        (&**self).seek(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u32) -> OffsetEntry {
        OffsetEntry {
            relative_offset: i,
            position: i * 100,
        }
    }

    #[test]
    fn append_reload_and_floor() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut idx = Index::<OffsetEntry>::open(&path).unwrap();
        for i in 0..10u32 {
            idx.append(OffsetEntry {
                relative_offset: i * 10,
                position: i * 4096,
            });
        }
        assert_eq!(idx.unwritten_len(), 10);
        idx.write_unwritten().unwrap();
        assert_eq!(idx.unwritten_len(), 0);
        drop(idx);
        let idx = Index::<OffsetEntry>::open(&path).unwrap();
        assert_eq!(idx.entries().len(), 10);
        assert_eq!(
            idx.floor(55).unwrap(),
            OffsetEntry {
                relative_offset: 50,
                position: 5 * 4096
            }
        );
        assert_eq!(idx.floor(0).unwrap().position, 0);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 80);
    }

    /// A released index holds no descriptor; an append or rewrite opens the file for that one
    /// write, and keeping it open again appends at the end.
    #[test]
    fn a_released_index_writes_through_a_short_lived_handle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut idx = Index::<OffsetEntry>::open(&path).unwrap();
        idx.append(entry(1));
        idx.write_unwritten().unwrap();
        idx.release_file();
        assert!(idx.file.is_none());
        idx.append(entry(2));
        idx.write_unwritten().unwrap();
        idx.truncate_while(|e| e.relative_offset < 2).unwrap();
        assert!(idx.file.is_none(), "the rewrite did not keep a descriptor");
        idx.keep_file_open().unwrap();
        idx.append(entry(3));
        idx.write_unwritten().unwrap();
        let reloaded = Index::<OffsetEntry>::open(&path).unwrap();
        assert_eq!(reloaded.entries(), &[entry(1), entry(3)]);
    }

    #[test]
    fn torn_and_zero_filled_tails_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.timeindex");
        let mut idx = Index::<TimeEntry>::open(&path).unwrap();
        idx.append(TimeEntry {
            timestamp: 5,
            relative_offset: 1,
        });
        idx.append(TimeEntry {
            timestamp: 9,
            relative_offset: 3,
        });
        idx.write_unwritten().unwrap();
        drop(idx);
        let mut raw = std::fs::read(&path).unwrap();
        raw.extend_from_slice(&[0u8; 12 * 3]);
        raw.extend_from_slice(&[7u8; 5]);
        std::fs::write(&path, &raw).unwrap();
        let idx = Index::<TimeEntry>::open(&path).unwrap();
        assert_eq!(idx.entries().len(), 2);
        assert_eq!(idx.floor(8).unwrap().relative_offset, 1);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 24);
    }

    /// The tail is taken once, from where the file ends, and a truncation below it makes the
    /// next tail start at the cut.
    #[test]
    fn the_unwritten_tail_starts_where_the_file_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut idx = Index::<OffsetEntry>::open(&path).unwrap();
        idx.append(entry(1));
        idx.append(entry(2));
        let tail = idx.take_unwritten().expect("two unwritten entries");
        assert_eq!((tail.position, tail.bytes.len()), (0, 16));
        assert!(idx.take_unwritten().is_none(), "taken once");
        idx.append(entry(3));
        let tail = idx.take_unwritten().expect("one unwritten entry");
        assert_eq!((tail.position, tail.bytes.len()), (16, 8));
        idx.truncate_while(|e| e.relative_offset < 2).unwrap();
        idx.append(entry(5));
        let tail = idx.take_unwritten().expect("the entry after the cut");
        assert_eq!(tail.position, 8, "written right after the kept entry");
    }
}

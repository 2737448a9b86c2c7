//! The newest appended bytes of one partition, kept in memory in direct mode so fetches and
//! offset lookups near the log end never go to the disk. Chunks are the appends themselves
//! (shared `Bytes`, no copy on insert), in log order, keyed by segment base offset and file
//! position; the oldest are dropped past the capacity. Runs on the partition's shard.

use std::cell::RefCell;
use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

/// One append's bytes at `position` of segment `segment`.
struct Chunk {
    segment: i64,
    position: u64,
    data: Bytes,
}

impl Chunk {
    fn end(&self) -> u64 {
        self.position + self.data.len() as u64
    }
}

#[derive(Default)]
struct Chunks {
    /// In log order: (segment, position) grows from front to back.
    list: VecDeque<Chunk>,
    bytes: u64,
}

/// The tail cache of one partition (see the module doc).
pub struct TailCache {
    capacity: u64,
    chunks: RefCell<Chunks>,
}

impl TailCache {
    /// An empty cache holding up to `capacity` bytes (the newest append is kept even when it
    /// alone is larger).
    pub fn new(capacity: u64) -> Self {
        Self {
            capacity,
            chunks: RefCell::default(),
        }
    }

    /// Bytes held.
    pub fn len(&self) -> u64 {
        self.chunks.borrow().bytes
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps an append written at `position` of `segment`; older chunks go past the capacity.
    /// An append that does not follow the newest chunk (after a truncation or a roll) is fine
    /// as long as it is later in log order, which the log guarantees.
    pub fn insert(&self, segment: i64, position: u64, data: Bytes) {
        let mut c = self.chunks.borrow_mut();
        c.bytes += data.len() as u64;
        c.list.push_back(Chunk {
            segment,
            position,
            data,
        });
        while c.bytes > self.capacity && c.list.len() > 1 {
            let old = c.list.pop_front().expect("more than one chunk");
            c.bytes -= old.data.len() as u64;
        }
    }

    /// `len` bytes at `position` of `segment`, if all of them are held: a shared slice when
    /// one append holds them, else one copy.
    pub fn get(&self, segment: i64, position: u64, len: u64) -> Option<Bytes> {
        let c = self.chunks.borrow();
        let first = first_at(&c.list, segment, position)?;
        let chunk = &c.list[first];
        let start = (position - chunk.position) as usize;
        if position + len <= chunk.end() {
            return Some(chunk.data.slice(start..start + len as usize));
        }
        let mut out = BytesMut::with_capacity(len as usize);
        gather(&c.list, first, segment, position, len, |piece| {
            out.extend_from_slice(piece)
        })
        .then(|| out.freeze())
    }

    /// Fills `out` with the bytes at `position` of `segment`; false (and `out` unspecified)
    /// when they are not all held.
    pub fn copy_to(&self, segment: i64, position: u64, out: &mut [u8]) -> bool {
        let c = self.chunks.borrow();
        let Some(first) = first_at(&c.list, segment, position) else {
            return false;
        };
        let mut at = 0;
        gather(
            &c.list,
            first,
            segment,
            position,
            out.len() as u64,
            |piece| {
                out[at..at + piece.len()].copy_from_slice(piece);
                at += piece.len();
            },
        )
    }

    /// Drops what lies at or past `size` in `segment` (the segment was cut there).
    pub fn cut(&self, segment: i64, size: u64) {
        let mut c = self.chunks.borrow_mut();
        let mut kept = VecDeque::with_capacity(c.list.len());
        let mut bytes = 0;
        for mut chunk in c.list.drain(..) {
            if chunk.segment == segment && chunk.end() > size {
                if chunk.position >= size {
                    continue;
                }
                chunk.data.truncate((size - chunk.position) as usize);
            }
            bytes += chunk.data.len() as u64;
            kept.push_back(chunk);
        }
        c.list = kept;
        c.bytes = bytes;
    }

    /// Drops everything of `segment` (deleted, replaced by compaction, or reopened).
    pub fn forget(&self, segment: i64) {
        let mut c = self.chunks.borrow_mut();
        if c.list.iter().all(|chunk| chunk.segment != segment) {
            return;
        }
        c.list.retain(|chunk| chunk.segment != segment);
        c.bytes = c.list.iter().map(|chunk| chunk.data.len() as u64).sum();
    }
}

/// Index of the chunk of `segment` holding `position`.
fn first_at(list: &VecDeque<Chunk>, segment: i64, position: u64) -> Option<usize> {
    let i = list.partition_point(|c| (c.segment, c.end()) <= (segment, position));
    let chunk = list.get(i)?;
    (chunk.segment == segment && chunk.position <= position).then_some(i)
}

/// Hands the pieces of `[position, position + len)` to `f` in order, from chunk `first` on;
/// false when a gap or the end of the cache comes first.
fn gather(
    list: &VecDeque<Chunk>,
    first: usize,
    segment: i64,
    position: u64,
    len: u64,
    mut f: impl FnMut(&[u8]),
) -> bool {
    let end = position + len;
    let mut cursor = position;
    for chunk in list.range(first..) {
        if cursor == end {
            break;
        }
        if chunk.segment != segment || chunk.position > cursor || chunk.end() <= cursor {
            return false;
        }
        let from = (cursor - chunk.position) as usize;
        let to = (end.min(chunk.end()) - chunk.position) as usize;
        f(&chunk.data[from..to]);
        cursor = chunk.position + to as u64;
    }
    cursor == end
}

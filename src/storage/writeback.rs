//! Early writeback of appended log bytes (`sluice.log.writeback.bytes`). Runs on the shard
//! that owns the partition; the `sync_file_range` call itself goes to glommio's blocking pool
//! because it can wait for room in the device queue.
//!
//! Why: left alone, the kernel lets dirty pages pile up to `vm.dirty_background_ratio` (10% of
//! RAM, gigabytes here) and then throttles whichever thread dirties more, here the shard, for
//! up to 200 ms at a time (`balance_dirty_pages`). Asking for writeback every megabyte keeps
//! the dirty set small and the shard unthrottled, with no sysctl needed. It is not a flush:
//! durability is still `flush.messages` / `flush.ms` (fdatasync).

use std::cell::Cell;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;

/// Writeback covers whole pages only: the partial last page is still being appended to, and
/// a page under writeback may make the next append wait for it.
const PAGE: u64 = 4096;

/// Per-partition writeback progress in its active segment.
pub struct Writeback {
    /// Bytes between requests; 0 turns early writeback off.
    chunk: u64,
    /// (base offset of the segment, position up to which writeback was requested).
    requested: Cell<(i64, u64)>,
    /// At most one request per partition runs at a time; a skipped one is folded into the next.
    in_flight: Rc<Cell<bool>>,
}

impl Writeback {
    /// Writeback state for one partition, asking for writeback every `chunk` bytes (0: never).
    pub fn new(chunk: u64) -> Self {
        Self {
            chunk,
            requested: Cell::new((i64::MIN, 0)),
            in_flight: Rc::default(),
        }
    }

    /// The byte range of segment `base` (now `size` bytes long) due for writeback, if a
    /// whole chunk of pages has been appended since the last request.
    fn due_range(&self, base: i64, size: u64) -> Option<(u64, u64)> {
        if self.chunk == 0 || self.in_flight.get() {
            return None;
        }
        let (requested_base, requested_to) = self.requested.get();
        let from = if requested_base == base {
            requested_to
        } else {
            0
        };
        let to = size / PAGE * PAGE;
        (to >= from + self.chunk).then_some((from, to))
    }

    /// Starts writeback of the pages appended to `file` (segment `base`, `size` bytes) since
    /// the last request, when a chunk is due. Errors only warn: nothing depends on it.
    pub fn after_append(&self, file: &File, base: i64, size: u64) {
        let Some((from, to)) = self.due_range(base, size) else {
            return;
        };
        // A duplicate of the descriptor, so a segment deleted meanwhile cannot close it
        // under the blocking call (its number could be reused by another file).
        let file = match file.try_clone() {
            Ok(file) => file,
            Err(e) => {
                tracing::warn!(error = %e, "cannot start writeback");
                return;
            }
        };
        self.requested.set((base, to));
        self.in_flight.set(true);
        let in_flight = self.in_flight.clone();
        glommio::spawn_local(async move {
            let result = glommio::executor()
                .spawn_blocking(move || start_writeback(&file, from, to - from))
                .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "writeback request failed");
            }
            in_flight.set(false);
        })
        .detach();
    }
}

/// `sync_file_range(SYNC_FILE_RANGE_WRITE)`: queue the range for writeback, do not wait for it.
fn start_writeback(file: &File, offset: u64, len: u64) -> io::Result<()> {
    let (offset, len) = (offset as libc::off64_t, len as libc::off64_t);
    // SAFETY: a plain syscall on a descriptor `file` keeps open for the call's duration.
    let rc = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_due_once_a_whole_chunk_of_pages_was_appended() {
        let wb = Writeback::new(8192);
        assert_eq!(wb.due_range(0, 8191), None);
        assert_eq!(wb.due_range(0, 8192 + 100), Some((0, 8192)));
        wb.requested.set((0, 8192));
        assert_eq!(wb.due_range(0, 16383), None);
        assert_eq!(wb.due_range(0, 20000), Some((8192, 16384)));
    }

    #[test]
    fn a_new_segment_starts_from_its_beginning_and_zero_turns_it_off() {
        let wb = Writeback::new(4096);
        wb.requested.set((0, 1 << 20));
        assert_eq!(wb.due_range(500, 5000), Some((0, 4096)));
        assert_eq!(Writeback::new(0).due_range(0, 1 << 30), None);
    }

    #[test]
    fn nothing_is_due_while_a_request_runs() {
        let wb = Writeback::new(4096);
        wb.in_flight.set(true);
        assert_eq!(wb.due_range(0, 1 << 20), None);
    }

    #[test]
    fn the_syscall_accepts_a_written_range() {
        let mut file = tempfile::tempfile().expect("temp file");
        std::io::Write::write_all(&mut file, &[7u8; 3 * 4096]).expect("write");
        start_writeback(&file, 0, 2 * 4096).expect("sync_file_range");
    }
}

//! Durable-file helpers shared by the log and the snapshots: the CRC32C record frame, the
//! atomic small-file write (tmp, fsync, rename, fsync dir), writes that wait for room on a
//! full disk, and the flusher thread.
//!
//! A full disk is waited out rather than reported: openraft treats any storage error as fatal
//! and stops the node's Raft for good, so a disk that fills up for a few seconds would cost the
//! node its controller until a restart (found by the chaos harness's `disk-full` fault). The
//! quorum's writes are small and rare; while one waits, the controller thread stands still as
//! if paused (its peers elect another leader if it led), the node's heartbeats and so its
//! lease lapse, and it goes on where it stopped once there is room.
//!
//! The flusher is one plain thread per store that runs fsync jobs in submission order. openraft
//! asks `append` to return before the entries are durable and to report durability through a
//! callback; running the fsyncs here keeps the controller's runtime free, and one FIFO thread
//! (rather than `spawn_blocking`, whose jobs may finish out of order) keeps vote and log writes
//! durable in the order they were made, as openraft requires.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use super::error::QuorumStoreError;

/// Bytes before a frame's body: `len: u32 LE`, then `crc32c(body): u32 LE`.
pub(super) const FRAME_HEADER: usize = 8;

/// Appends `body` to `out` as one frame.
///
/// # Errors
/// [`QuorumStoreError::TooLarge`] for a body of 4 GiB or more (its length has 32 bits).
pub(super) fn put_frame(out: &mut Vec<u8>, body: &[u8]) -> Result<(), QuorumStoreError> {
    let len =
        u32::try_from(body.len()).map_err(|_| QuorumStoreError::TooLarge { len: body.len() })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    out.extend_from_slice(body);
    Ok(())
}

/// Reads the frame at the start of `buf`: `Ok(Some((body, frame length)))`, `Ok(None)` at the
/// end of `buf`, or `Err(reason)` when the frame is cut short or fails its CRC (a torn write).
pub(super) fn get_frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>, String> {
    if buf.is_empty() {
        return Ok(None);
    }
    let Some(header) = buf.get(..FRAME_HEADER) else {
        return Err(format!("{} bytes, shorter than a frame header", buf.len()));
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let Some(body) = buf.get(FRAME_HEADER..FRAME_HEADER + len) else {
        return Err(format!("frame of {len} bytes cut short"));
    };
    if crc32c::crc32c(body) != crc {
        return Err("CRC mismatch".to_owned());
    }
    Ok(Some((body, FRAME_HEADER + len)))
}

/// Reads a file written by [`write_atomic`]: `Ok(None)` when it does not exist.
pub(super) fn read_framed(path: &Path) -> Result<Option<Vec<u8>>, QuorumStoreError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(QuorumStoreError::io("read", path)(e)),
    };
    let corrupt = |reason: String| QuorumStoreError::Corrupt {
        path: path.to_owned(),
        offset: 0,
        reason,
    };
    match get_frame(&bytes).map_err(corrupt)? {
        Some((body, used)) if used == bytes.len() => Ok(Some(body.to_vec())),
        _ => Err(corrupt("not exactly one frame".to_owned())),
    }
}

/// Replaces `path` with one frame of `body`. With `durable`, the content and the rename are
/// fsynced before returning (write tmp, fsync, rename, fsync dir); without, a crash may leave
/// the old content, never a torn one.
pub(super) fn write_atomic(
    path: &Path,
    body: &[u8],
    durable: bool,
) -> Result<(), QuorumStoreError> {
    let tmp = tmp_path(path);
    let mut framed = Vec::with_capacity(body.len() + FRAME_HEADER);
    put_frame(&mut framed, body)?;
    let mut file = File::create(&tmp).map_err(QuorumStoreError::io("create", &tmp))?;
    write_all_waiting(&mut file, &framed, &tmp).map_err(QuorumStoreError::io("write", &tmp))?;
    if durable {
        file.sync_all()
            .map_err(QuorumStoreError::io("fsync", &tmp))?;
    }
    fs::rename(&tmp, path).map_err(QuorumStoreError::io("rename", path))?;
    if durable {
        sync_parent(path)?;
    }
    Ok(())
}

/// Writes all of `buf` at the file's position (its end, for a file opened to append),
/// waiting for room while the disk is full (see the module notes): unlike `write_all`, a
/// write cut short by ENOSPC goes on from where it stopped, so nothing is written twice.
///
/// # Errors
/// Any other write error.
pub(super) fn write_all_waiting(file: &mut File, buf: &[u8], path: &Path) -> io::Result<()> {
    let mut done = 0;
    let mut waits = 0u32;
    while done < buf.len() {
        match file.write(&buf[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if no_room(&e) => {
                if waits.is_multiple_of(50) {
                    tracing::warn!(path = %path.display(), waited_s = waits / 10,
                        "disk full: the controller log waits for room to write");
                }
                waits += 1;
                thread::sleep(ROOM_POLL);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// How often a write waiting for room tries again.
const ROOM_POLL: Duration = Duration::from_millis(100);

/// ENOSPC or EDQUOT: the write may succeed once something frees space.
fn no_room(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// `path` with `.tmp` appended: where [`write_atomic`] writes before renaming.
pub(super) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

/// fsyncs the directory holding `path`, so a create, rename or unlink in it is durable.
pub(super) fn sync_parent(path: &Path) -> Result<(), QuorumStoreError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    sync_dir(dir)
}

/// fsyncs a directory, so the entries created, renamed or removed in it are durable.
pub(super) fn sync_dir(dir: &Path) -> Result<(), QuorumStoreError> {
    OpenOptions::new()
        .read(true)
        .open(dir)
        .and_then(|d| d.sync_all())
        .map_err(QuorumStoreError::io("fsync dir", dir))
}

type Job = Box<dyn FnOnce() + Send>;

/// A thread that runs blocking durability jobs one at a time, in submission order. It exits
/// when the `Flusher` is dropped, after the jobs already queued.
/// Clones share the thread (and its order).
#[derive(Debug, Clone)]
pub(super) struct Flusher {
    tx: mpsc::Sender<Job>,
}

impl Flusher {
    /// Starts the thread.
    pub(super) fn start() -> Result<Self, QuorumStoreError> {
        let (tx, rx) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("sluice-quorum-fsync".to_owned())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .map_err(QuorumStoreError::io("spawn flusher thread", ""))?;
        Ok(Self { tx })
    }

    /// Queues `job` behind the jobs already submitted; returns at once.
    pub(super) fn submit(
        &self,
        job: impl FnOnce() + Send + 'static,
    ) -> Result<(), QuorumStoreError> {
        self.tx
            .send(Box::new(job))
            .map_err(|_| QuorumStoreError::FlusherGone)
    }

    /// Queues `job` and waits (asynchronously) for its result.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, QuorumStoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(move || {
            // The waiter may have been dropped (its future cancelled): nothing to tell then.
            let _ = tx.send(job());
        })?;
        rx.await.map_err(|_| QuorumStoreError::FlusherGone)
    }
}

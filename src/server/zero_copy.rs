//! Sending file regions to a socket. The tail of a log is in the page cache, so `sendfile`
//! moves it to the socket without a user-space copy. glommio's sockets are in blocking mode
//! and a blocking sendfile would stall the whole shard when the socket buffer is full, so
//! the socket is switched to non-blocking just for the call: whatever the socket does not
//! take at once is sent by the copying path, which awaits through io_uring.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::FileExt;

use crate::file_region::read_off_shard;
use crate::server::transport::Transport;
use futures_lite::AsyncWriteExt;

/// Largest chunk the copying path reads at once.
const COPY_CHUNK_BYTES: usize = 256 * 1024;

thread_local! {
    /// Per-shard pool of copy buffers: the copying path reuses them instead of allocating.
    static COPY_BUFFERS: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// This shard's copy-buffer pool: buffers waiting for reuse and their capacity in bytes.
pub fn pool_gauge() -> crate::metrics::PoolGauge {
    COPY_BUFFERS.with(|p| {
        let pool = p.borrow();
        crate::metrics::PoolGauge {
            copy_buffers: pool.len(),
            copy_buffer_bytes: pool.iter().map(Vec::capacity).sum(),
            ..crate::metrics::PoolGauge::default()
        }
    })
}

/// Restores the socket's file status flags when dropped.
struct NonBlockingGuard {
    fd: RawFd,
    flags: i32,
}

impl NonBlockingGuard {
    fn new(fd: RawFd) -> io::Result<Self> {
        // SAFETY: fcntl on a descriptor we own, with integer arguments only.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self { fd, flags })
    }
}

impl Drop for NonBlockingGuard {
    fn drop(&mut self) {
        // SAFETY: restoring the flags read in `new` on the same descriptor.
        unsafe { libc::fcntl(self.fd, libc::F_SETFL, self.flags) };
    }
}

/// Sends up to `len` bytes of `file` from `position` with sendfile, without blocking.
/// Returns how many bytes went out; the caller copies the rest.
pub fn sendfile_nonblocking(
    socket: RawFd,
    file: &File,
    position: u64,
    len: u64,
) -> io::Result<u64> {
    let _guard = NonBlockingGuard::new(socket)?;
    let mut offset = position as libc::off_t;
    let mut sent = 0u64;
    while sent < len {
        let want = (len - sent).min(1 << 30) as usize;
        // SAFETY: both descriptors are open for the duration of the call and `offset` is a
        // valid, exclusively borrowed off_t.
        let n = unsafe { libc::sendfile(socket, file.as_raw_fd(), &raw mut offset, want) };
        if n > 0 {
            sent += n as u64;
            continue;
        }
        if n == 0 {
            break; // file shorter than expected: the copy path will report it
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::WouldBlock => break,
            io::ErrorKind::Interrupted => continue,
            _ => return Err(err),
        }
    }
    Ok(sent)
}

/// Sends a file region by reading it into a pooled buffer and writing it through io_uring.
/// Reads from the page cache inline when the range is hot (the tail); a cold range (older
/// segments) is read on glommio's blocking pool, so a disk read never stalls the shard.
pub async fn copy_region(
    stream: &mut Transport,
    file: &File,
    mut position: u64,
    len: u64,
    cold: bool,
) -> io::Result<()> {
    let mut buffer = COPY_BUFFERS
        .with(|p| p.borrow_mut().pop())
        .unwrap_or_default();
    let end = position + len;
    while position < end {
        let chunk = ((end - position) as usize).min(COPY_CHUNK_BYTES);
        buffer.resize(chunk, 0);
        if cold {
            buffer = read_off_shard(file, buffer, position).await?;
        } else {
            file.read_exact_at(&mut buffer[..chunk], position)?;
        }
        stream.write_all(&buffer[..chunk]).await?;
        position += chunk as u64;
    }
    // Only a buffer that made it through is pooled again; an error drops it.
    COPY_BUFFERS.with(|p| {
        let mut pool = p.borrow_mut();
        if pool.len() < 16 {
            pool.push(buffer);
        }
    });
    Ok(())
}

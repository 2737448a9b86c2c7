//! Sending file regions to a socket. A region whose pages are all in the page cache (the
//! log's tail, or an older segment a consumer reads soon after it was written) goes out with
//! `sendfile`, which moves it to the socket without a user-space copy; `cachestat(2)` says
//! whether an older region is cached, without touching it. glommio's sockets are in blocking
//! mode and a blocking sendfile would stall the whole shard when the socket buffer is full,
//! so the socket is switched to non-blocking just for the call; when the socket is full, the
//! next byte goes out through glommio's own write, which waits for the socket to become
//! writable through io_uring, and sendfile resumes after it. A region not in the page cache
//! is read on glommio's blocking pool and copied, so a disk read never stalls the shard.
//! Runs on the connection's shard.

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

/// One non-blocking `send` of `bytes` with `MSG_MORE`: the kernel holds them (up to a full
/// segment) until the next write without the flag. Returns how many bytes it took; 0 when
/// the socket is full or the call fails (the caller's ordinary write then sends them, or
/// reports the error).
pub fn send_with_more(fd: RawFd, bytes: &[u8]) -> usize {
    let flags = libc::MSG_MORE | libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    // SAFETY: send(2) reads `bytes.len()` bytes from a live slice; `fd` is the connection's
    // socket, owned by the caller for the duration of the call.
    let sent = unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), flags) };
    usize::try_from(sent).unwrap_or(0)
}

/// How far one non-blocking sendfile round got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// Everything asked for went out.
    Done,
    /// The socket is full after this many bytes: wait until it is writable.
    SocketFull(u64),
    /// The file ended after this many bytes (it is shorter than the region said).
    FileEnded(u64),
}

/// Sends up to `len` bytes of `file` from `position` with sendfile, without blocking.
fn sendfile_round(socket: RawFd, file: &File, position: u64, len: u64) -> io::Result<Round> {
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
            return Ok(Round::FileEnded(sent));
        }
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::WouldBlock => return Ok(Round::SocketFull(sent)),
            io::ErrorKind::Interrupted => continue,
            _ => return Err(err),
        }
    }
    Ok(Round::Done)
}

/// Sends `len` bytes of `file` from `position` to `stream` (whose descriptor is `socket`)
/// with sendfile. When the socket is full, one byte is copied through `stream`, whose write
/// waits for the socket to drain through io_uring, and sendfile carries on after it: the
/// shard never blocks and the region never falls back to a copy. A file shorter than the
/// region is an error.
pub async fn sendfile_region(
    stream: &mut Transport,
    socket: RawFd,
    file: &File,
    mut position: u64,
    len: u64,
) -> io::Result<()> {
    let end = position + len;
    while position < end {
        match sendfile_round(socket, file, position, end - position)? {
            Round::Done => return Ok(()),
            Round::FileEnded(sent) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "segment ended {} bytes before the region",
                        end - position - sent
                    ),
                ));
            }
            Round::SocketFull(sent) => {
                #[cfg(test)]
                tests::FULL_ROUNDS.with(|n| n.set(n.get() + 1));
                position += sent;
                let mut byte = [0u8; 1];
                file.read_exact_at(&mut byte, position)?;
                stream.write_all(&byte).await?;
                position += 1;
            }
        }
    }
    Ok(())
}

/// `cachestat(2)` (Linux 6.5): the same number on every architecture, not yet in `libc`.
const SYS_CACHESTAT: libc::c_long = 451;

#[repr(C)]
struct CachestatRange {
    off: u64,
    len: u64,
}

#[repr(C)]
#[derive(Default)]
struct Cachestat {
    nr_cache: u64,
    nr_dirty: u64,
    nr_writeback: u64,
    nr_evicted: u64,
    nr_recently_evicted: u64,
}

/// Whether every page of `len` bytes of `file` from `position` is in the page cache, so
/// sendfile will not wait for the disk; `None` when the kernel cannot say (before 6.5).
pub fn in_page_cache(file: &File, position: u64, len: u64) -> Option<bool> {
    const PAGE: u64 = 4096;
    if len == 0 {
        return Some(true);
    }
    let first = position / PAGE;
    let pages = (position + len).div_ceil(PAGE) - first;
    let range = CachestatRange {
        off: first * PAGE,
        len: pages * PAGE,
    };
    let mut stat = Cachestat::default();
    // SAFETY: cachestat reads `range` and writes `stat`, both live and of the layout the
    // kernel expects (include/uapi/linux/mman.h); the descriptor is open for the call.
    let rc = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file.as_raw_fd(),
            &raw const range,
            &raw mut stat,
            0u32,
        )
    };
    (rc == 0).then_some(stat.nr_cache >= pages)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    thread_local! {
        /// Times `sendfile_region` found the socket full on this thread.
        pub static FULL_ROUNDS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
    }

    /// A file with `len` bytes of a pattern that shows any byte out of place.
    /// It lives under `target/`, on the disk: in a tmpfs the pages could not leave the cache.
    fn patterned_file(len: usize) -> (tempfile::NamedTempFile, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/target");
        let mut file = tempfile::NamedTempFile::new_in(dir).unwrap();
        file.write_all(&data).unwrap();
        (file, data)
    }

    /// Linux's version as (major, minor).
    fn kernel_version() -> (u32, u32) {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut parts = release
            .trim()
            .split(['.', '-'])
            .map(|p| p.parse().unwrap_or(0));
        (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
    }

    #[test]
    fn the_page_cache_says_what_it_holds() {
        let (file, data) = patterned_file(1 << 20);
        let f = file.as_file();
        if in_page_cache(f, 0, 1).is_none() {
            // Only a kernel without cachestat(2) may say nothing (send_region then falls back).
            assert!(
                kernel_version() < (6, 5),
                "cachestat failed on {:?}",
                kernel_version()
            );
            return;
        }
        assert_eq!(
            in_page_cache(f, 0, data.len() as u64),
            Some(true),
            "just written"
        );
        f.sync_all().unwrap();
        // SAFETY: fadvise on an open descriptor, integer arguments only.
        let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        assert_eq!(rc, 0);
        assert_eq!(
            in_page_cache(f, 4096, 8192),
            Some(false),
            "dropped from the cache"
        );
        assert_eq!(in_page_cache(f, 100, 0), Some(true), "an empty range");
    }

    /// A region far larger than the socket buffer, to a reader that drains slowly: the
    /// socket fills again and again, and every byte still arrives, in order, by sendfile.
    #[test]
    fn a_full_socket_waits_and_sendfile_carries_on() {
        let (file, data) = patterned_file(8 << 20);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let expected = data.len() - 3;
        let reader = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut got = Vec::with_capacity(expected);
            let mut buf = vec![0u8; 64 << 10];
            while got.len() < expected {
                let n = socket.read(&mut buf).unwrap();
                assert!(n > 0, "the sender closed early");
                got.extend_from_slice(&buf[..n]);
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            got
        });
        glommio::LocalExecutor::default().run(async {
            let stream = glommio::net::TcpStream::connect(addr).await.unwrap();
            let mut transport = Transport::Plain(stream);
            let fd = transport.sendfile_fd().unwrap();
            let small: libc::c_int = 32 << 10;
            // SAFETY: setsockopt on an open socket with a live c_int of the right size.
            let rc = unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_SNDBUF,
                    (&raw const small).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            assert_eq!(rc, 0);
            sendfile_region(&mut transport, fd, file.as_file(), 3, expected as u64)
                .await
                .unwrap();
        });
        assert!(FULL_ROUNDS.with(|n| n.get()) > 0, "the socket never filled");
        let got = reader.join().unwrap_or_else(|_| panic!("reader failed"));
        assert_eq!(got.len(), expected);
        assert!(got == data[3..], "bytes arrived out of place");
    }

    /// A header held back with MSG_MORE and the region after it arrive whole and in order.
    #[test]
    fn a_header_sent_with_more_goes_out_with_the_region() {
        let (file, data) = patterned_file(64 << 10);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let header = b"fetch response header".to_vec();
        let expected = header.len() + data.len();
        let reader = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut got = vec![0u8; expected];
            socket.read_exact(&mut got).unwrap();
            got
        });
        let (sent_header, len) = (header.clone(), data.len() as u64);
        glommio::LocalExecutor::default().run(async move {
            let stream = glommio::net::TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let mut transport = Transport::Plain(stream);
            let fd = transport.sendfile_fd().unwrap();
            assert_eq!(send_with_more(fd, &sent_header), sent_header.len());
            sendfile_region(&mut transport, fd, file.as_file(), 0, len)
                .await
                .unwrap();
        });
        let got = reader.join().unwrap_or_else(|_| panic!("reader failed"));
        assert!(got[..header.len()] == header[..] && got[header.len()..] == data[..]);
    }
}

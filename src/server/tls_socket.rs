//! The TCP socket under a TLS connection, buffered both ways. rustls reads 4 KiB at a time
//! and writes one TLS record (at most 16 KiB) per write; straight on the socket each of those
//! is a system call or an io_uring operation. Reads are served from a 32 KiB buffer filled by
//! one receive; writes gather in a 64 KiB buffer that goes out when full or when the
//! connection flushes (after every reply, and during the handshake). Owned by the connection's
//! task on its shard.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;

/// Bytes received at once; also what a TLS connection holds for reading.
const READ_BUFFER: usize = 32 * 1024;
/// Bytes gathered before a send; also what a TLS connection holds for writing.
const WRITE_BUFFER: usize = 64 * 1024;

/// A TLS connection's socket.
pub struct TlsSocket {
    socket: TcpStream,
    read: Box<[u8]>,
    read_at: usize,
    read_end: usize,
    write: Vec<u8>,
    /// Bytes of `write` already sent by a flush that has not finished.
    written: usize,
}

impl TlsSocket {
    /// Wraps an accepted socket.
    pub fn new(socket: TcpStream) -> Self {
        Self {
            socket,
            read: vec![0; READ_BUFFER].into_boxed_slice(),
            read_at: 0,
            read_end: 0,
            write: Vec::with_capacity(WRITE_BUFFER),
            written: 0,
        }
    }

    /// Sends what `write` holds; ready once all of it is on the socket.
    fn poll_send_buffered(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.write.len() {
            let n = ready!(Pin::new(&mut self.socket).poll_write(cx, &self.write[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.write.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for TlsSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.read_at == this.read_end {
            let n = ready!(Pin::new(&mut this.socket).poll_read(cx, &mut this.read))?;
            (this.read_at, this.read_end) = (0, n);
        }
        let n = buf.len().min(this.read_end - this.read_at);
        buf[..n].copy_from_slice(&this.read[this.read_at..this.read_at + n]);
        this.read_at += n;
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for TlsSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.write.len() + buf.len() > WRITE_BUFFER {
            ready!(this.poll_send_buffered(cx))?;
        }
        let n = buf.len().min(WRITE_BUFFER - this.write.len());
        this.write.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_buffered(cx))?;
        Pin::new(&mut this.socket).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_buffered(cx))?;
        Pin::new(&mut this.socket).poll_close(cx)
    }
}

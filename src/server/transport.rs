//! The byte stream of one connection: the TCP socket itself, or TLS over it. Frames are read
//! and replies written through it alike; only the plain socket can take file regions with
//! sendfile (TLS must encrypt, so fetch copies through the TLS stream). Owned by the
//! connection's task on its shard.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};
use futures_rustls::server::TlsStream;
use glommio::net::TcpStream;

/// A connection's stream.
pub enum Transport {
    /// PLAINTEXT and SASL_PLAINTEXT listeners.
    Plain(TcpStream),
    /// SSL and SASL_SSL listeners, after the handshake.
    Tls(Box<TlsStream<crate::server::tls_socket::TlsSocket>>),
}

impl Transport {
    /// The socket sendfile may write to: only a plain one.
    pub fn sendfile_fd(&self) -> Option<RawFd> {
        match self {
            Transport::Plain(s) => Some(s.as_raw_fd()),
            Transport::Tls(_) => None,
        }
    }

    /// Bytes that have arrived on a plain socket and wait to be read (`FIONREAD`); 0 on TLS,
    /// where what arrived is ciphertext, or if the call fails. The frame reader reads that
    /// much in one step instead of growing its steps one read at a time.
    pub fn bytes_arrived(&self) -> usize {
        let Transport::Plain(s) = self else {
            return 0;
        };
        let mut arrived: libc::c_int = 0;
        // SAFETY: FIONREAD on a socket we own writes one c_int through the pointer.
        let rc = unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONREAD, &mut arrived) };
        if rc < 0 { 0 } else { arrived.max(0) as usize }
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_close(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_close(cx),
        }
    }
}

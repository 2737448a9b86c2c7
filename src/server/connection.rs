//! One client connection on its shard: runs the TLS handshake on a TLS listener, reads
//! length-prefixed request frames, dispatches them one at a time in arrival order (as Kafka
//! does per connection), and writes the replies, sending record data straight from the page
//! cache with sendfile when it can (never through TLS, which must encrypt it). A frame that
//! is truncated, absurdly large, too slow (`server::frame` reads frames under their limits) or
//! unparseable closes only this connection, as does a reply the client stops reading for
//! `connections.max.idle.ms`.

use std::rc::Rc;

use bytes::Bytes;
use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;

use crate::acl::authorizer::ANONYMOUS;
use crate::file_region::FileRegion;
use crate::handlers::request::Reply;
use crate::protocol::fetch_response::Part;
use crate::server::ShardListener;
use crate::server::dispatch;
use crate::server::frame::{self, FrameError, SizeLimits};
use crate::server::sasl::{SaslError, SaslSession, Step};
use crate::server::tls::TlsError;
use crate::server::transport::Transport;
use crate::server::zero_copy;
use crate::shard::Shard;

/// Why a connection was closed other than by the peer between requests; logged, never sent to the
/// client.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// Reading or writing the socket failed, e.g. a reply unread for `connections.max.idle.ms`.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// No acceptable frame arrived: bad size, idle or read timeout.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A request that cannot be answered: unknown API key, version not served, malformed, or a
    /// response that cannot be encoded.
    #[error(transparent)]
    Dispatch(#[from] crate::handlers::request::DispatchError),
    /// Before SASL authentication: a request not allowed yet, or a refused bare PLAIN token.
    #[error(transparent)]
    Sasl(#[from] SaslError),
    /// On a TLS listener: the handshake failed (e.g. a plaintext client, an untrusted or
    /// expired certificate) or the certificate maps to no principal.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Smallest possible request: api key, version, correlation id, client id length.
const MIN_REQUEST_BYTES: i64 = 10;

/// Serves the connection's requests one at a time, in arrival order, on this shard. `Ok` when the
/// peer closes between requests, the shard shuts down or a failed SASL authentication has been
/// answered; otherwise the error that closed it.
pub async fn serve(
    shard: Rc<Shard>,
    stream: TcpStream,
    listener: Rc<ShardListener>,
) -> Result<(), ConnectionError> {
    stream.set_nodelay(true).map_err(std::io::Error::from)?;
    // Kafka's idle rule covers bytes out too: a reply the client stops reading for
    // connections.max.idle.ms closes the connection instead of holding the reply forever.
    if let Some(idle) = shard.config.network.idle_timeout() {
        stream
            .set_write_timeout(Some(idle))
            .map_err(std::io::Error::from)?;
    }
    // Kafka's form of a member's host, e.g. "/127.0.0.1" (shown by DescribeGroups).
    let client_host = stream
        .peer_addr()
        .map(|a| format!("/{}", a.ip()))
        .unwrap_or_default();
    let (mut stream, principal) = match &listener.tls {
        None => (Transport::Plain(stream), Rc::from(ANONYMOUS)),
        Some(tls) => {
            let timeout =
                std::time::Duration::from_millis(shard.config.network.request_read_timeout_ms);
            let (tls, principal) = tls.accept(stream, timeout).await?;
            (Transport::Tls(tls), principal)
        }
    };
    let sasl_config = &shard.config.listeners[listener.index].sasl;
    let mut sasl = SaslSession::new(listener.protocol, principal);
    loop {
        let limits = size_limits(&shard, &sasl);
        // The reservation is held until the request has been answered.
        let Some((frame, reservation)) = frame::next_frame(&shard, &mut stream, limits).await?
        else {
            return Ok(());
        };
        let frame = match sasl.step(sasl_config, &shard.cluster, frame)? {
            Step::Dispatch(frame) => frame,
            Step::Reply { reply, close } => {
                write_reply(&mut stream, reply).await?;
                if close {
                    return Ok(());
                }
                continue;
            }
        };
        shard.in_flight.set(shard.in_flight.get() + 1);
        let api_key = i16::from_be_bytes([frame[0], frame[1]]);
        let started = std::time::Instant::now();
        let peer = Peer {
            host: &client_host,
            principal: sasl.principal(),
            listener: listener.index,
        };
        let result = answer(&shard, &mut stream, frame, peer).await;
        let elapsed = started.elapsed();
        crate::metrics::with_current(|m| m.record_request(api_key, result.is_err(), elapsed));
        shard.in_flight.set(shard.in_flight.get() - 1);
        // A client over its quota is not read from until its throttle time is over (KIP-219);
        // its answered request no longer holds request memory meanwhile.
        drop(reservation);
        crate::quota::mute(&shard, result?).await;
    }
}

/// The frame sizes this connection may send now: before SASL authentication only what
/// `sasl.server.max.receive.size` allows, so an unauthenticated peer cannot make the shard hold
/// much.
fn size_limits(shard: &Shard, sasl: &SaslSession) -> SizeLimits {
    let config = &shard.config;
    // A bare SASL token (after SaslHandshake v0) may be shorter than any request.
    let min = if sasl.expects_raw_token() {
        1
    } else {
        MIN_REQUEST_BYTES
    };
    let before_auth = !sasl.is_authenticated();
    let max = if before_auth {
        config
            .network
            .sasl_server_max_receive_size
            .min(config.socket_request_max_bytes)
    } else {
        config.socket_request_max_bytes
    };
    SizeLimits {
        min,
        max: max as i64,
        before_auth,
    }
}

/// Who sent a request, and where.
pub struct Peer<'a> {
    /// Kafka's form of the client's address (`/127.0.0.1`).
    pub host: &'a str,
    /// `User:<name>` or `User:ANONYMOUS`.
    pub principal: &'a Rc<str>,
    /// Index of the listener in the configuration's `listeners`.
    pub listener: usize,
}

async fn answer(
    shard: &Rc<Shard>,
    stream: &mut Transport,
    frame: Bytes,
    peer: Peer<'_>,
) -> Result<std::time::Duration, ConnectionError> {
    let (reply, throttle) = dispatch::dispatch(shard, frame, peer).await?;
    write_reply(stream, reply).await?;
    Ok(throttle)
}

async fn write_reply(stream: &mut Transport, reply: Reply) -> Result<(), ConnectionError> {
    match reply {
        Reply::None => return Ok(()),
        Reply::Frame(bytes) => stream.write_all(&bytes).await?,
        Reply::Parts(parts) => send_parts(stream, parts).await?,
    }
    // TLS holds what it encrypted until flushed; a plain socket has nothing to flush.
    stream.flush().await?;
    Ok(())
}

/// Sends a file region: with sendfile when all its pages are in the page cache, else with a
/// copy that reads it off the shard (the data may be cold on disk). On a kernel that cannot
/// say what is cached (before 6.5), the log's tail is taken as cached, as it almost surely is.
async fn send_region(stream: &mut Transport, region: &FileRegion) -> Result<(), ConnectionError> {
    let FileRegion {
        file,
        position,
        len,
        is_tail,
        cached,
    } = region;
    if let Some(bytes) = cached {
        stream.write_all(&bytes[..*len as usize]).await?;
        return Ok(());
    }
    let in_cache = zero_copy::in_page_cache(file, *position, *len).unwrap_or(*is_tail);
    match stream.sendfile_fd() {
        Some(fd) if in_cache => {
            zero_copy::sendfile_region(stream, fd, file, *position, *len).await?;
        }
        _ => zero_copy::copy_region(stream, file, *position, *len, !in_cache).await?,
    }
    Ok(())
}

async fn send_parts(stream: &mut Transport, parts: Vec<Part>) -> Result<(), ConnectionError> {
    let mut parts = parts.into_iter().peekable();
    while let Some(part) = parts.next() {
        match part {
            Part::Bytes(bytes) => {
                // Bytes right before record data (a fetch's headers) are held back to leave in
                // the same segment as the data's first bytes rather than in one of their own.
                // The data that follows is written without the hint, which sends both.
                let more = matches!(parts.peek(), Some(Part::File(r)) if r.len > 0);
                send_bytes(stream, &bytes, more).await?;
            }
            Part::File(region) => send_region(stream, &region).await?,
        }
    }
    Ok(())
}

/// Writes `bytes`; with `more_follows` on a plain socket, first tries one non-blocking send
/// with `MSG_MORE` (whatever it could not take goes the usual way, which sends at once).
async fn send_bytes(
    stream: &mut Transport,
    bytes: &[u8],
    more_follows: bool,
) -> Result<(), ConnectionError> {
    let sent = match stream.sendfile_fd() {
        Some(fd) if more_follows => zero_copy::send_with_more(fd, bytes),
        _ => 0,
    };
    stream.write_all(&bytes[sent..]).await?;
    Ok(())
}

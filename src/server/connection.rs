//! One client connection on its shard: reads length-prefixed request frames, dispatches them
//! one at a time in arrival order (as Kafka does per connection), and writes the replies,
//! sending record data straight from the page cache with sendfile when it can. A frame that
//! is truncated, absurdly large or unparseable closes only this connection.

use std::os::fd::AsRawFd;
use std::rc::Rc;

use bytes::Bytes;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;

use crate::handlers::request::Reply;
use crate::protocol::fetch_response::Part;
use crate::server::dispatch;
use crate::server::request_memory::Reservation;
use crate::server::sasl::{SaslError, SaslSession, Step};
use crate::server::zero_copy;
use crate::shard::Shard;

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes is outside the accepted range")]
    BadFrameSize(i64),
    #[error(transparent)]
    Dispatch(#[from] crate::handlers::request::DispatchError),
    #[error(transparent)]
    Sasl(#[from] SaslError),
}

/// Smallest possible request: api key, version, correlation id, client id length.
const MIN_REQUEST_BYTES: i64 = 10;

pub async fn serve(shard: Rc<Shard>, mut stream: TcpStream) -> Result<(), ConnectionError> {
    stream.set_nodelay(true).map_err(std::io::Error::from)?;
    // Kafka's form of a member's host, e.g. "/127.0.0.1" (shown by DescribeGroups).
    let client_host = stream
        .peer_addr()
        .map(|a| format!("/{}", a.ip()))
        .unwrap_or_default();
    let mut sasl = SaslSession::new(shard.config.security_protocol);
    loop {
        // A bare SASL token (after SaslHandshake v0) may be shorter than any request.
        let min_len = if sasl.expects_raw_token() {
            1
        } else {
            MIN_REQUEST_BYTES
        };
        // The reservation is held until the request has been answered.
        let Some((frame, _reservation)) = next_frame(&shard, &mut stream, min_len).await? else {
            return Ok(());
        };
        let frame = match sasl.step(&shard.config, frame)? {
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
        let result = answer(&shard, &mut stream, frame, &client_host).await;
        let elapsed = started.elapsed();
        crate::metrics::with_current(|m| m.record_request(api_key, result.is_err(), elapsed));
        shard.in_flight.set(shard.in_flight.get() - 1);
        result?;
    }
}

async fn answer(
    shard: &Rc<Shard>,
    stream: &mut TcpStream,
    frame: Bytes,
    client_host: &str,
) -> Result<(), ConnectionError> {
    let reply = dispatch::dispatch(shard, frame, client_host).await?;
    write_reply(stream, reply).await
}

async fn write_reply(stream: &mut TcpStream, reply: Reply) -> Result<(), ConnectionError> {
    match reply {
        Reply::None => Ok(()),
        Reply::Frame(bytes) => {
            stream.write_all(&bytes).await?;
            Ok(())
        }
        Reply::Parts(parts) => send_parts(stream, parts).await,
    }
}

/// Reads the next request frame, with its reservation of the shard's request memory; `None`
/// when the peer closed cleanly between requests or the shard is shutting down.
async fn next_frame(
    shard: &Rc<Shard>,
    stream: &mut TcpStream,
    min_len: i64,
) -> Result<Option<(Bytes, Reservation)>, ConnectionError> {
    let mut size = [0u8; 4];
    let seen = shard.shutdown_event.generation();
    if shard.is_shutting_down() {
        return Ok(None);
    }
    let read = futures_lite::future::or(
        async { Some(read_prefix(stream, &mut size).await) },
        async {
            shard.shutdown_event.changed_since(seen).await;
            None
        },
    )
    .await;
    match read {
        None => return Ok(None),
        Some(Ok(false)) => return Ok(None),
        Some(Ok(true)) => {}
        Some(Err(e)) => return Err(e.into()),
    }
    let len = i32::from_be_bytes(size) as i64;
    if !(min_len..=shard.config.socket_request_max_bytes as i64).contains(&len) {
        return Err(ConnectionError::BadFrameSize(len));
    }
    let reservation = shard.request_memory.reserve(len as u64).await?;
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body).await?;
    Ok(Some((Bytes::from(body), reservation)))
}

/// Reads the 4-byte size; `Ok(false)` on a clean EOF before its first byte.
async fn read_prefix(stream: &mut TcpStream, size: &mut [u8; 4]) -> std::io::Result<bool> {
    let n = stream.read(&mut size[..]).await?;
    if n == 0 {
        return Ok(false);
    }
    stream.read_exact(&mut size[n..]).await?;
    Ok(true)
}

async fn send_parts(stream: &mut TcpStream, parts: Vec<Part>) -> Result<(), ConnectionError> {
    for part in parts {
        match part {
            Part::Bytes(bytes) => stream.write_all(&bytes).await?,
            Part::File {
                file,
                position,
                len,
                is_tail,
            } => {
                let sent = if is_tail {
                    zero_copy::sendfile_nonblocking(stream.as_raw_fd(), &file, position, len)?
                } else {
                    0
                };
                if sent < len {
                    zero_copy::copy_region(stream, &file, position + sent, len - sent, !is_tail)
                        .await?;
                }
            }
        }
    }
    Ok(())
}

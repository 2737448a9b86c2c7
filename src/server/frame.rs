//! Reading one request frame (4-byte size, then the body) from a connection, with the limits
//! that keep a client from holding the shard's resources: the size must be within the accepted
//! range (`socket.request.max.bytes`, or `sasl.server.max.receive.size` before SASL
//! authentication); a connection waiting for its next frame is closed after
//! `connections.max.idle.ms`; once a frame's first byte has arrived the whole frame must
//! arrive within `sluice.request.read.timeout.ms`; and the body is charged to the shard's
//! request memory step by step as it is read, so a frame that announces many bytes and sends
//! few holds little. Runs on the shard that owns the connection.

use std::rc::Rc;
use std::time::Duration;

use crate::server::frame_pool;
use crate::server::transport::Transport;
use bytes::Bytes;
use futures_lite::AsyncReadExt;

use crate::shard::Shard;
use crate::shard::request_memory::Reservation;

/// Why no frame was read; each closes the connection.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Reading the socket failed, or the peer closed it in the middle of a frame.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The announced size is outside the connection's `SizeLimits`; carries it (bytes).
    #[error("frame of {0} bytes is outside the accepted range")]
    BadSize(i64),
    /// Before SASL authentication, a frame larger than allowed then.
    #[error(
        "frame of {len} bytes before SASL authentication (sasl.server.max.receive.size is {max})"
    )]
    TooLargeBeforeAuth {
        /// The announced size, in bytes.
        len: i64,
        /// Largest size allowed before authentication, in bytes (`SizeLimits::max`).
        max: usize,
    },
    /// No frame began within `connections.max.idle.ms`; carries that timeout.
    #[error("no request for {0:?} (connections.max.idle.ms)")]
    Idle(Duration),
    /// A frame did not arrive whole within `sluice.request.read.timeout.ms` of its first byte;
    /// carries that timeout.
    #[error(
        "request frame not complete within {0:?} of its first byte (sluice.request.read.timeout.ms)"
    )]
    ReadTimeout(Duration),
}

impl FrameError {
    /// A timeout closed the connection (counted separately from errors).
    pub fn is_timeout(&self) -> bool {
        matches!(self, FrameError::Idle(_) | FrameError::ReadTimeout(_))
    }
}

/// Sizes a frame may have on this connection now.
#[derive(Debug, Clone, Copy)]
pub struct SizeLimits {
    /// Smallest accepted size in bytes: a request header's 10, or 1 for the bare PLAIN token after
    /// SaslHandshake v0.
    pub min: i64,
    /// Largest accepted size in bytes: `socket.request.max.bytes`, or before SASL authentication
    /// the smaller of it and `sasl.server.max.receive.size`.
    pub max: i64,
    /// Set before SASL authentication: the max is `sasl.server.max.receive.size`.
    pub before_auth: bool,
}

/// The first body read: covers every request but produces of more than a few records in one
/// step. It is also what a connection that announces a large frame and stalls can hold: at the
/// per-shard cap of 10,000 connections, 40 MiB, less than a shard's share of the default
/// `queued.max.request.bytes` on up to 25 cores.
const FIRST_STEP: usize = 4 << 10;
/// The largest step: a 100 MiB frame is read in about a hundred steps.
const MAX_STEP: usize = 1 << 20;

/// How many more body bytes to charge and read, having read `received` of `len`, with
/// `arrived` more bytes waiting in the socket: never more than what already arrived (read or
/// waiting; after the first step), so the memory a frame holds ahead of its bytes is at most
/// the bytes it sent plus 4 KiB. Reading everything that waits in one step keeps a produce
/// request that arrived whole to one read (it was about five, with the steps doubling).
fn next_step(received: usize, len: usize, arrived: usize) -> usize {
    let ahead = doubling_step(received).max(arrived.min(MAX_STEP));
    (len - received).min(ahead)
}

/// The step without knowing what arrived: as many bytes as were read, within the bounds.
fn doubling_step(received: usize) -> usize {
    received.clamp(FIRST_STEP, MAX_STEP)
}

/// Whether knowing what arrived could make the next step larger (else skip the FIONREAD).
fn worth_asking_what_arrived(received: usize, len: usize) -> bool {
    let doubling = doubling_step(received);
    len - received > doubling && doubling < MAX_STEP
}

/// What ended the wait for a frame's first byte.
enum Start {
    Read(std::io::Result<usize>),
    Shutdown,
    Idle,
}

/// Reads the next frame with its reservation of request memory; `None` when the peer closed
/// cleanly between requests or the shard is shutting down.
pub async fn next_frame(
    shard: &Rc<Shard>,
    stream: &mut Transport,
    limits: SizeLimits,
) -> Result<Option<(Bytes, Reservation)>, FrameError> {
    let mut size = [0u8; 4];
    let got = match wait_for_start(shard, stream, &mut size).await? {
        0 => return Ok(None),
        n => n,
    };
    let timeout = Duration::from_millis(shard.config.network.request_read_timeout_ms);
    let rest = async {
        stream.read_exact(&mut size[got..]).await?;
        let len = i64::from(i32::from_be_bytes(size));
        check_size(len, limits)?;
        read_body(shard, stream, len as usize).await
    };
    let timed_out = async {
        glommio::timer::sleep(timeout).await;
        Err(FrameError::ReadTimeout(timeout))
    };
    futures_lite::future::or(rest, timed_out).await.map(Some)
}

/// Waits for the first bytes of a frame (up to the 4 of its size); 0 on a clean EOF or at
/// shutdown. Idle for longer than `connections.max.idle.ms` is an error.
async fn wait_for_start(
    shard: &Rc<Shard>,
    stream: &mut Transport,
    size: &mut [u8; 4],
) -> Result<usize, FrameError> {
    let seen = shard.shutdown_event.generation();
    if shard.is_shutting_down() {
        return Ok(0);
    }
    let idle = shard.config.network.idle_timeout();
    let read = async { Start::Read(stream.read(&mut size[..]).await) };
    let shutdown = async {
        shard.shutdown_event.changed_since(seen).await;
        Start::Shutdown
    };
    let idle_for = async {
        match idle {
            Some(idle) => glommio::timer::sleep(idle).await,
            None => futures_lite::future::pending::<()>().await,
        }
        Start::Idle
    };
    match futures_lite::future::or(read, futures_lite::future::or(shutdown, idle_for)).await {
        Start::Read(n) => Ok(n?),
        Start::Shutdown => Ok(0),
        Start::Idle => Err(FrameError::Idle(idle.unwrap_or_default())),
    }
}

fn check_size(len: i64, limits: SizeLimits) -> Result<(), FrameError> {
    if (limits.min..=limits.max).contains(&len) {
        return Ok(());
    }
    if limits.before_auth && len > limits.max {
        return Err(FrameError::TooLargeBeforeAuth {
            len,
            max: limits.max as usize,
        });
    }
    Err(FrameError::BadSize(len))
}

/// Reads `len` body bytes, charging request memory one step ahead of what has arrived.
async fn read_body(
    shard: &Rc<Shard>,
    stream: &mut Transport,
    len: usize,
) -> Result<(Bytes, Reservation), FrameError> {
    let mut reservation = shard.request_memory.empty();
    let mut body = frame_pool::take();
    while body.filled() < len {
        let arrived = if worth_asking_what_arrived(body.filled(), len) {
            stream.bytes_arrived()
        } else {
            0
        };
        let step = next_step(body.filled(), len, arrived);
        shard
            .request_memory
            .grow(&mut reservation, step as u64)
            .await?;
        stream.read_exact(body.room(step)).await?;
        body.advance(step);
    }
    Ok((body.freeze(), reservation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_never_run_ahead_of_what_arrived() {
        assert_eq!(next_step(0, 10, 0), 10);
        assert_eq!(next_step(0, 10 << 20, 0), FIRST_STEP);
        assert_eq!(next_step(FIRST_STEP, 10 << 20, 0), FIRST_STEP);
        assert_eq!(next_step(100 << 10, 10 << 20, 0), 100 << 10);
        assert_eq!(next_step(5 << 20, 10 << 20, 0), MAX_STEP);
        assert_eq!(next_step((10 << 20) - 3, 10 << 20, 0), 3);
        // Summing the steps reads exactly the frame.
        let (mut read, mut steps) = (0, 0);
        while read < 10 << 20 {
            read += next_step(read, 10 << 20, 0);
            steps += 1;
        }
        assert_eq!((read, steps), (10 << 20, 18));
    }

    #[test]
    fn what_waits_in_the_socket_is_read_in_one_step() {
        // A 41 KiB produce that arrived whole: one step after the size, not five.
        assert_eq!(next_step(0, 41 << 10, 41 << 10), 41 << 10);
        // Arrived bytes never make a step pass the frame's end or MAX_STEP.
        assert_eq!(next_step(0, 41 << 10, 100 << 10), 41 << 10);
        assert_eq!(next_step(0, 10 << 20, 5 << 20), MAX_STEP);
        // Fewer arrived than the doubling step: the doubling step (bounded by what was read).
        assert_eq!(next_step(64 << 10, 10 << 20, 1 << 10), 64 << 10);
        // Never more ahead of the bytes sent than 4 KiB.
        for (received, arrived) in [(0, 0), (0, 1), (8 << 10, 3), (1 << 20, 2 << 20)] {
            let step = next_step(received, 100 << 20, arrived);
            assert!(step <= (received + arrived).max(FIRST_STEP) + FIRST_STEP);
        }
    }
}

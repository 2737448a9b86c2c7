//! Broker-to-broker requests from one shard (cluster mode): connect to another broker by its
//! id (a shard of another node, at the address its node registered), send one Kafka request
//! frame and read its one response frame, with a deadline. The replica fetcher keeps its own
//! long-lived connection per leader built from these pieces; [`Links`] keeps a few idle
//! connections per broker for occasional requests (the transaction coordinator's
//! WriteTxnMarkers, a partition leader's transaction verification), each taken out while a
//! request is in flight, so no borrow is held across an await and two requests never share a
//! socket.
//!
//! Runs on the shard's own executor (glommio sockets); nothing here blocks or locks.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use kafka_protocol::messages::ResponseHeader;
use kafka_protocol::protocol::{Decodable, HeaderVersion, Request};

use crate::shard::Shard;

/// Bound on connecting to a broker.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response frame accepted from another broker.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;
/// Idle connections kept per broker; requests in flight at once beyond this open and close
/// their own.
const IDLE_PER_BROKER: usize = 4;

/// Why a request to another broker got no usable answer.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The broker is not a live broker of the cluster's metadata.
    #[error("broker {0} has no live address")]
    NoAddress(i32),
    /// Connecting, writing or reading failed.
    #[error("connection to the broker failed: {0}")]
    Io(#[from] std::io::Error),
    /// No answer within the deadline.
    #[error("the broker did not answer within the timeout")]
    Timeout,
    /// The request did not encode or the answer did not decode.
    #[error("bad frame: {0}")]
    Decode(String),
}

/// Opens a connection to broker `broker` at the address the metadata advertises for it.
pub async fn connect(shard: &Shard, broker: i32) -> Result<TcpStream, LinkError> {
    let advertised =
        crate::metadata::brokers::advertised_broker(&shard.cluster, &shard.config, broker, 0)
            .ok_or(LinkError::NoAddress(broker))?;
    let addr = format!("{}:{}", advertised.host, advertised.port);
    let target = std::net::ToSocketAddrs::to_socket_addrs(&addr)?
        .next()
        .ok_or(LinkError::NoAddress(broker))?;
    let stream = TcpStream::connect_timeout(target, CONNECT_TIMEOUT)
        .await
        .map_err(|e| LinkError::Io(e.into()))?;
    stream
        .set_nodelay(true)
        .map_err(|e| LinkError::Io(e.into()))?;
    Ok(stream)
}

/// Frames `request` (size, header, body) for `version`.
pub fn frame<R: Request>(
    request: &R,
    version: i16,
    correlation: i32,
) -> Result<Vec<u8>, LinkError> {
    crate::client::connection::encode_request(request, version, correlation)
        .map(|b| b.to_vec())
        .map_err(|e| LinkError::Decode(e.to_string()))
}

/// Sends one frame and reads one response frame (without its size prefix).
pub async fn exchange(stream: &mut TcpStream, frame: &[u8]) -> Result<Bytes, LinkError> {
    stream.write_all(frame).await?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).await?;
    let size = usize::try_from(i32::from_be_bytes(size))
        .ok()
        .filter(|s| *s <= MAX_RESPONSE_BYTES)
        .ok_or_else(|| LinkError::Decode("response frame size out of bounds".to_string()))?;
    let mut body = vec![0u8; size];
    stream.read_exact(&mut body).await?;
    Ok(Bytes::from(body))
}

/// `work`, or [`LinkError::Timeout`] after `limit`.
pub async fn with_timeout<T>(
    limit: Duration,
    work: impl std::future::Future<Output = T>,
) -> Result<T, LinkError> {
    let timed_out = async {
        glommio::timer::sleep(limit).await;
        Err(LinkError::Timeout)
    };
    futures_lite::future::or(async { Ok(work.await) }, timed_out).await
}

/// Decodes a response frame of API request `R` at `version`, checking its correlation id.
pub fn decode_response<R: Request>(
    mut body: Bytes,
    version: i16,
    correlation: i32,
) -> Result<R::Response, LinkError>
where
    R::Response: Decodable + HeaderVersion,
{
    let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))
        .map_err(|e| LinkError::Decode(e.to_string()))?;
    if header.correlation_id != correlation {
        return Err(LinkError::Decode(format!(
            "correlation id {} for request {correlation}",
            header.correlation_id
        )));
    }
    R::Response::decode(&mut body, version).map_err(|e| LinkError::Decode(e.to_string()))
}

/// A few idle connections per broker, for request/response exchanges that are not a stream
/// (the replica fetcher has its own).
#[derive(Default)]
pub struct Links {
    idle: RefCell<HashMap<i32, Vec<TcpStream>>>,
    next_correlation: std::cell::Cell<i32>,
}

impl Links {
    /// Sends `request` to broker `broker` and waits up to `limit` for its answer, over the
    /// idle connection to it if there is one (a new one otherwise). The connection is kept
    /// for the next request only after a complete exchange: one that failed midway may hold
    /// a late answer.
    pub async fn send<R: Request>(
        &self,
        shard: &Shard,
        broker: i32,
        request: &R,
        version: i16,
        limit: Duration,
    ) -> Result<R::Response, LinkError>
    where
        R::Response: Decodable + HeaderVersion,
    {
        let correlation = self.next_correlation.get().wrapping_add(1);
        self.next_correlation.set(correlation);
        let frame = frame(request, version, correlation)?;
        let idle = self.idle.borrow_mut().get_mut(&broker).and_then(Vec::pop);
        let (stream, body) = match idle {
            Some(mut stream) => match with_timeout(limit, exchange(&mut stream, &frame)).await {
                Ok(Ok(body)) => (stream, body),
                // The broker may have closed an idle connection (a restart, an idle
                // timeout): one more try on a fresh one.
                Ok(Err(LinkError::Io(_))) => {
                    self.fresh_exchange(shard, broker, &frame, limit).await?
                }
                Ok(Err(e)) | Err(e) => return Err(e),
            },
            None => self.fresh_exchange(shard, broker, &frame, limit).await?,
        };
        let response = decode_response::<R>(body, version, correlation)?;
        let mut idle = self.idle.borrow_mut();
        let kept = idle.entry(broker).or_default();
        if kept.len() < IDLE_PER_BROKER {
            kept.push(stream);
        }
        Ok(response)
    }

    async fn fresh_exchange(
        &self,
        shard: &Shard,
        broker: i32,
        frame: &[u8],
        limit: Duration,
    ) -> Result<(TcpStream, Bytes), LinkError> {
        let mut stream = with_timeout(limit, connect(shard, broker)).await??;
        let body = with_timeout(limit, exchange(&mut stream, frame)).await??;
        Ok((stream, body))
    }

    /// Forgets the idle connections to `broker` (its address may have changed).
    pub fn forget(&self, broker: i32) {
        self.idle.borrow_mut().remove(&broker);
    }
}

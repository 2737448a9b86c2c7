//! What a request handler receives and returns, shared by `handlers` and `server` without a
//! cycle: the request context, the reply, the dispatch error, and the helpers that decode a
//! body behind the bounds check and encode a response frame. Runs on the shard that read the
//! request.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};

use crate::protocol::fetch_response::Part;
use crate::protocol::request_shapes;

/// What the connection sends back for one request.
pub enum Reply {
    /// acks=0 produce: Kafka sends nothing.
    None,
    /// A complete frame, size prefix included.
    Frame(BytesMut),
    /// A frame made of byte chunks and file regions (zero-copy fetch).
    Parts(Vec<Part>),
}

/// A request the connection cannot answer; the connection is closed, as Kafka does.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The API key is not one Sluice serves (or no Kafka API at all); carries the raw key.
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    /// A version outside the range Sluice serves for the API. ApiVersions is the exception: it
    /// gets a v0 UNSUPPORTED_VERSION answer instead.
    #[error("API {key:?} version {version} is not supported")]
    UnsupportedVersion {
        /// The API asked for.
        key: ApiKey,
        /// The version asked for.
        version: i16,
    },
    /// The header or body does not decode, or fails the bounds check; says where.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The response cannot be encoded in the request's version: a bug, logged as an error.
    #[error("cannot encode the response: {0}")]
    Encode(String),
}

/// Fields of the request header handlers need.
pub struct RequestContext {
    /// The request's API, from the header's `request_api_key`.
    pub api_key: ApiKey,
    /// The request's API version, already within the handler's `VERSIONS`.
    pub version: i16,
    /// Echoed in the response header so the client can match the answer to its request.
    pub correlation_id: i32,
    /// The header's client id; empty when the client sent null.
    pub client_id: String,
    /// The peer address as Kafka reports it (`/127.0.0.1`); DescribeGroups shows it.
    pub client_host: String,
    /// Who sent it, as the authorizer sees it: `User:<SASL user>`, or `User:ANONYMOUS` on a
    /// connection without authentication.
    pub principal: std::rc::Rc<str>,
    /// Index of the listener the request came in on (`BrokerConfig::listeners`): Metadata and
    /// FindCoordinator answer with that listener's endpoints.
    pub listener: usize,
    /// The handler's time on the shard thread and the throttle client quotas call for.
    pub clock: crate::quota::clock::HandlerClock,
}

fn encode_error(e: impl std::fmt::Display) -> DispatchError {
    DispatchError::Encode(e.to_string())
}

/// Decodes a request body of API `key`, after checking that every count and length in it
/// fits the frame (the generated decoders would otherwise allocate whatever a count claims).
pub fn decode_body<R: Decodable>(
    key: ApiKey,
    body: &mut Bytes,
    version: i16,
) -> Result<R, DispatchError> {
    request_shapes::check(key as i16, version, body)
        .map_err(|e| DispatchError::Malformed(format!("{key:?} v{version}: {e}")))?;
    R::decode(body, version).map_err(|e| DispatchError::Malformed(e.to_string()))
}

/// Encodes a response frame: size, response header, body. Fails only when a handler set a
/// field the client's version cannot carry: a bug, reported and answered by closing the
/// connection rather than by sending a wrong frame.
pub fn encode_frame<R: Encodable + HeaderVersion>(
    correlation_id: i32,
    version: i16,
    response: &R,
) -> Result<Reply, DispatchError> {
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    // Sized up front: a response carrying records (ShareFetch) would otherwise grow the
    // buffer by doubling, copying its records once per step.
    let size = response.compute_size(version).map_err(encode_error)?;
    let mut buf = BytesMut::with_capacity(4 + 8 + size);
    buf.put_i32(0);
    header
        .encode(&mut buf, R::header_version(version))
        .map_err(encode_error)?;
    response.encode(&mut buf, version).map_err(encode_error)?;
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    Ok(Reply::Frame(buf))
}

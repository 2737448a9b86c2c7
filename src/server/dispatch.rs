//! Request dispatch: reads the request header, checks the API key and version against the
//! handler registry (`handlers::SUPPORTED`, the same table ApiVersions answers from) and hands
//! the body to `handlers::serve`, which decodes it behind the bounds check, calls the API's
//! handler and encodes the response. Runs on the shard that accepted the connection.

use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;

use crate::handlers::request::{DispatchError, Reply, RequestContext};
use crate::handlers::{self, api_versions};
use crate::quota::clock::HandlerClock;
use crate::server::connection::Peer;
use crate::shard::Shard;

/// Checks one request `frame` (without its size prefix) against the registry and serves it;
/// `peer` says who sent it and on which listener. An ApiVersions in a version not served gets
/// its v0 UNSUPPORTED_VERSION answer; any other error closes the connection. Answers the reply
/// and how long client quotas want the connection muted after it (zero when not throttled).
pub async fn dispatch(
    shard: &Rc<Shard>,
    mut frame: Bytes,
    peer: Peer<'_>,
) -> Result<(Reply, Duration), DispatchError> {
    if frame.len() < 8 {
        return Err(DispatchError::Malformed(format!(
            "{}-byte request is shorter than a header",
            frame.len()
        )));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api_key = ApiKey::try_from(key).map_err(|()| DispatchError::UnknownApiKey(key))?;
    let supported = handlers::versions_of(api_key).ok_or(DispatchError::UnknownApiKey(key))?;
    if !(supported.0..=supported.1).contains(&version) {
        if api_key == ApiKey::ApiVersions {
            // Kafka answers an ApiVersions it cannot parse with a v0 body carrying
            // UNSUPPORTED_VERSION and its ranges, so the client can retry with one we speak.
            return api_versions::unsupported_version_reply(correlation_id)
                .map(|reply| (reply, Duration::ZERO));
        }
        return Err(DispatchError::UnsupportedVersion {
            key: api_key,
            version,
        });
    }
    let header = RequestHeader::decode(&mut frame, api_key.request_header_version(version))
        .map_err(|e| DispatchError::Malformed(e.to_string()))?;
    let ctx = RequestContext {
        api_key,
        version,
        correlation_id,
        client_id: header.client_id.map(|c| c.to_string()).unwrap_or_default(),
        client_host: peer.host.to_owned(),
        principal: Rc::clone(peer.principal),
        listener: peer.listener,
        clock: HandlerClock::default(),
    };
    let reply = handlers::serve(shard, &ctx, frame).await?;
    Ok((reply, ctx.clock.throttle_time()))
}

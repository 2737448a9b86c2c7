//! ApiVersions (key 18): the API keys and version ranges this broker serves, taken from the
//! handler table. Default-valued tagged fields are left out (the encoder omits them), which
//! old librdkafka clients such as Debian's kcat need.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use crate::handlers::SUPPORTED;
use crate::handlers::request::{DispatchError, Reply, RequestContext, encode_frame};
use crate::shard::Shard;

/// Versions served: every version the protocol crate has. A request in another version gets the v0
/// UNSUPPORTED_VERSION answer (`unsupported_version_reply`), not a closed connection.
pub const VERSIONS: (i16, i16) = (0, 4);

fn advertised() -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    response.api_keys = SUPPORTED
        .iter()
        .map(|(key, (min, max))| {
            let mut v = ApiVersion::default();
            v.api_key = *key as i16;
            v.min_version = *min;
            v.max_version = *max;
            v
        })
        .collect();
    response
}

/// The ranges of `SUPPORTED`, with no error: what this broker advertises is what it serves.
pub async fn handle(
    _shard: &Rc<Shard>,
    _ctx: &RequestContext,
    _request: ApiVersionsRequest,
) -> ApiVersionsResponse {
    advertised()
}

/// The v0 answer to an ApiVersions request in a version we do not speak.
pub fn unsupported_version_reply(correlation_id: i32) -> Result<Reply, DispatchError> {
    let mut response = advertised();
    response.error_code = ResponseError::UnsupportedVersion.code();
    encode_frame(correlation_id, 0, &response)
}

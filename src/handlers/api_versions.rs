//! ApiVersions (key 18): the API keys and version ranges this broker serves, taken from the
//! handler table. Default-valued tagged fields are left out (the encoder omits them), which
//! old librdkafka clients such as Debian's kcat need.
//!
//! From v3 it also lists the cluster's features (KIP-584), as Kafka 4.1 does: each supported
//! feature's version range, and the finalized level every broker of the cluster runs at.
//! Clients read three of them: `transaction.version` 2 makes Kafka's Java producer use
//! transaction version 2 (KIP-890 part 2: EndTxn v5, no AddPartitionsToTxn),
//! `group.version` 1 says the broker runs the KIP-848 consumer group protocol, and
//! `share.version` 1 that it serves share groups (KIP-932).
//! `metadata.version` and `kraft.version` are left out: their levels name Kafka's metadata log
//! record formats, which Sluice's quorum does not use, and no client decides anything by them.

use std::rc::Rc;

use kafka_protocol::ResponseError;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::SUPPORTED;
use crate::handlers::request::{DispatchError, Reply, RequestContext, encode_frame};
use crate::shard::Shard;

/// Versions served: every version the protocol crate has. A request in another version gets the v0
/// UNSUPPORTED_VERSION answer (`unsupported_version_reply`), not a closed connection.
pub const VERSIONS: (i16, i16) = (0, 4);

/// A feature: its name, the levels this broker supports and the finalized level.
struct Feature {
    name: &'static str,
    supported: (i16, i16),
    finalized: i16,
}

/// The features advertised, in Kafka's names.
const FEATURES: &[Feature] = &[
    Feature {
        name: "group.version",
        supported: (0, 1),
        finalized: 1,
    },
    Feature {
        name: "share.version",
        supported: (0, 1),
        finalized: 1,
    },
    Feature {
        name: "transaction.version",
        supported: (0, 2),
        finalized: 2,
    },
];

/// The finalized features' epoch. Kafka's is the metadata offset of the last feature change;
/// here the levels are fixed by the build, so it is constant. It must not be negative: Java
/// clients take the features of the answer with the highest epoch, starting from -1.
const FINALIZED_FEATURES_EPOCH: i64 = 1;

fn advertised() -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    response.supported_features = FEATURES
        .iter()
        .map(|f| {
            let mut k = SupportedFeatureKey::default();
            k.name = StrBytes::from_static_str(f.name);
            k.min_version = f.supported.0;
            k.max_version = f.supported.1;
            k
        })
        .collect();
    response.finalized_features_epoch = FINALIZED_FEATURES_EPOCH;
    // Kafka reports a finalized feature with min = max = its level (KIP-778).
    response.finalized_features = FEATURES
        .iter()
        .map(|f| {
            let mut k = FinalizedFeatureKey::default();
            k.name = StrBytes::from_static_str(f.name);
            k.min_version_level = f.finalized;
            k.max_version_level = f.finalized;
            k
        })
        .collect();
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
/// Without `consumer` in `group.coordinator.rebalance.protocols`, ConsumerGroupHeartbeat and
/// ConsumerGroupDescribe are left out and `group.version` is finalized at 0, as Kafka does, so
/// clients stay on the classic protocol.
pub async fn handle(
    shard: &Rc<Shard>,
    _ctx: &RequestContext,
    _request: ApiVersionsRequest,
) -> ApiVersionsResponse {
    let mut response = advertised();
    if !shard.groups.read(|c| c.config().consumer_protocol_enabled) {
        without_consumer_protocol(&mut response);
    }
    response
}

fn without_consumer_protocol(response: &mut ApiVersionsResponse) {
    let kip848 = [
        ApiKey::ConsumerGroupHeartbeat as i16,
        ApiKey::ConsumerGroupDescribe as i16,
    ];
    response.api_keys.retain(|k| !kip848.contains(&k.api_key));
    for f in &mut response.finalized_features {
        if f.name.as_str() == "group.version" {
            f.min_version_level = 0;
            f.max_version_level = 0;
        }
    }
}

/// The v0 answer to an ApiVersions request in a version we do not speak.
pub fn unsupported_version_reply(correlation_id: i32) -> Result<Reply, DispatchError> {
    let mut response = advertised();
    response.error_code = ResponseError::UnsupportedVersion.code();
    encode_frame(correlation_id, 0, &response)
}

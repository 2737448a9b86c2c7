//! Entry points for the fuzz targets (`fuzz/`) and the hostile-input tests: each takes
//! arbitrary bytes and runs one parser of the broker on them the way the broker does, so a
//! crash, abort or hang found there is one a client could cause. Nothing here runs inside the
//! broker; it is public only so that `fuzz/` and `tests/` can reach it.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::protocol::request_shapes;

/// Calls `$then!(key, Type)` for every request type Sluice decodes with the generated codec.
macro_rules! for_each_request {
    ($key:expr, $then:ident, $($args:expr),*) => {
        match $key {
            ApiKey::Produce => $then!(ProduceRequest, $($args),*),
            ApiKey::Fetch => $then!(FetchRequest, $($args),*),
            ApiKey::ListOffsets => $then!(ListOffsetsRequest, $($args),*),
            ApiKey::Metadata => $then!(MetadataRequest, $($args),*),
            ApiKey::ApiVersions => $then!(ApiVersionsRequest, $($args),*),
            ApiKey::CreateTopics => $then!(CreateTopicsRequest, $($args),*),
            ApiKey::DeleteTopics => $then!(DeleteTopicsRequest, $($args),*),
            ApiKey::CreatePartitions => $then!(CreatePartitionsRequest, $($args),*),
            ApiKey::DescribeConfigs => $then!(DescribeConfigsRequest, $($args),*),
            ApiKey::DescribeCluster => $then!(DescribeClusterRequest, $($args),*),
            ApiKey::DescribeLogDirs => $then!(DescribeLogDirsRequest, $($args),*),
            ApiKey::DescribeTopicPartitions => $then!(DescribeTopicPartitionsRequest, $($args),*),
            ApiKey::DeleteRecords => $then!(DeleteRecordsRequest, $($args),*),
            ApiKey::InitProducerId => $then!(InitProducerIdRequest, $($args),*),
            ApiKey::AlterConfigs => $then!(AlterConfigsRequest, $($args),*),
            ApiKey::IncrementalAlterConfigs => $then!(IncrementalAlterConfigsRequest, $($args),*),
            ApiKey::FindCoordinator => $then!(FindCoordinatorRequest, $($args),*),
            ApiKey::JoinGroup => $then!(JoinGroupRequest, $($args),*),
            ApiKey::SyncGroup => $then!(SyncGroupRequest, $($args),*),
            ApiKey::Heartbeat => $then!(HeartbeatRequest, $($args),*),
            ApiKey::LeaveGroup => $then!(LeaveGroupRequest, $($args),*),
            ApiKey::OffsetCommit => $then!(OffsetCommitRequest, $($args),*),
            ApiKey::OffsetFetch => $then!(OffsetFetchRequest, $($args),*),
            ApiKey::ListGroups => $then!(ListGroupsRequest, $($args),*),
            ApiKey::DescribeGroups => $then!(DescribeGroupsRequest, $($args),*),
            ApiKey::DeleteGroups => $then!(DeleteGroupsRequest, $($args),*),
            ApiKey::OffsetDelete => $then!(OffsetDeleteRequest, $($args),*),
            ApiKey::AddPartitionsToTxn => $then!(AddPartitionsToTxnRequest, $($args),*),
            ApiKey::AddOffsetsToTxn => $then!(AddOffsetsToTxnRequest, $($args),*),
            ApiKey::EndTxn => $then!(EndTxnRequest, $($args),*),
            ApiKey::TxnOffsetCommit => $then!(TxnOffsetCommitRequest, $($args),*),
            ApiKey::DescribeTransactions => $then!(DescribeTransactionsRequest, $($args),*),
            ApiKey::ListTransactions => $then!(ListTransactionsRequest, $($args),*),
            ApiKey::DescribeProducers => $then!(DescribeProducersRequest, $($args),*),
            ApiKey::SaslHandshake => $then!(SaslHandshakeRequest, $($args),*),
            ApiKey::SaslAuthenticate => $then!(SaslAuthenticateRequest, $($args),*),
            _ => None,
        }
    };
}

macro_rules! checked_decode {
    ($ty:ty, $key:expr, $version:expr, $body:expr) => {{
        let mut body = Bytes::copy_from_slice($body);
        Some(
            request_shapes::check($key as i16, $version, &body)
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    <$ty>::decode(&mut body, $version)
                        .map(drop)
                        .map_err(|e| e.to_string())
                }),
        )
    }};
}

macro_rules! default_body {
    ($ty:ty, $version:expr) => {{
        let mut buf = BytesMut::new();
        <$ty>::default()
            .encode(&mut buf, $version)
            .ok()
            .map(|()| buf.to_vec())
    }};
}

/// Decodes a request body of API `key` at `version` as dispatch does (bounds check, then the
/// generated decoder). `None` when Sluice does not decode that key with the generated codec.
pub fn decode_request_body(key: ApiKey, version: i16, body: &[u8]) -> Option<Result<(), String>> {
    for_each_request!(key, checked_decode, key, version, body)
}

/// The encoding of `Request::default()` for `key` at `version`, a well-formed starting point
/// for mutations; `None` where the generated codec has no such version.
pub fn default_request_body(key: ApiKey, version: i16) -> Option<Vec<u8>> {
    for_each_request!(key, default_body, version)
}

/// Fuzz entry for the request decoders: the first two bytes choose the API and version among
/// those Sluice serves, the rest is the body. Must never panic, abort or allocate beyond the
/// input's size times a small factor.
pub fn request_decoder(data: &[u8]) {
    let [which, version, body @ ..] = data else {
        return;
    };
    let served = crate::handlers::SUPPORTED;
    let (key, (lo, hi)) = served[*which as usize % served.len()];
    let version = lo + (*version as i16 % (hi - lo + 1));
    let _ = decode_request_body(key, version, body);
}

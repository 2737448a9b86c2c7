//! Request dispatch: checks the API key and version against the handler table, decodes the
//! header and body, calls the handler, and encodes the response with its header. One table
//! (`handlers::SUPPORTED`) drives both this and the ApiVersions answer. Runs on the shard
//! that accepted the connection.

use std::rc::Rc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion};

use crate::handlers::{self, api_versions, produce_legacy};
use crate::protocol::fetch_response::Part;
use crate::protocol::request_shapes;
use crate::shard::Shard;

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
    #[error("unknown API key {0}")]
    UnknownApiKey(i16),
    #[error("API {key:?} version {version} is not supported")]
    UnsupportedVersion { key: ApiKey, version: i16 },
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("cannot encode the response: {0}")]
    Encode(String),
}

/// Fields of the request header handlers need.
pub struct RequestContext {
    pub api_key: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
    pub client_id: String,
    /// The peer address as Kafka reports it (`/127.0.0.1`); DescribeGroups shows it.
    pub client_host: String,
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
    let mut buf = BytesMut::with_capacity(128);
    buf.put_i32(0);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    header
        .encode(&mut buf, R::header_version(version))
        .map_err(encode_error)?;
    response.encode(&mut buf, version).map_err(encode_error)?;
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    Ok(Reply::Frame(buf))
}

/// Routes a request to its handler module: decode, handle, encode.
macro_rules! route {
    ($shard:expr, $ctx:expr, $body:expr, $module:ident, $request:ty) => {{
        let request: $request = decode_body($ctx.api_key, &mut $body, $ctx.version)?;
        let response = handlers::$module::handle($shard, &$ctx, request).await;
        encode_frame($ctx.correlation_id, $ctx.version, &response)
    }};
}

pub async fn dispatch(
    shard: &Rc<Shard>,
    mut frame: Bytes,
    client_host: &str,
) -> Result<Reply, DispatchError> {
    if frame.len() < 8 {
        return Err(DispatchError::Malformed(format!(
            "{}-byte request is shorter than a header",
            frame.len()
        )));
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let api_key = ApiKey::try_from(key).map_err(|_| DispatchError::UnknownApiKey(key))?;
    let supported = handlers::versions_of(api_key).ok_or(DispatchError::UnknownApiKey(key))?;
    if !(supported.0..=supported.1).contains(&version) {
        if api_key == ApiKey::ApiVersions {
            // Kafka answers an ApiVersions it cannot parse with a v0 body carrying
            // UNSUPPORTED_VERSION and its ranges, so the client can retry with one we speak.
            return api_versions::unsupported_version_reply(correlation_id);
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
        client_host: client_host.to_owned(),
    };
    match api_key {
        ApiKey::Produce => {
            let legacy = version <= produce_legacy::LEGACY_MAX_VERSION;
            let request: ProduceRequest = if legacy {
                produce_legacy::decode(frame)?
            } else {
                decode_body(api_key, &mut frame, version)?
            };
            match handlers::produce::handle(shard, &ctx, request).await {
                Some(response) if legacy => {
                    Ok(produce_legacy::encode(correlation_id, version, &response))
                }
                Some(response) => encode_frame(correlation_id, version, &response),
                None => Ok(Reply::None),
            }
        }
        ApiKey::Fetch => {
            let request: FetchRequest = decode_body(api_key, &mut frame, version)?;
            Ok(Reply::Parts(
                handlers::fetch::handle(shard, &ctx, request).await,
            ))
        }
        ApiKey::ListOffsets => route!(shard, ctx, frame, list_offsets, ListOffsetsRequest),
        ApiKey::Metadata => route!(shard, ctx, frame, metadata, MetadataRequest),
        ApiKey::ApiVersions => route!(shard, ctx, frame, api_versions, ApiVersionsRequest),
        ApiKey::CreateTopics => route!(shard, ctx, frame, create_topics, CreateTopicsRequest),
        ApiKey::DeleteTopics => route!(shard, ctx, frame, delete_topics, DeleteTopicsRequest),
        ApiKey::CreatePartitions => route!(
            shard,
            ctx,
            frame,
            create_partitions,
            CreatePartitionsRequest
        ),
        ApiKey::DescribeConfigs => {
            route!(shard, ctx, frame, describe_configs, DescribeConfigsRequest)
        }
        ApiKey::DescribeCluster => {
            route!(shard, ctx, frame, describe_cluster, DescribeClusterRequest)
        }
        ApiKey::DeleteRecords => route!(shard, ctx, frame, delete_records, DeleteRecordsRequest),
        ApiKey::InitProducerId => {
            route!(shard, ctx, frame, init_producer_id, InitProducerIdRequest)
        }
        ApiKey::AlterConfigs => {
            let request: AlterConfigsRequest = decode_body(api_key, &mut frame, version)?;
            let response = handlers::alter_configs::handle_alter(shard, request).await;
            encode_frame(correlation_id, version, &response)
        }
        ApiKey::IncrementalAlterConfigs => {
            let request: IncrementalAlterConfigsRequest =
                decode_body(api_key, &mut frame, version)?;
            let response = handlers::alter_configs::handle_incremental(shard, request).await;
            encode_frame(correlation_id, version, &response)
        }
        // Reached only on an open connection (PLAINTEXT, or already authenticated); the
        // connection's SASL session answers them during authentication.
        ApiKey::SaslHandshake => {
            let request: SaslHandshakeRequest = decode_body(api_key, &mut frame, version)?;
            let response = handlers::sasl_handshake::handle_open(
                shard.config.security_protocol,
                &shard.config.sasl,
                request,
            );
            encode_frame(correlation_id, version, &response)
        }
        ApiKey::SaslAuthenticate => {
            let request: SaslAuthenticateRequest = decode_body(api_key, &mut frame, version)?;
            let response = handlers::sasl_authenticate::handle_open(request);
            encode_frame(correlation_id, version, &response)
        }
        ApiKey::FindCoordinator => {
            route!(shard, ctx, frame, find_coordinator, FindCoordinatorRequest)
        }
        ApiKey::JoinGroup => route!(shard, ctx, frame, join_group, JoinGroupRequest),
        ApiKey::SyncGroup => route!(shard, ctx, frame, sync_group, SyncGroupRequest),
        ApiKey::Heartbeat => route!(shard, ctx, frame, heartbeat, HeartbeatRequest),
        ApiKey::LeaveGroup => route!(shard, ctx, frame, leave_group, LeaveGroupRequest),
        ApiKey::OffsetCommit => route!(shard, ctx, frame, offset_commit, OffsetCommitRequest),
        ApiKey::OffsetFetch => route!(shard, ctx, frame, offset_fetch, OffsetFetchRequest),
        ApiKey::ListGroups => route!(shard, ctx, frame, list_groups, ListGroupsRequest),
        ApiKey::DescribeGroups => {
            route!(shard, ctx, frame, describe_groups, DescribeGroupsRequest)
        }
        ApiKey::DeleteGroups => route!(shard, ctx, frame, delete_groups, DeleteGroupsRequest),
        ApiKey::OffsetDelete => route!(shard, ctx, frame, offset_delete, OffsetDeleteRequest),
        ApiKey::AddPartitionsToTxn => route!(
            shard,
            ctx,
            frame,
            add_partitions_to_txn,
            AddPartitionsToTxnRequest
        ),
        ApiKey::AddOffsetsToTxn => {
            route!(
                shard,
                ctx,
                frame,
                add_offsets_to_txn,
                AddOffsetsToTxnRequest
            )
        }
        ApiKey::EndTxn => route!(shard, ctx, frame, end_txn, EndTxnRequest),
        ApiKey::TxnOffsetCommit => {
            route!(shard, ctx, frame, txn_offset_commit, TxnOffsetCommitRequest)
        }
        ApiKey::DescribeTransactions => route!(
            shard,
            ctx,
            frame,
            describe_transactions,
            DescribeTransactionsRequest
        ),
        ApiKey::DescribeProducers => {
            route!(
                shard,
                ctx,
                frame,
                describe_producers,
                DescribeProducersRequest
            )
        }
        ApiKey::ListTransactions => {
            route!(
                shard,
                ctx,
                frame,
                list_transactions,
                ListTransactionsRequest
            )
        }
        ApiKey::DescribeLogDirs => {
            route!(shard, ctx, frame, describe_log_dirs, DescribeLogDirsRequest)
        }
        ApiKey::DescribeTopicPartitions => {
            route!(
                shard,
                ctx,
                frame,
                describe_topic_partitions,
                DescribeTopicPartitionsRequest
            )
        }
        other => Err(DispatchError::UnknownApiKey(other as i16)),
    }
}

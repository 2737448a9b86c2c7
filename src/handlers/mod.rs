//! One module per Kafka API. Each declares the versions it implements next to its handler;
//! the registry below lists every API once, and dispatch ([`serve`]), the ApiVersions answer
//! ([`SUPPORTED`]) and the fuzz decoders are generated from it, so what Sluice advertises is
//! exactly what it serves. `request` holds what handlers and the server share. Handlers run on
//! the shard that received the request.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_client_quotas;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_share_group_offsets;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_share_group_offsets;
pub mod delete_share_group_state;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_client_quotas;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_share_group_offsets;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod produce_legacy;
pub mod read_share_group_state;
pub mod request;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod share_acknowledge;
pub mod share_fetch;
pub mod share_group_describe;
pub mod share_group_heartbeat;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod write_share_group_state;
pub mod write_txn_markers;

use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::quota::throttle_field::ThrottleTime;
use crate::shard::Shard;
use request::{DispatchError, Reply, RequestContext, decode_body, encode_frame};

/// The registry: every API Sluice serves, once. Each `decoded` entry names its request type,
/// its handler (`async fn(&Rc<Shard>, &RequestContext, Request) -> Response`) and its versions;
/// each `framed` entry's handler takes the undecoded body and returns the reply itself
/// (Produce: v0-v2 framed by hand, acks=0 unanswered; Fetch: zero-copy parts). Dispatch,
/// ApiVersions (`SUPPORTED`) and the fuzz decoders are generated from it, so an API cannot be
/// advertised without being served.
macro_rules! registry {
    (
        decoded { $( $key:ident($request:ty) => $module:ident::$handler:ident, $versions:expr; )* }
        framed { $( $fkey:ident($frequest:ty) => $fmodule:ident::$fhandler:ident, $fversions:expr; )* }
    ) => {
        /// Every API Sluice serves, with the inclusive version range its handler implements.
        pub const SUPPORTED: &[(ApiKey, (i16, i16))] = &[
            $( (ApiKey::$fkey, $fversions), )*
            $( (ApiKey::$key, $versions), )*
        ];

        /// Decodes, handles and encodes one request whose header `ctx` describes; `body` is
        /// what follows the header.
        pub async fn serve(
            shard: &Rc<Shard>,
            ctx: &RequestContext,
            mut body: Bytes,
        ) -> Result<Reply, DispatchError> {
            // Handler time is counted for `request_percentage` (see `quota::clock`); the
            // framed handlers apply their quotas themselves, the decoded ones here.
            match ctx.api_key {
                $( ApiKey::$fkey => metered(shard, ctx, $fmodule::$fhandler(shard, ctx, body)).await, )*
                $( ApiKey::$key => {
                    let request: $request = decode_body(ctx.api_key, &mut body, ctx.version)?;
                    let mut response = metered(shard, ctx, $module::$handler(shard, ctx, request)).await;
                    throttle(shard, ctx, &mut response);
                    encode_frame(ctx.correlation_id, ctx.version, &response)
                } )*
                other => Err(DispatchError::UnknownApiKey(other as i16)),
            }
        }

        /// Decodes a body of API `key` as dispatch does (bounds check, then the generated
        /// decoder) without serving it: the fuzz targets' view of the decoders. `None` for an
        /// API Sluice does not serve.
        pub fn decode_only(key: ApiKey, version: i16, body: &[u8]) -> Option<Result<(), String>> {
            let mut body = Bytes::copy_from_slice(body);
            let checked = crate::protocol::request_shapes::check(key as i16, version, &body)
                .map_err(|e| e.to_string());
            Some(match key {
                $( ApiKey::$fkey => checked.and_then(|()| {
                    <$frequest>::decode(&mut body, version).map(drop).map_err(|e| e.to_string())
                }), )*
                $( ApiKey::$key => checked.and_then(|()| {
                    <$request>::decode(&mut body, version).map(drop).map_err(|e| e.to_string())
                }), )*
                _ => return None,
            })
        }

        /// The encoding of the request type's `Default` for `key` at `version`; `None` where the
        /// generated codec has no such version (Produce v0-v2) or Sluice does not serve `key`.
        pub fn default_request_body(key: ApiKey, version: i16) -> Option<Vec<u8>> {
            let mut buf = BytesMut::new();
            let encoded = match key {
                $( ApiKey::$fkey => <$frequest>::default().encode(&mut buf, version), )*
                $( ApiKey::$key => <$request>::default().encode(&mut buf, version), )*
                _ => return None,
            };
            encoded.ok().map(|()| buf.to_vec())
        }
    };
}

registry! {
    decoded {
        ListOffsets(ListOffsetsRequest) => list_offsets::handle, list_offsets::VERSIONS;
        Metadata(MetadataRequest) => metadata::handle, metadata::VERSIONS;
        ApiVersions(ApiVersionsRequest) => api_versions::handle, api_versions::VERSIONS;
        CreateTopics(CreateTopicsRequest) => create_topics::handle, create_topics::VERSIONS;
        DeleteTopics(DeleteTopicsRequest) => delete_topics::handle, delete_topics::VERSIONS;
        CreatePartitions(CreatePartitionsRequest) => create_partitions::handle, create_partitions::VERSIONS;
        DescribeConfigs(DescribeConfigsRequest) => describe_configs::handle, describe_configs::VERSIONS;
        DescribeCluster(DescribeClusterRequest) => describe_cluster::handle, describe_cluster::VERSIONS;
        DescribeQuorum(DescribeQuorumRequest) => describe_quorum::handle, describe_quorum::VERSIONS;
        DescribeLogDirs(DescribeLogDirsRequest) => describe_log_dirs::handle, describe_log_dirs::VERSIONS;
        DescribeTopicPartitions(DescribeTopicPartitionsRequest) => describe_topic_partitions::handle, describe_topic_partitions::VERSIONS;
        DeleteRecords(DeleteRecordsRequest) => delete_records::handle, delete_records::VERSIONS;
        InitProducerId(InitProducerIdRequest) => init_producer_id::handle, init_producer_id::VERSIONS;
        AlterConfigs(AlterConfigsRequest) => alter_configs::handle_alter, alter_configs::VERSIONS;
        IncrementalAlterConfigs(IncrementalAlterConfigsRequest) => alter_configs::handle_incremental, alter_configs::INCREMENTAL_VERSIONS;
        FindCoordinator(FindCoordinatorRequest) => find_coordinator::handle, find_coordinator::VERSIONS;
        JoinGroup(JoinGroupRequest) => join_group::handle, join_group::VERSIONS;
        SyncGroup(SyncGroupRequest) => sync_group::handle, sync_group::VERSIONS;
        Heartbeat(HeartbeatRequest) => heartbeat::handle, heartbeat::VERSIONS;
        LeaveGroup(LeaveGroupRequest) => leave_group::handle, leave_group::VERSIONS;
        OffsetCommit(OffsetCommitRequest) => offset_commit::handle, offset_commit::VERSIONS;
        OffsetFetch(OffsetFetchRequest) => offset_fetch::handle, offset_fetch::VERSIONS;
        ListGroups(ListGroupsRequest) => list_groups::handle, list_groups::VERSIONS;
        DescribeGroups(DescribeGroupsRequest) => describe_groups::handle, describe_groups::VERSIONS;
        DeleteGroups(DeleteGroupsRequest) => delete_groups::handle, delete_groups::VERSIONS;
        OffsetDelete(OffsetDeleteRequest) => offset_delete::handle, offset_delete::VERSIONS;
        ElectLeaders(ElectLeadersRequest) => elect_leaders::handle, elect_leaders::VERSIONS;
        AlterPartitionReassignments(AlterPartitionReassignmentsRequest) => alter_partition_reassignments::handle, alter_partition_reassignments::VERSIONS;
        ListPartitionReassignments(ListPartitionReassignmentsRequest) => list_partition_reassignments::handle, list_partition_reassignments::VERSIONS;
        OffsetForLeaderEpoch(OffsetForLeaderEpochRequest) => offset_for_leader_epoch::handle, offset_for_leader_epoch::VERSIONS;
        AddPartitionsToTxn(AddPartitionsToTxnRequest) => add_partitions_to_txn::handle, add_partitions_to_txn::VERSIONS;
        AddOffsetsToTxn(AddOffsetsToTxnRequest) => add_offsets_to_txn::handle, add_offsets_to_txn::VERSIONS;
        EndTxn(EndTxnRequest) => end_txn::handle, end_txn::VERSIONS;
        TxnOffsetCommit(TxnOffsetCommitRequest) => txn_offset_commit::handle, txn_offset_commit::VERSIONS;
        WriteTxnMarkers(WriteTxnMarkersRequest) => write_txn_markers::handle, write_txn_markers::VERSIONS;
        DescribeTransactions(DescribeTransactionsRequest) => describe_transactions::handle, describe_transactions::VERSIONS;
        ListTransactions(ListTransactionsRequest) => list_transactions::handle, list_transactions::VERSIONS;
        DescribeProducers(DescribeProducersRequest) => describe_producers::handle, describe_producers::VERSIONS;
        SaslHandshake(SaslHandshakeRequest) => sasl_handshake::handle, sasl_handshake::VERSIONS;
        SaslAuthenticate(SaslAuthenticateRequest) => sasl_authenticate::handle, sasl_authenticate::VERSIONS;
        CreateAcls(CreateAclsRequest) => create_acls::handle, create_acls::VERSIONS;
        DescribeAcls(DescribeAclsRequest) => describe_acls::handle, describe_acls::VERSIONS;
        DeleteAcls(DeleteAclsRequest) => delete_acls::handle, delete_acls::VERSIONS;
        DescribeUserScramCredentials(DescribeUserScramCredentialsRequest) => describe_user_scram_credentials::handle, describe_user_scram_credentials::VERSIONS;
        AlterUserScramCredentials(AlterUserScramCredentialsRequest) => alter_user_scram_credentials::handle, alter_user_scram_credentials::VERSIONS;
        DescribeClientQuotas(DescribeClientQuotasRequest) => describe_client_quotas::handle, describe_client_quotas::VERSIONS;
        AlterClientQuotas(AlterClientQuotasRequest) => alter_client_quotas::handle, alter_client_quotas::VERSIONS;
        ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest) => consumer_group_heartbeat::handle, consumer_group_heartbeat::VERSIONS;
        ConsumerGroupDescribe(ConsumerGroupDescribeRequest) => consumer_group_describe::handle, consumer_group_describe::VERSIONS;
        ShareGroupHeartbeat(ShareGroupHeartbeatRequest) => share_group_heartbeat::handle, share_group_heartbeat::VERSIONS;
        ShareGroupDescribe(ShareGroupDescribeRequest) => share_group_describe::handle, share_group_describe::VERSIONS;
        ShareFetch(ShareFetchRequest) => share_fetch::handle, share_fetch::VERSIONS;
        ShareAcknowledge(ShareAcknowledgeRequest) => share_acknowledge::handle, share_acknowledge::VERSIONS;
        DescribeShareGroupOffsets(DescribeShareGroupOffsetsRequest) => describe_share_group_offsets::handle, describe_share_group_offsets::VERSIONS;
        AlterShareGroupOffsets(AlterShareGroupOffsetsRequest) => alter_share_group_offsets::handle, alter_share_group_offsets::VERSIONS;
        DeleteShareGroupOffsets(DeleteShareGroupOffsetsRequest) => delete_share_group_offsets::handle, delete_share_group_offsets::VERSIONS;
        ReadShareGroupState(ReadShareGroupStateRequest) => read_share_group_state::handle, read_share_group_state::VERSIONS;
        WriteShareGroupState(WriteShareGroupStateRequest) => write_share_group_state::handle, write_share_group_state::VERSIONS;
        DeleteShareGroupState(DeleteShareGroupStateRequest) => delete_share_group_state::handle, delete_share_group_state::VERSIONS;
    }
    framed {
        Produce(ProduceRequest) => produce::serve, produce::VERSIONS;
        Fetch(FetchRequest) => fetch::serve, fetch::VERSIONS;
    }
}

/// Runs a handler, timing it for `request_percentage` only when some client quota is
/// configured: the timing boxes the handler's future and reads the clock around every poll,
/// which produce and fetch should not pay for nothing.
async fn metered<F: std::future::Future>(
    shard: &Shard,
    ctx: &RequestContext,
    handler: F,
) -> F::Output {
    if crate::quota::any_configured(shard) {
        ctx.clock.time(handler).await
    } else {
        handler.await
    }
}

/// Applies `request_percentage` to a decoded API's response: its `throttle_time_ms` and the
/// connection's mute. APIs whose responses have no throttle field are not metered.
fn throttle<R: ThrottleTime>(shard: &Shard, ctx: &RequestContext, response: &mut R) {
    if R::THROTTLED {
        response.set_throttle_time_ms(crate::quota::request(shard, ctx));
    }
}

/// The version range Sluice serves for `key`, from `SUPPORTED`; `None` for an API it does not
/// serve.
pub fn versions_of(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// The topics the coordinators own (Kafka's internal topics): clients may not append to them
/// or delete them.
pub fn is_internal_topic(name: &str) -> bool {
    name == crate::shard::offsets_log::OFFSETS_TOPIC || name == crate::shard::txns::TXN_TOPIC
}

pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

pub(crate) fn topic_name(s: &str) -> TopicName {
    TopicName(str_bytes(s))
}

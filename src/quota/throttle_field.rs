//! Setting a response's `throttle_time_ms` without knowing its type: the registry's dispatch
//! (`handlers::serve`) calls [`ThrottleTime::set_throttle_time_ms`] on whatever its handler
//! answered. Responses without the field (SASL, inter-broker and quorum APIs, which Kafka
//! does not throttle either) get a no-op and are exempt from `request_percentage`. The
//! protocol crate leaves the field out of versions that lack it, so setting it is always
//! safe.

use kafka_protocol::messages::*;

/// A response that may carry a throttle time.
pub trait ThrottleTime {
    /// Whether the response has the field at all (else its request is not metered).
    const THROTTLED: bool;
    /// Sets the field; a no-op where the response has none.
    fn set_throttle_time_ms(&mut self, ms: i32);
}

macro_rules! throttled {
    ($($response:ty),* $(,)?) => {$(
        impl ThrottleTime for $response {
            const THROTTLED: bool = true;
            fn set_throttle_time_ms(&mut self, ms: i32) {
                self.throttle_time_ms = ms;
            }
        }
    )*};
}

macro_rules! unthrottled {
    ($($response:ty),* $(,)?) => {$(
        impl ThrottleTime for $response {
            const THROTTLED: bool = false;
            fn set_throttle_time_ms(&mut self, _ms: i32) {}
        }
    )*};
}

throttled!(
    ListOffsetsResponse,
    MetadataResponse,
    ApiVersionsResponse,
    CreateTopicsResponse,
    DeleteTopicsResponse,
    CreatePartitionsResponse,
    DescribeConfigsResponse,
    DescribeClusterResponse,
    DescribeLogDirsResponse,
    DescribeTopicPartitionsResponse,
    DeleteRecordsResponse,
    InitProducerIdResponse,
    AlterConfigsResponse,
    IncrementalAlterConfigsResponse,
    FindCoordinatorResponse,
    JoinGroupResponse,
    SyncGroupResponse,
    HeartbeatResponse,
    LeaveGroupResponse,
    OffsetCommitResponse,
    OffsetFetchResponse,
    ListGroupsResponse,
    DescribeGroupsResponse,
    DeleteGroupsResponse,
    OffsetDeleteResponse,
    ElectLeadersResponse,
    AlterPartitionReassignmentsResponse,
    ListPartitionReassignmentsResponse,
    OffsetForLeaderEpochResponse,
    AddPartitionsToTxnResponse,
    AddOffsetsToTxnResponse,
    EndTxnResponse,
    TxnOffsetCommitResponse,
    DescribeTransactionsResponse,
    ListTransactionsResponse,
    DescribeProducersResponse,
    CreateAclsResponse,
    DescribeAclsResponse,
    DeleteAclsResponse,
    DescribeUserScramCredentialsResponse,
    AlterUserScramCredentialsResponse,
    DescribeClientQuotasResponse,
    AlterClientQuotasResponse,
    ConsumerGroupHeartbeatResponse,
    ConsumerGroupDescribeResponse,
    ShareGroupHeartbeatResponse,
    ShareGroupDescribeResponse,
    ShareFetchResponse,
    ShareAcknowledgeResponse,
    DescribeShareGroupOffsetsResponse,
    AlterShareGroupOffsetsResponse,
    DeleteShareGroupOffsetsResponse,
);

unthrottled!(
    DescribeQuorumResponse,
    WriteTxnMarkersResponse,
    ReadShareGroupStateResponse,
    WriteShareGroupStateResponse,
    DeleteShareGroupStateResponse,
    SaslHandshakeResponse,
    SaslAuthenticateResponse,
);

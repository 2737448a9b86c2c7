//! Conversions between the `kafka-protocol` request/response structs of every supported API
//! version and the version-free types of the group coordinator.
//!
//! Used by the handlers on the shard that owns the group's `__consumer_offsets` partition. All
//! version rules that the state machine should not know live here: v0 JoinGroup has no
//! rebalance timeout, JoinGroup v4+ requires a known member id, protocol names are nullable
//! only from JoinGroup v7, LeaveGroup batches from v3, OffsetFetch batches groups from v8.

use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    GroupId, HeartbeatRequest as WireHeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest,
    OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest,
    SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::offsets::{
    CommitPartition, CommitTopic, FetchedTopic, OffsetCommit, TopicErrors, TopicPartitions,
};
use super::types::{
    GroupDescription, GroupListing, HeartbeatRequest, JoinRequest, JoinResponse, LeaveResponse,
    LeavingMember, Protocol, SyncRequest, SyncResponse,
};

fn text(s: &StrBytes) -> String {
    s.as_str().to_owned()
}

fn opt_text(s: Option<&StrBytes>) -> Option<String> {
    s.map(text)
}

fn wire(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn opt_wire(s: Option<&str>) -> Option<StrBytes> {
    s.map(wire)
}

fn code(error: Option<ResponseError>) -> i16 {
    error.map_or(0, |e| e.code())
}

// ----- JoinGroup -----

/// Group id and normalised request. `client_id` and `client_host` come from the request
/// header and the connection.
pub fn join_request(
    req: &JoinGroupRequest,
    version: i16,
    client_id: &str,
    client_host: &str,
) -> (String, JoinRequest) {
    let rebalance_timeout_ms = if version >= 1 {
        req.rebalance_timeout_ms
    } else {
        // v0 has no rebalance timeout; Kafka uses the session timeout.
        req.session_timeout_ms
    };
    let request = JoinRequest {
        member_id: text(&req.member_id),
        group_instance_id: opt_text(req.group_instance_id.as_ref()).filter(|_| version >= 5),
        client_id: client_id.to_owned(),
        client_host: client_host.to_owned(),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms,
        protocol_type: text(&req.protocol_type),
        protocols: req
            .protocols
            .iter()
            .map(|p| Protocol {
                name: text(&p.name),
                metadata: p.metadata.clone(),
            })
            .collect(),
        require_known_member_id: version >= 4,
        reason: opt_text(req.reason.as_ref()),
    };
    (text(&req.group_id.0), request)
}

/// The wire response for `version`. Before v7 the protocol name is not nullable, so "none"
/// is sent as an empty string, as Kafka does.
pub fn join_response(resp: &JoinResponse, version: i16) -> JoinGroupResponse {
    let protocol_name = match (&resp.protocol_name, version >= 7) {
        (Some(name), _) => Some(wire(name)),
        (None, true) => None,
        (None, false) => Some(StrBytes::default()),
    };
    let mut out = JoinGroupResponse::default();
    out.error_code = code(resp.error);
    out.generation_id = resp.generation_id;
    out.protocol_type = opt_wire(resp.protocol_type.as_deref());
    out.protocol_name = protocol_name;
    out.leader = wire(&resp.leader);
    out.skip_assignment = version >= 9 && resp.skip_assignment;
    out.member_id = wire(&resp.member_id);
    out.members = resp
        .members
        .iter()
        .map(|m| {
            let mut member = JoinGroupResponseMember::default();
            member.member_id = wire(&m.member_id);
            member.group_instance_id = opt_wire(m.group_instance_id.as_deref());
            member.metadata = m.metadata.clone();
            member
        })
        .collect();
    out
}

// ----- SyncGroup -----

/// Group id and normalised request; `group_instance_id` is kept from v3, protocol type and
/// name from v5.
pub fn sync_request(req: &SyncGroupRequest, version: i16) -> (String, SyncRequest) {
    let request = SyncRequest {
        member_id: text(&req.member_id),
        group_instance_id: opt_text(req.group_instance_id.as_ref()).filter(|_| version >= 3),
        generation_id: req.generation_id,
        protocol_type: opt_text(req.protocol_type.as_ref()).filter(|_| version >= 5),
        protocol_name: opt_text(req.protocol_name.as_ref()).filter(|_| version >= 5),
        assignments: req
            .assignments
            .iter()
            .map(|a| (text(&a.member_id), a.assignment.clone()))
            .collect(),
    };
    (text(&req.group_id.0), request)
}

/// The wire response; the encoder leaves out what the version lacks (protocol type and name
/// before v5).
pub fn sync_response(resp: &SyncResponse) -> SyncGroupResponse {
    let mut out = SyncGroupResponse::default();
    out.error_code = code(resp.error);
    out.protocol_type = opt_wire(resp.protocol_type.as_deref());
    out.protocol_name = opt_wire(resp.protocol_name.as_deref());
    out.assignment = resp.assignment.clone();
    out
}

// ----- Heartbeat -----

/// Group id and normalised request; `group_instance_id` is kept from v3.
pub fn heartbeat_request(req: &WireHeartbeatRequest, version: i16) -> (String, HeartbeatRequest) {
    let request = HeartbeatRequest {
        member_id: text(&req.member_id),
        group_instance_id: opt_text(req.group_instance_id.as_ref()).filter(|_| version >= 3),
        generation_id: req.generation_id,
    };
    (text(&req.group_id.0), request)
}

/// The wire response: only the error code (0 for `None`).
pub fn heartbeat_response(error: Option<ResponseError>) -> HeartbeatResponse {
    let mut out = HeartbeatResponse::default();
    out.error_code = code(error);
    out
}

// ----- LeaveGroup -----

/// Versions before 3 name a single member in `member_id`; it becomes a batch of one.
pub fn leave_request(req: &LeaveGroupRequest, version: i16) -> (String, Vec<LeavingMember>) {
    let members = if version >= 3 {
        req.members
            .iter()
            .map(|m| LeavingMember {
                member_id: text(&m.member_id),
                group_instance_id: opt_text(m.group_instance_id.as_ref()),
                reason: opt_text(m.reason.as_ref()),
            })
            .collect()
    } else {
        vec![LeavingMember {
            member_id: text(&req.member_id),
            group_instance_id: None,
            reason: None,
        }]
    };
    (text(&req.group_id.0), members)
}

/// Versions before 3 have no member list: the single member's error is the response error.
pub fn leave_response(resp: &LeaveResponse, version: i16) -> LeaveGroupResponse {
    let mut out = LeaveGroupResponse::default();
    if version < 3 {
        let member_error = resp.members.first().and_then(|m| m.error);
        out.error_code = code(resp.error.or(member_error));
        return out;
    }
    out.error_code = code(resp.error);
    out.members = resp
        .members
        .iter()
        .map(|m| {
            let mut member = MemberResponse::default();
            member.member_id = wire(&m.member_id);
            member.group_instance_id = opt_wire(m.group_instance_id.as_deref());
            member.error_code = code(m.error);
            member
        })
        .collect();
    out
}

// ----- OffsetCommit -----

/// Group id and normalised commit. v10+ names topics by id only; the caller must resolve
/// `topic_id` to a name first (and answer UNKNOWN_TOPIC_ID for unknown ids).
pub fn offset_commit_request(req: &OffsetCommitRequest, version: i16) -> (String, OffsetCommit) {
    let commit = OffsetCommit {
        generation_id: req.generation_id_or_member_epoch,
        member_id: text(&req.member_id),
        group_instance_id: opt_text(req.group_instance_id.as_ref()).filter(|_| version >= 7),
        retention_time_ms: if (2..=4).contains(&version) {
            req.retention_time_ms
        } else {
            -1
        },
        topics: req
            .topics
            .iter()
            .map(|t| CommitTopic {
                name: text(&t.name.0),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| CommitPartition {
                        partition: p.partition_index,
                        offset: p.committed_offset,
                        leader_epoch: if version >= 6 {
                            p.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata: opt_text(p.committed_metadata.as_ref()),
                    })
                    .collect(),
            })
            .collect(),
    };
    (text(&req.group_id.0), commit)
}

/// The wire response: one error code per partition (0 for `None`), in the given order.
pub fn offset_commit_response(results: &[TopicErrors]) -> OffsetCommitResponse {
    let mut out = OffsetCommitResponse::default();
    out.topics = results
        .iter()
        .map(|t| {
            let mut topic = OffsetCommitResponseTopic::default();
            topic.name = TopicName(wire(&t.name));
            topic.partitions = t
                .partitions
                .iter()
                .map(|&(p, error)| {
                    let mut partition = OffsetCommitResponsePartition::default();
                    partition.partition_index = p;
                    partition.error_code = code(error);
                    partition
                })
                .collect();
            topic
        })
        .collect();
    out
}

// ----- OffsetFetch -----

/// The groups asked for, each with its topics (`None` = all committed offsets). Before v8 a
/// request names one group; from v8 it batches groups.
pub fn offset_fetch_request(
    req: &OffsetFetchRequest,
    version: i16,
) -> Vec<(String, Option<Vec<TopicPartitions>>)> {
    if version < 8 {
        let topics = req.topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| TopicPartitions {
                    name: text(&t.name.0),
                    partitions: t.partition_indexes.clone(),
                })
                .collect()
        });
        return vec![(text(&req.group_id.0), topics)];
    }
    req.groups
        .iter()
        .map(|g| {
            let topics = g.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| TopicPartitions {
                        name: text(&t.name.0),
                        partitions: t.partition_indexes.clone(),
                    })
                    .collect()
            });
            (text(&g.group_id.0), topics)
        })
        .collect()
}

/// One group's answer: its topics, or a group-level error (e.g. NOT_COORDINATOR).
pub type FetchedGroup = (String, Result<Vec<FetchedTopic>, ResponseError>);

/// Builds the response for `version`: the single group's topics before v8, one entry per
/// group from v8.
pub fn offset_fetch_response(groups: &[FetchedGroup], version: i16) -> OffsetFetchResponse {
    let mut out = OffsetFetchResponse::default();
    if version < 8 {
        if let Some((_, result)) = groups.first() {
            match result {
                Ok(topics) => {
                    out.topics = topics.iter().map(|t| fetch_topic_v0(t, version)).collect()
                }
                Err(error) if version >= 2 => out.error_code = error.code(),
                // v1 has no group-level error; Kafka reports it on every partition, and an
                // empty list is the best we can do without partitions.
                Err(_) => {}
            }
        }
        return out;
    }
    out.groups = groups
        .iter()
        .map(|(group_id, result)| {
            let mut group = OffsetFetchResponseGroup::default();
            group.group_id = GroupId(wire(group_id));
            match result {
                Ok(topics) => group.topics = topics.iter().map(fetch_topic_v8).collect(),
                Err(error) => group.error_code = error.code(),
            }
            group
        })
        .collect();
    out
}

fn fetch_topic_v0(t: &FetchedTopic, version: i16) -> OffsetFetchResponseTopic {
    let mut topic = OffsetFetchResponseTopic::default();
    topic.name = TopicName(wire(&t.name));
    topic.partitions = t
        .partitions
        .iter()
        .map(|p| {
            let mut partition = OffsetFetchResponsePartition::default();
            partition.partition_index = p.partition;
            partition.committed_offset = p.offset;
            if version >= 5 {
                partition.committed_leader_epoch = p.leader_epoch;
            }
            partition.metadata = Some(wire(&p.metadata));
            partition.error_code = code(p.error);
            partition
        })
        .collect();
    topic
}

fn fetch_topic_v8(t: &FetchedTopic) -> OffsetFetchResponseTopics {
    let mut topic = OffsetFetchResponseTopics::default();
    topic.name = TopicName(wire(&t.name));
    topic.partitions = t
        .partitions
        .iter()
        .map(|p| {
            let mut partition = OffsetFetchResponsePartitions::default();
            partition.partition_index = p.partition;
            partition.committed_offset = p.offset;
            partition.committed_leader_epoch = p.leader_epoch;
            partition.metadata = Some(wire(&p.metadata));
            partition.error_code = code(p.error);
            partition
        })
        .collect();
    topic
}

// ----- OffsetDelete -----

/// Group id and the topics and partitions whose offsets to delete.
pub fn offset_delete_request(req: &OffsetDeleteRequest) -> (String, Vec<TopicPartitions>) {
    let topics = req
        .topics
        .iter()
        .map(|t| TopicPartitions {
            name: text(&t.name.0),
            partitions: t.partitions.iter().map(|p| p.partition_index).collect(),
        })
        .collect();
    (text(&req.group_id.0), topics)
}

/// The wire response: `Err` becomes the top-level error code (with no topics), `Ok` one
/// error code per partition.
pub fn offset_delete_response(
    result: &Result<Vec<TopicErrors>, ResponseError>,
) -> OffsetDeleteResponse {
    let mut out = OffsetDeleteResponse::default();
    match result {
        Err(error) => out.error_code = error.code(),
        Ok(topics) => {
            out.topics = topics
                .iter()
                .map(|t| {
                    let mut topic = OffsetDeleteResponseTopic::default();
                    topic.name = TopicName(wire(&t.name));
                    topic.partitions = t
                        .partitions
                        .iter()
                        .map(|&(p, error)| {
                            let mut partition = OffsetDeleteResponsePartition::default();
                            partition.partition_index = p;
                            partition.error_code = code(error);
                            partition
                        })
                        .collect();
                    topic
                })
                .collect();
        }
    }
    out
}

// ----- DescribeGroups / ListGroups -----

/// One described group. DescribeGroups v6+ reports an unknown group (Dead, no members) as
/// GROUP_ID_NOT_FOUND; older versions just say Dead.
pub fn described_group(desc: &GroupDescription, version: i16) -> DescribedGroup {
    let mut out = DescribedGroup::default();
    out.group_id = GroupId(wire(&desc.group_id));
    out.group_state = wire(desc.state);
    out.protocol_type = wire(&desc.protocol_type);
    out.protocol_data = wire(&desc.protocol_data);
    if version >= 6 && desc.state == "Dead" && desc.members.is_empty() {
        out.error_code = ResponseError::GroupIdNotFound.code();
    }
    out.members = desc
        .members
        .iter()
        .map(|m| {
            let mut member = DescribedGroupMember::default();
            member.member_id = wire(&m.member_id);
            member.group_instance_id = opt_wire(m.group_instance_id.as_deref());
            member.client_id = wire(&m.client_id);
            member.client_host = wire(&m.client_host);
            member.member_metadata = m.metadata.clone();
            member.member_assignment = m.assignment.clone();
            member
        })
        .collect();
    out
}

/// State and type filters of a ListGroups request (empty = no filter).
pub fn list_groups_request(req: &ListGroupsRequest) -> (Vec<String>, Vec<String>) {
    (
        req.states_filter.iter().map(text).collect(),
        req.types_filter.iter().map(text).collect(),
    )
}

/// The wire response; v5+ lists each group's type ("classic" or "consumer").
pub fn list_groups_response(groups: &[GroupListing]) -> ListGroupsResponse {
    let mut out = ListGroupsResponse::default();
    out.groups = groups
        .iter()
        .map(|g| {
            let mut listed = ListedGroup::default();
            listed.group_id = GroupId(wire(&g.group_id));
            listed.protocol_type = wire(&g.protocol_type);
            listed.group_state = wire(g.state);
            listed.group_type = StrBytes::from_static_str(g.group_type);
            listed
        })
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::protocol::{Decodable, Encodable};

    use super::super::offsets::FetchedPartition;
    use super::super::types::{JoinedMember, LeaveResult};
    use super::*;

    fn encodes<T: Encodable>(message: &T, version: i16) -> Bytes {
        let mut buf = BytesMut::new();
        let encoded = message.encode(&mut buf, version);
        assert!(encoded.is_ok(), "version {version}: {encoded:?}");
        buf.freeze()
    }

    fn leader_response() -> JoinResponse {
        JoinResponse {
            error: None,
            generation_id: 4,
            protocol_type: Some("consumer".to_owned()),
            protocol_name: Some("range".to_owned()),
            leader: "m1".to_owned(),
            skip_assignment: false,
            member_id: "m1".to_owned(),
            members: vec![JoinedMember {
                member_id: "m1".to_owned(),
                group_instance_id: Some("i1".to_owned()),
                metadata: Bytes::from_static(b"meta"),
            }],
        }
    }

    #[test]
    fn join_response_encodes_and_decodes_in_every_version() {
        for version in 0..=9 {
            let wire = join_response(&leader_response(), version);
            let mut bytes = encodes(&wire, version);
            let back = JoinGroupResponse::decode(&mut bytes, version);
            let back = back.ok().unwrap_or_default();
            assert_eq!(back.generation_id, 4);
            assert_eq!(back.leader.as_str(), "m1");
            assert_eq!(back.member_id.as_str(), "m1");
            assert_eq!(
                back.protocol_name.as_ref().map(StrBytes::as_str),
                Some("range")
            );
            assert_eq!(back.members.len(), 1);
            assert_eq!(back.members[0].metadata, "meta");
            if version >= 7 {
                assert_eq!(
                    back.protocol_type.as_ref().map(StrBytes::as_str),
                    Some("consumer")
                );
            }
        }
    }

    #[test]
    fn error_join_response_has_an_empty_protocol_name_before_v7() {
        let error = JoinResponse::error(ResponseError::MemberIdRequired, "c-1");
        for version in 0..=9 {
            let wire = join_response(&error, version);
            assert_eq!(wire.error_code, 79);
            assert_eq!(wire.generation_id, -1);
            assert_eq!(wire.member_id.as_str(), "c-1");
            let expected = (version < 7).then(StrBytes::default);
            assert_eq!(wire.protocol_name, expected);
            encodes(&wire, version);
        }
    }

    #[test]
    fn join_request_normalises_versions() {
        let mut req = JoinGroupRequest::default();
        req.group_id = GroupId(StrBytes::from_static_str("g"));
        req.session_timeout_ms = 10_000;
        req.rebalance_timeout_ms = 60_000;
        req.protocol_type = StrBytes::from_static_str("consumer");
        req.group_instance_id = Some(StrBytes::from_static_str("i"));
        let mut protocol = JoinGroupRequestProtocol::default();
        protocol.name = StrBytes::from_static_str("range");
        protocol.metadata = Bytes::from_static(b"m");
        req.protocols = vec![protocol];

        let (group, v0) = join_request(&req, 0, "client", "/1.2.3.4");
        assert_eq!(group, "g");
        assert_eq!(
            v0.rebalance_timeout_ms, 10_000,
            "v0 uses the session timeout"
        );
        assert!(!v0.require_known_member_id);
        assert_eq!(v0.group_instance_id, None);
        let (_, v5) = join_request(&req, 5, "client", "/1.2.3.4");
        assert_eq!(v5.rebalance_timeout_ms, 60_000);
        assert!(v5.require_known_member_id);
        assert_eq!(v5.group_instance_id.as_deref(), Some("i"));
        assert_eq!(v5.protocols[0].name, "range");
        assert_eq!(v5.client_host, "/1.2.3.4");
    }

    #[test]
    fn leave_group_is_batched_from_v3() {
        let mut req = LeaveGroupRequest::default();
        req.group_id = GroupId(StrBytes::from_static_str("g"));
        req.member_id = StrBytes::from_static_str("m0");
        let mut identity = MemberIdentity::default();
        identity.member_id = StrBytes::from_static_str("m1");
        req.members = vec![identity];
        assert_eq!(leave_request(&req, 2).1[0].member_id, "m0");
        assert_eq!(leave_request(&req, 3).1[0].member_id, "m1");

        let resp = LeaveResponse {
            error: None,
            members: vec![LeaveResult {
                member_id: "m0".to_owned(),
                group_instance_id: None,
                error: Some(ResponseError::UnknownMemberId),
            }],
        };
        let old = leave_response(&resp, 2);
        assert_eq!((old.error_code, old.members.len()), (25, 0));
        encodes(&old, 2);
        let new = leave_response(&resp, 3);
        assert_eq!((new.error_code, new.members[0].error_code), (0, 25));
        encodes(&new, 3);
    }

    #[test]
    fn offset_fetch_response_shapes_by_version() {
        let topics = vec![FetchedTopic {
            name: "t".to_owned(),
            partitions: vec![FetchedPartition {
                partition: 0,
                offset: 5,
                leader_epoch: 2,
                metadata: "m".to_owned(),
                error: None,
            }],
        }];
        let groups: Vec<FetchedGroup> = vec![("g".to_owned(), Ok(topics))];
        for version in 1..=9 {
            let wire = offset_fetch_response(&groups, version);
            encodes(&wire, version);
            if version < 8 {
                assert_eq!(wire.topics[0].partitions[0].committed_offset, 5);
            } else {
                assert_eq!(wire.groups[0].topics[0].partitions[0].committed_offset, 5);
            }
        }
    }

    #[test]
    fn describe_and_list_encode() {
        let desc = GroupDescription {
            group_id: "g".to_owned(),
            state: "Dead",
            protocol_type: String::new(),
            protocol_data: String::new(),
            members: Vec::new(),
        };
        assert_eq!(described_group(&desc, 5).error_code, 0);
        assert_eq!(described_group(&desc, 6).error_code, 69);
        let listing = [GroupListing {
            group_id: "g".to_owned(),
            protocol_type: "consumer".to_owned(),
            state: "Stable",
            group_type: "classic",
        }];
        for version in 0..=5 {
            encodes(&list_groups_response(&listing), version);
        }
    }
}

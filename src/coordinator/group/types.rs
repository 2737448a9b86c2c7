//! Plain request and response types of the group state machine, free of wire versions.
//!
//! The state machine runs on the shard that owns the group's `__consumer_offsets` partition;
//! `wire.rs` converts these to and from the `kafka-protocol` structs of each API version, so
//! the state machine never reasons about versions.

use bytes::Bytes;
use kafka_protocol::ResponseError;

/// Opaque handle the wiring layer gives each JoinGroup/SyncGroup request, so a response that
/// is produced later (when the rebalance completes) can be routed to the waiting connection.
pub type RequestToken = u64;

/// The member id a client sends before the coordinator has given it one.
pub const UNKNOWN_MEMBER_ID: &str = "";

/// Generation of a group that has never completed a rebalance, and of commits made outside
/// group management.
pub const NO_GENERATION: i32 = -1;

/// One protocol (assignor) a member supports, with its opaque subscription metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    pub name: String,
    pub metadata: Bytes,
}

/// A JoinGroup request, already normalised across versions by the wiring layer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinRequest {
    /// Empty when the client has no member id yet.
    pub member_id: String,
    /// `group.instance.id` (v5+): marks a static member.
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    /// v0 has no rebalance timeout; the wiring layer passes the session timeout, as Kafka does.
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// In the member's order of preference.
    pub protocols: Vec<Protocol>,
    /// True for v4+: a member without an id first gets MEMBER_ID_REQUIRED and a new id.
    pub require_known_member_id: bool,
    pub reason: Option<String>,
}

/// A member listed in the leader's JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    /// The member's metadata for the selected protocol.
    pub metadata: Bytes,
}

/// A JoinGroup response; `error == None` means success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResponse {
    pub error: Option<ResponseError>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub skip_assignment: bool,
    pub member_id: String,
    /// Filled only for the leader.
    pub members: Vec<JoinedMember>,
}

impl JoinResponse {
    /// A response that carries only an error (and the member id the client should use).
    pub fn error(error: ResponseError, member_id: &str) -> Self {
        Self {
            error: Some(error),
            generation_id: NO_GENERATION,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            member_id: member_id.to_owned(),
            members: Vec::new(),
        }
    }
}

/// A SyncGroup request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
    /// v5+; checked against the group when present.
    pub protocol_type: Option<String>,
    /// v5+; checked against the group when present.
    pub protocol_name: Option<String>,
    /// Only the leader sends assignments: (member id, assignment bytes).
    pub assignments: Vec<(String, Bytes)>,
}

/// A SyncGroup response; `error == None` means success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResponse {
    pub error: Option<ResponseError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResponse {
    pub fn error(error: ResponseError) -> Self {
        Self {
            error: Some(error),
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// A Heartbeat request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeartbeatRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
}

/// One member named in a LeaveGroup request (v3+ batches several; older versions name one).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeavingMember {
    /// Empty when an administrator removes a static member by instance id.
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub reason: Option<String>,
}

/// Per-member outcome of a LeaveGroup request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveResult {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub error: Option<ResponseError>,
}

/// A LeaveGroup response: a group-level error, else one result per leaving member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveResponse {
    pub error: Option<ResponseError>,
    pub members: Vec<LeaveResult>,
}

/// A response that may be produced after the request that caused it returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Join(JoinResponse),
    Sync(SyncResponse),
}

/// A response to send to the connection that is waiting on `token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub token: RequestToken,
    pub response: Response,
}

/// A member as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// Metadata for the selected protocol; empty unless the group is Stable (as in Kafka).
    pub metadata: Bytes,
    /// Empty unless the group is Stable (as in Kafka).
    pub assignment: Bytes,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    /// Kafka's state name: "Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead".
    pub state: &'static str,
    pub protocol_type: String,
    /// The selected protocol when Stable, otherwise empty.
    pub protocol_data: String,
    pub members: Vec<MemberDescription>,
}

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub group_id: String,
    pub protocol_type: String,
    pub state: &'static str,
}

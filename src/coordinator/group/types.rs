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
    /// Protocol name: the assignor, e.g. "range" or "cooperative-sticky".
    pub name: String,
    /// Opaque metadata for this protocol; for consumers, the subscription (see
    /// `consumer_protocol`).
    pub metadata: Bytes,
}

/// A JoinGroup request, already normalised across versions by the wiring layer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JoinRequest {
    /// Empty when the client has no member id yet.
    pub member_id: String,
    /// `group.instance.id` (v5+): marks a static member.
    pub group_instance_id: Option<String>,
    /// `client.id` from the request header.
    pub client_id: String,
    /// Client address from the connection (`/1.2.3.4`), as DescribeGroups reports it.
    pub client_host: String,
    /// Heartbeat timeout in ms; outside `group.min.session.timeout.ms` ..=
    /// `group.max.session.timeout.ms` the join gets INVALID_SESSION_TIMEOUT.
    pub session_timeout_ms: i32,
    /// v0 has no rebalance timeout; the wiring layer passes the session timeout, as Kafka does.
    pub rebalance_timeout_ms: i32,
    /// E.g. "consumer"; a join whose type or protocols do not fit a non-empty group gets
    /// INCONSISTENT_GROUP_PROTOCOL.
    pub protocol_type: String,
    /// In the member's order of preference.
    pub protocols: Vec<Protocol>,
    /// True for v4+: a member without an id first gets MEMBER_ID_REQUIRED and a new id.
    pub require_known_member_id: bool,
    /// Why the member (re)joins (v8+, KIP-800); not used by the state machine.
    pub reason: Option<String>,
}

/// A member listed in the leader's JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    /// Id of the member, which the leader keys its assignments by.
    pub member_id: String,
    /// `group.instance.id` of a static member; `None` for a dynamic one.
    pub group_instance_id: Option<String>,
    /// The member's metadata for the selected protocol.
    pub metadata: Bytes,
}

/// A JoinGroup response; `error == None` means success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResponse {
    /// `None` on success, else the error to answer with.
    pub error: Option<ResponseError>,
    /// Generation the member joined; [`NO_GENERATION`] with an error.
    pub generation_id: i32,
    /// The group's protocol type (on the wire from v7).
    pub protocol_type: Option<String>,
    /// Protocol (assignor) selected for the generation; `None` with an error.
    pub protocol_name: Option<String>,
    /// Member id of the generation's leader; empty with an error.
    pub leader: String,
    /// KIP-814 (v9+): tells a rejoining static leader not to run the assignor again. This
    /// coordinator never sets it.
    pub skip_assignment: bool,
    /// The member's id: newly assigned for a new member, else the one it joined with.
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
    /// Id of the syncing member.
    pub member_id: String,
    /// `group.instance.id` (v3+); a stale static member gets FENCED_INSTANCE_ID.
    pub group_instance_id: Option<String>,
    /// Generation the member joined; a mismatch gets ILLEGAL_GENERATION.
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
    /// `None` on success, else the error to answer with.
    pub error: Option<ResponseError>,
    /// The group's protocol type (on the wire from v5).
    pub protocol_type: Option<String>,
    /// Protocol (assignor) of the generation (on the wire from v5).
    pub protocol_name: Option<String>,
    /// This member's assignment from the leader; empty with an error.
    pub assignment: Bytes,
}

impl SyncResponse {
    /// A response that carries only `error`.
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
    /// Id of the heartbeating member.
    pub member_id: String,
    /// `group.instance.id` (v3+); a stale static member gets FENCED_INSTANCE_ID.
    pub group_instance_id: Option<String>,
    /// Generation the member believes current; a mismatch gets ILLEGAL_GENERATION.
    pub generation_id: i32,
}

/// One member named in a LeaveGroup request (v3+ batches several; older versions name one).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeavingMember {
    /// Empty when an administrator removes a static member by instance id.
    pub member_id: String,
    /// `group.instance.id` (v3+) of the static member to remove.
    pub group_instance_id: Option<String>,
    /// Why the member leaves (v5+, KIP-800); not used by the state machine.
    pub reason: Option<String>,
}

/// Per-member outcome of a LeaveGroup request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveResult {
    /// Member id as named in the request.
    pub member_id: String,
    /// `group.instance.id` as named in the request.
    pub group_instance_id: Option<String>,
    /// `None` when the member was removed, else why not (e.g. UNKNOWN_MEMBER_ID).
    pub error: Option<ResponseError>,
}

/// A LeaveGroup response: a group-level error, else one result per leaving member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveResponse {
    /// Group-level error (COORDINATOR_NOT_AVAILABLE for a Dead group); `members` is then empty.
    pub error: Option<ResponseError>,
    /// One result per member named in the request, in request order.
    pub members: Vec<LeaveResult>,
}

/// A response that may be produced after the request that caused it returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Answer to a JoinGroup.
    Join(JoinResponse),
    /// Answer to a SyncGroup.
    Sync(SyncResponse),
}

/// A response to send to the connection that is waiting on `token`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The token the wiring layer gave the request being answered.
    pub token: RequestToken,
    /// The answer to send on that connection.
    pub response: Response,
}

/// A member as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Id the coordinator gave the member.
    pub member_id: String,
    /// `group.instance.id` of a static member; `None` for a dynamic one.
    pub group_instance_id: Option<String>,
    /// `client.id` of the member's JoinGroup.
    pub client_id: String,
    /// Client address as the broker saw it (`/1.2.3.4`).
    pub client_host: String,
    /// Metadata for the selected protocol; empty unless the group is Stable (as in Kafka).
    pub metadata: Bytes,
    /// Empty unless the group is Stable (as in Kafka).
    pub assignment: Bytes,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// The described group's id, as asked.
    pub group_id: String,
    /// Kafka's state name: "Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead".
    pub state: &'static str,
    /// The group's protocol type, e.g. "consumer"; empty when it has none.
    pub protocol_type: String,
    /// The selected protocol when Stable, otherwise empty.
    pub protocol_data: String,
    /// Current members, ordered by member id.
    pub members: Vec<MemberDescription>,
}

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// The listed group's id.
    pub group_id: String,
    /// The group's protocol type; empty for a group that only commits offsets.
    pub protocol_type: String,
    /// Kafka's state name, as [`GroupState::as_str`](super::state::GroupState::as_str) (or, for a
    /// consumer group, `ConsumerGroupState::as_str`) spells it.
    pub state: &'static str,
    /// ListGroups v5's group type: "classic" or "consumer".
    pub group_type: &'static str,
}

//! The `__consumer_offsets` records of a consumer group, as Kafka 4.x writes them, so a
//! restart (and, replicated, a new coordinator) rebuilds the same groups and Kafka's tools can
//! read the log. Keys are Kafka's non-flexible `coordinator-key` schemas: an i16 record type,
//! then i16-length strings. Values are version 0 of Kafka's flexible schemas (compact strings
//! and arrays, a tagged-field section after each struct), prefixed by an i16 version.
//!
//! | type | key | value |
//! |---|---|---|
//! | 3 ConsumerGroupMetadata | group | epoch |
//! | 4 ConsumerGroupPartitionMetadata | group | (read and ignored: Kafka 4.0 wrote it; topics are resolved again) |
//! | 5 ConsumerGroupMemberMetadata | group, member | instance, rack, client id and host, topic names, regex, rebalance timeout, assignor |
//! | 6 ConsumerGroupTargetAssignmentMetadata | group | assignment epoch |
//! | 7 ConsumerGroupTargetAssignmentMember | group, member | target partitions |
//! | 8 ConsumerGroupCurrentMemberAssignment | group, member | epochs, state, assigned and pending-revocation partitions |
//! | 16 ConsumerGroupRegularExpression | group, regex | (read and ignored: regexes are resolved again against the topics) |
//!
//! Runs on the shard that owns the group's `__consumer_offsets` partition.

use std::collections::BTreeSet;

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

use super::Assignment;
use crate::coordinator::group::records::{Record, RecordError};
use crate::protocol::byte_reader::ByteReader;
use crate::protocol::varint::write_unsigned_varint;

/// Record type (key version) of ConsumerGroupMetadata.
pub const GROUP_METADATA: i16 = 3;
/// Record type of ConsumerGroupPartitionMetadata (read only).
pub const PARTITION_METADATA: i16 = 4;
/// Record type of ConsumerGroupMemberMetadata.
pub const MEMBER_METADATA: i16 = 5;
/// Record type of ConsumerGroupTargetAssignmentMetadata.
pub const TARGET_ASSIGNMENT_METADATA: i16 = 6;
/// Record type of ConsumerGroupTargetAssignmentMember.
pub const TARGET_ASSIGNMENT_MEMBER: i16 = 7;
/// Record type of ConsumerGroupCurrentMemberAssignment.
pub const CURRENT_MEMBER_ASSIGNMENT: i16 = 8;
/// Record type of ConsumerGroupRegularExpression (read only).
pub const REGULAR_EXPRESSION: i16 = 16;

/// A member's persisted metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberMetadata {
    /// `group.instance.id`.
    pub instance_id: Option<String>,
    /// `client.rack`.
    pub rack_id: Option<String>,
    /// `client.id`.
    pub client_id: String,
    /// Client address.
    pub client_host: String,
    /// Topics subscribed by name.
    pub subscribed_topic_names: Vec<String>,
    /// Topics subscribed by regex.
    pub subscribed_topic_regex: Option<String>,
    /// Rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// Server assignor asked for.
    pub server_assignor: Option<String>,
    /// A classic member's protocols (name, metadata): Kafka's tagged `ClassicMemberMetadata`.
    pub classic_protocols: Option<Vec<(String, Bytes)>>,
}

/// A member's persisted current assignment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CurrentAssignment {
    /// Member epoch.
    pub member_epoch: i32,
    /// Epoch before the last bump.
    pub previous_member_epoch: i32,
    /// `MemberState` byte.
    pub state: i8,
    /// Owned partitions.
    pub assigned: Assignment,
    /// Partitions to revoke.
    pub pending_revocation: Assignment,
}

/// A decoded consumer-group record; `None` values are tombstones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerRecord {
    /// Type 3: the group epoch.
    GroupEpoch {
        /// Group id.
        group: String,
        /// Group epoch; `None` deletes the group.
        epoch: Option<i32>,
    },
    /// Type 5.
    Member {
        /// Group id.
        group: String,
        /// Member id.
        member_id: String,
        /// `None` removes the member.
        value: Option<MemberMetadata>,
    },
    /// Type 6: the epoch of the target assignment.
    TargetEpoch {
        /// Group id.
        group: String,
        /// `None` with the group's deletion.
        epoch: Option<i32>,
    },
    /// Type 7: one member's target.
    Target {
        /// Group id.
        group: String,
        /// Member id.
        member_id: String,
        /// `None` removes it.
        value: Option<Assignment>,
    },
    /// Type 8: one member's current assignment.
    Current {
        /// Group id.
        group: String,
        /// Member id.
        member_id: String,
        /// `None` removes it.
        value: Option<CurrentAssignment>,
    },
    /// Types 4 and 16, which this broker reads past.
    Ignored {
        /// Group id.
        group: String,
    },
}

impl ConsumerRecord {
    /// The group the record is about.
    pub fn group(&self) -> &str {
        match self {
            ConsumerRecord::GroupEpoch { group, .. }
            | ConsumerRecord::Member { group, .. }
            | ConsumerRecord::TargetEpoch { group, .. }
            | ConsumerRecord::Target { group, .. }
            | ConsumerRecord::Current { group, .. }
            | ConsumerRecord::Ignored { group } => group,
        }
    }
}

// ----- encoding -----

fn key(record_type: i16, parts: &[&str]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(record_type);
    for part in parts {
        // Group and member ids are bounded by the request decoder (i16 / compact lengths).
        buf.put_i16(part.len() as i16);
        buf.put_slice(part.as_bytes());
    }
    buf.freeze()
}

fn value(body: impl FnOnce(&mut BytesMut)) -> Option<Bytes> {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    body(&mut buf);
    put_no_tags(&mut buf);
    Some(buf.freeze())
}

/// Tag 0 of `ConsumerGroupMemberMetadataValue`: the classic member's supported protocols.
const CLASSIC_MEMBER_METADATA_TAG: u64 = 0;

fn put_classic_protocols(buf: &mut BytesMut, protocols: &[(String, Bytes)]) {
    let mut field = BytesMut::new();
    write_unsigned_varint(&mut field, protocols.len() as u64 + 1);
    for (name, metadata) in protocols {
        put_compact_string(&mut field, name);
        write_unsigned_varint(&mut field, metadata.len() as u64 + 1);
        field.put_slice(metadata);
        put_no_tags(&mut field);
    }
    put_no_tags(&mut field);
    write_unsigned_varint(buf, 1);
    write_unsigned_varint(buf, CLASSIC_MEMBER_METADATA_TAG);
    write_unsigned_varint(buf, field.len() as u64);
    buf.put_slice(&field);
}

fn put_no_tags(buf: &mut BytesMut) {
    write_unsigned_varint(buf, 0);
}

fn put_compact_string(buf: &mut BytesMut, s: &str) {
    write_unsigned_varint(buf, s.len() as u64 + 1);
    buf.put_slice(s.as_bytes());
}

fn put_compact_nullable_string(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_compact_string(buf, s),
        None => write_unsigned_varint(buf, 0),
    }
}

fn put_assignment(buf: &mut BytesMut, assignment: &Assignment) {
    write_unsigned_varint(buf, assignment.len() as u64 + 1);
    for (topic, partitions) in assignment {
        buf.put_slice(topic.as_bytes());
        write_unsigned_varint(buf, partitions.len() as u64 + 1);
        for p in partitions {
            buf.put_i32(*p);
        }
        put_no_tags(buf);
    }
}

/// Type 3: the group epoch (`None`: tombstone).
pub fn group_epoch(group: &str, epoch: Option<i32>) -> Record {
    Record {
        key: key(GROUP_METADATA, &[group]),
        value: epoch.and_then(|e| value(|b| b.put_i32(e))),
    }
}

/// Type 5: a member's metadata (`None`: tombstone).
pub fn member(group: &str, member_id: &str, meta: Option<&MemberMetadata>) -> Record {
    Record {
        key: key(MEMBER_METADATA, &[group, member_id]),
        value: meta.and_then(|m| {
            value(|b| {
                put_compact_nullable_string(b, m.instance_id.as_deref());
                put_compact_nullable_string(b, m.rack_id.as_deref());
                put_compact_string(b, &m.client_id);
                put_compact_string(b, &m.client_host);
                write_unsigned_varint(b, m.subscribed_topic_names.len() as u64 + 1);
                for name in &m.subscribed_topic_names {
                    put_compact_string(b, name);
                }
                put_compact_nullable_string(b, m.subscribed_topic_regex.as_deref());
                b.put_i32(m.rebalance_timeout_ms);
                put_compact_nullable_string(b, m.server_assignor.as_deref());
            })
            .map(|v| with_classic_tag(v, m.classic_protocols.as_deref()))
        }),
    }
}

/// Replaces the empty tagged-field section `value` ends with by the classic tag, if any.
fn with_classic_tag(value: Bytes, classic: Option<&[(String, Bytes)]>) -> Bytes {
    let Some(protocols) = classic else {
        return value;
    };
    let mut buf = BytesMut::from(&value[..value.len() - 1]);
    put_classic_protocols(&mut buf, protocols);
    buf.freeze()
}

/// Type 6: the target assignment's epoch (`None`: tombstone).
pub fn target_epoch(group: &str, epoch: Option<i32>) -> Record {
    Record {
        key: key(TARGET_ASSIGNMENT_METADATA, &[group]),
        value: epoch.and_then(|e| value(|b| b.put_i32(e))),
    }
}

/// Type 7: a member's target (`None`: tombstone).
pub fn target(group: &str, member_id: &str, assignment: Option<&Assignment>) -> Record {
    Record {
        key: key(TARGET_ASSIGNMENT_MEMBER, &[group, member_id]),
        value: assignment.and_then(|a| value(|b| put_assignment(b, a))),
    }
}

/// Type 8: a member's current assignment (`None`: tombstone).
pub fn current(group: &str, member_id: &str, current: Option<&CurrentAssignment>) -> Record {
    Record {
        key: key(CURRENT_MEMBER_ASSIGNMENT, &[group, member_id]),
        value: current.and_then(|c| {
            value(|b| {
                b.put_i32(c.member_epoch);
                b.put_i32(c.previous_member_epoch);
                b.put_i8(c.state);
                put_assignment(b, &c.assigned);
                put_assignment(b, &c.pending_revocation);
            })
        }),
    }
}

// ----- decoding -----

/// True for the record types this module reads (the caller has read the i16 type).
pub fn is_consumer_type(record_type: i16) -> bool {
    (GROUP_METADATA..=CURRENT_MEMBER_ASSIGNMENT).contains(&record_type)
        || record_type == REGULAR_EXPRESSION
}

/// Decodes a key whose record type [`is_consumer_type`], and its value.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<ConsumerRecord, RecordError> {
    let mut key = ByteReader::new(key);
    let record_type = key.i16()?;
    let group = key.string()?;
    let second = match record_type {
        MEMBER_METADATA
        | TARGET_ASSIGNMENT_MEMBER
        | CURRENT_MEMBER_ASSIGNMENT
        | REGULAR_EXPRESSION => Some(key.string()?),
        _ => None,
    };
    if key.remaining() > 0 {
        return Err(RecordError::TrailingBytes(key.remaining()));
    }
    let member_id = second.unwrap_or_default();
    let mut v = value.map(ByteReader::new);
    if let Some(r) = v.as_mut() {
        let version = r.i16()?;
        if version != 0 && !matches!(record_type, PARTITION_METADATA | REGULAR_EXPRESSION) {
            return Err(RecordError::UnsupportedVersion {
                what: "consumer group record value",
                version,
            });
        }
    }
    let record = match (record_type, v.as_mut()) {
        (GROUP_METADATA, r) => ConsumerRecord::GroupEpoch {
            group,
            epoch: r.map(|r| r.i32()).transpose()?,
        },
        (TARGET_ASSIGNMENT_METADATA, r) => ConsumerRecord::TargetEpoch {
            group,
            epoch: r.map(|r| r.i32()).transpose()?,
        },
        (MEMBER_METADATA, r) => {
            let value = r.map(read_member).transpose()?;
            // Its tagged fields are read by `read_member` (the classic protocols).
            return Ok(ConsumerRecord::Member {
                group,
                member_id,
                value,
            })
            .and_then(|record| finish(v.as_ref()).map(|()| record));
        }
        (TARGET_ASSIGNMENT_MEMBER, r) => ConsumerRecord::Target {
            group,
            member_id,
            value: r.map(read_assignment).transpose()?,
        },
        (CURRENT_MEMBER_ASSIGNMENT, r) => ConsumerRecord::Current {
            group,
            member_id,
            value: r.map(read_current).transpose()?,
        },
        _ => return Ok(ConsumerRecord::Ignored { group }),
    };
    // Tagged fields after the value's fields (Kafka's newer optional fields) are skipped.
    if let Some(r) = v.as_mut() {
        r.skip_tagged_fields()?;
    }
    finish(v.as_ref()).map(|()| record)
}

fn finish(value: Option<&ByteReader<'_>>) -> Result<(), RecordError> {
    match value.map(ByteReader::remaining) {
        Some(left) if left > 0 => Err(RecordError::TrailingBytes(left)),
        _ => Ok(()),
    }
}

fn compact_nullable_string(r: &mut ByteReader<'_>) -> Result<Option<String>, RecordError> {
    let Some(len) = r.compact_len()? else {
        return Ok(None);
    };
    let raw = r.take(len)?;
    std::str::from_utf8(raw)
        .map(|s| Some(s.to_owned()))
        .map_err(|_| RecordError::InvalidUtf8)
}

fn compact_count(r: &mut ByteReader<'_>) -> Result<usize, RecordError> {
    // A count larger than the bytes left cannot be honest: refuse before allocating.
    let n = r.compact_len()?.unwrap_or(0);
    if n > r.remaining() {
        return Err(RecordError::Truncated {
            at: r.position(),
            needed: n,
        });
    }
    Ok(n)
}

fn read_member(r: &mut ByteReader<'_>) -> Result<MemberMetadata, RecordError> {
    let instance_id = compact_nullable_string(r)?;
    let rack_id = compact_nullable_string(r)?;
    let client_id = r.compact_string()?;
    let client_host = r.compact_string()?;
    let mut subscribed_topic_names = Vec::new();
    for _ in 0..compact_count(r)? {
        subscribed_topic_names.push(r.compact_string()?);
    }
    let subscribed_topic_regex = compact_nullable_string(r)?;
    let rebalance_timeout_ms = r.i32()?;
    let server_assignor = compact_nullable_string(r)?;
    let mut classic_protocols = None;
    for _ in 0..r.unsigned_varlong()? {
        let tag = r.unsigned_varlong()?;
        let len = compact_count_raw(r)?;
        let mut field = ByteReader::new(r.take(len)?);
        if tag == CLASSIC_MEMBER_METADATA_TAG {
            classic_protocols = Some(read_classic_protocols(&mut field)?);
        }
    }
    Ok(MemberMetadata {
        instance_id,
        rack_id,
        client_id,
        client_host,
        subscribed_topic_names,
        subscribed_topic_regex,
        rebalance_timeout_ms,
        server_assignor,
        classic_protocols,
    })
}

/// A tagged field's size (a plain unsigned varint, not a compact length).
fn compact_count_raw(r: &mut ByteReader<'_>) -> Result<usize, RecordError> {
    let at = r.position();
    usize::try_from(r.unsigned_varlong()?).map_err(|_| RecordError::Truncated {
        at,
        needed: usize::MAX,
    })
}

fn read_classic_protocols(r: &mut ByteReader<'_>) -> Result<Vec<(String, Bytes)>, RecordError> {
    let mut out = Vec::new();
    for _ in 0..compact_count(r)? {
        let name = r.compact_string()?;
        let len = r.compact_len()?.unwrap_or(0);
        let metadata = Bytes::copy_from_slice(r.take(len)?);
        r.skip_tagged_fields()?;
        out.push((name, metadata));
    }
    r.skip_tagged_fields()?;
    Ok(out)
}

fn read_assignment(r: &mut ByteReader<'_>) -> Result<Assignment, RecordError> {
    let mut out = Assignment::new();
    for _ in 0..compact_count(r)? {
        let id = Uuid::from_slice(r.take(16)?).map_err(|_| RecordError::InvalidUtf8)?;
        let mut partitions = BTreeSet::new();
        for _ in 0..compact_count(r)? {
            partitions.insert(r.i32()?);
        }
        // Kafka 4.2 may add per-partition assignment epochs as a tagged field.
        r.skip_tagged_fields()?;
        out.insert(id, partitions);
    }
    Ok(out)
}

fn read_current(r: &mut ByteReader<'_>) -> Result<CurrentAssignment, RecordError> {
    Ok(CurrentAssignment {
        member_epoch: r.i32()?,
        previous_member_epoch: r.i32()?,
        state: r.i8()?,
        assigned: read_assignment(r)?,
        pending_revocation: read_assignment(r)?,
    })
}

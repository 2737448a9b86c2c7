//! The `__consumer_offsets` record format, byte for byte as Kafka writes it, so Kafka's own tools
//! (`kafka-console-consumer --formatter ...GroupMetadataMessageFormatter`, offset exporters) can
//! read our log, and replay of those records into coordinator state at start-up.
//!
//! Runs on the shard that owns the `__consumer_offsets` partition. The topic is compacted, so
//! every record is keyed: the key says what the value is (an i16 key version: 0 or 1 for a
//! committed offset, 2 for group metadata), and a null value (tombstone) deletes it.
//!
//! Layouts (non-flexible Kafka schemas: strings are i16 length + UTF-8, nullable strings use
//! length -1, bytes are i32 length + data, arrays are i32 count + elements):
//! - OffsetCommitKey v1: group, topic, partition i32.
//! - OffsetCommitValue v3: offset i64, leader_epoch i32, metadata, commit_timestamp i64
//!   (v1, written only when a v1-v4 OffsetCommit set a retention time: offset, metadata,
//!   commit_timestamp, expire_timestamp).
//! - GroupMetadataKey v2: group.
//! - GroupMetadataValue v3: protocol_type, generation i32, protocol?, leader?,
//!   current_state_timestamp i64, members[member_id, group_instance_id?, client_id,
//!   client_host, rebalance_timeout i32, session_timeout i32, subscription bytes,
//!   assignment bytes].

use bytes::{BufMut, Bytes, BytesMut};
use thiserror::Error;

use super::consumer::records::{self as consumer_records, ConsumerRecord};
use crate::protocol::byte_reader::{ByteReader, ReadError};
use crate::protocol::varint::VarintError;

/// Errors decoding a `__consumer_offsets` record.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    /// The record ended early: `needed` more bytes were required at byte position `at`.
    #[error("record truncated: needed {needed} more bytes at offset {at}")]
    Truncated {
        /// Byte position in the key or value where reading stopped.
        at: usize,
        /// Bytes missing to finish the field being read.
        needed: usize,
    },
    /// A key or value version this code does not read.
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion {
        /// The schema: "__consumer_offsets key", "OffsetCommitValue" or "GroupMetadataValue".
        what: &'static str,
        /// The int16 version that prefixed the key or value.
        version: i16,
    },
    /// A string field is not valid UTF-8.
    #[error("invalid UTF-8 in a string field")]
    InvalidUtf8,
    /// A non-nullable string or bytes field had this negative length.
    #[error("negative length {0} for a non-nullable field")]
    NegativeLength(i32),
    /// This many bytes were left after the last field of the schema.
    #[error("{0} unexpected bytes after the record")]
    TrailingBytes(usize),
    /// No field of these records is a varint; here so that every [`ReadError`] has its place.
    #[error("invalid varint at offset {at}: {error}")]
    Varint {
        /// Byte position of the varint.
        at: usize,
        /// What is wrong with it.
        error: VarintError,
    },
}

/// One keyed record for `__consumer_offsets`; `value == None` is a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Encoded key: int16 key version, then the key fields (see the module doc).
    pub key: Bytes,
    /// Encoded value, prefixed by its int16 version.
    pub value: Option<Bytes>,
}

const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
const GROUP_METADATA_KEY_VERSION: i16 = 2;
const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
const OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY: i16 = 1;
const GROUP_METADATA_VALUE_VERSION: i16 = 3;

/// Key of a committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitKey {
    /// Group id (`group.id`) the offset belongs to.
    pub group: String,
    /// Topic of the committed offset.
    pub topic: String,
    /// Partition of the committed offset.
    pub partition: i32,
}

/// Key of a group's metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataKey {
    /// Group id (`group.id`) whose metadata the record holds.
    pub group: String,
}

/// A decoded key: what the record is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    /// Key version 0 or 1: a committed offset.
    OffsetCommit(OffsetCommitKey),
    /// Key version 2: a group's metadata.
    GroupMetadata(GroupMetadataKey),
    /// Key versions 3-8 and 16: a KIP-848 consumer group's records (`consumer::records`).
    Consumer {
        /// The group the record is about.
        group: String,
    },
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    /// Committed offset; by Kafka's convention the next one the group will consume.
    pub offset: i64,
    /// -1 when unknown.
    pub leader_epoch: i32,
    /// Client string stored with the offset; empty when none.
    pub metadata: String,
    /// When the commit was accepted, ms since the Unix epoch.
    pub commit_timestamp: i64,
    /// Only set by OffsetCommit v1-v4 with an explicit retention time (stored as value v1).
    pub expire_timestamp: Option<i64>,
}

/// A member inside [`GroupMetadataValue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadataValue {
    /// Id the coordinator gave the member.
    pub member_id: String,
    /// `group.instance.id` of a static member; null for a dynamic one.
    pub group_instance_id: Option<String>,
    /// `client.id` of the member's JoinGroup.
    pub client_id: String,
    /// Client address as the broker saw it (`/1.2.3.4`).
    pub client_host: String,
    /// Rebalance timeout in ms; values before v1 have none and read it as the session timeout.
    pub rebalance_timeout: i32,
    /// Session timeout in ms.
    pub session_timeout: i32,
    /// The member's metadata for the group's selected protocol.
    pub subscription: Bytes,
    /// The assignment the leader gave this member in the stored generation.
    pub assignment: Bytes,
}

/// A group's persisted state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    /// Empty for groups that only commit offsets.
    pub protocol_type: String,
    /// The group's generation id when the record was written.
    pub generation: i32,
    /// Protocol (assignor) selected for the generation; null when there is none.
    pub protocol: Option<String>,
    /// Member id of the generation's leader; null when there is none.
    pub leader: Option<String>,
    /// -1 when unknown (values older than v2).
    pub current_state_timestamp: i64,
    /// Members of the generation with their subscription and assignment.
    pub members: Vec<MemberMetadataValue>,
}

// ----- partitioning -----

/// Java's `String.hashCode`: `s[0]*31^(n-1) + ... + s[n-1]` over UTF-16 code units, wrapping.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The `__consumer_offsets` partition that coordinates `group_id`, by Kafka's rule
/// `Utils.abs(groupId.hashCode) % partitions`, where `Utils.abs(i32::MIN)` is 0 (not the
/// `hash & 0x7fffffff` of `Utils.toPositive`, which the producer partitioner uses).
///
/// # Panics
/// If `num_partitions` is not positive; `offsets.topic.num.partitions` is validated at start-up.
pub fn partition_for_group(group_id: &str, num_partitions: i32) -> i32 {
    assert!(
        num_partitions > 0,
        "__consumer_offsets has at least one partition"
    );
    let hash = java_string_hash(group_id);
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % num_partitions
}

// ----- encoding -----

fn put_string(buf: &mut BytesMut, s: &str) {
    // Kafka strings are at most i16::MAX bytes; ids and topic names are far below that.
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    buf.put_i16(len);
    buf.put_slice(&s.as_bytes()[..len as usize]);
}

fn put_nullable_string(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(buf, s),
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    let len = i32::try_from(b.len()).unwrap_or(i32::MAX);
    buf.put_i32(len);
    buf.put_slice(&b[..len as usize]);
}

impl OffsetCommitKey {
    /// Key version 1: group, topic, partition.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(10 + self.group.len() + self.topic.len());
        buf.put_i16(OFFSET_COMMIT_KEY_VERSION);
        put_string(&mut buf, &self.group);
        put_string(&mut buf, &self.topic);
        buf.put_i32(self.partition);
        buf.freeze()
    }
}

impl GroupMetadataKey {
    /// Key version 2: group.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(4 + self.group.len());
        buf.put_i16(GROUP_METADATA_KEY_VERSION);
        put_string(&mut buf, &self.group);
        buf.freeze()
    }
}

impl OffsetCommitValue {
    /// Version 3, or version 1 when an explicit expire timestamp must be kept.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(32 + self.metadata.len());
        match self.expire_timestamp {
            None => {
                buf.put_i16(OFFSET_COMMIT_VALUE_VERSION);
                buf.put_i64(self.offset);
                buf.put_i32(self.leader_epoch);
                put_string(&mut buf, &self.metadata);
                buf.put_i64(self.commit_timestamp);
            }
            Some(expire) => {
                buf.put_i16(OFFSET_COMMIT_VALUE_VERSION_WITH_EXPIRY);
                buf.put_i64(self.offset);
                put_string(&mut buf, &self.metadata);
                buf.put_i64(self.commit_timestamp);
                buf.put_i64(expire);
            }
        }
        buf.freeze()
    }
}

impl GroupMetadataValue {
    /// Version 3.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(64);
        buf.put_i16(GROUP_METADATA_VALUE_VERSION);
        put_string(&mut buf, &self.protocol_type);
        buf.put_i32(self.generation);
        put_nullable_string(&mut buf, self.protocol.as_deref());
        put_nullable_string(&mut buf, self.leader.as_deref());
        buf.put_i64(self.current_state_timestamp);
        let count = i32::try_from(self.members.len()).unwrap_or(i32::MAX);
        buf.put_i32(count);
        for m in self.members.iter().take(count as usize) {
            put_string(&mut buf, &m.member_id);
            put_nullable_string(&mut buf, m.group_instance_id.as_deref());
            put_string(&mut buf, &m.client_id);
            put_string(&mut buf, &m.client_host);
            buf.put_i32(m.rebalance_timeout);
            buf.put_i32(m.session_timeout);
            put_bytes(&mut buf, &m.subscription);
            put_bytes(&mut buf, &m.assignment);
        }
        buf.freeze()
    }
}

/// The record for a committed offset.
pub fn offset_commit_record(
    group: &str,
    topic: &str,
    partition: i32,
    value: &OffsetCommitValue,
) -> Record {
    Record {
        key: offset_key(group, topic, partition),
        value: Some(value.encode()),
    }
}

/// The tombstone that deletes a committed offset.
pub fn offset_tombstone(group: &str, topic: &str, partition: i32) -> Record {
    Record {
        key: offset_key(group, topic, partition),
        value: None,
    }
}

/// The record for a group's metadata.
pub fn group_metadata_record(group: &str, value: &GroupMetadataValue) -> Record {
    Record {
        key: group_key(group),
        value: Some(value.encode()),
    }
}

/// The tombstone that deletes a group's metadata.
pub fn group_tombstone(group: &str) -> Record {
    Record {
        key: group_key(group),
        value: None,
    }
}

fn offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    OffsetCommitKey {
        group: group.to_owned(),
        topic: topic.to_owned(),
        partition,
    }
    .encode()
}

fn group_key(group: &str) -> Bytes {
    GroupMetadataKey {
        group: group.to_owned(),
    }
    .encode()
}

// ----- decoding -----

impl From<ReadError> for RecordError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Short { at, needed } => RecordError::Truncated { at, needed },
            ReadError::NotUtf8 { .. } => RecordError::InvalidUtf8,
            ReadError::NegativeLength { len, .. } => {
                RecordError::NegativeLength(i32::try_from(len).unwrap_or(i32::MIN))
            }
            ReadError::Varint { at, error } => RecordError::Varint { at, error },
        }
    }
}

/// A non-nullable string: any negative length is the null it may not be (reported as -1).
pub(super) fn string(r: &mut ByteReader<'_>) -> Result<String, RecordError> {
    r.nullable_string()?.ok_or(RecordError::NegativeLength(-1))
}

/// Non-nullable bytes. Kafka writes them so; a null would only come from a foreign writer
/// and reads as empty.
fn bytes(r: &mut ByteReader<'_>) -> Result<Bytes, RecordError> {
    Ok(r.nullable_bytes()?
        .map(Bytes::copy_from_slice)
        .unwrap_or_default())
}

/// Fails if anything is left: a record that does not end where its schema does is not one
/// we understand.
fn finish(r: &ByteReader<'_>) -> Result<(), RecordError> {
    match r.remaining() {
        0 => Ok(()),
        n => Err(RecordError::TrailingBytes(n)),
    }
}

/// Decodes a `__consumer_offsets` key.
pub fn decode_key(key: &[u8]) -> Result<RecordKey, RecordError> {
    let mut r = ByteReader::new(key);
    let version = r.i16()?;
    if consumer_records::is_consumer_type(version) {
        let group = consumer_records::decode(key, None)?.group().to_owned();
        return Ok(RecordKey::Consumer { group });
    }
    let decoded = match version {
        0 | 1 => RecordKey::OffsetCommit(OffsetCommitKey {
            group: string(&mut r)?,
            topic: string(&mut r)?,
            partition: r.i32()?,
        }),
        2 => RecordKey::GroupMetadata(GroupMetadataKey {
            group: string(&mut r)?,
        }),
        _ => {
            return Err(RecordError::UnsupportedVersion {
                what: "__consumer_offsets key",
                version,
            });
        }
    };
    finish(&r)?;
    Ok(decoded)
}

/// Decodes an OffsetCommitValue of versions 0 to 3.
pub fn decode_offset_commit_value(value: &[u8]) -> Result<OffsetCommitValue, RecordError> {
    let mut r = ByteReader::new(value);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err(RecordError::UnsupportedVersion {
            what: "OffsetCommitValue",
            version,
        });
    }
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = string(&mut r)?;
    let commit_timestamp = r.i64()?;
    let expire_timestamp = if version == 1 {
        Some(r.i64()?).filter(|t| *t >= 0)
    } else {
        None
    };
    finish(&r)?;
    Ok(OffsetCommitValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
        expire_timestamp,
    })
}

/// Decodes a GroupMetadataValue of versions 0 to 3.
pub fn decode_group_metadata_value(value: &[u8]) -> Result<GroupMetadataValue, RecordError> {
    let mut r = ByteReader::new(value);
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return Err(RecordError::UnsupportedVersion {
            what: "GroupMetadataValue",
            version,
        });
    }
    let protocol_type = string(&mut r)?;
    let generation = r.i32()?;
    let protocol = r.nullable_string()?;
    let leader = r.nullable_string()?;
    let current_state_timestamp = if version >= 2 { r.i64()? } else { -1 };
    let count = r.i32()?;
    let mut members = Vec::new();
    for _ in 0..count.max(0) {
        members.push(decode_member(&mut r, version)?);
    }
    finish(&r)?;
    Ok(GroupMetadataValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp,
        members,
    })
}

fn decode_member(r: &mut ByteReader<'_>, version: i16) -> Result<MemberMetadataValue, RecordError> {
    let member_id = string(r)?;
    let group_instance_id = if version >= 3 {
        r.nullable_string()?
    } else {
        None
    };
    let client_id = string(r)?;
    let client_host = string(r)?;
    let session_or_rebalance = r.i32()?;
    // v0 has only the session timeout; Kafka then uses it as the rebalance timeout too.
    let (rebalance_timeout, session_timeout) = if version >= 1 {
        (session_or_rebalance, r.i32()?)
    } else {
        (session_or_rebalance, session_or_rebalance)
    };
    Ok(MemberMetadataValue {
        member_id,
        group_instance_id,
        client_id,
        client_host,
        rebalance_timeout,
        session_timeout,
        subscription: bytes(r)?,
        assignment: bytes(r)?,
    })
}

/// A decoded `__consumer_offsets` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodedRecord {
    /// A committed offset.
    Offset {
        /// Group, topic and partition of the offset.
        key: OffsetCommitKey,
        /// The committed offset; `None` for a tombstone (offset deleted or expired).
        value: Option<OffsetCommitValue>,
    },
    /// A group's metadata.
    Group {
        /// The group the record is about.
        key: GroupMetadataKey,
        /// The group's persisted state; `None` for a tombstone.
        value: Option<GroupMetadataValue>,
    },
    /// A KIP-848 consumer group's record.
    Consumer(ConsumerRecord),
}

/// Decodes a key and its (possibly null) value.
pub fn decode_record(key: &[u8], value: Option<&[u8]>) -> Result<DecodedRecord, RecordError> {
    Ok(match decode_key(key)? {
        RecordKey::OffsetCommit(key) => DecodedRecord::Offset {
            key,
            value: value.map(decode_offset_commit_value).transpose()?,
        },
        RecordKey::GroupMetadata(key) => DecodedRecord::Group {
            key,
            value: value.map(decode_group_metadata_value).transpose()?,
        },
        RecordKey::Consumer { .. } => {
            DecodedRecord::Consumer(consumer_records::decode(key, value)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset_key_fixture() -> Vec<u8> {
        // key version 1 | group "g1" | topic "t" | partition 2
        vec![0, 1, 0, 2, b'g', b'1', 0, 1, b't', 0, 0, 0, 2]
    }

    fn offset_value_fixture() -> Vec<u8> {
        let mut v = vec![0, 3]; // value version 3
        v.extend_from_slice(&42i64.to_be_bytes()); // offset
        v.extend_from_slice(&[0, 0, 0, 5]); // leader epoch
        v.extend_from_slice(&[0, 1, b'm']); // metadata "m"
        v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x03, 0xe8]); // commit timestamp 1000
        v
    }

    fn group_value_fixture() -> Vec<u8> {
        let mut v = vec![0, 3]; // value version 3
        v.extend_from_slice(&[0, 8]);
        v.extend_from_slice(b"consumer"); // protocol type
        v.extend_from_slice(&[0, 0, 0, 1]); // generation
        v.extend_from_slice(&[0, 5]);
        v.extend_from_slice(b"range"); // protocol
        v.extend_from_slice(&[0, 2, b'm', b'1']); // leader
        v.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x03, 0xe8]); // current state timestamp
        v.extend_from_slice(&[0, 0, 0, 1]); // one member
        v.extend_from_slice(&[0, 2, b'm', b'1']); // member id
        v.extend_from_slice(&[0xff, 0xff]); // group instance id: null
        v.extend_from_slice(&[0, 1, b'c']); // client id
        v.extend_from_slice(&[0, 1, b'h']); // client host
        v.extend_from_slice(&[0, 0, 0x75, 0x30]); // rebalance timeout 30000
        v.extend_from_slice(&[0, 0, 0x27, 0x10]); // session timeout 10000
        v.extend_from_slice(&[0, 0, 0, 2, 1, 2]); // subscription
        v.extend_from_slice(&[0, 0, 0, 1, 3]); // assignment
        v
    }

    fn group_value() -> GroupMetadataValue {
        GroupMetadataValue {
            protocol_type: "consumer".to_owned(),
            generation: 1,
            protocol: Some("range".to_owned()),
            leader: Some("m1".to_owned()),
            current_state_timestamp: 1_000,
            members: vec![MemberMetadataValue {
                member_id: "m1".to_owned(),
                group_instance_id: None,
                client_id: "c".to_owned(),
                client_host: "h".to_owned(),
                rebalance_timeout: 30_000,
                session_timeout: 10_000,
                subscription: Bytes::from_static(&[1, 2]),
                assignment: Bytes::from_static(&[3]),
            }],
        }
    }

    #[test]
    fn offset_commit_key_and_value_match_kafka_bytes() {
        let key = OffsetCommitKey {
            group: "g1".to_owned(),
            topic: "t".to_owned(),
            partition: 2,
        };
        assert_eq!(key.encode().as_ref(), offset_key_fixture().as_slice());
        let value = OffsetCommitValue {
            offset: 42,
            leader_epoch: 5,
            metadata: "m".to_owned(),
            commit_timestamp: 1_000,
            expire_timestamp: None,
        };
        assert_eq!(value.encode().as_ref(), offset_value_fixture().as_slice());
        assert_eq!(
            decode_key(&offset_key_fixture()),
            Ok(RecordKey::OffsetCommit(key))
        );
        assert_eq!(
            decode_offset_commit_value(&offset_value_fixture()),
            Ok(value)
        );
    }

    #[test]
    fn group_metadata_key_and_value_match_kafka_bytes() {
        let key = GroupMetadataKey {
            group: "g1".to_owned(),
        };
        assert_eq!(key.encode().as_ref(), &[0, 2, 0, 2, b'g', b'1']);
        assert_eq!(
            group_value().encode().as_ref(),
            group_value_fixture().as_slice()
        );
        assert_eq!(
            decode_group_metadata_value(&group_value_fixture()),
            Ok(group_value())
        );
    }

    #[test]
    fn values_round_trip() {
        let mut value = group_value();
        value.members.push(MemberMetadataValue {
            member_id: "m2".to_owned(),
            group_instance_id: Some("instance-2".to_owned()),
            client_id: "c2".to_owned(),
            client_host: "/10.0.0.2".to_owned(),
            rebalance_timeout: 1,
            session_timeout: 2,
            subscription: Bytes::new(),
            assignment: Bytes::from_static(b"xyz"),
        });
        assert_eq!(decode_group_metadata_value(&value.encode()), Ok(value));
        let empty = GroupMetadataValue {
            protocol_type: String::new(),
            generation: 7,
            protocol: None,
            leader: None,
            current_state_timestamp: -1,
            members: Vec::new(),
        };
        assert_eq!(decode_group_metadata_value(&empty.encode()), Ok(empty));
        let with_expiry = OffsetCommitValue {
            offset: -1,
            leader_epoch: -1,
            metadata: "ünïcode".to_owned(),
            commit_timestamp: 5,
            expire_timestamp: Some(99),
        };
        let bytes = with_expiry.encode();
        assert_eq!(
            &bytes[..2],
            &[0, 1],
            "an explicit expiry needs value version 1"
        );
        assert_eq!(decode_offset_commit_value(&bytes), Ok(with_expiry));
    }

    #[test]
    fn older_value_versions_decode() {
        // OffsetCommitValue v0: offset, metadata, commit timestamp.
        let mut v0 = vec![0, 0];
        v0.extend_from_slice(&7i64.to_be_bytes());
        v0.extend_from_slice(&[0, 0]);
        v0.extend_from_slice(&9i64.to_be_bytes());
        let decoded =
            decode_offset_commit_value(&v0).map(|v| (v.offset, v.leader_epoch, v.commit_timestamp));
        assert_eq!(decoded, Ok((7, -1, 9)));
        // GroupMetadataValue v0 member: no instance id, no rebalance timeout, no state time.
        let mut g0 = vec![0, 0, 0, 8];
        g0.extend_from_slice(b"consumer");
        g0.extend_from_slice(&[0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1]);
        g0.extend_from_slice(&[0, 1, b'm', 0, 1, b'c', 0, 1, b'h', 0, 0, 0x27, 0x10]);
        g0.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        let value = decode_group_metadata_value(&g0);
        let member = value
            .as_ref()
            .ok()
            .map(|v| (v.current_state_timestamp, v.members[0].rebalance_timeout));
        assert_eq!(member, Some((-1, 10_000)));
    }

    #[test]
    fn every_truncation_is_a_clean_error() {
        for fixture in [offset_key_fixture(), vec![0, 2, 0, 2, b'g', b'1']] {
            for cut in 0..fixture.len() {
                assert!(decode_key(&fixture[..cut]).is_err(), "key cut at {cut}");
            }
        }
        let value = offset_value_fixture();
        for cut in 0..value.len() {
            assert!(decode_offset_commit_value(&value[..cut]).is_err());
        }
        let group = group_value_fixture();
        for cut in 0..group.len() {
            assert!(decode_group_metadata_value(&group[..cut]).is_err());
        }
        let mut long = group_value_fixture();
        long.push(0);
        assert_eq!(
            decode_group_metadata_value(&long),
            Err(RecordError::TrailingBytes(1))
        );
        assert!(matches!(
            decode_key(&[0, 9, 0, 0]),
            Err(RecordError::UnsupportedVersion { version: 9, .. })
        ));
    }

    #[test]
    fn tombstones_have_keys_and_no_value() {
        let record = offset_tombstone("g1", "t", 2);
        assert_eq!(record.key.as_ref(), offset_key_fixture().as_slice());
        assert_eq!(record.value, None);
        let decoded = decode_record(&group_tombstone("g").key, None);
        assert!(matches!(
            decoded,
            Ok(DecodedRecord::Group { value: None, .. })
        ));
    }

    #[test]
    fn partition_for_group_follows_kafka() {
        // Java: "hello".hashCode() == 99162322; "Aa" and "BB" collide at 2112.
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("Aa"), 2112);
        assert_eq!(java_string_hash("BB"), 2112);
        assert_eq!(partition_for_group("hello", 50), 22);
        assert_eq!(partition_for_group("", 50), 0);
        // Hash is exactly i32::MIN: Utils.abs gives 0.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for_group("polygenelubricants", 50), 0);
        // Negative hashes use abs, not `& 0x7fffffff` (which would give 17 here).
        assert_eq!(java_string_hash("test-consumer-group"), -1_793_216_381);
        assert_eq!(partition_for_group("test-consumer-group", 50), 31);
        // Hashing is over UTF-16 code units, surrogate pairs included.
        assert_eq!(partition_for_group("groupé", 50), 6);
        assert_eq!(java_string_hash("g😀"), 1_871_882);
    }
}

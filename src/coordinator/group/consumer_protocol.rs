//! Just enough of the client-side "consumer" embedded protocol to read which topics a member
//! subscribes to (used to protect subscribed topics from OffsetDelete and offset expiry), which
//! partitions a cooperative member still owns, and to read and write assignments for classic
//! members of a KIP-848 consumer group, whose assignment the coordinator computes.
//!
//! Runs on the shard that owns the group's `__consumer_offsets` partition. The broker otherwise
//! passes subscriptions through untouched, so every assignor (range, roundrobin, sticky,
//! cooperative-sticky) works without the broker understanding it.
//!
//! Not `kafka-protocol`'s `ConsumerProtocolSubscription` decoder: the bytes come from any
//! client's JoinGroup, and that decoder reserves whatever its array counts claim (the abort the
//! request bounds check exists for), while this reader only grows with the bytes it reads.

use bytes::{BufMut, Bytes, BytesMut};

use super::records::{self, RecordError};
use crate::protocol::byte_reader::ByteReader;

/// Partitions by topic name, as the embedded protocol carries them.
pub type TopicPartitionList = Vec<(String, Vec<i32>)>;

/// `protocol_type` of groups formed by Kafka consumers.
pub const PROTOCOL_TYPE: &str = "consumer";

/// Topics of a `ConsumerProtocolSubscription` (every version starts with an i16 version and a
/// non-flexible array of topic names; later fields are ignored).
pub fn subscription_topics(metadata: &[u8]) -> Result<Vec<String>, RecordError> {
    let mut reader = ByteReader::new(metadata);
    let _version = reader.i16()?;
    let count = reader.i32()?;
    if count < 0 {
        return Ok(Vec::new());
    }
    // The count is untrusted: do not preallocate from it.
    let mut topics = Vec::new();
    for _ in 0..count {
        topics.push(records::string(&mut reader)?);
    }
    Ok(topics)
}

/// The partitions a `ConsumerProtocolSubscription` v1+ says the member still owns (what a
/// cooperative member keeps across a rejoin); empty for v0, which has no such field.
pub fn owned_partitions(metadata: &[u8]) -> Result<TopicPartitionList, RecordError> {
    let mut reader = ByteReader::new(metadata);
    let version = reader.i16()?;
    let count = reader.i32()?;
    for _ in 0..count.max(0) {
        records::string(&mut reader)?;
    }
    let _user_data = reader.nullable_bytes()?;
    if version < 1 {
        return Ok(Vec::new());
    }
    topic_partitions(&mut reader)
}

/// A `ConsumerProtocolAssignment` v0: the partitions, no user data.
pub fn encode_assignment(assignment: &TopicPartitionList) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    buf.put_i32(assignment.len() as i32);
    for (topic, partitions) in assignment {
        // Topic names are at most 249 bytes (validated at creation).
        buf.put_i16(topic.len() as i16);
        buf.put_slice(topic.as_bytes());
        buf.put_i32(partitions.len() as i32);
        for p in partitions {
            buf.put_i32(*p);
        }
    }
    buf.put_i32(-1);
    buf.freeze()
}

/// The partitions of a `ConsumerProtocolAssignment` (any version).
pub fn decode_assignment(bytes: &[u8]) -> Result<TopicPartitionList, RecordError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut reader = ByteReader::new(bytes);
    let _version = reader.i16()?;
    topic_partitions(&mut reader)
}

fn topic_partitions(reader: &mut ByteReader<'_>) -> Result<TopicPartitionList, RecordError> {
    let mut out = Vec::new();
    for _ in 0..reader.i32()?.max(0) {
        let topic = records::string(reader)?;
        let mut partitions = Vec::new();
        for _ in 0..reader.i32()?.max(0) {
            partitions.push(reader.i32()?);
        }
        out.push((topic, partitions));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_topics_of_a_v0_subscription() {
        // version 0, 2 topics "a" and "bc", user data null
        let bytes = [
            0, 0, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c', 0xff, 0xff, 0xff, 0xff,
        ];
        assert_eq!(subscription_topics(&bytes).unwrap(), vec!["a", "bc"]);
    }

    #[test]
    fn owned_partitions_of_a_v1_subscription_and_assignments_round_trip() {
        // version 1, topic "a", user data null, owned a: [0, 2]
        let mut bytes = vec![0, 1, 0, 0, 0, 1, 0, 1, b'a', 0xff, 0xff, 0xff, 0xff];
        bytes.extend_from_slice(&[0, 0, 0, 1, 0, 1, b'a', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2]);
        let owned = owned_partitions(&bytes).unwrap();
        assert_eq!(owned, vec![("a".to_owned(), vec![0, 2])]);
        assert_eq!(
            decode_assignment(&encode_assignment(&owned)).unwrap(),
            owned
        );
        assert!(owned_partitions(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn truncated_subscription_is_an_error() {
        let bytes = [0, 0, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b'];
        assert!(subscription_topics(&bytes).is_err());
    }
}

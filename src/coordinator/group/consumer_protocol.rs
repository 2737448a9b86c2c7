//! Just enough of the client-side "consumer" embedded protocol to read which topics a member
//! subscribes to (used to protect subscribed topics from OffsetDelete and offset expiry).
//!
//! Runs on the shard that owns the group's `__consumer_offsets` partition. The broker otherwise
//! passes subscriptions through untouched, so every assignor (range, roundrobin, sticky,
//! cooperative-sticky) works without the broker understanding it.
//!
//! Not `kafka-protocol`'s `ConsumerProtocolSubscription` decoder: the bytes come from any
//! client's JoinGroup, and that decoder reserves whatever its array counts claim (the abort the
//! request bounds check exists for), while this reader only grows with the bytes it reads.

use super::records::{self, RecordError};
use crate::protocol::byte_reader::ByteReader;

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
    fn truncated_subscription_is_an_error() {
        let bytes = [0, 0, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b'];
        assert!(subscription_topics(&bytes).is_err());
    }
}

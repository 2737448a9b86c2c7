//! Hand-framed FetchResponse (v4..=v17) so record data can go from the page cache to the
//! socket without passing through user space: the response is a list of parts, byte chunks
//! we encode and file regions the connection sends with sendfile. Built on the shard that
//! owns the partitions; checked byte-for-byte against the `kafka-protocol` encoder in tests.

use bytes::{BufMut, Bytes, BytesMut};

use crate::file_region::FileRegion;

/// A piece of an outgoing response.
pub enum Part {
    /// Bytes encoded in memory (headers, fields, or records already read into memory).
    Bytes(Bytes),
    /// A region of a segment file, sent with sendfile.
    File(FileRegion),
}

impl Part {
    /// Bytes this part puts on the wire.
    pub fn len(&self) -> u64 {
        match self {
            Part::Bytes(b) => b.len() as u64,
            Part::File(region) => region.len,
        }
    }
    /// True when the part puts no bytes on the wire.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Identifies a topic in the response: by name before v13, by id from v13.
pub enum TopicKey<'a> {
    /// The topic name (versions before 13).
    Name(&'a str),
    /// The topic id (version 13 and later).
    Id(uuid::Uuid),
}

/// Where a partition's records come from.
pub enum RecordsSource {
    /// No records: encoded as an empty (zero-length) records field, not a null one.
    None,
    /// Records already in memory, copied into the response buffer.
    Bytes(Bytes),
    /// Records in a segment file, sent from the page cache as their own part.
    File(FileRegion),
}

/// One partition's fields as FetchResponse carries them.
pub struct PartitionHeader<'a> {
    /// Partition id within the topic.
    pub partition_index: i32,
    /// Kafka error code for the partition (0 for none; see `error_codes`).
    pub error_code: i16,
    /// Offset one past the last committed (replicated) record.
    pub high_watermark: i64,
    /// Offset below which no transaction is open (`LastStableOffset`); -1 when unknown.
    pub last_stable_offset: i64,
    /// Earliest offset still in the log; written from v5 on.
    pub log_start_offset: i64,
    /// `None` encodes a null array (read_uncommitted), `Some(&[])` an empty one.
    pub aborted_transactions: Option<&'a [(i64, i64)]>,
    /// Broker id a follower-fetching consumer should use instead (v11+, KIP-392); -1 for none.
    pub preferred_read_replica: i32,
    /// v12+, for a follower whose log diverged from the leader's (KIP-320): the largest epoch
    /// the leader has at or below the follower's last fetched epoch, and where it ends on the
    /// leader. The follower truncates there. Tagged field 0.
    pub diverging_epoch: Option<(i32, i64)>,
}

/// Encodes one FetchResponse into [`Part`]s: call [`Self::new`], then for each topic
/// [`Self::begin_topic`], one [`Self::partition`] per partition, [`Self::end_topic`], and
/// finally [`Self::finish`]. The counts given up front must match the calls.
pub struct FetchResponseWriter {
    version: i16,
    flexible: bool,
    buf: BytesMut,
    parts: Vec<Part>,
}

/// Oldest FetchResponse version the writer encodes.
pub const MIN_VERSION: i16 = 4;
/// Newest FetchResponse version the writer encodes (flexible from 12, topic ids from 13; v18
/// answers as v17).
pub const MAX_VERSION: i16 = 18;

impl FetchResponseWriter {
    /// Starts a response: header, throttle time, top-level error and session id.
    pub fn new(
        version: i16,
        correlation_id: i32,
        error_code: i16,
        session_id: i32,
        topic_count: usize,
    ) -> Self {
        debug_assert!((MIN_VERSION..=MAX_VERSION).contains(&version));
        let flexible = version >= 12;
        let mut w = Self {
            version,
            flexible,
            buf: BytesMut::with_capacity(256),
            parts: Vec::with_capacity(4),
        };
        w.buf.put_i32(0); // size, patched in finish()
        w.buf.put_i32(correlation_id);
        if flexible {
            w.buf.put_u8(0); // response header tagged fields
        }
        w.buf.put_i32(0); // throttle_time_ms
        if version >= 7 {
            w.buf.put_i16(error_code);
            w.buf.put_i32(session_id);
        }
        w.array_len(topic_count);
        w
    }

    /// Sets the response's `throttle_time_ms` (written as 0 by [`Self::new`]).
    #[must_use]
    pub fn with_throttle_time_ms(mut self, ms: i32) -> Self {
        // The field follows the size, the correlation id and (flexible) the header's tags.
        let at = if self.flexible { 9 } else { 8 };
        self.buf[at..at + 4].copy_from_slice(&ms.to_be_bytes());
        self
    }

    fn uvarint(&mut self, v: u64) {
        crate::protocol::varint::write_unsigned_varint(&mut self.buf, v);
    }

    fn array_len(&mut self, n: usize) {
        if self.flexible {
            self.uvarint(n as u64 + 1);
        } else {
            self.buf.put_i32(n as i32);
        }
    }

    fn nullable_array_len(&mut self, n: Option<usize>) {
        match (n, self.flexible) {
            (None, true) => self.buf.put_u8(0),
            (None, false) => self.buf.put_i32(-1),
            (Some(n), _) => self.array_len(n),
        }
    }

    fn tagged_fields(&mut self) {
        if self.flexible {
            self.buf.put_u8(0);
        }
    }

    /// Starts a topic entry that `partition_count` partitions follow; pass `TopicKey::Name` below
    /// v13 and `TopicKey::Id` from v13 (not checked here).
    pub fn begin_topic(&mut self, topic: TopicKey<'_>, partition_count: usize) {
        match topic {
            TopicKey::Id(id) => self.buf.put_slice(id.as_bytes()),
            TopicKey::Name(name) if self.flexible => {
                self.uvarint(name.len() as u64 + 1);
                self.buf.put_slice(name.as_bytes());
            }
            TopicKey::Name(name) => {
                self.buf.put_i16(name.len() as i16);
                self.buf.put_slice(name.as_bytes());
            }
        }
        self.array_len(partition_count);
    }

    /// Closes the topic entry begun by [`Self::begin_topic`] (its tagged fields, when flexible).
    pub fn end_topic(&mut self) {
        self.tagged_fields();
    }

    /// Appends one partition: its header fields for this version, then its records. A
    /// `RecordsSource::File` ends the current byte part, so the region follows in send order.
    pub fn partition(&mut self, h: &PartitionHeader<'_>, records: RecordsSource) {
        self.buf.put_i32(h.partition_index);
        self.buf.put_i16(h.error_code);
        self.buf.put_i64(h.high_watermark);
        self.buf.put_i64(h.last_stable_offset);
        if self.version >= 5 {
            self.buf.put_i64(h.log_start_offset);
        }
        self.nullable_array_len(h.aborted_transactions.map(|a| a.len()));
        for (producer_id, first_offset) in h.aborted_transactions.unwrap_or(&[]) {
            self.buf.put_i64(*producer_id);
            self.buf.put_i64(*first_offset);
            self.tagged_fields();
        }
        if self.version >= 11 {
            self.buf.put_i32(h.preferred_read_replica);
        }
        let len = match &records {
            RecordsSource::None => 0,
            RecordsSource::Bytes(b) => b.len() as u64,
            RecordsSource::File(region) => region.len,
        };
        if self.flexible {
            self.uvarint(len + 1);
        } else {
            self.buf.put_i32(len as i32);
        }
        match records {
            RecordsSource::None => {}
            RecordsSource::Bytes(b) => self.buf.put_slice(&b),
            RecordsSource::File(region) => {
                self.flush_bytes();
                self.parts.push(match region.cached {
                    // Direct mode's tail cache: sent from memory, shared, not copied here.
                    Some(bytes) => Part::Bytes(bytes.slice(..region.len as usize)),
                    None => Part::File(region),
                });
            }
        }
        match h.diverging_epoch {
            Some((epoch, end_offset)) if self.flexible => {
                // One tagged field: tag 0, its size, then EpochEndOffset with its own empty
                // tagged fields.
                self.buf.put_u8(1);
                self.buf.put_u8(0);
                self.buf.put_u8(4 + 8 + 1);
                self.buf.put_i32(epoch);
                self.buf.put_i64(end_offset);
                self.buf.put_u8(0);
            }
            _ => self.tagged_fields(),
        }
    }

    fn flush_bytes(&mut self) {
        if !self.buf.is_empty() {
            self.parts.push(Part::Bytes(self.buf.split().freeze()));
        }
    }

    /// Ends the response and patches the frame size; returns the parts in send order.
    pub fn finish(mut self) -> Vec<Part> {
        self.tagged_fields();
        self.flush_bytes();
        let total: u64 = self.parts.iter().map(Part::len).sum();
        let size = (total - 4) as i32;
        if let Some(Part::Bytes(first)) = self.parts.first_mut() {
            let mut patched = BytesMut::from(&first[..]);
            patched[0..4].copy_from_slice(&size.to_be_bytes());
            *first = patched.freeze();
        }
        self.parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::messages::{
        BrokerId, FetchResponse, ProducerId, ResponseHeader, TopicName,
    };
    use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};

    fn flatten(parts: Vec<Part>) -> Vec<u8> {
        parts
            .into_iter()
            .flat_map(|p| match p {
                Part::Bytes(b) => b.to_vec(),
                Part::File(_) => panic!("no file parts in this test"),
            })
            .collect()
    }

    fn reference(version: i16, records: &Bytes, id: uuid::Uuid, aborted: bool) -> Vec<u8> {
        let mut p0 = PartitionData::default();
        p0.partition_index = 3;
        p0.error_code = 0;
        p0.high_watermark = 42;
        p0.last_stable_offset = 41;
        p0.log_start_offset = 7;
        p0.aborted_transactions = aborted.then(|| {
            let mut a = AbortedTransaction::default();
            a.producer_id = ProducerId(9);
            a.first_offset = 11;
            vec![a]
        });
        p0.preferred_read_replica = BrokerId(-1);
        p0.records = Some(records.clone());
        let mut p1 = PartitionData::default();
        p1.partition_index = 4;
        p1.error_code = 1;
        p1.high_watermark = -1;
        p1.last_stable_offset = -1;
        p1.log_start_offset = -1;
        p1.preferred_read_replica = BrokerId(-1);
        p1.aborted_transactions = None;
        p1.records = Some(Bytes::new());
        if version >= 12 {
            p1.diverging_epoch.epoch = 5;
            p1.diverging_epoch.end_offset = 1234;
        }
        let mut topic = FetchableTopicResponse::default();
        topic.topic = TopicName(StrBytes::from_static_str("orders"));
        topic.topic_id = id;
        topic.partitions = vec![p0, p1];
        let mut resp = FetchResponse::default();
        resp.error_code = 0;
        resp.session_id = 0;
        resp.responses = vec![topic];
        let mut header = ResponseHeader::default();
        header.correlation_id = 77;
        let mut body = BytesMut::new();
        header
            .encode(&mut body, FetchResponse::header_version(version))
            .unwrap();
        resp.encode(&mut body, version).unwrap();
        let mut out = (body.len() as i32).to_be_bytes().to_vec();
        out.extend_from_slice(&body);
        out
    }

    /// Byte-exact against kafka-protocol's generated encoder for every supported version.
    #[test]
    fn matches_the_generated_encoder_for_every_version() {
        let records = Bytes::from_static(b"pretend-these-are-record-batches");
        let id = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        for version in MIN_VERSION..=MAX_VERSION {
            for aborted in [false, true] {
                let mut w = FetchResponseWriter::new(version, 77, 0, 0, 1);
                w.begin_topic(
                    if version >= 13 {
                        TopicKey::Id(id)
                    } else {
                        TopicKey::Name("orders")
                    },
                    2,
                );
                let list = [(9i64, 11i64)];
                let h0 = PartitionHeader {
                    partition_index: 3,
                    error_code: 0,
                    high_watermark: 42,
                    last_stable_offset: 41,
                    log_start_offset: 7,
                    aborted_transactions: aborted.then_some(&list[..]),
                    preferred_read_replica: -1,
                    diverging_epoch: None,
                };
                w.partition(&h0, RecordsSource::Bytes(records.clone()));
                let h1 = PartitionHeader {
                    partition_index: 4,
                    error_code: 1,
                    high_watermark: -1,
                    last_stable_offset: -1,
                    log_start_offset: -1,
                    aborted_transactions: None,
                    preferred_read_replica: -1,
                    diverging_epoch: (version >= 12).then_some((5, 1234)),
                };
                w.partition(&h1, RecordsSource::None);
                w.end_topic();
                assert_eq!(
                    flatten(w.finish()),
                    reference(version, &records, id, aborted),
                    "v{version} aborted={aborted}"
                );
            }
        }
    }

    #[test]
    fn file_regions_become_their_own_parts() {
        let file = std::rc::Rc::new(tempfile::tempfile().unwrap());
        let mut w = FetchResponseWriter::new(12, 1, 0, 0, 1);
        w.begin_topic(TopicKey::Name("t"), 1);
        let h = PartitionHeader {
            partition_index: 0,
            error_code: 0,
            high_watermark: 1,
            last_stable_offset: 1,
            log_start_offset: 0,
            aborted_transactions: None,
            preferred_read_replica: -1,
            diverging_epoch: None,
        };
        w.partition(
            &h,
            RecordsSource::File(FileRegion {
                file,
                position: 10,
                len: 100,
                is_tail: true,
                cached: None,
            }),
        );
        w.end_topic();
        let parts = w.finish();
        assert_eq!(parts.len(), 3);
        assert!(matches!(
            parts[1],
            Part::File(FileRegion {
                position: 10,
                len: 100,
                ..
            })
        ));
        let total: u64 = parts.iter().map(Part::len).sum();
        let Part::Bytes(first) = &parts[0] else {
            panic!("first part is bytes")
        };
        assert_eq!(
            i32::from_be_bytes(first[0..4].try_into().unwrap()) as u64,
            total - 4
        );
    }
}

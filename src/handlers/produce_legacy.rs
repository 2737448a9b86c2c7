//! Produce v0-v2 framing. Old librdkafka (2.0, Debian's kcat) compresses with gzip, snappy
//! or lz4 only when the broker lists Produce v0, although it then sends a v7+ request. So we
//! decode and answer v0-v2 by hand (the generated codec starts at v3) and run the same
//! produce handler; the records must still be RecordBatch v2, as everywhere in Sluice: old
//! message formats (magic 0/1) are refused with CORRUPT_MESSAGE.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::handlers::request::{DispatchError, Reply};

/// Versions handled here; the generated codec covers the rest.
pub const LEGACY_MAX_VERSION: i16 = 2;

fn malformed(what: &str) -> DispatchError {
    DispatchError::Malformed(format!("produce v0-v2: {what}"))
}

fn need(body: &Bytes, n: usize, what: &str) -> Result<(), DispatchError> {
    if body.remaining() < n {
        Err(malformed(what))
    } else {
        Ok(())
    }
}

fn string(body: &mut Bytes) -> Result<String, DispatchError> {
    need(body, 2, "string length")?;
    let len = body.get_i16();
    let len = usize::try_from(len).map_err(|_| malformed("negative string length"))?;
    need(body, len, "string")?;
    String::from_utf8(body.split_to(len).to_vec()).map_err(|_| malformed("string is not UTF-8"))
}

fn array_len(body: &mut Bytes, element_min: usize) -> Result<usize, DispatchError> {
    need(body, 4, "array length")?;
    let n = usize::try_from(body.get_i32()).map_err(|_| malformed("negative array length"))?;
    // Each element takes at least `element_min` bytes: an absurd count is caught here.
    need(body, n.saturating_mul(element_min), "array elements")?;
    Ok(n)
}

/// Decodes a v0-v2 request body into the generated struct.
pub fn decode(mut body: Bytes) -> Result<ProduceRequest, DispatchError> {
    need(&body, 6, "acks and timeout")?;
    let mut request = ProduceRequest::default();
    request.acks = body.get_i16();
    request.timeout_ms = body.get_i32();
    for _ in 0..array_len(&mut body, 6)? {
        let mut topic = TopicProduceData::default();
        topic.name = TopicName(StrBytes::from_string(string(&mut body)?));
        for _ in 0..array_len(&mut body, 8)? {
            need(&body, 8, "partition")?;
            let mut p = PartitionProduceData::default();
            p.index = body.get_i32();
            let len = body.get_i32();
            p.records = match len {
                -1 => None,
                n => {
                    let n = usize::try_from(n).map_err(|_| malformed("negative records length"))?;
                    need(&body, n, "records")?;
                    Some(body.split_to(n))
                }
            };
            topic.partition_data.push(p);
        }
        request.topic_data.push(topic);
    }
    Ok(request)
}

/// Encodes a v0-v2 response frame (header v0: the correlation id only).
pub fn encode(correlation_id: i32, version: i16, response: &ProduceResponse) -> Reply {
    let mut buf = BytesMut::with_capacity(64);
    buf.put_i32(0);
    buf.put_i32(correlation_id);
    buf.put_i32(response.responses.len() as i32);
    for topic in &response.responses {
        buf.put_i16(topic.name.0.len() as i16);
        buf.put_slice(topic.name.0.as_bytes());
        buf.put_i32(topic.partition_responses.len() as i32);
        for p in &topic.partition_responses {
            buf.put_i32(p.index);
            buf.put_i16(p.error_code);
            buf.put_i64(p.base_offset);
            if version >= 2 {
                buf.put_i64(p.log_append_time_ms);
            }
        }
    }
    if version >= 1 {
        buf.put_i32(response.throttle_time_ms);
    }
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    Reply::Frame(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };

    #[test]
    fn decodes_a_v2_request_and_refuses_truncation() {
        let mut b = BytesMut::new();
        b.put_i16(-1);
        b.put_i32(1500);
        b.put_i32(1);
        b.put_i16(1);
        b.put_slice(b"t");
        b.put_i32(1);
        b.put_i32(3);
        b.put_i32(4);
        b.put_slice(b"abcd");
        let whole = b.freeze();
        let r = decode(whole.clone()).unwrap();
        assert_eq!((r.acks, r.timeout_ms), (-1, 1500));
        assert_eq!(&*r.topic_data[0].name.0, "t");
        assert_eq!(r.topic_data[0].partition_data[0].index, 3);
        assert_eq!(
            r.topic_data[0].partition_data[0].records.as_deref(),
            Some(&b"abcd"[..])
        );
        for cut in 0..whole.len() {
            assert!(decode(whole.slice(..cut)).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn encodes_the_v2_response_layout() {
        let mut p = PartitionProduceResponse::default();
        p.index = 3;
        p.base_offset = 42;
        p.log_append_time_ms = -1;
        let mut t = TopicProduceResponse::default();
        t.name = TopicName(StrBytes::from_static_str("t"));
        t.partition_responses = vec![p];
        let mut r = ProduceResponse::default();
        r.responses = vec![t];
        let Reply::Frame(frame) = encode(7, 2, &r) else {
            panic!("a frame")
        };
        let expected: Vec<u8> = [
            &[0, 0, 0, 41][..],
            &7i32.to_be_bytes(),
            &1i32.to_be_bytes(),
            &[0, 1, b't'],
            &1i32.to_be_bytes(),
            &3i32.to_be_bytes(),
            &0i16.to_be_bytes(),
            &42i64.to_be_bytes(),
            &(-1i64).to_be_bytes(),
            &0i32.to_be_bytes(),
        ]
        .concat();
        assert_eq!(&frame[..], &expected[..]);
    }
}

//! Raw-socket tests of the Kafka wire protocol, without a client library: malformed frames,
//! version negotiation, byte-exact fixtures captured from a real client, and record-batch
//! validation on Produce. The `kafka-protocol` crate encodes and decodes the well-formed
//! messages; malformed ones and the fixtures are written out byte by byte.

mod common;

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::{Broker, BrokerOptions, unique_topic};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, ListOffsetsRequest, ListOffsetsResponse,
    MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, RequestHeader,
    ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{
    Decodable, Encodable, Request, StrBytes, encode_request_header_into_buffer,
};

/// How long to wait for the broker to answer or close a connection.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Kafka error codes the tests expect.
const NONE: i16 = 0;
const CORRUPT_MESSAGE: i16 = 2;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const UNSUPPORTED_VERSION: i16 = 35;

/// The APIs the broker promises (issue 2); ApiVersions must advertise each of them.
const PROMISED_APIS: [ApiKey; 10] = [
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::ApiVersions,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::DescribeConfigs,
    ApiKey::CreatePartitions,
    ApiKey::DescribeCluster,
];

// ---------------------------------------------------------------------------------------------
// Fixtures

/// The two first frames kcat 1.7.1 (librdkafka 2.0.2) sends, captured from a socket: an
/// ApiVersions v3 request, then, after a v0-format UNSUPPORTED_VERSION answer, a v0 request.
const KCAT_FIXTURES: &str = include_str!("fixtures/kcat-2.0.2-apiversions.hex");

fn kcat_frame(index: usize) -> Vec<u8> {
    let line = KCAT_FIXTURES
        .lines()
        .nth(index)
        .expect("fixture line present");
    hex_decode(line.trim())
}

fn hex_decode(hex: &str) -> Vec<u8> {
    assert!(hex.len().is_multiple_of(2), "odd hex length");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit"))
        .collect()
}

#[test]
fn fixtures_are_what_they_claim() {
    // ApiVersions v0, correlation id 2, client id "rdkafka": 17 bytes after the length.
    let v0 = kcat_frame(1);
    assert_eq!(
        v0,
        [
            &[0, 0, 0, 17, 0, 18, 0, 0, 0, 0, 0, 2, 0, 7][..],
            b"rdkafka"
        ]
        .concat()
    );
    let v3 = kcat_frame(0);
    assert_eq!(&v3[4..8], &[0, 18, 0, 3], "api key 18, version 3");
    assert!(v3.ends_with(b"\x0blibrdkafka\x062.0.2\x00"));
}

// ---------------------------------------------------------------------------------------------
// Connection helpers

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to broker");
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .expect("set timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// Reads one length-prefixed frame; returns its payload (correlation id onwards).
fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).expect("read response length");
    let len = i32::from_be_bytes(len);
    assert!(
        (4..64 << 20).contains(&len),
        "implausible response length {len}"
    );
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body).expect("read response body");
    body
}

/// Asserts the broker closes the connection (EOF or reset) without sending anything.
fn assert_closed_without_answer(stream: &mut TcpStream, what: &str) {
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!(
            "{what}: expected the connection closed, got {n} bytes: {:?}",
            &buf[..n]
        ),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("{what}: connection still open after {IO_TIMEOUT:?}")
        }
        Err(e) => panic!("{what}: unexpected read error {e}"),
    }
}

/// A v0 ApiVersions exchange on a fresh connection must still work: a bad client must never
/// take the listener down.
fn assert_listener_still_serves(port: u16) {
    let mut stream = connect(port);
    stream
        .write_all(&kcat_frame(1))
        .expect("send ApiVersions v0");
    let body = read_frame(&mut stream);
    let parsed = parse_api_versions_v0(&body);
    assert_eq!(parsed.correlation_id, 2);
    assert_eq!(parsed.error_code, NONE);
}

/// A v0 ApiVersions response parsed by hand, so the test also checks its exact length.
struct ApiVersionsV0 {
    correlation_id: i32,
    error_code: i16,
    /// api key -> (min, max)
    apis: BTreeMap<i16, (i16, i16)>,
}

fn parse_api_versions_v0(body: &[u8]) -> ApiVersionsV0 {
    let mut buf = body;
    assert!(buf.len() >= 10, "response too short: {body:?}");
    let correlation_id = buf.get_i32();
    let error_code = buf.get_i16();
    let count = buf.get_i32();
    assert!(count >= 0, "null api list");
    // v0 has no throttle time and no tagged fields: the entries end the frame exactly.
    assert_eq!(
        buf.len(),
        count as usize * 6,
        "v0 body must be exactly {count} entries of 6 bytes"
    );
    let mut apis = BTreeMap::new();
    for _ in 0..count {
        let (key, min, max) = (buf.get_i16(), buf.get_i16(), buf.get_i16());
        assert!(min <= max, "api {key}: min {min} > max {max}");
        assert!(
            apis.insert(key, (min, max)).is_none(),
            "api {key} listed twice"
        );
    }
    ApiVersionsV0 {
        correlation_id,
        error_code,
        apis,
    }
}

/// A typed request/response connection that negotiates versions like a client does.
struct Client {
    stream: TcpStream,
    correlation_id: i32,
    /// api key -> max version the broker advertises.
    versions: BTreeMap<i16, i16>,
}

impl Client {
    fn connect(port: u16) -> Client {
        let mut client = Client {
            stream: connect(port),
            correlation_id: 100,
            versions: BTreeMap::new(),
        };
        let response: ApiVersionsResponse = client.call(ApiVersionsRequest::default(), 0);
        assert_eq!(response.error_code, NONE);
        client.versions = response
            .api_keys
            .iter()
            .map(|a| (a.api_key, a.max_version))
            .collect();
        client
    }

    /// Highest version both sides support, below `cap` (a cap keeps requests on the
    /// topic-name based versions these tests build).
    fn version<R: Request>(&self, cap: i16) -> i16 {
        let broker_max = *self
            .versions
            .get(&R::KEY)
            .unwrap_or_else(|| panic!("broker does not advertise api {}", R::KEY));
        let v = broker_max.min(cap).min(R::VERSIONS.max);
        assert!(v >= R::VERSIONS.min, "no common version for api {}", R::KEY);
        v
    }

    fn call<R: Request>(&mut self, request: R, version: i16) -> R::Response {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("sluice-wire-test")));
        let mut payload = BytesMut::new();
        encode_request_header_into_buffer(&mut payload, &header).expect("encode header");
        request
            .encode(&mut payload, version)
            .expect("encode request");
        let mut frame = BytesMut::with_capacity(payload.len() + 4);
        frame.put_i32(payload.len() as i32);
        frame.put(payload);
        self.stream.write_all(&frame).expect("send request");

        let mut body = Bytes::from(read_frame(&mut self.stream));
        let header_version = ApiKey::try_from(R::KEY)
            .expect("known api key")
            .response_header_version(version);
        let header = ResponseHeader::decode(&mut body, header_version).expect("response header");
        assert_eq!(header.correlation_id, self.correlation_id, "correlation id");
        let response = R::Response::decode(&mut body, version).expect("decode response");
        assert!(
            !body.has_remaining(),
            "{} trailing bytes after response to api {} v{version}",
            body.remaining(),
            R::KEY
        );
        response
    }
}

// ---------------------------------------------------------------------------------------------
// Framing and negotiation

#[test]
fn kcat_api_versions_v0_gets_exact_v0_response() {
    let broker = Broker::start();
    let mut stream = connect(broker.base_port());
    stream.write_all(&kcat_frame(1)).expect("send fixture");
    let parsed = parse_api_versions_v0(&read_frame(&mut stream));
    assert_eq!(parsed.correlation_id, 2);
    assert_eq!(parsed.error_code, NONE);
    for api in PROMISED_APIS {
        assert!(
            parsed.apis.contains_key(&(api as i16)),
            "ApiVersions lacks {api:?}: {:?}",
            parsed.apis
        );
    }
    // librdkafka asks for v3 first; the broker must be able to answer it.
    let (min, max) = parsed.apis[&(ApiKey::ApiVersions as i16)];
    assert_eq!(min, 0, "ApiVersions must keep v0 for old clients");
    assert!(max >= 3, "ApiVersions max version {max} < 3");
}

#[test]
fn kcat_api_versions_v3_response_is_canonical() {
    let broker = Broker::start();
    let mut stream = connect(broker.base_port());
    stream.write_all(&kcat_frame(0)).expect("send fixture");
    let raw = read_frame(&mut stream);
    let mut body = Bytes::from(raw.clone());
    // ApiVersions responses always use header v0 (correlation id only), even for v3.
    assert_eq!(body.get_i32(), 1, "correlation id of the kcat v3 request");
    let response = ApiVersionsResponse::decode(&mut body, 3).expect("decode v3 response");
    assert!(!body.has_remaining(), "trailing bytes after v3 response");
    assert_eq!(response.error_code, NONE);
    assert!(response.unknown_tagged_fields.is_empty());
    // Old librdkafka (kcat) fails on default-valued tagged fields, so the broker must write
    // exactly the canonical encoding, in which defaults are omitted.
    let mut canonical = BytesMut::new();
    canonical.put_i32(1);
    response.encode(&mut canonical, 3).expect("re-encode");
    assert_eq!(
        raw,
        canonical.to_vec(),
        "v3 response differs from its canonical encoding"
    );
}

#[test]
fn unsupported_api_versions_version_gets_v0_error_response() {
    let broker = Broker::start();
    let mut stream = connect(broker.base_port());
    // ApiVersions v99 as a KIP-511 client sends it: header v2 (client id, empty tagged fields)
    // and a body the broker cannot know the layout of.
    let mut payload = BytesMut::new();
    payload.put_i16(ApiKey::ApiVersions as i16);
    payload.put_i16(99);
    payload.put_i32(7);
    payload.put_i16(9);
    payload.put_slice(b"wire-test");
    payload.put_u8(0);
    payload.put_slice(b"\x05sluice\x040.1\x00");
    let mut frame = BytesMut::new();
    frame.put_i32(payload.len() as i32);
    frame.put(payload);
    stream.write_all(&frame).expect("send ApiVersions v99");

    let parsed = parse_api_versions_v0(&read_frame(&mut stream));
    assert_eq!(parsed.correlation_id, 7);
    assert_eq!(parsed.error_code, UNSUPPORTED_VERSION);
    assert!(
        !parsed.apis.is_empty(),
        "the error response must list versions"
    );
    let (min, max) = parsed
        .apis
        .get(&(ApiKey::ApiVersions as i16))
        .copied()
        .expect("the error response must list ApiVersions itself");
    assert!(min == 0 && max >= 3, "ApiVersions range {min}..{max}");
    assert_listener_still_serves(broker.base_port());
}

#[test]
fn truncated_frame_closes_only_that_connection() {
    let broker = Broker::start();
    let mut stream = connect(broker.base_port());
    // Announce 100 bytes, send the first 12 of an ApiVersions request, then end the stream.
    let mut frame = vec![0, 0, 0, 100];
    frame.extend_from_slice(&kcat_frame(1)[4..16]);
    stream.write_all(&frame).expect("send truncated frame");
    stream.shutdown(Shutdown::Write).expect("half-close");
    assert_closed_without_answer(&mut stream, "truncated frame");
    assert_listener_still_serves(broker.base_port());
}

#[test]
fn absurd_frame_lengths_close_the_connection() {
    let broker = Broker::start();
    // i32::MAX and negative lengths: the broker must refuse at once, not try to allocate or
    // wait for 2 GiB. The stream stays open on our side, so only the broker can close it.
    for len in [i32::MAX, 0x4000_0000, -1, i32::MIN] {
        let mut stream = connect(broker.base_port());
        stream.write_all(&len.to_be_bytes()).expect("send length");
        stream
            .write_all(&kcat_frame(1)[4..])
            .expect("send some payload");
        assert_closed_without_answer(&mut stream, &format!("frame length {len}"));
    }
    assert_listener_still_serves(broker.base_port());
}

/// `queued.max.request.bytes`: while one connection holds most of the shard's request memory
/// (a large frame whose body is still arriving), a second connection's request waits; once the
/// first frame is done (here: refused as garbage, closing its connection), the second is
/// answered. Memory pressure delays requests; it never drops or corrupts them.
#[test]
fn request_memory_budget_holds_back_frames_until_room_is_freed() {
    let metrics = common::metrics_addr();
    let broker = Broker::start_with(
        BrokerOptions::default()
            .with_cores(1)
            .with_config("queued.max.request.bytes", "1024")
            .with_config("socket.request.max.bytes", "4096")
            .with_config("sluice.metrics.addr", &metrics),
    );
    let mut hog = connect(broker.base_port());
    hog.write_all(&1015i32.to_be_bytes()).expect("hog prefix");
    hog.write_all(&[0u8; 10]).expect("start of hog body");
    // The hog's frame (its first read step covers all of it) leaves 9 bytes of the budget.
    common::wait_for("the hog's reservation", Duration::from_secs(10), || {
        common::metric(&metrics, "sluice_request_memory_free_bytes") == 9
    });

    let mut waiter = connect(broker.base_port());
    let frame = kcat_frame(1);
    assert!(
        frame.len() > 9 + 4,
        "the request must not fit in the 9 bytes left"
    );
    waiter.write_all(&frame).expect("send ApiVersions");
    waiter
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("short timeout");
    let mut byte = [0u8; 1];
    match waiter.read(&mut byte) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("answered while the budget was spent: {other:?}"),
    }

    hog.write_all(&[0xffu8; 1005]).expect("rest of hog body");
    assert_closed_without_answer(&mut hog, "garbage frame");
    waiter.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    let parsed = parse_api_versions_v0(&read_frame(&mut waiter));
    assert_eq!((parsed.correlation_id, parsed.error_code), (2, NONE));
}

#[test]
fn unknown_api_key_closes_the_connection() {
    let broker = Broker::start();
    for port in [broker.base_port(), broker.shard_port(0)] {
        let mut stream = connect(port);
        let mut frame = kcat_frame(1);
        frame[4..6].copy_from_slice(&32_000i16.to_be_bytes());
        stream.write_all(&frame).expect("send unknown api key");
        assert_closed_without_answer(&mut stream, &format!("unknown api key on port {port}"));
        assert_listener_still_serves(port);
    }
}

// ---------------------------------------------------------------------------------------------
// Record batches on Produce

/// One RecordBatch v2 (no compression, no producer id), built here byte by byte so the test
/// does not depend on the broker's own encoder.
fn record_batch(records: &[(&[u8], &[u8])], base_timestamp: i64) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_i16(0); // attributes: no compression, CreateTime
    body.put_i32(records.len() as i32 - 1); // last offset delta
    body.put_i64(base_timestamp);
    body.put_i64(base_timestamp + records.len() as i64 - 1);
    body.put_i64(-1); // producer id
    body.put_i16(-1); // producer epoch
    body.put_i32(-1); // base sequence
    body.put_i32(records.len() as i32);
    for (i, (key, value)) in records.iter().enumerate() {
        let mut rec = BytesMut::new();
        rec.put_i8(0); // attributes
        put_varint(&mut rec, i as i64); // timestamp delta
        put_varint(&mut rec, i as i64); // offset delta
        put_varint(&mut rec, key.len() as i64);
        rec.put_slice(key);
        put_varint(&mut rec, value.len() as i64);
        rec.put_slice(value);
        put_varint(&mut rec, 0); // header count
        put_varint(&mut body, rec.len() as i64);
        body.put(rec);
    }
    let mut batch = BytesMut::new();
    batch.put_i64(0); // base offset: the broker assigns it
    batch.put_i32(4 + 1 + 4 + body.len() as i32); // length after this field
    batch.put_i32(-1); // partition leader epoch
    batch.put_i8(2); // magic
    batch.put_u32(crc32c::crc32c(&body));
    batch.put(body);
    batch.to_vec()
}

/// Zig-zag varint, as Kafka records use.
fn put_varint(buf: &mut BytesMut, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

#[test]
fn record_batch_builder_matches_an_independent_decoder() {
    let batch = record_batch(&[(b"k1", b"v1"), (b"k2", b"value-2")], 1_700_000_000_000);
    let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut Bytes::from(batch))
        .expect("kafka-protocol decodes (and CRC-checks) our batch");
    let pairs: Vec<(Bytes, Bytes)> = set
        .records
        .iter()
        .map(|r| (r.key.clone().unwrap(), r.value.clone().unwrap()))
        .collect();
    assert_eq!(
        pairs,
        vec![
            (Bytes::from_static(b"k1"), Bytes::from_static(b"v1")),
            (Bytes::from_static(b"k2"), Bytes::from_static(b"value-2")),
        ]
    );
    assert_eq!(set.records[1].offset, 1);
    assert_eq!(set.records[1].timestamp, 1_700_000_000_001);
}

/// Metadata with auto-creation; returns the leader (shard broker id) of partition 0.
fn leader_of(client: &mut Client, topic: &str) -> i32 {
    let version = client.version::<MetadataRequest>(12);
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default().with_name(
                Some(TopicName::from(StrBytes::from_string(topic.to_string()))),
            ),
        ]))
        .with_allow_auto_topic_creation(true);
    // Auto-creation may answer LEADER_NOT_AVAILABLE first, as Kafka does; ask again.
    for _ in 0..50 {
        let response: MetadataResponse = client.call(request.clone(), version);
        let t = &response.topics[0];
        if t.error_code == NONE && !t.partitions.is_empty() {
            return t.partitions[0].leader_id.0;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("topic {topic} never became available");
}

fn produce(client: &mut Client, topic: &str, records: Vec<u8>) -> (i16, i64) {
    let version = client.version::<ProduceRequest>(12);
    let partition = kafka_protocol::messages::produce_request::PartitionProduceData::default()
        .with_index(0)
        .with_records(Some(Bytes::from(records)));
    let topic_data = kafka_protocol::messages::produce_request::TopicProduceData::default()
        .with_name(TopicName::from(StrBytes::from_string(topic.to_string())))
        .with_partition_data(vec![partition]);
    let request = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5_000)
        .with_topic_data(vec![topic_data]);
    let response: ProduceResponse = client.call(request, version);
    assert_eq!(response.responses.len(), 1);
    let p = &response.responses[0].partition_responses;
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].index, 0);
    (p[0].error_code, p[0].base_offset)
}

/// ListOffsets "latest" (timestamp -1) of partition 0: the high watermark.
fn latest_offset(client: &mut Client, topic: &str) -> i64 {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let version = client.version::<ListOffsetsRequest>(9);
    let request = ListOffsetsRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_topics(vec![
            ListOffsetsTopic::default()
                .with_name(TopicName::from(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![
                    ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1),
                ]),
        ]);
    let response: ListOffsetsResponse = client.call(request, version);
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.error_code, NONE, "ListOffsets error");
    p.offset
}

#[test]
fn produce_with_bad_crc_is_rejected_and_not_appended() {
    let broker = Broker::start_with(BrokerOptions::default().with_cores(2));
    let topic = unique_topic("crc");
    let mut bootstrap = Client::connect(broker.base_port());
    let leader = leader_of(&mut bootstrap, &topic);
    let mut client = Client::connect(broker.shard_port(leader as u16));

    let good = record_batch(&[(b"a", b"first")], 1_700_000_000_000);
    assert_eq!(produce(&mut client, &topic, good.clone()), (NONE, 0));
    assert_eq!(latest_offset(&mut client, &topic), 1);

    // Flip one bit of the last value byte: the stored CRC no longer matches.
    let mut bad = record_batch(&[(b"b", b"second"), (b"c", b"third")], 1_700_000_000_001);
    let last = bad.len() - 2;
    bad[last] ^= 0x01;
    let (error, _) = produce(&mut client, &topic, bad);
    assert_eq!(error, CORRUPT_MESSAGE, "bad CRC must be CORRUPT_MESSAGE");
    assert_eq!(
        latest_offset(&mut client, &topic),
        1,
        "nothing appended for a corrupt batch"
    );

    // The same connection keeps working and the next good batch gets the next offset.
    assert_eq!(produce(&mut client, &topic, good), (NONE, 1));
    assert_eq!(latest_offset(&mut client, &topic), 2);
}

#[test]
fn produce_to_the_wrong_shard_is_not_leader() {
    let broker = Broker::start_with(BrokerOptions::default().with_cores(2));
    let topic = unique_topic("routing");
    let mut bootstrap = Client::connect(broker.base_port());
    let leader = leader_of(&mut bootstrap, &topic);
    assert!(
        (0..2).contains(&leader),
        "leader {leader} is not a shard id"
    );
    let other = 1 - leader as u16;
    let mut wrong = Client::connect(broker.shard_port(other));
    let batch = record_batch(&[(b"k", b"v")], 1_700_000_000_000);
    let (error, _) = produce(&mut wrong, &topic, batch.clone());
    assert_eq!(error, NOT_LEADER_OR_FOLLOWER, "produce on shard {other}");
    let mut right = Client::connect(broker.shard_port(leader as u16));
    assert_eq!(produce(&mut right, &topic, batch), (NONE, 0));
}

// ---------------------------------------------------------------------------------------------
// Fetch: byte-identical batches and long-poll

/// One Fetch of partition 0 from `offset`; returns (error, high watermark, records bytes).
fn fetch(
    client: &mut Client,
    topic: &str,
    offset: i64,
    max_wait_ms: i32,
) -> (i16, i64, Option<Bytes>) {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    // v13+ name topics by id; these tests use names.
    let version = client.version::<kafka_protocol::messages::FetchRequest>(12);
    let request = kafka_protocol::messages::FetchRequest::default()
        .with_replica_id(kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName::from(StrBytes::from_string(topic.to_string())))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(offset)
                        .with_log_start_offset(-1)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let response: kafka_protocol::messages::FetchResponse = client.call(request, version);
    assert_eq!(response.error_code, NONE, "top-level Fetch error");
    let p = &response.responses[0].partitions[0];
    (p.error_code, p.high_watermark, p.records.clone())
}

/// A batch as stored and served must equal the one produced, except the base offset (assigned
/// by the broker) and the partition leader epoch (a broker may stamp its epoch there; neither
/// is covered by the CRC).
fn assert_same_batch(served: &[u8], produced: &[u8], base_offset: i64) {
    assert_eq!(served.len(), produced.len(), "served batch length");
    assert_eq!(
        i64::from_be_bytes(served[..8].try_into().unwrap()),
        base_offset
    );
    assert_eq!(served[8..12], produced[8..12], "batch length field");
    assert_eq!(
        served[16..],
        produced[16..],
        "batch bytes from magic on differ"
    );
}

#[test]
fn fetch_serves_produced_batch_bytes_and_long_polls() {
    let broker = Broker::start_with(BrokerOptions::default().with_cores(2));
    let topic = unique_topic("fetch");
    let mut bootstrap = Client::connect(broker.base_port());
    let port = broker.shard_port(leader_of(&mut bootstrap, &topic) as u16);
    let mut client = Client::connect(port);

    let first = record_batch(&[(b"k0", b"v0"), (b"k1", b"v1")], 1_700_000_000_000);
    assert_eq!(produce(&mut client, &topic, first.clone()), (NONE, 0));
    let (error, high, records) = fetch(&mut client, &topic, 0, 0);
    assert_eq!((error, high), (NONE, 2));
    assert_same_batch(&records.expect("records at offset 0"), &first, 0);

    // Long-poll: a fetch at the end waits, and returns as soon as a record arrives.
    let second = record_batch(&[(b"k2", b"v2")], 1_700_000_000_002);
    let producer = {
        let (topic, batch) = (topic.clone(), second.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            let mut c = Client::connect(port);
            produce(&mut c, &topic, batch)
        })
    };
    let started = std::time::Instant::now();
    let (error, high, records) = fetch(&mut client, &topic, 2, 5_000);
    let waited = started.elapsed();
    assert_eq!(producer.join().expect("producer thread"), (NONE, 2));
    assert_eq!((error, high), (NONE, 3));
    assert_same_batch(&records.expect("records at offset 2"), &second, 2);
    assert!(
        waited >= Duration::from_millis(400),
        "fetch returned after {waited:?}, before any data existed"
    );
    assert!(
        waited < Duration::from_millis(4_000),
        "fetch waited {waited:?}: not woken by the produce"
    );

    // Nothing arrives: the fetch returns empty after about max_wait_ms.
    let started = std::time::Instant::now();
    let (error, high, records) = fetch(&mut client, &topic, 3, 1_000);
    let waited = started.elapsed();
    assert_eq!((error, high), (NONE, 3));
    assert!(
        records.is_none_or(|r| r.is_empty()),
        "no records past the end"
    );
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_millis(3_000),
        "empty long-poll took {waited:?} for max_wait_ms 1000"
    );
}

// ---------------------------------------------------------------------------------------------
// DescribeConfigs errors (the rdkafka crate drops per-resource errors, so check them raw)

#[test]
fn describe_configs_of_unknown_topic_is_unknown_topic() {
    use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
    const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    const TOPIC_RESOURCE: i8 = 2;
    let broker = Broker::start();
    let mut client = Client::connect(broker.base_port());
    let version = client.version::<kafka_protocol::messages::DescribeConfigsRequest>(4);
    let request = kafka_protocol::messages::DescribeConfigsRequest::default().with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(TOPIC_RESOURCE)
            .with_resource_name(StrBytes::from_static_str("no-such-topic"))
            .with_configuration_keys(None),
    ]);
    let response: kafka_protocol::messages::DescribeConfigsResponse = client.call(request, version);
    assert_eq!(response.results.len(), 1);
    let result = &response.results[0];
    assert_eq!(result.error_code, UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(result.resource_name.as_str(), "no-such-topic");
    assert!(result.configs.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Offsets out of range and auto-creation switched off

#[test]
fn fetch_beyond_the_end_is_offset_out_of_range() {
    const OFFSET_OUT_OF_RANGE: i16 = 1;
    let broker = Broker::start();
    let topic = unique_topic("range");
    let mut bootstrap = Client::connect(broker.base_port());
    let leader = leader_of(&mut bootstrap, &topic);
    let mut client = Client::connect(broker.shard_port(leader as u16));
    let batch = record_batch(&[(b"k", b"v")], 1_700_000_000_000);
    assert_eq!(produce(&mut client, &topic, batch), (NONE, 0));
    // Offset 1 is the end (a long-poll position); offset 5 does not exist yet.
    // Kafka reports high watermark -1 with a partition error, so only the code is checked.
    let (error, _, _) = fetch(&mut client, &topic, 5, 0);
    assert_eq!(error, OFFSET_OUT_OF_RANGE, "fetch offset beyond the end");
    let (error, high, _) = fetch(&mut client, &topic, 1, 0);
    assert_eq!(
        (error, high),
        (NONE, 1),
        "fetch at the end is not out of range"
    );
    let (error, _, _) = fetch(&mut client, &topic, -3, 0);
    assert_eq!(error, OFFSET_OUT_OF_RANGE, "negative fetch offset");
}

#[test]
fn without_auto_creation_unknown_topics_stay_unknown() {
    const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    let broker = Broker::start_with(
        BrokerOptions::default().with_config("auto.create.topics.enable", "false"),
    );
    let topic = unique_topic("no-auto");
    let mut client = Client::connect(broker.base_port());
    let version = client.version::<MetadataRequest>(12);
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(TopicName::from(StrBytes::from_string(topic.clone())))),
        ]))
        .with_allow_auto_topic_creation(true);
    let response: MetadataResponse = client.call(request, version);
    assert_eq!(response.topics.len(), 1);
    assert_eq!(response.topics[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);
    let mut shard = Client::connect(broker.shard_port(0));
    let (error, _) = produce(&mut shard, &topic, record_batch(&[(b"k", b"v")], 0));
    assert_eq!(
        error, UNKNOWN_TOPIC_OR_PARTITION,
        "produce to a missing topic"
    );
    assert!(!broker.data_dir().join(format!("{topic}-0")).exists());
}

#[test]
fn produce_never_creates_topics_and_metadata_does() {
    const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    // Auto-creation on (the default): still only Metadata may create a topic, as in Kafka.
    let broker = Broker::start();
    let topic = unique_topic("produce-no-auto");
    let mut shard = Client::connect(broker.shard_port(0));
    let (error, _) = produce(&mut shard, &topic, record_batch(&[(b"k", b"v")], 0));
    assert_eq!(
        error, UNKNOWN_TOPIC_OR_PARTITION,
        "produce to a missing topic"
    );
    assert!(!broker.data_dir().join(format!("{topic}-0")).exists());
    let mut client = Client::connect(broker.base_port());
    let version = client.version::<MetadataRequest>(12);
    let request = MetadataRequest::default()
        .with_topics(Some(vec![
            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(TopicName::from(StrBytes::from_string(topic.clone())))),
        ]))
        .with_allow_auto_topic_creation(true);
    let response: MetadataResponse = client.call(request, version);
    assert_eq!(response.topics[0].error_code, NONE, "metadata auto-creates");
}

#[test]
fn internal_topics_cannot_be_deleted_or_written_by_clients() {
    use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
    const INVALID_TOPIC_EXCEPTION: i16 = 17;
    let broker = Broker::start();
    let mut client = Client::connect(broker.base_port());
    for internal in ["__consumer_offsets", "__transaction_state"] {
        let version = client.version::<DeleteTopicsRequest>(6);
        let name = TopicName::from(StrBytes::from_static_str(internal));
        let request = if version >= 6 {
            DeleteTopicsRequest::default().with_topics(vec![
                kafka_protocol::messages::delete_topics_request::DeleteTopicState::default()
                    .with_name(Some(name)),
            ])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![name])
        };
        let response: DeleteTopicsResponse = client.call(request, version);
        let result = &response.responses[0];
        assert_eq!(
            result.error_code, INVALID_TOPIC_EXCEPTION,
            "delete {internal}"
        );
        let message = result.error_message.as_ref().map(|m| m.to_string());
        assert!(
            message.as_deref().unwrap_or("").contains("internal topic"),
            "{message:?}"
        );
        for core in 0..broker.cores() {
            let mut shard = Client::connect(broker.shard_port(core));
            let (error, _) = produce(&mut shard, internal, record_batch(&[(b"k", b"v")], 0));
            assert_eq!(error, INVALID_TOPIC_EXCEPTION, "produce to {internal}");
        }
    }
}

//! Raw-socket tests of the Kafka wire protocol, without a client library: malformed frames,
//! version negotiation and byte-exact fixtures captured from a real client (Produce and Fetch
//! are `wire_records.rs`). The `kafka-protocol` crate encodes and decodes the well-formed
//! messages; malformed ones and the fixtures are written out byte by byte.

mod common;
mod wire_common;

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::{Broker, BrokerOptions};
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse};
use kafka_protocol::protocol::{Decodable, Encodable};

use wire_common::*;

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
    // The features Kafka 4.1 clients read: transaction.version 2 (KIP-890 part 2) and
    // group.version 1 (KIP-848), supported and finalized, under a non-negative epoch.
    let finalized = |name: &str| {
        response
            .finalized_features
            .iter()
            .find(|f| f.name.as_str() == name)
            .map(|f| (f.min_version_level, f.max_version_level))
    };
    let supported = |name: &str| {
        response
            .supported_features
            .iter()
            .find(|f| f.name.as_str() == name)
            .map(|f| (f.min_version, f.max_version))
    };
    assert_eq!(finalized("transaction.version"), Some((2, 2)));
    assert_eq!(supported("transaction.version"), Some((0, 2)));
    assert_eq!(finalized("group.version"), Some((1, 1)));
    assert_eq!(supported("group.version"), Some((0, 1)));
    assert!(response.finalized_features_epoch >= 0);
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

/// `group.coordinator.rebalance.protocols=classic`: the KIP-848 APIs are not advertised and
/// `group.version` is finalized at 0, so clients keep to the classic protocol.
#[test]
fn without_the_consumer_protocol_its_apis_are_not_advertised() {
    let broker = Broker::start_with(
        BrokerOptions::default().with_config("group.coordinator.rebalance.protocols", "classic"),
    );
    let mut stream = connect(broker.base_port());
    stream.write_all(&kcat_frame(0)).expect("send fixture");
    let mut body = Bytes::from(read_frame(&mut stream));
    assert_eq!(body.get_i32(), 1);
    let response = ApiVersionsResponse::decode(&mut body, 3).expect("decode v3 response");
    let keys: Vec<i16> = response.api_keys.iter().map(|k| k.api_key).collect();
    assert!(!keys.contains(&68) && !keys.contains(&69), "{keys:?}");
    assert!(keys.contains(&11), "JoinGroup still served");
    let group_version = response
        .finalized_features
        .iter()
        .find(|f| f.name.as_str() == "group.version")
        .map(|f| f.max_version_level);
    assert_eq!(group_version, Some(0));
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

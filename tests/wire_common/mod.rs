//! The raw-socket client of the wire tests: connect with a timeout, read one frame, and a
//! typed request/response connection that negotiates versions as a client does. Shared by
//! `wire_protocol.rs` (framing and negotiation) and `wire_records.rs` (Produce and Fetch).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Request, StrBytes, encode_request_header_into_buffer};

/// How long to wait for the broker to answer or close a connection.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Kafka error codes the tests expect.
pub const NONE: i16 = 0;
pub const CORRUPT_MESSAGE: i16 = 2;
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
pub const UNSUPPORTED_VERSION: i16 = 35;
pub const INVALID_RECORD: i16 = 87;

// Connection helpers

pub fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to broker");
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .expect("set timeout");
    stream.set_nodelay(true).expect("nodelay");
    stream
}

/// Reads one length-prefixed frame; returns its payload (correlation id onwards).
pub fn read_frame(stream: &mut TcpStream) -> Vec<u8> {
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

/// A typed request/response connection that negotiates versions like a client does.
pub struct Client {
    stream: TcpStream,
    correlation_id: i32,
    /// api key -> max version the broker advertises.
    versions: BTreeMap<i16, i16>,
}

impl Client {
    pub fn connect(port: u16) -> Client {
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
    pub fn version<R: Request>(&self, cap: i16) -> i16 {
        let broker_max = *self
            .versions
            .get(&R::KEY)
            .unwrap_or_else(|| panic!("broker does not advertise api {}", R::KEY));
        let v = broker_max.min(cap).min(R::VERSIONS.max);
        assert!(v >= R::VERSIONS.min, "no common version for api {}", R::KEY);
        v
    }

    pub fn call<R: Request>(&mut self, request: R, version: i16) -> R::Response {
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

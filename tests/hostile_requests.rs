//! Hostile request bodies against the real binary: absurd array counts and lengths at every
//! position of every API and version Sluice advertises, and random bodies from a fixed seed.
//! Each attack may cost its own connection, never the broker: afterwards the process is still
//! running and a normal client (librdkafka) still produces and consumes.

mod common;
#[path = "common/rdk.rs"]
mod rdk;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use common::{Broker, BrokerOptions, unique_topic};
use kafka_protocol::messages::ApiKey;

/// How long one attack connection may stay open before we give up on it. A frame the broker
/// refuses closes the connection at once; one that happens to decode is answered.
const ANSWER_TIMEOUT: Duration = Duration::from_millis(500);

/// The frame prefix: size, api key, version, correlation id, client id "x" (header v1), and for
/// flexible versions the header's empty tagged-field section.
fn frame(key: ApiKey, version: i16, body: &[u8]) -> Vec<u8> {
    let mut header = Vec::new();
    header.extend_from_slice(&(key as i16).to_be_bytes());
    header.extend_from_slice(&version.to_be_bytes());
    header.extend_from_slice(&7i32.to_be_bytes());
    header.extend_from_slice(&[0, 1, b'x']);
    if key.request_header_version(version) >= 2 {
        header.push(0);
    }
    let mut out = ((header.len() + body.len()) as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&header);
    out.extend_from_slice(body);
    out
}

/// Sends one frame on its own connection and waits until the broker answers or closes.
fn attack(port: u16, frame: &[u8]) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        panic!("broker refused a connection on port {port}");
    };
    stream.set_read_timeout(Some(ANSWER_TIMEOUT)).unwrap();
    let _ = stream.write_all(frame);
    let _ = stream.shutdown(Shutdown::Write);
    let mut sink = [0u8; 4096];
    while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
}

/// Every advertised (key, version) with the default request's body.
fn advertised_bodies() -> Vec<(ApiKey, i16, Vec<u8>)> {
    let mut out = Vec::new();
    for (key, (lo, hi)) in sluice::handlers::SUPPORTED {
        for version in *lo..=*hi {
            if let Some(body) = sluice::fuzzing::default_request_body(*key, version) {
                out.push((*key, version, body));
            }
        }
    }
    out
}

fn assert_serves_clients(broker: &mut Broker, what: &str) {
    assert!(
        broker.is_running(),
        "the broker died after {what}; see its log above"
    );
    let topic = unique_topic("after-attack");
    rdk::create_topic(&broker.bootstrap(), &topic, 1);
    let producer = rdk::producer(&broker.bootstrap(), "none", "all");
    let sent = vec![rdk::Rec {
        key: Some(b"k".to_vec()),
        value: Some(what.as_bytes().to_vec()),
        headers: vec![],
    }];
    rdk::send_all(&producer, &topic, 0, &sent);
    let read = rdk::read_partition(&broker.bootstrap(), &topic, 0, 1);
    rdk::assert_same_records(&sent, &read, what);
}

#[test]
fn the_19_byte_metadata_frame_is_refused_and_the_broker_lives() {
    let mut broker = Broker::start_with(BrokerOptions::default().with_cores(1));
    // Metadata v1 whose topics array claims 0x7fffffff entries: 19 bytes with the prefix.
    let bomb = frame(ApiKey::Metadata, 1, &[0x7f, 0xff, 0xff, 0xff]);
    assert_eq!(bomb.len(), 19);
    attack(broker.base_port(), &bomb);
    attack(broker.shard_port(0), &bomb);
    assert_serves_clients(&mut broker, "the 19-byte metadata frame");
}

#[test]
fn huge_counts_at_every_position_of_every_api_are_refused() {
    let mut broker = Broker::start_with(BrokerOptions::default().with_cores(1));
    let port = broker.shard_port(0);
    let mut sent = 0;
    for (key, version, body) in advertised_bodies() {
        // A classic count/length (i32::MAX) and a compact one (the largest 5-byte varint)
        // written over each position of a well-formed body, and appended after it.
        for at in 0..=body.len() {
            for bomb in [
                &[0x7f, 0xff, 0xff, 0xff][..],
                &[0xff, 0xff, 0xff, 0xff, 0x0f][..],
            ] {
                let mut hostile = body[..at].to_vec();
                hostile.extend_from_slice(bomb);
                hostile.extend_from_slice(body.get(at + bomb.len()..).unwrap_or_default());
                attack(port, &frame(key, version, &hostile));
                sent += 1;
            }
        }
        assert!(broker.is_running(), "died on {key:?} v{version}");
    }
    assert!(sent > 1000, "only {sent} attacks were generated");
    assert_serves_clients(&mut broker, "huge counts");
}

/// xorshift64*: a fixed-seed generator, so a failure replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_bodies_from_a_fixed_seed_never_kill_the_broker() {
    let mut broker = Broker::start_with(BrokerOptions::default().with_cores(1));
    let port = broker.shard_port(0);
    let targets = advertised_bodies();
    let mut rng = Rng(0x5eed_0011);
    for round in 0..3000 {
        let (key, version, body) = &targets[rng.next() as usize % targets.len()];
        // Half pure noise, half a well-formed body with a few bytes flipped.
        let hostile: Vec<u8> = if round % 2 == 0 {
            let len = rng.next() as usize % 64;
            (0..len).map(|_| rng.next() as u8).collect()
        } else {
            let mut mutated = body.clone();
            for _ in 0..=rng.next() % 4 {
                if !mutated.is_empty() {
                    let at = rng.next() as usize % mutated.len();
                    mutated[at] = rng.next() as u8;
                }
            }
            mutated
        };
        attack(port, &frame(*key, *version, &hostile));
        if round % 500 == 0 {
            assert!(
                broker.is_running(),
                "died at round {round} ({key:?} v{version})"
            );
        }
    }
    assert_serves_clients(&mut broker, "random bodies");
}

/// Reads one response frame; `None` when the broker closed the connection instead.
fn read_response(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).ok()?;
    Some(body)
}

#[test]
fn every_advertised_api_and_version_is_answered() {
    let broker = Broker::start_with(BrokerOptions::default().with_cores(1));
    let mut stream = TcpStream::connect(("127.0.0.1", broker.shard_port(0))).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answered = 0;
    for (key, (lo, hi)) in sluice::handlers::SUPPORTED {
        for version in *lo..=*hi {
            let body = match (key, sluice::fuzzing::default_request_body(*key, version)) {
                // acks=0 is never answered: ask for acks=1 (the second field before v3 and
                // after the transactional id from v3 on), with no topics.
                (ApiKey::Produce, _) if version <= 2 => vec![0, 1, 0, 0, 0x75, 0x30, 0, 0, 0, 0],
                (ApiKey::Produce, Some(mut body)) => {
                    let acks_at = if version >= 9 { 1 } else { 2 };
                    body[acks_at + 1] = 1;
                    body
                }
                (_, Some(body)) => body,
                (_, None) => panic!("{key:?} v{version} is advertised but has no codec"),
            };
            stream.write_all(&frame(*key, version, &body)).unwrap();
            let response = read_response(&mut stream)
                .unwrap_or_else(|| panic!("{key:?} v{version} closed the connection"));
            let correlation_id = i32::from_be_bytes(response[..4].try_into().unwrap());
            assert_eq!(correlation_id, 7, "{key:?} v{version}");
            answered += 1;
        }
    }
    assert!(answered > 150, "only {answered} versions answered");
}

use bytes::BytesMut;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

use super::*;

fn encode<R: Encodable>(request: &R, version: i16) -> Vec<u8> {
    let mut buf = BytesMut::new();
    request.encode(&mut buf, version).unwrap();
    buf.to_vec()
}

#[test]
fn every_served_api_has_a_shape_and_its_default_request_fits() {
    for (key, (lo, hi)) in crate::handlers::SUPPORTED {
        assert!(shape_of(*key as i16).is_some(), "{key:?} has no shape");
        for version in *lo..=*hi {
            // Produce v0-v2 are framed by hand (produce_legacy); the crate encodes v3+.
            let Some(body) = crate::fuzzing::default_request_body(*key, version) else {
                assert!(
                    *key == ApiKey::Produce && version <= 2,
                    "{key:?} v{version}"
                );
                continue;
            };
            check(*key as i16, version, &body)
                .unwrap_or_else(|e| panic!("{key:?} v{version}: {e}"));
        }
    }
}

fn topic(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.into()))
}

#[test]
fn populated_requests_fit_at_every_version() {
    let mut metadata = MetadataRequest::default();
    let mut t = metadata_request::MetadataRequestTopic::default();
    t.name = Some(topic("orders"));
    metadata.topics = Some(vec![t.clone(), t]);
    for v in 0..=12 {
        check(3, v, &encode(&metadata, v)).unwrap();
    }

    let mut fetch = FetchRequest::default();
    let mut ft = fetch_request::FetchTopic::default();
    ft.topic = topic("orders");
    ft.partitions = vec![fetch_request::FetchPartition::default(); 3];
    fetch.topics = vec![ft];
    fetch.cluster_id = Some(StrBytes::from_static_str("cluster"));
    fetch.replica_state.replica_id = (-1).into();
    for v in 4..=17 {
        check(1, v, &encode(&fetch, v)).unwrap_or_else(|e| panic!("fetch v{v}: {e}"));
    }

    let mut produce = ProduceRequest::default();
    let mut pt = produce_request::TopicProduceData::default();
    pt.name = topic("orders");
    let mut pp = produce_request::PartitionProduceData::default();
    pp.records = Some(bytes::Bytes::from_static(&[1, 2, 3, 4, 5]));
    pt.partition_data = vec![pp];
    produce.topic_data = vec![pt];
    for v in 3..=12 {
        check(0, v, &encode(&produce, v)).unwrap();
    }

    let mut join = JoinGroupRequest::default();
    let mut p = join_group_request::JoinGroupRequestProtocol::default();
    p.name = StrBytes::from_static_str("range");
    p.metadata = bytes::Bytes::from_static(b"meta");
    join.protocols = vec![p];
    for v in 0..=9 {
        check(11, v, &encode(&join, v)).unwrap();
    }
}

#[test]
fn an_array_count_beyond_the_frame_is_refused_before_anything_is_allocated() {
    // The 19-byte Metadata v1 frame of the issue: topics count 0x7fffffff, then nothing.
    let err = check(3, 1, &[0x7f, 0xff, 0xff, 0xff]).unwrap_err();
    assert!(matches!(
        err,
        ShapeError::Short {
            what: "array elements",
            needed: 0x7fff_ffff,
            ..
        }
    ));
    // Compact array (Metadata v9+): varint 0xffffffff = count 2^32 - 2.
    let err = check(3, 12, &[0xff, 0xff, 0xff, 0xff, 0x0f]).unwrap_err();
    assert!(matches!(err, ShapeError::Short { .. }), "{err}");
    // A nested array: Produce v3 with one topic whose partition count is absurd.
    let mut body = vec![0xff, 0xff, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, b't'];
    body.extend_from_slice(&0x7fff_fff0i32.to_be_bytes());
    assert!(check(0, 3, &body).is_err());
}

#[test]
fn lengths_varints_and_nulls_are_checked() {
    // ApiVersions v3 (flexible): client software name with an over-long varint.
    assert_eq!(
        check(18, 3, &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
        Err(ShapeError::Varint(0))
    );
    // FindCoordinator v0: key string of length 300 in a 4-byte body.
    assert!(matches!(
        check(10, 0, &[0x01, 0x2c, b'a', b'b']),
        Err(ShapeError::Short { what: "string", .. })
    ));
    // A negative length other than -1.
    assert!(matches!(
        check(10, 0, &[0xff, 0xfe]),
        Err(ShapeError::NegativeLength { len: -2, .. })
    ));
    // Null where the version does not allow it (Metadata v0 topics are not nullable).
    assert!(matches!(
        check(3, 0, &[0xff, 0xff, 0xff, 0xff]),
        Err(ShapeError::NotNullable { .. })
    ));
    assert!(check(3, 1, &[0xff, 0xff, 0xff, 0xff]).is_ok());
    assert_eq!(check(999, 0, &[]), Err(ShapeError::UnknownApi(999)));
}

#[test]
fn tagged_fields_must_fit_and_known_tags_must_fill_their_size() {
    let mut fetch = FetchRequest::default();
    fetch.cluster_id = Some(StrBytes::from_static_str("c"));
    let mut body = encode(&fetch, 12);
    check(1, 12, &body).unwrap();
    // The tagged section is last: count 1, tag 0, size 2, compact string "c" (0x02 'c').
    let n = body.len();
    assert_eq!(&body[n - 5..], &[1, 0, 2, 2, b'c']);
    // Claim a size larger than what follows.
    body[n - 3] = 9;
    assert!(check(1, 12, &body).is_err());
    // A size that the known field does not fill.
    body[n - 3] = 3;
    body.push(0);
    assert!(matches!(
        check(1, 12, &body),
        Err(ShapeError::TaggedSize { tag: 0, .. })
    ));
    // An unknown tag is skipped by its size.
    let mut unknown = encode(&FetchRequest::default(), 12);
    let last = unknown.len() - 1;
    unknown[last] = 1;
    unknown.extend_from_slice(&[42, 2, 0xaa, 0xbb]);
    check(1, 12, &unknown).unwrap();
}

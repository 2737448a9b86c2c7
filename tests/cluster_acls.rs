//! ACLs and SCRAM credentials in a 3-node cluster (one shard each, an authorizer configured
//! with `allow.everyone.if.no.acl.found=true`): bindings created through one node are in
//! every node's metadata (they go through the controller quorum), a DENY created through node
//! 1 refuses a librdkafka producer's writes wherever the partition leads
//! (TOPIC_AUTHORIZATION_FAILED), and deleting it through node 3 lets the producer write again;
//! SCRAM credentials altered through node 1 are described by node 2.
//!
//! Ports are fixed in 22300-22399 (node bootstrap 22300, shard 22301, controller 22392).

#[path = "common/cluster.rs"]
mod cluster;
#[path = "common/rdk.rs"]
mod rdk;

use std::time::Duration;

use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest,
    DescribeAclsResponse, DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureRecord;
use sluice::client::connection::Connection;

use cluster::{Cluster, FORM_WITHIN, brokers, create_topic};

const TOPIC: &str = "secret";
const ANONYMOUS: &str = "User:ANONYMOUS";

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

fn connect(cluster: &Cluster, node: u8) -> Connection {
    Connection::connect(&cluster.bootstrap(node), None).expect("connect")
}

/// DENY of WRITE for User:ANONYMOUS on the literal topic (codes: TOPIC 2, LITERAL 3,
/// WRITE 4, DENY 2).
fn deny_write() -> AclCreation {
    let mut c = AclCreation::default();
    c.resource_type = 2;
    c.resource_name = sb(TOPIC);
    c.resource_pattern_type = 3;
    c.principal = sb(ANONYMOUS);
    c.host = sb("*");
    c.operation = 4;
    c.permission_type = 2;
    c
}

/// Every binding on topics (ANY pattern, operation and permission).
fn describe_topic_acls(conn: &mut Connection) -> DescribeAclsResponse {
    let mut r = DescribeAclsRequest::default();
    r.resource_type_filter = 2;
    // The generated defaults of nullable strings are "", not null (which matches any).
    r.resource_name_filter = None;
    r.principal_filter = None;
    r.host_filter = None;
    r.pattern_type_filter = 1;
    r.operation = 1;
    r.permission_type = 1;
    conn.send(&r, None).expect("DescribeAcls")
}

/// The delivery error of one record sent with acks=all, or `None` if it was written.
fn produce(bootstrap: &str) -> Option<KafkaError> {
    let producer = rdk::producer_config(bootstrap)
        .set("acks", "all")
        .set("message.timeout.ms", "10000")
        .create::<rdkafka::producer::FutureProducer>()
        .expect("producer");
    let record = FutureRecord::to(TOPIC).payload("v").key("k");
    futures_lite::future::block_on(producer.send(record, Duration::from_secs(15)))
        .err()
        .map(|(e, _)| e)
}

#[test]
fn acls_and_scram_credentials_are_cluster_wide_and_enforced_on_every_node() {
    let cluster = Cluster::start(
        22300,
        22392,
        &[
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found=true",
        ],
    );
    cluster.wait_for(FORM_WITHIN, "every node listing 3 brokers", || {
        (1..=3).all(|n| brokers(&cluster.bootstrap(n)) == vec![1000, 2000, 3000])
    });
    create_topic(&cluster.bootstrap(1), TOPIC, 1, 3).expect("create topic");
    assert_eq!(produce(&cluster.bootstrap(2)), None, "no ACL yet: allowed");

    let mut create = CreateAclsRequest::default();
    create.creations = vec![deny_write()];
    let created = connect(&cluster, 1)
        .send(&create, None)
        .expect("CreateAcls");
    assert_eq!(created.results.len(), 1);
    assert_eq!(created.results[0].error_code, 0, "{:?}", created.results[0]);
    cluster.wait_for(Duration::from_secs(10), "the DENY on every node", || {
        (1..=3).all(|n| {
            describe_topic_acls(&mut connect(&cluster, n))
                .resources
                .len()
                == 1
        })
    });
    let described = describe_topic_acls(&mut connect(&cluster, 3));
    let resource = &described.resources[0];
    assert_eq!(
        (&*resource.resource_name, resource.pattern_type),
        (TOPIC, 3)
    );
    assert_eq!(&*resource.acls[0].principal, ANONYMOUS);

    for node in 1..=3 {
        let refused = produce(&cluster.bootstrap(node));
        assert!(
            matches!(
                refused,
                Some(KafkaError::MessageProduction(
                    RDKafkaErrorCode::TopicAuthorizationFailed
                ))
            ),
            "node {node}: {refused:?}"
        );
    }

    let mut delete = DeleteAclsRequest::default();
    let mut filter = DeleteAclsFilter::default();
    filter.resource_type_filter = 2;
    filter.resource_name_filter = Some(sb(TOPIC));
    filter.pattern_type_filter = 2; // MATCH
    filter.principal_filter = None;
    filter.host_filter = None;
    filter.operation = 1;
    filter.permission_type = 1;
    delete.filters = vec![filter];
    let deleted = connect(&cluster, 3)
        .send(&delete, None)
        .expect("DeleteAcls");
    assert_eq!(deleted.filter_results[0].matching_acls.len(), 1);
    cluster.wait_for(Duration::from_secs(10), "no ACL on any node", || {
        (1..=3).all(|n| {
            describe_topic_acls(&mut connect(&cluster, n))
                .resources
                .is_empty()
        })
    });
    assert_eq!(produce(&cluster.bootstrap(1)), None, "the DENY is gone");

    let mut alter = AlterUserScramCredentialsRequest::default();
    let mut upsert = ScramCredentialUpsertion::default();
    upsert.name = sb("carol");
    upsert.mechanism = 2; // SCRAM-SHA-512
    upsert.iterations = 4096;
    upsert.salt = bytes::Bytes::from_static(b"salt");
    upsert.salted_password = bytes::Bytes::from_static(&[7; 64]);
    alter.upsertions = vec![upsert];
    let altered = connect(&cluster, 1)
        .send(&alter, None)
        .expect("AlterUserScram");
    assert_eq!(altered.results[0].error_code, 0, "{:?}", altered.results[0]);
    let mut describe = DescribeUserScramCredentialsRequest::default();
    describe.users = Some(vec![{
        let mut u = UserName::default();
        u.name = sb("carol");
        u
    }]);
    cluster.wait_for(
        Duration::from_secs(10),
        "carol's credential on node 2",
        || {
            let answer = connect(&cluster, 2)
                .send(&describe, None)
                .expect("describe");
            answer.results[0].error_code == 0
                && answer.results[0]
                    .credential_infos
                    .iter()
                    .map(|c| (c.mechanism, c.iterations))
                    .eq([(2, 4096)])
        },
    );
}

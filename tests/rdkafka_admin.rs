//! Topic administration through librdkafka's admin client: CreateTopics, Metadata,
//! CreatePartitions, DescribeConfigs and DeleteTopics against the real `sluice` binary.

mod common;
#[path = "common/rdk.rs"]
mod rdk;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Broker, BrokerOptions, unique_topic};
use futures_lite::future::block_on;
use rdk::{Rec, admin, admin_options, leaders, read_partition, send_one, topic_names};
use rdkafka::admin::{NewPartitions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;

fn create_topic(broker: &Broker, topic: &NewTopic<'_>) -> Result<(), RDKafkaErrorCode> {
    let results = block_on(admin(&broker.bootstrap()).create_topics([topic], &admin_options()))
        .expect("CreateTopics request");
    assert_eq!(results.len(), 1);
    match &results[0] {
        Ok(name) => {
            assert_eq!(name, topic.name);
            Ok(())
        }
        Err((name, code)) => {
            assert_eq!(name, topic.name);
            Err(*code)
        }
    }
}

/// Metadata is broadcast to shards asynchronously, so a change may take a moment to show on
/// the shard a client asks; poll instead of asserting on the first answer.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn create_describe_grow_and_delete_topic() {
    let broker = Broker::start_with(BrokerOptions::default().with_cores(2));
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("admin");

    let new_topic = NewTopic::new(&topic, 3, TopicReplication::Fixed(1));
    create_topic(&broker, &new_topic).expect("create topic");
    eventually("topic listed with 3 partitions", || {
        topic_names(&bootstrap).contains(&topic) && leaders(&bootstrap, &topic).len() == 3
    });
    let placement = leaders(&bootstrap, &topic);
    assert_eq!(placement.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2]);
    // Least-loaded placement on an empty node must use both shards for three partitions.
    let shards: BTreeSet<i32> = placement.values().copied().collect();
    assert_eq!(shards, BTreeSet::from([0, 1]), "placement {placement:?}");

    produce_to_each_partition(&broker, &topic, 3);

    assert_eq!(
        create_topic(&broker, &new_topic),
        Err(RDKafkaErrorCode::TopicAlreadyExists),
        "creating the same topic twice"
    );

    grow_partitions(&broker, &topic, 5);
    produce_to_each_partition_from(&broker, &topic, 3, 5);

    let results = block_on(admin(&bootstrap).delete_topics(&[&topic], &admin_options()))
        .expect("DeleteTopics request");
    assert_eq!(results, vec![Ok(topic.clone())]);
    eventually("deleted topic no longer listed", || {
        !topic_names(&bootstrap).contains(&topic)
    });
    eventually("partition directories removed", || {
        (0..5).all(|p| !broker.data_dir().join(format!("{topic}-{p}")).exists())
    });
}

fn produce_to_each_partition(broker: &Broker, topic: &str, count: i32) {
    produce_to_each_partition_from(broker, topic, 0, count);
}

/// One record to each partition in `from..to`, each read back from its leader shard.
fn produce_to_each_partition_from(broker: &Broker, topic: &str, from: i32, to: i32) {
    let producer = rdk::producer(&broker.bootstrap(), "none", "all");
    for p in from..to {
        let rec = Rec {
            key: Some(format!("key-{p}").into_bytes()),
            value: Some(format!("value-{p}").into_bytes()),
            headers: Vec::new(),
        };
        let acked = send_one(&producer, topic, Some(p), &rec)
            .unwrap_or_else(|e| panic!("produce to {topic}/{p}: {e}"));
        assert_eq!(acked, (p, 0), "first record of partition {p}");
        let read = read_partition(&broker.bootstrap(), topic, p, 1);
        rdk::assert_same_records(std::slice::from_ref(&rec), &read, &format!("partition {p}"));
    }
}

fn grow_partitions(broker: &Broker, topic: &str, count: usize) {
    let results = block_on(
        admin(&broker.bootstrap())
            .create_partitions([&NewPartitions::new(topic, count)], &admin_options()),
    )
    .expect("CreatePartitions request");
    assert_eq!(results, vec![Ok(topic.to_string())]);
    eventually("metadata shows the new partitions", || {
        leaders(&broker.bootstrap(), topic).len() == count
    });
}

#[test]
fn replication_factor_above_one_is_refused_on_a_single_node() {
    let broker = Broker::start();
    let topic = unique_topic("rf3");
    let result = create_topic(
        &broker,
        &NewTopic::new(&topic, 1, TopicReplication::Fixed(3)),
    );
    assert_eq!(result, Err(RDKafkaErrorCode::InvalidReplicationFactor));
    assert!(!topic_names(&broker.bootstrap()).contains(&topic));
}

#[test]
fn describe_configs_shows_topic_overrides() {
    let broker = Broker::start();
    let topic = unique_topic("configs");
    let new_topic = NewTopic::new(&topic, 1, TopicReplication::Fixed(1))
        .set("retention.ms", "123456789")
        .set("cleanup.policy", "delete");
    create_topic(&broker, &new_topic).expect("create topic with configs");

    let results = block_on(
        admin(&broker.bootstrap())
            .describe_configs([&ResourceSpecifier::Topic(&topic)], &admin_options()),
    )
    .expect("DescribeConfigs request");
    assert_eq!(results.len(), 1);
    let resource = results[0].as_ref().expect("describe topic configs");
    let entries = resource.entry_map();
    let retention = entries.get("retention.ms").expect("retention.ms described");
    assert_eq!(retention.value.as_deref(), Some("123456789"));
    assert!(!retention.is_default, "an override is not a default");
    let policy = entries
        .get("cleanup.policy")
        .expect("cleanup.policy described");
    assert_eq!(policy.value.as_deref(), Some("delete"));
}

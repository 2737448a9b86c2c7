"""DescribeLogDirs and DescribeTopicPartitions through kafka-python's admin client."""

import time

from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from kafka_helpers import producer, send_all


def described_sizes(admin, broker, topic):
    """{(topic, partition): size} from DescribeLogDirs, checking each log dir on the way."""
    sizes = {}
    for per_broker in admin.describe_log_dirs():
        for log_dir in per_broker["log_dirs"]:
            assert log_dir["error_code"] == 0 and log_dir["log_dir"] == str(broker.data_dir)
            assert log_dir["total_bytes"] >= log_dir["usable_bytes"] > 0
            for t in log_dir["topics"]:
                for p in t["partitions"]:
                    if t["name"] == topic:
                        assert (t["name"], p["partition_index"]) not in sizes, "one broker per partition"
                        sizes[(t["name"], p["partition_index"])] = p["partition_size"]
    return sizes


def test_log_dirs_and_topic_partitions_are_described(broker_factory, topic):
    broker = broker_factory(cores=2)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic(topic, 3, 1)])
    prod = producer(broker.bootstrap, linger_ms=0)
    for p in range(3):
        send_all(prod, topic, [(b"k", b"x" * 100, [])] * 5, partition=p)
    on_disk = {(topic, p): (broker.data_dir / f"{topic}-{p}" / f"{0:020}.log").stat().st_size
               for p in range(3)}
    # Shards publish partition sizes once a second: wait for the published sizes.
    deadline = time.monotonic() + 10
    while True:
        sizes = described_sizes(admin, broker, topic)
        if sizes == on_disk or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sizes == on_disk

    [described] = admin.describe_topics([topic])
    assert described["error_code"] == 0 and described["name"] == topic
    leaders = [p["leader_id"] for p in described["partitions"]]
    assert [p["partition_index"] for p in described["partitions"]] == [0, 1, 2]
    assert set(leaders) == {0, 1}, "partitions are spread over both shards"
    assert all(p["isr_nodes"] == [p["leader_id"]] for p in described["partitions"])


def test_manual_replica_assignment_places_partitions_on_named_shards(broker_factory, topic):
    from kafka.admin import NewPartitions
    from kafka.errors import InvalidReplicationAssignmentError
    import pytest

    broker = broker_factory(cores=2)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic(topic, replica_assignments={0: [1], 1: [1], 2: [0]})])
    leaders = lambda: [p["leader_id"] for p in admin.describe_topics([topic])[0]["partitions"]]
    assert leaders() == [1, 1, 0]
    admin.create_partitions({topic: NewPartitions(5, [[0], [1]])})
    assert leaders() == [1, 1, 0, 0, 1]
    with pytest.raises(InvalidReplicationAssignmentError):
        admin.create_partitions({topic: NewPartitions(6, [[0, 1]])})   # one node, one replica
    with pytest.raises(InvalidReplicationAssignmentError):
        admin.create_topics([NewTopic(topic + "-x", replica_assignments={0: [7]})])  # no broker 7

"""Topic administration with kafka-python's KafkaAdminClient."""

import time

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from kafka.errors import InvalidReplicationFactorError, TopicAlreadyExistsError

from kafka_helpers import producer, read_partition, send_all


@pytest.fixture
def admin(broker):
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    yield client
    client.close()


def eventually(what, check, timeout_s=10):
    """Metadata reaches other shards asynchronously; poll instead of asserting at once."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for: {what}"
        time.sleep(0.1)


def partition_leaders(admin, topic):
    [desc] = admin.describe_topics([topic])
    assert desc["error_code"] == 0, desc
    return {p["partition_index"]: p["leader_id"] for p in desc["partitions"]}


def test_create_list_describe_delete(broker, admin, topic):
    admin.create_topics({topic: {"num_partitions": 3, "replication_factor": 1}})
    eventually("topic listed", lambda: topic in admin.list_topics())
    leaders = partition_leaders(admin, topic)
    assert sorted(leaders) == [0, 1, 2]
    assert set(leaders.values()) == {0, 1}, f"three partitions on two empty shards: {leaders}"

    with pytest.raises(TopicAlreadyExistsError):
        admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}})

    admin.create_partitions({topic: 4})
    eventually("fourth partition visible", lambda: len(partition_leaders(admin, topic)) == 4)
    prod = producer(broker.bootstrap)
    for p in range(4):
        [meta] = send_all(prod, topic, [(b"k", f"p{p}".encode(), [])], partition=p)
        assert (meta.partition, meta.offset) == (p, 0)
    prod.close()
    for p in range(4):
        [rec] = read_partition(broker.bootstrap, topic, p, 1)
        assert rec.value == f"p{p}".encode()

    admin.delete_topics([topic])
    eventually("topic gone", lambda: topic not in admin.list_topics())


def test_replication_factor_above_one_is_refused(admin, topic):
    with pytest.raises(InvalidReplicationFactorError):
        admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 3}})
    assert topic not in admin.list_topics()


def test_describe_configs_shows_overrides(admin, topic):
    admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1,
                                 "configs": {"retention.ms": "123456789",
                                             "max.message.bytes": "500000"}}})
    resource = ConfigResource(ConfigResourceType.TOPIC, topic)
    modified = admin.describe_configs([resource])["topic"][topic]
    assert modified["retention.ms"]["value"] == "123456789"
    assert modified["max.message.bytes"]["value"] == "500000"
    everything = admin.describe_configs([resource], config_filter="all")["topic"][topic]
    assert set(modified) <= set(everything)
    assert "cleanup.policy" in everything, f"described keys: {sorted(everything)}"


def test_describe_cluster_lists_every_shard(broker, admin):
    cluster = admin.describe_cluster()
    brokers = sorted((b["broker_id"], b["host"], b["port"]) for b in cluster["brokers"])
    assert brokers == [(c, "127.0.0.1", broker.shard_port(c)) for c in range(broker.cores)]
    assert cluster["cluster_id"], "a cluster id"


def test_describe_configs_broker_shows_its_listener(broker, admin):
    # Admin tools (kafka-python's own suite among them) read a broker's advertised.listeners.
    for core in range(broker.cores):
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.BROKER, core)], config_filter="all")
        entry = configs["broker"][str(core)]["advertised.listeners"]
        assert entry["value"] == f"PLAINTEXT://127.0.0.1:{broker.shard_port(core)}"
        assert entry["config_source"] == "STATIC_BROKER_CONFIG"
        assert entry["read_only"] is True
        assert entry["config_type"] == "LIST"

"""A partition whose directory cannot be opened stays offline with KAFKA_STORAGE_ERROR while
the broker and its other partitions keep serving."""

import re
import shutil

import pytest
from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaStorageError

from conftest import free_port_range
from kafka_helpers import producer, read_partition, send_all
from test_lifecycle import wait_until
from test_metrics import scrape, value


def test_a_broken_partition_directory_does_not_take_the_broker_down(broker_factory, topic):
    port = free_port_range(1)
    broker = broker_factory(cores=1, config={"sluice.metrics.addr": f"127.0.0.1:{port}"})
    KafkaAdminClient(bootstrap_servers=broker.bootstrap).create_topics([NewTopic(topic, 2, 1)])
    prod = producer(broker.bootstrap, linger_ms=0)
    send_all(prod, topic, [(b"a", b"1", [])], partition=0)
    send_all(prod, topic, [(b"b", b"2", [])], partition=1)
    prod.close()
    assert broker.stop() == 0

    broken = broker.data_dir / f"{topic}-1"
    shutil.rmtree(broken)
    broken.write_text("not a directory")           # opening the partition now fails
    broker.restart()

    prod = producer(broker.bootstrap, linger_ms=0, retries=0, enable_idempotence=False)
    assert send_all(prod, topic, [(b"c", b"3", [])], partition=0)[0].offset == 1
    with pytest.raises(KafkaStorageError):
        prod.send(topic, key=b"d", value=b"4", partition=1).get(timeout=15)
    assert [r.value for r in read_partition(broker.bootstrap, topic, 0, 2)] == [b"1", b"3"]
    logs = broker.logs()
    assert "partition failed to open" in logs
    # Loud, not silent: the summary names the partition and the metric counts it.
    assert re.search(rf"partitions OFFLINE after start-up.*{topic}-1", logs), logs[-2000:]
    wait_until(lambda: value(scrape(port), "sluice_partitions_offline", shard="0") == 1,
               "sluice_partitions_offline to count the broken partition")
    KafkaAdminClient(bootstrap_servers=broker.bootstrap).delete_topics([topic])
    wait_until(lambda: value(scrape(port), "sluice_partitions_offline", shard="0") == 0,
               "a deleted topic's partition to stop counting as offline")

"""A broker whose data disk is full still starts and serves reads: start-up writes only what
changed (cluster metadata, meta.properties, checkpoints) and the pid in `.lock` is best effort,
so a SIGTERM or kill -9 restart on a full 4 MiB tmpfs comes back with every acknowledged
record readable."""

import subprocess

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaStorageError

from conftest import Broker
from test_disk_full import VALUE, mount_tmpfs, producer


@pytest.fixture
def full_disk_broker(tmp_path, request):
    broker = Broker(tmp_path / "full", cores=1)
    mount_tmpfs(broker.data_dir, "4m")
    try:
        yield broker.start()
    finally:
        if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
            print(broker.logs())
        broker.kill()
        subprocess.run(["umount", "-l", str(broker.data_dir)], check=False)


def fill(broker):
    """Produces until the disk is full; returns the acknowledged keys in offset order."""
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics({"full": {"num_partitions": 1, "replication_factor": 1}})
    admin.close()
    p = producer(broker.bootstrap)
    acked = []
    for i in range(200):
        try:
            meta = p.send("full", key=b"%d" % i, value=VALUE, partition=0).get(timeout=10)
        except KafkaStorageError:
            break
        assert meta.offset == len(acked)
        acked.append(b"%d" % i)
    else:
        raise AssertionError("4 MiB filled without a storage error")
    p.close()
    return acked


def top_up(data_dir):
    """Fills what the last refused batch left, so not even one more page fits."""
    try:
        with open(data_dir / "filler", "ab") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        pass  # full (the create itself may already fail)


def read_keys(broker):
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                      auto_offset_reset="earliest", consumer_timeout_ms=3000,
                      fetch_max_bytes=50_000_000, max_partition_fetch_bytes=50_000_000)
    c.assign([TopicPartition("full", 0)])
    keys = [m.key for m in c]
    c.close()
    return keys


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_broker_restarts_on_a_full_data_disk_and_serves_reads(full_disk_broker, how):
    broker = full_disk_broker
    acked = fill(broker)
    if how == "sigterm":
        assert broker.stop() == 0
    else:
        broker.kill()
    # An empty lock file: recording the pid needs a page the disk does not have.
    (broker.data_dir / ".lock").write_bytes(b"")
    top_up(broker.data_dir)
    broker.restart()
    assert read_keys(broker) == acked, "every acknowledged record is readable after the restart"

"""A full disk: produce gets KAFKA_STORAGE_ERROR with no partial batch, the broker keeps
serving, and appends work again once space returns. The data dir is a small tmpfs mounted
for the test (the test machine runs as root, as CI does)."""

import subprocess

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import KafkaStorageError

from conftest import Broker

VALUE = b"x" * 60_000


def mount_tmpfs(path, size):
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)


def remount(path, size):
    subprocess.run(["mount", "-o", f"remount,size={size}", str(path)], check=True)


@pytest.fixture
def small_disk_broker(tmp_path, request):
    broker = Broker(tmp_path / "full", cores=1)
    mount_tmpfs(broker.data_dir, "4m")
    try:
        yield broker.start()
    finally:
        if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
            print(broker.logs())
        broker.kill()
        subprocess.run(["umount", "-l", str(broker.data_dir)], check=False)


def producer(bootstrap):
    # No retries and no idempotence: each send is one produce request whose outcome we see.
    return KafkaProducer(bootstrap_servers=bootstrap, acks=1, retries=0, linger_ms=0,
                         enable_idempotence=False, max_request_size=1_000_000)


def test_full_disk_fails_cleanly_and_recovers(small_disk_broker):
    broker = small_disk_broker
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic("full", 1, 1)])
    p = producer(broker.bootstrap)
    acked, error = [], None
    for i in range(200):
        try:
            acked.append(p.send("full", key=b"%d" % i, value=VALUE, partition=0).get(timeout=10).offset)
        except KafkaStorageError as e:
            error = e
            break
    assert error is not None, f"4 MiB filled without a storage error after {len(acked)} records"
    assert acked == list(range(len(acked))), "acknowledged offsets are contiguous"
    assert admin.describe_topics(["full"])[0]["error_code"] == 0, "broker still serves metadata"

    remount(broker.data_dir, "64m")
    more = [p.send("full", key=b"after-%d" % i, value=VALUE, partition=0).get(timeout=10).offset
            for i in range(3)]
    assert more == list(range(len(acked), len(acked) + 3)), "appends resume at the next offset"

    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                      auto_offset_reset="earliest", consumer_timeout_ms=3000,
                      fetch_max_bytes=50_000_000, max_partition_fetch_bytes=50_000_000)
    c.assign([TopicPartition("full", 0)])
    got = [(m.offset, m.key, m.value) for m in c]
    expected_keys = [b"%d" % i for i in range(len(acked))] + [b"after-%d" % i for i in range(3)]
    assert [k for _, k, _ in got] == expected_keys, "no partial or lost batch"
    assert all(v == VALUE for _, _, v in got)

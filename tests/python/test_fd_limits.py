"""Many partitions under a low open-file limit: closed segments hold no descriptors, so every
partition the broker accepted opens again after SIGTERM and kill -9 restarts with all its
acknowledged records; CreateTopics/CreatePartitions past what the limit can serve are refused
with POLICY_VIOLATION and a message naming the limit; a node whose placed partitions exceed
the limit refuses to start rather than leave arbitrary ones offline.

The broker runs under `prlimit --nofile=N:N` (soft and hard, so it cannot raise it)."""

import re
import socket
import struct

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from conftest import Broker

NOFILE = 1024
# Small segments: every partition rolls several times, so the old layout (three open files
# per closed segment) needs far more than NOFILE descriptors.
SEGMENT_BYTES = 1024
TOPICS = 4
PARTITIONS = 30
RECORDS_PER_PARTITION = 8
VALUE = b"v" * 400
POLICY_VIOLATION = 44


class LimitedBroker(Broker):
    """A broker started under a fixed RLIMIT_NOFILE."""

    def __init__(self, workdir, nofile, **kwargs):
        super().__init__(workdir, **kwargs)
        self.nofile = nofile

    def command(self):
        return ["prlimit", f"--nofile={self.nofile}:{self.nofile}", "--"] + super().command()


CONFIG = {
    "log.segment.bytes": str(SEGMENT_BYTES),
    # The internal topics' partitions count against the limit (reserved until created).
    "offsets.topic.num.partitions": "2",
    "transaction.state.log.num.partitions": "2",
    "share.coordinator.state.topic.num.partitions": "2",
}


@pytest.fixture
def limited(tmp_path, request):
    brokers = []

    def make(nofile=NOFILE, config=None):
        b = LimitedBroker(tmp_path / f"b{len(brokers)}", nofile, cores=2,
                          config=config or dict(CONFIG))
        brokers.append(b)
        return b

    yield make
    for b in brokers:
        if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
            print(b.logs())
        b.kill()


def produce_all(bootstrap, topics, start=0):
    """Sends RECORDS_PER_PARTITION records to every partition, one batch each; returns what
    was acknowledged: {(topic, partition): [(offset, key)]}."""
    p = KafkaProducer(bootstrap_servers=bootstrap, acks=1, retries=0, linger_ms=0,
                      enable_idempotence=False)
    futures = []
    for i in range(start, start + RECORDS_PER_PARTITION):
        for t in topics:
            for part in range(PARTITIONS):
                key = f"{t}-{part}-{i}".encode()
                futures.append((t, part, key, p.send(t, key=key, value=VALUE, partition=part)))
        p.flush()
    acked = {}
    for t, part, key, f in futures:
        acked.setdefault((t, part), []).append((f.get(timeout=30).offset, key))
    p.close()
    return acked


def read_all(bootstrap, topics):
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                      consumer_timeout_ms=5000, enable_auto_commit=False)
    tps = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
    c.assign(tps)
    c.seek_to_beginning()
    end = c.end_offsets(tps)
    got = {}
    for m in c:
        got.setdefault((m.topic, m.partition), []).append((m.offset, m.key))
        if all(len(got.get((tp.topic, tp.partition), [])) >= end[tp] for tp in tps):
            break
    c.close()
    return got


def assert_all_readable(broker, topics, acked):
    got = read_all(broker.bootstrap, topics)
    for tp, records in acked.items():
        have = got.get(tp, [])
        missing = sorted(set(records) - set(have))
        assert not missing, f"{tp}: acknowledged records unreadable after restart: {missing[:3]}"
    assert "OFFLINE" not in broker.logs()
    assert "failed to open" not in broker.logs()


def test_many_partitions_with_many_segments_survive_restarts_under_a_low_fd_limit(limited):
    broker = limited()
    broker.start()
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    topics = [f"fd-{i}" for i in range(TOPICS)]
    admin.create_topics({t: {"num_partitions": PARTITIONS, "replication_factor": 1}
                         for t in topics})
    admin.close()
    acked = produce_all(broker.bootstrap, topics)
    segments = sum(1 for _ in broker.data_dir.glob("fd-*/*.log"))
    # Old layout: 4 per partition plus 3 per closed segment.
    old_need = 4 * TOPICS * PARTITIONS + 3 * (segments - TOPICS * PARTITIONS)
    assert old_need > NOFILE, f"only {segments} segments: the test would not exceed the limit"

    assert broker.stop() == 0
    broker.restart()
    assert_all_readable(broker, topics, acked)

    more = produce_all(broker.bootstrap, topics, start=RECORDS_PER_PARTITION)
    for tp, records in more.items():
        acked[tp] += records
    broker.kill()
    broker.restart()
    assert_all_readable(broker, topics, acked)
    assert re.search(r"open-file limit.*nofile=1024", broker.logs())


def create(admin, topic, partitions):
    r = admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": 1}},
                            raise_errors=False)
    return r["topics"][0]


def test_partitions_past_the_fd_limit_are_refused_up_front(limited):
    broker = limited()
    broker.start()
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    refused = create(admin, "ten-thousand", 10_000)
    assert refused["error_code"] == POLICY_VIOLATION, refused
    message = refused["error_message"]
    assert "at most 147 partitions" in message and "RLIMIT_NOFILE" in message, message
    assert "1024" in message and "ulimit -n" in message, message

    ok = create(admin, "fits", 100)
    assert ok["error_code"] == 0, ok
    # 147 - 100 - 6 reserved for the internal topics leaves 41.
    over = admin.create_partitions({"fits": 150}, raise_errors=False)
    result = over.results[0]
    assert result.error_code == POLICY_VIOLATION, result
    assert "RLIMIT_NOFILE" in result.error_message
    assert create(admin, "too-many", 42)["error_code"] == POLICY_VIOLATION
    assert create(admin, "last", 41)["error_code"] == 0
    admin.close()
    # The node is full: auto-creation is refused the same way.
    assert auto_create_error(broker.shard_port(0), "auto-created") == POLICY_VIOLATION

    # Everything accepted opens after a restart.
    assert broker.stop() == 0
    broker.restart()
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    described = admin.describe_topics(["fits", "last"])
    assert [len(t["partitions"]) for t in described] == [100, 41]
    admin.close()
    assert "OFFLINE" not in broker.logs()


def auto_create_error(port, topic):
    """Error code of `topic` in a Metadata v4 answer that asked to auto-create it."""
    name = topic.encode()
    client = b"fd-test"
    body = struct.pack(">ih", 1, len(name)) + name + b"\x01"
    payload = struct.pack(">hhih", 3, 4, 1, len(client)) + client + body
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(struct.pack(">i", len(payload)) + payload)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">i", buf[:4])[0]:
            chunk = s.recv(65536)
            assert chunk, "connection closed"
            buf += chunk
    at = 4 + 4 + 4  # frame size, correlation id, throttle time

    def string(at):
        (n,) = struct.unpack(">h", buf[at:at + 2])
        return at + 2 + max(n, 0)
    (brokers,) = struct.unpack(">i", buf[at:at + 4])
    at += 4
    for _ in range(brokers):
        at = string(at + 4) + 4  # node id, host, port
        at = string(at)  # rack
    at = string(at) + 4  # cluster id, controller id
    (topics,) = struct.unpack(">i", buf[at:at + 4])
    assert topics == 1
    (error,) = struct.unpack(">h", buf[at + 4:at + 6])
    return error


def test_start_refused_when_placed_partitions_exceed_the_fd_limit(limited):
    roomy = limited(nofile=20_000)
    roomy.start()
    admin = KafkaAdminClient(bootstrap_servers=roomy.bootstrap)
    assert create(admin, "big", 200)["error_code"] == 0
    admin.close()
    assert roomy.stop() == 0

    roomy.nofile = 512
    with pytest.raises(RuntimeError, match="exited during start-up"):
        roomy.restart()
    log = roomy.log_path(roomy.starts).read_text()
    assert "partitions are placed on this node but it can serve at most" in log, log[-3000:]
    # Nothing was deleted: with the limit back, every partition is there again.
    roomy.nofile = 20_000
    roomy.restart()
    admin = KafkaAdminClient(bootstrap_servers=roomy.bootstrap)
    assert len(admin.describe_topics(["big"])[0]["partitions"]) == 200
    admin.close()

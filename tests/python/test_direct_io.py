"""The O_DIRECT log mode (`sluice.log.io=direct`) through librdkafka (confluent-kafka): a
consumer that keeps up and one that reads from the start get every record byte-identical, closed
segments end at their last batch, and a kill -9 in the middle of acknowledged produces loses
none of them (O_DIRECT writes reach the device before the answer, no fdatasync needed)."""

import struct
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition

TIMEOUT_S = 30
DIRECT = {"sluice.log.io": "direct", "log.segment.bytes": "262144",
          "sluice.log.direct.cache.bytes": "65536"}


def _produce(bootstrap, topic, values, acks="all"):
    """Sends values to partition 0; returns the offsets acknowledged, in order."""
    acked, errors = [], []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked.append(msg.offset())

    prod = Producer({"bootstrap.servers": bootstrap, "linger.ms": 2, "acks": acks,
                     "batch.size": 16384})
    for v in values:
        prod.produce(topic, value=v, partition=0, on_delivery=on_delivery)
        prod.poll(0)
    assert prod.flush(TIMEOUT_S) == 0, "records still queued after flush"
    assert errors == [], errors
    return acked


def _read_all(bootstrap, topic, count):
    """(offset, value) of the first `count` records of partition 0, read from the start."""
    import time
    cons = Consumer({"bootstrap.servers": bootstrap, "group.id": f"r-{uuid.uuid4().hex}",
                     "enable.auto.commit": False, "fetch.wait.max.ms": 100})
    out, deadline = [], time.monotonic() + TIMEOUT_S
    try:
        cons.assign([TopicPartition(topic, 0, 0)])
        while len(out) < count and time.monotonic() < deadline:
            msg = cons.poll(0.2)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            out.append((msg.offset(), msg.value()))
    finally:
        cons.close()
    return out


def _batches_fill(path):
    """True when the .log file is a whole number of record batches (no padding, no tail)."""
    data = path.read_bytes()
    pos = 0
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">i", data[pos + 8:pos + 12])
        if length < 49:
            return False
        pos += 12 + length
    return pos == len(data)


def _values(n, tag):
    return [f"{tag}-{i:07d}-".encode() * 20 for i in range(n)]


def test_every_record_comes_back_and_closed_segments_end_at_their_last_batch(
        broker_factory, topic):
    broker = broker_factory(cores=1, config=DIRECT)
    values = _values(4000, "a")
    tail_reader = Consumer({"bootstrap.servers": broker.bootstrap,
                            "group.id": f"t-{uuid.uuid4().hex}", "fetch.wait.max.ms": 50,
                            "auto.offset.reset": "earliest"})
    try:
        acked = _produce(broker.bootstrap, topic, values)
        assert acked == list(range(len(values)))
        # Read right behind the producer (tail cache), then from the start (the oldest
        # segments are out of the 64 KiB cache and come from the files).
        tail_reader.assign([TopicPartition(topic, 0, len(values) - 50)])
        tail = []
        import time
        deadline = time.monotonic() + TIMEOUT_S
        while len(tail) < 50 and time.monotonic() < deadline:
            msg = tail_reader.poll(0.2)
            if msg is not None:
                assert msg.error() is None, msg.error()
                tail.append(msg.value())
        assert tail == values[-50:]
    finally:
        tail_reader.close()
    assert _read_all(broker.bootstrap, topic, len(values)) == list(enumerate(values))

    logs = sorted((broker.data_dir / f"{topic}-0").glob("*.log"))
    assert len(logs) >= 3, f"expected several 256 KiB segments, got {logs}"
    for closed in logs[:-1]:
        assert _batches_fill(closed), f"{closed.name} does not end at its last batch"

    assert broker.stop() == 0
    active = sorted((broker.data_dir / f"{topic}-0").glob("*.log"))[-1]
    assert _batches_fill(active), "a clean stop cuts the active segment's padding"
    broker.restart()
    assert _read_all(broker.bootstrap, topic, len(values)) == list(enumerate(values))


def test_kill_9_loses_no_acknowledged_record(broker_factory, topic):
    broker = broker_factory(cores=1, config=DIRECT)
    first = _values(3000, "before")
    assert _produce(broker.bootstrap, topic, first, acks="1") == list(range(len(first)))
    broker.kill()
    broker.restart()
    more = _values(500, "after")
    acked = _produce(broker.bootstrap, topic, more, acks="1")
    assert acked == list(range(len(first), len(first) + len(more))), \
        "appends continue right after the last acknowledged record"
    everything = first + more
    assert _read_all(broker.bootstrap, topic, len(everything)) == list(enumerate(everything))
    assert "recovery truncated" in broker.logs(), "the crash left padding for recovery to cut"

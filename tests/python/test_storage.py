"""Broker settings that shape storage, seen through kafka-python and the data dir:
log.segment.bytes rolls segments with Kafka's file names; message.max.bytes refuses big batches."""

import re

import pytest
from kafka import TopicPartition
from kafka.errors import MessageSizeTooLargeError

from kafka_helpers import consumer, producer, read_partition, send_all

SEGMENT_NAME = re.compile(r"^(\d{20})\.(log|index|timeindex)$")


def segment_files(data_dir, topic, partition=0):
    """{base offset: set of extensions} for the partition's directory."""
    files = {}
    for path in (data_dir / f"{topic}-{partition}").iterdir():
        m = SEGMENT_NAME.match(path.name)
        if m:
            files.setdefault(int(m.group(1)), set()).add(m.group(2))
    return files


def first_offset_in_log(path):
    """Base offset of the first batch of a .log file (0 bytes: None)."""
    data = path.read_bytes()
    return int.from_bytes(data[:8], "big") if data else None


def test_segments_roll_with_kafka_names(broker_factory, topic):
    broker = broker_factory(cores=1, config={"log.segment.bytes": "65536"})
    prod = producer(broker.bootstrap, linger_ms=0, batch_size=4096)
    recs = [(f"k{i}".encode(), f"{i:06d}".encode() * 170, []) for i in range(600)]
    meta = send_all(prod, topic, recs)
    prod.close()
    assert [m.offset for m in meta] == list(range(len(recs)))

    files = segment_files(broker.data_dir, topic)
    assert len(files) >= 3, f"expected several segments of 64 KiB, got {sorted(files)}"
    for base, exts in files.items():
        assert {"log", "index", "timeindex"} <= exts, f"segment {base} has only {exts}"
        log = broker.data_dir / f"{topic}-0" / f"{base:020}.log"
        first = first_offset_in_log(log)
        assert first in (base, None), f"segment {base:020}.log starts at offset {first}"
    assert min(files) == 0

    # Reading from the middle of a later segment must find the right record (index lookup).
    middle = sorted(files)[len(files) // 2] + 3
    cons = consumer(broker.bootstrap)
    tp = TopicPartition(topic, 0)
    cons.assign([tp])
    cons.seek(tp, middle)
    got = []
    while not got:
        for batch in cons.poll(timeout_ms=1000).values():
            got.extend(batch)
    cons.close()
    assert (got[0].offset, got[0].key) == (middle, f"k{middle}".encode())

    assert broker.stop() == 0
    broker.restart()
    read = read_partition(broker.bootstrap, topic, 0, len(recs))
    assert [(r.offset, r.key, r.value) for r in read] == [
        (i, k, v) for i, (k, v, _) in enumerate(recs)]


def test_batch_above_message_max_bytes_is_refused(broker_factory, topic):
    broker = broker_factory(cores=1, config={"message.max.bytes": "10000"})
    prod = producer(broker.bootstrap, linger_ms=0, compression_type=None)
    [ok] = send_all(prod, topic, [(b"small", b"x" * 1000, [])])
    assert ok.offset == 0
    with pytest.raises(MessageSizeTooLargeError):
        prod.send(topic, key=b"big", value=b"y" * 20000, partition=0).get(timeout=15)
    prod.close()
    cons = consumer(broker.bootstrap)
    tp = TopicPartition(topic, 0)
    assert cons.end_offsets([tp]) == {tp: 1}, "the refused batch must not be appended"
    cons.close()

"""kafka-python helpers shared by the tests. These consumers assign partitions and seek
themselves; group tests live in test_groups.py."""

import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

CALL_TIMEOUT_S = 15


def producer(bootstrap, **config):
    # kafka-python 3's default producer is idempotent (InitProducerId, sequence numbers), and
    # so is this one unless a test says otherwise.
    config.setdefault("acks", "all")
    config.setdefault("linger_ms", 5)
    return KafkaProducer(bootstrap_servers=bootstrap, request_timeout_ms=15000, **config)


def consumer(bootstrap, **config):
    return KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                         enable_auto_commit=False, auto_offset_reset="earliest",
                         check_crcs=True, fetch_max_wait_ms=100,
                         request_timeout_ms=15000, **config)


def send_all(prod, topic, records, partition=0):
    """Sends (key, value, headers[, timestamp_ms]) tuples pipelined; returns their metadata."""
    futures = []
    for rec in records:
        key, value, headers = rec[:3]
        ts = rec[3] if len(rec) > 3 else None
        futures.append(prod.send(topic, key=key, value=value, headers=headers,
                                 partition=partition, timestamp_ms=ts))
    prod.flush(timeout=CALL_TIMEOUT_S)
    return [f.get(timeout=CALL_TIMEOUT_S) for f in futures]


def read_partition(bootstrap, topic, partition, count, timeout_s=30):
    """Reads `count` records from offset 0; fails if fewer arrive or any extra shows up."""
    cons = consumer(bootstrap)
    tp = TopicPartition(topic, partition)
    cons.assign([tp])
    cons.seek_to_beginning(tp)
    out = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(out) < count:
            assert time.monotonic() < deadline, (
                f"only {len(out)} of {count} records read from {topic}/{partition}")
            for recs in cons.poll(timeout_ms=200).values():
                out.extend(recs)
        extra = [r for recs in cons.poll(timeout_ms=500).values() for r in recs]
        assert not extra, f"unexpected extra records at offsets {[r.offset for r in extra]}"
    finally:
        cons.close()
    return out


CODEC_BITS = {None: 0, "none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def codecs_on_disk(data_dir, topic, partition=0):
    """Codec bits (attributes & 7) of every batch in the partition's first segment. Batches
    are stored as the producer sent them, so these are the producer's codecs."""
    import struct
    path = data_dir / f"{topic}-{partition}" / f"{0:020}.log"
    data = path.read_bytes()
    codecs, pos = [], 0
    # RecordBatch v2: baseOffset i64, batchLength i32, leaderEpoch i32, magic i8, crc u32,
    # attributes i16.
    while pos + 23 <= len(data):
        (length,) = struct.unpack(">i", data[pos + 8:pos + 12])
        assert data[pos + 16] == 2, f"magic of batch at file position {pos}"
        (attributes,) = struct.unpack(">h", data[pos + 21:pos + 23])
        codecs.append(attributes & 7)
        pos += 12 + length
    assert pos == len(data), "segment ends in the middle of a batch"
    return codecs

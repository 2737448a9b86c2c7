"""Produce and consume with kafka-python: keys, null values, headers and every codec."""

import pytest

from kafka_helpers import CODEC_BITS, codecs_on_disk, producer, read_partition, send_all

CODECS = [None, "gzip", "snappy", "lz4", "zstd"]
COUNT = 250


def sample_records(tag, n=COUNT):
    recs = []
    for i in range(n):
        # kafka-python refuses a record with neither key nor value; keep a key on null values.
        key = None if i % 7 == 0 and i % 11 != 0 else f"{tag}-key-{i}".encode()
        if i % 11 == 0:
            value = None
        elif i % 11 == 1:
            value = b""
        elif i % 11 == 2:
            value = bytes(range(256))
        elif i % 11 == 3:
            value = b"z" * (30000 + i)
        else:
            value = f"{tag}-value-{i}-".encode() + b"x" * (i % 40)
        if i % 4 == 0:
            headers = []
        elif i % 4 == 1:
            headers = [("h", bytes([i % 256]))]
        else:
            headers = [("dup", b"first"), ("dup", f"second-{i}".encode()), ("empty", b"")]
        recs.append((key, value, headers))
    return recs


def assert_same(sent, read):
    assert len(read) == len(sent)
    for i, (rec, r) in enumerate(zip(sent, read)):
        assert r.offset == i, f"offset of record {i}"
        key, value, headers = rec
        assert (r.key, r.value) == (key, value), f"record {i}"
        assert list(r.headers) == headers, f"headers of record {i}"


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c or "none")
def test_round_trip_each_codec(broker, topic, codec):
    prod = producer(broker.bootstrap, compression_type=codec)
    recs = sample_records(codec or "none")
    meta = send_all(prod, topic, recs)
    prod.close()
    assert [m.offset for m in meta] == list(range(COUNT))
    assert {m.partition for m in meta} == {0}
    assert_same(recs, read_partition(broker.bootstrap, topic, 0, COUNT))
    # kafka-python sends a batch uncompressed when compression would not shrink it (tiny
    # batches), so some batches may be plain; the compressible ones must keep the codec.
    on_disk = codecs_on_disk(broker.data_dir, topic)
    bits = CODEC_BITS[codec]
    assert bits in on_disk and set(on_disk) <= {0, bits}, f"codec bits on disk: {on_disk}"


def test_records_survive_graceful_restart(broker, topic):
    prod = producer(broker.bootstrap, compression_type="zstd")
    recs = sample_records("restart", 100)
    send_all(prod, topic, recs)
    prod.close()
    assert broker.stop() == 0
    broker.restart()
    assert_same(recs, read_partition(broker.bootstrap, topic, 0, len(recs)))
    prod = producer(broker.bootstrap)
    meta = send_all(prod, topic, [(b"k", b"after", [])])
    prod.close()
    assert meta[0].offset == len(recs), "append after restart continues the offsets"


def test_acks_zero_and_one_are_delivered(broker, topic):
    for acks in (0, 1):
        prod = producer(broker.bootstrap, acks=acks)
        send_all(prod, topic, [(f"acks{acks}".encode(), b"v", [])])
        prod.close()
    read = read_partition(broker.bootstrap, topic, 0, 2)
    assert [r.key for r in read] == [b"acks0", b"acks1"]

"""Offsets and watermarks through kafka-python: beginning/end offsets (ListOffsets earliest and
latest) and offsets_for_times (ListOffsets by timestamp)."""

from kafka import TopicPartition

from kafka_helpers import consumer, producer, send_all


def test_watermarks_and_offsets_for_times(broker, topic):
    tp = TopicPartition(topic, 0)
    base = 1_700_000_000_000
    # Timestamps deliberately not in offset order: offsets_for_times must return the first
    # offset whose timestamp is >= the target, not the first offset after some position.
    stamps = [base + 1000, base + 3000, base + 2000, base + 5000, base + 4000]
    prod = producer(broker.bootstrap)
    # One record per send and flush, so each is its own batch with its own max timestamp.
    for i, ts in enumerate(stamps):
        [meta] = send_all(prod, topic, [(f"k{i}".encode(), b"v", [], ts)])
        assert meta.offset == i
    prod.close()

    cons = consumer(broker.bootstrap)
    try:
        assert cons.beginning_offsets([tp]) == {tp: 0}
        assert cons.end_offsets([tp]) == {tp: len(stamps)}
        expectations = {
            base: (0, base + 1000),
            base + 1000: (0, base + 1000),
            base + 1500: (1, base + 3000),
            base + 2500: (1, base + 3000),
            base + 3500: (3, base + 5000),
            base + 5000: (3, base + 5000),
        }
        for target, (offset, ts) in expectations.items():
            found = cons.offsets_for_times({tp: target})[tp]
            assert found is not None, f"no offset for timestamp {target}"
            assert (found.offset, found.timestamp) == (offset, ts), f"target {target}"
        assert cons.offsets_for_times({tp: base + 5001})[tp] is None
    finally:
        cons.close()


def test_empty_partition_watermarks(broker, topic):
    prod = producer(broker.bootstrap)
    send_all(prod, topic, [(b"k", b"v", [])])  # auto-creates the topic
    prod.close()
    cons = consumer(broker.bootstrap)
    try:
        tp = TopicPartition(topic, 0)
        assert cons.beginning_offsets([tp]) == {tp: 0}
        assert cons.end_offsets([tp]) == {tp: 1}
    finally:
        cons.close()

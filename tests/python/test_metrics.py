"""The Prometheus endpoint after real produce and consume traffic shows the right counts."""

import re
import urllib.request

from conftest import free_port_range
from kafka_helpers import producer, read_partition, send_all


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        assert r.status == 200
        return r.read().decode()


def value(text, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    total, found = 0.0, False
    for line in text.splitlines():
        m = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if not m:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if all(have.get(k) == v for k, v in labels.items()):
            total, found = total + float(m.group(2)), True
    assert found, f"no {name} sample with {labels}"
    return total


def test_metrics_count_produce_and_fetch_traffic(broker_factory, topic):
    port = free_port_range(1)
    broker = broker_factory(cores=1, config={"sluice.metrics.addr": f"127.0.0.1:{port}"})
    prod = producer(broker.bootstrap, linger_ms=0)
    records = [(b"k%d" % i, b"v" * 100, []) for i in range(5)]
    send_all(prod, topic, records)
    prod.close()
    read_partition(broker.bootstrap, topic, 0, 5)

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
        assert r.read() == b"ok\n"
    # Partition gauges, latency histograms and topic traffic are published once a second:
    # wait until this partition's gauge shows all five and the fetch's bytes are counted.
    import time
    deadline = time.monotonic() + 10
    text = scrape(port)
    published = re.compile(rf'^sluice_log_end_offset\{{.*topic="{topic}",partition="0"\}} 5$', re.M)
    fetched = re.compile(rf'^sluice_topic_bytes_out_total\{{.*topic="{topic}".*\}} [1-9]', re.M)
    while not (published.search(text) and fetched.search(text)) and time.monotonic() < deadline:
        time.sleep(0.1)
        text = scrape(port)
    assert value(text, "sluice_topic_messages_in_total", topic=topic) == 5
    assert value(text, "sluice_topic_bytes_in_total", topic=topic) > 500
    assert value(text, "sluice_topic_bytes_out_total", topic=topic) >= value(
        text, "sluice_topic_bytes_in_total", topic=topic)
    assert value(text, "sluice_requests_total", api="Produce") >= 1
    assert value(text, "sluice_requests_total", api="Fetch") >= 1
    assert value(text, "sluice_log_end_offset", topic=topic, partition="0") == 5
    assert value(text, "sluice_partitions", shard="0") >= 1
    # queued.max.request.bytes (1 GiB by default, one shard): nothing is held between requests.
    assert value(text, "sluice_request_memory_free_bytes", shard="0") == 1 << 30
    assert 'sluice_request_latency_seconds{shard="0",api="Produce",quantile="0.99"}' in text


def test_metrics_show_group_lag_io_uring_file_io_and_pools(broker_factory, topic):
    """Consumer-group lag joins a group's committed offset (published by the coordinator shard)
    with the partition's high watermark (published by its owner, maybe another shard)."""
    from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

    port = free_port_range(1)
    broker = broker_factory(cores=2, config={"sluice.metrics.addr": f"127.0.0.1:{port}"})
    prod = producer(broker.bootstrap, linger_ms=0)
    send_all(prod, topic, [(None, b"x" * 1000, []) for _ in range(10)])
    prod.close()
    read_partition(broker.bootstrap, topic, 0, 10)
    group = f"lag-{topic}"
    cons = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group,
                         enable_auto_commit=False)
    try:
        cons.commit({TopicPartition(topic, 0): OffsetAndMetadata(4, "", -1)})
    finally:
        cons.close()

    import time
    deadline = time.monotonic() + 10
    while True:
        text = scrape(port)
        if f'sluice_consumer_group_lag{{group="{group}"' in text or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert value(text, "sluice_consumer_group_committed_offset", group=group, topic=topic,
                 partition="0") == 4
    assert value(text, "sluice_consumer_group_lag", group=group, topic=topic, partition="0") == 6
    # Appends are buffered writes through io_uring: at least the 10 KB just produced.
    assert value(text, "sluice_uring_file_ops_total", op="buffered_write") >= 1
    assert value(text, "sluice_uring_file_bytes_total", op="buffered_write") >= 10_000
    assert value(text, "sluice_uring_files_open") >= 1
    # The pool may be empty (sendfile served everything); its gauges are there either way.
    value(text, "sluice_pool_buffers", pool="fetch_copy")
    value(text, "sluice_pool_bytes", pool="fetch_copy")


def test_the_stall_probe_sees_a_held_shard(broker_factory):
    """A shard thread held for 300 ms (the whole broker stopped with SIGSTOP, as a blocking
    call or a preempted core would hold it) shows as a long stall of at least 200 ms."""
    import os
    import signal
    import time
    port = free_port_range(1)
    broker = broker_factory(cores=1, config={"sluice.metrics.addr": f"127.0.0.1:{port}"})
    text = scrape(port)
    assert value(text, "sluice_shard_stall_probes_total", shard="0") > 0
    before = value(text, "sluice_shard_long_stalls_total", shard="0")
    os.kill(broker.proc.pid, signal.SIGSTOP)
    time.sleep(0.3)
    os.kill(broker.proc.pid, signal.SIGCONT)
    deadline = time.monotonic() + 10
    while value(scrape(port), "sluice_shard_long_stalls_total", shard="0") == before:
        assert time.monotonic() < deadline, "the stall was not seen"
        time.sleep(0.1)
    text = scrape(port)
    assert value(text, "sluice_shard_stalls_total", shard="0") >= 1
    # The probe wakes at least every 100 ms, so it ran at least 200 ms late.
    assert value(text, "sluice_shard_stall_seconds", shard="0", quantile="1") >= 0.2

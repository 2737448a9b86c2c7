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
    # Partition gauges are published once a second.
    import time
    time.sleep(1.2)
    text = scrape(port)
    assert value(text, "sluice_topic_messages_in_total", topic=topic) == 5
    assert value(text, "sluice_topic_bytes_in_total", topic=topic) > 500
    assert value(text, "sluice_topic_bytes_out_total", topic=topic) >= value(
        text, "sluice_topic_bytes_in_total", topic=topic)
    assert value(text, "sluice_requests_total", api="Produce") >= 1
    assert value(text, "sluice_requests_total", api="Fetch") >= 1
    assert value(text, "sluice_log_end_offset", topic=topic, partition="0") == 5
    assert value(text, "sluice_partitions", shard="0") >= 1
    assert 'sluice_request_latency_seconds{shard="0",api="Produce",quantile="0.99"}' in text

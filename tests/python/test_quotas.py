"""Client quotas (KIP-13/55/219): `producer_byte_rate` and `consumer_byte_rate` set for one
client id with AlterClientQuotas (through `sluice configs`: neither confluent-kafka 2.16 nor
kafka-python 3.0 has the client quota admin calls) hold that client to its quota while
another client on the same shard runs unthrottled, throttled clients are told so
(`throttle_cb`), and DescribeClientQuotas returns what was set, also after a restart.

Rates are measured from the first byte acknowledged over the rate's window: a new client may
at once send what the quota allows over Kafka's window (`quota.window.num` - 1 samples of
`quota.window.size.seconds`) and is then held until that window has passed, so over the window
it gets the quota. Kafka's window also counts the part of the current sample already elapsed
(up to one more sample), which lets a producer (recorded, then throttled) run ahead by up to
1/(num - 1): 10% with the default 11 samples. The producer test therefore runs a broker with
21 samples over 20 s; a throttled fetch is answered empty, so the consumer is held to the
quota with the defaults over 10 s."""

import json
import os
import subprocess
import threading
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import sluice_bin

QUOTA = 200 * 1024  # bytes per second
RUN_S = 10.0
# The producer broker's quota.window.num: a 20 s window, so the greedy producer's rate over
# 20 s is off by at most 1/20 from the window's partly filled last sample (see below).
PRODUCE_WINDOW_NUM = 21
PRODUCE_S = 20.0
MESSAGE = b"x" * 1024


def sluice(broker, *args):
    out = subprocess.run(
        [str(sluice_bin()), *args, "--bootstrap-server", broker.bootstrap],
        capture_output=True, text=True, timeout=60, env=dict(os.environ, RUST_LOG="error"))
    assert out.returncode == 0, out.stderr
    return out.stdout


def described(broker, client_id):
    entries = json.loads(sluice(broker, "configs", "describe", "--entity-type", "clients",
                                "--entity-name", client_id, "--output", "json"))
    return {key: value for e in entries for key, value in e["values"]}


def create_topic(broker, topic):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)


class Throttles:
    """Collects librdkafka's throttle events (a response with throttle_time_ms > 0)."""

    def __init__(self):
        self.events = []

    def __call__(self, event):
        self.events.append(event.throttle_time)


def produce_for(broker, topic, client_id, seconds, results):
    """Produces 1 KiB messages as fast as allowed; stores the bytes acknowledged within
    `seconds` of the first acknowledgement (when the broker's sensor for the client starts)."""
    throttles = Throttles()
    p = Producer({"bootstrap.servers": broker.bootstrap, "client.id": client_id,
                  # Small requests: each is recorded before it can be throttled, so the
                  # last one of a burst overshoots by its size.
                  "linger.ms": 5, "batch.size": 4096, "acks": 1,
                  "max.in.flight.requests.per.connection": 1,
                  "throttle_cb": throttles})
    acked = [0]
    first = [None]

    def delivered(err, msg):
        now = time.monotonic()
        if err is not None:
            return
        if first[0] is None:
            first[0] = now
        if now <= first[0] + seconds:
            acked[0] += len(msg.value())

    give_up = time.monotonic() + seconds + 30
    while first[0] is None or time.monotonic() < first[0] + seconds:
        assert time.monotonic() < give_up, "nothing acknowledged"
        try:
            p.produce(topic, MESSAGE, callback=delivered)
            p.poll(0)
        except BufferError:
            p.poll(0.05)
    p.purge()
    p.flush(15)
    results[client_id] = (acked[0] / seconds, throttles.events)


def consume_for(broker, topic, client_id, seconds, results):
    """Reads the topic from the start; stores the value bytes received within `seconds` of
    the first message."""
    throttles = Throttles()
    c = Consumer({"bootstrap.servers": broker.bootstrap, "client.id": client_id,
                  "group.id": client_id, "enable.auto.commit": False,
                  "fetch.max.bytes": 65536, "max.partition.fetch.bytes": 65536,
                  "message.max.bytes": 65536, "receive.message.max.bytes": 200000,
                  "throttle_cb": throttles})
    c.assign([TopicPartition(topic, 0, 0)])
    received = 0
    first = None
    give_up = time.monotonic() + seconds + 30
    while first is None or time.monotonic() < first + seconds:
        assert time.monotonic() < give_up, "nothing received"
        for m in c.consume(num_messages=1000, timeout=0.1):
            now = time.monotonic()
            if m.error() is not None:
                continue
            first = now if first is None else first
            if now <= first + seconds:
                received += len(m.value())
    c.close()
    results[client_id] = (received / seconds, throttles.events)


def run_together(target, broker, topic, clients, seconds):
    results = {}
    threads = [threading.Thread(target=target, args=(broker, topic, c, seconds, results))
               for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 60)
    return results


def test_producer_byte_rate_holds_one_client_to_its_quota_and_survives_a_restart(
        broker_factory, topic):
    broker = broker_factory(cores=1, config={"quota.window.num": PRODUCE_WINDOW_NUM})
    create_topic(broker, topic)
    sluice(broker, "configs", "alter", "--entity-type", "clients", "--entity-name",
           "throttled-producer", "--add-config", f"producer_byte_rate={QUOTA}")
    assert described(broker, "throttled-producer") == {"producer_byte_rate": QUOTA}

    results = run_together(produce_for, broker, topic,
                           ["throttled-producer", "free-producer"], PRODUCE_S)
    slow_rate, slow_throttles = results["throttled-producer"]
    fast_rate, fast_throttles = results["free-producer"]
    print(f"producer_byte_rate {QUOTA} B/s: throttled client {slow_rate:.0f} B/s "
          f"({slow_rate / QUOTA:.3f} of the quota, {len(slow_throttles)} throttle events), "
          f"free client {fast_rate:.0f} B/s")
    assert abs(slow_rate - QUOTA) <= 0.1 * QUOTA, (slow_rate, QUOTA)
    assert slow_throttles, "the throttled client was never told"
    assert fast_rate > 3 * QUOTA, (fast_rate, QUOTA)
    assert not fast_throttles

    broker.stop()
    broker.restart()
    assert described(broker, "throttled-producer") == {"producer_byte_rate": QUOTA}
    sluice(broker, "configs", "alter", "--entity-type", "clients", "--entity-name",
           "throttled-producer", "--delete-config", "producer_byte_rate")
    assert described(broker, "throttled-producer") == {}


def test_consumer_byte_rate_holds_one_consumer_to_its_quota(broker_factory, topic):
    broker = broker_factory(cores=1)
    create_topic(broker, topic)
    # Small batches: a fetch answers at least one whole batch whatever its byte limits.
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 20, "batch.size": 16384})
    for _ in range(8 * 1024):  # 8 MiB: more than either consumer reads
        while True:
            try:
                p.produce(topic, MESSAGE)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(60) == 0
    sluice(broker, "configs", "alter", "--entity-type", "clients", "--entity-name",
           "throttled-consumer", "--add-config", f"consumer_byte_rate={QUOTA}")

    results = run_together(consume_for, broker, topic,
                           ["throttled-consumer", "free-consumer"], RUN_S)
    slow_rate, slow_throttles = results["throttled-consumer"]
    fast_rate, _ = results["free-consumer"]
    print(f"consumer_byte_rate {QUOTA} B/s: throttled consumer {slow_rate:.0f} B/s "
          f"({slow_rate / QUOTA:.3f} of the quota), free consumer {fast_rate:.0f} B/s")
    assert abs(slow_rate - QUOTA) <= 0.1 * QUOTA, (slow_rate, QUOTA)
    assert slow_throttles, "the throttled consumer was never told"
    assert fast_rate > 3 * QUOTA, (fast_rate, QUOTA)

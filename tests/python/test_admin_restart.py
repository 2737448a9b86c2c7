"""One confluent-kafka AdminClient (librdkafka 2.16) kept open across a broker restart, after it
looked up a group's coordinator (describe_consumer_groups), then delete_consumer_groups.

The broker answers every request of that sequence, and a fresh client deletes the group at once.
The kept client's delete can still time out, and that is librdkafka's doing (its issue #5511, open
in 2.16): a restart takes every shard down at once, so the client sees all brokers down, starts a
re-bootstrap and decommissions its broker handles. The handle that `describe` left in its
coordinator cache stays cached (the cache still holds a reference, so the handle never finishes
terminating), and the next coordinator request waits for that dead handle to connect. It never
does and nothing is sent, so the request times out unless some other broker state change happens
to re-run the lookup. `metadata.recovery.strategy=none` turns the re-bootstrap off: the old
handles then just reconnect, and the cached coordinator is usable again.

The first test keeps the client with that setting and checks the delete is quick after SIGTERM
and kill -9. The second keeps a default client and checks the broker's side of the stall: the
delete either succeeds (a librdkafka with the fix) or times out without the broker having handled
a FindCoordinator or DeleteGroups request meanwhile, while a fresh client deletes at once.
"""

import re
import signal
import time
import urllib.request
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

import pytest

from conftest import free_port_range

TIMEOUT_S = 30
# How long the same client gets to delete the group after the restart.
DELETE_BOUND_S = 5.0
# After the restart the client re-bootstraps: a connection to the bootstrap port, the broker
# list from its Metadata, then (one second later) a connection to a shard. This covers it, so
# the delete starts when the client has settled, the state in which the stall shows.
SETTLE_S = 3.0


def _admin(bootstrap, **config):
    return AdminClient({"bootstrap.servers": bootstrap, **config})


def _group_with_committed_offsets(bootstrap, topic, group):
    """A topic with records, and `group` left Empty with committed offsets."""
    admin = _admin(bootstrap)
    admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])[topic].result(
        timeout=TIMEOUT_S)
    prod = Producer({"bootstrap.servers": bootstrap})
    for i in range(8):
        prod.produce(topic, value=b"v%d" % i, partition=i % 4)
    assert prod.flush(TIMEOUT_S) == 0
    cons = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
    cons.subscribe([topic])
    seen, deadline = 0, time.monotonic() + TIMEOUT_S
    while seen < 8 and time.monotonic() < deadline:
        msg = cons.poll(0.5)
        if msg is not None and msg.error() is None:
            seen += 1
    assert seen == 8
    cons.commit(asynchronous=False)
    cons.close()


def _use_before_restart(admin, group):
    """What the report did before the restart: list groups, then describe this one, which puts
    its coordinator into librdkafka's coordinator cache."""
    listed = admin.list_consumer_groups(request_timeout=10).result(timeout=TIMEOUT_S)
    assert group in [g.group_id for g in listed.valid]
    described = admin.describe_consumer_groups([group], request_timeout=10)[group].result(
        timeout=TIMEOUT_S)
    assert described.group_id == group


def _restart(broker, sig, admin):
    broker.stop(sig)
    broker.restart()
    # A request through the kept client waits for its re-bootstrap's Metadata.
    admin.list_topics(timeout=TIMEOUT_S)
    time.sleep(SETTLE_S)


def _delete(admin, group, request_timeout):
    """(error or None, seconds taken) of deleting `group` through `admin`."""
    start = time.monotonic()
    future = admin.delete_consumer_groups([group], request_timeout=request_timeout)[group]
    try:
        future.result(timeout=request_timeout + TIMEOUT_S)
        error = None
    except KafkaException as e:
        error = e.args[0]
    return error, time.monotonic() - start


def _assert_gone(bootstrap, group):
    """A fresh client finds the group deleted at once."""
    error, took = _delete(_admin(bootstrap), group, request_timeout=10)
    assert error is not None and error.code() == KafkaError.GROUP_ID_NOT_FOUND, error
    assert took < DELETE_BOUND_S, took


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_kept_admin_client_deletes_group_after_restart(broker, topic, sig):
    group = f"cg-{uuid.uuid4().hex[:8]}"
    _group_with_committed_offsets(broker.bootstrap, topic, group)
    # Without this setting librdkafka 2.16 strands the cached coordinator (module docstring).
    admin = _admin(broker.bootstrap, **{"metadata.recovery.strategy": "none"})
    _use_before_restart(admin, group)

    _restart(broker, sig, admin)

    error, took = _delete(admin, group, request_timeout=10)
    assert error is None, f"delete_consumer_groups through the kept client: {error}"
    assert took < DELETE_BOUND_S, f"delete through the kept client took {took:.1f}s"
    _assert_gone(broker.bootstrap, group)


def _served(port, api):
    """How many `api` requests the broker has handled, over all shards."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    pattern = rf'^sluice_requests_total\{{shard="\d+",api="{api}"\}} (\S+)$'
    return sum(float(m.group(1)) for m in re.finditer(pattern, text, re.MULTILINE))


def test_default_admin_client_stall_after_restart_is_not_the_broker(broker_factory, topic):
    metrics_port = free_port_range(1)
    broker = broker_factory(cores=2, config={"sluice.metrics.addr": f"127.0.0.1:{metrics_port}"})
    group = f"cg-{uuid.uuid4().hex[:8]}"
    _group_with_committed_offsets(broker.bootstrap, topic, group)
    admin = _admin(broker.bootstrap)
    _use_before_restart(admin, group)

    _restart(broker, signal.SIGTERM, admin)

    before = {api: _served(metrics_port, api) for api in ("FindCoordinator", "DeleteGroups")}
    error, took = _delete(admin, group, request_timeout=4)
    after = {api: _served(metrics_port, api) for api in ("FindCoordinator", "DeleteGroups")}
    print(f"kept default client: delete -> {error} after {took:.1f}s; broker served {after}")
    if error is None:
        # A librdkafka that evicts decommissioned brokers from its coordinator cache.
        assert took < DELETE_BOUND_S, took
    else:
        # librdkafka 2.16: the request waited for a terminated broker handle and never left
        # the client, so the broker handled nothing for it.
        assert error.code() == KafkaError._TIMED_OUT, error
        assert after == before, f"the broker served {before} -> {after} during the stall"
        # The broker itself is ready: a fresh client deletes the group at once.
        error, took = _delete(_admin(broker.bootstrap), group, request_timeout=10)
        assert error is None, error
        assert took < DELETE_BOUND_S, took
    _assert_gone(broker.bootstrap, group)

"""Transactions through kafka-python's transactional producer against a two-shard broker:
commit and abort across partitions of both shards (read_committed sees only committed
records, read_uncommitted sees all), and a second producer with the same transactional id
fencing the first."""

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

PARTITIONS = 4


def _txn_producer(bootstrap, txn_id):
    prod = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=txn_id,
                         enable_idempotence=True, request_timeout_ms=15000)
    prod.init_transactions()
    return prod


def _read_all(bootstrap, topic, isolation_level):
    cons = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest", isolation_level=isolation_level,
                         fetch_max_wait_ms=100, consumer_timeout_ms=3000)
    try:
        cons.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        return [m.value.decode() for m in cons]
    finally:
        cons.close()


def _create(bootstrap, topic):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        admin.close()


def test_commit_abort_and_fencing(broker_factory, topic):
    broker = broker_factory(cores=2)
    _create(broker.bootstrap, topic)
    prod = _txn_producer(broker.bootstrap, "py-tx")
    for tag, commit in (("commit", True), ("abort", False)):
        prod.begin_transaction()
        for i in range(20):
            prod.send(topic, value=f"{tag}-{i}".encode(), partition=i % PARTITIONS)
        prod.flush()
        if commit:
            prod.commit_transaction()
        else:
            prod.abort_transaction()

    prod.begin_transaction()
    prod.send(topic, value=b"zombie-0", partition=0)
    prod.flush()
    newcomer = _txn_producer(broker.bootstrap, "py-tx")
    fenced = False
    try:
        prod.commit_transaction()
    except Exception:  # kafka-python raises ProducerFencedError (or a KafkaError wrapping it)
        fenced = True
    assert fenced, "the first producer must be fenced by the second"
    newcomer.close()

    committed = _read_all(broker.bootstrap, topic, "read_committed")
    assert sorted(v for v in committed if v.startswith("commit")) == sorted(
        f"commit-{i}" for i in range(20))
    assert not [v for v in committed if not v.startswith("commit")], committed
    everything = _read_all(broker.bootstrap, topic, "read_uncommitted")
    assert len([v for v in everything if v.startswith("abort")]) == 20
    assert "zombie-0" in everything

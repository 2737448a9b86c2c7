"""SASL on a SASL_PLAINTEXT listener (two shards, so clients authenticate on every shard
port): PLAIN and SCRAM-SHA-256/512 with kafka-python and confluent-kafka produce and consume,
a wrong password is refused with an authentication error, and a client that does not
authenticate gets nothing but ApiVersions."""

import socket
import struct

import pytest
from conftest import free_port_range
from test_metrics import scrape, value
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

USERS = {"alice": "alice-secret", "admin": "admin-secret"}
METRICS_PORT = free_port_range(1)
JAAS = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="admin" password="admin-secret" '
        + " ".join(f'user_{u}="{p}"' for u, p in USERS.items()) + ";")


@pytest.fixture
def sasl_broker(broker_factory):
    broker = broker_factory(cores=2, config={
        "sluice.metrics.addr": f"127.0.0.1:{METRICS_PORT}",
        "listeners": "SASL_PLAINTEXT://127.0.0.1:9092",
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
    })
    broker.metrics_port = METRICS_PORT
    return broker


def _kafka_python(user, password):
    return dict(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                sasl_plain_username=user, sasl_plain_password=password)


def _confluent(bootstrap, user, password):
    return {"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN", "sasl.username": user, "sasl.password": password}


def test_kafka_python_authenticates_produces_and_consumes(sasl_broker, topic):
    auth = _kafka_python("alice", "alice-secret")
    admin = KafkaAdminClient(bootstrap_servers=sasl_broker.bootstrap, **auth)
    try:
        admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        admin.close()
    prod = KafkaProducer(bootstrap_servers=sasl_broker.bootstrap, **auth)
    for p in range(2):
        for i in range(5):
            prod.send(topic, f"{p}-{i}".encode(), partition=p)
    prod.flush(timeout=30)
    prod.close()
    cons = KafkaConsumer(bootstrap_servers=sasl_broker.bootstrap, group_id=None,
                         auto_offset_reset="earliest", consumer_timeout_ms=5000, **auth)
    try:
        cons.assign([TopicPartition(topic, p) for p in range(2)])
        got = sorted(m.value.decode() for m in cons)
    finally:
        cons.close()
    assert got == sorted(f"{p}-{i}" for p in range(2) for i in range(5))


def test_confluent_kafka_authenticates_and_a_wrong_password_is_refused(sasl_broker):
    good = AdminClient(_confluent(sasl_broker.bootstrap, "admin", "admin-secret"))
    brokers = good.list_topics(timeout=20).brokers
    assert len(brokers) == 2, brokers
    # The broker's listeners say SASL_PLAINTEXT; the JAAS line is sensitive and not shown.
    resource = ConfigResource(ResourceType.BROKER, "0")
    configs = good.describe_configs([resource])[resource].result(timeout=20)
    assert configs["listeners"].value.startswith("SASL_PLAINTEXT://")
    jaas = configs["listener.name.sasl_plaintext.plain.sasl.jaas.config"]
    assert jaas.is_sensitive and jaas.value is None

    errors = []
    bad = AdminClient({**_confluent(sasl_broker.bootstrap, "admin", "wrong"),
                       "error_cb": errors.append, "log_level": 0})
    with pytest.raises(KafkaException):
        bad.list_topics(timeout=5)
    bad.poll(1)  # serves error_cb
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors
    assert any("Invalid username or password" in e.str() for e in errors), errors
    assert value(scrape(sasl_broker.metrics_port), "sluice_sasl_authentication_failures_total") >= 1


def _request(sock, api_key, version, correlation_id, body=b""):
    client_id = b"raw"
    header = struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id
    frame = header + body
    sock.sendall(struct.pack(">i", len(frame)) + frame)


def _read_frame(sock):
    size = struct.unpack(">i", _read_exact(sock, 4))[0]
    return _read_exact(sock, size)


def _read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def test_unauthenticated_requests_close_the_connection(sasl_broker):
    with socket.create_connection(("127.0.0.1", sasl_broker.base_port), timeout=5) as sock:
        _request(sock, 18, 0, 1)  # ApiVersions v0: allowed before authentication
        answer = _read_frame(sock)
        assert struct.unpack(">ih", answer[:6]) == (1, 0)
        _request(sock, 3, 0, 2, struct.pack(">i", -1))  # Metadata v0, all topics
        assert sock.recv(1) == b"", "the broker must close without answering"


def test_sluice_tools_authenticate_with_a_command_config(sasl_broker, topic, tmp_path):
    import subprocess
    from conftest import sluice_bin

    def config(password):
        path = tmp_path / f"client-{password}.properties"
        path.write_text(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
            "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule "
            f'required username="alice" password="{password}";\n')
        return str(path)

    def sluice(*args, password="alice-secret", stdin=""):
        return subprocess.run(
            [str(sluice_bin()), *args, "--bootstrap-server", sasl_broker.bootstrap,
             "--command-config", config(password)],
            input=stdin, capture_output=True, text=True, timeout=60)

    created = sluice("topics", "create", "--topic", topic, "--partitions", "2")
    assert (created.returncode, created.stdout) == (0, f"Created topic {topic}.\n"), created
    produced = sluice("produce", "--topic", topic, "--partition", "1", stdin="a\nb\n")
    assert produced.returncode == 0, produced
    consumed = sluice("consume", "--topic", topic, "--partition", "1", "--from-beginning",
                      "--max-messages", "2")
    assert (consumed.returncode, consumed.stdout) == (0, "a\nb\n"), consumed

    refused = sluice("topics", "list", password="wrong")
    assert refused.returncode == 1, refused
    assert "SASL authentication as alice" in refused.stderr, refused.stderr
    assert "Invalid username or password" in refused.stderr, refused.stderr


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_scram_with_confluent_kafka_and_kafka_python(sasl_broker, topic, mechanism):
    from confluent_kafka import Consumer, Producer, TopicPartition as CTopicPartition
    from confluent_kafka.admin import NewTopic as CNewTopic

    conf = {**_confluent(sasl_broker.bootstrap, "alice", "alice-secret"), "sasl.mechanism": mechanism}
    admin = AdminClient(conf)
    for f in admin.create_topics([CNewTopic(topic, num_partitions=2, replication_factor=1)]).values():
        f.result(timeout=20)
    prod = Producer(conf)
    for p in range(2):
        prod.produce(topic, value=f"c-{p}".encode(), partition=p)
    assert prod.flush(20) == 0

    # kafka-python implements SCRAM itself: a second, independent client of the exchange.
    auth = dict(security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism,
                sasl_plain_username="alice", sasl_plain_password="alice-secret")
    cons = KafkaConsumer(bootstrap_servers=sasl_broker.bootstrap, group_id=None,
                         auto_offset_reset="earliest", consumer_timeout_ms=5000, **auth)
    try:
        cons.assign([TopicPartition(topic, p) for p in range(2)])
        assert sorted(m.value for m in cons) == [b"c-0", b"c-1"]
    finally:
        cons.close()

    errors = []
    bad = AdminClient({**conf, "sasl.password": "wrong", "error_cb": errors.append,
                       "log_level": 0})
    with pytest.raises(KafkaException):
        bad.list_topics(timeout=5)
    bad.poll(1)
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors

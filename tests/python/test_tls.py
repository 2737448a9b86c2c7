"""TLS listeners with real clients (two shards, so every shard port does its own handshakes).

One broker serves three listeners at once: SSL (server certificate signed by a test CA),
SASL_SSL (SCRAM-SHA-512 users made with the SCRAM API, a SCRAM JAAS line without user_
entries) and PLAINTEXT; each client is given the ports of the listener it came in on.
confluent-kafka and kafka-python produce and consume over SSL; a plaintext client on the TLS
port gets no Kafka answer; a client that does not trust the server's CA is refused; a new
keystore file is served without a restart. A second broker requires client certificates
(mutual TLS): the certificate's subject becomes the principal through
ssl.principal.mapping.rules and the ACLs apply to it; an expired, untrusted or missing client
certificate is refused. A peer that never completes its handshake is closed."""

import socket
import ssl
import struct
import time
from pathlib import Path

import pytest
import tls_certs
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding, AclOperation, AclPermissionType, AdminClient, NewTopic, ResourcePatternType,
    ResourceType, ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion)
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
ADMIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
              'user_admin="admin-secret";')
SCRAM_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required;"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server keystore for 127.0.0.1, client certificates, and an unrelated CA."""
    d = tmp_path_factory.mktemp("pki")
    ca, rogue = tls_certs.Authority(), tls_certs.Authority("Rogue CA")
    key, cert = ca.issue(tls_certs.subject("127.0.0.1", o="Sluice"), server=True)
    out = {
        "dir": d, "ca": ca,
        "ca_file": ca.write_ca(d / "ca.pem"),
        "rogue_ca_file": rogue.write_ca(d / "rogue-ca.pem"),
        "keystore": tls_certs.write_keystore(d / "server.pem", key, cert, ca),
    }
    for name, authority, cn, ou, expired in [
            ("alice", ca, "Alice", "eng", False), ("admin", ca, "admin", "ops", False),
            ("expired", ca, "bob", "eng", True), ("rogue", rogue, "mallory", "eng", False)]:
        k, c = authority.issue(tls_certs.subject(cn, ou=ou), expired=expired)
        out[name] = tls_certs.write_client(d, name, k, c)
    return out


@pytest.fixture
def tls_broker(broker_factory, pki):
    return broker_factory(cores=2, listeners=3, config={
        "listeners": "SSL://127.0.0.1:{L0},SASL_SSL://127.0.0.1:{L1},PLAINTEXT://127.0.0.1:{L2}",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": pki["keystore"],
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
        "listener.name.sasl_ssl.plain.sasl.jaas.config": ADMIN_JAAS,
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": SCRAM_JAAS,
        # Bounds the handshake too: a peer that never completes one is closed.
        "sluice.request.read.timeout.ms": "2000",
    })


def ssl_conf(broker, pki, client=None, ca=None):
    conf = {"bootstrap.servers": f"127.0.0.1:{broker.listener_port(0)}",
            "security.protocol": "SSL", "ssl.ca.location": ca or pki["ca_file"]}
    if client:
        conf["ssl.certificate.location"], conf["ssl.key.location"] = pki[client]
    return conf


def produce(conf, topic, values):
    errors = []
    p = Producer({**conf, "message.timeout.ms": 15000})
    for v in values:
        p.produce(topic, v, on_delivery=lambda err, msg: errors.append(err))
    p.flush(20)
    assert len(errors) == len(values), "missing delivery reports"
    return [e.code() if e else None for e in errors]


def consume(conf, topic, count):
    c = Consumer({**conf, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    got, deadline = [], time.monotonic() + 30
    while len(got) < count and time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is not None and not m.error():
            got.append(m.value())
    c.close()
    return got


def create_topic(conf, topic, partitions=2):
    admin = AdminClient(conf)  # kept alive until the result is in
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=30)


def test_confluent_kafka_produces_and_consumes_over_ssl(tls_broker, pki, topic):
    conf = ssl_conf(tls_broker, pki)
    create_topic(conf, topic)
    values = [f"v{i}".encode() for i in range(200)]
    assert produce(conf, topic, values) == [None] * len(values)
    assert sorted(consume(conf, topic, len(values))) == sorted(values)


def test_kafka_python_produces_and_consumes_over_ssl(tls_broker, pki, topic):
    auth = dict(security_protocol="SSL", ssl_cafile=pki["ca_file"], ssl_check_hostname=True)
    bootstrap = f"127.0.0.1:{tls_broker.listener_port(0)}"
    prod = KafkaProducer(bootstrap_servers=bootstrap, **auth)
    for i in range(50):
        prod.send(topic, f"k{i}".encode(), partition=0)
    prod.flush(timeout=30)
    prod.close()
    cons = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                         consumer_timeout_ms=5000, **auth)
    cons.assign([TopicPartition(topic, 0)])
    got = [m.value for m in cons]
    cons.close()
    assert got == [f"k{i}".encode() for i in range(50)]


def test_each_listener_advertises_its_own_ports(tls_broker, pki):
    want = {l: {tls_broker.listener_port(l) + 1 + c for c in range(2)} for l in range(3)}
    ssl_md = AdminClient(ssl_conf(tls_broker, pki)).list_topics(timeout=20)
    assert {b.port for b in ssl_md.brokers.values()} == want[0]
    plain = AdminClient({"bootstrap.servers": f"127.0.0.1:{tls_broker.listener_port(2)}"})
    assert {b.port for b in plain.list_topics(timeout=20).brokers.values()} == want[2]


def test_sasl_ssl_with_scram_sha_512_users_made_through_the_api(tls_broker, pki, topic):
    base = {"bootstrap.servers": f"127.0.0.1:{tls_broker.listener_port(1)}",
            "security.protocol": "SASL_SSL", "ssl.ca.location": pki["ca_file"]}
    admin_conf = {**base, "sasl.mechanism": "PLAIN", "sasl.username": "admin",
                  "sasl.password": "admin-secret"}
    admin = AdminClient(admin_conf)
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    futures = admin.alter_user_scram_credentials(
        [UserScramCredentialUpsertion("carol", info, b"carol-secret", b"salt-of-carol")])
    for f in futures.values():
        f.result(timeout=30)
    carol = {**base, "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "carol",
             "sasl.password": "carol-secret"}
    create_topic(carol, topic, 1)
    assert produce(carol, topic, [b"a", b"b"]) == [None, None]
    assert consume(carol, topic, 2) == [b"a", b"b"]
    md = AdminClient(carol).list_topics(timeout=20)
    assert {b.port for b in md.brokers.values()} == {tls_broker.listener_port(1) + 1 + c
                                                      for c in range(2)}
    wrong = {**carol, "sasl.password": "nope"}
    with pytest.raises(KafkaException) as e:
        AdminClient(wrong).list_topics(timeout=10)
    assert e.value.args[0].code() in (KafkaError._AUTHENTICATION, KafkaError._TRANSPORT,
                                      KafkaError._TIMED_OUT), e.value


def api_versions_request():
    body = struct.pack(">hhih", 18, 0, 7, 4) + b"test"
    return struct.pack(">i", len(body)) + body


def test_a_plaintext_client_gets_no_answer_on_a_tls_port(tls_broker):
    for port in (tls_broker.listener_port(0), tls_broker.listener_port(0) + 1):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(api_versions_request())
            data = b""
            try:
                while chunk := s.recv(4096):
                    data += chunk
            except (ConnectionResetError, socket.timeout):
                pass
        # A TLS alert at most (first byte 0x15), never a Kafka response frame.
        assert data[:1] in (b"", b"\x15"), data[:16]
    # The plaintext listener of the same broker answers it.
    with socket.create_connection(("127.0.0.1", tls_broker.listener_port(2)), timeout=5) as s:
        s.sendall(api_versions_request())
        size = struct.unpack(">i", s.recv(4))[0]
        assert size > 0


def test_a_peer_that_never_completes_a_handshake_is_closed(tls_broker):
    with socket.create_connection(("127.0.0.1", tls_broker.listener_port(1) + 1), timeout=10) as s:
        started = time.monotonic()
        assert s.recv(1) == b""  # closed by the broker, not by our 10 s timeout
        assert 1.5 < time.monotonic() - started < 6


def test_a_client_that_does_not_trust_the_server_is_refused(tls_broker, pki):
    conf = ssl_conf(tls_broker, pki, ca=pki["rogue_ca_file"])
    with pytest.raises(KafkaException):
        AdminClient(conf).list_topics(timeout=8)
    context = ssl.create_default_context(cafile=pki["rogue_ca_file"])
    with socket.create_connection(("127.0.0.1", tls_broker.listener_port(0)), timeout=5) as s:
        with pytest.raises(ssl.SSLCertVerificationError):
            context.wrap_socket(s, server_hostname="127.0.0.1")


def served_certificate(port, ca_file):
    context = ssl.create_default_context(cafile=ca_file)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        with context.wrap_socket(s, server_hostname="127.0.0.1") as t:
            return t.getpeercert()


def test_a_changed_keystore_is_served_without_a_restart(tls_broker, pki):
    port = tls_broker.listener_port(0) + 2
    before = served_certificate(port, pki["ca_file"])
    key, cert = pki["ca"].issue(tls_certs.subject("127.0.0.1", o="Renewed"), server=True)
    staged = Path(pki["dir"]) / "server-new.pem"
    tls_certs.write_keystore(staged, key, cert, pki["ca"])
    staged.replace(pki["keystore"])  # atomic, as a certificate manager writes it
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        after = served_certificate(port, pki["ca_file"])
        if after["serialNumber"] != before["serialNumber"]:
            break
        time.sleep(0.2)
    # OpenSSL pads the hex to whole bytes: compare numbers.
    assert int(after["serialNumber"], 16) == cert.serial_number
    assert dict(x[0] for x in after["subject"])["organizationName"] == "Renewed"


@pytest.fixture
def mtls_broker(broker_factory, pki):
    return broker_factory(cores=2, config={
        "listeners": "SSL://127.0.0.1:9093",
        "ssl.keystore.location": pki["keystore"],
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": pki["ca_file"],
        "ssl.client.auth": "required",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]+),OU=(eng|ops),.*$/$1/L,DEFAULT",
        "authorizer.class.name": STANDARD_AUTHORIZER,
        "super.users": "User:admin",
    })


def test_client_certificates_become_principals_that_acls_apply_to(mtls_broker, pki, topic):
    admin_conf = ssl_conf(mtls_broker, pki, client="admin")
    create_topic(admin_conf, topic, 1)
    alice = ssl_conf(mtls_broker, pki, client="alice")
    # CN=Alice,OU=eng,... is User:alice (lower-cased by the rule): no ACL yet.
    assert produce(alice, topic, [b"x"]) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]
    acl = AclBinding(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:alice", "*",
                     AclOperation.WRITE, AclPermissionType.ALLOW)
    admin = AdminClient(admin_conf)
    admin.create_acls([acl])[acl].result(timeout=30)
    deadline = time.monotonic() + 10
    while produce(alice, topic, [b"y"]) != [None]:
        assert time.monotonic() < deadline, "the ACL for User:alice never applied"
        time.sleep(0.5)


@pytest.mark.parametrize("client", ["expired", "rogue", None])
def test_an_expired_untrusted_or_missing_client_certificate_is_refused(mtls_broker, pki, client):
    with pytest.raises(KafkaException):
        AdminClient(ssl_conf(mtls_broker, pki, client=client)).list_topics(timeout=8)
    context = ssl.create_default_context(cafile=pki["ca_file"])
    if client:
        context.load_cert_chain(*pki[client])
    with socket.create_connection(("127.0.0.1", mtls_broker.shard_port(0)), timeout=5) as s:
        # TLS 1.3 sends the client certificate after the client's handshake ends: the refusal
        # arrives as an alert on the first read.
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            with context.wrap_socket(s, server_hostname="127.0.0.1") as t:
                t.sendall(api_versions_request())
                if not t.recv(4):
                    raise ConnectionResetError("closed without an answer")

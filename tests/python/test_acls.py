"""ACLs and SCRAM users through confluent-kafka's admin API, against a broker with Kafka's
authorizer settings on a SASL_PLAINTEXT listener (two shards): creating, describing (MATCH,
ANY, LITERAL filters) and deleting bindings; a non-super user allowed to describe but not to
write a topic gets TOPIC_AUTHORIZATION_FAILED on produce, then produces once allowed, and a
DENY beats that ALLOW; a group consumer needs READ on the group (GROUP_AUTHORIZATION_FAILED
before) and the topic; topic creation needs CREATE, a topic the user may not describe is left
out of a listing and refused when named; committing offsets needs READ on the group and the
topic, fetching them DESCRIBE on the topic; a transactional id needs WRITE on it; the ACL APIs
answer SECURITY_DISABLED without an authorizer; SCRAM
credentials made with AlterUserScramCredentials log a new user in at once, survive a restart
and are refused as Kafka refuses them."""

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient, NewTopic,
    ResourcePatternType, ResourceType, ScramCredentialInfo, ScramMechanism,
    UserScramCredentialDeletion, UserScramCredentialUpsertion)
from kafka.admin import (
    ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType, KafkaAdminClient,
    ResourcePatternFilter)
from kafka.admin import ResourceType as KafkaResourceType
from kafka.errors import SecurityDisabledError

USERS = {"admin": "admin-secret", "alice": "alice-secret"}
JAAS = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
        + " ".join(f'user_{u}="{p}"' for u, p in USERS.items()) + ";")
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


@pytest.fixture
def secured(broker_factory):
    return broker_factory(cores=2, config={
        "listeners": "SASL_PLAINTEXT://127.0.0.1:9092",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "authorizer.class.name": STANDARD_AUTHORIZER,
        "super.users": "User:admin",
        "allow.everyone.if.no.acl.found": "false",
    })


def conf(broker, user, password=None, mechanism="PLAIN"):
    return {"bootstrap.servers": broker.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": mechanism, "sasl.username": user,
            "sasl.password": password if password is not None else USERS[user]}


def admin(broker, user="admin"):
    return AdminClient(conf(broker, user))


def wait(futures):
    return {k: f.result(timeout=30) for k, f in futures.items()}


def topic_acl(name, principal, op, permission=AclPermissionType.ALLOW,
              pattern=ResourcePatternType.LITERAL):
    return AclBinding(ResourceType.TOPIC, name, pattern, principal, "*", op, permission)


def topic_filter(name, pattern):
    return AclBindingFilter(ResourceType.TOPIC, name, pattern, None, None,
                            AclOperation.ANY, AclPermissionType.ANY)


def produce_error(broker, user, topic):
    """Produces one record as `user`; the delivery error code, or None."""
    errors = []
    p = Producer({**conf(broker, user), "message.timeout.ms": 10000})
    p.produce(topic, b"v", on_delivery=lambda err, msg: errors.append(err))
    p.flush(15)
    assert errors, "no delivery report"
    return errors[0].code() if errors[0] else None


def test_acl_apis_answer_security_disabled_without_an_authorizer(broker):
    a = AdminClient({"bootstrap.servers": broker.bootstrap})
    binding = topic_acl("t", "User:alice", AclOperation.READ)
    with pytest.raises(KafkaException) as e:
        wait(a.create_acls([binding]))
    assert e.value.args[0].code() == KafkaError.SECURITY_DISABLED
    # librdkafka drops DescribeAcls' top-level error code; kafka-python reports it.
    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        with pytest.raises(SecurityDisabledError, match="No Authorizer is configured"):
            k.describe_acls(ACLFilter(
                principal=None, host="*", operation=ACLOperation.ANY,
                permission_type=ACLPermissionType.ANY,
                resource_pattern=ResourcePatternFilter(
                    KafkaResourceType.TOPIC, None, ACLResourcePatternType.ANY)))
    finally:
        k.close()


def test_acls_are_created_described_and_deleted_with_kafkas_filters(secured):
    a = admin(secured)
    literal = topic_acl("orders", "User:alice", AclOperation.READ)
    prefixed = topic_acl("orders", "User:alice", AclOperation.WRITE,
                         pattern=ResourcePatternType.PREFIXED)
    other = topic_acl("payments", "User:bob", AclOperation.READ)
    wait(a.create_acls([literal, prefixed, other]))

    def described(name, pattern):
        return set(a.describe_acls(topic_filter(name, pattern)).result(timeout=30))

    assert described(None, ResourcePatternType.ANY) == {literal, prefixed, other}
    assert described("orders-eu", ResourcePatternType.MATCH) == {prefixed}
    assert described("orders", ResourcePatternType.MATCH) == {literal, prefixed}
    # A literal filter does not match the prefixed binding of the same name.
    assert described("orders", ResourcePatternType.LITERAL) == {literal}

    deleted = wait(a.delete_acls([topic_filter("orders", ResourcePatternType.MATCH)]))
    assert set(next(iter(deleted.values()))) == {literal, prefixed}
    assert described(None, ResourcePatternType.ANY) == {other}


def test_a_non_super_user_is_authorized_by_the_acls(secured, topic):
    a = admin(secured)
    wait(a.create_topics([NewTopic(topic, 1, 1)]))
    # alice may see the topic but not write it: the Produce itself is refused.
    wait(a.create_acls([topic_acl(topic, "User:alice", AclOperation.DESCRIBE)]))
    assert produce_error(secured, "alice", topic) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    wait(a.create_acls([topic_acl(topic, "User:alice", AclOperation.WRITE)]))
    assert produce_error(secured, "alice", topic) is None
    # A DENY of ALL on a prefix wins over the literal ALLOW.
    wait(a.create_acls([topic_acl(topic[:4], "User:alice", AclOperation.ALL,
                                  permission=AclPermissionType.DENY,
                                  pattern=ResourcePatternType.PREFIXED)]))
    assert produce_error(secured, "alice", topic) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # alice may not manage ACLs (ALTER on the cluster).
    as_alice = admin(secured, "alice")
    with pytest.raises(KafkaException) as e:
        wait(as_alice.create_acls([topic_acl(topic, "User:alice", AclOperation.ALL)]))
    assert e.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED


def test_scram_users_made_with_the_admin_api_log_in(secured, topic):
    a = admin(secured)
    user = "carol"
    wait(a.create_topics([NewTopic(topic, 1, 1)]))
    wait(a.create_acls([topic_acl(topic, f"User:{user}", AclOperation.WRITE)]))

    described = a.describe_user_scram_credentials([user])
    with pytest.raises(KafkaException) as e:
        described[user].result(timeout=30)
    assert e.value.args[0].code() == KafkaError.RESOURCE_NOT_FOUND

    too_few = UserScramCredentialUpsertion(
        user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 1000), b"pw")
    with pytest.raises(KafkaException) as e:
        wait(a.alter_user_scram_credentials([too_few]))
    assert e.value.args[0].code() == KafkaError.UNACCEPTABLE_CREDENTIAL

    wait(a.alter_user_scram_credentials([UserScramCredentialUpsertion(
        user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192), b"carol-pw")]))
    info = a.describe_user_scram_credentials([user])[user].result(timeout=30)
    assert [(c.mechanism, c.iterations) for c in info.scram_credential_infos] == [
        (ScramMechanism.SCRAM_SHA_256, 8192)]

    def carol_produces():
        p = Producer({**conf(secured, user, "carol-pw", "SCRAM-SHA-256"),
                      "message.timeout.ms": 10000})
        errors = []
        p.produce(topic, b"v", on_delivery=lambda err, msg: errors.append(err))
        p.flush(15)
        return errors == [None]

    assert carol_produces()
    secured.stop()
    secured.restart()
    assert carol_produces(), "the credential did not survive a restart"

    a = admin(secured)
    wait(a.alter_user_scram_credentials([UserScramCredentialDeletion(
        user, ScramMechanism.SCRAM_SHA_256)]))
    with pytest.raises(KafkaException) as e:
        a.describe_user_scram_credentials([user])[user].result(timeout=30)
    assert e.value.args[0].code() == KafkaError.RESOURCE_NOT_FOUND


def test_consuming_needs_read_on_the_group_and_the_topic(secured, topic):
    a = admin(secured)
    wait(a.create_topics([NewTopic(topic, 1, 1)]))
    assert produce_error(secured, "admin", topic) is None
    group = f"g-{topic}"

    def consume_as_alice():
        """The first message or error alice's group consumer gets."""
        c = Consumer({**conf(secured, "alice"), "group.id": group,
                      "auto.offset.reset": "earliest"})
        try:
            c.subscribe([topic])
            for _ in range(40):
                msg = c.poll(0.5)
                if msg is not None:
                    return msg.error().code() if msg.error() else msg.value()
            return None
        finally:
            c.close()

    wait(a.create_acls([topic_acl(topic, "User:alice", AclOperation.READ)]))
    assert consume_as_alice() == KafkaError.GROUP_AUTHORIZATION_FAILED
    wait(a.create_acls([AclBinding(ResourceType.GROUP, group, ResourcePatternType.LITERAL,
                                   "User:alice", "*", AclOperation.READ,
                                   AclPermissionType.ALLOW)]))
    assert consume_as_alice() == b"v"


def test_topic_creation_describe_offsets_and_transactional_ids_follow_the_acls(secured, topic):
    a = admin(secured)
    as_alice = admin(secured, "alice")
    # Topic creation needs CREATE (on the cluster or the topic).
    with pytest.raises(KafkaException) as e:
        wait(as_alice.create_topics([NewTopic(topic, 1, 1)]))
    assert e.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    wait(a.create_acls([topic_acl(topic, "User:alice", AclOperation.CREATE)]))
    wait(as_alice.create_topics([NewTopic(topic, 1, 1)]))
    hidden = f"{topic}-hidden"
    wait(a.create_topics([NewTopic(hidden, 1, 1)]))
    # Describe (CREATE does not imply it): a topic alice may not describe is left out of a
    # listing and refused when named.
    listed = as_alice.list_topics(timeout=20).topics
    assert topic not in listed and hidden not in listed
    wait(a.create_acls([topic_acl(topic, "User:alice", AclOperation.DESCRIBE)]))
    listed = as_alice.list_topics(timeout=20).topics
    assert topic in listed and hidden not in listed
    named = as_alice.list_topics(topic=hidden, timeout=20).topics[hidden]
    assert named.error is not None and named.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    # Offset commit: READ on the group, then READ on each topic. (DESCRIBE on the group lets
    # alice find its coordinator, as in Kafka; it is not enough to commit.)
    group = f"g-{topic}"
    wait(a.create_acls([AclBinding(ResourceType.GROUP, group, ResourcePatternType.LITERAL,
                                   "User:alice", "*", AclOperation.DESCRIBE,
                                   AclPermissionType.ALLOW)]))
    c = Consumer({**conf(secured, "alice"), "group.id": group, "enable.auto.commit": False})
    try:
        with pytest.raises(KafkaException) as e:
            c.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
        assert e.value.args[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED
        wait(a.create_acls([AclBinding(ResourceType.GROUP, group, ResourcePatternType.LITERAL,
                                       "User:alice", "*", AclOperation.READ,
                                       AclPermissionType.ALLOW)]))
        with pytest.raises(KafkaException) as e:
            c.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
        assert e.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        wait(a.create_acls([topic_acl(topic, "User:alice", AclOperation.READ)]))
        c.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
        assert c.committed([TopicPartition(topic, 0)], timeout=20)[0].offset == 5
    finally:
        c.close()
    # OffsetFetch of a topic alice may not describe: refused per partition, no offset shown.
    admin_consumer = Consumer({**conf(secured, "admin"), "group.id": group})
    try:
        admin_consumer.commit(offsets=[TopicPartition(hidden, 0, 7)], asynchronous=False)
    finally:
        admin_consumer.close()
    c = Consumer({**conf(secured, "alice"), "group.id": group})
    try:
        got = c.committed([TopicPartition(topic, 0), TopicPartition(hidden, 0)], timeout=20)
        by_topic = {tp.topic: tp for tp in got}
        assert by_topic[topic].offset == 5
        assert by_topic[hidden].error is not None
        assert by_topic[hidden].error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        assert by_topic[hidden].offset != 7
    finally:
        c.close()

    # A transactional id needs WRITE on it.
    txn = {**conf(secured, "alice"), "transactional.id": f"tx-{topic}",
           "transaction.timeout.ms": 10000}
    p = Producer(txn)
    with pytest.raises(KafkaException) as e:
        p.init_transactions(15)
    assert e.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    wait(a.create_acls([
        AclBinding(ResourceType.TRANSACTIONAL_ID, f"tx-{topic}", ResourcePatternType.LITERAL,
                   "User:alice", "*", AclOperation.WRITE, AclPermissionType.ALLOW),
        topic_acl(topic, "User:alice", AclOperation.WRITE)]))
    p = Producer(txn)
    p.init_transactions(15)
    p.begin_transaction()
    p.produce(topic, b"in-a-transaction")
    p.commit_transaction(15)

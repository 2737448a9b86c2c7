"""aiokafka (asyncio, its own protocol implementation) against a two-shard broker: produce with
keys, headers and compression, read back byte-identical, and a consumer group that commits
and resumes where it left off."""

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

PARTITIONS = 3
TIMEOUT_S = 30


async def _create(bootstrap, topic):
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()


async def _produce(bootstrap, topic, count, **config):
    prod = AIOKafkaProducer(bootstrap_servers=bootstrap, **config)
    await prod.start()
    try:
        sent = []
        for i in range(count):
            partition = i % PARTITIONS
            key, value = f"k{i}".encode(), f"value {i}".encode() * 10
            headers = [("n", str(i).encode())]
            meta = await prod.send_and_wait(topic, value, key=key, partition=partition,
                                            headers=headers)
            sent.append((partition, meta.offset, key, value, headers))
        return sent
    finally:
        await prod.stop()


async def _read(consumer, count):
    out = []
    async def fill():
        while len(out) < count:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                out.extend(records)
    await asyncio.wait_for(fill(), TIMEOUT_S)
    return out


def test_round_trip_with_keys_headers_and_compression(broker, topic):
    async def scenario():
        await _create(broker.bootstrap, topic)
        sent = []
        for codec in (None, "gzip", "lz4", "zstd"):
            sent += await _produce(broker.bootstrap, topic, 30, compression_type=codec,
                                   enable_idempotence=True)
        cons = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
        await cons.start()
        try:
            cons.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
            got = await _read(cons, len(sent))
        finally:
            await cons.stop()
        as_sent = sorted((p, o, k, v, list(h)) for p, o, k, v, h in sent)
        as_read = sorted((r.partition, r.offset, r.key, r.value, list(r.headers)) for r in got)
        assert as_read == as_sent

    asyncio.run(scenario())


def test_group_commits_and_resumes(broker, topic):
    async def scenario():
        await _create(broker.bootstrap, topic)
        await _produce(broker.bootstrap, topic, 60)
        group = f"aio-{uuid.uuid4().hex[:8]}"

        def member():
            return AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                                    enable_auto_commit=False, auto_offset_reset="earliest")

        first = member()
        await first.start()
        try:
            got = await _read(first, 60)
            await first.commit()
        finally:
            await first.stop()
        assert len({(r.partition, r.offset) for r in got}) == 60

        # Everything was committed: a new member of the group starts at the end.
        await _produce(broker.bootstrap, topic, 6)
        second = member()
        await second.start()
        try:
            later = await _read(second, 6)
        finally:
            await second.stop()
        assert sorted(r.offset for r in later) == [20, 20, 20, 21, 21, 21]

    asyncio.run(scenario())

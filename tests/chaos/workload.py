"""The clients: unmodified confluent-kafka (librdkafka 2.16) producers and consumers, each in
its own thread, writing what they invoked and what they were told to the history.

- `Producer`: idempotent, acks=all; unique values `<name>-<seq>`; outcome ok (partition,
  offset) or unknown (any error: with idempotence a failed delivery may still be written).
- `Reader`: one consumer session reading every partition from the start as the run goes.
- `OffsetsPoller`: ListOffsets latest (librdkafka's watermark query, never cached) in a loop.
- `Committer`: commits increasing offsets for a group, and reads them back (OffsetFetch).
- `Transactions`: a transactional producer committing or aborting small transactions.
- `read_all`: the final read after the cluster is healed.
"""
import os
import random
import threading
import time

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer as KProducer,
    TopicPartition,
)

QUIET = {"log_level": 3}  # librdkafka's own logs: errors only
# CHAOS_TRACE_EOS=1: the idempotent producers log librdkafka's `eos,msg,protocol` debug
# contexts to the harness's stderr (with librdkafka's own timestamps, named by client.id), to
# trace a duplicate or a lost write to the client's decisions; pair it with
# RUST_LOG=info,sluice::idempotence=debug for the broker's side.
TRACE = os.environ.get("CHAOS_TRACE_EOS") == "1"


def client_trace(name):
    """librdkafka debug logging for `name` when tracing, else the quiet default."""
    if not TRACE:
        return QUIET
    return {"client.id": name, "debug": "eos,msg,protocol", "log_level": 7}


class Worker(threading.Thread):
    def __init__(self, name, cluster, history, stop):
        super().__init__(name=name, daemon=True)
        self.cluster, self.history, self.stop_event = cluster, history, stop
        self.failure = None

    def run(self):
        try:
            self.work()
        except Exception as e:  # a harness bug must fail the run, not hide
            self.failure = repr(e)
            self.history.add(type="harness-error", proc=self.name, error=repr(e))


class Producer(Worker):
    def __init__(self, name, cluster, history, stop, topic, rate):
        super().__init__(name, cluster, history, stop)
        self.topic, self.interval = topic, 1.0 / rate
        self.fatal = False
        self.acked = 0

    def make(self):
        self.fatal = False

        def on_error(err):
            if err.fatal():
                self.fatal = True
                self.history.add(type="client-fatal", proc=self.name, error=str(err))

        return KProducer({
            "bootstrap.servers": self.cluster.bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "message.timeout.ms": 20000,
            "request.timeout.ms": 5000,
            "error_cb": on_error,
            **client_trace(self.name),
        })

    def work(self):
        producer, seq = self.make(), 0
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            if self.fatal:
                producer.flush(10)  # fails what is queued: each gets its unknown outcome
                producer = self.make()
            value = f"{self.name}-{seq}"
            seq += 1
            self.send(producer, value)
            producer.poll(0)
            next_at += self.interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        left = producer.flush(30)
        if left:
            self.history.add(type="note", proc=self.name, text=f"{left} deliveries never reported")

    def send(self, producer, value):
        invoke = self.history.now()

        def done(err, msg):
            event = dict(type="write", proc=self.name, value=value, invoke=invoke,
                         complete=self.history.now())
            if err is None:
                self.acked += 1
                event.update(outcome="ok", partition=msg.partition(), offset=msg.offset())
            else:
                event.update(outcome="unknown", error=err.name())
            self.history.add(**event)

        try:
            producer.produce(self.topic, key=value.encode(), value=value.encode(),
                             on_delivery=done)
        except (BufferError, KafkaException) as e:
            # Refused before it was queued: never sent, so a definite failure.
            error = "local queue full"
            if isinstance(e, KafkaException):
                error = e.args[0].name()
                self.fatal = self.fatal or e.args[0].fatal()
            self.history.add(type="write", proc=self.name, value=value, invoke=invoke,
                             complete=self.history.now(), outcome="failed", error=error)


def plain_consumer(cluster, group, **extra):
    return Consumer({
        "bootstrap.servers": cluster.bootstrap,
        "group.id": group,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "socket.timeout.ms": 5000,
        **QUIET,
        **extra,
    })


class Reader(Worker):
    """Reads everything as it is written; a new session (consumer) after `session_s`."""

    def __init__(self, name, cluster, history, stop, topic, partitions, session_s=30):
        super().__init__(name, cluster, history, stop)
        self.topic, self.partitions, self.session_s = topic, partitions, session_s

    def work(self):
        n = 0
        while not self.stop_event.is_set():
            self.session(f"{self.name}-s{n}", n == 0)
            n += 1

    def session(self, session, first):
        consumer = plain_consumer(self.cluster, f"chaos-reader-{session}")
        # The first session reads from the start; later ones from the last 500 records of
        # each partition, so a long run's reads stay linear. Absolute offsets, resolved here:
        # librdkafka keeps a logical start (OFFSET_TAIL, OFFSET_BEGINNING) as the partition's
        # query position, and a ListOffsets answer for it that arrives late or fails after a
        # leader change arms a retry that puts even a fetching partition back to the query
        # state, so it re-resolves the logical offset and seeks back mid-session
        # (rd_kafka_toppar_handle_Offset -> rd_kafka_toppar_offset_retry; seen in
        # runs/2026-12-06-2010-seed31 as two rewinds to exactly "latest - 500").
        starts = self.start_offsets(consumer, first)
        if starts is None:
            consumer.close()
            return
        consumer.assign([TopicPartition(self.topic, p, o) for p, o in starts.items()])
        ends = time.monotonic() + self.session_s
        try:
            while not self.stop_event.is_set() and time.monotonic() < ends:
                for msg in consumer.consume(500, timeout=0.5):
                    if msg.error():
                        if msg.error().code() != KafkaError._PARTITION_EOF:
                            self.history.add(type="read-error", session=session,
                                             error=msg.error().name())
                        continue
                    self.history.add(type="read", session=session, partition=msg.partition(),
                                     offset=msg.offset(), value=msg.value().decode())
        finally:
            consumer.close()


    def start_offsets(self, consumer, first):
        """{partition: absolute start offset} from the watermarks (retried through faults);
        None if the run stopped first."""
        starts = {}
        while len(starts) < self.partitions:
            if self.stop_event.is_set():
                return None
            for p in range(self.partitions):
                if p in starts:
                    continue
                try:
                    low, high = consumer.get_watermark_offsets(TopicPartition(self.topic, p),
                                                               timeout=5)
                except KafkaException:
                    continue
                starts[p] = low if first else max(low, high - 500)
            if len(starts) < self.partitions:
                time.sleep(0.5)
        return starts


class OffsetsPoller(Worker):
    def __init__(self, name, cluster, history, stop, topic, partitions):
        super().__init__(name, cluster, history, stop)
        self.topic, self.partitions = topic, partitions

    def work(self):
        consumer = plain_consumer(self.cluster, "chaos-offsets")
        try:
            while not self.stop_event.is_set():
                for p in range(self.partitions):
                    invoke = self.history.now()
                    try:
                        _, high = consumer.get_watermark_offsets(
                            TopicPartition(self.topic, p), timeout=3, cached=False)
                    except KafkaException:
                        continue
                    self.history.add(type="list-offsets", partition=p, high=high,
                                     invoke=invoke, complete=self.history.now())
                time.sleep(0.2)
        finally:
            consumer.close()


class Committer(Worker):
    """Commits offsets 1, 2, 3, ... for each partition of one group (a plain consumer, no
    subscription: Kafka keeps any offset it is given) and reads the group's offsets back."""

    def __init__(self, name, cluster, history, stop, topic, partitions, group="chaos-committer"):
        super().__init__(name, cluster, history, stop)
        self.topic, self.partitions, self.group = topic, partitions, group

    def work(self):
        consumer = plain_consumer(self.cluster, self.group)
        tps = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        offset = 0
        try:
            while not self.stop_event.is_set():
                offset += 1
                for p in range(self.partitions):
                    self.commit(consumer, p, offset)
                self.observe(consumer, tps)
                time.sleep(0.3)
            self.observe(consumer, tps)
        finally:
            consumer.close()

    def commit(self, consumer, p, offset):
        invoke = self.history.now()
        event = dict(type="commit", group=self.group, partition=p, offset=offset, invoke=invoke)
        try:
            result = consumer.commit(offsets=[TopicPartition(self.topic, p, offset)],
                                     asynchronous=False)
            error = result[0].error if result else None
            event.update(outcome="ok" if error is None else "unknown",
                         **({"error": error.name()} if error else {}))
        except KafkaException as e:
            event.update(outcome="unknown", error=e.args[0].name())
        self.history.add(complete=self.history.now(), **event)

    def observe(self, consumer, tps):
        invoke = self.history.now()
        try:
            got = consumer.committed(tps, timeout=5)
        except KafkaException:
            return
        complete = self.history.now()
        for tp in got:
            if tp.error is None:
                self.history.add(type="committed", group=self.group, partition=tp.partition,
                                 offset=tp.offset, invoke=invoke, complete=complete)


class Transactions(Worker):
    """Transactions of 1-4 values each over the topic's partitions; committed or aborted at
    random (seeded). Outcome commit-ok / abort-ok when the client said so, else unknown."""

    def __init__(self, name, cluster, history, stop, topic, seed):
        super().__init__(name, cluster, history, stop)
        self.topic, self.rng = topic, random.Random(seed)

    def make(self):
        while not self.stop_event.is_set():
            producer = KProducer({
                "bootstrap.servers": self.cluster.bootstrap,
                "transactional.id": "chaos-txn",
                "transaction.timeout.ms": 20000,
                "message.timeout.ms": 20000,
                "request.timeout.ms": 5000,
                **QUIET,
            })
            try:
                producer.init_transactions(30)
                return producer
            except KafkaException as e:
                self.history.add(type="note", proc=self.name, text=f"init: {e.args[0].name()}")
                time.sleep(1)
        return None

    def work(self):
        producer, n = self.make(), 0
        while producer is not None and not self.stop_event.is_set():
            values = [f"{self.name}-{n}-{i}" for i in range(self.rng.randint(1, 4))]
            commit = self.rng.random() < 0.7
            invoke = self.history.now()
            outcome, error = self.one(producer, values, commit)
            event = dict(type="txn", proc=self.name, id=n, values=values, outcome=outcome,
                         invoke=invoke, complete=self.history.now())
            if error:
                event["error"] = error
            self.history.add(**event)
            n += 1
            if outcome == "unknown":
                producer = self.make()
            time.sleep(0.1)

    def one(self, producer, values, commit):
        try:
            producer.begin_transaction()
            for v in values:
                producer.produce(self.topic, key=v.encode(), value=v.encode())
            if commit:
                producer.commit_transaction(30)
                return "commit-ok", None
            producer.abort_transaction(30)
            return "abort-ok", None
        except (KafkaException, BufferError) as e:
            err = e.args[0] if isinstance(e, KafkaException) else None
            name = err.name() if err else "local queue full"
            if err is not None and err.txn_requires_abort():
                try:
                    producer.abort_transaction(30)
                    return "abort-ok", name
                except KafkaException as e2:
                    return "unknown", f"{name}; abort: {e2.args[0].name()}"
            return "unknown", name


def read_all(cluster, history, topic, partitions, kind, isolation="read_uncommitted",
             within=60):
    """Reads every partition of `topic` from the start to its end (EOF); each record becomes
    a `kind` event. Returns the end offsets it reached."""
    consumer = plain_consumer(cluster, f"chaos-final-{kind}", **{
        "enable.partition.eof": True, "isolation.level": isolation})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    ends, deadline = {}, time.monotonic() + within
    try:
        highs = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10,
                                                   cached=False)[1] for p in range(partitions)}
        while len(ends) < partitions and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=1):
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        if msg.offset() >= highs[msg.partition()] or isolation != "read_uncommitted":
                            ends[msg.partition()] = msg.offset()
                    else:
                        history.add(type="read-error", session=kind, error=msg.error().name())
                    continue
                history.add(type=kind, partition=msg.partition(), offset=msg.offset(),
                            value=msg.value().decode())
        for p in range(partitions):
            history.add(type=f"{kind}-end", partition=p, high=highs[p], reached=ends.get(p))
    finally:
        consumer.close()
    if len(ends) < partitions:
        raise TimeoutError(f"final read of {topic} did not reach the end of every partition")
    return ends

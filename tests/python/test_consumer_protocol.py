"""KIP-848 consumer groups (`group.protocol=consumer`: ConsumerGroupHeartbeat and
ConsumerGroupDescribe, the broker's own assignor) with confluent-kafka 2.16 (librdkafka 2.16):
members joining and leaving, a regex subscription picking up a topic created later, static
members coming back to their partitions, a SIGKILLed member's partitions moving after the
session timeout, the group and its offsets surviving SIGTERM and kill -9 of the broker, no
partition owned by two members at once (checked from every member's rebalance callbacks), and
the admin group calls.

Every member is a real `Consumer` polled on its own thread (the crash test's is a child
process); its on_assign / on_revoke / on_lost callbacks are logged with time.monotonic()."""

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid

from confluent_kafka import (Consumer, ConsumerGroupState, ConsumerGroupType, KafkaError,
                             KafkaException, Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

PARTITIONS = 6
TIMEOUT_S = 30
SESSION_TIMEOUT_MS = 6000
# Small heartbeat interval so a rebalance settles in about a second. As Kafka, Sluice refuses a
# group.consumer.session.timeout.ms below group.consumer.min.session.timeout.ms (45000 by
# default) and a heartbeat interval below its minimum (5000), so the minimums come down too.
BROKER_CONFIG = {
    "group.consumer.heartbeat.interval.ms": "500",
    "group.consumer.session.timeout.ms": str(SESSION_TIMEOUT_MS),
    "group.consumer.min.session.timeout.ms": str(SESSION_TIMEOUT_MS),
    "group.consumer.min.heartbeat.interval.ms": "500",
}


def consumer_config(bootstrap, group, name, **extra):
    config = {"bootstrap.servers": bootstrap, "group.id": group,
              "group.protocol": "consumer", "client.id": name,
              "enable.auto.commit": False, "auto.offset.reset": "earliest",
              "fetch.wait.max.ms": 100, "topic.metadata.refresh.interval.ms": 1000}
    config.update(extra)
    return config


def create_topics(bootstrap, names, partitions=PARTITIONS):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=1)
                                   for n in names])
    for f in futures.values():
        f.result(timeout=TIMEOUT_S)


def produce(bootstrap, topic, per_partition, partitions=PARTITIONS, start=0):
    prod = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    errors = []
    for p in range(partitions):
        for i in range(start, start + per_partition):
            prod.produce(topic, value=f"{p}-{i}".encode(), partition=p,
                         on_delivery=lambda err, _m: err and errors.append(err))
        prod.poll(0)
    assert prod.flush(TIMEOUT_S) == 0
    assert errors == [], errors


class Log:
    """Rebalance events of every member of a test, in the order they happened."""

    def __init__(self):
        self.lock = threading.Lock()
        self.events = []  # (monotonic time, member, kind, [(topic, partition)])

    def add(self, member, kind, partitions):
        with self.lock:
            self.events.append((time.monotonic(), member, kind,
                                sorted((tp.topic, tp.partition) for tp in partitions)))


class Member:
    """A consumer-protocol Consumer polled on its own thread. `owned` follows its callbacks
    (the incremental assignment librdkafka hands the application); consumed records are kept
    with the time poll() returned them; with `commit_on_revoke` it commits what it consumed
    of a partition before giving it up, so the next owner resumes there."""

    def __init__(self, name, bootstrap, group, subscription, log, commit_on_revoke=False,
                 revoke_delay_s=0.0, **extra):
        self.name = name
        self.revoke_delay_s = revoke_delay_s
        self.log = log
        self.commit_on_revoke = commit_on_revoke
        self.owned = set()
        self.positions = {}  # (topic, partition) -> next offset to read
        self.consumed = []  # (time, topic, partition, offset)
        self.errors = []
        self.lock = threading.Lock()
        self.consumer = Consumer(consumer_config(bootstrap, group, name, **extra))
        self.subscription = subscription
        self._stop = threading.Event()
        self._close = True
        self._calls = queue.Queue()
        self.member_id = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _on_assign(self, _consumer, partitions):
        self.log.add(self.name, "assign", partitions)
        with self.lock:
            self.owned |= {(tp.topic, tp.partition) for tp in partitions}

    def _on_revoke(self, consumer, partitions):
        self._give_up(consumer, partitions, "revoke")

    def _on_lost(self, consumer, partitions):
        self._give_up(consumer, partitions, "lost")

    def _give_up(self, consumer, partitions, kind):
        gone = {(tp.topic, tp.partition) for tp in partitions}
        # A slow application: the broker must not hand these partitions to anyone meanwhile.
        time.sleep(self.revoke_delay_s)
        if self.commit_on_revoke and kind == "revoke":
            offsets = [TopicPartition(t, p, self.positions[(t, p)])
                       for (t, p) in sorted(gone) if (t, p) in self.positions]
            if offsets:
                try:
                    consumer.commit(offsets=offsets, asynchronous=False)
                except KafkaException as e:
                    self.errors.append(f"commit on revoke: {e}")
        with self.lock:
            self.owned -= gone
        # Logged last: the partitions are given up (unassigned) right after this returns.
        self.log.add(self.name, kind, partitions)

    def _run(self):
        try:
            self.consumer.subscribe(self.subscription, on_assign=self._on_assign,
                                    on_revoke=self._on_revoke, on_lost=self._on_lost)
            while not self._stop.is_set():
                self._serve_calls()
                msg = self.consumer.poll(0.1)
                self.member_id = self.consumer.memberid()
                if msg is None:
                    continue
                if msg.error():
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        self.errors.append(str(msg.error()))
                    continue
                now = time.monotonic()
                key = (msg.topic(), msg.partition())
                with self.lock:
                    self.consumed.append((now, msg.topic(), msg.partition(), msg.offset()))
                    self.positions[key] = msg.offset() + 1
            if self._close:
                self.consumer.close()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(e))

    def _serve_calls(self):
        while not self._calls.empty():
            fn, done = self._calls.get()
            try:
                done.append(("ok", fn(self.consumer)))
            except Exception as e:  # noqa: BLE001 - raised in the caller
                done.append(("error", e))

    def call(self, fn):
        """Runs fn(consumer) on the member's own thread: a Consumer is not called from two
        threads at once here (memberid() from another thread while poll() runs hangs)."""
        done = []
        self._calls.put((fn, done))
        wait_for(lambda: done, f"{self.name} to run a call")
        kind, value = done[0]
        if kind == "error":
            raise value
        return value

    def partitions(self, topic=None):
        with self.lock:
            return sorted(p for t, p in self.owned if topic is None or t == topic)

    def close(self):
        """Leaves the group (on_revoke runs inside close)."""
        self._stop.set()
        self.thread.join(timeout=TIMEOUT_S)
        assert not self.thread.is_alive(), f"{self.name} did not close"


def wait_for(condition, what, members=(), timeout_s=TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}: " + str(
            {m.name: m.partitions() for m in members})
        time.sleep(0.05)
    return time.monotonic()


def split_evenly(members, topic, partitions=PARTITIONS):
    """Every partition owned by exactly one member, counts differing by at most one."""
    owned = [m.partitions(topic) for m in members]
    flat = sorted(p for o in owned for p in o)
    counts = [len(o) for o in owned]
    return flat == list(range(partitions)) and max(counts) - min(counts) <= 1


def ownership_intervals(log, end_time):
    """(topic, partition) -> [(start, end, member)] from the callbacks; still open at the end
    of the test: end_time."""
    open_at = {}
    intervals = {}
    for t, member, kind, partitions in log.events:
        for tp in partitions:
            if kind == "assign":
                assert (tp, member) not in open_at, f"{member} assigned {tp} twice"
                open_at[(tp, member)] = t
            else:
                start = open_at.pop((tp, member), None)
                assert start is not None, f"{member} gave up {tp} it did not own"
                intervals.setdefault(tp, []).append((start, t, member))
    for (tp, member), start in open_at.items():
        intervals.setdefault(tp, []).append((start, end_time, member))
    return intervals


def assert_no_overlap(intervals):
    for tp, spans in intervals.items():
        spans = sorted(spans)
        for (s1, e1, m1), (s2, e2, m2) in zip(spans, spans[1:]):
            assert s2 >= e1, (f"{tp} owned by {m1} [{s1:.3f}, {e1:.3f}] and by {m2} "
                              f"[{s2:.3f}, {e2:.3f}] at once")


def describe(admin, group):
    return admin.describe_consumer_groups([group])[group].result(timeout=TIMEOUT_S)


def assignment_of(description, topic):
    return {m.client_id: sorted(tp.partition for tp in m.assignment.topic_partitions
                                if tp.topic == topic)
            for m in description.members}


def close_all(members):
    for m in members:
        if m.thread.is_alive():
            m.close()


# ---------------------------------------------------------------------------------------------


def test_members_join_split_evenly_and_a_leavers_partitions_move(broker_factory, topic):
    broker = broker_factory(cores=2, config=BROKER_CONFIG)
    create_topics(broker.bootstrap, [topic])
    group = f"k848-{uuid.uuid4().hex[:8]}"
    log = Log()
    members = []
    try:
        # One after another: each join moves partitions from the earlier members.
        for i, expected in enumerate([[6], [3, 3], [2, 2, 2]]):
            members.append(Member(f"m{i}", broker.bootstrap, group, [topic], log))
            started = time.monotonic()
            wait_for(lambda: split_evenly(members, topic)
                     and sorted(len(m.partitions()) for m in members) == expected,
                     f"{len(members)} members to split {PARTITIONS} partitions", members)
            print(f"{len(members)} members settled in {time.monotonic() - started:.2f}s")
        before = {m.name: m.partitions() for m in members}

        leaver = members.pop(0)
        leaver.close()
        started = time.monotonic()
        wait_for(lambda: split_evenly(members, topic), "the leaver's partitions to move",
                 members)
        print(f"leave settled in {time.monotonic() - started:.2f}s")
        after = {m.name: m.partitions() for m in members}
        assert sorted(len(p) for p in after.values()) == [3, 3]
        # Uniform is sticky: each remaining member keeps what it had and gains one.
        for name, parts in after.items():
            assert set(before[name]) <= set(parts), (before, after)
        assert set(before[leaver.name]) == set().union(*after.values()) - set().union(
            *(before[n] for n in after))
        assert all(not m.errors for m in members + [leaver]), [m.errors for m in members]
        assert not [e for e in log.events if e[2] == "lost"], log.events
        assert_no_overlap(ownership_intervals(log, time.monotonic()))
    finally:
        close_all(members)


def test_regex_subscription_picks_up_a_topic_created_later(broker_factory):
    broker = broker_factory(cores=2, config=BROKER_CONFIG)
    prefix = f"rx{uuid.uuid4().hex[:8]}"
    first, later, other = f"{prefix}-a", f"{prefix}-b", f"not{prefix}-c"
    create_topics(broker.bootstrap, [first, other])
    group = f"k848-{uuid.uuid4().hex[:8]}"
    log = Log()
    # librdkafka sends a subscription starting with ^ to the broker as SubscribedTopicRegex.
    members = [Member(f"m{i}", broker.bootstrap, group, [f"^{prefix}.*"], log)
               for i in range(2)]
    try:
        wait_for(lambda: split_evenly(members, first), f"{first} split", members)
        assert all(m.partitions(other) == [] for m in members)
        produce(broker.bootstrap, first, 1)
        create_topics(broker.bootstrap, [later], partitions=4)
        produce(broker.bootstrap, later, 2, partitions=4)
        started = time.monotonic()
        wait_for(lambda: split_evenly(members, later, partitions=4)
                 and split_evenly(members, first), f"{later} (created later) assigned", members)
        print(f"new topic assigned {time.monotonic() - started:.2f}s after its creation")
        assert all(m.partitions(other) == [] for m in members), "a non-matching topic"
        # The records of the new topic reach the members from offset 0.
        wait_for(lambda: sorted((p, o) for m in members for _, t, p, o in m.consumed
                                if t == later) == [(p, o) for p in range(4) for o in range(2)],
                 "the new topic's records", members)
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        desc = describe(admin, group)
        assigned = sorted((tp.topic, tp.partition) for m in desc.members
                          for tp in m.assignment.topic_partitions)
        assert assigned == sorted([(first, p) for p in range(PARTITIONS)]
                                  + [(later, p) for p in range(4)])

        # Partitions added to a matched topic are assigned; a deleted topic's are revoked.
        admin.create_partitions([NewPartitions(later, 6)])[later].result(timeout=TIMEOUT_S)
        wait_for(lambda: split_evenly(members, later, partitions=6), f"{later}'s new partitions",
                 members)
        admin.delete_topics([first])[first].result(timeout=TIMEOUT_S)
        wait_for(lambda: all(m.partitions(first) == [] for m in members),
                 f"the deleted {first} revoked", members)
        assert split_evenly(members, later, partitions=6)
        assert all(not m.errors for m in members), [m.errors for m in members]
        assert_no_overlap(ownership_intervals(log, time.monotonic()))
    finally:
        close_all(members)


def test_static_member_returns_to_its_partitions(broker_factory, topic):
    broker = broker_factory(cores=2, config=BROKER_CONFIG)
    create_topics(broker.bootstrap, [topic])
    group = f"k848-{uuid.uuid4().hex[:8]}"
    log = Log()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})

    def static(i):
        return Member(f"s{i}", broker.bootstrap, group, [topic], log,
                      **{"group.instance.id": f"instance-{i}"})

    members = [static(i) for i in range(3)]
    try:
        wait_for(lambda: split_evenly(members, topic), "three static members", members)
        time.sleep(1.5)  # a few heartbeats: nothing moves in a stable group
        before = {m.name: m.partitions() for m in members}
        desc = describe(admin, group)
        assert sorted(m.group_instance_id for m in desc.members) == [
            "instance-0", "instance-1", "instance-2"]
        epoch_events = len(log.events)

        # Closed and restarted with the same group.instance.id within the session timeout.
        members[1].close()
        closed_at = time.monotonic()
        time.sleep(1.0)
        assert {m.name: m.partitions() for m in (members[0], members[2])} == {
            n: before[n] for n in ("s0", "s2")}, "the others took the static member's place"
        members[1] = static(1)
        wait_for(lambda: members[1].partitions() == before["s1"],
                 "the static member's old partitions", members)
        assert time.monotonic() - closed_at < SESSION_TIMEOUT_MS / 1000
        time.sleep(1.5)
        assert {m.name: m.partitions() for m in members} == before
        others = [e for e in log.events[epoch_events:] if e[1] != "s1"]
        assert others == [], f"the other members saw a rebalance: {others}"
        desc = describe(admin, group)
        assert assignment_of(desc, topic) == before
        assert desc.state == ConsumerGroupState.STABLE

        # A static member that does not come back is removed at the session timeout.
        members[2].close()
        gone_at = time.monotonic()
        rest = members[:2]
        wait_for(lambda: split_evenly(rest, topic), "the absent static member's partitions",
                 rest, timeout_s=SESSION_TIMEOUT_MS / 1000 + 15)
        waited = time.monotonic() - gone_at
        print(f"absent static member replaced after {waited:.2f}s")
        assert waited >= SESSION_TIMEOUT_MS / 1000 - 1.0, "moved before the session timeout"
        assert sorted(m.group_instance_id for m in describe(admin, group).members) == [
            "instance-0", "instance-1"]
        assert all(not m.errors for m in members), [m.errors for m in members]
        assert_no_overlap(ownership_intervals(log, time.monotonic()))
    finally:
        close_all(members)


CRASHING_MEMBER = textwrap.dedent("""
    import sys
    from confluent_kafka import Consumer
    bootstrap, group, topic = sys.argv[1:4]
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "group.protocol": "consumer", "client.id": "doomed",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    def on_assign(consumer, partitions):
        print("assigned", *sorted(tp.partition for tp in partitions), flush=True)
    c.subscribe([topic], on_assign=on_assign)
    while True:
        c.poll(0.1)
""")


def test_a_killed_members_partitions_move_after_the_session_timeout(broker_factory, topic):
    broker = broker_factory(cores=2, config=BROKER_CONFIG)
    create_topics(broker.bootstrap, [topic])
    group = f"k848-{uuid.uuid4().hex[:8]}"
    log = Log()
    members = [Member(f"m{i}", broker.bootstrap, group, [topic], log) for i in range(2)]
    child = subprocess.Popen([sys.executable, "-c", CRASHING_MEMBER, broker.bootstrap, group,
                              topic], stdout=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: sorted(len(m.partitions()) for m in members) == [2, 2]
                 and len(set().union(*(m.partitions() for m in members))) == 4,
                 "two in-process members with two partitions each", members)
        child_partitions = set(range(PARTITIONS)) - set().union(*(m.partitions()
                                                                  for m in members))
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        # The broker's view (ConsumerGroupDescribe): the child owns the other two.
        wait_for(lambda: assignment_of(describe(admin, group), topic).get("doomed")
                 == sorted(child_partitions), "the child's two partitions", members)
        before = {m.name: m.partitions() for m in members}

        child.send_signal(signal.SIGKILL)
        child.wait()
        killed_at = time.monotonic()
        wait_for(lambda: split_evenly(members, topic), "the killed member's partitions",
                 members, timeout_s=SESSION_TIMEOUT_MS / 1000 + 15)
        waited = time.monotonic() - killed_at
        print(f"killed member's partitions moved after {waited:.2f}s")
        # The last heartbeat was at most one interval (0.5 s) before the kill.
        assert waited >= SESSION_TIMEOUT_MS / 1000 - 1.0, "moved before the session timeout"
        assert waited <= SESSION_TIMEOUT_MS / 1000 + 5.0
        for m in members:
            assert set(before[m.name]) <= set(m.partitions())
        desc = describe(admin, group)
        assert sorted(assignment_of(desc, topic)) == ["m0", "m1"]
        assert all(not m.errors for m in members), [m.errors for m in members]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        close_all(members)


def first_offsets(bootstrap, group, topic, name):
    """Joins `group` alone, returns the first offset it reads of each partition, and leaves."""
    log = Log()
    m = Member(name, bootstrap, group, [topic], log)
    try:
        def firsts():
            with m.lock:
                out = {}
                for _, _, p, o in m.consumed:
                    out.setdefault(p, o)
                return out
        wait_for(lambda: len(firsts()) == PARTITIONS, f"{name} to read every partition", [m])
        assert not m.errors, m.errors
        return firsts()
    finally:
        m.close()


def wait_described(admin, group, condition, what, timeout_s=TIMEOUT_S):
    """Describes the group until `condition(description)` holds (the broker may still be
    loading __consumer_offsets, or the coordinator may not be known yet)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while True:
        try:
            last = describe(admin, group)
            if condition(last):
                return last
        except KafkaException as e:
            last = e
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {last!r}"
        time.sleep(0.2)


def fresh_admin(broker):
    """An AdminClient made after a broker restart: one kept across it may keep the old
    connection's coordinator and time out (librdkafka issue 5511, see test_admin_restart.py)."""
    return AdminClient({"bootstrap.servers": broker.bootstrap})


def test_group_and_offsets_survive_sigterm_and_kill_9(broker_factory, topic):
    broker = broker_factory(cores=2, config=BROKER_CONFIG)
    create_topics(broker.bootstrap, [topic])
    produce(broker.bootstrap, topic, 10)
    group = f"k848-{uuid.uuid4().hex[:8]}"
    log = Log()
    members = [Member(f"m{i}", broker.bootstrap, group, [topic], log) for i in range(2)]
    try:
        wait_for(lambda: split_evenly(members, topic), "two members", members)
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        settled = wait_described(admin, group, lambda d: d.state == ConsumerGroupState.STABLE
                                 and sorted(map(len, assignment_of(d, topic).values())) == [3, 3],
                                 "a stable group")
        ids = {m.client_id: m.member_id for m in settled.members}
        assert ids == {m.name: m.member_id for m in members}
        owned = assignment_of(settled, topic)
        # Each member commits offset p + 3 of its partitions p.
        for m in members:
            m.call(lambda c, m=m: c.commit(
                offsets=[TopicPartition(topic, p, p + 3) for p in m.partitions()],
                asynchronous=False))
        events_before = len(log.events)

        for how in ("SIGTERM", "kill -9"):
            if how == "SIGTERM":
                assert broker.stop() == 0
            else:
                broker.kill()
            broker.restart()
            admin = fresh_admin(broker)
            # The members are back from __consumer_offsets: same ids, same partitions, and the
            # running consumers carry on heartbeating with their epochs: nothing moves.
            desc = wait_described(admin, group, lambda d: d.state == ConsumerGroupState.STABLE,
                                  f"the group after {how}")
            assert desc.type == ConsumerGroupType.CONSUMER
            assert {m.client_id: m.member_id for m in desc.members} == ids, how
            assert assignment_of(desc, topic) == owned, how
            time.sleep(2.0)  # several heartbeats against the restarted coordinator
            assert {m.name: m.partitions() for m in members} == owned, how
            assert log.events[events_before:] == [], f"a rebalance after {how}"
            committed = members[0].call(lambda c: c.committed(
                [TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=TIMEOUT_S))
            assert [tp.offset for tp in committed] == [p + 3 for p in range(PARTITIONS)], how
        assert all(not m.errors for m in members), [m.errors for m in members]
        close_all(members)

        desc = wait_described(admin, group, lambda d: d.state == ConsumerGroupState.EMPTY,
                              "an empty group")
        assert desc.members == [] and desc.type == ConsumerGroupType.CONSUMER
        assert first_offsets(broker.bootstrap, group, topic, "after-sigterm") == {
            p: p + 3 for p in range(PARTITIONS)}

        # An empty consumer group (offsets and epochs only) across kill -9.
        broker.kill()
        broker.restart()
        admin = fresh_admin(broker)
        desc = wait_described(admin, group, lambda d: d.state == ConsumerGroupState.EMPTY,
                              "the empty group after kill -9")
        assert desc.type == ConsumerGroupType.CONSUMER
        listed = admin.list_consumer_groups(types={ConsumerGroupType.CONSUMER}).result(
            timeout=TIMEOUT_S)
        assert group in [g.group_id for g in listed.valid]
        assert first_offsets(broker.bootstrap, group, topic, "after-kill") == {
            p: p + 3 for p in range(PARTITIONS)}
    finally:
        close_all(members)


def test_no_partition_owned_by_two_members_while_members_join_and_leave(broker_factory,
                                                                          topic):
    """Records flow the whole time; each member takes 0.3 s in on_revoke (the broker must wait
    for it: revoke before reassign) and commits what it read of a partition there, so the next
    owner resumes at that offset: every record is read exactly once, by the member that owned
    its partition at the time."""
    broker = broker_factory(cores=2, config=BROKER_CONFIG)
    create_topics(broker.bootstrap, [topic])
    group = f"k848-{uuid.uuid4().hex[:8]}"
    log = Log()
    stop = threading.Event()
    produced = {p: 0 for p in range(PARTITIONS)}

    def produce_steadily():
        prod = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 2, "acks": "all"})
        while not stop.is_set():
            for p in range(PARTITIONS):
                prod.produce(topic, value=f"{p}-{produced[p]}".encode(), partition=p)
                produced[p] += 1
            prod.poll(0)
            time.sleep(0.02)
        assert prod.flush(TIMEOUT_S) == 0

    producer = threading.Thread(target=produce_steadily, daemon=True)
    producer.start()
    everyone = []
    live = []

    def join(name):
        m = Member(name, broker.bootstrap, group, [topic], log, commit_on_revoke=True,
                   revoke_delay_s=0.3)
        everyone.append(m)
        live.append(m)

    def leave(name):
        # Unsubscribe first, then close once the revocation (and its commit) is done: closing
        # at once races librdkafka 2.12's own close, which may finish the unassign and send
        # the leave heartbeat before the application's on_revoke has run when an assignment
        # is still waiting for the application ("Consumer is terminating: treating assign as
        # unassign", seen with debug=cgrp); the broker then rightly hands the partitions on
        # while on_revoke still sleeps and commits (refused: the member is gone).
        m = next(m for m in live if m.name == name)
        live.remove(m)
        m.call(lambda c: c.unsubscribe())
        wait_for(lambda: not m.partitions(), f"{name} to give up its partitions", [m])
        m.close()

    def settle():
        wait_for(lambda: split_evenly(live, topic), f"{[m.name for m in live]} to settle", live)

    try:
        join("a")
        settle()
        for step in (lambda: join("b"), lambda: join("c"), lambda: join("d"),
                     lambda: leave("a"), lambda: join("e"), lambda: leave("b"),
                     lambda: (leave("c"), join("f")), lambda: leave("d")):
            step()
            time.sleep(0.3)  # the next change may land mid-reconciliation
        settle()
        time.sleep(0.5)
        stop.set()
        producer.join(timeout=TIMEOUT_S)
        total = sum(produced.values())

        def consumed():
            out = []
            for m in everyone:
                with m.lock:
                    out.extend((t, m.name, p, o) for t, _, p, o in m.consumed)
            return out

        wait_for(lambda: len(consumed()) >= total, f"all {total} records read", live)
        time.sleep(0.5)
        leave_time = time.monotonic()
        intervals = ownership_intervals(log, leave_time)
        assert_no_overlap(intervals)
        assert not [e for e in log.events if e[2] == "lost"], "a member lost partitions"

        # Each record read once, by its partition's owner at the time it was read.
        records = consumed()
        by_partition = {}
        for t, name, p, o in records:
            by_partition.setdefault(p, []).append(o)
            assert any(s <= t <= e and owner == name for s, e, owner in intervals[(topic, p)]), (
                f"{name} read {topic}/{p}@{o} at {t:.3f} outside its ownership")
        for p in range(PARTITIONS):
            assert sorted(by_partition[p]) == list(range(produced[p])), (
                f"partition {p}: read {len(by_partition[p])} records, "
                f"{len(set(by_partition[p]))} distinct, of {produced[p]}")
        moves = sum(1 for e in log.events if e[2] == "revoke")
        print(f"{total} records, {moves} revocations, {len(everyone)} members")
        assert all(not m.errors for m in everyone), {m.name: m.errors for m in everyone}
    finally:
        stop.set()
        close_all(everyone)


def test_admin_lists_and_describes_consumer_groups(broker_factory, topic):
    broker = broker_factory(cores=2, config=BROKER_CONFIG)
    create_topics(broker.bootstrap, [topic])
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    uniform_group = f"k848-u-{uuid.uuid4().hex[:6]}"
    range_group = f"k848-r-{uuid.uuid4().hex[:6]}"
    classic_group = f"classic-{uuid.uuid4().hex[:6]}"
    log = Log()
    members = [Member(f"u{i}", broker.bootstrap, uniform_group, [topic], log) for i in range(3)]
    members += [Member(f"r{i}", broker.bootstrap, range_group, [topic], log,
                       **{"group.remote.assignor": "range"}) for i in range(2)]
    classic = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": classic_group,
                        "group.protocol": "classic", "session.timeout.ms": 6000})
    classic.subscribe([topic])
    try:
        wait_for(lambda: split_evenly(members[:3], topic) and split_evenly(members[3:], topic),
                 "both consumer groups", members)
        deadline = time.monotonic() + TIMEOUT_S
        while not classic.assignment():
            assert time.monotonic() < deadline, "classic member got no assignment"
            classic.poll(0.1)

        u = wait_described(admin, uniform_group,
                           lambda d: d.state == ConsumerGroupState.STABLE and len(d.members) == 3,
                           "the uniform group stable")
        assert u.type == ConsumerGroupType.CONSUMER
        assert u.partition_assignor == "uniform"
        assert not u.is_simple_consumer_group
        assert assignment_of(u, topic) == {m.name: m.partitions() for m in members[:3]}
        for m in u.members:
            assert m.member_id == next(x for x in members if x.name == m.client_id).member_id
            assert m.host and m.group_instance_id is None
            # KIP-848's target assignment is the current one in a stable group.
            assert m.target_assignment is not None
            assert sorted(tp.partition for tp in m.target_assignment.topic_partitions) == \
                sorted(tp.partition for tp in m.assignment.topic_partitions)
        assert u.coordinator is not None and u.coordinator.port in (
            broker.shard_port(0), broker.shard_port(1))

        r = wait_described(admin, range_group,
                           lambda d: d.state == ConsumerGroupState.STABLE and len(d.members) == 2,
                           "the range group stable")
        assert r.partition_assignor == "range"
        # Range: members by member id take contiguous halves.
        by_id = sorted(r.members, key=lambda m: m.member_id)
        assert [sorted(tp.partition for tp in m.assignment.topic_partitions)
                for m in by_id] == [[0, 1, 2], [3, 4, 5]]

        listed = admin.list_consumer_groups().result(timeout=TIMEOUT_S)
        assert listed.errors == []
        kinds = {g.group_id: (g.type, g.state) for g in listed.valid}
        assert kinds[uniform_group] == (ConsumerGroupType.CONSUMER, ConsumerGroupState.STABLE)
        assert kinds[range_group] == (ConsumerGroupType.CONSUMER, ConsumerGroupState.STABLE)
        assert kinds[classic_group] == (ConsumerGroupType.CLASSIC, ConsumerGroupState.STABLE)
        only_consumer = admin.list_consumer_groups(types={ConsumerGroupType.CONSUMER}).result(
            timeout=TIMEOUT_S)
        assert {g.group_id for g in only_consumer.valid} >= {uniform_group, range_group}
        assert classic_group not in {g.group_id for g in only_consumer.valid}
        only_classic = admin.list_consumer_groups(types={ConsumerGroupType.CLASSIC}).result(
            timeout=TIMEOUT_S)
        assert {g.group_id for g in only_classic.valid} == {classic_group}
        # A classic group described through the same call (DescribeGroups fallback).
        c = describe(admin, classic_group)
        assert c.type == ConsumerGroupType.CLASSIC and len(c.members) == 1

        close_all(members[:3])
        u = wait_described(admin, uniform_group, lambda d: d.state == ConsumerGroupState.EMPTY,
                           "the uniform group empty")
        assert u.members == []
        empty = admin.list_consumer_groups(states={ConsumerGroupState.EMPTY}).result(
            timeout=TIMEOUT_S)
        assert uniform_group in {g.group_id for g in empty.valid}
        assert range_group not in {g.group_id for g in empty.valid}
        assert all(not m.errors for m in members), [m.errors for m in members]
    finally:
        classic.close()
        close_all(members)


def test_described_assignor_survives_a_restart(broker_factory, topic):
    """ConsumerGroupDescribe's AssignorName after a restart. Kafka computes it on every
    describe (ConsumerGroup.asDescribedGroup: the members' preferred server assignor, else the
    broker's default, the first of group.consumer.assignors), so it never goes blank."""
    broker = broker_factory(cores=2, config=BROKER_CONFIG)
    create_topics(broker.bootstrap, [topic])
    group = f"k848-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    log = Log()
    m = Member("m0", broker.bootstrap, group, [topic], log)
    try:
        wait_for(lambda: len(m.partitions()) == PARTITIONS, "assignment", [m])
        before = wait_described(admin, group, lambda d: d.state == ConsumerGroupState.STABLE,
                                "a stable group")
        assert before.partition_assignor == "uniform"
        m.close()
        wait_described(admin, group, lambda d: d.state == ConsumerGroupState.EMPTY, "empty")
        assert broker.stop() == 0
        broker.restart()
        after = wait_described(fresh_admin(broker), group, lambda d: d.state == ConsumerGroupState.EMPTY,
                               "the group after a restart")
        assert after.partition_assignor == "uniform", (
            f"assignor {after.partition_assignor!r} after a restart")
    finally:
        close_all([m])

"""The nemesis: faults from a seeded random generator, one at a time, each recorded in the
history as a `fault` event with its start and end time (seconds since the run started).

Kinds (`KINDS`): SIGKILL and restart of a node (`kill`) or of a partition leader's node
(`kill-leader`); SIGSTOP/SIGCONT longer than the session timeout (`pause`, `pause-leader`);
added latency on a node's proxy (`latency`); a node's data plane unreachable while its
controller traffic still flows (`blackhole`); and a leader cut off from its followers and
then crashed (`crash-isolated-leader`: both followers paused, the leader SIGKILLed while they
are, then they resume, elect a new leader and the old one restarts and must truncate).
With network namespaces (`net.py`) also nftables faults: a node cut off from both others
while clients still reach it (`partition-isolate`, `partition-isolate-leader`: the
minority side of a majority/minority split), one pair of nodes cut while the third sees both
(`partition-bridge`), and random packet loss on a node (`packet-loss`).
With a small filesystem per node (root, `cluster.py`): that node's disk filled to the last
byte (`disk-full`, or `disk-full-leader` on a partition leader's node) while the workloads
run, then freed: its appends fail (KAFKA_STORAGE_ERROR) and it must neither crash nor lose or
duplicate an acknowledged record, and catch up once there is room again.
After each fault the nemesis waits (bounded) for the cluster to be whole again, so faults
do not pile up into a lost quorum.
"""
import random
import time

KINDS = ["kill", "kill-leader", "pause", "pause-leader", "latency", "blackhole",
         "crash-isolated-leader"]
NETNS_KINDS = ["partition-isolate", "partition-isolate-leader", "partition-bridge",
               "packet-loss"]
DISK_KINDS = ["disk-full", "disk-full-leader"]
ALL_KINDS = KINDS + NETNS_KINDS + DISK_KINDS


def available(kinds, net, own_disks):
    """The kinds this setup can do: nftables faults need namespaces, disk-full a small
    filesystem per node."""
    return [k for k in kinds if (net.kind == "netns" or k not in NETNS_KINDS)
            and (own_disks or k not in DISK_KINDS)]


class Nemesis:
    def __init__(self, cluster, history, seed, topic, kinds=None, heal_wait=30):
        self.cluster, self.history, self.topic = cluster, history, topic
        self.rng = random.Random(seed)
        self.kinds = available(kinds or ALL_KINDS, cluster.net, cluster.own_disks)
        self.heal_wait = heal_wait

    def run(self, duration, schedule=None):
        """Random faults until `duration` seconds have passed, or exactly `schedule` (a list
        of kinds) when given."""
        ends = time.monotonic() + duration
        queue = list(schedule) if schedule is not None else None
        while True:
            if queue is not None:
                if not queue:
                    return
                kind = queue.pop(0)
            else:
                if time.monotonic() >= ends:
                    return
                kind = self.rng.choice(self.kinds)
            self.fault(kind)
            self.settle()
            time.sleep(self.rng.uniform(1, 3))

    def leader_node(self):
        """The node leading a random partition of the topic (a random node if none is known)."""
        parts = self.cluster.leaders(self.topic)
        leaders = sorted({l for l, _ in parts.values() if l is not None})
        return self.rng.choice(leaders) if leaders else self.rng.choice([1, 2, 3])

    def fault(self, kind):
        start = self.history.now()
        node = self.leader_node() if kind.endswith("leader") else self.rng.choice([1, 2, 3])
        target = self.cluster.nodes[node]
        detail = {}
        if kind in ("kill", "kill-leader"):
            target.kill()
            hold = self.rng.uniform(2, 6)
            time.sleep(hold)
            target.start()
        elif kind in ("pause", "pause-leader"):
            target.pause()
            hold = self.rng.uniform(4, 8)  # past broker.session.timeout.ms (3 s)
            time.sleep(hold)
            target.resume()
        elif kind == "latency":
            detail["delay_ms"] = delay = self.rng.choice([50, 100, 200, 500])
            target.proxy_command(f"delay {delay}")
            time.sleep(self.rng.uniform(5, 10))
            target.proxy_command("heal")
        elif kind == "blackhole":
            target.proxy_command("blackhole")
            time.sleep(self.rng.uniform(4, 8))
            target.proxy_command("heal")
        elif kind == "crash-isolated-leader":
            others = [n for n in self.cluster.nodes.values() if n.n != node]
            for n in others:
                n.pause()
            detail["isolated_s"] = isolated = self.rng.uniform(1.5, 3)  # < replica.lag.time.max.ms
            time.sleep(isolated)
            target.kill()
            for n in others:
                n.resume()
            time.sleep(self.rng.uniform(4, 6))  # the others fence it and elect a new leader
            target.start()
        elif kind in ("partition-isolate", "partition-isolate-leader"):
            detail["from"] = others = [m for m in (1, 2, 3) if m != node]
            self.cluster.net.cut(node, others)
            time.sleep(self.rng.uniform(5, 10))  # past the session and ISR timeouts
            self.cluster.net.heal(node)
        elif kind == "partition-bridge":
            detail["from"] = other = self.rng.choice([m for m in (1, 2, 3) if m != node])
            self.cluster.net.cut(node, [other])
            time.sleep(self.rng.uniform(5, 10))
            self.cluster.net.heal(node)
        elif kind == "packet-loss":
            detail["percent"] = percent = self.rng.choice([5, 20, 40])
            self.cluster.net.loss(node, percent)
            time.sleep(self.rng.uniform(5, 10))
            self.cluster.net.heal(node)
        elif kind in ("disk-full", "disk-full-leader"):
            detail["filled_bytes"] = target.fill_disk()
            time.sleep(self.rng.uniform(5, 10))  # appends fail; followers fall out of the ISR
            target.free_disk()
        else:
            raise ValueError(f"unknown fault {kind}")
        self.history.add(type="fault", kind=kind, node=node, start=start,
                         end=self.history.now(), **detail)

    def settle(self):
        try:
            self.cluster.wait_for(lambda: self.cluster.healthy([self.topic]), self.heal_wait,
                                  "cluster healthy")
        except TimeoutError:
            self.history.add(type="unsettled", within=self.heal_wait,
                             isr=self.cluster.isr_report([self.topic]),
                             text="cluster not whole after a fault; going on")

    def heal(self):
        """Every node running, unpaused, with a clean proxy."""
        for node in self.cluster.nodes.values():
            node.free_disk()
            node.resume()
            node.proxy_command("heal")
            if self.cluster.net.kind == "netns":
                self.cluster.net.heal(node.n)
            if not node.running():
                node.start()

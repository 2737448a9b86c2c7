"""Three Sluice nodes (one shard each), each behind a proxy, on the addresses `net.py` gives:
their own network namespaces (10.B.0.n) or, as a fallback, loopback (127.0.0.n).

Node n binds its host address (bootstrap port P, its shard on P+1, CONTROLLER on P+10) and
advertises its proxy's address (10.B.1.n or 127.0.1.n), where `proxy.py` forwards to it:
clients and follower fetches go through the proxy (latency and blackhole faults), the
controller quorum talks directly. Timeouts are short so faults turn into failovers within
seconds. Everything the nemesis does to a node (SIGKILL, restart, SIGSTOP, SIGCONT, proxy
commands, nftables rules, filling its disk) is a method here.

As root each node's data (partition logs and the metadata quorum's log alike, as on a host
with one data disk) lives on its own small tmpfs (`DISK_MB`), so the `disk-full` fault can
fill that node's disk to the last byte and free it again without touching the machine's.
"""
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

from net import Loopback

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent

DISK_MB = 256  # each node's own filesystem when run as root (30 minutes write ~15 MB)
FILLER = "chaos-filler"  # the file that fills a node's disk, next to (not in) its data dir

FAST_TIMEOUTS = [
    "broker.heartbeat.interval.ms=500",
    "broker.session.timeout.ms=3000",
    "replica.lag.time.max.ms=4000",
]


def sluice_bin():
    if os.environ.get("SLUICE_BIN"):
        return os.environ["SLUICE_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", str(REPO / "target"))
    return str(Path(target) / "debug" / "sluice")


def node_config(n, port, voters, data_dir, host, advertised):
    lines = [
        f"node.id={n}",
        "process.roles=broker,controller",
        f"controller.quorum.voters={voters}",
        f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{port + 10}",
        f"advertised.listeners=PLAINTEXT://{advertised}:{port}",
        "controller.listener.names=CONTROLLER",
        f"broker.rack=rack-{n}",
        f"log.dirs={data_dir}",
        "default.replication.factor=3",
        "min.insync.replicas=2",
        "offsets.topic.replication.factor=3",
        "transaction.state.log.replication.factor=3",
        "transaction.state.log.min.isr=2",
        "auto.create.topics.enable=false",
    ] + FAST_TIMEOUTS
    return "\n".join(lines) + "\n"


class Node:
    def __init__(self, n, port, voters, workdir, env, net, own_disk):
        self.n, self.net = n, net
        self.port = port
        self.dir = workdir / f"node{n}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.disk = self.dir / "disk"
        self.disk.mkdir(exist_ok=True)
        self.own_disk = own_disk and mount_disk(self.disk)
        self.data = self.disk / "data"
        self.config = self.dir / "node.properties"
        self.config.write_text(node_config(n, port, voters, self.data, net.host(n),
                                           net.advertised(n)))
        self.log = self.dir / "node.log"
        self.env = env
        self.proc = None
        self.paused = False
        self.proxy = None

    def start(self):
        log = open(self.log, "ab")
        log.write(f"\n=== start at {time.time():.3f}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            self.net.prefix(self.n) + [sluice_bin(), "serve", "--cores", "1", "--metrics-addr", "off", "--config",
             str(self.config)],
            stdout=subprocess.DEVNULL, stderr=log, env=self.env,
        )
        self.paused = False

    def start_proxy(self):
        self.proxy = subprocess.Popen(
            self.net.prefix(self.n) + [
                sys.executable, str(HERE / "proxy.py"), "--listen", self.net.advertised(self.n),
                "--target", self.net.host(self.n), "--port", str(self.port),
                "--port", str(self.port + 1)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        if self.proxy.stdout.readline().strip() != "ready":
            raise RuntimeError(f"proxy of node {self.n} did not start")

    def proxy_command(self, line):
        self.proxy.stdin.write(line + "\n")
        self.proxy.stdin.flush()
        self.proxy.stdout.readline()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.proc is not None:
            if self.paused:
                os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
            self.proc = None
        self.paused = False

    def pause(self):
        if self.running():
            os.kill(self.proc.pid, signal.SIGSTOP)
            self.paused = True

    def resume(self):
        if self.running() and self.paused:
            os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False

    def fill_disk(self):
        """Fill this node's own filesystem to the last byte; returns the bytes taken."""
        fd = os.open(self.disk / FILLER, os.O_CREAT | os.O_WRONLY, 0o600)
        taken = 0
        try:
            # Whole free space first, then ever smaller pieces: the filesystem's own
            # rounding leaves a little that only small allocations take.
            for chunk in (disk_free(self.disk), 1 << 20, 4096):
                while chunk > 0:
                    try:
                        os.posix_fallocate(fd, taken, chunk)
                    except OSError as e:
                        if e.errno != errno.ENOSPC:
                            raise
                        break
                    taken += chunk
        finally:
            os.close(fd)
        return taken

    def free_disk(self):
        (self.disk / FILLER).unlink(missing_ok=True)

    def drop_data(self, keep):
        """After the run: delete the data (or, with `keep`, move it off the node's own disk)
        and unmount that disk."""
        if keep and self.own_disk and self.data.exists():
            shutil.copytree(self.data, self.dir / "data", dirs_exist_ok=True)
        if not keep or self.own_disk:
            shutil.rmtree(self.data, ignore_errors=True)
        if self.own_disk:
            done = subprocess.run(["umount", str(self.disk)], capture_output=True, text=True)
            if done.returncode != 0:
                # Busy (a process still inside): detach it now, the kernel frees it when idle.
                done = subprocess.run(["umount", "--lazy", str(self.disk)], capture_output=True,
                                      text=True)
            if done.returncode != 0:
                raise RuntimeError(f"cannot unmount {self.disk}: {done.stderr.strip()}")
            self.own_disk = False

    def stop(self):
        self.kill()
        if self.proxy is not None:
            self.proxy.kill()
            self.proxy.wait()
            self.proxy = None


def mount_disk(path):
    """A small tmpfs of its own at `path` (root only); False when it cannot be had."""
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "chaos-disk",
                           str(path)], capture_output=True)
    return done.returncode == 0


def disk_free(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class Cluster:
    def __init__(self, workdir, port, env_extra=None, net=None, own_disks=True):
        self.port = port
        self._admin = None
        env = dict(os.environ)
        env.update(env_extra or {})
        env.setdefault("RUST_LOG", "info")
        self.net = net or Loopback(port)
        voters = ",".join(f"{n}@{self.net.host(n)}:{port + 10}" for n in (1, 2, 3))
        self.nodes = {n: Node(n, port, voters, Path(workdir), env, self.net, own_disks)
                      for n in (1, 2, 3)}

    @property
    def own_disks(self):
        """Whether every node has a disk of its own to fill (the `disk-full` fault)."""
        return all(n.own_disk for n in self.nodes.values())

    @property
    def bootstrap(self):
        return ",".join(f"{self.net.advertised(n)}:{self.port}" for n in self.nodes)

    def start(self):
        self.net.setup()
        for node in self.nodes.values():
            node.start_proxy()
            node.start()
        self.wait_for(lambda: len(self.brokers()) == 3, 60, "3 brokers registered")

    def stop(self):
        # The admin client first: a librdkafka handle reconnects for as long as it lives.
        self._admin = None
        for node in self.nodes.values():
            node.stop()
        self.net.teardown()

    def admin(self):
        """One admin client for the harness's own look-ups (kept: a dropped client's
        requests die with it)."""
        if self._admin is None:
            self._admin = AdminClient({"bootstrap.servers": self.bootstrap,
                                       "socket.timeout.ms": 5000, "log_level": 3})
        return self._admin

    def metadata(self, topic=None):
        try:
            return self.admin().list_topics(topic=topic, timeout=5)
        except Exception:
            return None

    def brokers(self):
        md = self.metadata()
        return sorted(md.brokers) if md else []

    def leaders(self, topic):
        """{partition: (leader node or None, isr nodes)} from Metadata, or {} when unreachable."""
        md = self.metadata(topic)
        if md is None or topic not in md.topics or md.topics[topic].error is not None:
            return {}
        out = {}
        for p, pm in md.topics[topic].partitions.items():
            leader = pm.leader // 1000 if pm.leader >= 0 else None
            out[p] = (leader, sorted(b // 1000 for b in pm.isrs))
        return out

    def healthy(self, topics):
        """Every node runs, unpaused, registered, and every partition of `topics` has a leader
        and all three replicas in sync."""
        if not all(n.running() and not n.paused for n in self.nodes.values()):
            return False
        if len(self.brokers()) != 3:
            return False
        for topic in topics:
            parts = self.leaders(topic)
            if not parts or any(l is None or isr != [1, 2, 3] for l, isr in parts.values()):
                return False
        return True

    def isr_report(self, topics):
        """{"topic/partition": [leader node, isr nodes]} for the partitions not whole, and
        the nodes not running or paused: what the history notes when healing takes too long."""
        out = {f"node{n.n}": "paused" if n.paused else "down"
               for n in self.nodes.values() if not n.running() or n.paused}
        for topic in topics:
            for p, (leader, isr) in sorted(self.leaders(topic).items()):
                if leader is None or isr != [1, 2, 3]:
                    out[f"{topic}/{p}"] = [leader, isr]
        return out

    def wait_for(self, check, within, what):
        deadline = time.time() + within
        while time.time() < deadline:
            try:
                if check():
                    return
            except Exception:
                pass
            time.sleep(0.25)
        raise TimeoutError(f"{what} did not happen within {within}s")

"""Where the nodes live on the network, and the faults made with nftables.

`Namespaces` (the default when run as root and `ip netns` works): node n runs in its own
network namespace `chaos<B>-n`, joined to the others by a veth pair on a bridge `chbr<B>` in
the root namespace (B: the run's port base / 100, so concurrent runs on other ports do not
meet). Inside, eth0 holds 10.<B>.0.n (the node binds it) and 10.<B>.1.n (its proxy listens
there; the node advertises it). The harness's clients sit in the root namespace on the
bridge's 10.<B>.0.254/16. Faults are nftables rules in a node's namespace: a drop of the
packets to and from chosen peers (partitions) or of a random share of all its packets (loss).
Installs `iproute2` and `nftables` with apt-get when missing; removes everything it created,
also leftovers of an earlier run on the same base.

`Loopback` (the fallback): nodes on 127.0.0.n, proxies on 127.0.1.n, no nftables faults.
"""
import atexit
import os
import shutil
import subprocess

TABLE = "chaos"


def sh(*args, check=True):
    return subprocess.run(list(args), check=check, capture_output=True, text=True)


class Loopback:
    kind = "loopback"

    def __init__(self, base):
        pass

    def host(self, n):
        return f"127.0.0.{n}"

    def advertised(self, n):
        return f"127.0.1.{n}"

    def prefix(self, n):
        return []

    def setup(self):
        pass

    def teardown(self):
        pass

    def cut(self, n, peers):
        raise NotImplementedError("partitions need network namespaces")

    def loss(self, n, percent):
        raise NotImplementedError("packet loss needs network namespaces")

    def heal(self, n):
        pass


# The networks fenced off by this process (see `Namespaces.fence_off`).
FENCED = set()


class Namespaces:
    kind = "netns"

    def __init__(self, base):
        self.b = base // 100 % 250
        self.bridge = f"chbr{self.b}"

    def ns(self, n):
        return f"chaos{self.b}-{n}"

    def host(self, n):
        return f"10.{self.b}.0.{n}"

    def advertised(self, n):
        return f"10.{self.b}.1.{n}"

    def prefix(self, n):
        return ["ip", "netns", "exec", self.ns(n)]

    def setup(self):
        ensure_tools()
        self.teardown()
        self.fence_off()
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"10.{self.b}.0.254/16", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        for n in (1, 2, 3):
            ns, veth = self.ns(n), f"chv{self.b}-{n}"
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "link", "set", veth, "master", self.bridge)
            sh("ip", "link", "set", veth, "up")
            inside = ["ip", "netns", "exec", ns]
            sh(*inside, "ip", "link", "set", "lo", "up")
            sh(*inside, "ip", "addr", "add", f"{self.host(n)}/16", "dev", "eth0")
            sh(*inside, "ip", "addr", "add", f"{self.advertised(n)}/16", "dev", "eth0")
            sh(*inside, "ip", "link", "set", "eth0", "up")
            self.heal(n)

    def fence_off(self):
        """Keeps the run's addresses on this machine: an `unreachable` route for 10.B/16 below
        the bridge's own (a higher metric), so once the bridge is gone a client that outlived
        the run (librdkafka reconnects for as long as its handle lives) gets EHOSTUNREACH
        instead of its packets taking the default route off the machine. Removed when the
        process exits, after every client in it."""
        net = f"10.{self.b}.0.0/16"
        sh("ip", "route", "replace", "unreachable", net, "metric", "4242")
        if net not in FENCED:
            FENCED.add(net)
            atexit.register(sh, "ip", "route", "del", "unreachable", net, "metric", "4242",
                            check=False)

    def teardown(self):
        for n in (1, 2, 3):
            sh("ip", "netns", "del", self.ns(n), check=False)  # takes its veth end along
            sh("ip", "link", "del", f"chv{self.b}-{n}", check=False)
        sh("ip", "link", "del", self.bridge, check=False)

    def nft(self, n, script):
        subprocess.run(self.prefix(n) + ["nft", "-f", "-"], input=script, text=True,
                       check=True, capture_output=True)

    def heal(self, n):
        """An empty table: every packet passes."""
        self.nft(n, f"table inet {TABLE}\ndelete table inet {TABLE}\n"
                    f"table inet {TABLE} {{\n"
                    " chain in { type filter hook input priority 0; policy accept; }\n"
                    " chain out { type filter hook output priority 0; policy accept; }\n}\n")

    def cut(self, n, peers):
        """Node n drops every packet to or from the nodes `peers` (both of their addresses)."""
        addrs = ", ".join(a for m in peers for a in (self.host(m), self.advertised(m)))
        self.nft(n, f"add rule inet {TABLE} in ip saddr {{ {addrs} }} drop\n"
                    f"add rule inet {TABLE} out ip daddr {{ {addrs} }} drop\n")

    def loss(self, n, percent):
        """Node n drops `percent`% of the packets it receives or sends on eth0, at random."""
        self.nft(n, f'add rule inet {TABLE} in iifname "eth0" numgen random mod 100 < '
                    f"{percent} drop\n"
                    f'add rule inet {TABLE} out oifname "eth0" numgen random mod 100 < '
                    f"{percent} drop\n")


def ensure_tools():
    missing = [p for p, tool in (("iproute2", "ip"), ("nftables", "nft"))
               if shutil.which(tool) is None]
    if missing:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


def namespaces_work():
    """Root, and a namespace can be made (a container may forbid it)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    probe = f"chaos-probe-{os.getpid()}"
    ok = sh("ip", "netns", "add", probe, check=False).returncode == 0
    sh("ip", "netns", "del", probe, check=False)
    return ok


def choose(mode, base):
    if mode == "auto":
        mode = "netns" if namespaces_work() else "loopback"
    return Namespaces(base) if mode == "netns" else Loopback(base)

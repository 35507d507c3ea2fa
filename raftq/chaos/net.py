"""The network the nodes talk over, and the faults put into it.

Two implementations behind one interface:

- ``NetnsNetwork`` (root on Linux with ``ip`` and a firewall tool): every node
  lives in its own network namespace with its own address on a bridge; the
  harness stays in the root namespace and reaches every node through the
  bridge. Partitions are DROP rules inside the namespaces (all traffic between
  the two addresses, both directions); loss is a random-drop rule on one link.
  The rule set of every namespace is replaced as a whole on each change
  (``iptables-restore`` or ``nft -f``), so healing can never leave a rule behind.
- ``ProxyNetwork`` (anywhere): nodes on loopback, each raft link through a
  ``FaultProxy`` route. PySyncObj opens one connection per pair, from the node
  whose address sorts higher, and identifies it by the sender's own address; so
  the higher node is given the proxy's address for the lower one, and the lower
  node the real address of the higher one (which it never dials).

Faults are described as a desired state (``Faults``): blocked links and lossy
links. ``apply`` makes the network match it; ``Faults()`` heals everything.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Protocol

from raftq.chaos.proxy import FaultProxy, Link

RAFT_PORT_NETNS = 17300
HTTP_PORT_NETNS = 18300
PROXY_PORT_BASE_ENV = "RAFTQ_CHAOS_PORT_BASE"
"""Proxy mode's ports (loopback, so shared with everyone on the machine): proxy
routes base+ij, real raft ports base+91.., HTTP base+191..; default 17300."""


def link(a: str, b: str) -> Link:
    return frozenset((a, b))


@dataclass
class Faults:
    blocked: set[Link] = field(default_factory=set)
    loss: dict[Link, float] = field(default_factory=dict)


def partition(groups: list[set[str]]) -> set[Link]:
    """Block every pair of nodes that shares no group (a node in two groups bridges them)."""
    nodes = sorted(set().union(*groups))
    return {
        link(a, b) for a, b in itertools.combinations(nodes, 2)
        if not any(a in g and b in g for g in groups)
    }


class Network(Protocol):
    mode: str
    node_ids: list[str]

    def setup(self) -> None: ...
    def teardown(self) -> None: ...
    def raft_address(self, node_id: str) -> str: ...
    def peer_raft_address(self, viewer: str, peer: str) -> str: ...
    def http_address(self, node_id: str) -> str: ...
    def command_prefix(self, node_id: str) -> list[str]: ...
    def apply(self, faults: Faults) -> None: ...


def netns_available() -> str | None:
    """Why the netns mode cannot run here, or ``None`` when it can."""
    if os.geteuid() != 0:
        return "not root"
    if shutil.which("ip") is None:
        return "no ip(8)"
    if not any(shutil.which(t) for t in ("iptables-restore", "iptables-legacy-restore", "nft")):
        return "no iptables or nft"
    probe = f"rqprobe{os.getpid()}"
    try:  # root in a container may still lack the capability
        _run("ip", "netns", "add", probe)
    except (OSError, subprocess.CalledProcessError):
        return "cannot create network namespaces"
    try:
        _run("ip", "netns", "del", probe)
    except (OSError, subprocess.CalledProcessError):
        pass
    return None


def _run(*args: str, input_text: str | None = None) -> None:
    subprocess.run(args, check=True, capture_output=True, text=True, input=input_text)


class NetnsNetwork:
    """One namespace per node on a private bridge; faults are firewall rules."""

    mode = "netns"

    def __init__(self, node_ids: list[str], tag: str) -> None:
        self.node_ids = node_ids
        self.tag = tag  # short, so interface names stay under 15 characters
        self.bridge = f"{tag}br"
        self.subnet = self._free_subnet()
        self._backend: list[str] | None = None

    @staticmethod
    def _free_subnet() -> str:
        used = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
        for k in range(77, 250):
            if f" 10.{k}." not in used:
                return f"10.{k}.0"
        raise RuntimeError("no free 10.x.0.0/24 subnet for the chaos bridge")

    def ns(self, node_id: str) -> str:
        return f"{self.tag}{node_id}"

    def ip(self, node_id: str) -> str:
        return f"{self.subnet}.{self.node_ids.index(node_id) + 1}"

    def setup(self) -> None:
        _run("ip", "link", "add", self.bridge, "type", "bridge")
        _run("ip", "addr", "add", f"{self.subnet}.254/24", "dev", self.bridge)
        _run("ip", "link", "set", self.bridge, "up")
        for i, node in enumerate(self.node_ids, start=1):
            ns, outer, inner = self.ns(node), f"{self.tag}v{i}", f"{self.tag}p{i}"
            _run("ip", "netns", "add", ns)
            _run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
            _run("ip", "link", "set", inner, "netns", ns)
            _run("ip", "link", "set", outer, "master", self.bridge, "up")
            inside = ("ip", "netns", "exec", ns, "ip")
            _run(*inside, "link", "set", "lo", "up")
            _run(*inside, "link", "set", inner, "name", "eth0")
            _run(*inside, "addr", "add", f"{self.ip(node)}/24", "dev", "eth0")
            _run(*inside, "link", "set", "eth0", "up")
        self._backend = self._probe_backend()
        self.apply(Faults())

    def _probe_backend(self) -> list[str]:
        ns = self.ns(self.node_ids[0])
        for tool in ("iptables-restore", "iptables-legacy-restore", "nft"):
            if shutil.which(tool) is None:
                continue
            args = [tool, "-f", "-"] if tool == "nft" else [tool]
            try:
                _run("ip", "netns", "exec", ns, *args,
                     input_text=self._ruleset(tool, [], []))
            except subprocess.CalledProcessError:
                continue
            return args
        raise RuntimeError("neither iptables nor nft works inside a namespace")

    def teardown(self) -> None:
        for node in self.node_ids:
            with contextlib.suppress(subprocess.CalledProcessError):
                _run("ip", "netns", "del", self.ns(node))
        with contextlib.suppress(subprocess.CalledProcessError):
            _run("ip", "link", "del", self.bridge)

    def raft_address(self, node_id: str) -> str:
        return f"{self.ip(node_id)}:{RAFT_PORT_NETNS}"

    def peer_raft_address(self, viewer: str, peer: str) -> str:
        return self.raft_address(peer)

    def http_address(self, node_id: str) -> str:
        return f"{self.ip(node_id)}:{HTTP_PORT_NETNS}"

    def command_prefix(self, node_id: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns(node_id)]

    def apply(self, faults: Faults) -> None:
        assert self._backend is not None, "setup() first"
        tool = self._backend[0]
        for node in self.node_ids:
            drops, losses = [], []
            for other in self.node_ids:
                if other == node:
                    continue
                pair = link(node, other)
                if pair in faults.blocked:
                    drops.append(self.ip(other))
                elif faults.loss.get(pair):
                    losses.append((self.ip(other), faults.loss[pair]))
            _run(*self.command_prefix(node), *self._backend,
                 input_text=self._ruleset(tool, drops, losses))

    @staticmethod
    def _ruleset(tool: str, drops: list[str], losses: list[tuple[str, float]]) -> str:
        """A whole filter table: drop to and from ``drops``, randomly drop from ``losses``."""
        if tool == "nft":
            rules = [f"ip saddr {ip} drop" for ip in drops]
            rules += [f"ip saddr {ip} numgen random mod 1000 < {int(p * 1000)} drop"
                      for ip, p in losses]
            out_rules = [f"ip daddr {ip} drop" for ip in drops]
            return (
                "flush ruleset\n"
                "table inet chaos {\n"
                "  chain input { type filter hook input priority 0; policy accept;\n"
                + "".join(f"    {r}\n" for r in rules) + "  }\n"
                "  chain output { type filter hook output priority 0; policy accept;\n"
                + "".join(f"    {r}\n" for r in out_rules) + "  }\n"
                "}\n"
            )
        lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]",
                 ":OUTPUT ACCEPT [0:0]"]
        for ip in drops:
            lines += [f"-A INPUT -s {ip} -j DROP", f"-A OUTPUT -d {ip} -j DROP"]
        for ip, p in losses:
            lines.append(f"-A INPUT -s {ip} -m statistic --mode random --probability {p} -j DROP")
        lines.append("COMMIT")
        return "\n".join(lines) + "\n"


class ProxyNetwork:
    """Nodes on loopback; every raft link goes through the harness's fault proxy."""

    mode = "proxy"

    def __init__(self, node_ids: list[str], seed: int = 0, port_base: int | None = None) -> None:
        self.node_ids = node_ids
        self._seed = seed
        self._proxy: FaultProxy | None = None
        self.port_base = port_base if port_base is not None else int(
            os.environ.get(PROXY_PORT_BASE_ENV, "17300"))
        self._raft_base = self.port_base + 90  # above every proxy port base+ij
        self._http_base = self.port_base + 190

    def _index(self, node_id: str) -> int:
        return self.node_ids.index(node_id) + 1

    def setup(self) -> None:
        self._proxy = FaultProxy(self._seed)
        for hi, lo in itertools.combinations(reversed(self.node_ids), 2):
            self._proxy.add_route(
                "127.0.0.1", self._proxy_port(hi, lo), self._raft_base + self._index(lo),
                link(hi, lo),
            )

    def _proxy_port(self, dialer: str, target: str) -> int:
        return self.port_base + 10 * self._index(dialer) + self._index(target)

    def teardown(self) -> None:
        if self._proxy is not None:
            self._proxy.close()
            self._proxy = None

    def raft_address(self, node_id: str) -> str:
        return f"127.0.0.1:{self._raft_base + self._index(node_id)}"

    def peer_raft_address(self, viewer: str, peer: str) -> str:
        if self._index(viewer) > self._index(peer):  # the viewer dials: through the proxy
            return f"127.0.0.1:{self._proxy_port(viewer, peer)}"
        return self.raft_address(peer)

    def http_address(self, node_id: str) -> str:
        return f"127.0.0.1:{self._http_base + self._index(node_id)}"

    def command_prefix(self, node_id: str) -> list[str]:
        return []

    def apply(self, faults: Faults) -> None:
        assert self._proxy is not None, "setup() first"
        self._proxy.set_faults(set(faults.blocked), dict(faults.loss))


def cleanup_stale(prefix: str = "rqc") -> list[str]:
    """Delete namespaces and links left by a harness that died; returns their names."""
    removed: list[str] = []
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.startswith(prefix):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            removed.append(name)
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(prefix):
            subprocess.run(["ip", "link", "del", name], capture_output=True)
            removed.append(name)
    return removed

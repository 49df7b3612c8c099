"""A private network of Linux network namespaces for fault tests: one per node, a bridge, partitions.

Layout (``Lab.create(n)``)::

    root namespace: veth <prefix>h  10.<a>.<b>.1/24   (the test process reaches every node through it)
    <prefix>hub:    bridge br0 with the hub ends of every veth (the test's is "uplink")
    <prefix>n<i>:   lo up, veth eth0  10.<a>.<b>.<11+i>/24   (node i's CometBFT and app run here)

A partition is a set of blackhole routes inside the node namespaces: a node
drops every packet to the nodes on the other side (TCP retransmits, as on a
cut cable), while the test's own address stays reachable from everyone.
Nothing is added to the root namespace but the one veth (and its /24 route);
``Lab.destroy`` removes it with the namespaces, also after a failed test.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field


class NetnsUnavailable(Exception):
    """The kernel (or the missing ``ip`` tool, or missing privileges) refuses network namespaces."""


def ip(*args: str, namespace: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = ["ip", *(["-n", namespace] if namespace else []), *args]
    result = subprocess.run(argv, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip()}")
    return result


def probe() -> None:
    """Raise ``NetnsUnavailable`` with the reason unless namespaces can be created here."""
    if shutil.which("ip") is None:
        raise NetnsUnavailable("the `ip` tool (iproute2) is not installed")
    if os.geteuid() != 0:
        raise NetnsUnavailable("network namespaces need root")
    name = f"glprobe{secrets.token_hex(3)}"
    result = ip("netns", "add", name, check=False)
    if result.returncode != 0:
        raise NetnsUnavailable(f"`ip netns add` failed: {result.stderr.strip()}")
    ip("netns", "del", name, check=False)


def _free_subnet() -> ipaddress.IPv4Network:
    """A 10.x.y.0/24 that no route of the root namespace covers or is covered by."""
    routes = ip("-4", "route", "show", "table", "all").stdout.split("\n")
    used = []
    for line in routes:
        word = line.split(" ", 1)[0]
        if word and word[0].isdigit():
            used.append(ipaddress.ip_network(word, strict=False))
    for _ in range(200):
        candidate = ipaddress.ip_network(f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(256)}.0/24")
        if not any(candidate.overlaps(net) for net in used):
            return candidate
    raise RuntimeError("no free 10.x.y.0/24 subnet for the test network")


@dataclass
class Lab:
    prefix: str
    subnet: ipaddress.IPv4Network
    size: int
    blackholes: set[tuple[int, int]] = field(default_factory=set)
    _created: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, size: int) -> Lab:
        lab = cls(prefix=f"gl{secrets.token_hex(2)}", subnet=_free_subnet(), size=size)
        try:
            lab._build()
        except BaseException:
            lab.destroy()
            raise
        return lab

    @property
    def hub(self) -> str:
        return f"{self.prefix}hub"

    def namespace(self, index: int) -> str:
        return f"{self.prefix}n{index}"

    def address(self, index: int) -> str:
        return str(self.subnet.network_address + 11 + index)

    @property
    def host_address(self) -> str:
        return str(self.subnet.network_address + 1)

    @property
    def host_link(self) -> str:
        return f"{self.prefix}h"

    def exec_prefix(self, index: int) -> list[str]:
        """Prepend to a command line to run it inside node ``index``'s namespace."""
        return ["ip", "netns", "exec", self.namespace(index)]

    def _add_namespace(self, name: str) -> None:
        ip("netns", "add", name)
        self._created.append(name)
        ip("link", "set", "lo", "up", namespace=name)

    def _build(self) -> None:
        prefix_len = str(self.subnet.prefixlen)
        self._add_namespace(self.hub)
        ip("link", "add", "br0", "type", "bridge", namespace=self.hub)
        ip("link", "set", "br0", "up", namespace=self.hub)
        # The test process's own leg: created in the root namespace, its peer moved into the hub.
        ip("link", "add", self.host_link, "type", "veth", "peer", "name", "uplink", "netns", self.hub)
        ip("addr", "add", f"{self.host_address}/{prefix_len}", "dev", self.host_link)
        ip("link", "set", self.host_link, "up")
        ip("link", "set", "dev", "uplink", "master", "br0", "up", namespace=self.hub)
        for index in range(self.size):
            name = self.namespace(index)
            self._add_namespace(name)
            port = f"n{index}"
            ip("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", name, namespace=self.hub)
            ip("link", "set", "dev", port, "master", "br0", "up", namespace=self.hub)
            ip("addr", "add", f"{self.address(index)}/{prefix_len}", "dev", "eth0", namespace=name)
            ip("link", "set", "eth0", "up", namespace=name)

    # -- partitions ---------------------------------------------------------------------
    def partition(self, groups: Sequence[Sequence[int]]) -> None:
        """Cut every pair of nodes in different groups, both directions (nodes in no group keep all links)."""
        for group in groups:
            for other in groups:
                if other is group:
                    continue
                for source in group:
                    for target in other:
                        if (source, target) not in self.blackholes:
                            ip("route", "add", "blackhole", f"{self.address(target)}/32",
                               namespace=self.namespace(source))
                            self.blackholes.add((source, target))

    def heal(self) -> None:
        for source, target in sorted(self.blackholes):
            ip("route", "del", "blackhole", f"{self.address(target)}/32", namespace=self.namespace(source),
               check=False)
        self.blackholes.clear()

    # -- teardown -----------------------------------------------------------------------
    def destroy(self) -> list[str]:
        """Delete the namespaces and the root veth; returns what could not be removed (should be empty)."""
        problems = []
        ip("link", "del", self.host_link, check=False)
        for name in reversed(self._created):
            result = ip("netns", "del", name, check=False)
            if result.returncode != 0:
                problems.append(f"{name}: {result.stderr.strip()}")
        self._created.clear()
        left = ip("netns", "list").stdout
        problems += [line for line in left.splitlines() if line.startswith(self.prefix)]
        return problems

"""The one port allocator of local networks: a block of ports per node, free on loopback right now.

Every node of a local network gets one port block (``cometbft.Ports``: base +5
app metrics, +6 p2p, +7 RPC, +8 ABCI, +9 CometBFT metrics, +4 libp2p), node
``i`` at ``base + PORT_STRIDE * i``. A caller names the base (the testnet's
``--base-port``, the demo's standard ports) or asks for a free one. Free bases
are drawn below Linux's ephemeral range (32768+), which outgoing connections
could take between this check and the nodes' start.
"""

from __future__ import annotations

import random
import socket

from node import cometbft

LOW, HIGH = 20000, 32000


class NoFreePorts(Exception):
    """No free block of the size asked for was found."""


def port_blocks(count: int, base: int | None = None) -> list[cometbft.Ports]:
    """``count`` consecutive port blocks from ``base``, or from a base free right now when ``base`` is None.

    ValueError if a block would leave the port range.
    """
    return [cometbft.Ports.from_base(first) for first in block_bases(count, base)]


def block_bases(count: int, base: int | None = None) -> list[int]:
    """The first port of each of ``count`` consecutive blocks (as ``port_blocks``)."""
    first = free_base_port(count) if base is None else base
    return [first + cometbft.PORT_STRIDE * index for index in range(count)]


def free_base_port(nodes: int, low: int = LOW, high: int = HIGH) -> int:
    """A base port whose whole range (``nodes`` x PORT_STRIDE ports) is free on loopback right now."""
    rng = random.Random()
    span = nodes * cometbft.PORT_STRIDE
    for _ in range(200):
        base = rng.randrange(low, high - span, cometbft.PORT_STRIDE)
        if all(port_free(port) for port in range(base, base + span)):
            return base
    raise NoFreePorts(f"no free block of {span} ports found between {low} and {high}")


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """One TCP port free on loopback right now (the kernel's choice), for a single ad-hoc server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port

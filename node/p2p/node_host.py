"""The libp2p host of a validator node: its settings in the node home, and how the supervisor runs it.

A node home enables the host by holding ``p2p.toml`` (written by ``node init``
or ``testnet init``); the identity ``p2p_identity.key`` and the control socket
``control.sock`` live next to it, so ``gridledger p2p status --home <node home>``
reaches the running host. The supervisor then runs, after the app and CometBFT::

    gridledger p2p listen --home <node home> --publish-feed --node <the node's RPC> --wait-node 120

``p2p.toml`` is the file ``p2p listen`` reads (docs/p2p.md):

    chain_id = "gridledger-testnet"
    zones = ["north-1", "north-2"]                 # a DSO's zones; an LPD: every zone of the chain
    listen = ["/ip4/127.0.0.1/tcp/26654"]          # port: the node's port block + 4
    bootstrap = ["/ip4/127.0.0.1/tcp/26664/p2p/12D3KooW..."]
    trusted_publishers = ["<64 hex>", ...]         # the validators' p2p public keys
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit

from abci_app.ledger.crypto import SigningKey

CONFIG_FILE = "p2p.toml"
# The libp2p port sits in the node's port block (docs/operators.md, Ports): base + 4,
# next to app metrics +5, CometBFT p2p +6, RPC +7, ABCI +8, CometBFT metrics +9.
PORT_OFFSET = 4
# How long the host waits for the node's RPC to answer after CometBFT started (a replaying node is slow).
WAIT_NODE_S = 120


@dataclass(frozen=True)
class Identity:
    """What other peers need to know about a node's libp2p host."""

    peer_id: str
    pubkey: str
    """Hex Ed25519 public key: the feed publisher key participants trust."""


def port_of(base_port: int) -> int:
    return base_port + PORT_OFFSET


def multiaddr(host: str, port: int, peer_id: str | None = None) -> str:
    """``/ip4/HOST/tcp/PORT[/p2p/ID]``; a name that is not an IPv4 address becomes ``/dns4/NAME``."""
    parts = host.split(".")
    is_ipv4 = len(parts) == 4 and all(part.isdigit() and int(part) < 256 for part in parts)
    addr = f"/{'ip4' if is_ipv4 else 'dns4'}/{host}/tcp/{port}"
    return f"{addr}/p2p/{peer_id}" if peer_id else addr


# node.p2p.host loads py-libp2p (most of a command's start-up time): imported by what needs a peer id only,
# so the supervisor, and every CLI command that imports it, start without it.
def create_identity(home: Path) -> Identity:
    """The node's p2p identity (created in ``home`` with mode 0600 unless it exists)."""
    from node.p2p.host import IDENTITY_FILE, load_or_create_identity

    return identity_of(load_or_create_identity(home / IDENTITY_FILE))


def identity_of(key: SigningKey) -> Identity:
    from node.p2p.host import peer_id_of

    return Identity(peer_id=str(peer_id_of(key)), pubkey=key.pubkey.hex())


def enabled(home: Path) -> bool:
    return (home / CONFIG_FILE).is_file()


def write_config(home: Path, *, chain_id: str, zones: Sequence[str], listen: Sequence[str],
                 bootstrap: Iterable[str] = (), trusted_publishers: Iterable[str] = ()) -> None:
    """Write ``<home>/p2p.toml``; its presence makes the supervisor run the host."""
    if not zones:
        raise ValueError("the libp2p host needs at least one zone")
    doc = tomlkit.document()
    doc.add(tomlkit.comment("libp2p host of this node (docs/p2p.md); `gridledger node start` runs it"))
    doc["chain_id"] = chain_id
    doc["zones"] = sorted(set(zones))
    doc["listen"] = list(listen)
    doc["bootstrap"] = list(bootstrap)
    doc["trusted_publishers"] = sorted(set(trusted_publishers))
    (home / CONFIG_FILE).write_text(tomlkit.dumps(doc))


def read_config(home: Path) -> dict[str, Any]:
    path = home / CONFIG_FILE
    return tomllib.loads(path.read_text()) if path.is_file() else {}


def listen_port(home: Path) -> int | None:
    """The TCP port of the host's first listen address, if configured."""
    for addr in read_config(home).get("listen", ()):
        parts = str(addr).split("/")
        if "tcp" in parts:
            return int(parts[parts.index("tcp") + 1])
    return None


def listen_argv(home: Path, rpc_url: str) -> list[str]:
    """The supervised host: a validator publishes the market feed of its own node."""
    return [sys.executable, "-m", "cli.main", "p2p", "listen", "--home", str(home), "--publish-feed",
            "--node", rpc_url, "--wait-node", str(WAIT_NODE_S)]

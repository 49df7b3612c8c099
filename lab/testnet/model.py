"""A testnet directory and its testnet.json: the nodes, their homes, ports and addresses."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from node import cometbft

TESTNET_PASSPHRASE = "testnet"
METADATA = "testnet.json"

# In a --docker testnet every node runs in its own container with the standard ports.
DOCKER_IMAGE_HOME = "/data"
DOCKER_PORTS = cometbft.Ports.from_base(cometbft.DEFAULT_BASE_PORT)
# Where docker-compose.yml expects the homes (relative to the repository root).
DOCKER_OUT = Path(".gridledger/testnet-docker")
DEFAULT_OUT = Path(".gridledger/testnet")


class TestnetError(Exception):
    """A user-facing problem with a roster, a testnet directory or its nodes."""


class NetworkUnhealthy(Exception):
    """A node did not start or does not answer, or the nodes' apps disagree on the state."""

@dataclass(frozen=True)
class NodeInfo:
    """One node of a testnet, as recorded in testnet.json."""

    name: str
    moniker: str
    role: str
    power: int
    home: str
    """Relative to the testnet directory."""
    node_id: str
    consensus_pubkey: str
    ports: dict[str, int]
    rpc_url: str
    """Where this machine reaches the node's RPC (a published port for --docker)."""
    p2p_peer_id: str = ""
    """The libp2p host's peer id; empty when the node runs none."""
    p2p_pubkey: str = ""
    """Hex public key that signs this node's feed snapshots."""
    p2p_port: int = 0
    """The libp2p listen port inside the node's home (in its container for --docker)."""
    p2p_addr: str = ""
    """The multiaddr this machine dials to reach the host (a published port for --docker)."""


@dataclass(frozen=True)
class Testnet:
    directory: Path
    chain_id: str
    docker: bool
    nodes: tuple[NodeInfo, ...]

    def home(self, node: NodeInfo) -> Path:
        return self.directory / node.home

    @property
    def keyring(self) -> Path:
        return self.directory / "keyring"

    def select(self, names: Sequence[str] | None) -> list[NodeInfo]:
        """Nodes by name (node0) or moniker (dso-north); all when ``names`` is empty."""
        if not names:
            return list(self.nodes)
        chosen = []
        for name in names:
            node = next((n for n in self.nodes if name in (n.name, n.moniker)), None)
            if node is None:
                known = ", ".join(f"{n.name} ({n.moniker})" for n in self.nodes)
                raise TestnetError(f"no node {name!r} in {self.directory}; nodes: {known}")
            chosen.append(node)
        return chosen

    def save(self) -> None:
        doc = {"chain_id": self.chain_id, "docker": self.docker, "keyring": "keyring",
               "passphrase": TESTNET_PASSPHRASE, "nodes": [asdict(node) for node in self.nodes]}
        (self.directory / METADATA).write_text(json.dumps(doc, indent=2) + "\n")


def load_testnet(directory: Path) -> Testnet:
    path = directory / METADATA
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise TestnetError(f"{directory} is not a testnet directory (no {METADATA}; run `testnet init`)") from None
    return Testnet(directory=directory.resolve(), chain_id=doc["chain_id"], docker=doc["docker"],
                   nodes=tuple(NodeInfo(**node) for node in doc["nodes"]))

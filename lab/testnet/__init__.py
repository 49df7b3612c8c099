"""A local multi-validator testnet: roster file -> node homes -> supervised processes.

Layout of a testnet directory (``gridledger testnet init --out DIR``)::

    DIR/testnet.json        what `up`, `down`, `status`, `logs` need (nodes, ports, chain id)
    DIR/genesis.json        the shared genesis (a copy of every home's config/genesis.json)
    DIR/keyring/            encrypted account and meter keys of operators and demo participants
    DIR/node0 .. nodeN-1/   one CometBFT home per validator operator, in roster order
    DIR/nodeK/node.log      output of `gridledger node start` (while up)
    DIR/nodeK/node.pid      the supervisor's pid and start time (while up)

Keys guard a throw-away chain: they are encrypted under the publicly known
passphrase ``testnet`` (TESTNET_PASSPHRASE). Validator and CometBFT node keys
are CometBFT's own (``cometbft init``), unencrypted in each home as usual.

With ``p2p`` (the CLI's default) every home also gets a libp2p host
(``DIR/nodeK/p2p.toml``, ``p2p_identity.key``): listen port = base + 4 of its
port block, zones = its DSO zones (an LPD: every zone of the chain),
bootstrap = the other validators, trusted publishers = every validator's key.
``gridledger node start`` runs it as a third child.
"""

from lab.testnet.create import InitOptions, docker_host_port, init_testnet
from lab.testnet.logs import follow, tail_lines
from lab.testnet.model import (
    DEFAULT_OUT,
    DOCKER_IMAGE_HOME,
    DOCKER_OUT,
    DOCKER_PORTS,
    METADATA,
    TESTNET_PASSPHRASE,
    NetworkUnhealthy,
    NodeInfo,
    Testnet,
    TestnetError,
    load_testnet,
)
from lab.testnet.processes import (
    down,
    log_file,
    p2p_status,
    pid_file,
    process_tree,
    running_supervisor,
    start_command,
    start_node,
    up,
)
from lab.testnet.roster import (
    MeterSpec,
    OperatorSpec,
    ParticipantSpec,
    Roster,
    app_state,
    load_roster,
    parse_roster,
    with_validators,
)
from lab.testnet.status import agreement, app_hash_at, node_report, p2p_peers, p2p_report

__all__ = [
    "DEFAULT_OUT", "DOCKER_IMAGE_HOME", "DOCKER_OUT", "DOCKER_PORTS", "METADATA", "TESTNET_PASSPHRASE", "InitOptions",
    "MeterSpec", "NetworkUnhealthy", "NodeInfo", "OperatorSpec", "ParticipantSpec", "Roster", "Testnet",
    "TestnetError", "agreement", "app_hash_at", "app_state", "docker_host_port", "down", "follow",
    "init_testnet", "load_roster", "load_testnet", "log_file", "node_report", "p2p_peers", "p2p_report",
    "p2p_status", "parse_roster", "pid_file", "process_tree", "running_supervisor", "start_command", "start_node",
    "tail_lines", "up", "with_validators",
]

"""A throw-away network of N validators on 127.0.0.1 for load experiments.

Both applications of a comparison are set up by the same code: a
``LocalNetwork`` (lab/network.py) of N validator homes with one shared
genesis, every node with a free port block (lab/ports.py), the full list of
its peers, the block settings under test, the throughput settings
(``THROUGHPUT_SETTINGS`` merged with the preset's ``[cometbft]`` overrides)
and, for gridledger, the load ``app_state``. Only the application differs:
gridledger nodes run under ``node.supervisor`` (app process + CometBFT),
kvstore nodes are a bare ``cometbft start --proxy_app kvstore``.
``applied_settings`` reads the values back from every node's config.toml, so
a report can show that both chains ran with the same ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lab.kvstore import KvstoreNode
from lab.network import LocalNetwork, Member, merge
from lab.ports import port_blocks
from node import cometbft
from node.rpc import CometRpc, NodeUnreachable, RpcError
from node.supervisor import NodeSpec, Supervisor

APPS = ("gridledger", "kvstore")
READY_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Setting:
    """One config.toml value chosen for throughput experiments, and why."""

    section: str
    key: str
    value: Any
    why: str

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}" if self.section else self.key


# CometBFT options for throughput experiments, applied identically to gridledger
# and kvstore. A preset may override any of them (and add others) in [cometbft].
THROUGHPUT_SETTINGS = (
    Setting("", "log_level", "error", "info logs a line per RPC request and per block step: CPU the nodes need"),
    Setting("tx_index", "indexer", "null", "no tx indexing: the generator sees commits in NewBlock events"),
    Setting("mempool", "size", 5000, "CometBFT's default; bounds the backlog past saturation, so a rate's "
            "leftovers drain within the settle timeout"),
    Setting("mempool", "cache_size", 20000, "above the mempool size: the cache only filters re-sent "
            "duplicates (every load tx is unique)"),
    Setting("mempool", "recheck", True, "CometBFT's default, kept on: the app's recheck cost is part of what "
            "is measured"),
    Setting("p2p", "flush_throttle_timeout", "10ms", "default 100ms delays tx and block-part gossip between "
            "nodes on loopback"),
    Setting("p2p", "send_rate", 20_480_000, "20 MB/s instead of 5 MB/s: block parts and gossiped txs never "
            "wait for the rate limiter"),
    Setting("p2p", "recv_rate", 20_480_000, "as send_rate"),
    Setting("consensus", "create_empty_blocks", True, "blocks keep coming at timeout_commit without load, so "
            "every run starts from the same rhythm"),
    Setting("consensus", "create_empty_blocks_interval", "0s", "no extra wait for empty blocks"),
    Setting("instrumentation", "prometheus", False, "no metrics server: nothing scrapes it during experiments"),
    Setting("rpc", "pprof_laddr", "", "no profiler endpoint"),
)


def throughput_settings(overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """THROUGHPUT_SETTINGS as config.toml sections, with a preset's overrides on top."""
    sections: dict[str, dict[str, Any]] = {}
    for setting in THROUGHPUT_SETTINGS:
        sections.setdefault(setting.section, {})[setting.key] = setting.value
    for section, values in (overrides or {}).items():
        sections.setdefault(section, {}).update(values)
    return sections


def applied_settings(home: Path, chosen: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The values of the ``chosen`` keys as one node's config.toml holds them (``section.key`` -> value)."""
    config = cometbft.read_config(home)
    values: dict[str, Any] = {}
    for section, keys in chosen.items():
        table = config if section == "" else config.get(section, {})
        for key in keys:
            values[f"{section}.{key}" if section else key] = table.get(key)
    return dict(sorted(values.items()))


@dataclass(frozen=True)
class ClusterSpec:
    app: str
    validators: int
    timeout_commit: str
    chain_id: str = "gridledger-bench"
    app_state: dict[str, Any] | None = None
    extra_config: dict[str, dict[str, Any]] = field(default_factory=throughput_settings)
    """config.toml settings beyond ports, peers and timeout_commit (default: THROUGHPUT_SETTINGS)."""

    def __post_init__(self) -> None:
        if self.app not in APPS:
            raise ValueError(f"app must be one of {', '.join(APPS)}, not {self.app!r}")
        if self.validators < 1:
            raise ValueError("at least one validator is needed")

    @property
    def log_level(self) -> str:
        return str(self.extra_config.get("", {}).get("log_level", "error"))


def _line_writer(log: IO[str]) -> Callable[[str], None]:
    def write(line: str) -> None:
        log.write(line + "\n")

    return write


class LocalCluster:
    """Init, start, wait for, and stop N local validators (a context manager)."""

    def __init__(self, spec: ClusterSpec, workdir: Path) -> None:
        self.spec = spec
        self.workdir = workdir
        self.ports = port_blocks(spec.validators)
        proxy_app = "kvstore" if spec.app == "kvstore" else None
        self.network = LocalNetwork([Member(home=workdir / f"node{i}", moniker=f"node{i}", ports=ports, power=1,
                                            proxy_app=proxy_app) for i, ports in enumerate(self.ports)],
                                    cometbft.Timing(timeout_commit=spec.timeout_commit))
        self.homes = self.network.homes
        self._supervisors: list[Supervisor] = []
        self._kvstores: list[KvstoreNode] = []
        self._logs: list[IO[str]] = []

    @property
    def rpc_urls(self) -> list[str]:
        return [p.rpc_url for p in self.ports]

    def init(self) -> None:
        """Homes, genesis and config.toml: the experiment's settings, then what no preset may override."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        fixed: dict[str, dict[str, Any]] = {"consensus": {"timeout_commit": self.spec.timeout_commit},
                                           "p2p": {"pex": False}}
        self.network.create(self.spec.chain_id, self.spec.app_state or {}, merge(self.spec.extra_config, fixed))

    def applied_settings(self) -> dict[str, Any]:
        """The experiment settings as every node's config.toml holds them; raises if two nodes differ."""
        chosen = self.spec.extra_config
        values = [applied_settings(home, chosen) for home in self.homes]
        if any(v != values[0] for v in values[1:]):
            raise RuntimeError(f"the nodes of {self.workdir} hold different settings: {values}")
        return values[0]

    def start(self) -> None:
        for index, home in enumerate(self.homes):
            ports = self.ports[index]
            rpc, p2p = f"tcp://127.0.0.1:{ports.rpc}", f"tcp://127.0.0.1:{ports.p2p}"
            log_path = self.workdir / f"node{index}.log"
            if self.spec.app == "kvstore":
                node = KvstoreNode(home, rpc, p2p, log_path, self.spec.log_level)
                self._kvstores.append(node)
                node.start()
                continue
            log = log_path.open("a")
            self._logs.append(log)
            supervisor = Supervisor(NodeSpec(home=home, abci_address=f"tcp://127.0.0.1:{ports.abci}",
                                             rpc_laddr=rpc, p2p_laddr=p2p, log_level=self.spec.log_level),
                                    sink=_line_writer(log))
            self._supervisors.append(supervisor)
            supervisor.start()

    def alive(self) -> bool:
        if any(not node.alive() for node in self._kvstores):
            return False
        return all(s.app is not None and s.app.poll() is None and s.comet is not None and s.comet.poll() is None
                   for s in self._supervisors)

    def wait_ready(self, height: int = 2, timeout: float = READY_TIMEOUT_S) -> None:
        """Poll (no event exists for it) until every node has committed ``height``."""
        deadline = time.monotonic() + timeout
        for url in self.rpc_urls:
            rpc = CometRpc(url, timeout=5.0)
            try:
                while True:
                    if not self.alive():
                        raise RuntimeError(f"a node of the cluster exited during start-up (logs in {self.workdir})")
                    try:
                        if rpc.height() >= height:
                            break
                    except (NodeUnreachable, RpcError, KeyError):
                        pass
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{url} did not reach height {height} within {timeout:g}s "
                                           f"(logs in {self.workdir})")
                    time.sleep(0.2)
            finally:
                rpc.close()

    def unconfirmed(self) -> int:
        """Transactions still in the mempools (the largest over all nodes)."""
        counts = []
        for url in self.rpc_urls:
            rpc = CometRpc(url, timeout=5.0)
            try:
                counts.append(int(rpc.call("num_unconfirmed_txs")["total"]))
            except (NodeUnreachable, RpcError):
                counts.append(0)
            finally:
                rpc.close()
        return max(counts, default=0)

    def wait_mempools_empty(self, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.unconfirmed() > 0:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def stop(self) -> None:
        for supervisor in self._supervisors:
            supervisor.shutdown()
        for node in self._kvstores:
            node.stop()
        for log in self._logs:
            log.close()
        self._supervisors, self._kvstores, self._logs = [], [], []

    def __enter__(self) -> LocalCluster:
        self.init()
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_until_stopped(cluster: LocalCluster, stop: Callable[[], bool], on_ready: Callable[[LocalCluster], None],
                      poll_s: float = 0.5) -> bool:
    """Start ``cluster``, call ``on_ready`` once every node committed block 2, then keep it up until ``stop()``.

    Returns False if a node died first (its log is in the cluster's directory), True on a requested stop.
    The cluster is always stopped on the way out.
    """
    with cluster:
        cluster.wait_ready()
        on_ready(cluster)
        while not stop():
            if not cluster.alive():
                return False
            time.sleep(poll_s)  # a stop request is a signal: nothing to wait on but the flag
    return True

"""A real single-validator chain (CometBFT + app, via the node supervisor) for e2e tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab.network import single
from lab.ports import port_blocks
from node.rpc import CometRpc
from node.supervisor import NodeSpec, Supervisor


class LocalNode:
    def __init__(self, home: Path, app_state: dict[str, Any], chain_id: str = "e2e-chain",
                 timeout_commit: str = "200ms") -> None:
        self.home = home
        self.ports = port_blocks(1)[0]
        single(home, chain_id, app_state, self.ports, timeout_commit=timeout_commit)
        self.log: list[str] = []
        self.supervisor: Supervisor | None = None
        self.rpc = CometRpc(self.ports.rpc_url)

    def start(self) -> None:
        spec = NodeSpec(home=self.home, abci_address=f"tcp://127.0.0.1:{self.ports.abci}",
                        rpc_laddr=f"tcp://127.0.0.1:{self.ports.rpc}",
                        p2p_laddr=f"tcp://127.0.0.1:{self.ports.p2p}", log_level="error")
        self.supervisor = Supervisor(spec, sink=self.log.append)
        self.supervisor.start()

    def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.shutdown()
            self.supervisor = None

    def __enter__(self) -> LocalNode:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

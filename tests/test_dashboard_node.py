"""A validator serves the dashboard when its home's gridledger.toml has a [dashboard] block (docs/dashboard.md)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from lab.network import single
from lab.ports import port_blocks
from node import cometbft
from node.supervisor import NodeSpec, Supervisor
from tests.conftest import free_port
from tests.dashboard_browser import wait_until
from tests.harness import Chain

pytestmark = pytest.mark.e2e


def dashboard_status(url: str) -> dict[str, object] | None:
    try:
        answer: dict[str, object] = httpx.get(f"{url}/api/status", timeout=2).json()
        return answer
    except (httpx.HTTPError, ValueError):
        return None


def test_the_supervisor_runs_the_dashboard_of_a_home_and_stops_it_first(tmp_path: Path) -> None:
    home = tmp_path / "node"
    ports = port_blocks(1)[0]
    chain = Chain(chain_id="e2e-dashboard-node")
    assert chain.app_state is not None
    single(home, "e2e-dashboard-node", chain.app_state, ports, timeout_commit="200ms")
    listen = free_port()
    cometbft.write_node_settings(home, {"dashboard": {"listen": f"127.0.0.1:{listen}"}})
    spec = NodeSpec.from_home(home, rpc_laddr=f"tcp://127.0.0.1:{ports.rpc}",
                              p2p_laddr=f"tcp://127.0.0.1:{ports.p2p}")
    assert spec.dashboard and spec.dashboard_argv() is not None
    log: list[str] = []
    supervisor = Supervisor(spec, sink=log.append)
    supervisor.start()
    try:
        url = f"http://127.0.0.1:{listen}"
        # Nothing announces "ready" to this test: poll the page's status with a deadline.
        wait_until(lambda: (dashboard_status(url) or {}).get("connected") is True, 60,
                   "the dashboard following the node")
        status = dashboard_status(url)
        assert status is not None and status["node"] == ports.rpc_url
        assert httpx.get(f"{url}/network", timeout=5).status_code == 200
    finally:
        exits = supervisor.shutdown()
    assert [e.name for e in exits] == ["dashboard", "CometBFT", "ABCI app"]
    assert all(e.clean for e in exits), (exits, "\n".join(log))
    assert any(line.startswith("[dashboard] dashboard: http://127.0.0.1:") for line in log), log


def test_a_home_without_the_block_runs_no_dashboard(tmp_path: Path) -> None:
    home = tmp_path / "node"
    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text('proxy_app = "tcp://127.0.0.1:26658"\n')
    cometbft.write_node_settings(home, {"app_metrics": "127.0.0.1:26655"})
    spec = NodeSpec.from_home(home)
    assert not spec.dashboard and spec.dashboard_argv() is None

"""Four validators on loopback: transactions through different nodes, agreement, one validator down and back.

The roster is config/testnet-4.toml plus a fifth DSO that runs no node at
genesis (the candidate for joining by governance).
"""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from typer.testing import CliRunner

from cli.keystore import Keystore
from cli.main import app
from node import cometbft
from node import testnet as tn
from node.rpc import CometRpc, NodeUnreachable, RpcError

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

ROSTER = cometbft.REPO_ROOT / "config" / "testnet-4.toml"
CANDIDATE = {"name": "dso-east", "role": "dso", "zones": ["east-1"], "power": 10, "validator": False}


def e2e_roster() -> tn.Roster:
    doc = tomllib.loads(ROSTER.read_text())
    doc["operators"].append(dict(CANDIDATE))
    return tn.parse_roster(doc)


def cli(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout) if "json" in args else result


def wait_until(what: str, check: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll ``check`` (an RPC answer has no event to wait on) until true or the deadline."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def height(node: tn.NodeInfo) -> int:
    rpc = CometRpc(node.rpc_url, timeout=2)
    try:
        return rpc.height()
    except (NodeUnreachable, RpcError):
        return -1
    finally:
        rpc.close()


def query(node: tn.NodeInfo, path: str) -> Any:
    rpc = CometRpc(node.rpc_url, timeout=5)
    try:
        return rpc.query_json(path)
    finally:
        rpc.close()


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tn.Testnet]:
    out = tmp_path_factory.mktemp("testnet") / "net"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRIDLEDGER_KDF_FAST", "1")
        patch.setenv("GRIDLEDGER_KEYRING_DIR", str(out / "keyring"))
        patch.setenv("GRIDLEDGER_PASSPHRASE", tn.TESTNET_PASSPHRASE)
        timing = cometbft.Timing(timeout_commit="300ms", timeout_propose="1s")
        testnet = tn.init_testnet(e2e_roster(), tn.InitOptions(out=out, base_port=tn.free_base_port(5),
                                                               timing=timing))
        cli("testnet", "up", "--dir", str(out))
        supervisors = [tn.running_supervisor(testnet, n) for n in testnet.nodes]
        try:
            yield testnet
        finally:
            cli("testnet", "down", "--dir", str(out))
            leftovers = [p for s in supervisors if s is not None for p in tn.process_tree(s) if p.is_running()]
            for proc in leftovers:
                proc.kill()
            assert not leftovers, "testnet down left processes running"


def transfer(node: tn.NodeInfo, sender: str, recipient: str, amount: str) -> dict[str, Any]:
    result: dict[str, Any] = cli("tx", "transfer", recipient, amount, "--from", sender, "--node", node.rpc_url,
                                 "--wait", "--output", "json")
    assert result["code"] == 0, result
    return result


def all_agree(testnet: tn.Testnet, at_least: int) -> dict[str, Any]:
    """Wait until every node passed ``at_least``; return `testnet status` (it compares app hashes)."""
    for node in testnet.nodes:
        wait_until(f"{node.name} at height {at_least}", lambda node=node: height(node) >= at_least)
    status: dict[str, Any] = cli("testnet", "status", "--dir", str(testnet.directory), "--output", "json")
    return status


def test_four_validators_agree_survive_one_down_and_catch_up(net: tn.Testnet) -> None:
    n0, n1, n2, n3 = net.nodes
    status = all_agree(net, 2)
    assert status["agree"] is True and status["nodes_compared"] == 4
    assert all(r["validator"] and r["peers"] == 3 for r in status["nodes"])

    # Transactions through different nodes, each committed for all.
    committed = [transfer(n0, "alice", "bob", "1.25EUR"), transfer(n1, "carol", "dave", "2EUR"),
                 transfer(n2, "bob", "carol", "0.5EUR"), transfer(n3, "dave", "alice", "3EUR")]
    deposit = cli("tx", "deposit", "alice", "10EUR", "--reference", "e2e", "--from", "lpd-alpha",
                  "--node", n2.rpc_url, "--wait", "--output", "json")
    assert deposit["code"] == 0, deposit
    top = max(r["height"] for r in [*committed, deposit])
    status = all_agree(net, top + 1)
    assert status["agree"] is True and status["compared_height"] >= top + 1
    balances = [query(node, "/account/" + query_account(net, "alice"))["balance"] for node in net.nodes]
    assert balances == [100_000_000 - 1_250_000 + 3_000_000 + 10_000_000] * 4

    # One of four validators down: 30 of 40 power still commits.
    cli("testnet", "down", "--dir", str(net.directory), "--node", n3.name)
    assert height(n3) == -1
    stopped_at = max(height(n) for n in (n0, n1, n2))
    during = transfer(n1, "bob", "alice", "0.1EUR")
    for node in (n0, n1, n2):
        wait_until(f"{node.name} past {stopped_at + 3}", lambda node=node: height(node) >= stopped_at + 3)
    assert during["height"] > stopped_at - 1

    # Back up, it catches up through block sync and agrees.
    cli("testnet", "up", "--dir", str(net.directory), "--node", n3.name)
    target = height(n0)
    wait_until("node3 caught up", lambda: height(n3) >= target, timeout=90)
    status = all_agree(net, target)
    assert status["agree"] is True and status["nodes_compared"] == 4
    assert query(n3, "/account/" + query_account(net, "alice"))["balance"] == balances[0] + 100_000


def query_account(net: tn.Testnet, name: str) -> str:
    account = Keystore(net.keyring).show(name).account
    assert account is not None
    return account


def test_no_orphans_after_down(net: tn.Testnet, tmp_path: Path) -> None:
    """A node stopped on its own leaves nothing behind (the fixture checks the whole testnet at the end)."""
    node = net.nodes[2]
    supervisor = tn.running_supervisor(net, node)
    assert supervisor is not None
    tree = tn.process_tree(supervisor)
    assert len(tree) == 3  # supervisor, app, CometBFT
    cli("testnet", "down", "--dir", str(net.directory), "--node", node.name)
    assert not [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not tn.pid_file(net, node).exists()
    cli("testnet", "up", "--dir", str(net.directory), "--node", node.name)

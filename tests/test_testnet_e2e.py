"""Four validators on loopback (config/testnet-4.toml), in one testnet for the whole module:

1. transactions through different nodes, all nodes agree; one validator down,
   three keep committing; back up, it catches up;
2. a fifth DSO joins by governance: `node init` with the network's genesis and
   peers, it syncs, the operators vote it in, it signs blocks; then they vote it out.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from typer.testing import CliRunner

from cli.main import app
from lab import testnet as tn
from lab.ports import free_base_port
from node import cometbft
from node.client.keystore import Keystore
from node.rpc import CometRpc, NodeUnreachable, RpcError

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

ROSTER = cometbft.REPO_ROOT / "config" / "testnet-4.toml"
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


def height(node: tn.NodeInfo | str) -> int:
    """A node's latest height (-1 while it does not answer); ``node`` may be an RPC URL."""
    rpc = CometRpc(node if isinstance(node, str) else node.rpc_url, timeout=2)
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
        testnet = tn.init_testnet(tn.load_roster(ROSTER), tn.InitOptions(out=out, base_port=free_base_port(5),
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
    assert all(r["validator"] for r in status["nodes"])

    def peers() -> list[int | None]:
        report = cli("testnet", "status", "--dir", str(net.directory), "--output", "json")
        return [r["peers"] for r in report["nodes"]]

    # Nodes dial each other in the background (a failed dial is retried seconds later): full mesh in time.
    wait_until("every node connected to the other three", lambda: peers() == [3] * 4, timeout=60)

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

    # Every node's app and CometBFT serve Prometheus metrics on their own ports.
    for node in net.nodes:
        app_metrics = httpx.get(f"http://127.0.0.1:{node.ports['app_metrics']}/metrics", timeout=5).text
        assert 'gridledger_txs_total{code="0",type="transfer"} 4.0' in app_metrics
        assert 'gridledger_txs_total{code="0",type="deposit"} 1.0' in app_metrics
        comet_metrics = httpx.get(f"http://127.0.0.1:{node.ports['cometbft_metrics']}/metrics", timeout=5).text
        assert "cometbft_consensus_height" in comet_metrics

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


# --- a fifth DSO joins by governance, then leaves ----------------------------------------


class JoiningNode:
    """An operator's own node outside the testnet directory: `node init` + `node start`."""

    def __init__(self, net: tn.Testnet, home: Path, base_port: int) -> None:
        peers = ",".join(f"{n.node_id}@127.0.0.1:{n.ports['p2p']}" for n in net.nodes)
        self.info: dict[str, Any] = cli(
            "node", "init", "--home", str(home), "--moniker", "dso-east", "--role", "dso", "--zones", "east-1",
            "--genesis", str(net.directory / "genesis.json"), "--peers", peers, "--base-port", str(base_port),
            "--p2p-host", "127.0.0.1", "--timeout-commit", "300ms", "--output", "json")
        self.rpc_url = f"http://127.0.0.1:{self.info['ports']['rpc']}"
        self.log = home / "node.log"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(tn.start_command(home), stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def status(self) -> dict[str, Any]:
        report: dict[str, Any] = cli("node", "status", "--node", self.rpc_url, "--output", "json")
        return report

    def stop(self) -> None:
        tree = tn.process_tree(psutil.Process(self.proc.pid)) if self.proc.poll() is None else []
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        _, alive = psutil.wait_procs(tree, timeout=30)
        assert not alive, "the joining node left processes behind"


def gov(node: tn.NodeInfo, signer: str, *args: str) -> dict[str, Any]:
    result: dict[str, Any] = cli("tx", "gov", *args, "--from", signer, "--node", node.rpc_url, "--wait",
                                 "--output", "json")
    assert result["code"] == 0, result
    return result


def event_types(result: dict[str, Any]) -> list[str]:
    return [event["type"] for event in result["events"]]


def validator_set(node: tn.NodeInfo) -> dict[str, int]:
    rpc = CometRpc(node.rpc_url, timeout=5)
    try:
        answer = rpc.call("validators", per_page="100")
    finally:
        rpc.close()
    return {v["pub_key"]["value"]: int(v["voting_power"]) for v in answer["validators"]}


def signed_a_recent_commit(node: tn.NodeInfo, address: str) -> bool:
    rpc = CometRpc(node.rpc_url, timeout=5)
    try:
        top = rpc.height()
        commits = [rpc.call("commit", height=str(h))["signed_header"]["commit"] for h in range(top - 2, top + 1)]
    finally:
        rpc.close()
    return any(s["validator_address"] == address and s["block_id_flag"] == 2
               for commit in commits for s in commit["signatures"])


def vote_all(net: tn.Testnet, proposal: str, voters: list[str]) -> dict[str, Any]:
    """Votes through different nodes; returns the last vote's result."""
    result: dict[str, Any] = {}
    for index, voter in enumerate(voters):
        result = gov(net.nodes[index % len(net.nodes)], voter, "vote", proposal, "yes")
    return result


def test_fifth_dso_joins_by_governance_signs_and_leaves(net: tn.Testnet, tmp_path: Path) -> None:
    n0, n1 = net.nodes[0], net.nodes[1]
    base = min(n.ports["app_metrics"] for n in net.nodes) - 5 + 10 * len(net.nodes)  # the fifth block of ports
    joining = JoiningNode(net, tmp_path / "dso-east", base)
    try:
        consensus_key, address = joining.info["consensus_pubkey"], joining.info["validator_address"]
        wait_until("dso-east synced", lambda: height(joining.rpc_url) >= height(n0) - 1, timeout=90)
        before = joining.status()
        assert before["validator"] is False and before["network"] == net.chain_id and before["peers"] >= 1

        proposed = gov(n0, "dso-north", "propose-validator", "add", "dso-east", "--role", "dso",
                       "--account-pubkey", joining.info["account_pubkey"], "--consensus-pubkey", consensus_key,
                       "--zones", "east-1", "--power", "10", "--description", "east grid joins")
        proposal = next(e["id"] for e in proposed["events"] if e["type"] == "proposal.submitted")
        # 3 of 4 operators (30 of 40 power) pass it: more than 2/3.
        passed = vote_all(net, proposal, ["dso-north", "dso-south", "lpd-alpha"])
        assert "proposal.passed" in event_types(passed) and "validator.updated" in event_types(passed)

        wait_until("five validators", lambda: validator_set(n1).get(consensus_key) == 10)
        assert len(validator_set(n1)) == 5
        wait_until("dso-east validating", lambda: joining.status()["validator"] is True)
        wait_until("dso-east signs commits", lambda: signed_a_recent_commit(n1, address))
        operators = {op["name"]: op for op in query(n0, "/operators")["operators"]}
        assert operators["dso-east"]["consensus_pubkey"] == consensus_key

        # Out again: 4 of now 5 operators (40 of 50) vote for the removal.
        proposed = gov(n1, "dso-south", "propose-validator", "remove", "dso-east", "--description", "trial over")
        proposal = next(e["id"] for e in proposed["events"] if e["type"] == "proposal.submitted")
        passed = vote_all(net, proposal, ["dso-north", "dso-south", "lpd-alpha", "lpd-beta"])
        assert "proposal.passed" in event_types(passed)
        wait_until("four validators again", lambda: consensus_key not in validator_set(n0))
        assert len(validator_set(n0)) == 4
        wait_until("dso-east no longer validating", lambda: joining.status()["validator"] is False)
        status = all_agree(net, height(n0) + 1)
        assert status["agree"] is True and status["nodes_compared"] == 4
    finally:
        joining.stop()


"""`testnet status` / `p2p-peers`: what every node says about itself, and whether the apps agree."""

from __future__ import annotations

from typing import Any

from lab.testnet.model import NodeInfo, Testnet
from lab.testnet.processes import p2p_status, running_supervisor
from node.p2p import node_host
from node.rpc import CometRpc, NodeUnreachable, RpcError

# --- status ----------------------------------------------------------------------------


def node_report(testnet: Testnet, node: NodeInfo) -> dict[str, Any]:
    """What one node says about itself (``reachable`` False if its RPC does not answer)."""
    proc = running_supervisor(testnet, node)
    report: dict[str, Any] = {"node": node.name, "moniker": node.moniker, "pid": proc.pid if proc else None,
                              "rpc": node.rpc_url, "reachable": False, "height": None, "app_hash": None,
                              "catching_up": None, "peers": None, "validator": None, "voting_power": None,
                              **p2p_report(testnet, node)}
    rpc = CometRpc(node.rpc_url, timeout=3.0)
    try:
        status = rpc.status()
        peers = int(rpc.call("net_info")["n_peers"])
    except (NodeUnreachable, RpcError):
        return report
    finally:
        rpc.close()
    sync = status["sync_info"]
    power = int(status["validator_info"]["voting_power"])
    report.update(reachable=True, height=int(sync["latest_block_height"]), app_hash=sync["latest_app_hash"],
                  catching_up=bool(sync["catching_up"]), peers=peers, validator=power > 0, voting_power=power)
    return report


def p2p_report(testnet: Testnet, node: NodeInfo) -> dict[str, Any]:
    """The node's libp2p identity and port, and how many peers its running host has (None: not answering)."""
    if not node.p2p_peer_id:
        return {"p2p_peer_id": None, "p2p_port": None, "p2p_peers": None}
    status = p2p_status(testnet, node) if not testnet.docker else None
    return {"p2p_peer_id": node.p2p_peer_id, "p2p_port": int(node.p2p_addr.split("/tcp/")[1].split("/")[0]),
            "p2p_peers": len(status["peers"]) if status else None}


def p2p_peers(testnet: Testnet) -> dict[str, Any]:
    """What a participant needs to join the testnet's p2p network: bootstrap addresses, publisher keys."""
    hosts = [node for node in testnet.nodes if node.p2p_peer_id]
    return {
        "chain_id": testnet.chain_id,
        "bootstrap": [node.p2p_addr for node in hosts],
        "trusted_publishers": [node.p2p_pubkey for node in hosts],
        "nodes": [{"node": node.name, "moniker": node.moniker,
                   "zones": node_host.read_config(testnet.home(node)).get("zones", []),
                   "peer_id": node.p2p_peer_id, "addr": node.p2p_addr, "publisher": node.p2p_pubkey}
                  for node in hosts],
    }


def app_hash_at(node: NodeInfo, height: int, report: dict[str, Any]) -> str | None:
    """The app hash in a node's header of block ``height`` (what /status shows at that height).

    It is the state after block ``height - 1``: CometBFT accepts block
    ``height`` only if that hash equals its own app's result, so equal hashes
    mean every app computed the same state.
    """
    if report["height"] == height:
        return str(report["app_hash"])
    rpc = CometRpc(node.rpc_url, timeout=3.0)
    try:
        header = rpc.call("block", height=str(height))["block"]["header"]
        return str(header["app_hash"])
    except (NodeUnreachable, RpcError):
        return None
    finally:
        rpc.close()


def agreement(testnet: Testnet, reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Do all reachable nodes agree on the app hash at the lowest height among them?"""
    reachable = [r for r in reports if r["reachable"]]
    if not reachable:
        return {"compared_height": None, "app_hash": None, "agree": None, "nodes_compared": 0}
    height = min(r["height"] for r in reachable)
    by_name = {n.name: n for n in testnet.nodes}
    hashes = {r["node"]: app_hash_at(by_name[r["node"]], height, r) for r in reachable}
    distinct = sorted({h for h in hashes.values() if h is not None})
    agree = len(distinct) == 1 and None not in hashes.values()
    return {"compared_height": height, "app_hash": distinct[0] if agree else None, "agree": agree,
            "nodes_compared": len(hashes), "hashes": hashes}

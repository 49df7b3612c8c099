"""lab/network.py and lab/ports.py: the one way local networks get their homes, genesis, config and ports."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from lab.network import LocalNetwork, Member, merge, single
from lab.ports import block_bases, free_base_port, port_blocks, port_free
from node import cometbft


def three(tmp_path: Path) -> LocalNetwork:
    members = [Member(home=tmp_path / f"n{i}", moniker=f"op-{i}", ports=ports, power=i + 1)
               for i, ports in enumerate(port_blocks(3, 30000))]
    return LocalNetwork(members, cometbft.Timing(timeout_commit="250ms"))


def test_basic(tmp_path: Path, tools_bin: Path) -> None:
    network = three(tmp_path)
    genesis = network.create("net-1", {"params": {}}, {"mempool": {"size": 7}})
    assert genesis["chain_id"] == "net-1" and genesis["app_state"] == {"params": {}}
    assert [(v["name"], v["power"]) for v in genesis["validators"]] == [("op-0", "1"), ("op-1", "2"), ("op-2", "3")]
    assert [v["pub_key"]["value"] for v in genesis["validators"]] == network.consensus_keys()
    ids = network.node_ids()
    for index, home in enumerate(network.homes):
        assert cometbft.read_genesis(home) == genesis
        config = cometbft.read_config(home)
        ports = network.members[index].ports
        assert (config["moniker"], config["proxy_app"]) == (f"op-{index}", f"tcp://127.0.0.1:{ports.abci}")
        assert config["rpc"]["laddr"] == f"tcp://127.0.0.1:{ports.rpc}"
        assert config["p2p"]["laddr"] == f"tcp://127.0.0.1:{ports.p2p}"
        assert sorted(config["p2p"]["persistent_peers"].split(",")) == sorted(
            f"{ids[j]}@127.0.0.1:{network.members[j].ports.p2p}" for j in range(3) if j != index)
        assert config["consensus"]["timeout_commit"] == "250ms"
        assert config["mempool"]["size"] == 7
    assert network.rpc_urls == [f"http://127.0.0.1:{30007 + 10 * i}" for i in range(3)]


def test_invalid_settings_cannot_move_the_addresses_or_peers(tmp_path: Path, tools_bin: Path) -> None:
    network = three(tmp_path)
    network.create("net-1", {}, {"p2p": {"laddr": "tcp://10.0.0.1:1", "persistent_peers": "", "send_rate": 1},
                                 "": {"moniker": "other", "proxy_app": "kvstore"}})
    config = cometbft.read_config(network.homes[0])
    assert config["p2p"]["laddr"] == f"tcp://127.0.0.1:{network.members[0].ports.p2p}"
    assert config["p2p"]["persistent_peers"].count("@") == 2
    assert (config["moniker"], config["p2p"]["send_rate"]) == ("op-0", 1)
    assert config["proxy_app"].startswith("tcp://127.0.0.1:")


def test_basic_member_hosts_and_app(tmp_path: Path, tools_bin: Path) -> None:
    blocks = port_blocks(2, 30100)
    network = LocalNetwork([
        Member(home=tmp_path / "a", moniker="a", ports=blocks[0], p2p_host="0.0.0.0", local_host="0.0.0.0",
               dial_host="node0", proxy_app="kvstore"),
        Member(home=tmp_path / "b", moniker="b", ports=blocks[1], dial_host="node1"),
    ])
    network.create("net-2", {})
    config = cometbft.read_config(network.homes[0])
    assert config["proxy_app"] == "kvstore"
    assert config["rpc"]["laddr"] == f"tcp://0.0.0.0:{blocks[0].rpc}"
    assert config["p2p"]["persistent_peers"].endswith(f"@node1:{blocks[1].p2p}")
    assert cometbft.read_config(network.homes[1])["p2p"]["persistent_peers"].endswith(f"@node0:{blocks[0].p2p}")


def test_single_is_created_once_and_reconfigured(tmp_path: Path, tools_bin: Path) -> None:
    home = tmp_path / "demo"
    first = port_blocks(1, 30200)[0]
    single(home, "demo-1", {"params": {"currency": "EUR"}}, first)
    genesis = (home / "config" / "genesis.json").read_text()
    second = port_blocks(1, 30300)[0]
    single(home, "demo-2", {"other": True}, second, timeout_commit="2s", rpc_host="0.0.0.0")
    assert (home / "config" / "genesis.json").read_text() == genesis  # same chain, same state
    assert json.loads(genesis)["chain_id"] == "demo-1"
    config = cometbft.read_config(home)
    assert config["rpc"]["laddr"] == f"tcp://0.0.0.0:{second.rpc}"
    assert config["p2p"]["laddr"] == f"tcp://127.0.0.1:{second.p2p}"
    assert config["proxy_app"] == f"tcp://127.0.0.1:{second.abci}"
    assert (config["moniker"], config["consensus"]["timeout_commit"], config["tx_index"]["indexer"]) == \
        ("demo", "2s", "kv")
    assert config["instrumentation"]["prometheus"] is False


def test_invalid_empty_network() -> None:
    with pytest.raises(ValueError, match="at least one member"):
        LocalNetwork([])


def test_merge_later_layers_win() -> None:
    assert merge({"a": {"x": 1, "y": 1}}, {"a": {"y": 2}, "b": {"z": 3}}) == {"a": {"x": 1, "y": 2}, "b": {"z": 3}}


def test_port_blocks_are_consecutive_blocks() -> None:
    blocks = port_blocks(3, 30400)
    assert [(b.app_metrics, b.p2p, b.rpc, b.abci, b.cometbft_metrics) for b in blocks] == [
        (30405 + 10 * i, 30406 + 10 * i, 30407 + 10 * i, 30408 + 10 * i, 30409 + 10 * i) for i in range(3)]
    assert block_bases(3, 30400) == [30400, 30410, 30420]
    assert blocks[0].rpc_url == "http://127.0.0.1:30407"


def test_invalid_port_block_outside_the_range() -> None:
    with pytest.raises(ValueError, match="outside"):
        port_blocks(2, 65520)


def test_free_blocks_are_free_and_below_the_ephemeral_range() -> None:
    base = free_base_port(4)
    assert base >= 20000 and base + 40 <= 32000 and base % cometbft.PORT_STRIDE == 0
    assert all(port_free(port) for port in range(base, base + 40))
    blocks = port_blocks(2)
    assert blocks[1].rpc - blocks[0].rpc == cometbft.PORT_STRIDE
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", blocks[0].rpc))
        assert not port_free(blocks[0].rpc)

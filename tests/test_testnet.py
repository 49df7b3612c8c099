"""`gridledger testnet init` and the roster, without starting anything."""

from __future__ import annotations

import base64
import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from abci_app.app import LedgerApplication
from abci_app.ledger.store import MemoryBackend
from abci_app.pb.tendermint.abci import types_pb2 as abci
from cli.main import app
from lab import testnet as tn
from node import cometbft
from node.client.keystore import Keystore
from node.p2p import node_host

ROSTER = cometbft.REPO_ROOT / "config" / "testnet-4.toml"


@pytest.fixture(autouse=True)
def fast_kdf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLEDGER_KDF_FAST", "1")


def invoke(*args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == code, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.output
    return result


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> tn.Testnet:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRIDLEDGER_KDF_FAST", "1")
        out = tmp_path_factory.mktemp("tn") / "net"
        invoke("testnet", "init", "--roster", str(ROSTER), "--out", str(out), "--base-port", "30000",
               "--timeout-commit", "250ms", "--timeout-propose", "1s", "--create-empty-blocks", "false",
               "--create-empty-blocks-interval", "5s")
    return tn.load_testnet(out)


def test_basic_roster_file() -> None:
    roster = tn.load_roster(ROSTER)
    assert [(op.name, op.role) for op in roster.validators] == [
        ("dso-north", "dso"), ("dso-south", "dso"), ("lpd-alpha", "lpd"), ("lpd-beta", "lpd")]
    assert {p.name for p in roster.participants} == {"alice", "bob", "carol", "dave"}
    assert roster.dso_of_zone("south-1") == "dso-south"
    assert roster.grid_fees


def test_basic_one_genesis_whose_validators_are_the_operators(local: tn.Testnet) -> None:
    genesis = json.loads((local.directory / "genesis.json").read_text())
    for node in local.nodes:
        assert cometbft.read_genesis(local.home(node)) == genesis
    assert genesis["chain_id"] == "gridledger-testnet" == local.chain_id
    by_key = {v["pub_key"]["value"]: v for v in genesis["validators"]}
    operators = {op["name"]: op for op in genesis["app_state"]["operators"]}
    for node in local.nodes:
        key = cometbft.validator_pubkey(local.home(node))
        assert node.consensus_pubkey == key == operators[node.moniker]["consensus_pubkey"]
        assert by_key[key]["power"] == str(operators[node.moniker]["power"]) == str(node.power)
        assert by_key[key]["address"] == cometbft.validator_address(key)
    assert len(by_key) == len(local.nodes) == 4

    # The app accepts this app_state and returns exactly genesis.json's validator set.
    req = abci.RequestInitChain(chain_id=local.chain_id, initial_height=1,
                                app_state_bytes=json.dumps(genesis["app_state"]).encode())
    returned = LedgerApplication(MemoryBackend()).init_chain(req).validators
    assert sorted((v.pub_key.ed25519, v.power) for v in returned) == sorted(
        (base64.b64decode(key), int(v["power"])) for key, v in by_key.items())


def test_basic_keys_in_the_keyring(local: tn.Testnet) -> None:
    genesis = json.loads((local.directory / "genesis.json").read_text())
    store = Keystore(local.keyring)
    names = {info.name: info for info in store.list_keys()}
    assert set(names) == {"dso-north", "dso-south", "lpd-alpha", "lpd-beta", "alice", "bob", "carol", "dave",
                          "m-alice", "m-bob", "m-carol", "m-dave"}
    assert names["m-carol"].kind == "meter" and names["carol"].kind == "account"
    assert store.load("alice", tn.TESTNET_PASSPHRASE).pubkey.hex() == names["alice"].pubkey
    operators = {op["name"]: op["pubkey"] for op in genesis["app_state"]["operators"]}
    assert all(operators[name] == names[name].pubkey for name in operators)
    meters = {m["id"]: m["pubkey"] for m in genesis["app_state"]["meters"]}
    assert meters["m-alice"] == names["m-alice"].pubkey


def test_basic_distinct_ports_and_full_mesh_of_peers(local: tn.Testnet) -> None:
    seen: list[int] = []
    for index, node in enumerate(local.nodes):
        home = local.home(node)
        config = cometbft.read_config(home)
        ports = cometbft.Ports.from_base(30000 + 10 * index)
        assert node.ports == ports.as_dict()
        assert config["p2p"]["laddr"] == f"tcp://127.0.0.1:{ports.p2p}"
        assert config["rpc"]["laddr"] == f"tcp://127.0.0.1:{ports.rpc}"
        assert config["proxy_app"] == f"tcp://127.0.0.1:{ports.abci}"
        assert config["instrumentation"]["prometheus"] is True
        assert config["instrumentation"]["prometheus_listen_addr"] == f"127.0.0.1:{ports.cometbft_metrics}"
        assert cometbft.read_node_settings(home)["app_metrics"] == f"127.0.0.1:{ports.app_metrics}"
        assert config["rpc"]["pprof_laddr"] == ""
        assert config["p2p"]["allow_duplicate_ip"] is True and config["p2p"]["addr_book_strict"] is False
        consensus = config["consensus"]
        assert (consensus["timeout_commit"], consensus["timeout_propose"]) == ("250ms", "1s")
        assert consensus["create_empty_blocks"] is False and consensus["create_empty_blocks_interval"] == "5s"
        peers = set(config["p2p"]["persistent_peers"].split(","))
        assert peers == {f"{o.node_id}@127.0.0.1:{o.ports['p2p']}" for o in local.nodes if o is not node}
        assert node.node_id == cometbft.node_id_from_key(home)
        seen += ports.as_dict().values()
    assert len(seen) == len(set(seen)) == 20


def test_basic_libp2p_host_per_node(local: tn.Testnet) -> None:
    """Each home runs a libp2p host: own port in its block, the DSO's zones (LPD: all), the others as bootstrap."""
    cometbft_ports = {port for node in local.nodes for port in node.ports.values()}
    keys = {node.name: node_host.create_identity(local.home(node)) for node in local.nodes}  # loads, never replaces
    for index, node in enumerate(local.nodes):
        home = local.home(node)
        config = node_host.read_config(home)
        port = 30000 + 10 * index + 4
        assert port not in cometbft_ports and node.p2p_port == port
        assert config["listen"] == [f"/ip4/127.0.0.1/tcp/{port}"]
        assert config["chain_id"] == local.chain_id
        assert node.p2p_peer_id == keys[node.name].peer_id and node.p2p_pubkey == keys[node.name].pubkey
        assert node.p2p_addr == f"/ip4/127.0.0.1/tcp/{port}/p2p/{node.p2p_peer_id}"
        assert set(config["bootstrap"]) == {other.p2p_addr for other in local.nodes if other is not node}
        assert set(config["trusted_publishers"]) == {k.pubkey for k in keys.values()}
        assert ((home / "p2p_identity.key").stat().st_mode & 0o777) == 0o600
    zones = {node.moniker: node_host.read_config(local.home(node))["zones"] for node in local.nodes}
    assert zones == {"dso-north": ["north-1", "north-2"], "dso-south": ["south-1"],
                     "lpd-alpha": ["north-1", "north-2", "south-1"], "lpd-beta": ["north-1", "north-2", "south-1"]}
    assert len({n.p2p_peer_id for n in local.nodes}) == 4


def test_basic_p2p_peers_for_a_participant(local: tn.Testnet) -> None:
    peers = json.loads(invoke("testnet", "p2p-peers", "--dir", str(local.directory), "--output", "json").stdout)
    assert peers["chain_id"] == local.chain_id
    assert peers["bootstrap"] == [node.p2p_addr for node in local.nodes]
    assert peers["trusted_publishers"] == [node.p2p_pubkey for node in local.nodes]
    assert peers["nodes"][1]["zones"] == ["south-1"]
    table = invoke("testnet", "p2p-peers", "--dir", str(local.directory))
    assert f"--bootstrap {local.nodes[0].p2p_addr}" in table.stderr


def test_basic_no_p2p(tmp_path: Path) -> None:
    out = tmp_path / "plain"
    invoke("testnet", "init", "--roster", str(ROSTER), "--out", str(out), "--base-port", "30100", "--no-p2p")
    net = tn.load_testnet(out)
    assert not any(node_host.enabled(net.home(node)) for node in net.nodes)
    assert all(node.p2p_peer_id == "" for node in net.nodes)
    assert "no libp2p host" in invoke("testnet", "p2p-peers", "--dir", str(out), code=2).stderr


def test_basic_docker_homes(tmp_path: Path) -> None:
    out = tmp_path / "docker"
    invoke("testnet", "init", "--roster", str(ROSTER), "--out", str(out), "--docker",
           "--compose", str(tmp_path / "docker-compose.yml"))
    net = tn.load_testnet(out)
    assert net.docker
    for index, node in enumerate(net.nodes):
        config = cometbft.read_config(net.home(node))
        assert config["p2p"]["laddr"] == "tcp://0.0.0.0:26656"
        assert config["rpc"]["laddr"] == "tcp://0.0.0.0:26657"
        assert config["proxy_app"] == "tcp://127.0.0.1:26658"
        assert config["instrumentation"]["prometheus_listen_addr"] == "0.0.0.0:26659"
        peers = set(config["p2p"]["persistent_peers"].split(","))
        assert peers == {f"{o.node_id}@{o.name}:26656" for o in net.nodes if o is not node}
        assert node.rpc_url == f"http://127.0.0.1:{26657 + 10 * index}"
    result = invoke("testnet", "up", "--dir", str(out), code=2)
    assert "docker compose" in result.stderr


def roster_doc() -> dict[str, Any]:
    doc: dict[str, Any] = tomllib.loads(ROSTER.read_text())
    return doc


def _broken(change: str) -> dict[str, Any]:
    doc = roster_doc()
    if change == "no chain id":
        del doc["chain_id"]
    elif change == "unknown key":
        doc["validators"] = []
    elif change == "bad role":
        doc["operators"][0]["role"] = "tso"
    elif change == "dso without zones":
        doc["operators"][0]["zones"] = []
    elif change == "lpd with zones":
        doc["operators"][2]["zones"] = ["x"]
    elif change == "power zero":
        doc["operators"][0]["power"] = 0
    elif change == "power not int":
        doc["operators"][0]["power"] = "10"
    elif change == "zone without dso":
        doc["participants"][0]["zone"] = "west-9"
    elif change == "meter of a stranger":
        doc["meters"][0]["owner"] = "mallory"
    elif change == "duplicate name":
        doc["participants"][1]["name"] = "alice"
    elif change == "name not a key name":
        doc["participants"][0]["name"] = "Alice"
    elif change == "no validators":
        for op in doc["operators"]:
            op["validator"] = False
    elif change == "fee of an unknown dso":
        doc["grid_fees"][0]["dso"] = "dso-nowhere"
    return doc


@pytest.mark.parametrize(("change", "message"), [
    ("no chain id", "needs 'chain_id'"), ("unknown key", "unknown keys"), ("bad role", "dso or lpd"),
    ("dso without zones", "serves no zones"), ("lpd with zones", "cannot serve zones"),
    ("power zero", "at least 1"), ("power not int", "must be int"), ("zone without dso", "no DSO serves"),
    ("meter of a stranger", "not a participant"), ("duplicate name", "used twice"),
    ("name not a key name", "names a key"), ("no validators", "no operator runs a validator"),
    ("fee of an unknown dso", "dso must name an operator"),
])
def test_invalid_roster(change: str, message: str) -> None:
    with pytest.raises(tn.TestnetError, match=message):
        tn.parse_roster(_broken(change))


def test_invalid_roster_file_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("chain_id = [")
    assert "not valid TOML" in invoke("testnet", "init", "--roster", str(bad), "--out", str(tmp_path / "x"),
                                      code=2).stderr
    missing = invoke("testnet", "init", "--roster", str(tmp_path / "none.toml"), "--out", str(tmp_path / "x"),
                     code=2)
    assert "not found" in missing.stderr


def test_invalid_out_not_empty(local: tn.Testnet) -> None:
    result = invoke("testnet", "init", "--roster", str(ROSTER), "--out", str(local.directory), code=2)
    assert "not empty" in result.stderr


def test_invalid_not_a_testnet_dir(tmp_path: Path) -> None:
    for command in ("up", "down", "status", "logs"):
        assert "not a testnet directory" in invoke("testnet", command, "--dir", str(tmp_path), code=2).stderr


def test_invalid_unknown_node(local: tn.Testnet) -> None:
    result = invoke("testnet", "down", "--dir", str(local.directory), "--node", "node9", code=2)
    assert "no node 'node9'" in result.stderr


def test_basic_stopped_testnet(local: tn.Testnet) -> None:
    status = invoke("testnet", "status", "--dir", str(local.directory), "--output", "json", code=3)
    report = json.loads(status.stdout)
    assert [n["reachable"] for n in report["nodes"]] == [False] * 4 and report["agree"] is None
    assert [n["p2p_peer_id"] for n in report["nodes"]] == [n.p2p_peer_id for n in local.nodes]
    assert [n["p2p_peers"] for n in report["nodes"]] == [None] * 4  # no host answers
    down = json.loads(invoke("testnet", "down", "--dir", str(local.directory), "--node", "lpd-beta",
                             "--output", "json").stdout)
    assert down == [{"node": "node3", "moniker": "lpd-beta", "state": "not running"}]
    assert invoke("testnet", "logs", "--dir", str(local.directory)).stdout == ""


def test_basic_tail_and_follow(tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert tn.tail_lines(log, 3) == ["line 97", "line 98", "line 99"]
    assert tn.tail_lines(tmp_path / "missing.log", 3) == []
    follower = tn.follow({"n": log}, stop_after=5.0)
    with log.open("a") as handle:
        handle.write("new 1\nnew")
    assert next(follower) == ("n", "new 1")
    with log.open("a") as handle:
        handle.write(" 2\n")
    assert next(follower) == ("n", "new 2")


def test_basic_operator_without_a_node(tmp_path: Path) -> None:
    doc = roster_doc()
    doc["operators"].append({"name": "dso-east", "role": "dso", "zones": ["east-1"], "power": 5,
                             "validator": False})
    net = tn.init_testnet(tn.parse_roster(doc), tn.InitOptions(out=tmp_path / "net", base_port=30000))
    genesis = json.loads((net.directory / "genesis.json").read_text())
    east = next(op for op in genesis["app_state"]["operators"] if op["name"] == "dso-east")
    assert "consensus_pubkey" not in east and east["power"] == 5
    assert [n.moniker for n in net.nodes] == ["dso-north", "dso-south", "lpd-alpha", "lpd-beta"]
    assert len(genesis["validators"]) == 4


def test_basic_single_node_of_a_roster(tmp_path: Path) -> None:
    """`--validator dso-north`: one node; the other operators keep their power, without a consensus key."""
    out = tmp_path / "one"
    invoke("testnet", "init", "--roster", str(ROSTER), "--out", str(out), "--base-port", "30200", "--no-p2p",
           "--validator", "dso-north")
    net = tn.load_testnet(out)
    assert [n.moniker for n in net.nodes] == ["dso-north"]
    genesis = json.loads((net.directory / "genesis.json").read_text())
    assert len(genesis["validators"]) == 1
    operators = {op["name"]: op for op in genesis["app_state"]["operators"]}
    assert [name for name, op in operators.items() if "consensus_pubkey" in op] == ["dso-north"]
    assert {name: op["power"] for name, op in operators.items()} == {
        "dso-north": 10, "dso-south": 10, "lpd-alpha": 10, "lpd-beta": 10}


def test_invalid_validator_not_an_operator(tmp_path: Path) -> None:
    result = invoke("testnet", "init", "--roster", str(ROSTER), "--out", str(tmp_path / "x"), "--no-p2p",
                    "--validator", "alice", code=2)
    assert "--validator alice: not an operator of the roster" in result.stderr
    assert not (tmp_path / "x").exists()


def test_basic_replay_roster_is_testnet_4_with_time_compressed() -> None:
    """config/replay-4.toml differs from config/testnet-4.toml only where docs/scenarios.md says it does."""
    replay = tomllib.loads((ROSTER.parent / "replay-4.toml").read_text())
    testnet = tomllib.loads(ROSTER.read_text())
    compressed = {"slot_length_s": 10, "gate_closure_lead_s": 2, "settlement_window_s": 60}
    assert replay["params"] == {**testnet["params"], **compressed}
    assert (replay["operators"], replay["participants"], replay["grid_fees"]) == (
        testnet["operators"], testnet["participants"], testnet["grid_fees"])
    scale = 3_600 // compressed["slot_length_s"]
    assert replay["meters"] == [{key: value * scale if key.endswith("_capacity_w") else value
                                 for key, value in meter.items()} for meter in testnet["meters"]]
    tn.load_roster(ROSTER.parent / "replay-4.toml")  # and it is a valid roster


def test_invalid_init_failure_leaves_no_half_testnet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(tn.create, "_keys", broken)
    with pytest.raises(OSError, match="disk full"):
        tn.init_testnet(tn.load_roster(ROSTER), tn.InitOptions(out=tmp_path / "net"))
    assert not (tmp_path / "net").exists()

"""`tx readings submit` and the settlement queries (`settlement`, `settlements`, `statement`, `reading`).

Offline parts (usage errors, the meter's signature in a dry run) need no node. The
rest runs on a real node whose genesis lies two hours in the past: CometBFT gives
block 1 the genesis time and later blocks the wall clock, so orders sent before
block 1 trade in a slot that has long been settled by block 2, and slot ends of the
last two hours can be read at once (see ``backdated_node``).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from abci_app.ledger.crypto import verify
from abci_app.ledger.modules.settlement import reading_sign_bytes
from abci_app.ledger.tx import encode_tx
from cli.main import app
from cli.output import TX_REJECTED, USAGE
from node import cometbft
from node.client.keystore import Keystore
from tests.harness import Chain, seeded_key
from tests.localnode import LocalNode
from tests.market_harness import market_app_state, order

PASSPHRASE = "readings cli"
CHAIN_ID = "e2e-readings"
SLOT_S = 900
METERS = ("alice", "bob", "carol", "dave", "erin")


def make_keyring(directory: Path, chain: Chain, accounts: tuple[str, ...]) -> Path:
    """Participants' keys and every harness meter key (``m-<name>``) in one keyring."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRIDLEDGER_KDF_FAST", "1")
        store = Keystore(directory)
        for name in accounts:
            store.add(name, PASSPHRASE, chain.keys[name])
        for name in METERS:
            store.add(f"m-{name}", PASSPHRASE, seeded_key(f"meter-{name}"), kind="meter")
    return directory


def invoke(keyring: Path, *args: str, node: str = "http://127.0.0.1:9") -> Any:
    env = {"GRIDLEDGER_KEYRING_DIR": str(keyring), "GRIDLEDGER_PASSPHRASE": PASSPHRASE, "GRIDLEDGER_NODE": node}
    return CliRunner().invoke(app, list(args), env=env)


def cli_json(keyring: Path, node: str, *args: str) -> Any:
    result = invoke(keyring, *args, "--output", "json", node=node)
    assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)


@contextmanager
def backdated_node(home: Path, app_state: dict[str, Any], chain_id: str, genesis_time: int,
                   timeout_commit: str = "2s") -> Iterator[LocalNode]:
    """A node whose genesis (and so block 1) lies in the past; yields as soon as its RPC answers.

    CometBFT makes block 1 one ``timeout_commit`` after it starts and stamps it with the
    genesis time; from block 2 on, block time is the validator's clock. Transactions sent
    right after this yields therefore execute at ``genesis_time`` (the caller checks that
    they made it into block 1).
    """
    node = LocalNode(home, app_state, chain_id=chain_id, timeout_commit=timeout_commit)
    cometbft.set_genesis(home, chain_id, app_state,
                         genesis_time=datetime.fromtimestamp(genesis_time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    with node:
        node.rpc.wait_height(0, timeout=60)
        yield node


def require_block_one(node: LocalNode, hashes: list[str]) -> None:
    """The setup transactions must have executed in block 1 (at the genesis time)."""
    for digest in hashes:
        committed = node.rpc.wait_tx(digest, timeout=30)
        if int(committed["height"]) != 1:
            pytest.fail(f"setup tx {digest} landed at height {committed['height']}, not 1: the machine was too slow "
                        "to reach the mempool within timeout_commit of the node's start")
        assert int(committed["tx_result"].get("code", 0)) == 0, committed["tx_result"]


# -- offline ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def offline_keyring(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_keyring(tmp_path_factory.mktemp("offline") / "keyring", Chain(), ("bob",))


OFFLINE = ("--dry-run", "--chain-id", "c-1", "--nonce", "1", "--from", "bob")


def test_a_dry_run_shows_the_reading_signed_by_the_meter_key(offline_keyring: Path) -> None:
    result = invoke(offline_keyring, "tx", "readings", "submit", "--meter", "m-bob", "--at", "2026-01-01T11:00Z",
                    "--import", "1.234kWh", "--export", "56Wh", "--meter-chain-id", "c-1", *OFFLINE,
                    "--output", "json")
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["type"] == "submit_readings"
    (reading,) = shown["body"]["readings"]
    at = 1_767_265_200  # 2026-01-01T11:00Z
    assert (reading["meter_id"], reading["timestamp"], reading["import_register_wh"],
            reading["export_register_wh"]) == ("m-bob", at, 1_234, 56)
    signed = reading_sign_bytes("c-1", "m-bob", at, 1_234, 56)
    assert verify(seeded_key("meter-bob").pubkey, bytes.fromhex(reading["signature"]), signed)


def test_a_readings_file_signs_each_row_with_its_meter_key(offline_keyring: Path, tmp_path: Path) -> None:
    rows = tmp_path / "readings.csv"
    rows.write_text("meter,timestamp,import_wh,export_wh,meter_key\n"
                    "m-bob,1767265200,100,0,\n"
                    "m-bob,2026-01-01T11:15Z,250,0,\n"
                    "meter-7,1767266100,0,3.5kWh,m-erin\n")
    result = invoke(offline_keyring, "tx", "readings", "submit", "--file", str(rows), "--meter-chain-id", "c-1",
                    *OFFLINE, "--output", "json")
    assert result.exit_code == 0, result.stderr
    readings = json.loads(result.stdout)["body"]["readings"]
    assert [(r["meter_id"], r["timestamp"], r["import_register_wh"], r["export_register_wh"]) for r in readings] == [
        ("m-bob", 1_767_265_200, 100, 0), ("m-bob", 1_767_266_100, 250, 0), ("meter-7", 1_767_266_100, 0, 3_500)]
    signer = {"m-bob": seeded_key("meter-bob"), "meter-7": seeded_key("meter-erin")}
    for r in readings:
        signed = reading_sign_bytes("c-1", r["meter_id"], r["timestamp"], r["import_register_wh"],
                                    r["export_register_wh"])
        assert verify(signer[r["meter_id"]].pubkey, bytes.fromhex(r["signature"]), signed)


@pytest.mark.parametrize(("extra", "message"), [
    (("--meter", "m-bob", "--at", "1767265200", "--import", "1Wh", "--export", "0Wh"), "--meter-chain-id"),
    (("--meter", "m-bob", "--at", "1767265200", "--meter-chain-id", "c"), "needs --meter, --at, --import"),
    (("--meter", "m-bob", "--at", "1767265200", "--import", "1", "--export", "0Wh", "--meter-chain-id", "c"),
     "energy '1'"),
    (("--meter", "m-bob", "--at", "11:00", "--import", "1Wh", "--export", "0Wh", "--meter-chain-id", "c"),
     "time '11:00'"),
    (("--meter", "m-x", "--at", "1767265200", "--import", "1Wh", "--export", "0Wh", "--meter-chain-id", "c"),
     "m-x"),
    (("--file", "x.csv", "--meter", "m-bob", "--meter-chain-id", "c"), "either --file or"),
    (("--file", "/nonexistent/r.csv", "--meter-chain-id", "c"), "No such file"),
])
def test_usage_errors_exit_2_with_one_line(offline_keyring: Path, extra: tuple[str, ...], message: str) -> None:
    result = invoke(offline_keyring, "tx", "readings", "submit", *extra, *OFFLINE)
    assert result.exit_code == USAGE, result.stdout
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("body", "message"), [
    ("meter,timestamp,import_wh\nm-bob,1,1\n", "lacks export_wh"),
    ("meter,timestamp,import_wh,export_wh\n", "has no readings"),
    ("meter,timestamp,import_wh,export_wh\nm-bob,1767265200,1,0\n,1767265200,1,0\n", "line 3: empty meter id"),
    ("meter,timestamp,import_wh,export_wh\nm-bob,1767265200,-5,0\n", "line 2: energy '-5'"),
])
def test_a_bad_readings_file_names_the_line(offline_keyring: Path, tmp_path: Path, body: str, message: str) -> None:
    rows = tmp_path / "r.csv"
    rows.write_text(body)
    result = invoke(offline_keyring, "tx", "readings", "submit", "--file", str(rows), "--meter-chain-id", "c",
                    *OFFLINE)
    assert result.exit_code == USAGE
    assert message in result.stderr


# -- on a node ----------------------------------------------------------------------------------------
class Setup:
    def __init__(self, node: LocalNode, chain: Chain, keyring: Path, genesis: int, traded_slot: int) -> None:
        self.node, self.chain, self.keyring = node, chain, keyring
        self.genesis, self.traded_slot = genesis, traded_slot
        self.url = node.ports.rpc_url

    def json(self, *args: str) -> Any:
        return cli_json(self.keyring, self.url, *args)

    def run(self, *args: str) -> Any:
        return invoke(self.keyring, *args, node=self.url)

    def last_slot_end(self) -> int:
        """The latest slot end the chain's clock has passed (readings for it are on time)."""
        now = int(self.node.rpc.query_json("/chain")["time"])
        return now // SLOT_S * SLOT_S


@pytest.fixture(scope="module")
def on_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    base = tmp_path_factory.mktemp("readings")
    chain = Chain(chain_id=CHAIN_ID, app_state=market_app_state())
    assert chain.app_state is not None
    keyring = make_keyring(base / "keyring", chain, ("alice", "bob", "erin", "dave"))
    genesis = int(time.time()) - 2 * 3_600
    # The first slot still open at the genesis time; it ends (and its one-hour window closes) long before now.
    traded_slot = -(-(genesis + 301) // SLOT_S) * SLOT_S
    with backdated_node(base / "node", chain.app_state, CHAIN_ID, genesis) as node:
        txs = [encode_tx(CHAIN_ID, order("ask", 2_000, 240_000, slot=traded_slot, valid_until=traded_slot),
                         chain.keys["alice"], 1),
               encode_tx(CHAIN_ID, order("bid", 2_000, 260_000, slot=traded_slot, valid_until=traded_slot),
                         chain.keys["bob"], 1)]
        hashes = [node.rpc.broadcast_tx_sync(raw)["hash"] for raw in txs]
        require_block_one(node, hashes)
        node.rpc.wait_height(2)
        yield Setup(node, chain, keyring, genesis, traded_slot)


@pytest.mark.e2e
def test_a_single_reading_is_relayed_and_queried(on_node: Setup) -> None:
    at = on_node.last_slot_end()
    result = on_node.json("tx", "readings", "submit", "--meter", "m-erin", "--at", str(at), "--import", "1.5kWh",
                          "--export", "200Wh", "--from", "dave", "--wait")
    assert result["code"] == 0, result
    (event,) = [e for e in result["events"] if e["type"] == "reading"]
    # The first reading since registration (at the genesis, two hours ago) covers every slot since then; the
    # slots past their deadline were already billed with a substitute, so only the later ones get a share.
    assert (event["meter"], event["owner"], event["imported_wh"]) == ("m-erin", on_node.chain.id("erin"), "1500")
    assert int(event["slots"]) > int(event["allocated_slots"]) >= 1
    last = on_node.json("query", "reading", "m-erin")
    assert last == {"meter": "m-erin", "time": at, "time_utc": datetime.fromtimestamp(at, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"), "import_register_wh": 1_500, "export_register_wh": 200}


@pytest.mark.e2e
def test_a_readings_file_with_two_slot_ends_and_two_meters(on_node: Setup, tmp_path: Path) -> None:
    at = on_node.last_slot_end()
    rows = tmp_path / "readings.csv"
    rows.write_text("meter,timestamp,import_wh,export_wh,meter_key\n"
                    f"m-bob,{at - SLOT_S},1000,0,\n"
                    f"m-dave,{at},700,0,m-dave\n"
                    f"m-bob,{at},1800,0,\n")
    result = on_node.json("tx", "readings", "submit", "--file", str(rows), "--from", "bob", "--wait")
    assert result["code"] == 0, result
    events = [e for e in result["events"] if e["type"] == "reading"]
    # m-bob's second reading covers one slot: its previous reading is at that slot's start.
    assert [(e["meter"], e["imported_wh"]) for e in events] == [("m-bob", "1000"), ("m-dave", "700"), ("m-bob", "800")]
    assert (events[2]["slots"], events[2]["allocated_slots"]) == ("1", "1")
    assert on_node.json("query", "reading", "m-bob")["import_register_wh"] == 1_800


@pytest.mark.e2e
def test_rejected_readings_exit_1_with_the_code(on_node: Setup) -> None:
    at = on_node.last_slot_end()
    # m-carol's reading signed with m-alice's key: not the meter's signature (80).
    wrong_key = on_node.run("tx", "readings", "submit", "--meter", "m-carol", "--meter-key", "m-alice", "--at",
                            str(at), "--import", "0Wh", "--export", "10Wh", "--from", "alice", "--output", "json")
    assert wrong_key.exit_code == TX_REJECTED
    assert json.loads(wrong_key.stdout)["check_code"] == 80
    # A slot that has not ended yet (82): the block decides it, since the next block's time may have reached it.
    early = on_node.run("tx", "readings", "submit", "--meter", "m-carol", "--at", str(at + 2 * SLOT_S), "--import",
                        "0Wh", "--export", "10Wh", "--from", "alice", "--output", "json", "--wait")
    assert early.exit_code == TX_REJECTED
    assert json.loads(early.stdout)["code"] == 82


@pytest.mark.e2e
def test_settlement_queries_show_the_slot_traded_in_block_one(on_node: Setup) -> None:
    slot, alice, bob = on_node.traded_slot, on_node.chain.id("alice"), on_node.chain.id("bob")
    whole = on_node.json("query", "settlement", str(slot))
    raw = on_node.node.rpc.query_json(f"/settlement/{slot}")
    # No meter ever reported: all five participants were billed their meters' substitutes.
    assert whole["complete"] is True and whole["participants"] == 5
    assert {alice, bob} <= {r["account"] for r in whole["reports"]}
    twins = ("_fmt", "_utc")
    assert [{k: v for k, v in r.items() if not k.endswith(twins)} for r in whole["reports"]] == raw["reports"]
    mine = on_node.json("query", "settlement", str(slot), "alice")
    # No readings: alice's 20 kW meter is billed its substitute, 5000 Wh imported and nothing exported in the
    # 15-minute slot, against 2000 Wh sold. D = -7000 Wh at the balancing price: amount(7000, 600000) =
    # 4_200_000; the 5000 Wh import she did not buy pays zone a's fee: amount(5000, 10000) = 50_000. What her
    # slot position held pays first: collateral amount(2000, 20000) = 40_000 and her 480_000 proceeds.
    assert (mine["sold_wh"], mine["measured_wh"], mine["deviation_wh"], mine["substituted"]) == (
        2_000, -5_000, -7_000, True)
    assert (mine["balancing_charge"], mine["network_charge"], mine["collateral_used"], mine["paid_from_balance"]) == (
        4_200_000, 50_000, 40_000 + 480_000, 4_250_000 - 520_000)
    assert (mine["charged_fmt"], mine["energy_received_fmt"]) == ("4.250000 EUR", "0.480000 EUR")
    listed = on_node.json("query", "settlements", "bob")
    # bob bought 2000 Wh; his substitute imports 5000: D = -3000 Wh.
    assert (slot, 2_000, -3_000) in [(r["slot"], r["bought_wh"], r["deviation_wh"]) for r in listed]
    table = on_node.run("query", "settlement", str(slot))
    assert table.exit_code == 0 and "slot settlement" in table.stdout and alice in table.stdout


@pytest.mark.e2e
def test_a_statement_lists_the_money_movements_and_writes_billing_csv(on_node: Setup, tmp_path: Path) -> None:
    out = tmp_path / "alice.csv"
    lines = on_node.json("query", "statement", "alice", "--from", str(on_node.genesis), "--csv", str(out))
    kinds = [(line["kind"], line["amount"]) for line in lines]
    # Block 1: alice sold 2000 Wh at 0.24 EUR/kWh; block 2 settled every slot past its deadline with her silent
    # meter's substitutes: the traded slot's shortfall and network charge (see the test above), the others'
    # supply and network charges.
    assert kinds[0] == ("energy_sold", 480_000) and ("balancing_charge", -4_200_000) in kinds
    assert {kind for kind, _ in kinds[1:]} <= {"balancing_charge", "supply_charge", "network_charge", "debt_repaid"}
    assert lines[0]["time"] == on_node.genesis and lines[0]["height"] == 1
    with out.open(newline="") as handle:
        written = list(csv.reader(handle))
    genesis_utc = datetime.fromtimestamp(on_node.genesis, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert written[0] == ["time", "height", "kind", "amount", "amount_fmt", "reference"]
    assert written[1][:5] == [genesis_utc, "1", "energy_sold", "480000", "0.480000 EUR"]
    assert ["balancing_charge", "-4200000", "-4.200000 EUR"] in [row[2:5] for row in written[2:]]
    # The period excludes its end: nothing before the genesis.
    assert on_node.json("query", "statement", "alice", "--to", str(on_node.genesis)) == []
    backwards = on_node.run("query", "statement", "alice", "--from", "10", "--to", "5")
    assert backwards.exit_code == USAGE and "--to must be after --from" in backwards.stderr


@pytest.mark.e2e
def test_query_errors_are_one_line(on_node: Setup) -> None:
    missing = on_node.run("query", "reading", "m-nobody")
    assert missing.exit_code == USAGE and "no accepted reading" in missing.stderr
    unsettled = on_node.run("query", "settlement", str(on_node.traded_slot + 100 * SLOT_S))
    assert unsettled.exit_code == USAGE and "no settlement yet" in unsettled.stderr



@pytest.mark.e2e
def test_scenario_run_through_the_cli_relays_recent_readings(on_node: Setup, tmp_path: Path) -> None:
    """`gridledger scenario run` end to end over RPC: readings of the last ended slot, no waiting for settlement."""
    slot_end = on_node.last_slot_end()
    scenario = tmp_path / "recent.csv"
    scenario.write_text("# alice's meter exported 1.2 kWh in the last ended slot\n"
                        "slot,participant,action,meter,import_wh,export_wh\n"
                        "0,alice,reading,m-alice,100,1.2kWh\n")
    result = on_node.run("scenario", "run", str(scenario), "--start", str(slot_end - SLOT_S), "--no-settle",
                         "--output", "json")
    assert result.exit_code == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert (row["participant"], row["change"], row["slots_settled"]) == ("alice", 0, 0)
    # A zero-flow base reading at the start, then the slot's flow on top of it (so it counts for the slot).
    assert on_node.json("query", "reading", "m-alice") | {"time_utc": ""} == {
        "meter": "m-alice", "time": slot_end, "time_utc": "", "import_register_wh": 100, "export_register_wh": 1_200}
    flows = on_node.node.rpc.tx_search(f"reading.meter='m-alice' AND reading.slot={slot_end - SLOT_S}")
    assert flows["total_count"] == "1"
    table = on_node.run("scenario", "run", str(scenario), "--start", str(slot_end - SLOT_S), "--no-settle")
    assert table.exit_code == 2 and "already reported up to" in table.stderr

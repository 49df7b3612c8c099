"""Everyday CLI use without a chain: times as people write them, order inputs checked before signing, node
addresses, the client config file, completion, one event per line, and `code` in every transaction record."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from abci_app.ledger.crypto import SigningKey
from cli.main import app
from cli.options import complete_keys, complete_zones
from cli.output import _cell
from node.client import config as client_config
from node.client.chain import TxResult
from node.client.keystore import Keystore
from node.client.orders import OrderInput, build_order
from node.client.slots import SlotRules, iso, parse_duration, resolve_valid_until
from node.client.units import UnitError
from node.rpc import RpcError, normalize_url

RULES = SlotRules(slot_length_s=900, gate_closure_lead_s=300, max_slot_ahead_s=172_800)
NOW = 1_795_718_000  # 2026-11-26T18:33:20Z
PARAMS: dict[str, Any] = {"slot_length_s": 900, "gate_closure_lead_s": 300, "max_slot_ahead_s": 172_800,
                          "tick_size": 100, "min_price_per_kwh": 0, "max_price_per_kwh": 10_000_000,
                          "min_quantity_wh": 100}


# -- slots ------------------------------------------------------------------------------------------------
def test_basic_slot_words() -> None:
    assert iso(RULES.resolve("next", NOW)) == "2026-11-26T18:45Z"  # gate 18:40, still ahead of 18:33
    assert iso(RULES.resolve("+2h", NOW)) == "2026-11-26T20:30Z"  # the slot in progress at 20:33
    assert iso(RULES.resolve("+1h30m", NOW)) == "2026-11-26T20:00Z"
    assert RULES.resolve("2026-11-27T14:00Z", NOW) == RULES.resolve("2026-11-27T15:00+01:00", NOW)
    assert RULES.resolve(" NEXT ", NOW) == RULES.resolve("next", NOW)
    assert parse_duration("+1d2h3m4s") == 93_784 and parse_duration("2h") is None


def test_basic_next_skips_a_slot_whose_gate_closed() -> None:
    at_gate = RULES.resolve("next", NOW) - 300  # the gate closure of the next slot
    assert RULES.resolve("next", at_gate) == RULES.resolve("next", NOW) + 900


def test_basic_open_slots() -> None:
    slots = RULES.open_slots(NOW, 4)
    assert [iso(s) for s in slots] == ["2026-11-26T18:45Z", "2026-11-26T19:00Z", "2026-11-26T19:15Z",
                                       "2026-11-26T19:30Z"]
    assert len(RULES.open_slots(NOW, 10**6)) == 192


@pytest.mark.parametrize(("text", "fix"), [
    ("2026-11-27T14:07Z", "2026-11-27T14:00Z or 2026-11-27T14:15Z"),
    ("tomorrow", "write next, +2h"),
    ("2026-11-27T14:00", "has no zone: add Z"),
])
def test_invalid_slot_text(text: str, fix: str) -> None:
    with pytest.raises(UnitError, match=re.escape(fix)):
        RULES.resolve(text, NOW)


def test_invalid_closed_and_far_slots() -> None:
    with pytest.raises(UnitError, match=r"closed at .* next open slot is 2026-11-26T18:45Z"):
        RULES.check_open(RULES.resolve("+1m", NOW), NOW)
    with pytest.raises(UnitError, match="more than 2 d ahead"):
        RULES.check_open(RULES.resolve("+3d", NOW), NOW)


def test_basic_valid_until() -> None:
    slot = RULES.resolve("next", NOW)
    assert resolve_valid_until(None, slot, RULES, NOW) == slot
    assert resolve_valid_until("+15m", slot, RULES, NOW) == NOW + 900
    assert resolve_valid_until("gate", slot, RULES, NOW) == slot - 300
    assert resolve_valid_until("slot-end", slot, RULES, NOW) == slot + 900
    with pytest.raises(UnitError, match="write \\+15m"):
        resolve_valid_until("soon", slot, RULES, NOW)


# -- orders checked before signing -----------------------------------------------------------------------
def order(**fields: str) -> OrderInput:
    base = {"side": "ask", "qty": "2kWh", "price": "0.24EUR/kWh", "slot": "next", "origin": "solar"}
    return OrderInput(**{**base, **fields})


def test_basic_order_is_built() -> None:
    msg = build_order(order(), "EUR", 6, PARAMS, NOW)
    assert (msg.side, msg.quantity_wh, msg.price, msg.slot, msg.origin) == ("ask", 2000, 240_000,
                                                                             RULES.resolve("next", NOW), "solar")
    bid = build_order(order(side="bid", origin="", accept="wind, solar"), "EUR", 6, PARAMS, NOW)
    assert bid.accept_origins == ("solar", "wind") and bid.origin == ""


@pytest.mark.parametrize(("fields", "message"), [
    ({"side": "buy"}, "side 'buy': choose one of bid, ask"),
    ({"origin": "sun"}, "origin 'sun': choose one of solar"),
    ({"tif": "gtc"}, "time in force 'gtc'"),
    ({"price": "0.27EUR/MWh"}, "not on the tick of 0.000100 EUR/kWh: use 0.000200 EUR/kWh or 0.000300 EUR/kWh"),
    ({"price": "11EUR/kWh"}, "outside"),
    ({"qty": "50Wh"}, "below the minimum of 100 Wh"),
    ({"accept": "solar"}, "--accept is for bids"),
    ({"side": "bid"}, "--origin is for asks"),
    ({"slot": "2026-11-21T12:00Z"}, "closed"),
    ({"valid_until": "2026-01-01T00:00Z"}, "has passed"),
    ({"price": "0.24TOK/kWh"}, "this chain settles in EUR"),
])
def test_invalid_order(fields: dict[str, str], message: str) -> None:
    with pytest.raises(UnitError, match=re.escape(message)):
        build_order(order(**fields), "EUR", 6, PARAMS, NOW)


def test_basic_offline_order_checks_only_what_needs_no_chain() -> None:
    msg = build_order(order(slot="1795719600"), "EUR", 6, None, NOW)
    assert msg.slot == msg.valid_until == 1_795_719_600
    with pytest.raises(UnitError):
        build_order(order(side="sell"), "EUR", 6, None, NOW)


# -- node addresses ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "url"), [
    ("http://127.0.0.1:26657", "http://127.0.0.1:26657"), ("http://127.0.0.1:26657/", "http://127.0.0.1:26657"),
    ("tcp://127.0.0.1:26657", "http://127.0.0.1:26657"), ("127.0.0.1:26657", "http://127.0.0.1:26657"),
    ("localhost:26657", "http://localhost:26657"), ("https://rpc.example:443", "https://rpc.example:443"),
])
def test_basic_node_addresses(text: str, url: str) -> None:
    assert normalize_url(text) == url


@pytest.mark.parametrize("text", ["127.0.0.1", "ftp://x:1", "127.0.0.1:2665 7", ""])
def test_invalid_node_addresses(text: str) -> None:
    with pytest.raises(RpcError, match="write http://HOST:PORT"):
        normalize_url(text)


def test_invalid_node_address_exits_2() -> None:
    result = CliRunner().invoke(app, ["status", "--node", "127.0.0.1"])
    assert result.exit_code == 2 and "write http://HOST:PORT" in result.stderr


# -- the config file ------------------------------------------------------------------------------------------
def test_basic_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLEDGER_CONFIG", str(tmp_path / "client.toml"))
    monkeypatch.delenv("GRIDLEDGER_NODE", raising=False)
    runner = CliRunner()
    assert runner.invoke(app, ["config", "set", "node", "tcp://127.0.0.1:1"]).exit_code == 0
    assert client_config.read() == {"node": "http://127.0.0.1:1"}
    # The file's node is the default: `status` goes there (nothing listens: exit 3 naming it).
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 3 and "127.0.0.1:1" in result.stderr
    assert "GRIDLEDGER_NODE" not in os.environ  # a default of that one command, not of the process
    # The environment wins over the file.
    monkeypatch.setenv("GRIDLEDGER_NODE", "http://127.0.0.1:2")
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 3 and "127.0.0.1:2" in result.stderr
    assert runner.invoke(app, ["config", "unset", "node"]).exit_code == 0
    assert client_config.read() == {}


def test_invalid_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLEDGER_CONFIG", str(tmp_path / "client.toml"))
    result = CliRunner().invoke(app, ["config", "set", "colour", "red"])
    assert result.exit_code == 2 and "unknown key 'colour'" in result.stderr
    result = CliRunner().invoke(app, ["config", "set", "node", "nowhere"])
    assert result.exit_code == 2
    (tmp_path / "client.toml").write_text("node = [")
    with pytest.raises(client_config.ConfigError, match="not a TOML file"):
        client_config.read()


# -- completion --------------------------------------------------------------------------------------------
def test_basic_completion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLEDGER_KDF_FAST", "1")
    monkeypatch.setenv("GRIDLEDGER_KEYRING_DIR", str(tmp_path))
    for name in ("alice", "alice-meter", "bob"):
        Keystore(tmp_path).add(name, "pw", SigningKey.generate())
    assert complete_keys("al") == ["alice", "alice-meter"]
    monkeypatch.setenv("GRIDLEDGER_NODE", "http://127.0.0.1:1")
    assert complete_zones("z") == []  # no node: no suggestions, no error


# -- output ---------------------------------------------------------------------------------------------
def test_basic_one_event_per_line_and_code_in_every_record() -> None:
    events = [{"type": "order.placed", "id": "1"}, {"type": "trade", "id": "1", "buyer": "b"}]
    assert _cell(events) == "order.placed  id=1\ntrade  buyer=b id=1"
    refused = TxResult("AB", check_code=22, check_log="insufficient funds").record()
    assert refused["code"] == 22 and refused["log"] == "insufficient funds"
    committed = TxResult("AB", 0, "", height=5, code=61, log="gate closed").record()
    assert (committed["check_code"], committed["code"]) == (0, 61)


def test_basic_testnet_up_reports_what_it_started() -> None:
    from cli.testnet import up_summary

    assert up_summary([{"node": "node3", "state": "started"}], 4) == "node3 started; the other 3 nodes not touched"
    both = [{"node": "node0", "state": "started"}, {"node": "node1", "state": "already running"}]
    assert up_summary(both, 2) == "node0 started; node1 already running"


def test_basic_formatted_values_come_first_in_tables() -> None:
    from cli.output import formatted_first

    record = {"balance": 5, "nonce": 1, "slot": 9, "balance_fmt": "0.000005 EUR", "slot_utc": "1970-01-01T00:00Z"}
    assert formatted_first(record) == ["balance_fmt", "balance", "nonce", "slot_utc", "slot"]

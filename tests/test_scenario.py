"""The scenario runner on an in-process chain: a day of 24 hourly slots in seconds, balances checked by hand."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from cli.output import USAGE
from lab.scenario import Keys, Runner, ScenarioError, TxFailed, TxOutcome, load_scenario
from tests.harness import GENESIS_TIME, Chain, seeded_key
from tests.market_harness import market_app_state

DAY = Path(__file__).resolve().parent.parent / "config" / "scenarios" / "day-hourly.csv"
HOUR = 3_600
START = GENESIS_TIME + HOUR
"""2026-01-01T01:00Z: slot 0 of the scenario is the chain's second hour, so every meter has reported since genesis
(a meter silent through a settled slot would be billed its substitute)."""
PARTICIPANTS = ("alice", "bob", "dave")
HEADER = "slot,participant,action,quantity_wh,price,origin,meter,import_wh,export_wh\n"


class ChainTransport:
    """The runner's view of an in-process chain: a block per submission, and block time that jumps on request."""

    def __init__(self, chain: Chain, block_dt: int = 5) -> None:
        self.chain = chain
        self.block_dt = block_dt
        self.submissions: list[int] = []
        """Block time of every block that carried scenario transactions."""

    def query(self, path: str, optional: bool = False) -> Any:
        try:
            return self.chain.query(path)
        except LookupError:
            if optional:
                return None
            raise

    def block_time(self) -> int:
        seconds: int = self.chain.query("/chain")["time"]
        return seconds

    def wait_block_time(self, target: int) -> int:
        if self.chain.time < target:
            self.chain.block(dt=target - self.chain.time)
        return self.chain.time

    def submit(self, txs: Sequence[bytes]) -> list[TxOutcome]:
        checked = [(raw, self.chain.check(raw)) for raw in txs]
        accepted = [raw for raw, check in checked if check.code == 0]
        results = iter(self.chain.block(accepted, dt=self.block_dt).tx_results)
        self.submissions.append(self.chain.time)
        outcomes = []
        for _raw, check in checked:
            if check.code != 0:
                outcomes.append(TxOutcome("", check.code, check.log, 0))
                continue
            result = next(results)
            outcomes.append(TxOutcome("", result.code, result.log, self.chain.height))
        return outcomes


def hourly_chain(**params: int) -> Chain:
    """The market harness (fees, 20 kW meters m-<name>, 10 EUR each) with hourly slots; only the day's three
    participants have meters (a meter that never reports would be billed its substitute every hour)."""
    state = market_app_state(slot_length_s=HOUR, **params)
    state["meters"] = [m for m in state["meters"] if m["id"] in ("m-alice", "m-bob", "m-dave")]
    chain = Chain(app_state=state)
    chain.block()
    return chain


def chain_keys(chain: Chain) -> Keys:
    return Keys(accounts=dict(chain.keys), meters={f"m-{name}": seeded_key(f"meter-{name}") for name in chain.keys})


def play(chain: Chain, scenario_file: Path, **options: Any) -> tuple[list[dict[str, Any]], ChainTransport]:
    transport = ChainTransport(chain)
    logged: list[str] = []
    # Re-reading the settlement deadline every 10 min of block time keeps the jumps (and empty blocks) few.
    runner = Runner(load_scenario(scenario_file), transport, chain_keys(chain), log=logged.append, recheck_s=600,
                    **options)
    return runner.play(), transport


def by_name(summary: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["participant"]: row for row in summary}


def report(chain: Chain, hour: int, name: str) -> Any:
    return chain.query(f"/settlement/{START + hour * HOUR}/{chain.id(name)}")


# -- the day ----------------------------------------------------------------------------------------
def test_a_day_of_hourly_slots_ends_with_the_hand_checked_balances() -> None:
    chain = hourly_chain()
    lpd_before = balancing_lpd_balance(chain)
    summary, transport = play(chain, DAY, start=START)
    rows = by_name(summary)
    # Trades, all at alice's ask of 0.20 EUR/kWh (continuous matching: the incoming bid pays the resting ask):
    #   hours 8, 9, 16, 17: alice sells 2000 Wh, bob and dave buy 1000 Wh each;
    #   hours 10-15:        alice sells 4000 Wh, bob and dave buy 2000 Wh each.
    #   sold 4*2000 + 6*4000 = 32000 Wh; bob and dave each bought 16000 Wh.
    # Energy: 16000 Wh * 200000/kWh = 3_200_000 from each buyer to alice (6_400_000 in all).
    # Grid fees: bob (zone a, same zone) 16000 * 10000/kWh = 160_000; dave (zone b) 16000 * 30000/kWh = 480_000.
    # Deviations (docs/settlement.md):
    #   12:00 alice exports 3000 of 4000 sold: D = -1000 Wh; nobody is long, so the LPD supplies it: charge
    #         1000 x max(her price 200000, balancing 600000) = 600_000, all of it from what her slot position
    #         held (collateral amount(4000, 20000) and her 800_000 proceeds); the reserve pays the LPD 600_000;
    #   14:00 bob imports 1500 of 2000 bought: D = +500 Wh, credit 500 x min(his price 200000, 50000) = 25_000;
    #         the LPD takes the net surplus at 50000 and pays the reserve 25_000, which pays bob;
    #   20:00 dave imports 500 Wh without a trade: energy outside the market, 500 x 300000 = 150_000 supply
    #         (to the LPD) and 500 x 10000 = 5_000 network charge (zone b's fee, to dso-b).
    # alice: 10_000_000 + 6_400_000 - 600_000             = 15_800_000
    # bob:   10_000_000 - 3_200_000 - 160_000 + 25_000    =  6_665_000
    # dave:  10_000_000 - 3_200_000 - 480_000 - 155_000   =  6_165_000
    expected = {"alice": 15_800_000, "bob": 6_665_000, "dave": 6_165_000}
    assert {name: row["balance"] for name, row in rows.items()} == expected
    assert {name: row["change"] for name, row in rows.items()} == {
        "alice": 5_800_000, "bob": -3_335_000, "dave": -3_835_000}
    # Every lock (orders, collateral) is released by the settlement; nobody owes anything.
    assert all((row["locked"], row["debt"], row["free"]) == (0, 0, row["balance"]) for row in summary)
    assert {name: (row["sold_wh"], row["bought_wh"], row["exported_wh"], row["imported_wh"])
            for name, row in rows.items()} == {
        "alice": (32_000, 0, 31_000, 0), "bob": (0, 16_000, 0, 15_500), "dave": (0, 16_000, 0, 16_500)}
    assert {name: (row["fees_paid"], row["balancing_charges"], row["supply_charges"], row["network_charges"],
                   row["credits"]) for name, row in rows.items()} == {
        "alice": (0, 600_000, 0, 0, 0), "bob": (160_000, 0, 0, 0, 25_000), "dave": (480_000, 0, 150_000, 5_000, 0)}
    assert rows["alice"]["balance_fmt"] == "15.800000 EUR" and rows["bob"]["change_fmt"] == "-3.335000 EUR"
    # Each of the 24 slots was settled for all three (every meter reports every hour).
    assert {row["slots_settled"] for row in summary} == {24}
    assert balancing_lpd_balance(chain) - lpd_before == 600_000 - 25_000 + 150_000
    assert dso_fee_income(chain) == 160_000 + 480_000 + 5_000
    cloudy = report(chain, 12, "alice")
    assert (cloudy["deviation_wh"], cloudy["balancing_charge"], cloudy["collateral_used"],
            cloudy["paid_from_balance"]) == (-1_000, 600_000, 600_000, 0)
    assert (report(chain, 14, "bob")["deviation_wh"], report(chain, 14, "bob")["credit_paid"]) == (500, 25_000)
    assert (report(chain, 20, "dave")["regime"], report(chain, 20, "dave")["supply_charge"]) == ("tariff", 150_000)
    quiet = report(chain, 23, "dave")
    assert (quiet["measured_wh"], quiet["deviation_wh"]) == (0, 0)
    # Orders went in before any gate closed; readings at each of the 25 slot ends (a zero-flow base at the start),
    # and the idle meters went on reporting zero flow while the runner waited for the settlement, up to the last
    # slot end reached: no slot after the day is billed a substitute.
    assert transport.submissions[0] < START
    last_read = chain.query("/reading/m-alice")["time"]
    assert last_read == chain.time // HOUR * HOUR and last_read > START + 24 * HOUR
    after_the_day = [r for r in chain.query(f"/settlements/{chain.id('alice')}")["reports"]
                     if r["slot"] >= START + 24 * HOUR]
    assert all(r["balancing_charge"] == r["supply_charge"] == 0 for r in after_the_day)


def balancing_lpd_balance(chain: Chain) -> int:
    lpd = min(chain.id("lpd"), chain.id("lpd_b"))
    balance: int = chain.query(f"/account/{lpd}")["balance"]
    return balance


def dso_fee_income(chain: Chain) -> int:
    return sum(chain.query(f"/account/{chain.id(dso)}")["balance"] for dso in ("dso", "dso_b"))


def test_a_relayer_submits_every_reading_and_the_balances_are_the_same() -> None:
    chain = hourly_chain()
    summary, _ = play(chain, DAY, start=START, relayer="lpd")
    assert {row["participant"]: row["balance"] for row in summary} == {
        "alice": 15_800_000, "bob": 6_665_000, "dave": 6_165_000}
    # One transaction per slot end (the zero-flow base at the start, 24 slot ends, and each hour after the day
    # while the runner waits for the settlement) carries all three meters.
    idle_hours = (chain.query("/reading/m-alice")["time"] - (START + 24 * HOUR)) // HOUR
    assert idle_hours >= 1
    assert chain.query(f"/account/{chain.id('lpd')}")["nonce"] == 25 + idle_hours


def test_without_start_the_first_open_slot_is_slot_zero(tmp_path: Path) -> None:
    chain = hourly_chain()
    scenario = tmp_path / "one.csv"
    scenario.write_text(HEADER + "0,alice,ask,1000,0.20EUR/kWh,solar,,,\n0,bob,bid,1000,0.26EUR/kWh,,,,\n"
                        "0,alice,reading,,,,m-alice,0,1000\n0,bob,reading,,,,m-bob,1000,0\n")
    summary, _ = play(chain, scenario)
    # Block time 00:00:05: the 01:00 slot's gate (00:55) is the first at least a minute away: slot 0 is 01:00.
    assert chain.query(f"/trades/slot/{GENESIS_TIME + HOUR}")["trades"][0]["quantity_wh"] == 1_000
    assert by_name(summary)["alice"]["change"] == 200_000
    assert by_name(summary)["bob"]["change"] == -210_000


def test_no_settle_returns_after_the_last_reading_with_collateral_still_locked(tmp_path: Path) -> None:
    chain = hourly_chain()
    scenario = tmp_path / "one.csv"
    scenario.write_text(HEADER + "0,alice,ask,1000,0.20EUR/kWh,solar,,,\n0,bob,bid,1000,0.26EUR/kWh,,,,\n")
    summary, _ = play(chain, scenario, start=START, settle=False)
    # amount(1000, 20000) = 20_000 collateral each, held until the slot settles.
    # alice's collateral and her 200_000 proceeds, bob's collateral: held until the slot settles.
    assert {row["participant"]: row["locked"] for row in summary} == {"alice": 20_000 + 200_000, "bob": 20_000}
    assert {row["slots_settled"] for row in summary} == {0}


# -- refusals -----------------------------------------------------------------------------------------
def test_a_rejected_order_stops_the_run_with_its_line_and_code(tmp_path: Path) -> None:
    chain = hourly_chain()
    scenario = tmp_path / "bad.csv"
    # 25 kWh in one hour exceeds alice's 20 kW export capacity (code 66).
    scenario.write_text(HEADER + "3,alice,ask,25000,0.20EUR/kWh,solar,,,\n")
    # CheckTx admits it (capacity depends on the slot's other orders); the block rejects it.
    with pytest.raises(TxFailed, match=r"line 2 \(alice ask\): rejected at height \d+, code 66"):
        play(chain, scenario, start=START)


def test_a_start_whose_gate_has_closed_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    chain = hourly_chain()
    scenario = tmp_path / "late.csv"
    scenario.write_text(HEADER + "0,alice,ask,1000,0.20EUR/kWh,solar,,,\n")
    with pytest.raises(ScenarioError, match="gate of slot 0"):
        play(chain, scenario, start=GENESIS_TIME)
    assert chain.query(f"/account/{chain.id('alice')}")["nonce"] == 0


def test_a_meter_of_another_participant_is_refused(tmp_path: Path) -> None:
    chain = hourly_chain()
    scenario = tmp_path / "meter.csv"
    scenario.write_text(HEADER + "0,alice,reading,,,,m-bob,0,100\n")
    with pytest.raises(ScenarioError, match="m-bob is registered to"):
        play(chain, scenario, start=START)


def test_a_start_that_is_not_a_slot_start_is_refused(tmp_path: Path) -> None:
    chain = hourly_chain()
    scenario = tmp_path / "s.csv"
    scenario.write_text(HEADER + "0,alice,reading,,,,m-alice,0,100\n")
    with pytest.raises(ScenarioError, match="not a slot start"):
        play(chain, scenario, start=START + 900)


@pytest.mark.parametrize(("body", "message"), [
    ("slot,participant\n0,alice\n", "missing action"),
    (HEADER.replace("origin", "colour"), "unknown column colour"),
    (HEADER + "x,alice,bid,1000,0.2EUR/kWh,,,,\n", "slot 'x'"),
    (HEADER + "0,alice,sell,1000,0.2EUR/kWh,,,,\n", "action 'sell'"),
    (HEADER + "0,alice,bid,,0.2EUR/kWh,,,,\n", "needs quantity_wh and price"),
    (HEADER + "0,alice,bid,1.5kW,0.2EUR/kWh,,,,\n", "energy '1.5kW'"),
    (HEADER + "0,alice,reading,,,,,1,0\n", "names its meter"),
    (HEADER + "0,alice,reading,,,,m-a,1,0\n1,bob,reading,,,,m-a,1,0\n", "another participant"),
    (HEADER + "0,alice,reading,,,,m-a,1,0\n0,alice,reading,,,,m-a,2,0\n", "two readings for slot 0"),
    (HEADER + "0,alice,bid,1000,0.2EUR/kWh,,,,,,\n", "11 cells"),
    (HEADER, "no rows"),
    ("# only a comment\n", "is empty"),
])
def test_malformed_scenarios_name_the_line_and_the_problem(tmp_path: Path, body: str, message: str) -> None:
    scenario = tmp_path / "s.csv"
    scenario.write_text(body)
    with pytest.raises(ScenarioError, match=message):
        load_scenario(scenario)


def test_the_shipped_day_parses_to_24_slots_of_three_participants() -> None:
    scenario = load_scenario(DAY)
    assert scenario.slots == 24
    assert scenario.participants == sorted(PARTICIPANTS)
    assert len(scenario.orders) == 30 and set(scenario.meters) == {"m-alice", "m-bob", "m-dave"}


def test_cli_usage_errors_exit_2_without_contacting_a_node(tmp_path: Path) -> None:
    scenario = tmp_path / "s.csv"
    scenario.write_text("slot,participant\n")
    unreachable = "http://127.0.0.1:9"
    result = CliRunner().invoke(app, ["scenario", "run", str(scenario), "--node", unreachable])
    assert result.exit_code == USAGE
    assert "missing action" in result.stderr and "Traceback" not in result.stderr
    result = CliRunner().invoke(app, ["scenario", "run", str(DAY), "--start", "tomorrow", "--node", unreachable])
    assert result.exit_code == USAGE and "time 'tomorrow'" in result.stderr
    result = CliRunner().invoke(app, ["scenario", "run", str(DAY), "--keyring-dir", str(tmp_path / "none"),
                                      "--node", unreachable], env={"GRIDLEDGER_PASSPHRASE": "x"})
    assert result.exit_code == USAGE and "alice" in result.stderr


# -- idle meters, capacities, the replay roster ---------------------------------------------------------------
def test_meters_silent_since_genesis_report_zero_flow_before_the_balances_are_taken() -> None:
    """START is the second hour, and the meters were silent in the first: the runner reports their zero flow
    up to the last slot end before the start first (within the window, so nothing is substituted)."""
    chain = hourly_chain()
    chain.block(dt=HOUR + 60 - (chain.time - GENESIS_TIME))  # 01:01: the 00:00 slot has ended
    summary, _ = play(chain, DAY, start=START + HOUR)
    assert by_name(summary)["alice"]["change"] == 5_800_000
    first = chain.query(f"/settlement/{GENESIS_TIME}/{chain.id('alice')}")
    assert first["measured_wh"] == 0 and first["supply_charge"] == first["balancing_charge"] == 0


def test_meters_silent_past_the_window_are_substituted_first_and_the_run_is_not_billed_for_it() -> None:
    """Silent for 3 hours with a 1-hour window: the idle reading is refused (code 83) until the settlement has
    billed the overdue slots their substitutes; the runner sends it again, and takes the balances after."""
    # A batch of 2 spreads the substitutes of two hours of three meters over several blocks.
    state = market_app_state(slot_length_s=HOUR, settlement_batch=2)
    state["meters"] = [m for m in state["meters"] if m["id"] in ("m-alice", "m-bob", "m-dave")]
    for participant in state["participants"]:
        participant["balance"] = 100_000_000  # enough for two substituted hours and the day's orders
    chain = Chain(app_state=state)
    chain.block()
    chain.block(dt=3 * HOUR + 10 - (chain.time - GENESIS_TIME))
    start = GENESIS_TIME + 5 * HOUR
    transport = ChainTransport(chain, block_dt=1)
    logged: list[str] = []
    summary = Runner(load_scenario(DAY), transport, chain_keys(chain), log=logged.append, recheck_s=600,
                     start=start).play()
    assert any("awaits its substitute" in line and "trying again" in line for line in logged), logged[:5]
    rows = by_name(summary)
    assert {name: row["change"] for name, row in rows.items()} == {
        "alice": 5_800_000, "bob": -3_335_000, "dave": -3_835_000}
    # The substitutes were billed before the run: bob's first slot, a silent 20 kW meter, at the supplier tariff.
    substituted = chain.query(f"/settlement/{GENESIS_TIME}/{chain.id('bob')}")
    assert substituted["measured_wh"] == -20_000 and substituted["supply_charge"] == 6_000_000


def test_a_reading_above_the_meters_capacity_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    chain = hourly_chain()
    scenario = tmp_path / "big.csv"
    # 25 kWh out in one hour: alice's meter carries 20 kW, 20 kWh in an hour's slot.
    scenario.write_text(HEADER + "0,alice,ask,1000,0.20EUR/kWh,solar,,,\n3,alice,reading,,,,m-alice,0,25kWh\n")
    with pytest.raises(ScenarioError, match=r"line 3: meter m-alice exports 25000 Wh in slot 3, more than its "
                                            r"registered 20000 W carry in a 3600 s slot \(20000 Wh\)"):
        play(chain, scenario, start=START)
    assert chain.query(f"/account/{chain.id('alice')}")["nonce"] == 0


REPLAY_ROSTER = DAY.parents[1] / "replay-4.toml"


def replay_chain() -> tuple[Chain, Keys]:
    """The genesis `testnet init --roster config/replay-4.toml` writes, with seeded keys, in-process."""
    from lab.testnet.roster import app_state, load_roster

    roster = load_roster(REPLAY_ROSTER)
    names = [op.name for op in roster.operators] + [p.name for p in roster.participants]
    keys = {name: seeded_key(f"replay-{name}") for name in names}
    meters = {m.id: seeded_key(f"replay-{m.id}") for m in roster.meters}
    pubkeys = {name: key.pubkey.hex() for name, key in (keys | meters).items()}
    chain = Chain(chain_id=roster.chain_id, app_state=app_state(roster, pubkeys, {}))
    chain.keys.update(keys)
    chain.block()
    return chain, Keys(accounts=keys, meters=meters)


def test_the_day_on_the_replay_roster_ends_with_the_hand_checked_changes() -> None:
    """config/replay-4.toml: 10 s slots, capacities 360x, config/testnet-4.toml's fees and prices.

    As on the hourly chain, except the fees: bob (north-1, as alice) pays 0.01 EUR/kWh, dave (south-1) the
    north-1 -> south-1 route, 0.02 from each DSO = 0.04 EUR/kWh; his 0.5 kWh without a trade costs the supplier
    tariff 0.30 and south-1's own fee 0.01 as network charge.
      alice: +32 kWh x 0.20 - 1 kWh short x 0.60                       = +5.800 EUR
      bob:   -16 kWh x 0.20 - 16 kWh x 0.01 + 0.5 kWh surplus x 0.05   = -3.335 EUR
      dave:  -16 kWh x 0.20 - 16 kWh x 0.04 - 0.5 x 0.30 - 0.5 x 0.01  = -3.995 EUR
    """
    chain, keys = replay_chain()
    transport = ChainTransport(chain, block_dt=1)
    runner = Runner(load_scenario(DAY), transport, keys, relayer="dso-north")
    rows = by_name(runner.play())
    assert chain.query("/params")["slot_length_s"] == 10
    assert {name: row["change"] for name, row in rows.items()} == {
        "alice": 5_800_000, "bob": -3_335_000, "dave": -3_995_000}
    assert {row["slots_settled"] for row in rows.values()} == {24}
    assert all((row["locked"], row["debt"]) == (0, 0) for row in rows.values())

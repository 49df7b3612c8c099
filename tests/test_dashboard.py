"""The dashboard without a chain: formats, options, roster names, block parsing, caches, results, routes, CLI.

The pages against a real node in a real browser are in tests/test_dashboard_browser.py.
"""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient
from typer.testing import CliRunner

from abci_app.ledger.crypto import account_id
from cli.main import app as cli_app
from cli.query import STATEMENT_CSV_COLUMNS as CLI_STATEMENT_COLUMNS
from dashboard import app as web
from dashboard import experiments, names, views
from dashboard.config import ConfigError, DashboardConfig, from_home, parse_listen
from dashboard.follower import Follower, block_info, parse_rfc3339_ns
from dashboard.live import LiveState, SlotCache
from dashboard.units import Currency, energy, parse_day, slot_label
from tests.harness import seeded_key

REPO = Path(__file__).resolve().parents[1]
EUR = Currency("EUR", 6)


# -- units ------------------------------------------------------------------------------------------
def test_money_price_and_energy_are_exact() -> None:
    assert EUR.money(-1_500_000) == "-1.500000 EUR"
    assert EUR.price(240_000) == "0.240000 EUR/kWh"
    assert EUR.money(2**63 - 1) == "9223372036854.775807 EUR"  # no float on the way
    assert Currency("JPY", 0).money(12) == "12 JPY"
    assert (energy(2_500), energy(-1_000), energy(999)) == ("2.500 kWh", "-1.000 kWh", "999 Wh")
    assert slot_label(1_767_229_200) == "2026-01-01 01:00Z"
    assert parse_day("2026-01-01") == 1_767_225_600


def test_invalid_day_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_day("01/01/2026")


# -- options ---------------------------------------------------------------------------------------
def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:8080").url() == "http://127.0.0.1:8080/"
    assert parse_listen("[::1]:0").url(4321) == "http://[::1]:4321/"
    assert parse_listen("127.0.0.1:8080").loopback and not parse_listen("0.0.0.0:8080").loopback


@pytest.mark.parametrize("text", ["8080", "localhost", ":8080", "127.0.0.1:http", "127.0.0.1:70000"])
def test_invalid_listen_address(text: str) -> None:
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_listen(text)


def test_invalid_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="http"):
        DashboardConfig.build(["127.0.0.1:26657"])
    with pytest.raises(ConfigError, match="does not exist"):
        DashboardConfig.build(["http://127.0.0.1:26657"], results=tmp_path / "none")
    with pytest.raises(ConfigError, match="at least one"):
        DashboardConfig.build([])


def test_node_home_block(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "gridledger.toml").write_text(
        'app_metrics = "127.0.0.1:26655"\n[dashboard]\nlisten = "127.0.0.1:0"\n'
        'nodes = ["http://127.0.0.1:26667"]\nroster = "roster.toml"\n')
    (tmp_path / "roster.toml").write_text("")
    config = from_home(tmp_path, "http://127.0.0.1:26657/")
    assert config.nodes == ("http://127.0.0.1:26657", "http://127.0.0.1:26667")
    assert config.roster == tmp_path / "roster.toml" and config.listen.port == 0
    assert from_home(tmp_path, "http://127.0.0.1:26657", listen="127.0.0.1:9000").listen.port == 9000


def test_invalid_node_home_block(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "gridledger.toml").write_text('[dashboard]\nnodes = "http://x"\n')
    with pytest.raises(ConfigError, match="nodes"):
        from_home(tmp_path, "http://127.0.0.1:26657")


# -- roster names ----------------------------------------------------------------------------------
GENESIS = [{"pubkey": seeded_key(n).pubkey.hex(), "role": r, "zone": z}
           for n, r, z in (("alice", "prosumer", "north-1"), ("bob", "consumer", "north-1"))]


def test_roster_names_match_genesis_in_order(tmp_path: Path) -> None:
    roster = tmp_path / "roster.toml"
    roster.write_text((REPO / "config" / "testnet-4.toml").read_text())
    loaded = names.load_roster(roster)
    assert [p.name for p in loaded.participants] == ["alice", "bob", "carol", "dave"]
    resolved = names.resolve(loaded, GENESIS)
    assert resolved.name(seeded_key("alice").account) == "alice"
    assert resolved.account_of("bob") == seeded_key("bob").account
    assert len(resolved.warnings) == 2  # carol and dave have no genesis counterpart here
    assert resolved.label("ff" * 20) == "ffffffff…"


def test_roster_accounts_and_pubkeys_name_directly(tmp_path: Path) -> None:
    erin = seeded_key("erin")
    roster = tmp_path / "roster.toml"
    roster.write_text(f'[[participants]]\nname = "erin"\npubkey = "{erin.pubkey.hex()}"\n'
                      f'[[participants]]\nname = "zed"\naccount = "{"ab" * 20}"\n')
    resolved = names.resolve(names.load_roster(roster), None)
    assert resolved.by_account == {account_id(erin.pubkey): "erin", "ab" * 20: "zed"}


def test_invalid_roster_entry_names_nothing(tmp_path: Path) -> None:
    roster = tmp_path / "roster.toml"
    roster.write_text('[[participants]]\nname = "alice"\nrole = "consumer"\nzone = "north-1"\n')
    resolved = names.resolve(names.load_roster(roster), GENESIS)
    assert resolved.by_account == {}
    assert "does not match" in resolved.warnings[0]


@pytest.mark.parametrize("text, message", [
    ("[[participants]\n", "TOML"),
    ('participants = "x"\n', "array"),
    ('[[participants]]\nname = "a"\naccount = "xyz"\n', "40 lowercase hex"),
    ('[[participants]]\nname = "a"\npubkey = "00"\n', "64 hex"),
    ('[[participants]]\nrole = "consumer"\n', "name"),
])
def test_invalid_roster(tmp_path: Path, text: str, message: str) -> None:
    roster = tmp_path / "roster.toml"
    roster.write_text(text)
    with pytest.raises(names.RosterError, match=message):
        names.load_roster(roster)


# -- blocks ------------------------------------------------------------------------------------------
def _event(kind: str, **attrs: Any) -> dict[str, Any]:
    return {"type": kind, "attributes": [{"key": k, "value": str(v), "index": True} for k, v in attrs.items()]}


TRADE = dict(id=7, slot=1_767_229_200, buyer="b" * 40, seller="s" * 40, buyer_zone="zone-a", seller_zone="zone-b",
             quantity_wh=1_000, price=220_000, fee_per_kwh=30_000, value=220_000, fee=30_000, origin="wind",
             mechanism="continuous", bid_order=2, ask_order=1)


def new_block(height: int, seconds: int, trades: int = 1) -> dict[str, Any]:
    """The value of a NewBlock event as CometBFT v0.38 sends it (trimmed to the fields read)."""
    return {
        "block": {
            "header": {"height": str(height), "time": f"2026-01-01T00:00:{seconds:02d}.250000000Z",
                       "proposer_address": "AA" * 20, "app_hash": "CD" * 32},
            "data": {"txs": ["dHgx", "dHgy"]},
            "last_commit": {"height": str(height - 1), "signatures": [
                {"block_id_flag": 2, "validator_address": "AA" * 20},
                {"block_id_flag": 1, "validator_address": "BB" * 20}]},
        },
        "result_finalize_block": {
            "events": [_event("settlement.participant", slot=1_767_225_600, account="a" * 40),
                       _event("order.expired", id=3)],
            "tx_results": [{"code": 0, "events": [_event("trade", **TRADE)] * trades},
                           {"code": 22, "events": [_event("trade", **{**TRADE, "id": 99})]}],
        },
    }


def test_a_new_block_event_gives_trades_settlements_and_signatures() -> None:
    value = new_block(12, 5)
    info = block_info(value["block"], value["result_finalize_block"], seen_ns=parse_rfc3339_ns(
        "2026-01-01T00:00:06Z"))
    assert (info.height, info.txs, info.failed_txs, info.block_events) == (12, 2, 1, 2)
    assert [t.id for t in info.trades] == [7]  # the failed transaction's events do not count
    assert info.trades[0].price == 220_000 and info.trade_slots == (1_767_229_200,)
    assert info.settled_slots == (1_767_225_600,)
    assert info.signatures == (("AA" * 20, "signed"), ("BB" * 20, "absent"))
    assert info.latency_ns == 750_000_000 and info.changed_market


def test_block_results_spelling_of_a_fetched_block() -> None:
    value = new_block(3, 1)
    results = {"txs_results": value["result_finalize_block"]["tx_results"],
               "finalize_block_events": value["result_finalize_block"]["events"]}
    info = block_info(value["block"], results, seen_ns=None)
    assert [t.id for t in info.trades] == [7] and info.latency_ns is None


class FakeBlocks:
    def __init__(self) -> None:
        self.fetched: list[int] = []

    async def block(self, height: int) -> tuple[dict[str, Any], dict[str, Any]]:
        self.fetched.append(height)
        value = new_block(height, height % 60, trades=0)
        return value["block"], {"txs_results": []}


def test_missed_blocks_are_fetched_and_a_long_gap_is_a_resync() -> None:
    delivered: list[tuple[int, bool]] = []

    async def on_block(info: Any, resync: bool) -> None:
        delivered.append((info.height, resync))

    async def on_status(up: bool, reason: str) -> None:
        return None

    source = FakeBlocks()
    follower = Follower(source, on_block, on_status)  # type: ignore[arg-type]
    follower.last_height = 10
    asyncio.run(follower._catch_up(14))
    assert delivered == [(11, False), (12, False), (13, False)]
    delivered.clear()
    asyncio.run(follower._catch_up(200))
    assert delivered[0] == (170, True) and delivered[-1] == (199, False) and len(delivered) == 30


def test_slot_cache_never_keeps_an_answer_older_than_the_events() -> None:
    cache: SlotCache[str] = SlotCache()
    cache.put(5, "read at 10", 10)
    cache.touch(5, 11)
    assert cache.get(5) == (False, None)
    cache.put(5, "read at 10, stored late", 10)  # answered before block 11 but stored after it
    assert cache.get(5) == (False, None)
    cache.put(5, "read at 11", 11)
    assert cache.get(5) == (True, "read at 11")
    cache.resync(20)
    assert cache.get(5) == (False, None)
    cache.put(6, "read at 19", 19)
    assert cache.get(6) == (False, None)


# -- app-hash agreement ----------------------------------------------------------------------------
class FakeNode:
    def __init__(self, url: str, hashes: dict[int, str]) -> None:
        self.url = url
        self.hashes = hashes

    async def header_app_hash(self, height: int) -> str:
        return self.hashes[height]


def _report(url: str, height: int, app_hash: str, reachable: bool = True) -> dict[str, Any]:
    return {"url": url, "reachable": reachable, "height": height, "app_hash": app_hash}


def test_app_hash_agreement_at_the_lowest_common_height() -> None:
    a, b = FakeNode("a", {5: "H5"}), FakeNode("b", {5: "H5"})
    result = asyncio.run(views.agreement([a, b], [_report("a", 6, "H6"), _report("b", 5, "H5")]))  # type: ignore[list-item]
    assert (result["height"], result["agree"], result["compared"]) == (5, True, 2)


def test_app_hash_disagreement_and_unreachable_nodes() -> None:
    a, b, c = FakeNode("a", {}), FakeNode("b", {}), FakeNode("c", {})
    reports = [_report("a", 5, "H5"), _report("b", 5, "X5"), _report("c", 0, "", reachable=False)]
    result = asyncio.run(views.agreement([a, b, c], reports))  # type: ignore[list-item]
    assert (result["agree"], result["compared"], result["nodes"]) == (False, 2, 3)


# -- views over canned query answers --------------------------------------------------------------
SLOT = 1_767_229_200  # 2026-01-01 01:00Z


class CannedNode:
    """The app's answers by path, as a node at height 61 gives them (docs/queries.md shapes)."""

    url = "http://canned"

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers

    async def query(self, path: str) -> Any:
        from dashboard.chain import Answer, QueryFailed

        if path.startswith("/trades/slot/") and path not in self.answers:
            return Answer({"trades": []}, 61)  # a slot without trades lists none
        if path not in self.answers:
            raise QueryFailed(path, 101, f"nothing under {path}", 61)
        return Answer(self.answers[path], 61)

    async def query_value(self, path: str) -> Any:
        return (await self.query(path)).value

    async def query_or_none(self, path: str) -> Any:
        return self.answers.get(path)


def canned_market() -> CannedNode:
    fees = [{"from": a, "to": b, "fee_per_kwh": 10_000 if a == b else 30_000}
            for a in ("zone-a", "zone-b") for b in ("zone-a", "zone-b")]
    trade = {**TRADE, "id": 1, "slot": SLOT, "height": 60, "time": SLOT - 600, "seller": seeded_key("carol").account,
             "buyer": seeded_key("dave").account, "price": 200_000, "quantity_wh": 3_000}
    return CannedNode({
        "/chain": {"chain_id": "c", "height": 61, "time": SLOT - 900, "initial_height": 1},
        "/params": {"currency": "EUR", "currency_exponent": 6, "slot_length_s": 900, "gate_closure_lead_s": 300,
                    "matching_mode": 1, "settlement_window_s": 3600},
        "/fees": {"zones": ["zone-a", "zone-b"], "fees": fees, "components": []},
        "/slots": {"slots": [SLOT], "closed_through": SLOT - 900},
        f"/book/{SLOT}/zone-a": {"bids": [{"price": 260_000, "quantity_wh": 4_000, "orders": 2}],
                                 "asks": [{"price": 240_000, "quantity_wh": 2_000, "orders": 1}]},
        f"/book/{SLOT}/zone-b": {"bids": [], "asks": [{"price": 220_000, "quantity_wh": 1_000, "orders": 1},
                                                      {"price": 230_000, "quantity_wh": 500, "orders": 1}]},
        f"/best/{SLOT}/zone-a": {"best_ask": {"zone": "zone-a", "price": 240_000, "fee_per_kwh": 10_000,
                                              "effective_price": 250_000, "quantity_wh": 2_000, "order": 1,
                                              "origin": "solar"}, "best_bid": None},
        f"/trades/slot/{SLOT}": {"slot": SLOT, "trades": [trade]},
        f"/clearing/{SLOT}/zone-b": {"slot": SLOT, "zone": "zone-b", "price": 200_000, "volume_wh": 3_000,
                                     "mechanism": "call", "height": 60, "classes": [
                                         {"origin": "wind", "price": 200_000, "low": 190_000, "high": 210_000,
                                          "volume_wh": 3_000}]},
    })


def canned_context(node: CannedNode) -> views.Context:
    ctx = views.Context(primary=node, nodes=[node], live=LiveState())  # type: ignore[arg-type]
    ctx.names = names.Names({seeded_key("carol").account: "carol"})
    return ctx


def test_market_view_book_effective_asks_clearing_and_fees() -> None:
    view = asyncio.run(views.market(canned_context(canned_market()), "zone-a", None))
    assert view["slot"] == SLOT and view["gate_open"] and view["matching"] == "call auction at gate closure"
    assert [(b["price_fmt"], b["cumulative_fmt"]) for b in view["bids"]] == [("0.260000 EUR/kWh", "4.000 kWh")]
    # zone-b's 0.22 + 0.03 fee ties zone-a's 0.24 + 0.01: the local ask comes first.
    assert [(a["zone"], a["effective_fmt"]) for a in view["effective_asks"]] == [
        ("zone-a", "0.250000 EUR/kWh"), ("zone-b", "0.250000 EUR/kWh"), ("zone-b", "0.260000 EUR/kWh")]
    assert view["best_ask"]["fee_fmt"] == "0.010000 EUR/kWh"
    (clearing,) = view["clearing"]
    assert clearing["zone"] == "zone-b" and clearing["classes"] == [
        "wind: 0.200000 EUR/kWh (competitive 0.190000 EUR/kWh to 0.210000 EUR/kWh), 3.000 kWh"]
    assert view["trades"][0]["seller"]["label"] == "carol" and view["trades"][0]["buyer"]["label"].endswith("…")
    assert view["fees"]["rows"][0] == {"from": "zone-a", "fees": ["0.010000 EUR/kWh", "0.030000 EUR/kWh"]}


@pytest.mark.parametrize("zone, slot, status", [("zone-x", None, 404), ("zone-a", "1767229201", 400),
                                                ("zone-a", "soon", 400)])
def test_invalid_market_view_arguments(zone: str, slot: str | None, status: int) -> None:
    with pytest.raises(views.ViewError) as refused:
        asyncio.run(views.market(canned_context(canned_market()), zone, slot))
    assert refused.value.status == status


def test_prices_view_is_volume_weighted_per_seller_zone() -> None:
    node = canned_market()
    second = {**node.answers[f"/trades/slot/{SLOT}"]["trades"][0], "id": 2, "price": 260_000, "quantity_wh": 1_000,
              "seller_zone": "zone-a"}
    node.answers[f"/trades/slot/{SLOT}"]["trades"].append(second)
    ctx = canned_context(node)
    everything = asyncio.run(views.prices(ctx, "2026-01-01", None))
    (row,) = everything["rows"]
    assert (row["trades"], row["volume_fmt"], row["vwap_fmt"]) == (2, "4.000 kWh", "0.215000 EUR/kWh")
    # 96 slots of 15 minutes; 01:00 is the day's fifth.
    assert len(everything["chart"]["x"]) == 96 and everything["chart"]["volume_kwh"][4] == 4.0
    only_b = asyncio.run(views.prices(ctx, "2026-01-01", "zone-b"))
    assert only_b["rows"][0]["vwap_fmt"] == "0.200000 EUR/kWh"
    with pytest.raises(views.ViewError):
        asyncio.run(views.prices(ctx, "yesterday", None))


# -- experiment runs ---------------------------------------------------------------------------------
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a5d2ab8d0000000049454e44ae426082")


def make_results(root: Path) -> Path:
    run = root / "smoke" / "20260101T000000Z"
    (run / "plots").mkdir(parents=True)
    (run / "plots" / "overview.png").write_bytes(PNG)
    (run / "report.md").write_text("# Experiment `smoke`\n\n| validators | committed tx/s |\n|---:|---:|\n"
                                   "| 1 | 24.9 |\n\n![overview](plots/overview.png)\n\n[csv](gridledger-v1/txs.csv) "
                                   "<script>alert(1)</script>\n")
    load = root / "load" / "20260102T000000Z"
    load.mkdir(parents=True)
    (load / "summary.json").write_text('{"committed_tps": 12.5, "latency_s": {"n": 3, "p50": 0.2}}')
    (load / "latency_cdf.png").write_bytes(PNG)
    (root / "secret.png").write_bytes(PNG)
    return run


def test_a_report_renders_with_its_tables_and_plots(tmp_path: Path) -> None:
    make_results(tmp_path)
    runs = experiments.list_runs(tmp_path)
    assert [r.id for r in runs] == ["load/20260102T000000Z", "smoke/20260101T000000Z"]
    html = experiments.render_report(runs[1])
    assert "<table>" in html and '<td class="align-right">24.9</td>' in html and "style=" not in html
    assert 'src="/results/smoke/20260101T000000Z/plots/overview.png"' in html
    assert 'href="/results/smoke/20260101T000000Z/gridledger-v1/txs.csv"' in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    summary = experiments.run_summary(runs[0])
    assert ("committed_tps", "12.5") in summary["rows"]
    assert summary["plots"] == ["/results/load/20260102T000000Z/latency_cdf.png"]


@pytest.mark.parametrize("path", ["smoke/20260101T000000Z/../../secret.png", "secret.png", "../etc/passwd",
                                  "smoke/20260101T000000Z/report.exe", "smoke/20260101T000000Z/missing.png"])
def test_invalid_result_file_is_refused(tmp_path: Path, path: str) -> None:
    make_results(tmp_path)
    with pytest.raises(experiments.RunNotFound):
        experiments.served_file(tmp_path, path)


# -- routes without a chain --------------------------------------------------------------------------
@pytest.fixture
def client(tmp_path: Path) -> Any:
    with socket.socket() as sock:  # a port nobody listens on: the node is "down"
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    make_results(tmp_path)
    config = DashboardConfig.build([dead], "127.0.0.1:0", results=tmp_path)
    with TestClient(web.create_app(config)) as test_client:
        yield test_client


def test_pages_are_served_with_landmarks_and_no_foreign_origin(client: TestClient) -> None:
    for page in web.PAGES:
        response = client.get(page.href)
        assert response.status_code == 200
        html = response.text
        assert f'<a href="{page.href}" aria-current="page">' in html
        assert '<main id="main"' in html and 'href="#main"' in html and "<nav" in html
        assert "default-src 'self'" in response.headers["content-security-policy"]
        # Every script, style sheet and image comes from this server.
        assert not re.search(r'(src|href)="(https?:)?//', html)
    assert client.get("/", follow_redirects=False).headers["location"] == "/market"


def test_the_chart_library_is_served_locally(client: TestClient) -> None:
    if not web.charts_available():
        pytest.fail("uPlot is not installed: run `make setup` (npm ci of dashboard/frontend)")
    response = client.get("/vendor/uplot/uPlot.iife.min.js")
    assert response.status_code == 200 and "uPlot" in response.text
    assert client.get("/vendor/uplot/package.json").status_code == 404


def test_an_unreachable_node_is_a_503_with_a_message(client: TestClient) -> None:
    response = client.get("/api/market")
    assert response.status_code == 503 and "does not answer" in response.json()["error"]


def test_experiment_pages_and_files(client: TestClient) -> None:
    listing = client.get("/experiments").text
    assert "smoke" in listing and "load run" in listing
    report = client.get("/experiments", params={"run": "smoke/20260101T000000Z"}).text
    assert ">24.9</td>" in report and "/results/smoke/20260101T000000Z/plots/overview.png" in report
    assert client.get("/results/smoke/20260101T000000Z/plots/overview.png").content == PNG
    assert client.get("/results/secret.png").status_code == 404
    assert client.get("/experiments", params={"run": "../x"}).status_code == 404


def test_statement_csv_has_the_cli_columns() -> None:
    assert views.STATEMENT_CSV_COLUMNS == CLI_STATEMENT_COLUMNS


def test_live_state_history_links_parents() -> None:
    live = LiveState()
    first = live.add(block_info(new_block(1, 0)["block"], None, None), resync=False)
    second = live.add(block_info(new_block(2, 1)["block"], None, None), resync=False)
    assert live.previous(second) is first and live.previous(first) is None


# -- CLI ---------------------------------------------------------------------------------------------
def test_invalid_dashboard_options_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    for args, message in ((["--listen", "nowhere"], "HOST:PORT"), (["--results", str(tmp_path / "x")], "exist"),
                          (["--node", "ftp://x"], "http")):
        result = runner.invoke(cli_app, ["dashboard", *args])
        assert result.exit_code == 2, result.output
        assert message in result.stderr


def test_a_busy_address_exits_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli_app, ["dashboard", "--node", "http://127.0.0.1:1",
                                              "--listen", f"127.0.0.1:{port}"])
    assert result.exit_code == 2 and "cannot listen" in result.stderr


def test_a_stop_signal_ends_the_dashboard_cleanly() -> None:
    from tests.dashboard_browser import DashboardProcess

    dashboard = DashboardProcess(["--node", "http://127.0.0.1:1"])  # no node there: it keeps retrying
    assert dashboard.url.startswith("http://127.0.0.1:")
    assert dashboard.stop() == 0, dashboard.log()  # what the node supervisor counts as a clean stop


def test_readme_dashboard_commands_exist_in_the_cli() -> None:
    readme = (REPO / "README.md").read_text()
    commands = [line.split("#")[0].strip() for line in readme.splitlines() if line.strip().startswith(
        "gridledger dashboard")]
    assert commands, "the README shows no `gridledger dashboard` command"
    help_text = CliRunner().invoke(cli_app, ["dashboard", "--help"], terminal_width=200).stdout
    for command in commands:
        for option in re.findall(r"(--[a-z-]+)", command):
            assert option in help_text, f"README uses {option}, which `gridledger dashboard` lacks"


def test_settlement_rows_read_the_ledgers_own_answer() -> None:
    """The settlement page's rows from a real /settlement answer (the cloudy-slot example of
    docs/settlement.md: carol sold 2 kWh at 0.22 EUR, delivered 1 kWh, is charged 0.60 EUR)."""
    from tests.market_harness import market_chain, order, place
    from tests.settlement_harness import DEADLINE, SLOT, SLOT_END, Registers, advance_to

    chain = market_chain()
    place(chain, "carol", order("ask", 2_000, 220_000))
    place(chain, "dave", order("bid", 2_000, 300_000))
    registers = Registers()  # every meter reports (a silent one would be billed its substitute)
    registers.read(chain, SLOT)
    registers.read(chain, SLOT_END, {"carol": (0, 1_000), "dave": (2_000, 0)})
    advance_to(chain, DEADLINE + 1)
    answer = chain.query(f"/settlement/{SLOT}")
    cur = Currency("EUR", 6)
    slot_row = views._settlement_row(cur, answer)
    assert (slot_row["participants"], slot_row["complete"]) == (5, True)
    rows = {row["participant"]["label"]: row
            for row in (views.report_row(cur, names.Names({chain.id("carol"): "carol", chain.id("dave"): "dave"}),
                                         report) for report in answer["reports"])}
    assert (rows["carol"]["deviation_fmt"], rows["carol"]["charge_fmt"]) == ("-1.000 kWh", "0.600000 EUR")
    assert rows["dave"]["credit_fmt"] == "0.000000 EUR"

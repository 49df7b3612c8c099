"""The dashboard in a real headless Chromium against a real single-validator chain.

One chain serves every test (module fixture, about 40 s to build): yesterday's
day of hourly slots from config/scenarios/day-hourly.csv is played and settled
on it exactly as in tests/test_scenario_e2e.py (genesis 26 hours back, the
settlement window voted down), so the Settlement and Prices pages have a real
settled day; today's market is empty until the tests place an order and a
trade through the CLI while the pages are open, and must see them arrive
without a reload. The dashboard runs as ``python -m dashboard`` (as the node
supervisor runs it) with a roster naming the participants and a results
directory holding an experiment run.

Screenshots land in test-artifacts/dashboard/ (git-ignored).
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app as cli_app
from dashboard.units import day_of, slot_label, utc
from lab.report import plot_overview
from lab.scenario import Keys, Runner, load_scenario
from node.client.keystore import Keystore
from node.rpc import RpcError
from tests.dashboard_browser import (
    CONTRAST_JS,
    LAPTOP,
    OVERFLOW_JS,
    PHONE,
    UNLABELLED_JS,
    DashboardProcess,
    chromium,
    screenshot,
)
from tests.harness import Chain, seeded_key
from tests.localnode import LocalNode
from tests.market_harness import market_app_state
from tests.test_readings_cli import backdated_node
from tests.test_scenario import DAY
from tests.test_scenario_e2e import (
    CHAIN_ID,
    HOUR,
    TWO_DAYS,
    GenesisReplicaTransport,
    genesis_replica,
    play_in_thread,
    shorten_settlement_window,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(600)]
PASSPHRASE = "dashboard e2e"
PAGES = ("market", "prices", "settlement", "network", "experiments")
# market_app_state's participants in genesis order, as an operator's roster names them.
ROSTER = "".join(f'[[participants]]\nname = "{name}"\nrole = "{role}"\nzone = "{zone}"\n\n' for name, role, zone in (
    ("alice", "prosumer", "zone-a"), ("bob", "consumer", "zone-a"), ("carol", "producer", "zone-b"),
    ("dave", "consumer", "zone-b"), ("erin", "prosumer", "zone-a")))
UI_TIMEOUT_MS = 20_000
# The page's script has drawn its first view: it fills every table (rows or an "empty" row) from one API
# answer in one task, charts included. Hidden tables (a statement not asked for) stay empty.
RENDERED_JS = """
() => {
  const tables = [...document.querySelectorAll('main table')].filter((table) => table.checkVisibility());
  return tables.length > 0 && tables.every((table) => table.tBodies.length && table.tBodies[0].rows.length);
}
"""


@dataclass
class Setup:
    node: LocalNode
    chain: Chain
    keyring: Path
    start: int
    """Slot 0 of yesterday's scenario (hourly slots)."""
    dashboard: DashboardProcess


def play_yesterday(node: LocalNode, chain: Chain, state: dict[str, Any], genesis: int, start: int) -> None:
    meters = {f"m-{name}": seeded_key(f"meter-{name}") for name in ("alice", "bob", "dave")}
    logged: list[str] = []
    transport = GenesisReplicaTransport(node.ports.rpc_url, genesis_replica(state, genesis))
    runner = Runner(load_scenario(DAY), transport, Keys(accounts=dict(chain.keys), meters=meters), start=start,
                    relayer="lpd_b", log=logged.append)
    thread, outcome = play_in_thread(runner)

    def readings_done() -> bool:
        try:
            return bool(node.rpc.query_json("/reading/m-dave")["time"] >= start + 24 * HOUR)
        except RpcError:
            return False

    wait_for(lambda: readings_done() or not thread.is_alive(), 60, "the scenario's readings")
    assert "error" not in outcome, f"{outcome.get('error')!r}\n" + "\n".join(logged)
    shorten_settlement_window(node, chain, 60)
    thread.join(timeout=60)
    assert not thread.is_alive() and "error" not in outcome, "\n".join(logged)


def experiment_results(root: Path) -> None:
    """A results directory as `gridledger experiment run` leaves it: report.md with a table and a plot."""
    run = root / "smoke" / "20260101T000000Z"
    run.mkdir(parents=True)
    runs = [{"app": app, "validators": 1, "timeout_commit": "200ms", "rate": rate,
             "summary": {"committed_tps": rate * share, "latency_s": {"p50": latency}}}
            for app, share, latency in (("gridledger", 0.98, 0.21), ("kvstore", 1.0, 0.15)) for rate in (10, 20)]
    plot = plot_overview(runs, run)
    (run / "report.md").write_text(
        "# Experiment `smoke`\n\n| validators | offered tx/s | app | committed tx/s |\n|---:|---:|---|---:|\n"
        "| 1 | 10 | gridledger | 9.8 |\n| 1 | 10 | kvstore | 10.0 |\n\n## Plots\n\n"
        f"![throughput and latency against offered rate]({plot})\n")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    base = tmp_path_factory.mktemp("dashboard")
    state = market_app_state(slot_length_s=HOUR, settlement_window_s=TWO_DAYS)
    chain = Chain(chain_id=CHAIN_ID, app_state=state)
    keyring = base / "keyring"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRIDLEDGER_KDF_FAST", "1")
        for name in ("alice", "bob", "erin", "dave"):
            Keystore(keyring).add(name, PASSPHRASE, chain.keys[name])
    (base / "roster.toml").write_text(ROSTER)
    experiment_results(base / "results")
    genesis = int(time.time()) - 26 * HOUR
    start = -(-(genesis + 301) // HOUR) * HOUR
    with backdated_node(base / "node", state, CHAIN_ID, genesis, timeout_commit="3s") as node:
        play_yesterday(node, chain, state, genesis, start)
        # The same node twice (two URLs) for the Network page's app-hash comparison.
        dashboard = DashboardProcess(["--node", node.ports.rpc_url, "--node", f"http://localhost:{node.ports.rpc}",
                                      "--roster", str(base / "roster.toml"), "--results", str(base / "results")])
        try:
            yield Setup(node, chain, keyring, start, dashboard)
        finally:
            code = dashboard.stop()
            assert code == 0, f"the dashboard ended with {code}:\n{dashboard.log()}"


@pytest.fixture(scope="module")
def browser(setup: Setup) -> Iterator[Any]:
    with chromium(LAPTOP) as context:
        yield context


def cli(setup: Setup, *args: str) -> Any:
    env = {"GRIDLEDGER_KEYRING_DIR": str(setup.keyring), "GRIDLEDGER_PASSPHRASE": PASSPHRASE,
           "GRIDLEDGER_NODE": setup.node.ports.rpc_url, "GRIDLEDGER_KDF_FAST": "1"}
    result = CliRunner().invoke(cli_app, [*args, "--output", "json"], env=env)
    assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout)


def open_page(context: Any, url: str, problems: list[str], base: str) -> Any:
    """A new tab on ``url``; requests to any other origin, script errors and console errors go to ``problems``."""
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.on("request", lambda request: None if request.url.startswith(base) else problems.append(
        f"request to another origin: {request.url}"))
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on("console", lambda message: problems.append(f"console: {message.text}") if message.type == "error"
            else None)
    page.goto(url)
    page.evaluate("() => { window.__notReloaded = true; }")
    return page


def not_reloaded(page: Any) -> bool:
    return bool(page.evaluate("() => window.__notReloaded === true"))


def row_with(page: Any, table: str, *texts: str) -> Any:
    locator = page.locator(f"#{table} tbody tr")
    for text in texts:
        locator = locator.filter(has_text=text)
    return locator


def canvas_image(page: Any, chart: str) -> str:
    return str(page.evaluate(f"() => document.querySelector('#{chart} canvas').toDataURL()"))


def chain_time(setup: Setup) -> int:
    return int(setup.node.rpc.query_json("/chain")["time"])


def test_book_trades_and_price_chart_update_live_without_a_reload(setup: Setup, browser: Any) -> None:
    from playwright.sync_api import expect

    base = setup.dashboard.url
    slot = (chain_time(setup) // HOUR + 2) * HOUR  # an hour or more ahead: its gate stays open
    foreign: list[str] = []
    market = open_page(browser, f"{base}/market?zone=zone-a&slot={slot}", foreign, base)
    prices = open_page(browser, f"{base}/prices?day={day_of(slot)}&zone=zone-a", foreign, base)
    expect(market.locator("#asks tbody")).to_contain_text("No asks in this book.")
    expect(market.locator("#trades tbody")).to_contain_text("No trades in this slot yet.")
    expect(prices.locator("#price-chart canvas")).to_be_visible()
    points_before = int(prices.locator("#price-chart").get_attribute("data-points") or "0")
    chart_before = canvas_image(prices, "price-chart")
    assert row_with(prices, "price-table", slot_label(slot)).count() == 0

    placed = cli(setup, "tx", "order", "place", "--side", "ask", "--qty", "2kWh", "--price", "0.24EUR/kWh",
                 "--slot", str(slot), "--origin", "solar", "--from", "alice", "--wait")
    assert placed["code"] == 0, placed
    expect(row_with(market, "asks", "0.240000 EUR/kWh", "2.000 kWh")).to_have_count(1)
    expect(market.locator("#best")).to_contain_text("0.250000 EUR/kWh")  # 0.24 + 0.01 fee within zone-a
    screenshot(market, "market-ask-placed")

    # bob bids 0.26 all-in: alice's ask costs him 0.24 + 0.01 fee, so 1 kWh trades at 0.24.
    traded = cli(setup, "tx", "order", "place", "--side", "bid", "--qty", "1kWh", "--price", "0.26EUR/kWh",
                 "--slot", str(slot), "--from", "bob", "--wait")
    assert traded["code"] == 0, traded
    trade_row = row_with(market, "trades", "alice", "bob", "1.000 kWh", "0.240000 EUR/kWh")
    expect(trade_row).to_have_count(1)
    expect(row_with(market, "live-trades", slot_label(slot), "alice", "bob", "0.240000 EUR/kWh")).to_have_count(1)
    expect(row_with(market, "asks", "0.240000 EUR/kWh", "1.000 kWh")).to_have_count(1)
    expect(market.locator("#bids tbody")).to_contain_text("No bids in this book.")
    expect(row_with(market, "clearing", "zone-a", "0.240000 EUR/kWh")).to_have_count(1)
    expect(row_with(prices, "price-table", slot_label(slot), "1.000 kWh", "0.240000 EUR/kWh")).to_have_count(1)
    expect(prices.locator("#price-chart")).to_have_attribute("data-points", str(points_before + 1))
    assert canvas_image(prices, "price-chart") != chart_before, "the price chart was not redrawn"
    assert not_reloaded(market) and not_reloaded(prices), "a page reloaded instead of updating"
    screenshot(market, "market-traded")
    screenshot(prices, "prices-traded")
    assert not foreign, foreign
    market.close()
    prices.close()


def test_settlement_reports_with_roster_names_and_a_statement_csv(setup: Setup, browser: Any) -> None:
    from playwright.sync_api import expect

    base = setup.dashboard.url
    cloud = setup.start + 12 * HOUR  # alice exported 3 of the 4 kWh she sold
    foreign: list[str] = []
    page = open_page(browser, f"{base}/settlement?day={day_of(cloud)}&slot={cloud}", foreign, base)
    expect(row_with(page, "slots", slot_label(cloud), "1.000 kWh")).to_have_count(1)
    expect(page.locator("#report-slot")).to_have_text(slot_label(cloud))
    alice = row_with(page, "reports", "alice")
    expect(alice).to_contain_text("4.000 kWh")  # traded (sold)
    expect(alice).to_contain_text("3.000 kWh")  # delivered
    expect(alice).to_contain_text("-1.000 kWh")  # deviation
    expect(alice).to_contain_text("0.600000 EUR")  # balancing charge: 1 kWh at 0.60
    expect(row_with(page, "reports", "bob")).to_have_count(1)
    expect(row_with(page, "reports", "dave")).to_have_count(1)
    # Another slot of the table, chosen with its button.
    other = setup.start + 14 * HOUR if day_of(setup.start + 14 * HOUR) == day_of(cloud) else setup.start + 10 * HOUR
    page.get_by_role("button", name=f"Show the reports of slot {slot_label(other)}").click()
    expect(page.locator("#report-slot")).to_have_text(slot_label(other))

    page.select_option("#account", "alice")
    page.fill("#from", day_of(setup.start))
    page.fill("#to", day_of(setup.start + 24 * HOUR))
    page.get_by_role("button", name="Show statement").click()
    expect(page.locator("#account-facts")).to_contain_text("alice")
    expect(row_with(page, "statement", "balancing_charge")).not_to_have_count(0)
    expect(row_with(page, "participant-reports", slot_label(cloud), "-1.000 kWh")).to_have_count(1)
    screenshot(page, "settlement")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV").click()
    text = Path(download_info.value.path()).read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == "time,height,kind,amount,amount_fmt,reference"
    assert sum(int(r["amount"]) for r in rows if r["kind"] == "balancing_charge") == -600_000
    yesterday = [r for r in rows if r["time"] < utc(setup.start + 24 * HOUR)]  # not today's trade of another test
    assert sum(int(r["amount"]) for r in yesterday if r["kind"] == "energy_sold") == 6_400_000  # 32 kWh at 0.20
    assert not foreign, foreign
    page.close()


def test_network_page_follows_heights_signatures_and_agreement(setup: Setup, browser: Any) -> None:
    from playwright.sync_api import expect

    base = setup.dashboard.url
    foreign: list[str] = []
    page = open_page(browser, f"{base}/network", foreign, base)
    expect(row_with(page, "validators", "signed")).to_have_count(1)
    expect(page.locator("#agreement")).to_contain_text("All 2 node(s) agree on the app hash")
    expect(page.locator("#nodes tbody tr")).to_have_count(2)
    first = int(page.locator("#blocks tbody tr").first.get_attribute("data-key") or "0")
    expect(page.locator("#blocks tbody tr").first).not_to_have_attribute("data-key", str(first), timeout=15_000)
    assert int(page.locator("#blocks tbody tr").first.get_attribute("data-key") or "0") > first
    assert int(page.locator("#timing-chart").get_attribute("data-points") or "0") >= 3
    expect(page.locator("#summary")).to_contain_text("Median commit latency")
    assert not_reloaded(page)
    screenshot(page, "network")
    assert not foreign, foreign
    page.close()


def test_experiments_page_shows_a_runs_report_tables_and_plots(setup: Setup, browser: Any) -> None:
    from playwright.sync_api import expect

    base = setup.dashboard.url
    foreign: list[str] = []
    page = open_page(browser, f"{base}/experiments", foreign, base)
    page.get_by_role("link", name="smoke 20260101T000000Z").click()
    expect(page.locator(".markdown table")).to_contain_text("9.8")
    image = page.get_by_role("img", name="throughput and latency against offered rate")
    expect(image).to_be_visible()
    assert page.evaluate("(img) => img.complete && img.naturalWidth > 100", image.element_handle())
    screenshot(page, "experiments")
    assert not foreign, foreign
    page.close()


@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
def test_every_page_is_readable_labelled_and_contrasted(setup: Setup, browser: Any, viewport: dict[str, int],
                                                        ) -> None:
    from playwright.sync_api import expect

    base = setup.dashboard.url
    foreign: list[str] = []
    page = open_page(browser, f"{base}/market", foreign, base)
    page.set_viewport_size(viewport)
    for name in PAGES:
        query = "?run=smoke/20260101T000000Z" if name == "experiments" else ""
        page.goto(f"{base}/{name}{query}")
        expect(page.locator("#chain-status")).to_contain_text("Live")
        if name == "experiments":
            page.wait_for_load_state("networkidle")  # server-rendered: only its plot image is still loading
        else:
            page.wait_for_function(RENDERED_JS)  # measured below: the page as its script drew it
        assert page.evaluate(OVERFLOW_JS) <= 0, f"{name}: the page scrolls sideways at {viewport['width']} px"
        assert page.evaluate(UNLABELLED_JS) == [], f"{name}: controls without a label"
        problems = page.evaluate(CONTRAST_JS)
        assert problems == [], f"{name}: text below WCAG AA contrast: {problems[:5]}"
        expect(page.get_by_role("navigation", name="Pages")).to_be_visible()
        expect(page.get_by_role("main")).to_be_visible()
        screenshot(page, f"{name}-{viewport['width']}px")
    assert not foreign, foreign
    page.close()


def test_keyboard_reaches_the_skip_link_navigation_and_controls(setup: Setup, browser: Any) -> None:
    from playwright.sync_api import expect

    problems: list[str] = []
    page = open_page(browser, f"{setup.dashboard.url}/market", problems, setup.dashboard.url)
    expect(page.locator("#zone option")).not_to_have_count(0)
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.id") == "main"
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "zone"
    # From the top, Tab walks the brand link and then every page link in order.
    page.evaluate("() => document.activeElement.blur()")
    page.goto(f"{setup.dashboard.url}/market")
    focused = []
    for _ in range(8):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("() => document.activeElement.textContent.trim()"))
    assert [t for t in focused if t in ("Market", "Prices", "Settlement", "Network", "Experiments")] == [
        "Market", "Prices", "Settlement", "Network", "Experiments"]
    page.keyboard.press("Shift+Tab")  # back from the first control to the last page link
    page.keyboard.press("Enter")  # the focused link opens its page
    page.wait_for_url("**/experiments")
    assert not problems, problems
    page.close()

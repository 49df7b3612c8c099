"""The JSON behind each page, read from the chain and formatted exactly (integers to text here).

Every function returns a plain dict the page renders as it is: numbers for
charts, ``*_fmt`` text for tables. Bad input raises ``ViewError`` with the
HTTP status to answer; an unreachable node raises the chain client's error.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import statistics
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dashboard import units
from dashboard.chain import NOT_FOUND, Node, NodeUnreachable, QueryFailed, RpcError
from dashboard.follower import BlockInfo, Trade
from dashboard.live import BlockRecord, LiveState
from dashboard.names import Names
from dashboard.units import DAY_S, Currency

TRADES_SHOWN = 50
HISTORY_SHOWN = 120
CONCURRENT_QUERIES = 8
STATEMENT_CSV_COLUMNS = ("time", "height", "kind", "amount", "amount_fmt", "reference")
"""The same columns as ``gridledger query statement --csv``."""


class ViewError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Context:
    primary: Node
    nodes: Sequence[Node]
    """Every node given (the primary first): the Network page compares their app hashes."""
    live: LiveState
    names: Names = field(default_factory=Names)
    results: Path | None = None
    _network: tuple[int, dict[str, Any]] | None = None


@dataclass(frozen=True)
class Chain:
    """Facts every view needs, read once per height."""

    chain_id: str
    height: int
    time: int
    currency: Currency
    slot_length_s: int
    gate_closure_lead_s: int
    matching_mode: int
    settlement_window_s: int
    zones: tuple[str, ...]
    fees: dict[tuple[str, str], int]

    def next_open_slot(self) -> int:
        """The first slot whose gate is still open at the last block time."""
        return ((self.time + self.gate_closure_lead_s) // self.slot_length_s + 1) * self.slot_length_s

    def check_slot(self, slot: int) -> int:
        if slot < 0 or slot % self.slot_length_s:
            raise ViewError(400, f"slot {slot} is not a slot start (a multiple of {self.slot_length_s} s)")
        return slot

    def day_slots(self, day_start: int) -> range:
        return range(day_start, day_start + DAY_S, self.slot_length_s)


async def chain_facts(ctx: Context) -> Chain:
    node = ctx.primary
    chain, params, fees = await asyncio.gather(node.query_value("/chain"), node.query_value("/params"),
                                               node.query_value("/fees"))
    return Chain(
        chain_id=chain["chain_id"], height=chain["height"], time=chain["time"],
        currency=Currency(params["currency"], params["currency_exponent"]),
        slot_length_s=params["slot_length_s"], gate_closure_lead_s=params["gate_closure_lead_s"],
        matching_mode=params.get("matching_mode", 0), settlement_window_s=params.get("settlement_window_s", 0),
        zones=tuple(fees.get("zones", ())),
        fees={(f["from"], f["to"]): f["fee_per_kwh"] for f in fees.get("fees", ())})


def int_arg(text: str | None, what: str) -> int | None:
    if text is None or text == "":
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise ViewError(400, f"{what} {text!r} is not a non-negative integer")
    return int(text)


def day_arg(text: str | None, chain: Chain) -> int:
    if not text:
        return chain.time - chain.time % DAY_S
    try:
        return units.parse_day(text)
    except ValueError:
        raise ViewError(400, f"day {text!r} is not a date like 2026-11-21") from None


def zone_arg(text: str | None, chain: Chain, allow_all: bool = False) -> str | None:
    if not text:
        return None if allow_all else (chain.zones[0] if chain.zones else None)
    if text not in chain.zones:
        raise ViewError(404, f"zone {text!r} is not served by any DSO (zones: {', '.join(chain.zones) or 'none'})")
    return text


async def _bounded(reads: Iterable[Awaitable[Any]]) -> list[Any]:
    gate = asyncio.Semaphore(CONCURRENT_QUERIES)

    async def one(read: Awaitable[Any]) -> Any:
        async with gate:
            return await read

    return list(await asyncio.gather(*(one(read) for read in reads)))


def _slot_fields(chain: Chain, slot: int) -> dict[str, Any]:
    gate = slot - chain.gate_closure_lead_s
    return {"slot": slot, "slot_label": units.slot_label(slot), "gate_closes": units.utc(gate),
            "gate_closes_at": gate, "gate_open": chain.time < gate, "slot_length_s": chain.slot_length_s}


def _party(names: Names, account: str) -> dict[str, str]:
    return {"id": account, "label": names.label(account)}


# -- header --------------------------------------------------------------------------------
async def status(ctx: Context) -> dict[str, Any]:
    live = ctx.live
    last = live.history[-1].info if live.history else None
    return {"connected": live.connected, "error": live.error, "height": last.height if last else 0,
            "time_utc": units.utc(last.time_ns // 1_000_000_000) if last else "", "node": ctx.primary.url}


def block_event(ctx: Context, record: BlockRecord, resync: bool, currency: Currency | None) -> dict[str, Any]:
    """What every open page receives when a block commits (``currency``: None until the first answer)."""
    info = record.info
    return {
        "height": info.height, "time": info.time_ns // 1_000_000_000,
        "time_utc": units.utc(info.time_ns // 1_000_000_000), "txs": info.txs, "failed_txs": info.failed_txs,
        "changed": info.changed_market, "resync": resync, "trade_slots": list(info.trade_slots),
        "settled_slots": list(info.settled_slots),
        "trades": [live_trade(ctx.names, currency, info, t) for t in info.trades],
        **_timing(ctx.live, record),
    }


def live_trade(names: Names, currency: Currency | None, info: BlockInfo, trade: Trade) -> dict[str, Any]:
    """A trade as the Market page's live list shows it, straight from a block's ``trade`` event."""
    return {"id": trade.id, "height": info.height, "time_utc": units.utc(info.time_ns // 1_000_000_000),
            "slot": trade.slot, "slot_label": units.slot_label(trade.slot),
            "seller": _party(names, trade.seller), "buyer": _party(names, trade.buyer),
            "route": f"{trade.seller_zone} → {trade.buyer_zone}", "quantity_fmt": units.energy(trade.quantity_wh),
            "price_fmt": currency.price(trade.price) if currency else str(trade.price),
            "mechanism": trade.mechanism}


def _timing(live: LiveState, record: BlockRecord) -> dict[str, Any]:
    parent = live.previous(record)
    interval = None if parent is None else (record.info.time_ns - parent.info.time_ns) / 1e9
    latency = record.info.latency_ns
    return {"interval_s": interval, "latency_s": None if latency is None else latency / 1e9,
            "mempool": record.mempool}


# -- Market ---------------------------------------------------------------------------------
def _levels(levels: Sequence[Mapping[str, Any]], cur: Currency) -> list[dict[str, Any]]:
    rows, total = [], 0
    for level in levels:
        total += level["quantity_wh"]
        rows.append({"price": cur.units(level["price"]), "price_fmt": cur.price(level["price"]),
                     "quantity_fmt": units.energy(level["quantity_wh"]), "orders": level["orders"],
                     "quantity_kwh": level["quantity_wh"] / 1000, "cumulative_fmt": units.energy(total)})
    return rows


def _effective_asks(chain: Chain, books: Mapping[str, Mapping[str, Any]], buyer_zone: str) -> list[dict[str, Any]]:
    """Every zone's ask levels as a buyer in ``buyer_zone`` meets them: energy price plus the route's grid fee."""
    cur = chain.currency
    rows = []
    for zone in chain.zones:
        fee = chain.fees.get((zone, buyer_zone), 0)
        for level in books[zone].get("asks", ()):
            rows.append((level["price"] + fee, zone != buyer_zone, zone, level, fee))
    rows.sort(key=lambda row: (row[0], row[1], row[2], row[3]["price"]))
    total, out = 0, []
    for effective, _, zone, level, fee in rows:
        total += level["quantity_wh"]
        out.append({"zone": zone, "effective_fmt": cur.price(effective), "effective": cur.units(effective),
                    "price_fmt": cur.price(level["price"]), "fee_fmt": cur.price(fee),
                    "quantity_fmt": units.energy(level["quantity_wh"]), "orders": level["orders"],
                    "cumulative_fmt": units.energy(total)})
    return out


def _quote(cur: Currency, quote: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not quote:
        return None
    out = {"zone": quote.get("zone", ""), "price_fmt": cur.price(quote["price"]),
           "quantity_fmt": units.energy(quote["quantity_wh"])}
    if "effective_price" in quote:
        out["effective_fmt"] = cur.price(quote["effective_price"])
        out["fee_fmt"] = cur.price(quote.get("fee_per_kwh", 0))
        out["origin"] = quote.get("origin", "")
    return out


def _clearing(cur: Currency, zone: str, clearing: Mapping[str, Any]) -> dict[str, Any]:
    """A zone's last price formed; after a call auction also each origin's price and competitive interval."""
    classes = [f"{c['origin']}: {cur.price(c['price'])} (competitive {cur.price(c['low'])} to "
               f"{cur.price(c['high'])}), {units.energy(c['volume_wh'])}" for c in clearing.get("classes") or ()]
    return {"zone": zone, "price_fmt": cur.price(clearing["price"]), "volume_fmt": units.energy(clearing["volume_wh"]),
            "mechanism": clearing["mechanism"], "height": clearing["height"], "classes": classes}


def trade_row(chain: Chain, names: Names, trade: Mapping[str, Any]) -> dict[str, Any]:
    cur = chain.currency
    return {"id": trade["id"], "slot": trade["slot"], "slot_label": units.slot_label(trade["slot"]),
            "time_utc": units.utc(trade["time"]), "height": trade["height"],
            "seller": _party(names, trade["seller"]), "buyer": _party(names, trade["buyer"]),
            "route": f"{trade['seller_zone']} → {trade['buyer_zone']}",
            "quantity_fmt": units.energy(trade["quantity_wh"]), "price_fmt": cur.price(trade["price"]),
            "fee_fmt": cur.price(trade["fee_per_kwh"]), "value_fmt": cur.money(trade["value"]),
            "origin": trade.get("origin", ""), "mechanism": trade.get("mechanism", "")}


async def market(ctx: Context, zone_text: str | None, slot_text: str | None) -> dict[str, Any]:
    chain = await chain_facts(ctx)
    node, cur = ctx.primary, chain.currency
    zone = zone_arg(zone_text, chain)
    booked = await node.query_value("/slots")
    open_slots = [s for s in booked.get("slots", ()) if isinstance(s, int)]
    slot = int_arg(slot_text, "slot")
    if slot is None:
        slot = min(open_slots, default=chain.next_open_slot())
    chain.check_slot(slot)
    recent = {trade.slot for _, trade in ctx.live.trades}
    choices = sorted({*open_slots, *recent, slot, chain.next_open_slot()})
    base = {"chain_id": chain.chain_id, "height": chain.height, "zones": list(chain.zones), "zone": zone,
            "slots": [{"slot": s, "label": units.slot_label(s)} for s in choices], "currency": cur.code,
            "matching": "call auction at gate closure" if chain.matching_mode == 1 else "continuous double auction",
            **_slot_fields(chain, slot)}
    if zone is None:
        return {**base, "message": "no zone is served by a DSO yet"}
    zones = list(chain.zones)
    books_list = await _bounded(node.query_value(f"/book/{slot}/{z}") for z in zones)
    books = dict(zip(zones, books_list, strict=True))
    clearings = await _bounded(node.query_or_none(f"/clearing/{slot}/{z}") for z in zones)
    best, trades = await asyncio.gather(node.query_value(f"/best/{slot}/{zone}"),
                                        node.query_value(f"/trades/slot/{slot}"))
    slot_trades = list(reversed(trades.get("trades", [])))[:TRADES_SHOWN]
    return {
        **base,
        "bids": _levels(books[zone].get("bids", ()), cur), "asks": _levels(books[zone].get("asks", ()), cur),
        "effective_asks": _effective_asks(chain, books, zone),
        "best_ask": _quote(cur, best.get("best_ask")), "best_bid": _quote(cur, best.get("best_bid")),
        "trades": [trade_row(chain, ctx.names, t) for t in slot_trades],
        "recent_trades": [live_trade(ctx.names, cur, info, t) for info, t in reversed(ctx.live.trades)],
        "trade_count": len(trades.get("trades", [])),
        "clearing": [_clearing(cur, z, c) for z, c in zip(zones, clearings, strict=True) if c],
        "fees": {"zones": zones, "rows": [{"from": a, "fees": [cur.price(chain.fees.get((a, b), 0)) for b in zones]}
                                          for a in zones]},
    }


# -- Prices -----------------------------------------------------------------------------------
async def slot_trades(ctx: Context, slot: int) -> list[dict[str, Any]]:
    async def read(s: int) -> tuple[list[dict[str, Any]], int]:
        answer = await ctx.primary.query(f"/trades/slot/{s}")
        return list(answer.value.get("trades", [])), answer.height

    return await ctx.live.trade_cache.fetch(slot, read)


async def prices(ctx: Context, day_text: str | None, zone_text: str | None) -> dict[str, Any]:
    chain = await chain_facts(ctx)
    cur = chain.currency
    day = day_arg(day_text, chain)
    zone = zone_arg(zone_text, chain, allow_all=True)
    slots = list(chain.day_slots(day))
    per_slot = await _bounded(slot_trades(ctx, s) for s in slots)
    rows: list[dict[str, Any]] = []
    x: list[int] = []
    vwap: list[float | None] = []
    volume: list[float] = []
    for slot, trades in zip(slots, per_slot, strict=True):
        chosen = [t for t in trades if zone is None or t["seller_zone"] == zone]
        quantity = sum(t["quantity_wh"] for t in chosen)
        x.append(slot)
        volume.append(quantity / 1000)
        if not chosen:
            vwap.append(None)
            continue
        average = sum(t["price"] * t["quantity_wh"] for t in chosen) // quantity
        vwap.append(cur.units(average))
        rows.append({"slot": slot, "slot_label": units.slot_label(slot), "trades": len(chosen),
                     "volume_fmt": units.energy(quantity), "vwap_fmt": cur.price(average),
                     "low_fmt": cur.price(min(t["price"] for t in chosen)),
                     "high_fmt": cur.price(max(t["price"] for t in chosen))})
    return {"chain_id": chain.chain_id, "height": chain.height, "day": units.day_of(day),
            "previous_day": units.day_of(day - DAY_S), "next_day": units.day_of(day + DAY_S),
            "zones": list(chain.zones), "zone": zone or "", "currency": cur.code, "slot_length_s": chain.slot_length_s,
            "rows": rows, "chart": {"x": x, "vwap": vwap, "volume_kwh": volume},
            "slots_with_trades": len(rows)}


# -- Settlement ------------------------------------------------------------------------------
async def slot_settlement(ctx: Context, slot: int) -> dict[str, Any] | None:
    async def read(s: int) -> tuple[dict[str, Any] | None, int]:
        try:
            answer = await ctx.primary.query(f"/settlement/{s}")
        except QueryFailed as exc:
            if exc.code != NOT_FOUND:
                raise
            return None, exc.height
        return answer.value, answer.height

    return await ctx.live.settlement_cache.fetch(slot, read)


def _settlement_row(cur: Currency, total: Mapping[str, Any]) -> dict[str, Any]:
    return {"slot": total["slot"], "slot_label": units.slot_label(total["slot"]),
            "participants": total["participants"], "shortfall_fmt": units.energy(total["shortfall_wh"]),
            "surplus_fmt": units.energy(total["surplus_wh"]), "charges_fmt": cur.money(total["charges"]),
            "credits_fmt": cur.money(total["credits_due"]), "debt_fmt": cur.money(total["debt"]),
            "complete": total["complete"], "height": total["height"]}


def report_row(cur: Currency, names: Names, report: Mapping[str, Any]) -> dict[str, Any]:
    return {"slot": report["slot"], "slot_label": units.slot_label(report["slot"]),
            "participant": _party(names, report["account"]),
            "traded_fmt": units.energy(report["contracted_wh"]),
            "bought_fmt": units.energy(report["bought_wh"]), "sold_fmt": units.energy(report["sold_wh"]),
            "delivered_fmt": units.energy(report["measured_wh"]),
            "imported_fmt": units.energy(report["imported_wh"]), "exported_fmt": units.energy(report["exported_wh"]),
            "deviation_wh": report["deviation_wh"], "deviation_fmt": units.energy(report["deviation_wh"]),
            "charge_fmt": cur.money(report["charged"]),
            "credit_fmt": cur.money(report["balancing_credit_due"] + report["feed_in_due"]),
            "collateral_used_fmt": cur.money(report["collateral_used"]),
            "debt_added_fmt": cur.money(report["debt_added"]), "height": report["height"]}


async def participants(ctx: Context, chain: Chain) -> list[dict[str, str]]:
    answers = await _bounded(ctx.primary.query_value(f"/participants/{z}") for z in chain.zones)
    found = []
    for zone, answer in zip(chain.zones, answers, strict=True):
        for account in answer.get("participants", ()):
            name = ctx.names.name(account)
            found.append({"id": account, "zone": zone, "label": f"{name or account[:12] + '…'} ({zone})",
                          "name": name or ""})
    found.sort(key=lambda p: (p["name"] == "", p["name"], p["id"]))
    return found


async def settlement(ctx: Context, day_text: str | None, slot_text: str | None) -> dict[str, Any]:
    chain = await chain_facts(ctx)
    cur = chain.currency
    day = day_arg(day_text, chain)
    slots = list(chain.day_slots(day))
    totals = await _bounded(slot_settlement(ctx, s) for s in slots)
    settled = [t for t in totals if t is not None]
    slot = int_arg(slot_text, "slot")
    if slot is None and settled:
        slot = settled[-1]["slot"]
    chosen: dict[str, Any] | None = None
    if slot is not None:
        total = await slot_settlement(ctx, chain.check_slot(slot))
        chosen = {**_slot_fields(chain, slot), "settled": total is not None,
                  "reports": [report_row(cur, ctx.names, r) for r in (total or {}).get("reports", [])]}
    return {"chain_id": chain.chain_id, "height": chain.height, "day": units.day_of(day),
            "previous_day": units.day_of(day - DAY_S), "next_day": units.day_of(day + DAY_S),
            "currency": cur.code, "settlement_window": f"{chain.settlement_window_s} s",
            "slots": [_settlement_row(cur, t) for t in settled], "selected": chosen,
            "participants": await participants(ctx, chain)}


def _range(chain: Chain, start_text: str | None, end_text: str | None) -> tuple[int, int]:
    """[from day 00:00, to day 24:00) in unix seconds; both default to the chain's current day."""
    start = day_arg(start_text, chain)
    end = day_arg(end_text, chain) + DAY_S if end_text else start + DAY_S
    if end <= start:
        raise ViewError(400, "the statement's last day is before its first")
    return start, end


def _account_arg(ctx: Context, text: str | None) -> str:
    if not text:
        raise ViewError(400, "choose a participant (account id or roster name)")
    account = ctx.names.account_of(text)
    if account is None:
        raise ViewError(404, f"{text!r} is neither an account id nor a name in the roster")
    return account


async def participant(ctx: Context, who: str | None, start_text: str | None, end_text: str | None,
                      ) -> dict[str, Any]:
    chain = await chain_facts(ctx)
    cur = chain.currency
    account_id = _account_arg(ctx, who)
    start, end = _range(chain, start_text, end_text)
    node = ctx.primary
    account = await node.query_or_none(f"/account/{account_id}")
    if account is None:
        raise ViewError(404, f"account {account_id} does not exist on this chain")
    reports, statement = await asyncio.gather(node.query_value(f"/settlements/{account_id}"),
                                              node.query_value(f"/statement/{account_id}/{start}/{end}"))
    lines = statement.get("lines", [])
    return {
        "account": {"id": account_id, "name": ctx.names.name(account_id) or "", "role": account["role"],
                    "zone": account["zone"], "balance_fmt": cur.money(account["balance"]),
                    "free_fmt": cur.money(account["free"]), "locked_fmt": cur.money(account["locked"]),
                    "debt_fmt": cur.money(account["debt"])},
        "from": units.day_of(start), "to": units.day_of(end - DAY_S),
        "reports": [report_row(cur, ctx.names, r) for r in reversed(reports.get("reports", []))],
        "statement": [{"time_utc": units.utc(line["time"]), "height": line["height"], "kind": line["kind"],
                       "amount_fmt": cur.money(line["amount"]), "credit": line["amount"] >= 0,
                       "reference": line["reference"]} for line in lines],
        "statement_total_fmt": cur.money(sum(line["amount"] for line in lines)),
        "truncated": statement.get("truncated", False),
    }


async def statement_csv(ctx: Context, who: str | None, start_text: str | None, end_text: str | None,
                        ) -> tuple[str, str]:
    """(file name, CSV text) of a participant's statement lines in the date range."""
    chain = await chain_facts(ctx)
    account_id = _account_arg(ctx, who)
    start, end = _range(chain, start_text, end_text)
    answer = await ctx.primary.query_value(f"/statement/{account_id}/{start}/{end}")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(STATEMENT_CSV_COLUMNS)
    for line in answer.get("lines", []):
        writer.writerow([units.utc(line["time"]), line["height"], line["kind"], line["amount"],
                         chain.currency.money(line["amount"]), line["reference"]])
    label = re.sub(r"[^A-Za-z0-9._-]", "_", ctx.names.name(account_id) or account_id)
    return f"statement-{label}-{units.day_of(start)}-{units.day_of(end - DAY_S)}.csv", out.getvalue()


# -- Network -----------------------------------------------------------------------------------
def _signing(history: Sequence[BlockRecord], address: str) -> tuple[str, int, int]:
    """(status in the last commit, commits missed, commits seen) over the history."""
    last, missed, seen = "unknown", 0, 0
    for record in history:
        flags = dict(record.info.signatures)
        if not flags:
            continue
        seen += 1
        flag = flags.get(address, "absent")
        last = flag
        missed += flag != "signed"
    return last, missed, seen


async def _node_report(node: Node) -> dict[str, Any]:
    try:
        status = await node.status()
    except (NodeUnreachable, RpcError) as exc:
        return {"url": node.url, "reachable": False, "error": str(exc)}
    info = status["sync_info"]
    return {"url": node.url, "reachable": True, "moniker": status["node_info"].get("moniker", ""),
            "height": int(info["latest_block_height"]), "app_hash": info["latest_app_hash"],
            "catching_up": bool(info.get("catching_up")), "time_utc": str(info["latest_block_time"])[:19] + "Z"}


async def agreement(nodes: Sequence[Node], reports: list[dict[str, Any]],
                    app_hash_at: Callable[[Node, int], Awaitable[str]] | None = None) -> dict[str, Any]:
    """Do all reachable nodes hold the same app hash at the lowest height they all reached?

    The header of height h carries the app hash after block h-1, which each node
    accepted only because its own app computed the same.
    """
    reachable = [(node, r) for node, r in zip(nodes, reports, strict=True) if r["reachable"]]
    if not reachable:
        return {"height": None, "agree": None, "hashes": [], "compared": 0, "nodes": len(reports)}
    height = min(r["height"] for _, r in reachable)
    read = app_hash_at or (lambda node, h: node.header_app_hash(h))
    hashes = []
    for node, report in reachable:
        try:
            value = report["app_hash"] if report["height"] == height else await read(node, height)
        except (NodeUnreachable, RpcError) as exc:
            value, report["error"] = None, str(exc)
        hashes.append({"url": node.url, "app_hash": value})
    distinct = {h["app_hash"] for h in hashes}
    return {"height": height, "agree": len(distinct) == 1 and None not in distinct, "hashes": hashes,
            "compared": len(hashes), "nodes": len(reports)}


async def network(ctx: Context) -> dict[str, Any]:
    live = ctx.live
    if ctx._network is not None and ctx._network[0] == live.height and live.height:
        return ctx._network[1]
    validators, operators, reports = await asyncio.gather(
        ctx.primary.validators(), ctx.primary.query_or_none("/operators"),
        asyncio.gather(*(_node_report(node) for node in ctx.nodes)))
    reports = list(reports)
    names = {op.get("consensus_pubkey"): op["name"] for op in (operators or {}).get("operators", [])}
    history = list(live.history)
    total_power = sum(int(v["voting_power"]) for v in validators)
    rows = []
    for validator in validators:
        address = validator["address"]
        last, missed, seen = _signing(history, address)
        power = int(validator["voting_power"])
        rows.append({"address": address, "name": names.get(validator["pub_key"]["value"], ""),
                     "power": power, "share": f"{100 * power / total_power:.1f} %" if total_power else "",
                     "last_commit": last, "missed": missed, "window": seen})
    recent = history[-HISTORY_SHOWN:]
    points = [{"height": r.info.height, "time": r.info.time_ns / 1e9, "txs": r.info.txs,
               **_timing(live, r)} for r in recent]
    intervals = [p["interval_s"] for p in points if p["interval_s"] is not None]
    latencies = [p["latency_s"] for p in points if p["latency_s"] is not None]
    last_info: BlockInfo | None = history[-1].info if history else None
    view = {
        "height": live.height, "connected": live.connected, "error": live.error,
        "time_utc": units.utc(last_info.time_ns // 1_000_000_000) if last_info else "",
        "validators": rows, "total_power": total_power,
        "nodes": reports, "agreement": await agreement(ctx.nodes, reports),
        "mempool": history[-1].mempool if history else None,
        # Medians: one long pause (a halted chain, a back-dated genesis) must not hide the usual pace.
        "median_interval_s": statistics.median(intervals) if intervals else None,
        "median_latency_s": statistics.median(latencies) if latencies else None,
        "chart": {"x": [p["time"] for p in points], "interval_s": [p["interval_s"] for p in points],
                  "latency_s": [p["latency_s"] for p in points], "mempool": [p["mempool"] for p in points],
                  "txs": [p["txs"] for p in points]},
        "blocks": [{"height": p["height"], "time_utc": units.utc(int(p["time"])), "txs": p["txs"],
                    "interval": _seconds(p["interval_s"]), "latency": _seconds(p["latency_s"]),
                    "mempool": "" if p["mempool"] is None else str(p["mempool"])} for p in reversed(points[-20:])],
    }
    ctx._network = (live.height, view)
    return view


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.3f} s"

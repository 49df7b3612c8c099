"""`gridledger query ...`: read the ledger's committed state through a node."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from abci_app.ledger.modules.auth import query as auth_query
from abci_app.ledger.modules.auth.keys import account_key
from abci_app.ledger.modules.bank import keys as bank_keys
from abci_app.ledger.modules.bank import query as bank_query
from abci_app.ledger.modules.market import keys as market_keys
from abci_app.ledger.modules.market import query as market_query
from abci_app.ledger.modules.settlement import keys as settlement_keys
from abci_app.ledger.modules.settlement import query as settlement_query
from abci_app.ledger.params import PARAMS_KEY
from abci_app.ledger.state import be64
from abci_app.ledger.store import prefix_end
from cli import verify
from cli.options import DEFAULT_KEYRING, DEFAULT_NODE, KeyringDirOpt, NodeOpt, OutputOpt, ZoneArg
from cli.output import Format, Output, UsageError, note
from cli.verify import ProveChainIdOpt, ProveOpt, TrustedOpt, money_params, prove
from node.client.chain import NodeClient, block_summary, committed_tx, search_txs
from node.client.names import account_names, resolve, with_names
from node.client.orders import rules_of
from node.client.slots import iso
from node.client.units import format_energy, format_money, format_price, parse_time
from node.validators import named_validators

query_app = typer.Typer(help="Read ledger state (last committed block).", no_args_is_help=True)



def _money_fields(client: NodeClient, record: dict[str, Any], names: tuple[str, ...],
                  params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Integers stay as they are; a formatted twin (``balance_fmt``) is added for people and scripts."""
    params = params or client.query("/params")
    for name in names:
        if name in record:
            record[f"{name}_fmt"] = format_money(record[name], params["currency"], params["currency_exponent"])
    return record


@query_app.command("account")
def account(
    who: Annotated[str, typer.Argument(help="Account id or key name.")],
    node: NodeOpt = DEFAULT_NODE, output: OutputOpt = Format.table, keyring_dir: KeyringDirOpt = DEFAULT_KEYRING,
    proof: ProveOpt = False, trusted: TrustedOpt = None, chain_id: ProveChainIdOpt = None,
) -> None:
    """Balances (free, locked), nonce, role, zone and DSO of an account.

    With --prove the answer is computed from the account record proven against the app
    hash of a header signed by more than 2/3 of the validators (exit code 4 if anything fails).

    Example: gridledger query account alice --output json --prove
    """
    client = NodeClient(node)
    account_id = resolve(who, keyring_dir, client)
    params = None
    if proof:
        proven = prove(node, trusted, chain_id, keys=[account_key(account_id), PARAMS_KEY])
        record, params = verify.answer(proven, auth_query.query, "account", [account_id]), money_params(proven)
    else:
        record = client.query(f"/account/{account_id}")
    if record.get("dso"):
        with_names([record], ("dso",), account_names(keyring_dir, client))
    Output(output.value).record(_money_fields(client, record, ("balance", "free", "locked", "debt"), params))


@query_app.command("participants")
def participants(zone: ZoneArg, node: NodeOpt = DEFAULT_NODE,
                 output: OutputOpt = Format.table) -> None:
    """Account ids of the participants in a zone.

    Example: gridledger query participants zone-a
    """
    answer = NodeClient(node).query(f"/participants/{zone}")
    Output(output.value).records([{"zone": zone, "account": a} for a in answer["participants"]])


@query_app.command("meters")
def meters(who: Annotated[str, typer.Argument(help="Participant: account id or key name.")],
           node: NodeOpt = DEFAULT_NODE, output: OutputOpt = Format.table,
           keyring_dir: KeyringDirOpt = DEFAULT_KEYRING) -> None:
    """Smart meters registered to a participant.

    Example: gridledger query meters alice
    """
    client = NodeClient(node)
    answer = client.query(f"/meters/{resolve(who, keyring_dir, client)}")
    Output(output.value).records(answer["meters"], columns=("id", "owner", "import_capacity_w",
                                                            "export_capacity_w", "active"))


@query_app.command("operators")
def operators(node: NodeOpt = DEFAULT_NODE, output: OutputOpt = Format.table) -> None:
    """Grid operators (DSOs, LPDs) with zones and governance power.

    Example: gridledger query operators
    """
    Output(output.value).records(NodeClient(node).query("/operators")["operators"])


@query_app.command("params")
def params(node: NodeOpt = DEFAULT_NODE, output: OutputOpt = Format.table) -> None:
    """Chain parameters.

    Example: gridledger query params -o json
    """
    Output(output.value).record(NodeClient(node).query("/params"))


@query_app.command("supply")
def supply(node: NodeOpt = DEFAULT_NODE, output: OutputOpt = Format.table) -> None:
    """Money in circulation (deposits minus withdrawals).

    Example: gridledger query supply
    """
    client = NodeClient(node)
    Output(output.value).record(_money_fields(client, client.query("/supply"), ("total",)))


@query_app.command("proposals")
def proposals(node: NodeOpt = DEFAULT_NODE, output: OutputOpt = Format.table) -> None:
    """Governance proposals and their tallies.

    Example: gridledger query proposals
    """
    rows = [{**proposal, "expires_at_utc": utc(proposal["expires_at"])} if isinstance(proposal.get("expires_at"), int)
            else proposal for proposal in NodeClient(node).query("/proposals")["proposals"]]
    Output(output.value).records(rows, columns=("id", "kind", "status", "proposer_name", "summary", "yes_power",
                                                "no_power", "expires_at_utc"))


@query_app.command("validators")
def validators(node: NodeOpt = DEFAULT_NODE, output: OutputOpt = Format.table) -> None:
    """The current CometBFT validator set, with the operator (name, role) holding each consensus key.

    Example: gridledger query validators
    """
    client = NodeClient(node)
    answer = client.call("validators", page="1", per_page="100")
    rows = named_validators(answer["validators"], client.query("/operators")["operators"])
    Output(output.value).records(rows, columns=("name", "role", "address", "pub_key", "voting_power"))


SlotArg = Annotated[str, typer.Argument(
    help="Slot: next, +2h, a start in ISO 8601 with zone (2026-11-27T14:15Z) or unix seconds.")]


def slot_start(client: NodeClient, text: str) -> int:
    """A slot as people write it (node/client/slots.py) against the chain's last block time."""
    stripped = text.strip()
    if stripped.isdigit():
        return int(stripped)
    return rules_of(client.query("/params")).resolve(text, int(client.query("/chain")["time"]))


@query_app.command("slots")
def slots(count: Annotated[int, typer.Option(min=1, max=1000, help="How many slots to list.")] = 8,
          node: NodeOpt = DEFAULT_NODE, output: OutputOpt = Format.table) -> None:
    """The open delivery slots: where orders are accepted now, with each gate closure (ISO 8601 UTC).

    Example: gridledger query slots --count 4
    """
    client = NodeClient(node)
    rules, now = rules_of(client.query("/params")), int(client.query("/chain")["time"])
    rows = [{"slot": iso(slot), "gate_closure": iso(rules.gate(slot)), "end": iso(slot + rules.slot_length_s),
             "gate_closes_in": _until(rules.gate(slot) - now), "slot_unix": slot, "gate_closure_unix": rules.gate(slot)}
            for slot in rules.open_slots(now, count)]
    note(f"chain time {iso(now)}; slots of {rules.slot_length_s // 60} min, gates close "
         f"{rules.gate_closure_lead_s // 60} min before the start")
    Output(output.value).records(rows, columns=("slot", "gate_closure", "gate_closes_in", "end"))


def _until(seconds: int) -> str:
    hours, rest = divmod(max(seconds, 0), 3_600)
    return f"{hours} h {rest // 60} min" if hours else f"{rest // 60} min {rest % 60} s"


def _price_fields(client: NodeClient, record: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Integer prices (money per kWh) keep their value; a ``*_fmt`` twin reads e.g. ``0.250000 EUR/kWh``."""
    params = client.query("/params")
    for name in names:
        if isinstance(record.get(name), int):
            record[f"{name}_fmt"] = format_price(record[name], params["currency"], params["currency_exponent"])
    return record


def _with_iso(record: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Unix seconds stay (JSON); an ISO 8601 twin ``*_utc`` is added for tables and people."""
    for name in names:
        if isinstance(record.get(name), int):
            record[f"{name}_utc"] = iso(record[name])
    return record


@query_app.command("book")
def book(slot: SlotArg, zone: ZoneArg, node: NodeOpt = DEFAULT_NODE,
         output: OutputOpt = Format.table) -> None:
    """Depth of a zone's order book in one slot, by price level (bids all-in, asks energy price).

    Example: gridledger query book 2026-01-01T10:00Z zone-a
    """
    client = NodeClient(node)
    answer = client.query(f"/book/{slot_start(client, slot)}/{zone}")
    rows = [_price_fields(client, {"side": side[:-1], **level}, ("price",))
            for side in ("bids", "asks") for level in answer[side]]
    Output(output.value).records(rows, columns=("side", "price_fmt", "quantity_wh", "orders"))


@query_app.command("best")
def best(slot: SlotArg, zone: Annotated[str, typer.Argument(help="The buyer's zone.")], node: NodeOpt = DEFAULT_NODE,
         output: OutputOpt = Format.table) -> None:
    """Best ask for a buyer in ZONE (by effective price incl. grid fee) and the zone's best bid.

    Example: gridledger query best 2026-01-01T10:00Z zone-a -o json
    """
    client = NodeClient(node)
    answer = client.query(f"/best/{slot_start(client, slot)}/{zone}")
    for side in ("best_ask", "best_bid"):
        if answer[side] is not None:
            _price_fields(client, answer[side], ("price", "effective_price", "fee_per_kwh"))
    Output(output.value).record(answer)


@query_app.command("orders")
def orders(who: Annotated[str, typer.Argument(help="Account id or key name.")], node: NodeOpt = DEFAULT_NODE,
           output: OutputOpt = Format.table, keyring_dir: KeyringDirOpt = DEFAULT_KEYRING) -> None:
    """Open orders of an account.

    Example: gridledger query orders alice
    """
    client = NodeClient(node)
    answer = client.query(f"/orders/{resolve(who, keyring_dir, client)}")
    rows = [_with_iso(_price_fields(client, order, ("price",)), ("slot", "valid_until")) for order in answer["orders"]]
    Output(output.value).records(rows, columns=("id", "side", "slot_utc", "price_fmt", "quantity_wh", "remaining_wh",
                                                "tif", "origin", "valid_until_utc", "locked"))


@query_app.command("trades")
def trades(slot: Annotated[str | None, typer.Option(help="Trades of this slot.")] = None,
           account: Annotated[str | None, typer.Option(help="Trades of this account (id or key name).")] = None,
           node: NodeOpt = DEFAULT_NODE, output: OutputOpt = Format.table,
           keyring_dir: KeyringDirOpt = DEFAULT_KEYRING) -> None:
    """Trades of a slot or of an account (the last 500).

    Example: gridledger query trades --slot 2026-01-01T10:00Z
    """
    if (slot is None) == (account is None):
        raise UsageError("give exactly one of --slot or --account")
    client = NodeClient(node)
    path = f"/trades/slot/{slot_start(client, slot)}" if slot is not None else \
        f"/trades/account/{resolve(account or '', keyring_dir, client)}"
    rows = [_with_iso(_price_fields(client, trade, ("price", "fee_per_kwh")), ("slot",))
            for trade in client.query(path)["trades"]]
    with_names(rows, ("buyer", "seller"), account_names(keyring_dir, client))
    for row in rows:
        row["quantity_fmt"] = format_energy(row["quantity_wh"])
    Output(output.value).records(rows, columns=("id", "slot_utc", "buyer_name", "seller_name", "quantity_fmt",
                                                "price_fmt", "fee_per_kwh_fmt", "origin", "mechanism", "height"))


@query_app.command("clearing")
def clearing(slot: SlotArg, zone: ZoneArg, node: NodeOpt = DEFAULT_NODE,
             output: OutputOpt = Format.table) -> None:
    """Last price formed in a slot and zone (call-auction clearing price or last trade price).

    Example: gridledger query clearing 2026-01-01T10:00Z zone-a
    """
    client = NodeClient(node)
    answer = client.query(f"/clearing/{slot_start(client, slot)}/{zone}")
    Output(output.value).record(_price_fields(client, answer, ("price",)))


@query_app.command("position")
def position(slot: SlotArg, who: Annotated[str, typer.Argument(help="Account id or key name.")],
             node: NodeOpt = DEFAULT_NODE, output: OutputOpt = Format.table,
             keyring_dir: KeyringDirOpt = DEFAULT_KEYRING, proof: ProveOpt = False, trusted: TrustedOpt = None,
             chain_id: ProveChainIdOpt = None) -> None:
    """An account's open quantities, trades and locked collateral in one slot.

    Example: gridledger query position 2026-01-01T10:00Z alice --prove
    """
    client = NodeClient(node)
    start, account_id = slot_start(client, slot), resolve(who, keyring_dir, client)
    params = None
    if proof:
        proven = prove(node, trusted, chain_id, keys=[market_keys.position_key(start, account_id), PARAMS_KEY])
        record = verify.answer(proven, market_query.query, "position", [str(start), account_id])
        params = money_params(proven)
    else:
        record = client.query(f"/position/{start}/{account_id}")
    Output(output.value).record(_money_fields(client, record, ("paid", "received", "fees_paid", "collateral"), params))


@query_app.command("fees")
def fees(node: NodeOpt = DEFAULT_NODE, output: OutputOpt = Format.table) -> None:
    """The grid fee matrix (money per kWh from zone to zone).

    Example: gridledger query fees
    """
    client = NodeClient(node)
    rows = [_price_fields(client, row, ("fee_per_kwh",)) for row in client.query("/fees")["fees"]]
    Output(output.value).records(rows, columns=("from", "to", "fee_per_kwh", "fee_per_kwh_fmt"))


# -- metering and settlement (docs/settlement.md) --------------------------------------
REPORT_MONEY = ("energy_paid", "energy_received", "fees_paid", "balancing_charge", "supply_charge", "network_charge",
                "charged", "collateral_released", "collateral_used", "paid_from_balance", "debt_added",
                "debt_written_off", "balancing_credit_due", "feed_in_due", "credit_paid", "credit_owed")
SLOT_MONEY = ("traded_value", "charges", "collected", "debt", "credits_due", "lpd_due", "lpd_owes", "dso_due", "paid",
              "owed")
REPORT_COLUMNS = ("slot_utc", "account", "regime", "contracted_wh", "measured_wh", "deviation_wh", "charged_fmt",
                  "balancing_credit_due_fmt", "feed_in_due_fmt", "collateral_used_fmt", "debt_added_fmt", "height")
STATEMENT_CSV_COLUMNS = ("time", "height", "kind", "amount", "amount_fmt", "reference")
END_OF_TIME = (1 << 63) - 1


def utc(seconds: int) -> str:
    """Unix seconds as ISO 8601 UTC, e.g. ``2026-01-01T10:00:00Z``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _with_money_twins(client: NodeClient, records: list[dict[str, Any]], names: tuple[str, ...],
                      params: dict[str, Any] | None = None) -> None:
    """Add ``*_fmt`` twins to many records with one /params query."""
    params = params or client.query("/params")
    for record in records:
        for name in names:
            if isinstance(record.get(name), int):
                record[f"{name}_fmt"] = format_money(record[name], params["currency"], params["currency_exponent"])


@query_app.command("settlement")
def settlement(slot: SlotArg,
               who: Annotated[str | None, typer.Argument(help="Only this account (id or key name).")] = None,
               node: NodeOpt = DEFAULT_NODE, output: OutputOpt = Format.table,
               keyring_dir: KeyringDirOpt = DEFAULT_KEYRING, proof: ProveOpt = False, trusted: TrustedOpt = None,
               chain_id: ProveChainIdOpt = None) -> None:
    """A slot's settlement: totals and every participant's report, or one participant's report.

    Example: gridledger query settlement 2026-01-01T10:00Z alice --prove
    """
    client = NodeClient(node)
    out = Output(output.value)
    start = slot_start(client, slot)
    args = [str(start)] if who is None else [str(start), resolve(who, keyring_dir, client)]
    params = None
    if proof:
        reports = settlement_keys.report_slot_prefix(start)
        proven = prove(node, trusted, chain_id, keys=[settlement_keys.slot_total_key(start), PARAMS_KEY]
                       + ([settlement_keys.report_key(start, args[1])] if who is not None else []),
                       ranges=[] if who is not None else [(reports, prefix_end(reports) or b"\xff")])
        answer, params = verify.answer(proven, settlement_query.query, "settlement", args), money_params(proven)
    else:
        answer = client.query("/settlement/" + "/".join(args))
    if who is not None:
        _with_money_twins(client, [_with_iso(answer, ("slot",))], REPORT_MONEY, params)
        out.record(answer)
        return
    _with_money_twins(client, [_with_iso(answer, ("slot",))], SLOT_MONEY, params)
    _with_money_twins(client, [_with_iso(r, ("slot",)) for r in answer["reports"]], REPORT_MONEY, params)
    if out.fmt == "json":
        out.record(answer)
        return
    out.record({key: value for key, value in answer.items() if key != "reports"}, title="slot settlement")
    out.records(answer["reports"], columns=REPORT_COLUMNS)


@query_app.command("settlements")
def settlements(who: Annotated[str, typer.Argument(help="Account id or key name.")], node: NodeOpt = DEFAULT_NODE,
                output: OutputOpt = Format.table, keyring_dir: KeyringDirOpt = DEFAULT_KEYRING) -> None:
    """An account's settlement reports, oldest slot first (the last 500).

    Example: gridledger query settlements alice -o json
    """
    client = NodeClient(node)
    reports = [_with_iso(report, ("slot",))
               for report in client.query(f"/settlements/{resolve(who, keyring_dir, client)}")["reports"]]
    _with_money_twins(client, reports, REPORT_MONEY)
    Output(output.value).records(reports, columns=REPORT_COLUMNS)


@query_app.command("reserve")
def reserve(node: NodeOpt = DEFAULT_NODE, output: OutputOpt = Format.table) -> None:
    """The balancing reserve: its balance, what it still owes its creditors and what the LPD owes it.

    Example: gridledger query reserve
    """
    client = NodeClient(node)
    answer = client.query("/reserve")
    _with_money_twins(client, [answer], ("balance", "owes", "owed"))
    Output(output.value).record(answer)


@query_app.command("owed")
def owed(debtor: Annotated[str, typer.Argument(help="Debtor: 'reserve', an account id or a key name (the LPD).")],
         node: NodeOpt = DEFAULT_NODE, output: OutputOpt = Format.table,
         keyring_dir: KeyringDirOpt = DEFAULT_KEYRING) -> None:
    """What the reserve (or the LPD, to the reserve) could not pay yet, oldest slot first.

    Example: gridledger query owed reserve
    """
    client = NodeClient(node)
    debtor_id = settlement_keys.RESERVE_ID if debtor == "reserve" else resolve(debtor, keyring_dir, client)
    answer = client.query(f"/owed/{debtor_id}")
    _with_money_twins(client, answer["owed"], ("amount",))
    out = Output(output.value)
    if out.fmt == "json":
        out.record(answer)
        return
    out.records(answer["owed"], columns=("slot", "creditor", "reason", "amount", "amount_fmt"))


@query_app.command("statement")
def statement(
    who: Annotated[str, typer.Argument(help="Account id or key name.")],
    start: Annotated[str, typer.Option("--from", help="First time included: unix seconds or ISO 8601 with zone.")]
    = "0",
    end: Annotated[str | None, typer.Option("--to", help="End of the period (excluded; default: no end).")] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Also write the lines to this CSV file (billing).")]
    = None,
    node: NodeOpt = DEFAULT_NODE, output: OutputOpt = Format.table, keyring_dir: KeyringDirOpt = DEFAULT_KEYRING,
    proof: ProveOpt = False, trusted: TrustedOpt = None, chain_id: ProveChainIdOpt = None,
) -> None:
    """Every money movement of an account with FROM <= time < TO: deposits, trades, fees, balancing, debt.

    Amounts are signed (+ credit, - debit). --csv writes time (ISO UTC), height, kind,
    amount, amount_fmt and reference, one line per movement. With --prove the lines are
    proven complete: a range proof shows no line of the period is missing.

    Example: gridledger query statement alice --from 2026-01-01T00:00Z --to 2026-02-01T00:00Z --csv jan.csv
    """
    client = NodeClient(node)
    account_id = resolve(who, keyring_dir, client)
    first, until = parse_time(start), END_OF_TIME if end is None else parse_time(end)
    if until <= first:
        raise UsageError("--to must be after --from")
    params = None
    if proof:
        journal = bank_keys.journal_prefix(account_id)
        proven = prove(node, trusted, chain_id, keys=[PARAMS_KEY],
                       ranges=[(journal + be64(first), journal + be64(until))])
        answer = verify.answer(proven, bank_query.query, "statement", [account_id, str(first), str(until)])
        params = money_params(proven)
    else:
        answer = client.query(f"/statement/{account_id}/{first}/{until}")
    lines = [{**line, "time_utc": utc(line["time"])} for line in answer["lines"]]
    _with_money_twins(client, lines, ("amount",), params)
    if answer["truncated"]:
        note(f"statement truncated at {len(lines)} lines: narrow --from/--to to see the rest")
    if csv_file is not None:
        _write_statement_csv(csv_file, lines)
        note(f"{len(lines)} statement lines written to {csv_file}")
    Output(output.value).records(lines, columns=("time_utc", "height", "kind", "amount_fmt", "reference"))


def _write_statement_csv(path: Path, lines: list[dict[str, Any]]) -> None:
    try:
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(STATEMENT_CSV_COLUMNS)
            for line in lines:
                writer.writerow([line["time_utc"], line["height"], line["kind"], line["amount"], line["amount_fmt"],
                                 line["reference"]])
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc


@query_app.command("reading")
def reading(meter: Annotated[str, typer.Argument(help="Meter id.")], node: NodeOpt = DEFAULT_NODE,
            output: OutputOpt = Format.table) -> None:
    """A meter's last accepted reading: its time and cumulative registers.

    Example: gridledger query reading m-001
    """
    record = NodeClient(node).query(f"/reading/{meter}")
    Output(output.value).record({**record, "time_utc": utc(record["time"])})


# -- transactions and blocks (CometBFT's store and index) ------------------------------
@query_app.command("tx")
def tx(digest: Annotated[str, typer.Argument(help="Transaction hash (64 hex, as `tx` commands print it).")],
       node: NodeOpt = DEFAULT_NODE, output: OutputOpt = Format.table) -> None:
    """A committed transaction: height, result code and log, its decoded message, one event per line.

    Example: gridledger query tx 3A41235E72BFFD69A7E072F83816D86A96F038FAB95032D3914056BCEA140479
    """
    Output(output.value).record(committed_tx(NodeClient(node), digest))


@query_app.command("block")
def block(height: Annotated[int | None, typer.Argument(min=1, help="Block height (default: the latest).")] = None,
          node: NodeOpt = DEFAULT_NODE, output: OutputOpt = Format.table,
          keyring_dir: KeyringDirOpt = DEFAULT_KEYRING) -> None:
    """A block: height, time, proposer, app hash and its transactions (hash, type, signer, result code).

    Example: gridledger query block 12
    """
    client = NodeClient(node)
    summary = block_summary(client, height)
    with_names(summary["txs"], ("signer",), account_names(keyring_dir, client))
    out = Output(output.value)
    if out.fmt == "json":
        out.record(summary)
        return
    out.record({key: value for key, value in summary.items() if key != "txs"}, title="block")
    if summary["txs"]:
        out.records(summary["txs"], columns=("hash", "type", "signer_name", "code"))


@query_app.command("txs")
def txs(events: Annotated[str, typer.Option(
            "--events", help="CometBFT event query, e.g. \"trade.buyer='<account id>'\" or \"tx.height>=5\" "
                             "(docs/events.md).")],
        limit: Annotated[int, typer.Option(min=1, max=100, help="At most this many, oldest first.")] = 30,
        node: NodeOpt = DEFAULT_NODE, output: OutputOpt = Format.table) -> None:
    """Committed transactions whose events match a query (CometBFT's tx_search).

    Example: gridledger query txs --events "order.placed.side='ask'"
    """
    Output(output.value).records(search_txs(NodeClient(node), events, limit), columns=("hash", "height", "code",
                                                                                      "events"))

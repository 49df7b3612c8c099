"""The scenario engine: play a market scenario from a CSV file through signed transactions.

A scenario lists, per delivery slot (counted from ``start``), the orders each
participant places and the energy its meters measure. The runner signs every
order with the participant's key and every meter reading with the meter's key,
and sends them when the chain's block time allows: orders before the slot's
gate closure, readings once the slot has ended (and before its settlement
deadline). It then waits for the settlement of the last slot and returns each
participant's balances. The CSV format is in docs/scenarios.md; the command is
``gridledger scenario run`` (cli/scenario.py).

The chain is reached through a ``Transport``: a node's RPC (``RpcTransport``),
or an in-process chain in the tests (whose block times can jump, so a day of
hourly slots plays in seconds).
"""

from __future__ import annotations

import base64
import csv
import json
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from abci_app.ledger import errors
from abci_app.ledger.crypto import SigningKey
from abci_app.ledger.modules.market.msgs import PlaceOrder
from abci_app.ledger.modules.settlement.msgs import MAX_READINGS, SubmitReadings
from abci_app.ledger.msg import Msg
from abci_app.ledger.tx import encode_tx
from node.client.chain import NodeClient, TxRejected
from node.client.readings import UnsignedReading, parse_wh, sign_reading
from node.client.units import UnitError, format_money, parse_price
from node.rpc import NodeUnreachable, tx_hash

REQUIRED_COLUMNS = ("slot", "participant", "action")
OPTIONAL_COLUMNS = ("quantity_wh", "price", "origin", "accept", "meter", "meter_key", "import_wh", "export_wh")
ACTIONS = ("bid", "ask", "reading")
START_MARGIN_S = 60
"""Default start: the first slot whose gate closes at least this long after the current block time
(or three slots, when that is shorter: on a replay chain's 10 s slots, 30 s)."""
IDLE_RETRIES = 20
"""Blocks to wait for a silent meter's overdue slots to be substituted before its idle reading is accepted
(one block with the default ``settlement_batch``; more when a small batch spreads the settlement)."""
MONEY_FIELDS = ("balance_before", "balance", "change", "free", "locked", "debt", "fees_paid", "balancing_charges",
                "supply_charges", "network_charges", "credits", "credits_owed")


class ScenarioError(Exception):
    """The scenario cannot be played as written (file, keys, chain facts)."""


class TxFailed(TxRejected):
    """The chain rejected one of the scenario's transactions."""

    def __init__(self, message: str) -> None:
        super().__init__(f"transaction rejected: {message}")


# -- the file ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class OrderRow:
    line: int
    slot: int
    """Slot offset from the scenario start."""
    participant: str
    side: str
    quantity_wh: int
    price: str
    """As written (e.g. ``0.22EUR/kWh``); read with the chain's currency."""
    origin: str
    accept: tuple[str, ...]


@dataclass(frozen=True)
class ReadingRow:
    line: int
    slot: int
    participant: str
    meter: str
    meter_key: str
    import_wh: int
    """Energy imported during the slot (not a register value)."""
    export_wh: int


@dataclass(frozen=True)
class Scenario:
    orders: tuple[OrderRow, ...]
    readings: tuple[ReadingRow, ...]

    @property
    def slots(self) -> int:
        """Number of slots played: up to the last slot any row names."""
        return 1 + max(row.slot for row in self._rows())

    @property
    def participants(self) -> list[str]:
        return sorted({row.participant for row in self._rows()})

    def _rows(self) -> tuple[OrderRow | ReadingRow, ...]:
        return (*self.orders, *self.readings)

    @property
    def meters(self) -> dict[str, ReadingRow]:
        """Each meter's first row (its participant and key name)."""
        first: dict[str, ReadingRow] = {}
        for row in self.readings:
            first.setdefault(row.meter, row)
        return first


def load_scenario(path: Path) -> Scenario:
    """Read and check a scenario CSV (lines starting with ``#`` are comments)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{path} is not UTF-8 text") from None
    numbered = [(number, line) for number, line in enumerate(text.splitlines(), start=1)
                if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        raise ScenarioError(f"{path} is empty")
    try:
        rows = list(csv.reader(line for _, line in numbered))
    except csv.Error as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    header = [name.strip() for name in rows[0]]
    unknown = [name for name in header if name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if unknown or missing:
        raise ScenarioError(f"{path} line {numbered[0][0]}: header needs {','.join(REQUIRED_COLUMNS)}"
                            + (f"; unknown column {', '.join(unknown)}" if unknown else "")
                            + (f"; missing {', '.join(missing)}" if missing else ""))
    orders: list[OrderRow] = []
    readings: list[ReadingRow] = []
    for (number, _), cells in zip(numbered[1:], rows[1:], strict=True):
        if len(cells) > len(header):
            raise ScenarioError(f"{path} line {number}: {len(cells)} cells, the header has {len(header)}")
        row = {name: cell.strip() for name, cell in zip(header, cells, strict=False)}
        try:
            parsed = _parse_row(number, row)
        except UnitError as exc:
            raise ScenarioError(f"{path} line {number}: {exc}") from None
        if isinstance(parsed, OrderRow):
            orders.append(parsed)
        else:
            readings.append(parsed)
    if not orders and not readings:
        raise ScenarioError(f"{path} has a header but no rows")
    scenario = Scenario(tuple(orders), tuple(readings))
    _check_consistency(path, scenario)
    return scenario


def _parse_row(line: int, row: Mapping[str, str]) -> OrderRow | ReadingRow:
    slot_text, participant, action = row.get("slot", ""), row.get("participant", ""), row.get("action", "")
    if not (slot_text.isascii() and slot_text.isdigit()):
        raise UnitError(f"slot {slot_text!r}: write the slot's offset from the start (0, 1, 2, ...)")
    if not participant:
        raise UnitError("participant is empty")
    if action not in ACTIONS:
        raise UnitError(f"action {action!r}: one of {', '.join(ACTIONS)}")
    slot = int(slot_text)
    if action == "reading":
        meter = row.get("meter", "")
        if not meter:
            raise UnitError("a reading names its meter")
        return ReadingRow(line=line, slot=slot, participant=participant, meter=meter,
                          meter_key=row.get("meter_key") or meter, import_wh=parse_wh(row.get("import_wh") or "0"),
                          export_wh=parse_wh(row.get("export_wh") or "0"))
    if not row.get("quantity_wh") or not row.get("price"):
        raise UnitError(f"a {action} needs quantity_wh and price")
    accept = tuple(sorted({o for o in row.get("accept", "").split(";") if o}))
    return OrderRow(line=line, slot=slot, participant=participant, side=action,
                    quantity_wh=parse_wh(row["quantity_wh"]), price=row["price"],
                    origin=(row.get("origin") or "grid-mix") if action == "ask" else "", accept=accept)


def _check_consistency(path: Path, scenario: Scenario) -> None:
    owners = scenario.meters
    seen: set[tuple[str, int]] = set()
    for row in scenario.readings:
        if owners[row.meter].participant != row.participant or owners[row.meter].meter_key != row.meter_key:
            raise ScenarioError(f"{path} line {row.line}: meter {row.meter} appears with another participant or key")
        if (row.meter, row.slot) in seen:
            raise ScenarioError(f"{path} line {row.line}: meter {row.meter} has two readings for slot {row.slot}")
        seen.add((row.meter, row.slot))


# -- the chain ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TxOutcome:
    hash: str
    code: int
    log: str
    height: int
    """0 when CheckTx refused it."""


class Transport(Protocol):
    """How the runner reaches a chain: a node's RPC, or an in-process chain in tests."""

    def query(self, path: str, optional: bool = False) -> Any:
        """The query's JSON answer; ``None`` when ``optional`` and the ledger answers with an error code."""

    def block_time(self) -> int:
        """Time (unix seconds) of the last committed block (the genesis time before block 1)."""

    def wait_block_time(self, target: int) -> int:
        """Return once a committed block's time is at least ``target``; that block's time."""

    def submit(self, txs: Sequence[bytes]) -> list[TxOutcome]:
        """Send the transactions in this order; wait for the commit of those CheckTx accepted."""


class RpcTransport:
    """A CometBFT node's JSON-RPC (NodeUnreachable, CommitTimeout when it does not answer or commit in time)."""

    def __init__(self, url: str, commit_timeout: float = 60.0) -> None:
        self.client = NodeClient(url)
        self.commit_timeout = commit_timeout
        self._first_block_seen = False

    def _await_first_block(self) -> None:
        """The app answers no query before block 1: on a chain just started (`testnet up` returns once the RPC
        answers), wait for it, at most ``commit_timeout``."""
        if self._first_block_seen:
            return
        deadline = time.monotonic() + self.commit_timeout
        while int(self.client.call("status")["sync_info"]["latest_block_height"]) < 1:
            if time.monotonic() > deadline:
                raise NodeUnreachable(f"the chain committed no block within {self.commit_timeout:g}s",
                                      during="waiting for the first block")
            time.sleep(0.25)
        self._first_block_seen = True

    def query(self, path: str, optional: bool = False) -> Any:
        self._await_first_block()
        if not optional:
            return self.client.query(path)
        response = self.client.call("abci_query", path=path, data="", height="0", prove=False)["response"]
        if int(response.get("code", 0)) != 0:
            return None
        return json.loads(base64.b64decode(response["value"]))

    def block_time(self) -> int:
        seconds: int = self.client.query("/chain")["time"]
        return seconds

    def wait_block_time(self, target: int) -> int:
        while True:
            current = self.block_time()
            if current >= target:
                return current
            # No block event says "time T reached": poll, more often near the target.
            time.sleep(min(1.0, max(0.25, (target - current) / 10)))

    def submit(self, txs: Sequence[bytes]) -> list[TxOutcome]:
        checked = [(raw, self.client.broadcast(raw)) for raw in txs]
        outcomes = []
        for raw, check in checked:
            digest = tx_hash(raw)
            if int(check.get("code", 0)) != 0:
                outcomes.append(TxOutcome(digest, int(check["code"]), check.get("log", ""), 0))
                continue
            committed = self.client.wait(digest, self.commit_timeout)
            result = committed["tx_result"]
            outcomes.append(TxOutcome(digest, int(result.get("code", 0)), result.get("log", ""),
                                      int(committed["height"])))
        return outcomes


# -- playing -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Keys:
    """Unlocked keys by keyring name: participants (and the relayer) and meters."""

    accounts: Mapping[str, SigningKey]
    meters: Mapping[str, SigningKey]


@dataclass(frozen=True)
class ChainFacts:
    chain_id: str
    currency: str
    currency_exponent: int
    slot_length_s: int
    gate_closure_lead_s: int
    max_slot_ahead_s: int
    settlement_window_s: int

    @classmethod
    def read(cls, transport: Transport) -> ChainFacts:
        params = transport.query("/params")
        return cls(chain_id=transport.query("/chain")["chain_id"], currency=params["currency"],
                   currency_exponent=params["currency_exponent"], slot_length_s=params["slot_length_s"],
                   gate_closure_lead_s=params["gate_closure_lead_s"], max_slot_ahead_s=params["max_slot_ahead_s"],
                   settlement_window_s=params["settlement_window_s"])

    def money(self, amount: int) -> str:
        return format_money(amount, self.currency, self.currency_exponent)


@dataclass
class _PendingOrder:
    row: OrderRow
    slot_start: int
    msg: PlaceOrder


@dataclass
class _PendingReading:
    at: int
    """The slot end the reading is taken at."""
    meter: str
    meter_key: str
    relayer: str
    flow: tuple[int, int]
    """(imported, exported) Wh since the meter's previous reading."""
    line: int
    """Scenario line; 0 for a reading the runner adds (zero flow)."""


@dataclass
class Runner:
    """Plays one scenario on one chain; ``play`` returns the per-participant summary."""

    scenario: Scenario
    transport: Transport
    keys: Keys
    start: int | None = None
    """Start of slot 0 (unix seconds); default: the first slot whose gate is comfortably open."""
    relayer: str | None = None
    """Keyring name of the account relaying every reading; default: each meter's participant."""
    settle: bool = True
    log: Callable[[str], None] = lambda _line: None
    """Where progress lines go (the CLI passes its stderr printer)."""
    recheck_s: int = 5
    """While waiting for the settlement deadline, re-read it after this much block time."""
    facts: ChainFacts = field(init=False)
    _nonces: dict[str, int] = field(init=False, default_factory=dict)
    _registers: dict[str, tuple[int, int]] = field(init=False, default_factory=dict)
    _capacities: dict[str, tuple[int, int]] = field(init=False, default_factory=dict)
    """(import, export) W of each scenario meter, as registered."""
    _read_at: dict[str, int] = field(init=False, default_factory=dict)
    """Time of each scenario meter's last reading sent (or on chain, or its registration)."""
    _first_registered: int | None = field(init=False, default=None)
    """The earliest registration of a scenario meter: no earlier slot can bill them."""

    def play(self) -> list[dict[str, Any]]:
        self.facts = ChainFacts.read(self.transport)
        start = self._start()
        accounts = {name: self._account_key(name).account for name in self.scenario.participants}
        orders = self._orders(start)
        readings = self._readings(start)
        end = start + self.scenario.slots * self.facts.slot_length_s
        self.log(f"scenario: {self.scenario.slots} slots of {self.facts.slot_length_s} s from {start} to {end}, "
                 f"{len(orders)} orders, {len(readings)} readings")
        # Meters silent since before the start report zero flow up to now first, so that none of their slots
        # is billed a substitute (docs/settlement.md) once the balances below are taken.
        self._report_idle_meters(before=start)
        self._await_due_settlements()
        before = {name: self.transport.query(f"/account/{account}")["balance"] for name, account in accounts.items()}
        self._run(orders, readings, start)
        if self.settle:
            self._await_settlement(end - self.facts.slot_length_s)
        return self._summary(accounts, before, start, end)

    # -- planning --------------------------------------------------------------------------
    def _start(self) -> int:
        length = self.facts.slot_length_s
        if self.start is not None:
            if self.start % length:
                raise ScenarioError(f"--start {self.start} is not a slot start (a multiple of {length} s)")
            return self.start
        earliest_gate = self._current_time() + min(START_MARGIN_S, 3 * length)
        return -(-(earliest_gate + self.facts.gate_closure_lead_s) // length) * length

    def _current_time(self) -> int:
        """The block time, waiting for block 2 on a new chain: CometBFT stamps block 1 with the genesis time,
        which may be long past."""
        chain = self.transport.query("/chain")
        time_: int = chain["time"]
        if chain["height"] <= 1:
            time_ = self.transport.wait_block_time(time_ + 1)
        return time_

    def _orders(self, start: int) -> list[_PendingOrder]:
        pending = []
        for row in self.scenario.orders:
            slot_start = start + row.slot * self.facts.slot_length_s
            try:
                price = parse_price(row.price, self.facts.currency, self.facts.currency_exponent)
            except UnitError as exc:
                raise ScenarioError(f"line {row.line}: {exc}") from None
            msg = PlaceOrder(side=row.side, quantity_wh=row.quantity_wh, price=price, slot=slot_start,
                             valid_until=slot_start, tif="limit", client_order_id=f"scenario-line-{row.line}",
                             origin=row.origin, accept_origins=row.accept)
            pending.append(_PendingOrder(row, slot_start, msg))
        return pending

    def _readings(self, start: int) -> list[_PendingReading]:
        """Every scenario meter reports at every slot end from ``start`` on; a slot without a row has zero flow.

        A meter's flow counts for a slot only if its previous reading is at or after the slot's start
        (docs/settlement.md), so a meter last read before ``start`` first gets a zero-flow reading at ``start``.
        """
        length = self.facts.slot_length_s
        rows = {(row.meter, row.slot): row for row in self.scenario.readings}
        pending = []
        for meter, first in self.scenario.meters.items():
            last_time = self._load_registers(meter, first.participant)
            self._check_capacity(meter)
            if last_time > start:
                raise ScenarioError(f"meter {meter} already reported up to {last_time}, after the scenario's start "
                                    f"{start}: start later (--start)")
            relayer = self.relayer or first.participant
            if last_time < start:
                pending.append(_PendingReading(start, meter, first.meter_key, relayer, (0, 0), 0))
            for slot in range(self.scenario.slots):
                row = rows.get((meter, slot))
                flow = (row.import_wh, row.export_wh) if row else (0, 0)
                pending.append(_PendingReading(start + (slot + 1) * length, meter, first.meter_key, relayer, flow,
                                               row.line if row else 0))
        pending.sort(key=lambda r: (r.at, r.meter))
        return pending

    def _load_registers(self, meter: str, participant: str) -> int:
        """Remember the meter's current registers and capacities; return the time they were read (or registered)."""
        registered = self.transport.query(f"/meter/{meter}", optional=True)
        if registered is None:
            raise ScenarioError(f"meter {meter} is not registered on this chain")
        if registered["owner"] != self._account_key(participant).account:
            raise ScenarioError(f"meter {meter} is registered to {registered['owner']}, not to {participant}")
        self._capacities[meter] = (registered["import_capacity_w"], registered["export_capacity_w"])
        self._first_registered = min(self._first_registered or registered["registered_at"],
                                     registered["registered_at"])
        last = self.transport.query(f"/reading/{meter}", optional=True)
        if last is None:
            self._registers[meter] = (registered["import_register_wh"], registered["export_register_wh"])
            self._read_at[meter] = registered["registered_at"]
        else:
            self._registers[meter] = (last["import_register_wh"], last["export_register_wh"])
            self._read_at[meter] = last["time"]
        return self._read_at[meter]

    def _check_capacity(self, meter: str) -> None:
        """Every row of ``meter`` fits its connection: the ledger refuses a reading above capacity x slot length."""
        length = self.facts.slot_length_s
        capacities = self._capacities[meter]
        for row in self.scenario.readings:
            if row.meter != meter:
                continue
            for what, energy, capacity in (("imports", row.import_wh, capacities[0]),
                                           ("exports", row.export_wh, capacities[1])):
                if energy * 3_600 > capacity * length:
                    raise ScenarioError(
                        f"line {row.line}: meter {meter} {what} {energy} Wh in slot {row.slot}, more than its "
                        f"registered {capacity} W carry in a {length} s slot ({capacity * length // 3_600} Wh). "
                        "Play it on a chain whose slots are long enough, or whose meters' capacities are scaled to "
                        "its short slots (config/replay-4.toml, docs/scenarios.md)")

    # -- sending ---------------------------------------------------------------------------
    def _run(self, orders: list[_PendingOrder], readings: list[_PendingReading], start: int) -> None:
        """Send whatever is due, then wait for the block time at which the next thing becomes due.

        Until the start, the idle meters report every slot end while the runner waits.
        """
        length = self.facts.slot_length_s
        while orders or readings:
            now = self.transport.block_time()
            due_orders = [o for o in orders if o.slot_start - self.facts.max_slot_ahead_s <= now]
            due_readings = [r for r in readings if r.at <= now]
            if not due_orders and not due_readings:
                next_due = min([o.slot_start - self.facts.max_slot_ahead_s for o in orders]
                               + [r.at for r in readings])
                if now < start:
                    self._report_idle_meters(before=start)
                    next_due = min(next_due, (now // length + 1) * length)
                self.log(f"waiting for block time {next_due} (now {now})")
                self.transport.wait_block_time(next_due)
                continue
            self._send(now, due_orders, due_readings)
            orders = [o for o in orders if o not in due_orders]
            readings = [r for r in readings if r not in due_readings]

    def _send(self, now: int, orders: list[_PendingOrder], readings: list[_PendingReading]) -> None:
        labelled: list[tuple[str, bytes]] = []
        for order in orders:
            if now >= order.slot_start - self.facts.gate_closure_lead_s:
                raise ScenarioError(f"line {order.row.line}: the gate of slot {order.row.slot} ({order.slot_start}) "
                                    f"closed before block time {now}: start later (--start)")
            labelled.append((f"line {order.row.line} ({order.row.participant} {order.row.side})",
                             self._sign(order.row.participant, order.msg)))
        for reading in readings:
            if now > reading.at + self.facts.settlement_window_s:
                raise ScenarioError(f"the reading of meter {reading.meter} at {reading.at} is past its deadline "
                                    f"(block time {now})")
        for relayer, batch in _by_relayer(readings):
            described = ", ".join(f"{r.meter}@{r.at}" for r in batch[:3]) + (" ..." if len(batch) > 3 else "")
            labelled.append((f"readings {described} (relayed by {relayer})", self._sign(relayer, SubmitReadings(
                readings=tuple(self._signed_reading(r) for r in batch)))))
        outcomes = self.transport.submit([raw for _, raw in labelled])
        for (label, _), outcome in zip(labelled, outcomes, strict=True):
            if outcome.code != 0:
                stage = "refused at CheckTx" if outcome.height == 0 else f"rejected at height {outcome.height}"
                raise TxFailed(f"{label}: {stage}, code {outcome.code}: {outcome.log}")
        heights = sorted({o.height for o in outcomes})
        self.log(f"block time {now}: {len(orders)} orders and {len(readings)} readings committed "
                 f"(heights {heights[0]}..{heights[-1]})")

    def _signed_reading(self, reading: _PendingReading) -> Any:
        imported, exported = self._registers[reading.meter]
        registers = (imported + reading.flow[0], exported + reading.flow[1])
        self._registers[reading.meter] = registers
        self._read_at[reading.meter] = reading.at
        unsigned = UnsignedReading(reading.meter, reading.at, registers[0], registers[1], reading.meter_key)
        return sign_reading(self.facts.chain_id, unsigned, self.keys.meters[reading.meter_key])

    def _sign(self, name: str, msg: Msg) -> bytes:
        key = self._account_key(name)
        if name not in self._nonces:
            self._nonces[name] = self.transport.query(f"/next_nonce/{key.account}")["next_nonce"]
        nonce = self._nonces[name]
        self._nonces[name] = nonce + 1
        return encode_tx(self.facts.chain_id, msg, key, nonce)

    def _account_key(self, name: str) -> SigningKey:
        if name not in self.keys.accounts:
            raise ScenarioError(f"no key {name!r} was unlocked for the scenario")
        return self.keys.accounts[name]

    # -- settlement and summary ------------------------------------------------------------
    def _report_idle_meters(self, before: int | None = None) -> None:
        """The scenario's meters report zero flow at the last slot end reached (before ``before``, if given).

        Outside the scenario's slots its meters are idle, and an idle meter still reports: a slot whose
        deadline passes without a reading is billed its substitute, the meter's full import capacity
        (docs/settlement.md). A meter silent for longer than the settlement window is refused (code 83)
        until the settlement has substituted its overdue slots; that takes a block or two, so the readings
        are sent again then.
        """
        length = self.facts.slot_length_s
        for attempt in range(IDLE_RETRIES + 1):
            now = self.transport.block_time()
            at = now // length * length
            if before is not None:
                at = min(at, before - length)
            idle = [_PendingReading(at, meter, first.meter_key, self.relayer or first.participant, (0, 0), 0)
                    for meter, first in self.scenario.meters.items() if self._read_at[meter] < at]
            if not idle:
                return
            registers, read_at = dict(self._registers), dict(self._read_at)
            batches = list(_by_relayer(idle))
            outcomes = self.transport.submit([self._sign(relayer, SubmitReadings(
                readings=tuple(self._signed_reading(r) for r in batch))) for relayer, batch in batches])
            refused = [(relayer, batch, o) for (relayer, batch), o in zip(batches, outcomes, strict=True) if o.code]
            if not refused:
                self.log(f"block time {now}: {len(idle)} idle meter(s) reported zero flow up to {at}")
                return
            for _, batch, _ in refused:  # nothing of a refused transaction counts; the accepted ones stand
                for reading in batch:
                    self._registers[reading.meter] = registers[reading.meter]
                    self._read_at[reading.meter] = read_at[reading.meter]
            self._nonces.clear()  # a refused (CheckTx) or failed transaction may or may not have used its nonce
            relayer, _, outcome = refused[0]
            # Worth another block: overdue slots not yet substituted (83), or a nonce another client of the
            # relayer's key used meanwhile (12; the nonces are read again from the chain).
            if outcome.code not in (errors.ReadingTooLate.code, errors.StaleNonce.code) or attempt == IDLE_RETRIES:
                raise TxFailed(f"idle readings relayed by {relayer}, code {outcome.code}: {outcome.log}")
            self.log(f"idle readings refused ({outcome.log}); trying again next block")
            self.transport.wait_block_time(now + 1)

    def _await_due_settlements(self) -> None:
        """Wait until every slot already past its deadline is settled: none of them may move a balance after
        the starting balances are read (substitutes billed for a silent meter settle over a block or more)."""
        length = self.facts.slot_length_s
        for _ in range(IDLE_RETRIES):
            now = self.transport.block_time()
            # The latest slot whose deadline has passed: it settles once the block time exceeds its deadline.
            due = (now - length - self._settlement_window() - 1) // length * length
            if self._first_registered is None or due < self._first_registered // length * length:
                return
            answer = self.transport.query(f"/settlement/{due}", optional=True)
            if answer is not None and answer["complete"]:
                return
            self.transport.wait_block_time(now + 1)
        self.log("earlier slots are still settling; the balances before the scenario may change meanwhile")

    def _await_settlement(self, last_slot: int) -> None:
        """Wait until the last slot is settled (slots settle oldest first, so all earlier ones are too).

        The meters keep reporting zero flow meanwhile, so that the slots after the scenario cost nothing
        by the time the balances are read.
        """
        self.log(f"waiting for the settlement of slot {last_slot}")
        while True:
            self._report_idle_meters()
            # Re-read the window each step: governance may move the deadline while we wait.
            deadline = last_slot + self.facts.slot_length_s + self._settlement_window()
            now = self.transport.block_time()
            if now > deadline:
                answer = self.transport.query(f"/settlement/{last_slot}", optional=True)
                if answer is not None and answer["complete"]:
                    self._report_idle_meters()
                    return
                # A large slot settles over several blocks.
                self.transport.wait_block_time(now + 1)
                continue
            step = min(self.recheck_s, self.facts.slot_length_s)
            self.transport.wait_block_time(min(deadline + 1, now + step))

    def _settlement_window(self) -> int:
        window: int = self.transport.query("/params")["settlement_window_s"]
        return window

    def _summary(self, accounts: Mapping[str, str], before: Mapping[str, int], start: int,
                 end: int) -> list[dict[str, Any]]:
        rows = []
        for name, account_id in accounts.items():
            account = self.transport.query(f"/account/{account_id}")
            reports = [r for r in self.transport.query(f"/settlements/{account_id}")["reports"]
                       if start <= r["slot"] < end]
            row: dict[str, Any] = {
                "participant": name, "account": account_id, "balance_before": before[name],
                "balance": account["balance"], "change": account["balance"] - before[name], "free": account["free"],
                "locked": account["locked"], "debt": account["debt"], "slots_settled": len(reports),
            }
            for total, key in (("bought_wh", "bought_wh"), ("sold_wh", "sold_wh"), ("imported_wh", "imported_wh"),
                               ("exported_wh", "exported_wh"), ("fees_paid", "fees_paid"),
                               ("balancing_charges", "balancing_charge"), ("supply_charges", "supply_charge"),
                               ("network_charges", "network_charge"), ("credits", "credit_paid"),
                               ("credits_owed", "credit_owed")):
                row[total] = sum(r[key] for r in reports)
            for name_ in MONEY_FIELDS:
                row[f"{name_}_fmt"] = self.facts.money(row[name_])
            rows.append(row)
        return rows


def _by_relayer(readings: Sequence[_PendingReading]) -> Iterator[tuple[str, list[_PendingReading]]]:
    """Readings grouped per relayer (time order kept), at most MAX_READINGS per transaction."""
    relayers = sorted({r.relayer for r in readings})
    for relayer in relayers:
        mine = [r for r in readings if r.relayer == relayer]
        for first in range(0, len(mine), MAX_READINGS):
            yield relayer, mine[first:first + MAX_READINGS]


# -- keys -------------------------------------------------------------------------------------
def key_names(scenario: Scenario, relayer: str | None) -> tuple[list[str], list[str]]:
    """Keyring names to unlock: (accounts: participants and the relayer, meters)."""
    accounts = sorted(set(scenario.participants) | ({relayer} if relayer else set()))
    return accounts, sorted({row.meter_key for row in scenario.meters.values()})

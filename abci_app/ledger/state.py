"""The ledger state: typed records and accessors with verb names over a KV overlay.

Key layout (all keys are ASCII prefixes followed by ids; documented in docs/state.md):

    acct/<account id>                 Account
    op/<account id>                   Operator
    zone/<zone>/<account id>          b""  (participants of a zone)
    meter/<meter id>                  Meter
    meterkey/<meter pubkey hex>       meter id  (meter keys are unique)
    owns/<account id>/<meter id>      b""  (meters of a participant)
    params                            Params
    supply                            Supply (money issued by deposits minus withdrawals)
    gov/next                          next proposal id
    gov/prop/<id:be64>                Proposal
    gov/vote/<id:be64>/<account id>   Vote
    gov/open/<expiry:be64>/<id:be64>  b""  (open proposals by expiry time)
    valupd/<consensus pubkey hex>     be64 power (validator updates of the block being built)
    jrnl/<account id>/<time:be64>/<seq:be64>  JournalEntry (statement lines); jrnl/next counter
    rd/..., stl/...                   meter readings and settlement (abci_app/ledger/modules/settlement.py)
    mkt/..., fee/...                  the market (abci_app/ledger/modules/market/book.py)
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import ClassVar

from msgspec.structs import replace

from abci_app.ledger import codec, errors
from abci_app.ledger.store import Overlay, prefix_end
from abci_app.ledger.wire import I64, Record

PARTICIPANT_ROLES = ("consumer", "prosumer", "producer")
OPERATOR_ROLES = ("dso", "lpd")


class Account(Record, frozen=True):
    """A registered identity that can sign transactions and hold money."""

    id: str
    """Pseudonymous account id (hex of SHA-256(pubkey)[:20])."""
    pubkey: bytes
    """Ed25519 public key that signs this account's transactions."""
    role: str
    """consumer | prosumer | producer | dso | lpd."""
    zone: str
    """Grid zone of a participant; empty for operators."""
    dso: str
    """Account id of the DSO that registered this participant; empty for operators."""
    active: bool
    """Deactivated accounts may only withdraw their free balance."""
    balance: I64
    """Money held, in the currency's smallest unit (includes locked money)."""
    locked: I64
    """Part of ``balance`` held for open obligations; never above ``balance``."""
    debt: I64
    """Unpaid settlement charges (always 0 until settlement lands)."""
    nonce: I64
    """Nonce of the last authenticated transaction (0 before the first)."""
    registered_at: I64
    """Block time (unix seconds) of registration; 0 for genesis accounts."""

    @property
    def free(self) -> int:
        return self.balance - self.locked

    @property
    def is_operator(self) -> bool:
        return self.role in OPERATOR_ROLES


class Operator(Record, frozen=True):
    """A grid operator that runs a validator and votes in governance."""

    account: str
    """The operator's account id."""
    name: str
    """Human-readable operator name, unique."""
    role: str
    """dso | lpd."""
    zones: tuple[str, ...]
    """Grid zones a DSO serves (sorted); empty for an LPD."""
    power: I64
    """Governance voting power; for a validator also its consensus voting power."""
    consensus_pubkey: bytes
    """Ed25519 consensus key of the operator's validator node; empty if it runs none."""

    @property
    def is_validator(self) -> bool:
        return bool(self.consensus_pubkey) and self.power > 0


class Meter(Record, frozen=True):
    """A smart meter with its own signing key, registered by a DSO to a participant."""

    id: str
    """Meter id chosen by the DSO (e.g. its serial number)."""
    pubkey: bytes
    """Ed25519 key the meter signs its readings with."""
    owner: str
    """Account id of the participant the meter belongs to."""
    dso: str
    """Account id of the registering DSO."""
    import_capacity_w: I64
    """Largest power the connection can draw from the grid, in W."""
    export_capacity_w: I64
    """Largest power the connection can feed into the grid, in W."""
    import_register_wh: I64
    """Cumulative import register (OBIS 1.8.0) at registration, in Wh."""
    export_register_wh: I64
    """Cumulative export register (OBIS 2.8.0) at registration, in Wh."""
    active: bool
    """Deactivated meters are ignored."""
    registered_at: I64
    """Block time (unix seconds) of registration."""


class Params(Record, frozen=True):
    """Chain parameters, changed only by governance (``propose_params``)."""

    currency: str = "EUR"
    """Settlement currency symbol (fixed at genesis)."""
    currency_exponent: I64 = 6
    """Decimal places of the smallest unit: 6 means micro-euro (fixed at genesis)."""
    max_tx_bytes: I64 = 65_536
    """Largest transaction accepted, in bytes."""
    voting_period_s: I64 = 86_400
    """How long a governance proposal stays open, in seconds of block time."""
    max_meters_per_participant: I64 = 16
    """Cap on registered meters of one participant."""
    # -- market (docs/market.md) --
    slot_length_s: I64 = 900
    """Length of a delivery slot in seconds; slots start at multiples of it (fixed at genesis)."""
    gate_closure_lead_s: I64 = 300
    """A slot's book closes this many seconds before the slot starts."""
    max_slot_ahead_s: I64 = 172_800
    """Orders may name slots starting at most this far after the block time."""
    tick_size: I64 = 100
    """Limit prices are multiples of this (money per kWh; 100 = 0.01 ct/kWh at exponent 6)."""
    min_quantity_wh: I64 = 100
    """Smallest order quantity in Wh."""
    max_price_per_kwh: I64 = 10_000_000
    """Highest limit price (money per kWh; 10 EUR/kWh at exponent 6)."""
    max_open_orders: I64 = 200
    """Open orders one account may hold at a time."""
    collateral_per_kwh: I64 = 20_000
    """Stability collateral both sides lock per kWh traded, until the slot is settled."""
    matching_mode: I64 = 0
    """0: continuous double auction (pay-as-bid); 1: uniform-price call auction per zone at gate closure."""
    # -- settlement (docs/settlement.md) --
    settlement_window_s: I64 = 3_600
    """Meter readings for a slot are accepted until slot end plus this; the slot settles after it."""
    balancing_buy_price: I64 = 600_000
    """Price per kWh a party pays the LPD for a shortfall (delivered or absorbed less than contracted)."""
    balancing_sell_price: I64 = 50_000
    """Price per kWh the LPD pays a party for a surplus."""
    settlement_batch: I64 = 200
    """Participants settled per block at most; a larger slot settles over several blocks."""

    # Parameters fixed at genesis: changing them later would reinterpret stored amounts and slots.
    IMMUTABLE: ClassVar[tuple[str, ...]] = ("currency", "currency_exponent", "slot_length_s")
    # Inclusive bounds for every changeable parameter.
    BOUNDS: ClassVar[dict[str, tuple[int, int]]] = {
        "max_tx_bytes": (256, 1 << 20),
        "voting_period_s": (60, 365 * 86_400),
        "max_meters_per_participant": (1, 1_000),
        "gate_closure_lead_s": (0, 86_400),
        "max_slot_ahead_s": (3_600, 31 * 86_400),
        "tick_size": (1, 1_000_000_000),
        "min_quantity_wh": (1, 1_000_000_000),
        "max_price_per_kwh": (1, 1_000_000_000_000),
        "max_open_orders": (1, 10_000),
        "collateral_per_kwh": (0, 1_000_000_000_000),
        "matching_mode": (0, 1),
        "settlement_window_s": (60, 7 * 86_400),
        "balancing_buy_price": (0, 1_000_000_000_000),
        "balancing_sell_price": (0, 1_000_000_000_000),
        "settlement_batch": (1, 100_000),
    }
    # Slot lengths a chain may choose at genesis: whole minutes that divide a day.
    SLOT_LENGTHS: ClassVar[tuple[int, ...]] = tuple(s for s in range(300, 86_401, 60) if 86_400 % s == 0)


class Supply(Record, frozen=True):
    """Money in circulation: everything deposited minus everything withdrawn."""

    total: I64


class ParamChange(Record, frozen=True):
    name: str
    """Parameter name, as in ``Params``."""
    value: I64
    """New value (all changeable parameters are integers)."""


class ValidatorChange(Record, frozen=True):
    """A change to the validator set, as proposed by an operator."""

    action: str
    """add | remove | power."""
    name: str
    """Operator name: the new operator (add) or an existing validator (remove, power)."""
    role: str
    """add: dso | lpd; otherwise empty."""
    account_pubkey: bytes
    """add: the new operator's Ed25519 account key; otherwise empty."""
    consensus_pubkey: bytes
    """add: the validator node's Ed25519 consensus key; otherwise empty."""
    zones: tuple[str, ...]
    """add: the zones a new DSO serves (sorted); otherwise empty."""
    power: I64
    """add, power: the voting power; remove: 0."""


class Proposal(Record, frozen=True):
    """A governance proposal and its running tally."""

    id: I64
    proposer: str
    kind: str
    """``params`` or ``validator``."""
    changes: tuple[ParamChange, ...]
    """kind params: the parameter changes."""
    validator_change: tuple[ValidatorChange, ...]
    """kind validator: exactly one change."""
    description: str
    submitted_at: I64
    expires_at: I64
    yes_power: I64
    no_power: I64
    status: str
    """open | passed | rejected | expired | failed (passed, but no longer applicable)."""


class JournalEntry(Record, frozen=True):
    """One line of an account's statement."""

    seq: I64
    time: I64
    height: I64
    kind: str
    """deposit | withdraw | transfer_in | transfer_out | energy_bought | energy_sold | grid_fee | grid_fee_income |
    balancing_charge | balancing_credit | debt_repaid | debt_received."""
    amount: I64
    """Signed: positive credits the account, negative debits it."""
    reference: str
    """Trade id, slot, counterparty or payment reference."""


class Vote(Record, frozen=True):
    approve: bool
    power: I64


def be64(value: int) -> bytes:
    """Big-endian unsigned 64-bit: integers in keys sort in numeric order."""
    return struct.pack(">Q", value)


def unbe64(raw: bytes) -> int:
    return int(struct.unpack(">Q", raw)[0])


class State:
    """Typed access to the ledger state held in an overlay."""

    def __init__(self, kv: Overlay) -> None:
        self.kv = kv

    # -- generic -----------------------------------------------------------
    def _scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self.kv.iterate(prefix, prefix_end(prefix))

    # -- accounts ------------------------------------------------------------
    def get_account(self, account_id: str) -> Account | None:
        raw = self.kv.get(b"acct/" + account_id.encode())
        return Account.decode(raw) if raw is not None else None

    def require_account(self, account_id: str) -> Account:
        account = self.get_account(account_id)
        if account is None:
            raise errors.UnknownAccount(f"account {account_id} does not exist")
        return account

    def put_account(self, account: Account) -> None:
        self.kv.set(b"acct/" + account.id.encode(), account.encode())

    def add_account(self, account: Account) -> None:
        """Store a new account and index a participant by its zone."""
        self.put_account(account)
        if not account.is_operator:
            self.kv.set(f"zone/{account.zone}/{account.id}".encode(), b"")

    def credit(self, account_id: str, amount: int) -> Account:
        """Add ``amount`` to a balance."""
        account = self.require_account(account_id)
        # Rule: balances stay within the signed 64-bit range every client can represent.
        if account.balance + amount > codec.MAX_INT:
            raise errors.ValueOutOfRange(f"balance of {account_id} would exceed {codec.MAX_INT}")
        account = replace(account, balance=account.balance + amount)
        self.put_account(account)
        return account

    def debit(self, account_id: str, amount: int) -> Account:
        """Take ``amount`` from the free balance."""
        account = self.require_account(account_id)
        # Rule: only free money (balance minus locks) can leave an account.
        if account.free < amount:
            raise errors.InsufficientFunds(
                f"account {account_id} has {account.free} free, {amount} needed"
            )
        account = replace(account, balance=account.balance - amount)
        self.put_account(account)
        return account

    def lock(self, account_id: str, amount: int) -> Account:
        """Hold ``amount`` of the free balance for an obligation."""
        account = self.require_account(account_id)
        # Rule: nothing is locked that is not free.
        if account.free < amount:
            raise errors.InsufficientFunds(
                f"account {account_id} has {account.free} free, {amount} needed"
            )
        account = replace(account, locked=account.locked + amount)
        self.put_account(account)
        return account

    def unlock(self, account_id: str, amount: int) -> Account:
        """Release ``amount`` of locked money back to the free balance."""
        account = self.require_account(account_id)
        assert 0 <= amount <= account.locked, f"unlock {amount} of {account.locked} locked for {account_id}"
        account = replace(account, locked=account.locked - amount)
        self.put_account(account)
        return account

    def set_nonce(self, account_id: str, nonce: int) -> None:
        account = self.require_account(account_id)
        self.put_account(replace(account, nonce=nonce))

    def iter_accounts(self) -> Iterator[Account]:
        for _, raw in self._scan(b"acct/"):
            yield Account.decode(raw)

    def participants_in_zone(self, zone: str) -> list[str]:
        prefix = f"zone/{zone}/".encode()
        return [key[len(prefix) :].decode() for key, _ in self._scan(prefix)]

    # -- operators -------------------------------------------------------------
    def get_operator(self, account_id: str) -> Operator | None:
        raw = self.kv.get(b"op/" + account_id.encode())
        return Operator.decode(raw) if raw is not None else None

    def put_operator(self, operator: Operator) -> None:
        self.kv.set(b"op/" + operator.account.encode(), operator.encode())

    def iter_operators(self) -> Iterator[Operator]:
        for _, raw in self._scan(b"op/"):
            yield Operator.decode(raw)

    def total_operator_power(self) -> int:
        return sum(op.power for op in self.iter_operators())

    def zone_dsos(self) -> dict[str, str]:
        """Every served zone and the account id of its DSO."""
        return {zone: op.account for op in self.iter_operators() for zone in op.zones}

    # -- meters ----------------------------------------------------------------
    def get_meter(self, meter_id: str) -> Meter | None:
        raw = self.kv.get(b"meter/" + meter_id.encode())
        return Meter.decode(raw) if raw is not None else None

    def meter_key_taken(self, pubkey: bytes) -> bool:
        return self.kv.get(b"meterkey/" + pubkey.hex().encode()) is not None

    def put_meter(self, meter: Meter) -> None:
        self.kv.set(b"meter/" + meter.id.encode(), meter.encode())

    def add_meter(self, meter: Meter) -> None:
        self.put_meter(meter)
        self.kv.set(b"meterkey/" + meter.pubkey.hex().encode(), meter.id.encode())
        self.kv.set(f"owns/{meter.owner}/{meter.id}".encode(), b"")

    def meters_of(self, account_id: str) -> list[str]:
        prefix = f"owns/{account_id}/".encode()
        return [key[len(prefix) :].decode() for key, _ in self._scan(prefix)]

    # -- params and supply -------------------------------------------------------
    def get_params(self) -> Params:
        raw = self.kv.get(b"params")
        return Params.decode(raw) if raw is not None else Params()

    def put_params(self, params: Params) -> None:
        self.kv.set(b"params", params.encode())

    def get_supply(self) -> int:
        raw = self.kv.get(b"supply")
        return Supply.decode(raw).total if raw is not None else 0

    def change_supply(self, delta: int) -> None:
        total = self.get_supply() + delta
        # Rule: the money supply stays within the signed 64-bit range.
        if total > codec.MAX_INT:
            raise errors.ValueOutOfRange(f"money supply would exceed {codec.MAX_INT}")
        self.kv.set(b"supply", Supply(total).encode())

    # -- governance ----------------------------------------------------------------
    def next_proposal_id(self) -> int:
        raw = self.kv.get(b"gov/next")
        next_id = struct.unpack(">Q", raw)[0] if raw is not None else 1
        self.kv.set(b"gov/next", be64(next_id + 1))
        return int(next_id)

    def get_proposal(self, proposal_id: int) -> Proposal | None:
        raw = self.kv.get(b"gov/prop/" + be64(proposal_id))
        return Proposal.decode(raw) if raw is not None else None

    def put_proposal(self, proposal: Proposal) -> None:
        self.kv.set(b"gov/prop/" + be64(proposal.id), proposal.encode())
        open_key = b"gov/open/" + be64(proposal.expires_at) + b"/" + be64(proposal.id)
        if proposal.status == "open":
            self.kv.set(open_key, b"")
        else:
            self.kv.delete(open_key)

    def iter_proposals(self) -> Iterator[Proposal]:
        for _, raw in self._scan(b"gov/prop/"):
            yield Proposal.decode(raw)

    def open_proposals_expired_by(self, time: int) -> list[int]:
        """Ids of open proposals whose voting period ended at or before ``time``, oldest first."""
        ids = []
        for key, _ in self.kv.iterate(b"gov/open/", b"gov/open/" + be64(time + 1)):
            ids.append(struct.unpack(">Q", key[-8:])[0])
        return ids

    # -- journal: every money movement of an account, for statements ----------------------
    def journal(self, account_id: str, time: int, height: int, kind: str, amount: int, reference: str) -> None:
        """Append a statement line (``amount`` signed: + credit, - debit) for ``account_id``."""
        seq_raw = self.kv.get(b"jrnl/next")
        seq = struct.unpack(">Q", seq_raw)[0] if seq_raw is not None else 1
        self.kv.set(b"jrnl/next", be64(seq + 1))
        entry = JournalEntry(seq=seq, time=time, height=height, kind=kind, amount=amount, reference=reference)
        self.kv.set(b"jrnl/" + account_id.encode() + b"/" + be64(time) + b"/" + be64(seq), entry.encode())

    def journal_between(self, account_id: str, start: int, end: int, limit: int) -> list[JournalEntry]:
        """Statement lines with ``start <= time < end``, oldest first, at most ``limit``."""
        prefix = b"jrnl/" + account_id.encode() + b"/"
        out = []
        for _, raw in self.kv.iterate(prefix + be64(start), prefix + be64(end)):
            out.append(JournalEntry.decode(raw))
            if len(out) == limit:
                break
        return out

    def get_operator_by_name(self, name: str) -> Operator | None:
        return next((op for op in self.iter_operators() if op.name == name), None)

    def total_validator_power(self) -> int:
        return sum(op.power for op in self.iter_operators() if op.is_validator)

    def queue_validator_update(self, pubkey: bytes, power: int) -> None:
        """Record a validator-set change for this block's FinalizeBlock response."""
        self.kv.set(b"valupd/" + pubkey.hex().encode(), be64(power))

    def take_validator_updates(self) -> list[tuple[bytes, int]]:
        """This block's queued validator-set changes, by key; the queue is emptied."""
        found = [(bytes.fromhex(key[len(b"valupd/"):].decode()), int(struct.unpack(">Q", raw)[0]))
                 for key, raw in self._scan(b"valupd/")]
        for pubkey, _ in found:
            self.kv.delete(b"valupd/" + pubkey.hex().encode())
        return found

    def get_vote(self, proposal_id: int, voter: str) -> Vote | None:
        raw = self.kv.get(b"gov/vote/" + be64(proposal_id) + b"/" + voter.encode())
        return Vote.decode(raw) if raw is not None else None

    def put_vote(self, proposal_id: int, voter: str, vote: Vote) -> None:
        self.kv.set(b"gov/vote/" + be64(proposal_id) + b"/" + voter.encode(), vote.encode())

"""Transaction fuzzer with an oracle written against the ABCI interface only.

    python -m tests.fuzz_ledger --seed 15 --count 2500     (prints one JSON report)

Two ledger applications (A and its twin B), each behind its own ``AbciServer``
on a loopback socket, start from the market harness's genesis. For every fuzzed
transaction, in a block of its own at the same height and time on both:

* A gets CheckTx, PrepareProposal, ProcessProposal, FinalizeBlock and Commit
  for it; none may answer with an ABCI ``Exception`` (nothing escapes) and
  FinalizeBlock returns exactly one result;
* if A accepted it, B gets the same block and must return the same result;
  if A rejected it, B gets an empty block, or, when the rejection spent the
  signer's nonce (as A's ``/account`` query shows), a block with a "burn"
  transaction (a withdrawal far above any balance, rejected with that nonce);
  then A and B must have the same app hash: the rejected transaction changed
  nothing but its nonce (and left no events).

Transactions start from valid signed messages of every type (built with the
harnesses in tests/) and are mutated at every layer: body fields (boundary
integers, wrong types, extra or missing fields), the envelope (chain id,
nonce, version, type, signer, signature) and raw bytes. Everything derives
from ``--seed`` and the answers of A, so the same seed gives the same sequence
and, on a deterministic ledger, the same app hashes under any PYTHONHASHSEED.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import random
import sys
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack

from abci_app.app import LedgerApplication
from abci_app.ledger.crypto import SigningKey
from abci_app.ledger.modules.bank import Deposit, Transfer, Withdraw
from abci_app.ledger.modules.gov import CastVote, ProposeParams, ProposeValidator
from abci_app.ledger.modules.gov.records import ParamChange, ValidatorChange
from abci_app.ledger.modules.market.msgs import CancelOrder, FeeEntry, SetGridFees
from abci_app.ledger.modules.registry import Deactivate, RegisterMeter, RegisterParticipant
from abci_app.ledger.modules.settlement import SubmitReadings
from abci_app.ledger.msg import Msg
from abci_app.ledger.store import MemoryBackend
from abci_app.pb.tendermint.abci import types_pb2 as abci
from tests.abci_client import AbciClient
from tests.harness import CHAIN_ID, GENESIS_TIME, ZONE_A, ZONE_B, seeded_key
from tests.market_harness import acceptance, market_app_state, offer, order
from tests.server_thread import ServerThread
from tests.settlement_harness import reading

# The envelope of docs/transactions.md: [version, chain_id, type, body, signer, nonce, signature],
# signed over ["gridledger/tx", version, chain_id, type, body, signer, nonce].
TX_VERSION = 1
SIGN_DOMAIN = "gridledger/tx"
SLOT_S = 900
GATE_LEAD_S = 300
PARTICIPANTS = ("alice", "bob", "carol", "dave", "erin")
ASKERS = ("alice", "carol", "erin")
BIDDERS = ("alice", "bob", "dave", "erin")
DSOS = {"dso": ZONE_A, "dso_b": ZONE_B}
LPDS = ("lpd", "lpd_b")
OPERATOR_NAMES = ("dso-a", "dso-b", "lpd-a", "lpd-b")
NEWCOMERS = ("p0", "p1", "p2", "p3")
MAX_INT = 2**63 - 1
INTERESTING: tuple[Any, ...] = (
    0, 1, -1, 2, 99, 100, 255, 256, 2**31, 2**32, 2**53 + 1, 2**62, MAX_INT, -MAX_INT - 1, 2**63, 2**64 - 1,
    "", "a", "x" * 257, "é", "zone-a", "zone-b", "m-alice", "ask", "bid", "solar", "\x00", "a/b", " ",
    b"", b"\x00" * 32, b"\xff" * 64, bytes(range(33)), True, False, None, [], [[]], [0, 0],
)


class ErrorLog(logging.Handler):
    """Counts the application's logged failures (an exception the server or the app caught), by kind."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: Counter[str] = Counter()
        self.examples: dict[str, str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        key = f"{record.getMessage()}: {type(exc).__name__ if exc else 'no exception'}"
        self.seen[key] += 1
        if key not in self.examples and record.exc_info:
            self.examples[key] = "".join(traceback.format_exception(*record.exc_info))[-1500:]


class Escaped(Exception):
    """An ABCI call answered with an Exception: something escaped the application."""


class SocketApp:
    """One LedgerApplication behind an AbciServer on loopback, driven through a socket."""

    def __init__(self) -> None:
        self.server = ServerThread(LedgerApplication(MemoryBackend())).__enter__()
        self.client = AbciClient("127.0.0.1", self.server.port, timeout=60)

    def close(self) -> None:
        self.client.close()
        self.server.__exit__()

    def call(self, **request: Any) -> Any:
        [kind] = request
        response = self.client.request(abci.Request(**request))
        if response.WhichOneof("value") != kind:
            raise Escaped(f"{kind}: {response.exception.error or response.WhichOneof('value')}")
        return getattr(response, kind)

    def init_chain(self, app_state: dict[str, Any]) -> bytes:
        request = abci.RequestInitChain(chain_id=CHAIN_ID, app_state_bytes=json.dumps(app_state).encode(),
                                        initial_height=1)
        request.time.seconds = GENESIS_TIME
        app_hash: bytes = self.call(init_chain=request).app_hash
        return app_hash

    def block(self, txs: list[bytes], height: int, time: int) -> Any:
        request = abci.RequestFinalizeBlock(txs=txs, height=height)
        request.time.seconds = time
        response = self.call(finalize_block=request)
        self.call(commit=abci.RequestCommit())
        return response

    def proposal(self, txs: list[bytes], height: int, time: int) -> tuple[int, bool]:
        """(how many txs PrepareProposal keeps, whether ProcessProposal accepts the block)."""
        prepare = abci.RequestPrepareProposal(txs=txs, height=height, max_tx_bytes=1 << 20)
        prepare.time.seconds = time
        kept = len(self.call(prepare_proposal=prepare).txs)
        process = abci.RequestProcessProposal(txs=txs, height=height)
        process.time.seconds = time
        status = self.call(process_proposal=process).status
        return kept, status == abci.ResponseProcessProposal.ACCEPT

    def query(self, path: str) -> Any:
        answer = self.call(query=abci.RequestQuery(path=path))
        return json.loads(answer.value) if answer.code == 0 else None

    def nonce(self, account: str) -> int | None:
        found = self.query(f"/account/{account}")
        return None if found is None else int(found["nonce"])


@dataclass
class KeyRing:
    """Every key the fuzzer signs with, by name (the harness's seeded keys)."""

    keys: dict[str, SigningKey] = field(default_factory=dict)
    chain_id: str = CHAIN_ID

    def __post_init__(self) -> None:
        for name in ("dso", "dso_b", "lpd", "lpd_b", *PARTICIPANTS, *NEWCOMERS, "ghost"):
            self.keys[name] = seeded_key(name)

    def id(self, name: str) -> str:
        return self.keys[name].account


def sign_raw(chain_id: str, tx_type: str, body: Any, key: SigningKey, nonce: int, version: int = TX_VERSION,
             signer: bytes | None = None) -> bytes:
    """The envelope bytes. msgpack writes what the canonical codec refuses (e.g. integers >= 2**63) too."""
    pubkey = key.pubkey if signer is None else signer
    message = msgpack.packb([SIGN_DOMAIN, version, chain_id, tx_type, body, pubkey, nonce], use_bin_type=True)
    envelope = [version, chain_id, tx_type, body, pubkey, nonce, key.sign(message)]
    packed: bytes = msgpack.packb(envelope, use_bin_type=True)
    return packed


@dataclass
class Context:
    """What the generator knows, all learnt from A's answers."""

    rng: random.Random
    ring: KeyRing
    time: int
    order_ids: dict[str, list[int]] = field(default_factory=dict)
    proposal_ids: list[int] = field(default_factory=list)
    meters: list[str] = field(default_factory=lambda: ["m-alice", "m-bob", "m-carol", "m-dave", "m-erin"])
    registers: dict[str, tuple[int, int]] = field(default_factory=dict)
    counter: int = 0

    def future_slot(self) -> int:
        """A slot whose gate is still open at the next block's time."""
        first = (self.time + GATE_LEAD_S) // SLOT_S + 1
        return (first + self.rng.randrange(0, 6)) * SLOT_S

    def amount(self) -> int:
        return self.rng.choice([1, 10, 1_000, 250_000, 5_000_000, 10**9])


# -- valid messages of every type: (signer, message) -----------------------------------------------------------


def _transfer(c: Context) -> tuple[str, Msg]:
    sender, recipient = c.rng.sample(PARTICIPANTS, 2)
    return sender, Transfer(recipient=c.ring.id(recipient), amount=c.amount(), memo=c.rng.choice(["", "fz"]))


def _deposit(c: Context) -> tuple[str, Msg]:
    return c.rng.choice(LPDS), Deposit(account=c.ring.id(c.rng.choice(PARTICIPANTS)), amount=c.amount(),
                                       reference="fz")


def _withdraw(c: Context) -> tuple[str, Msg]:
    return c.rng.choice(PARTICIPANTS), Withdraw(amount=c.amount(), agent=c.ring.id(c.rng.choice(LPDS)), reference="")


def _register_participant(c: Context) -> tuple[str, Msg]:
    dso = c.rng.choice(sorted(DSOS))
    return dso, RegisterParticipant(pubkey=c.ring.keys[c.rng.choice(NEWCOMERS)].pubkey,
                                    role=c.rng.choice(["consumer", "prosumer", "producer"]), zone=DSOS[dso])


def _register_meter(c: Context) -> tuple[str, Msg]:
    c.counter += 1
    meter_id = f"m-fz{c.counter}"
    c.meters.append(meter_id)
    owner = c.rng.choice(["alice", "bob", "erin"])
    return "dso", RegisterMeter(meter_id=meter_id, pubkey=seeded_key(f"fz-meter-{c.counter}").pubkey,
                                owner=c.ring.id(owner), import_capacity_w=c.rng.choice([0, 11_000]),
                                export_capacity_w=c.rng.choice([0, 8_000]), import_register_wh=0,
                                export_register_wh=0)


def _deactivate(c: Context) -> tuple[str, Msg]:
    if c.rng.random() < 0.5:
        return "dso", Deactivate(kind="meter", target=c.rng.choice(c.meters))
    return c.rng.choice(sorted(DSOS)), Deactivate(kind="participant", target=c.ring.id(c.rng.choice(NEWCOMERS)))


def _propose_params(c: Context) -> tuple[str, Msg]:
    change = c.rng.choice([("max_meters_per_participant", c.rng.randrange(1, 17)),
                           ("voting_period_s", c.rng.choice([60, 3_600, 86_400])),
                           ("max_tx_bytes", c.rng.choice([1_024, 4_096, 65_536]))])
    return c.rng.choice([*DSOS, *LPDS]), ProposeParams(changes=(ParamChange(*change),), description="fz")


def _propose_validator(c: Context) -> tuple[str, Msg]:
    change = ValidatorChange(action="power", name=c.rng.choice(OPERATOR_NAMES), role="", account_pubkey=b"",
                             consensus_pubkey=b"", zones=(), power=c.rng.randrange(1, 20))
    return c.rng.choice([*DSOS, *LPDS]), ProposeValidator(change=change, description="")


def _vote(c: Context) -> tuple[str, Msg]:
    proposal = c.rng.choice(c.proposal_ids) if c.proposal_ids else 1
    return c.rng.choice([*DSOS, *LPDS]), CastVote(proposal_id=proposal, approve=c.rng.random() < 0.7)


def _place_order(c: Context) -> tuple[str, Msg]:
    side = c.rng.choice(["ask", "bid"])
    who = c.rng.choice(ASKERS if side == "ask" else BIDDERS)
    slot = c.future_slot()
    return who, order(side, 100 * c.rng.randrange(1, 20), 100 * c.rng.randrange(1_500, 3_500), slot=slot,
                      valid_until=slot - GATE_LEAD_S, tif=c.rng.choice(["limit", "limit", "ioc", "fok", "post_only"]))


def _cancel_order(c: Context) -> tuple[str, Msg]:
    who = c.rng.choice(PARTICIPANTS)
    own = c.order_ids.get(who) or [1]
    return who, CancelOrder(order_id=c.rng.choice(own))


def _set_grid_fees(c: Context) -> tuple[str, Msg]:
    dso = c.rng.choice(sorted(DSOS))
    entry = FeeEntry(from_zone=DSOS[dso], to_zone=c.rng.choice([ZONE_A, ZONE_B]),
                     fee_per_kwh=c.rng.randrange(0, 40_000))
    return dso, SetGridFees(entries=(entry,))


def _accept_offer(c: Context) -> tuple[str, Msg]:
    maker = c.rng.choice(ASKERS)
    taker = c.rng.choice([name for name in BIDDERS if name != maker])
    slot = c.future_slot()
    zone = ZONE_B if maker == "carol" else ZONE_A
    signed = offer(c.ring, maker, "ask", 100 * c.rng.randrange(1, 10), 100 * c.rng.randrange(1_500, 3_000),  # type: ignore[arg-type]
                   slot=slot, valid_until=slot - GATE_LEAD_S, zone=zone, salt=c.rng.randbytes(16))
    return taker, acceptance(c.ring, signed, taker)  # type: ignore[arg-type]


def _submit_readings(c: Context) -> tuple[str, Msg]:
    meter = c.rng.choice(PARTICIPANTS)
    imported, exported = c.registers.get(meter, (0, 0))
    imported += c.rng.randrange(0, 3_000)
    exported += c.rng.randrange(0, 3_000)
    c.registers[meter] = (imported, exported)
    timestamp = (c.time // SLOT_S) * SLOT_S
    signed = reading(c.ring, meter, timestamp, imported, exported)  # type: ignore[arg-type]
    return c.rng.choice(["dso", "dso_b", meter]), SubmitReadings(readings=(signed,))


TEMPLATES: dict[str, Callable[[Context], tuple[str, Msg]]] = {
    "transfer": _transfer, "deposit": _deposit, "withdraw": _withdraw,
    "register_participant": _register_participant, "register_meter": _register_meter, "deactivate": _deactivate,
    "propose_params": _propose_params, "propose_validator": _propose_validator, "vote": _vote,
    "place_order": _place_order, "cancel_order": _cancel_order, "set_grid_fees": _set_grid_fees,
    "accept_offer": _accept_offer, "submit_readings": _submit_readings,
}
# Deactivations end an account's or a meter's activity: rarer, so the rest keeps going.
WEIGHTS = {name: (1 if name == "deactivate" else 4 if name in ("transfer", "place_order") else 2) for name in TEMPLATES}


# -- mutations --------------------------------------------------------------------------------------------------


def _leaf_paths(value: Any, path: tuple[int, ...] = ()) -> list[tuple[int, ...]]:
    if isinstance(value, list) and value:
        return [p for i, item in enumerate(value) for p in _leaf_paths(item, (*path, i))] + [path]
    return [path]


def _replace(value: Any, path: tuple[int, ...], new: Any) -> Any:
    if not path:
        return new
    copy = list(value)
    copy[path[0]] = _replace(copy[path[0]], path[1:], new)
    return copy


def mutate_body(rng: random.Random, body: list[Any], ring: KeyRing) -> tuple[str, Any]:
    choice = rng.randrange(6)
    if choice <= 2:
        path = rng.choice(_leaf_paths(body))
        pool = (*INTERESTING, *(ring.id(n) for n in PARTICIPANTS[:2]), rng.randrange(-(2**40), 2**40))
        return "body:replace", _replace(body, path, rng.choice(pool))
    if choice == 3 and body:
        index = rng.randrange(len(body))
        return "body:drop", body[:index] + body[index + 1 :]
    if choice == 4:
        return "body:extra", [*body, rng.choice(INTERESTING)]
    return "body:retype", rng.choice([None, "body", 7, b"body", [body]])


def mutate_bytes(rng: random.Random, raw: bytes, other: bytes) -> tuple[str, bytes]:
    data = bytearray(raw)
    choice = rng.randrange(6)
    if choice == 0:
        for _ in range(rng.randrange(1, 4)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return "bytes:flip", bytes(data)
    if choice == 1:
        return "bytes:truncate", bytes(data[: rng.randrange(len(data))])
    if choice == 2:
        return "bytes:append", bytes(data) + rng.randbytes(rng.randrange(1, 16))
    if choice == 3:
        cut = rng.randrange(len(data))
        return "bytes:splice", bytes(data[:cut]) + other[cut:]
    if choice == 4:
        return "bytes:random", rng.randbytes(rng.randrange(0, 300))
    position = rng.randrange(len(data))
    data[position:position] = rng.randbytes(rng.randrange(1, 8))
    return "bytes:insert", bytes(data)


@dataclass
class Case:
    raw: bytes
    mutation: str
    signer: str | None
    """Whose nonce the transaction may spend (None: nobody's, e.g. an unknown signer)."""


def envelope_case(rng: random.Random, ring: KeyRing, signer: str, msg: Msg, nonce: int) -> Case:
    key = ring.keys[signer]
    body, tx_type = msg.to_wire(), msg.TYPE
    choice = rng.randrange(9)
    if choice == 0:
        return Case(sign_raw("other-chain", tx_type, body, key, nonce), "env:chain_id", signer)
    if choice == 1:
        wrong = rng.choice([nonce - 1, 0, -1, nonce + rng.randrange(2, 50), 2**62, 2**63])
        return Case(sign_raw(ring.chain_id, tx_type, body, key, wrong), "env:nonce", signer)
    if choice == 2:
        return Case(sign_raw(ring.chain_id, tx_type, body, key, nonce, version=rng.choice([0, 2, -1])),
                    "env:version", signer)
    if choice == 3:
        other = rng.choice([t for t in TEMPLATES if t != tx_type] + ["", "x" * 100])
        return Case(sign_raw(ring.chain_id, other, body, key, nonce), "env:type", signer)
    if choice == 4:
        return Case(sign_raw(ring.chain_id, tx_type, body, ring.keys["ghost"], 1), "env:unknown_signer", None)
    if choice == 5:
        impostor = ring.keys[rng.choice([n for n in PARTICIPANTS if n != signer])]
        return Case(sign_raw(ring.chain_id, tx_type, body, impostor, nonce, signer=key.pubkey),
                    "env:bad_signature", signer)
    if choice == 6:
        short = sign_raw(ring.chain_id, tx_type, body, key, nonce, signer=key.pubkey[:31])
        return Case(short, "env:short_signer", None)
    if choice == 7:
        value = msgpack.unpackb(sign_raw(ring.chain_id, tx_type, body, key, nonce), raw=False)
        value[rng.randrange(len(value))] = rng.choice(INTERESTING)
        return Case(msgpack.packb(value, use_bin_type=True), "env:field", signer)
    # A different but valid signer of the same message: its own nonce rules apply.
    other_signer = rng.choice([n for n in ring.keys if n != signer])
    return Case(sign_raw(ring.chain_id, tx_type, body, ring.keys[other_signer], nonce), "env:other_signer",
                other_signer)


# -- the run ----------------------------------------------------------------------------------------------------


@dataclass
class Report:
    transactions: int = 0
    blocks: int = 0
    codes: Counter[int] = field(default_factory=Counter)
    check_codes: Counter[int] = field(default_factory=Counter)
    mutations: Counter[str] = field(default_factory=Counter)
    process_rejected: int = 0
    violations: list[str] = field(default_factory=list)
    app_errors: dict[str, int] = field(default_factory=dict)
    """Exceptions the application or the server caught and logged (code 1, a rejected or empty proposal)."""
    app_error_examples: dict[str, str] = field(default_factory=dict)
    hash_chain: str = ""
    final_app_hash: str = ""


class Fuzzer:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ring = KeyRing()
        self.context = Context(rng=self.rng, ring=self.ring, time=GENESIS_TIME)
        self.a, self.b = SocketApp(), SocketApp()
        state = market_app_state()
        if self.a.init_chain(state) != self.b.init_chain(state):
            raise AssertionError("the twins disagree at genesis")
        self.height = 0
        self.report = Report()
        self.chain = hashlib.sha256()
        self.previous = b""

    def close(self) -> None:
        self.a.close()
        self.b.close()

    def next_nonce(self, name: str) -> int:
        nonce = self.a.nonce(self.ring.id(name))
        return 1 if nonce is None else nonce + 1

    def case(self) -> Case:
        names = sorted(TEMPLATES)
        template = self.rng.choices(names, weights=[WEIGHTS[n] for n in names])[0]
        signer, msg = TEMPLATES[template](self.context)
        nonce = self.next_nonce(signer)
        roll = self.rng.random()
        if roll < 0.35:
            return Case(sign_raw(self.ring.chain_id, msg.TYPE, msg.to_wire(), self.ring.keys[signer], nonce),
                        f"valid:{template}", signer)
        if roll < 0.65:
            mutation, body = mutate_body(self.rng, msg.to_wire(), self.ring)
            return Case(sign_raw(self.ring.chain_id, msg.TYPE, body, self.ring.keys[signer], nonce), mutation, signer)
        if roll < 0.8:
            return envelope_case(self.rng, self.ring, signer, msg, nonce)
        valid = sign_raw(self.ring.chain_id, msg.TYPE, msg.to_wire(), self.ring.keys[signer], nonce)
        mutation, raw = mutate_bytes(self.rng, valid, self.previous or valid)
        return Case(raw, mutation, signer)

    def step(self) -> None:
        dt = self.rng.choice([1, 2, 5, 5, 10, 30, 60, 300, 900, 3_700])
        self.context.time += dt
        case = self.case()
        self.previous = case.raw
        self.report.transactions += 1
        self.report.mutations[case.mutation.split(":")[0]] += 1
        account = self.ring.id(case.signer) if case.signer else None
        before = self.a.nonce(account) if account else None
        self.height += 1
        check = self.a.call(check_tx=abci.RequestCheckTx(tx=case.raw))
        self.report.check_codes[check.code] += 1
        _, accepted = self.a.proposal([case.raw], self.height, self.context.time)
        self.report.process_rejected += not accepted
        block_a = self.a.block([case.raw], self.height, self.context.time)
        if len(block_a.tx_results) != 1:
            self.violate(case, f"{len(block_a.tx_results)} results for one transaction")
            return
        result = block_a.tx_results[0]
        self.report.codes[result.code] += 1
        if result.code == 0:
            self.learn(case, result)
            block_b = self.b.block([case.raw], self.height, self.context.time)
            if block_b.tx_results[0].SerializeToString() != result.SerializeToString():
                self.violate(case, "the twin returned another result for the same block")
        else:
            if result.events:
                self.violate(case, f"rejected with code {result.code} but emitted events")
            after = self.a.nonce(account) if account else None
            twin_txs: list[bytes] = []
            if account is not None and after != before:
                assert after is not None and case.signer is not None
                burn = Withdraw(amount=MAX_INT, agent=self.ring.id("lpd"), reference="")
                twin_txs = [sign_raw(self.ring.chain_id, burn.TYPE, burn.to_wire(), self.ring.keys[case.signer], after)]
            block_b = self.b.block(twin_txs, self.height, self.context.time)
            if twin_txs and (block_b.tx_results[0].code == 0 or self.b.nonce(account or "") != after):
                self.violate(case, "the twin's burn transaction did not reproduce the nonce (harness problem)")
        if block_a.app_hash != block_b.app_hash:
            self.violate(case, f"code {result.code}: app hash differs from the twin's "
                               f"({'same block' if result.code == 0 else 'nonce-only'} expectation)")
        self.chain.update(block_a.app_hash)
        self.report.blocks += 1

    def learn(self, case: Case, result: Any) -> None:
        """Order and proposal ids from the events of an accepted transaction."""
        for event in result.events:
            attributes = {a.key: a.value for a in event.attributes}
            if event.type == "order.placed" and case.signer:
                self.context.order_ids.setdefault(case.signer, []).append(int(attributes["id"]))
            if event.type == "proposal.submitted":
                self.context.proposal_ids.append(int(attributes["id"]))

    def violate(self, case: Case, what: str) -> None:
        self.report.violations.append(f"height {self.height}, {case.mutation}, tx {case.raw[:48].hex()}: {what}")
        if len(self.report.violations) > 20:
            raise AssertionError("more than 20 violations:\n" + "\n".join(self.report.violations))

    def run(self, count: int) -> Report:
        try:
            for _ in range(count):
                self.step()
        except Escaped as exc:
            self.report.violations.append(f"height {self.height}: an ABCI call escaped: {exc}")
        self.report.hash_chain = self.chain.hexdigest()
        self.report.final_app_hash = self.previous_hash()
        return self.report

    def previous_hash(self) -> str:
        info = self.a.call(info=abci.RequestInfo())
        return bytes(info.last_block_app_hash).hex()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--count", type=int, default=2_000)
    args = parser.parse_args(argv)
    # Rejections are the point here; failures the app or the server caught are counted, not printed.
    errors = ErrorLog()
    logger = logging.getLogger("gridledger")
    logger.addHandler(errors)
    logger.setLevel(logging.ERROR)
    logger.propagate = False
    fuzzer = Fuzzer(args.seed)
    try:
        report = fuzzer.run(args.count)
    finally:
        fuzzer.close()
    report.app_errors, report.app_error_examples = dict(errors.seen), errors.examples
    out = {**report.__dict__, "codes": dict(report.codes), "check_codes": dict(report.check_codes),
           "mutations": dict(report.mutations)}
    json.dump(out, sys.stdout, sort_keys=True)
    print()


if __name__ == "__main__":
    main()

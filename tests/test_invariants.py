"""Property-based invariants of the ledger, driven through the real ABCI application.

A hypothesis state machine sends random blocks of valid and invalid transactions
(deposits, withdrawals, transfers, registrations, deactivations, governance,
garbage, replays, wrong chain ids, bad signatures, stale nonces) with random time
steps through three in-process nodes fed the same bytes and block times:

* ``a``: MemoryBackend (the node the transactions are built against),
* ``b``: a second, fresh MemoryBackend node,
* ``c``: a LevelDBBackend node in a temporary directory (restarted from disk now and then).

After every block it checks: the supply equals genesis supply plus successful
deposits minus successful withdrawals (taken from the tx results' events); the
balances sum to the supply; no balance, lock or debt is negative and locks never
exceed balances; every node returned the same FinalizeBlock response (app hash,
codes, events); no transaction ever ends in an internal error. A dedicated rule
puts one surely-rejected transaction in a block and checks that the committed
state is untouched except for the chain record and, when the transaction was
authenticated, the signer's nonce.

Plain tests: a fixed workload gives the same final app hash under different
PYTHONHASHSEED values, and a deposit overflowing 2**63-1 is a clean rejection
in FinalizeBlock and CheckTx (regression: it used to be an internal error, and
CheckTx raised).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule
from msgspec.structs import replace

from abci_app.app import LedgerApplication
from abci_app.ledger import codec
from abci_app.ledger.execute import Chain as ChainRecord
from abci_app.ledger.invariants import violations
from abci_app.ledger.modules.auth import keeper as auth
from abci_app.ledger.modules.auth.records import PARTICIPANT_ROLES, Account
from abci_app.ledger.modules.bank import Deposit, Transfer, Withdraw
from abci_app.ledger.modules.bank import keeper as bank
from abci_app.ledger.modules.gov import CastVote, ProposeParams
from abci_app.ledger.modules.gov import keeper as gov
from abci_app.ledger.modules.gov.records import ParamChange
from abci_app.ledger.modules.registry import Deactivate, RegisterMeter, RegisterParticipant
from abci_app.ledger.msg import Msg
from abci_app.ledger.params import get_params
from abci_app.ledger.state import State
from abci_app.ledger.store import LevelDBBackend, Overlay
from abci_app.ledger.tx import encode_tx
from abci_app.pb.tendermint.abci import types_pb2 as abci
from tests.harness import CHAIN_ID, ZONE_A, ZONE_B, Chain, seeded_key

ROOT = Path(__file__).resolve().parent.parent

DSOS = ("dso", "dso_b")
LPDS = ("lpd", "lpd_b")
OPERATORS = DSOS + LPDS
GENESIS_PARTICIPANTS = ("alice", "bob", "carol")
NEWCOMERS = ("dave", "erin", "p0", "p1", "p2")
ALL_NAMES = OPERATORS + GENESIS_PARTICIPANTS + NEWCOMERS
ZONE_OF = {"dso": ZONE_A, "dso_b": ZONE_B}
OTHER_DSO = {"dso": "dso_b", "dso_b": "dso"}
METER_IDS = ("m0", "m1", "m2", "m3")
METER_KEYS = tuple(seeded_key(f"meter-{i}").pubkey for i in range(4))
GHOST = seeded_key("ghost")  # never registered
UNKNOWN_ID = "00" * 20  # no key hashes to this account id
MAX_AMOUNT = 10**9  # per deposit; keeps the supply far below 2**63 (see test_overflowing_deposit_...)
HUGE = 10**15  # above any free balance the machine can reach
PARAM_VALUES = {
    "max_tx_bytes": (512, 4_096, 65_536),
    "voting_period_s": (60, 3_600, 86_400),
    "max_meters_per_participant": (1, 2, 16),
}
CODE_INTERNAL = 1


def state_of(chain: Chain) -> State:
    return State(Overlay(chain.app.committed))


def snapshot(app: LedgerApplication) -> dict[bytes, bytes]:
    """Every committed ledger key (store metadata excluded)."""
    return dict(app.committed.iterate(b"", None))


def nonce_of(raw: bytes) -> int:
    value = codec.decode(raw)
    assert isinstance(value, list)
    nonce = value[5]
    assert isinstance(nonce, int)
    return nonce


def tx_type(raw: bytes) -> str:
    try:
        value = codec.decode(raw)
    except codec.CodecError:
        return "undecodable"
    return str(value[2]) if isinstance(value, list) and len(value) == 7 else "malformed"


def flip_signature(raw: bytes) -> bytes:
    """The same transaction with one bit of the signature's R part flipped."""
    data = bytearray(raw)
    data[-64] ^= 0x01
    return bytes(data)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="gridledger-inv-"))
        self.a = Chain()
        self.b = Chain()
        self.c = Chain(backend=LevelDBBackend(self.tmp / "db"))
        self.chains = (self.a, self.b, self.c)
        for name in (*NEWCOMERS, "ghost"):
            self.a.keys.setdefault(name, seeded_key(name))
        assert self.a.genesis_hash == self.b.genesis_hash == self.c.genesis_hash
        assert self.a.app_state is not None
        self.initial_supply = sum(
            entry.get("balance", 0) for entry in self.a.app_state["operators"] + self.a.app_state["participants"]
        )
        self.expected_supply = self.initial_supply
        self.history: list[tuple[bytes, int]] = []  # (tx bytes, FinalizeBlock code)
        self.run_block([], 1)

    def teardown(self) -> None:
        for chain in self.chains:
            chain.app.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- state helpers -----------------------------------------------------------------
    def state(self) -> State:
        return state_of(self.a)

    def account(self, name: str) -> Account | None:
        return auth.get_account(self.state(), self.a.id(name))

    def active_names(self, pool: tuple[str, ...] = ALL_NAMES) -> list[str]:
        out = []
        for name in pool:
            account = self.account(name)
            if account is not None and account.active:
                out.append(name)
        return out

    def next_proposal_id(self) -> int:
        return sum(1 for _ in gov.iter_proposals(self.state())) + 1

    def sign(self, name: str, msg: Msg) -> bytes:
        return self.a.sign(name, msg)

    # -- running blocks and checking invariants --------------------------------------------
    def run_block(self, txs: list[bytes], dt: int) -> list[abci.ExecTxResult]:
        for raw in txs:
            self.a.check(raw)  # CheckTx must answer (never raise) for any bytes
        responses = [chain.block(list(txs), dt) for chain in self.chains]
        first = responses[0]
        for block_event in first.events:
            event(f"block event {block_event.type}")
        # Invariant 5: same bytes and times give the same response and app hash on every node/backend.
        for chain, response in zip(self.chains, responses, strict=True):
            assert response.app_hash == first.app_hash, f"app hash diverged at height {chain.height}"
            assert response.SerializeToString(deterministic=True) == first.SerializeToString(deterministic=True)
            assert chain.app.committed.app_hash == first.app_hash
            assert chain.app.committed.height == self.a.height
        assert len(first.tx_results) == len(txs)
        for raw, result in zip(txs, first.tx_results, strict=True):
            assert result.code != CODE_INTERNAL, f"internal error: {result.log}"
            if result.code == 0:
                for tx_event in result.events:
                    attrs = {a.key: a.value for a in tx_event.attributes}
                    if tx_event.type == "deposit":
                        self.expected_supply += int(attrs["amount"])
                    elif tx_event.type == "withdraw":
                        self.expected_supply -= int(attrs["amount"])
                    event(f"emitted {tx_event.type}")
            else:
                assert not result.events, "a rejected transaction emitted events"
            self.history.append((raw, result.code))
            event(f"tx {tx_type(raw)} -> code {result.code}")  # shown by --hypothesis-show-statistics
        self.verify_ledger_invariants()
        return list(first.tx_results)

    def verify_ledger_invariants(self) -> None:
        assert violations(self.state()) == []
        supply = self.a.query("/supply")["total"]
        # 1. supply = genesis + successful deposits - successful withdrawals
        assert supply == self.expected_supply
        for chain in self.chains[1:]:
            assert chain.query("/supply")["total"] == supply
        state = self.state()
        assert bank.get_supply(state) == supply
        accounts = list(auth.iter_accounts(state))
        # 2. the balances hold exactly the supply
        assert sum(account.balance for account in accounts) == supply
        # 3. nothing negative, locks covered by balances
        for account in accounts:
            assert account.balance >= 0, account
            assert account.locked >= 0, account
            assert account.debt >= 0, account
            assert account.locked <= account.balance, account
            assert account.nonce >= 0, account

    def draw_dt(self, data: st.DataObject) -> int:
        step = data.draw(
            st.one_of(st.integers(0, 30), st.sampled_from(("period", "period+1", "half-period"))), label="dt"
        )
        if isinstance(step, int):
            return step
        period = get_params(self.state()).voting_period_s
        return {"period": period, "period+1": period + 1, "half-period": period // 2}[step]

    def draw_amount(self, data: st.DataObject, free: int = 0) -> int:
        if free > 0 and data.draw(st.booleans(), label="within free"):
            return data.draw(st.integers(1, free), label="amount")
        return data.draw(st.one_of(st.integers(1, 1_000), st.integers(1, MAX_AMOUNT)), label="amount")

    # -- transaction builders: each returns [(tx bytes, must be rejected)] ---------------------
    def tx_deposit(self, data: st.DataObject) -> list[tuple[bytes, bool]]:
        signer = data.draw(st.sampled_from(LPDS), label="lpd")
        target = data.draw(st.sampled_from((*ALL_NAMES, "ghost")), label="account")
        msg = Deposit(account=self.a.id(target), amount=self.draw_amount(data), reference="pay-1")
        return [(self.sign(signer, msg), False)]

    def tx_deposit_by_non_lpd(self, data: st.DataObject) -> list[tuple[bytes, bool]]:
        signer = data.draw(st.sampled_from(DSOS + GENESIS_PARTICIPANTS + NEWCOMERS), label="signer")
        target = data.draw(st.sampled_from(ALL_NAMES), label="account")
        msg = Deposit(account=self.a.id(target), amount=self.draw_amount(data), reference="fake")
        return [(self.sign(signer, msg), True)]

    def tx_withdraw(self, data: st.DataObject) -> list[tuple[bytes, bool]]:
        signer = data.draw(st.sampled_from(ALL_NAMES), label="signer")
        agent = data.draw(st.sampled_from((*LPDS, *LPDS, "dso", "alice")), label="agent")
        account = self.account(signer)
        amount = self.draw_amount(data, account.free if account else 0)
        return [(self.sign(signer, Withdraw(amount=amount, agent=self.a.id(agent), reference="iban-1")), False)]

    def tx_withdraw_too_much(self, data: st.DataObject) -> list[tuple[bytes, bool]]:
        signer = data.draw(st.sampled_from(ALL_NAMES), label="signer")
        amount = HUGE + data.draw(st.integers(0, 1_000), label="extra")
        return [(self.sign(signer, Withdraw(amount=amount, agent=self.a.id("lpd"), reference="x")), True)]

    def tx_transfer(self, data: st.DataObject) -> list[tuple[bytes, bool]]:
        signer = data.draw(st.sampled_from(ALL_NAMES), label="signer")
        recipient = data.draw(st.sampled_from(ALL_NAMES), label="recipient")
        account = self.account(signer)
        amount = self.draw_amount(data, account.free if account else 0)
        return [(self.sign(signer, Transfer(recipient=self.a.id(recipient), amount=amount, memo="t")), False)]

    def tx_self_transfer(self, data: st.DataObject) -> list[tuple[bytes, bool]]:
        signer = data.draw(st.sampled_from(ALL_NAMES), label="signer")
        msg = Transfer(recipient=self.a.id(signer), amount=self.draw_amount(data), memo="me")
        return [(self.sign(signer, msg), True)]

    def tx_transfer_unknown(self, data: st.DataObject) -> list[tuple[bytes, bool]]:
        signer = data.draw(st.sampled_from(ALL_NAMES), label="signer")
        return [(self.sign(signer, Transfer(recipient=UNKNOWN_ID, amount=self.draw_amount(data), memo="?")), True)]

    def tx_transfer_too_much(self, data: st.DataObject) -> list[tuple[bytes, bool]]:
        signer = data.draw(st.sampled_from(ALL_NAMES), label="signer")
        recipient = data.draw(st.sampled_from(ALL_NAMES), label="recipient")
        amount = HUGE + data.draw(st.integers(0, 1_000), label="extra")
        return [(self.sign(signer, Transfer(recipient=self.a.id(recipient), amount=amount, memo="")), True)]

    def tx_transfer_zero(self, data: st.DataObject) -> list[tuple[bytes, bool]]:
        signer = data.draw(st.sampled_from(ALL_NAMES), label="signer")
        recipient = data.draw(st.sampled_from(ALL_NAMES), label="recipient")
        amount = data.draw(st.sampled_from((0, -1, -(10**6))), label="amount")
        return [(self.sign(signer, Transfer(recipient=self.a.id(recipient), amount=amount, memo="")), True)]

    def tx_register_participant(self, data: st.DataObject) -> list[tuple[bytes, bool]]:
        signer = data.draw(st.sampled_from((*DSOS, *DSOS, *DSOS, "lpd", "alice")), label="signer")
        zone = data.draw(st.sampled_from((ZONE_A, ZONE_B, "zone-c")), label="zone")
        key = data.draw(st.sampled_from((*NEWCOMERS, "alice")), label="key")
        role = data.draw(st.sampled_from(PARTICIPANT_ROLES), label="role")
        msg = RegisterParticipant(pubkey=self.a.keys[key].pubkey, role=role, zone=zone)
        return [(self.sign(signer, msg), False)]

    def registered_by(self, dso: str) -> list[str]:
        return [n for n in ALL_NAMES if (acc := self.account(n)) is not None and acc.dso == self.a.id(dso)]

    def draw_owned(self, data: st.DataObject, signer: str, pool: tuple[str, ...]) -> str:
        """Usually a participant the signing DSO registered (so the action can succeed), else anyone."""
        mine = self.registered_by(signer) if signer in DSOS else []
        if len(mine) > 0 and data.draw(st.booleans(), label="own participant?"):
            return data.draw(st.sampled_from(mine), label="target")
        return data.draw(st.sampled_from(pool), label="target")

    def tx_register_meter(self, data: st.DataObject) -> list[tuple[bytes, bool]]:
        signer = data.draw(st.sampled_from((*DSOS, *DSOS, "lpd")), label="signer")
        owner = self.draw_owned(data, signer, ALL_NAMES)
        msg = RegisterMeter(
            meter_id=data.draw(st.sampled_from(METER_IDS), label="meter"),
            pubkey=data.draw(st.sampled_from(METER_KEYS), label="meter key"),
            owner=self.a.id(owner),
            import_capacity_w=data.draw(st.integers(0, 20_000), label="import cap"),
            export_capacity_w=data.draw(st.integers(0, 20_000), label="export cap"),
            import_register_wh=data.draw(st.integers(0, 10**6), label="import reg"),
            export_register_wh=data.draw(st.integers(0, 10**6), label="export reg"),
        )
        return [(self.sign(signer, msg), False)]

    def tx_deactivate(self, data: st.DataObject) -> list[tuple[bytes, bool]]:
        signer = data.draw(st.sampled_from((*DSOS, *DSOS, "lpd")), label="signer")
        if data.draw(st.booleans(), label="participant?"):
            target = self.a.id(self.draw_owned(data, signer, (*GENESIS_PARTICIPANTS, *NEWCOMERS, "lpd")))
            msg = Deactivate(kind="participant", target=target)
        else:
            msg = Deactivate(kind="meter", target=data.draw(st.sampled_from((*METER_IDS, "nope")), label="meter"))
        return [(self.sign(signer, msg), False)]

    def draw_changes(self, data: st.DataObject) -> tuple[ParamChange, ...]:
        names = data.draw(st.lists(st.sampled_from(sorted(PARAM_VALUES)), min_size=1, max_size=2, unique=True))
        return tuple(ParamChange(n, data.draw(st.sampled_from(PARAM_VALUES[n]), label=n)) for n in names)

    def tx_propose(self, data: st.DataObject) -> list[tuple[bytes, bool]]:
        signer = data.draw(st.sampled_from((*OPERATORS, "alice")), label="signer")
        msg = ProposeParams(changes=self.draw_changes(data), description="tune")
        return [(self.sign(signer, msg), False)]

    def tx_propose_invalid(self, data: st.DataObject) -> list[tuple[bytes, bool]]:
        signer = data.draw(st.sampled_from(OPERATORS), label="signer")
        change = data.draw(
            st.sampled_from(
                (
                    ParamChange("max_tx_bytes", 255),
                    ParamChange("voting_period_s", 59),
                    ParamChange("max_meters_per_participant", 0),
                    ParamChange("currency_exponent", 2),
                    ParamChange("no_such_param", 1),
                )
            ),
            label="change",
        )
        return [(self.sign(signer, ProposeParams(changes=(change,), description="bad")), True)]

    def tx_vote(self, data: st.DataObject) -> list[tuple[bytes, bool]]:
        signer = data.draw(st.sampled_from((*OPERATORS, "alice")), label="signer")
        proposal_id = data.draw(st.integers(1, self.next_proposal_id()), label="proposal")
        msg = CastVote(proposal_id=proposal_id, approve=data.draw(st.booleans(), label="approve"))
        return [(self.sign(signer, msg), False)]

    def tx_gov_round(self, data: st.DataObject) -> list[tuple[bytes, bool]]:
        """A proposal and votes on it in the same block (enough yes votes to pass, usually)."""
        proposer = data.draw(st.sampled_from(OPERATORS), label="proposer")
        out = [(self.sign(proposer, ProposeParams(changes=self.draw_changes(data), description="round")), False)]
        proposal_id = self.next_proposal_id()
        voters = data.draw(st.permutations(OPERATORS), label="voters")[: data.draw(st.integers(1, 4), label="n")]
        mood = data.draw(st.sampled_from(("yes", "no", "split")), label="mood")
        for voter in voters:
            approve = {"yes": True, "no": False}.get(mood, data.draw(st.booleans(), label="approve"))
            out.append((self.sign(voter, CastVote(proposal_id=proposal_id, approve=approve)), False))
        return out

    def tx_garbage(self, data: st.DataObject) -> list[tuple[bytes, bool]]:
        return [(data.draw(st.binary(max_size=96), label="garbage"), True)]

    def tx_replay(self, data: st.DataObject) -> list[tuple[bytes, bool]]:
        if not self.history:
            return []
        raw, code = data.draw(st.sampled_from(self.history), label="replayed")
        # A tx that succeeded spent its nonce: its replay must fail. Others may legitimately pass
        # now (e.g. the signer got registered since), so they are not asserted.
        return [(raw, code == 0)]

    def tx_wrong_chain(self, data: st.DataObject) -> list[tuple[bytes, bool]]:
        signer = data.draw(st.sampled_from(ALL_NAMES), label="signer")
        chain_id = data.draw(st.sampled_from(("other-chain", "test-chain-2", "", "Test-chain")), label="chain")
        msg = Transfer(recipient=self.a.id("bob"), amount=1, memo="x")
        nonce = self.a.nonces.get(self.a.id(signer), 0) + 1
        self.a.nonces[self.a.id(signer)] = nonce
        return [(encode_tx(chain_id, msg, self.a.keys[signer], nonce), True)]

    def tx_bad_signature(self, data: st.DataObject) -> list[tuple[bytes, bool]]:
        inner = self.tx_transfer(data) + self.tx_deposit(data)
        raw, _ = inner[data.draw(st.integers(0, 1), label="which")]
        return [(flip_signature(raw), True)]

    def tx_stale_nonce(self, data: st.DataObject) -> list[tuple[bytes, bool]]:
        signer = data.draw(st.sampled_from(ALL_NAMES), label="signer")
        account = self.account(signer)
        last = account.nonce if account else 0
        nonce = data.draw(st.integers(max(0, last - 3), last), label="nonce")
        msg = Transfer(recipient=self.a.id("carol"), amount=1, memo="old")
        return [(encode_tx(CHAIN_ID, msg, self.a.keys[signer], nonce), True)]

    def tx_unknown_signer(self, data: st.DataObject) -> list[tuple[bytes, bool]]:
        msg = Transfer(recipient=self.a.id("alice"), amount=self.draw_amount(data), memo="ghost")
        return [(self.sign("ghost", msg), True)]

    KINDS = (
        "deposit", "deposit", "deposit", "deposit_by_non_lpd",
        "withdraw", "withdraw", "withdraw_too_much",
        "transfer", "transfer", "transfer", "transfer", "self_transfer", "transfer_unknown",
        "transfer_too_much", "transfer_zero",
        "register_participant", "register_participant", "register_meter", "register_meter", "deactivate", "deactivate",
        "propose", "propose_invalid", "vote", "vote", "gov_round",
        "garbage", "replay", "replay", "wrong_chain", "bad_signature", "stale_nonce", "unknown_signer",
    )  # fmt: skip

    # -- rules ------------------------------------------------------------------------------
    @rule(data=st.data())
    def block(self, data: st.DataObject) -> None:
        """A block of 0..6 random actions (some expanding to several txs) after a random time step."""
        built: list[tuple[bytes, bool]] = []
        for _ in range(data.draw(st.integers(0, 6), label="actions")):
            kind = data.draw(st.sampled_from(self.KINDS), label="kind")
            built.extend(getattr(self, f"tx_{kind}")(data))
        if len(built) > 0 and data.draw(st.booleans(), label="repeat one in block"):
            raw, _ = data.draw(st.sampled_from(built), label="repeated")
            built.append((raw, False))
        results = self.run_block([raw for raw, _ in built], self.draw_dt(data))
        for (raw, must_fail), result in zip(built, results, strict=True):
            if must_fail:
                assert result.code != 0, f"a transaction that must fail succeeded: {codec.decode(raw)!r}"
        if data.draw(st.integers(0, 5), label="restart node c?") == 0:
            self.restart_leveldb_node()

    REJECT_CASES = (
        # authenticated, rejected by the handler: only the signer's nonce changes
        "transfer_too_much", "self_transfer", "transfer_unknown", "transfer_to_inactive",
        "withdraw_too_much", "withdraw_bad_agent", "deposit_by_non_lpd", "deposit_unknown_account",
        "deposit_overflow", "deactivate_inactive",
        "register_by_non_dso", "register_wrong_zone", "register_existing", "meter_wrong_dso",
        "meter_unknown_owner", "deactivate_wrong_dso", "deactivate_unknown_meter",
        "propose_by_non_operator", "vote_by_non_operator", "vote_unknown_proposal",
        # not authenticated: nothing changes
        "garbage", "wrong_chain", "bad_signature", "unknown_signer", "stale_nonce", "replay_success",
        "zero_amount", "param_out_of_bounds", "param_immutable", "param_unknown", "inactive_signer",
    )  # fmt: skip

    def build_rejected(self, case: str, data: st.DataObject) -> tuple[bytes, str | None] | None:
        """A transaction certain to be rejected and the account whose nonce it spends (None: no one)."""
        active = self.active_names()
        participants = [n for n in active if n not in OPERATORS]
        signer = data.draw(st.sampled_from(active), label="signer")
        inactive = [n for n in ALL_NAMES if (acc := self.account(n)) is not None and not acc.active]
        msg: Msg
        if case == "transfer_too_much":
            msg = Transfer(recipient=self.a.id("lpd"), amount=HUGE, memo="")
            if signer == "lpd":
                msg = replace(msg, recipient=self.a.id("lpd_b"))
        elif case == "self_transfer":
            msg = Transfer(recipient=self.a.id(signer), amount=1, memo="")
        elif case == "transfer_unknown":
            msg = Transfer(recipient=UNKNOWN_ID, amount=1, memo="")
        elif case == "transfer_to_inactive":
            if not inactive:
                return None
            msg = Transfer(recipient=self.a.id(data.draw(st.sampled_from(inactive), label="to")), amount=1, memo="")
        elif case == "withdraw_too_much":
            msg = Withdraw(amount=HUGE, agent=self.a.id("lpd_b"), reference="r")
        elif case == "withdraw_bad_agent":
            agent = data.draw(st.sampled_from((*DSOS, "alice", "ghost")), label="agent")
            msg = Withdraw(amount=1, agent=self.a.id(agent), reference="r")
        elif case == "deposit_by_non_lpd":
            candidates = [n for n in active if n not in LPDS]
            signer = data.draw(st.sampled_from(candidates), label="signer")
            msg = Deposit(account=self.a.id(signer), amount=1_000, reference="self-made")
        elif case == "deposit_overflow":
            # Alone in its block, so nothing can lower the supply first: always above 2**63-1.
            signer = data.draw(st.sampled_from(LPDS), label="signer")
            target = data.draw(st.sampled_from(active), label="account")
            low = codec.MAX_INT - bank.get_supply(self.state()) + 1
            amount = data.draw(st.one_of(st.just(low), st.integers(low, codec.MAX_INT)), label="amount")
            msg = Deposit(account=self.a.id(target), amount=amount, reference="overflow")
        elif case == "deactivate_inactive":
            if not inactive:
                return None
            target = data.draw(st.sampled_from(inactive), label="target")
            target_account = self.account(target)
            assert target_account is not None
            signer = next(d for d in DSOS if self.a.id(d) == target_account.dso)
            msg = Deactivate(kind="participant", target=self.a.id(target))
        elif case == "deposit_unknown_account":
            signer = data.draw(st.sampled_from(LPDS), label="signer")
            msg = Deposit(account=UNKNOWN_ID, amount=1_000, reference="r")
        elif case == "register_by_non_dso":
            signer = data.draw(st.sampled_from([n for n in active if n not in DSOS]), label="signer")
            msg = RegisterParticipant(pubkey=GHOST.pubkey, role="consumer", zone=ZONE_A)
        elif case == "register_wrong_zone":
            signer = data.draw(st.sampled_from(DSOS), label="signer")
            zone = data.draw(st.sampled_from((ZONE_OF[OTHER_DSO[signer]], "zone-c")), label="zone")
            msg = RegisterParticipant(pubkey=GHOST.pubkey, role="producer", zone=zone)
        elif case == "register_existing":
            signer = data.draw(st.sampled_from(DSOS), label="signer")
            existing = data.draw(st.sampled_from((*OPERATORS, *GENESIS_PARTICIPANTS)), label="existing")
            msg = RegisterParticipant(pubkey=self.a.keys[existing].pubkey, role="consumer", zone=ZONE_OF[signer])
        elif case in ("meter_wrong_dso", "meter_unknown_owner"):
            signer = data.draw(st.sampled_from(DSOS), label="signer")
            owner = UNKNOWN_ID
            if case == "meter_wrong_dso":
                owner = self.a.id("alice" if signer == "dso_b" else "carol")
            msg = RegisterMeter(
                meter_id="m-x",
                pubkey=GHOST.pubkey,
                owner=owner,
                import_capacity_w=1,
                export_capacity_w=0,
                import_register_wh=0,
                export_register_wh=0,
            )
        elif case == "deactivate_wrong_dso":
            signer = data.draw(st.sampled_from(DSOS), label="signer")
            target = data.draw(st.sampled_from(("alice", "bob") if signer == "dso_b" else ("carol", "lpd")))
            msg = Deactivate(kind="participant", target=self.a.id(target))
        elif case == "deactivate_unknown_meter":
            signer = data.draw(st.sampled_from(DSOS), label="signer")
            msg = Deactivate(kind="meter", target="no-such-meter")
        elif case in ("propose_by_non_operator", "vote_by_non_operator"):
            if not participants:
                return None
            signer = data.draw(st.sampled_from(participants), label="signer")
            if case == "vote_by_non_operator":
                msg = CastVote(proposal_id=1, approve=True)
            else:
                msg = ProposeParams(changes=(ParamChange("voting_period_s", 3_600),), description="")
        elif case == "vote_unknown_proposal":
            signer = data.draw(st.sampled_from(OPERATORS), label="signer")
            msg = CastVote(proposal_id=self.next_proposal_id() + 1_000, approve=True)
        # -- unauthenticated cases --
        elif case == "garbage":
            return data.draw(st.binary(max_size=96), label="garbage"), None
        elif case == "wrong_chain":
            nonce = self.a.nonces.get(self.a.id(signer), 0) + 1
            msg = Transfer(recipient=self.a.id("bob"), amount=1, memo="")
            return encode_tx("other-chain", msg, self.a.keys[signer], nonce), None
        elif case == "bad_signature":
            msg = Transfer(recipient=self.a.id("bob" if signer != "bob" else "alice"), amount=1, memo="")
            return flip_signature(self.sign(signer, msg)), None
        elif case == "unknown_signer":
            return self.sign("ghost", Transfer(recipient=self.a.id("alice"), amount=1, memo="")), None
        elif case == "stale_nonce":
            account = self.account(signer)
            assert account is not None
            msg = Transfer(recipient=self.a.id("bob" if signer != "bob" else "alice"), amount=1, memo="")
            return encode_tx(CHAIN_ID, msg, self.a.keys[signer], account.nonce), None
        elif case == "replay_success":
            successes = [raw for raw, code in self.history if code == 0]
            if not successes:
                return None
            return data.draw(st.sampled_from(successes), label="replayed"), None
        elif case == "zero_amount":
            return self.sign(signer, Transfer(recipient=self.a.id("carol"), amount=0, memo="")), None
        elif case in ("param_out_of_bounds", "param_immutable", "param_unknown"):
            signer = data.draw(st.sampled_from(OPERATORS), label="signer")
            change = {
                "param_out_of_bounds": ParamChange("voting_period_s", 10),
                "param_immutable": ParamChange("currency_exponent", 2),
                "param_unknown": ParamChange("block_reward", 5),
            }[case]
            return self.sign(signer, ProposeParams(changes=(change,), description="")), None
        elif case == "inactive_signer":
            if not inactive:
                return None
            signer = data.draw(st.sampled_from(inactive), label="signer")
            return self.sign(signer, Transfer(recipient=self.a.id("lpd"), amount=1, memo="")), None
        else:  # pragma: no cover
            raise AssertionError(case)
        return self.sign(signer, msg), self.a.id(signer)

    @rule(data=st.data())
    def rejected_tx_changes_only_the_nonce(self, data: st.DataObject) -> None:
        """Invariant 4: one rejected tx alone in a block (dt=0, so no proposal can expire)."""
        case = data.draw(st.sampled_from(self.REJECT_CASES), label="case")
        built = self.build_rejected(case, data)
        if built is None:
            return
        raw, nonce_spender = built
        before = snapshot(self.a.app)
        (result,) = self.run_block([raw], 0)
        after = snapshot(self.a.app)
        assert result.code != 0, f"{case}: transaction was accepted"
        event(f"rejected case {case} -> code {result.code}")
        changed = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
        chain_before = ChainRecord.decode(before[b"chain"])
        assert ChainRecord.decode(after[b"chain"]) == replace(chain_before, height=chain_before.height + 1)
        changed.discard(b"chain")
        if nonce_spender is None:
            assert changed == set(), f"{case} (code {result.code}) changed {sorted(changed)}"
        else:
            key = b"acct/" + nonce_spender.encode()
            assert changed == {key}, f"{case} (code {result.code}) changed {sorted(changed)}"
            old, new = Account.decode(before[key]), Account.decode(after[key])
            assert new.nonce == nonce_of(raw) > old.nonce
            assert replace(new, nonce=old.nonce) == old

    def restart_leveldb_node(self) -> None:
        """Reopen node c from disk: it resumes at the same height and app hash and keeps agreeing."""
        expected = snapshot(self.c.app)
        self.c.app.close()
        self.c.app = LedgerApplication(LevelDBBackend(self.tmp / "db"))
        info = self.c.app.info(abci.RequestInfo())
        assert info.last_block_height == self.a.height
        assert info.last_block_app_hash == self.a.app.committed.app_hash
        assert snapshot(self.c.app) == expected == snapshot(self.a.app)
        event("restarted the LevelDB node")


LedgerMachine.TestCase.settings = settings(
    max_examples=50,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TestLedgerInvariants = LedgerMachine.TestCase


# -- determinism across interpreter hash seeds -----------------------------------------------
WORKLOAD = """
from abci_app.ledger.modules.bank import Deposit, Transfer, Withdraw
from abci_app.ledger.modules.gov import CastVote, ProposeParams
from abci_app.ledger.modules.registry import Deactivate, RegisterMeter, RegisterParticipant
from abci_app.ledger.modules.gov.records import ParamChange
from tests.harness import ZONE_A, ZONE_B, Chain, seeded_key

chain = Chain()
meter = seeded_key("meter-0").pubkey
blocks = [
    ([chain.sign("lpd", Deposit(account=chain.id("alice"), amount=5_000, reference="r1")),
      chain.sign("alice", Transfer(recipient=chain.id("bob"), amount=1_234, memo="m")),
      chain.sign("dso", RegisterParticipant(pubkey=chain.keys["dave"].pubkey, role="consumer", zone=ZONE_A)),
      chain.sign("dso_b", RegisterParticipant(pubkey=chain.keys["erin"].pubkey, role="producer", zone=ZONE_B))],
     5, [0, 0, 0, 0]),
    ([chain.sign("dso", RegisterMeter(meter_id="m0", pubkey=meter, owner=chain.id("dave"), import_capacity_w=11_000,
                                      export_capacity_w=0, import_register_wh=7, export_register_wh=0)),
      chain.sign("bob", Withdraw(amount=99, agent=chain.id("lpd_b"), reference="w")),
      chain.sign("carol", Transfer(recipient=chain.id("dave"), amount=50_000, memo="gift")),
      chain.sign("alice", Transfer(recipient=chain.id("alice"), amount=1, memo="self")),
      b"garbage"],
     7, [0, 0, 0, 29, 2]),
    ([chain.sign("dso", ProposeParams(changes=(ParamChange("voting_period_s", 3_600),), description="d"))],
     1, [0]),
    ([chain.sign(op, CastVote(proposal_id=1, approve=True)) for op in ("dso", "dso_b", "lpd")], 1, [0, 0, 0]),
    ([chain.sign("lpd", ProposeParams(changes=(ParamChange("max_meters_per_participant", 2),), description="e"))],
     2, [0]),
    ([], 3_601, []),
    ([chain.sign("dso", Deactivate(kind="participant", target=chain.id("dave"))),
      chain.sign("dave", Withdraw(amount=10_000, agent=chain.id("lpd"), reference="out")),
      chain.sign("lpd_b", CastVote(proposal_id=2, approve=False))],
     9, [0, 0, 41]),
]
for txs, dt, codes in blocks:
    response = chain.block(txs, dt)
    got = [r.code for r in response.tx_results]
    assert got == codes, (got, codes, [r.log for r in response.tx_results])
print(chain.height, chain.app.committed.app_hash.hex(), chain.query("/supply")["total"])
"""


def test_app_hash_independent_of_python_hash_seed() -> None:
    outputs = []
    for seed in ("0", "1", "4242"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        proc = subprocess.run(
            [sys.executable, "-c", WORKLOAD],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout.strip())
    assert len(set(outputs)) == 1, outputs
    height, app_hash, supply = outputs[0].split()
    assert int(height) == 7 and len(app_hash) == 64
    assert int(supply) == 30_000_000 + 5_000 - 99 - 10_000


# -- overflow: must be a clean rejection, not an internal error ------------------------------
OVERFLOWS = pytest.mark.parametrize(
    ("amount", "what"),
    [
        (codec.MAX_INT, "alice's balance would exceed 2**63-1"),
        (codec.MAX_INT - 10_000_000, "only the supply would exceed 2**63-1"),
    ],
)


@OVERFLOWS
def test_overflowing_deposit_is_rejected_cleanly_by_finalize_block(amount: int, what: str) -> None:
    chain = Chain()
    raw = chain.sign("lpd", Deposit(account=chain.id("alice"), amount=amount, reference="big"))
    result = chain.block([raw]).tx_results[0]
    assert result.code not in (0, CODE_INTERNAL), f"code {result.code} {result.log!r} ({what})"
    assert chain.query("/supply")["total"] == 30_000_000
    account: Any = chain.account("alice")
    assert account["balance"] == 10_000_000


@OVERFLOWS
def test_overflowing_deposit_is_rejected_cleanly_by_check_tx(amount: int, what: str) -> None:
    chain = Chain()
    chain.block([])
    raw = chain.sign("lpd", Deposit(account=chain.id("alice"), amount=amount, reference="big"))
    try:
        check = chain.check(raw)
    except Exception as exc:  # the ABCI server would answer CometBFT with a ResponseException
        pytest.fail(f"CheckTx raised {type(exc).__name__} ({what}): {exc}")
    assert check.code not in (0, CODE_INTERNAL), (check.code, check.log)

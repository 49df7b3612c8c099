"""Running transactions and blocks over overlays: the state transition function.

Nonce rule (docs/transactions.md): a transaction that fails any stateless check,
names an unknown signer, or reuses a nonce changes nothing. Once it is
authenticated (valid signature, known signer, fresh nonce) its nonce is spent
even if the message itself is then rejected: every other write of a rejected
message is dropped. Spending the nonce keeps a rejected transaction from being
included again later, when it might succeed against its sender's intent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from msgspec.structs import replace

from abci_app.ledger import crypto, errors
from abci_app.ledger.events import Event, event
from abci_app.ledger.modules.auth import keeper as auth
from abci_app.ledger.modules.auth.records import Account
from abci_app.ledger.modules.gov.handlers import expire_proposals
from abci_app.ledger.modules.market import clock as market_clock
from abci_app.ledger.modules.settlement import settle
from abci_app.ledger.msg import TxContext
from abci_app.ledger.params import get_params
from abci_app.ledger.router import ALLOWED_WHEN_INACTIVE, HANDLERS
from abci_app.ledger.state import State
from abci_app.ledger.store import Overlay
from abci_app.ledger.tx import SignedTx, TxCache, decode_tx
from abci_app.ledger.wire import I64, Record

log = logging.getLogger("gridledger.ledger")

CHAIN_KEY = b"chain"
MAX_NONCE_STEP = 1 << 32
"""Largest gap between an account's last nonce and the next (2^32 transactions of the largest gap still leave
2^31 of them to go before the signed 64-bit range ends)."""


class Chain(Record, frozen=True):
    """The chain's identity and the last block applied to the state."""

    chain_id: str
    initial_height: I64
    height: I64
    time: I64
    """Header time of the last block, unix seconds."""


@dataclass
class TxResult:
    code: int
    log: str
    tx_type: str = ""
    codespace: str = ""
    events: list[Event] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.code == 0


def get_chain(kv: Overlay) -> Chain:
    chain = kv.get_record(CHAIN_KEY, Chain)
    if chain is None:
        raise errors.InvariantViolated("state has no chain record: InitChain never ran")
    return chain


def put_chain(kv: Overlay, chain: Chain) -> None:
    kv.put_record(CHAIN_KEY, chain)


def authenticate(state: State, tx: SignedTx) -> Account:
    """Signer-level checks; raise without writing anything."""
    account = auth.get_account(state, tx.account)
    # Rule: the signer is a registered account.
    if account is None:
        raise errors.UnknownSigner(f"no account {tx.account} for this public key")
    # Rule: a deactivated account may only withdraw.
    if not account.active and tx.msg.TYPE not in ALLOWED_WHEN_INACTIVE:
        raise errors.InactiveSigner(f"account {tx.account} is deactivated")
    # Rule: nonces strictly increase per account; (account, nonce) is never reused.
    if tx.nonce <= account.nonce:
        raise errors.StaleNonce(f"nonce {tx.nonce} is not above the account's last nonce {account.nonce}")
    # Rule: a nonce skips at most MAX_NONCE_STEP: one transaction with nonce 2^63-1 would freeze the account.
    if tx.nonce - account.nonce > MAX_NONCE_STEP:
        raise errors.ValueOutOfRange(f"nonce {tx.nonce} is more than {MAX_NONCE_STEP} above the account's last "
                                     f"nonce {account.nonce}")
    return account


def run_tx(kv: Overlay, raw: bytes, height: int, time: int, txs: TxCache | None = None,
           max_tx_bytes: int | None = None) -> TxResult:
    """Apply one transaction to ``kv``; on failure only the nonce rule writes.

    ``txs`` caches decoded transactions by hash (CheckTx usually decoded them already). ``max_tx_bytes`` is
    the size limit at the start of the block (the one ProcessProposal applied); by default, the current one.
    """
    chain = get_chain(kv)
    tx_type = ""
    try:
        max_bytes = max_tx_bytes if max_tx_bytes is not None else get_params(State(kv)).max_tx_bytes
        tx = decode_tx(raw, chain.chain_id, max_bytes, txs)
        tx_type = tx.msg.TYPE
        signer = authenticate(State(kv), tx)
    except errors.LedgerError as exc:
        return TxResult(code=exc.code, log=exc.log, tx_type=tx_type, codespace=exc.codespace)
    # The nonce is spent in every case from here on.
    signer = replace(signer, nonce=tx.nonce)
    auth.put_account(State(kv), signer)
    scratch = kv.branch()
    ctx = TxContext(state=State(scratch), signer=signer, height=height, time=time, chain_id=chain.chain_id,
                    verifier=txs.verifier if txs is not None else crypto.Verifier())
    try:
        HANDLERS[tx_type](ctx, tx.msg)
    except errors.LedgerError as exc:
        return TxResult(code=exc.code, log=exc.log, tx_type=tx_type, codespace=exc.codespace)
    scratch.merge_into(kv)
    return TxResult(code=0, log="", tx_type=tx_type, events=ctx.events)


def begin_block(kv: Overlay, height: int, time: int) -> list[Event]:
    """Steps driven by the block clock, run before the block's transactions."""
    chain = get_chain(kv)
    # Rule: block time never goes backwards (CometBFT guarantees it; we check it).
    if time < chain.time:
        raise RuntimeError(f"block {height} time {time} is before the previous block's {chain.time}")
    put_chain(kv, replace(chain, height=height, time=time))
    events: list[Event] = []
    for name, step in BLOCK_STEPS:
        events += _run_step(kv, name, step, height, time)
    return events


BlockStep = Callable[[State, int, int], list[Event]]

BLOCK_STEPS: tuple[tuple[str, BlockStep], ...] = (
    ("governance", lambda state, _height, time: expire_proposals(state, time)),
    ("market", market_clock.on_block),
    ("settlement", settle.on_block),
)
"""The clock-driven steps of a block, in order (docs/architecture.md)."""


def _run_step(kv: Overlay, name: str, step: BlockStep, height: int, time: int) -> list[Event]:
    """Run one block step on a branch; keep its writes only if it finished.

    A block step must not stop the chain: if one raises (a bug, or a state no rule foresaw) every node raises
    the same on the same state, so every node drops the step's writes alike, reports it in a
    ``block_step.failed`` event and the log, and goes on with the block. The step runs again next block.
    A fault of this node alone (``errors.NODE_FAULTS``: memory, disk) is not caught: it stops the node.
    """
    scratch = kv.branch()
    try:
        events = step(State(scratch), height, time)
    except errors.NODE_FAULTS:
        raise  # this node's fault, not the block's: stop rather than diverge
    except Exception as exc:
        log.exception("block step %s failed at height %d; its writes are dropped", name, height)
        if isinstance(exc, errors.LedgerError):
            return [event("block_step.failed", step=name, code=exc.code, error=exc.log)]
        # Only the exception's type: its message may hold details (addresses, sizes) that differ by node.
        return [event("block_step.failed", step=name, code=errors.LedgerError.code, error=type(exc).__name__)]
    scratch.merge_into(kv)
    return events

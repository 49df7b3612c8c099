"""Mempool admission (CheckTx): the checks that do not depend on the order of transactions.

CheckTx does not execute transactions (as Cosmos SDK runs only its ante
handler there, and as the ABCI++ spec advises). It admits a transaction when
its bytes pass every stateless check (``tx.decode_tx``), its signer is
registered, active and allowed to send the message (the route's ``admit``),
its nonce is above both the committed nonce and every nonce this node has
already admitted for the account, and the signer's free balance covers what
all its admitted transactions may debit or lock at most.

The view is ``CheckState``: the last committed state plus, per account, the
highest admitted nonce and the money reserved by its admitted transactions.
It is rebased after every ``Commit``; CometBFT then rechecks the rest of the
mempool in order, which rebuilds the reservations. Everything that depends on
other transactions (matching, balances after a transfer received, a slot's
capacity, an offer already taken) is decided in FinalizeBlock; docs/
architecture.md says what CheckTx guarantees and why what it does not is safe.
"""

from __future__ import annotations

from dataclasses import dataclass

from abci_app.ledger import crypto, errors
from abci_app.ledger.execute import authenticate, get_chain
from abci_app.ledger.modules.auth import keeper as auth
from abci_app.ledger.msg import AdmitContext
from abci_app.ledger.params import Params, get_params
from abci_app.ledger.router import ROUTE_BY_TYPE
from abci_app.ledger.state import State
from abci_app.ledger.store import KV, Overlay
from abci_app.ledger.tx import SignedTx


@dataclass
class Pending:
    """What this node's mempool holds for one account."""

    nonce: int
    """Highest nonce admitted."""
    reserved: int
    """Money the admitted transactions may debit or lock at most."""


class CheckState:
    """CheckTx's view: committed state (read only) plus each account's pending nonce and reservations."""

    def __init__(self, kv: KV, verifier: crypto.Verifier) -> None:
        self.verifier = verifier
        self.rebase(kv)

    def rebase(self, kv: KV) -> None:
        """Start again from ``kv`` (the state just committed, or genesis): nothing is pending."""
        self.state = State(Overlay(kv))
        self.pending: dict[str, Pending] = {}
        chain = get_chain(self.state.kv)
        self.chain_id = chain.chain_id
        self.time = chain.time
        self.params: Params = get_params(self.state)

    def next_nonce(self, account_id: str) -> int | None:
        """The next nonce for ``account_id`` counting this node's admitted transactions (None: no account)."""
        account = auth.get_account(self.state, account_id)
        if account is None:
            return None
        pending = self.pending.get(account_id)
        return max(account.nonce, pending.nonce if pending is not None else 0) + 1


def admit(check: CheckState, tx: SignedTx) -> None:
    """Admit ``tx`` to the mempool or raise the typed error that refuses it; record what it reserves."""
    signer = authenticate(check.state, tx)
    pending = check.pending.get(tx.account)
    # Rule: nonces also increase across this node's mempool, so two pending transactions never share one.
    if pending is not None and tx.nonce <= pending.nonce:
        raise errors.StaleNonce(f"nonce {tx.nonce} is not above the nonce {pending.nonce} of a transaction "
                                "already waiting in this node's mempool")
    route = ROUTE_BY_TYPE[tx.msg.TYPE]
    ctx = AdmitContext(state=check.state, signer=signer, params=check.params, time=check.time,
                       chain_id=check.chain_id, verifier=check.verifier)
    debit = route.admit(ctx, tx.msg)
    reserved = pending.reserved if pending is not None else 0
    # Rule: the free balance covers the most that all of the signer's pending transactions may take.
    if reserved + debit > signer.free:
        raise errors.InsufficientFunds(f"account {tx.account} has {signer.free} free; its pending transactions "
                                       f"may take {reserved} and this one {debit}")
    check.pending[tx.account] = Pending(nonce=tx.nonce, reserved=reserved + debit)

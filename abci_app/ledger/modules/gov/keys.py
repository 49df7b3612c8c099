"""Keys of the gov module.

    op/<account id>                   Operator
    gov/next                          be64: next proposal id
    gov/prop/<id:be64>                Proposal
    gov/vote/<id:be64>/<account id>   Vote
    gov/open/<expiry:be64>/<id:be64>  b""  (open proposals by expiry time)
    valupd/<consensus pubkey hex>     be64 power (validator updates of the block being built)
"""

from __future__ import annotations

from abci_app.ledger.state import be64

OPERATORS = b"op/"
NEXT_PROPOSAL = b"gov/next"
PROPOSALS = b"gov/prop/"
OPEN_PROPOSALS = b"gov/open/"
VALIDATOR_UPDATES = b"valupd/"


def operator_key(account_id: str) -> bytes:
    return OPERATORS + account_id.encode()


def proposal_key(proposal_id: int) -> bytes:
    return PROPOSALS + be64(proposal_id)


def open_key(expires_at: int, proposal_id: int) -> bytes:
    return OPEN_PROPOSALS + be64(expires_at) + b"/" + be64(proposal_id)


def vote_prefix(proposal_id: int) -> bytes:
    return b"gov/vote/" + be64(proposal_id) + b"/"


def vote_key(proposal_id: int, voter: str) -> bytes:
    return vote_prefix(proposal_id) + voter.encode()


def validator_update_key(pubkey: bytes) -> bytes:
    return VALIDATOR_UPDATES + pubkey.hex().encode()

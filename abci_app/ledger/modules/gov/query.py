"""Queries of the gov module (docs/queries.md): /operators, /proposals, /proposal/<id>.

Keys in answers: an operator's ``account_pubkey`` in hex like every account
key, its validator's ``consensus_pubkey`` in base64, as CometBFT writes
validator keys (``priv_validator_key.json``, ``/validators``, genesis) and as
``propose-validator --consensus-pubkey`` takes it: one encoding per kind of
key everywhere. A proposal also carries its proposer's operator name and a
one-line ``summary`` of what it changes, so a table can show both kinds.
"""

from __future__ import annotations

import base64
from typing import Any

from abci_app.ledger.modules.gov import keeper
from abci_app.ledger.modules.gov.records import Operator, ParamChange, Proposal, ValidatorChange
from abci_app.ledger.query_args import found, u64_arg
from abci_app.ledger.state import State
from abci_app.ledger.wire import plain


def query(state: State, head: str, args: list[str]) -> Any | None:
    if head == "operators" and not args:
        return {"operators": [operator_json(op) for op in keeper.iter_operators(state)]}
    if head == "proposals" and not args:
        names = _operator_names(state)
        return {"proposals": [proposal_json(p, names) for p in keeper.iter_proposals(state)]}
    if head == "proposal" and len(args) == 1:
        proposal = found(keeper.get_proposal(state, u64_arg(args[0], "proposal id")), f"proposal {args[0]}")
        return proposal_json(proposal, _operator_names(state))
    return None


def consensus_key_text(key: bytes) -> str:
    """A validator key as CometBFT writes it (base64); empty for none."""
    return base64.b64encode(key).decode() if key else ""


def operator_json(operator: Operator) -> dict[str, Any]:
    out: dict[str, Any] = plain(operator)
    out["consensus_pubkey"] = consensus_key_text(operator.consensus_pubkey)
    return out


def proposal_json(proposal: Proposal, operator_names: dict[str, str]) -> dict[str, Any]:
    """The stored proposal, with its proposer's name, base64 consensus keys and a ``summary``."""
    out: dict[str, Any] = plain(proposal)
    out["validator_change"] = [validator_change_json(change) for change in proposal.validator_change]
    out["proposer_name"] = operator_names.get(proposal.proposer, "")
    out["summary"] = summary(proposal)
    return out


def validator_change_json(change: ValidatorChange) -> dict[str, Any]:
    out: dict[str, Any] = plain(change)
    out["consensus_pubkey"] = consensus_key_text(change.consensus_pubkey)
    return out


def summary(proposal: Proposal) -> str:
    """What the proposal changes, in one line: ``voting_period_s=3600``, ``add validator dso-e (...)``."""
    parts = [_param_change_text(change) for change in proposal.changes]
    parts += [_validator_change_text(change) for change in proposal.validator_change]
    return "; ".join(parts)


def _param_change_text(change: ParamChange) -> str:
    return f"{change.name}={change.value}"


def _validator_change_text(change: ValidatorChange) -> str:
    if change.action == "add":
        zones = f", zones {','.join(change.zones)}" if change.zones else ""
        return f"add validator {change.name} ({change.role}{zones}, power {change.power})"
    if change.action == "remove":
        return f"remove validator {change.name}"
    return f"set power of {change.name} to {change.power}"


def _operator_names(state: State) -> dict[str, str]:
    return {op.account: op.name for op in keeper.iter_operators(state)}

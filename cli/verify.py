"""`--prove` of `gridledger query …`: answers computed from state proven against a verified header.

The node sends the raw entries behind the answer with Merkle proofs; the
header that carries their app hash is verified against the validator set
(node/client/lightclient.py, node/client/verified.py); the ledger's own query code then
computes the answer from the proven entries alone. Anything that does not
verify raises VerificationError: exit code 4 (PROOF_INVALID), saying what failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from abci_app.ledger import errors
from abci_app.ledger.params import get_params
from abci_app.ledger.state import State
from cli.output import UsageError, note
from node.client.chain import NodeClient
from node.client.lightclient import Validator, load_trusted_validators
from node.client.verified import ProvenState, VerificationError, read
from node.rpc import RpcError

TRUSTED_ENV = "GRIDLEDGER_TRUSTED_VALIDATORS"
ProveOpt = Annotated[bool, typer.Option(
    "--prove", help="Verify the answer: Merkle proofs against a header signed by >2/3 of the validators.")]
TrustedOpt = Annotated[Path | None, typer.Option(
    "--trusted-validators", envvar=TRUSTED_ENV, metavar="FILE",
    help="With --prove: validators you trust (the chain's genesis.json, or a saved `query validators -o json`); "
         "more than 1/3 of their power must have signed.")]
ProveChainIdOpt = Annotated[str | None, typer.Option(
    "--chain-id", envvar="GRIDLEDGER_CHAIN_ID", help="With --prove: the chain id signatures must be for "
    "(default: the trusted genesis file's, else the node's).")]

ModuleQuery = Callable[[State, str, list[str]], Any]


def prove(node: str, trusted_file: Path | None, chain_id: str | None, keys: Sequence[bytes] = (),
          ranges: Sequence[tuple[bytes, bytes]] = ()) -> ProvenState:
    """Read and verify; on success say at which height and by how much power."""
    client = NodeClient(node)
    trusted: list[Validator] | None = None
    if trusted_file is not None:
        trusted = load_trusted_validators(trusted_file)
        chain_id = chain_id or _genesis_chain_id(trusted_file)
    if chain_id is None:
        chain_id = str(client.call("status")["node_info"]["network"])
        note(f"chain id {chain_id!r} as the node reports it (pass --chain-id to insist on one)")
    try:
        proven = read(client.rpc, chain_id, keys, ranges, trusted)
    except RpcError as exc:  # the node refused a call the proof needs: nothing can be believed
        raise VerificationError(str(exc)) from exc
    header = proven.header
    note(f"verified at height {proven.height} by validators holding {header.signed_power} of "
         f"{header.total_power} power (app hash {header.app_hash.hex()} in the header of block {header.height})")
    if trusted is None:
        note("the validator set is the node's own: pass --trusted-validators (e.g. the chain's genesis.json) "
             "to check it against validators you trust")
    else:
        note(f"trusted validators holding {header.trusted_signed_power} of {header.trusted_total_power} "
             "power signed")
    return proven


def answer(proven: ProvenState, module_query: ModuleQuery, head: str, args: list[str]) -> Any:
    """The module's JSON answer computed from the proven entries (a proven absence is NotFound)."""
    try:
        result = module_query(proven.state, head, args)
    except errors.LedgerError as exc:
        raise UsageError(f"{exc.log} (verified at height {proven.height})") from exc
    # The same JSON round trip as a node's answer, so both paths print identically.
    return json.loads(json.dumps(result, sort_keys=True))


def money_params(proven: ProvenState) -> dict[str, Any]:
    """Currency and exponent from the proven ``params`` record (prove ``params`` with the answer's keys)."""
    params = get_params(proven.state)
    return {"currency": params.currency, "currency_exponent": params.currency_exponent}


def _genesis_chain_id(path: Path) -> str | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    chain_id = doc.get("chain_id") if isinstance(doc, dict) else None
    return chain_id if isinstance(chain_id, str) else None

"""`gridledger query ...`: read the ledger's committed state through a node."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from cli.client import DEFAULT_NODE, NodeClient
from cli.keys import DEFAULT_KEYRING, KEYRING_ENV, Format
from cli.output import Output, fail
from cli.tx import resolve_account
from cli.units import UnitError, format_money

query_app = typer.Typer(help="Read ledger state (last committed block).", no_args_is_help=True)

NodeOpt = Annotated[str, typer.Option("--node", envvar="GRIDLEDGER_NODE", help="CometBFT RPC URL.")]
OutputOpt = Annotated[Format, typer.Option("--output", "-o", help="Result format on stdout.")]
KeyringOpt = Annotated[Path, typer.Option("--keyring-dir", envvar=KEYRING_ENV, help="Keyring for key names.")]


def _money_fields(client: NodeClient, record: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Integers stay as they are; a formatted twin (``balance_fmt``) is added for people and scripts."""
    params = client.query("/params")
    for name in names:
        if name in record:
            record[f"{name}_fmt"] = format_money(record[name], params["currency"], params["currency_exponent"])
    return record


@query_app.command("account")
def account(
    who: Annotated[str, typer.Argument(help="Account id or key name.")],
    node: NodeOpt = DEFAULT_NODE, output: OutputOpt = Format.table, keyring_dir: KeyringOpt = DEFAULT_KEYRING,
) -> None:
    """Balances (free, locked), nonce, role, zone and DSO of an account.

    Example: gridledger query account alice --output json
    """
    try:
        account_id = resolve_account(who, keyring_dir)
    except UnitError as exc:
        fail(str(exc))
    client = NodeClient(node)
    record = client.query(f"/account/{account_id}")
    Output(output.value).record(_money_fields(client, record, ("balance", "free", "locked", "debt")))


@query_app.command("participants")
def participants(zone: Annotated[str, typer.Argument(help="Grid zone.")], node: NodeOpt = DEFAULT_NODE,
                 output: OutputOpt = Format.table) -> None:
    """Account ids of the participants in a zone.

    Example: gridledger query participants zone-a
    """
    answer = NodeClient(node).query(f"/participants/{zone}")
    Output(output.value).records([{"zone": zone, "account": a} for a in answer["participants"]])


@query_app.command("meters")
def meters(who: Annotated[str, typer.Argument(help="Participant: account id or key name.")],
           node: NodeOpt = DEFAULT_NODE, output: OutputOpt = Format.table,
           keyring_dir: KeyringOpt = DEFAULT_KEYRING) -> None:
    """Smart meters registered to a participant.

    Example: gridledger query meters alice
    """
    try:
        account_id = resolve_account(who, keyring_dir)
    except UnitError as exc:
        fail(str(exc))
    answer = NodeClient(node).query(f"/meters/{account_id}")
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
    Output(output.value).records(NodeClient(node).query("/proposals")["proposals"],
                                 columns=("id", "kind", "status", "yes_power", "no_power", "expires_at", "changes"))


@query_app.command("validators")
def validators(node: NodeOpt = DEFAULT_NODE, output: OutputOpt = Format.table) -> None:
    """The current CometBFT validator set.

    Example: gridledger query validators
    """
    answer = NodeClient(node).call("validators", page="1", per_page="100")
    Output(output.value).records([
        {"address": v["address"], "pub_key": v["pub_key"]["value"], "voting_power": int(v["voting_power"])}
        for v in answer["validators"]
    ])

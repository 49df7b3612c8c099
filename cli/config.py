"""`gridledger config ...`: the client's defaults (node/client/config.py): where the node is, which keyring."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.options import OutputOpt
from cli.output import Format, Output, note
from node.client import config as client_config

config_app = typer.Typer(help="Client defaults: the node and keyring every command uses.", no_args_is_help=True)
KeyArg = Annotated[str, typer.Argument(help=f"One of: {', '.join(client_config.KEYS)}.",
                                       autocompletion=lambda: list(client_config.KEYS))]


@config_app.command("set")
def set_(key: KeyArg, value: Annotated[str, typer.Argument(help="The value, e.g. http://127.0.0.1:26657.")]) -> None:
    """Set a default (the environment and the command line still win).

    Example: gridledger config set node http://127.0.0.1:26657
    """
    note(f"written to {client_config.set_value(key, value)}")


@config_app.command("unset")
def unset(key: KeyArg) -> None:
    """Remove a default.

    Example: gridledger config unset node
    """
    note(f"written to {client_config.unset(key)}")


@config_app.command("show")
def show(output: OutputOpt = Format.table) -> None:
    """The config file's values and where it is.

    Example: gridledger config show
    """
    note(f"config file: {client_config.path()}")
    Output(output.value).record(client_config.read())

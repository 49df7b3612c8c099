"""The one output channel of every `gridledger` command.

Results go to stdout, either as a rich table for people or as JSON for
scripts (keys sorted, so the shape is stable). Diagnostics and errors go to
stderr, so `--output json` stays parseable even when something is reported.

Exit codes shared by all commands (cli/main.py maps each error type to one):

    OK                0  success
    TX_REJECTED       1  the chain rejected a transaction
    USAGE             2  usage or input error (bad argument, unknown key, ...)
    NODE_UNREACHABLE  3  node unreachable or timed out
    PROOF_INVALID     4  `--prove`: a proof, header or signature did not verify
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from node.client.chain import TxResult

OK = 0
TX_REJECTED = 1
USAGE = 2
NODE_UNREACHABLE = 3
PROOF_INVALID = 4



class Format(StrEnum):
    """``--output``: a table for people, JSON for scripts."""

    table = "table"
    json = "json"


FORMATS = tuple(f.value for f in Format)

Record = Mapping[str, Any]

# When stdout is a pipe or a file, rich would wrap at 80 columns and cut hex
# ids; a wide virtual console keeps every value whole and copy-pasteable.
_PIPE_WIDTH = 10_000


def error(message: str) -> None:
    """Print one plain `error: ...` line on stderr."""
    typer.echo(f"error: {message}", err=True)


def note(message: str) -> None:
    """Print an informational line on stderr (never mixed into results)."""
    typer.echo(message, err=True)


class UsageError(Exception):
    """A command's arguments or options do not fit together (exit code 2, like every input error)."""


class Output:
    """Prints command results on stdout as a table or as JSON."""

    def __init__(self, fmt: str = "table") -> None:
        if fmt not in FORMATS:
            raise ValueError(f"output format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        self.fmt = fmt

    def record(self, record: Record, title: str | None = None) -> None:
        """Print one record: a field/value table, or a JSON object."""
        if self.fmt == "json":
            self._json(record)
            return
        table = Table(title=title, show_header=False, box=None, pad_edge=False)
        table.add_column("field", style="bold", no_wrap=True)
        table.add_column("value", overflow="fold")
        for key in formatted_first(record):
            table.add_row(Text(key), Text(_cell(record[key])))
        self._print(table)

    def records(
        self, records: Sequence[Record], columns: Sequence[str] | None = None, title: str | None = None
    ) -> None:
        """Print a list of records: one table row each, or a JSON array.

        ``columns`` narrows the table only; JSON always carries every field.
        """
        if self.fmt == "json":
            self._json(list(records))
            return
        names = list(columns) if columns is not None else _all_keys(records)
        table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for name in names:
            table.add_column(name, overflow="fold")
        for record in records:
            table.add_row(*(Text(_cell(record.get(name))) for name in names))
        self._print(table)

    @staticmethod
    def _json(value: Any) -> None:
        typer.echo(json.dumps(value, sort_keys=True, indent=2))

    @staticmethod
    def _print(table: Table) -> None:
        # Built per call so it binds to the current sys.stdout (CliRunner swaps it).
        stdout = sys.stdout
        tty = stdout.isatty()
        console = Console(file=stdout, width=None if tty else _PIPE_WIDTH, highlight=False)
        if tty:
            console.print(table)
            return
        # Piped: plain text without rich's cell padding at line ends.
        with console.capture() as capture:
            console.print(table)
        typer.echo("\n".join(line.rstrip() for line in capture.get().splitlines()))


def print_tx(out: Output, result: TxResult) -> None:
    """Print a transaction's result; TxRejected (exit code 1) if the chain refused it."""
    out.record(result.record())
    result.raise_if_rejected()


def formatted_first(record: Record) -> list[str]:
    """The record's keys with each formatted twin (``balance_fmt``, ``slot_utc``) just before its raw value,
    so a person reads "50.000000 EUR" before 50000000."""
    keys = list(record)
    twins = {key for key in keys if key.endswith(("_fmt", "_utc")) and key[:-4] in record}
    ordered: list[str] = []
    for key in keys:
        if key in twins:
            continue
        for suffix in ("_fmt", "_utc"):
            if key + suffix in twins:
                ordered.append(key + suffix)
        ordered.append(key)
    return ordered


def _all_keys(records: Sequence[Record]) -> list[str]:
    """Union of the records' keys, in first-seen order."""
    seen: dict[str, None] = {}
    for record in records:
        seen.update(dict.fromkeys(record))
    return list(seen)


def _cell(value: Any) -> str:
    """Human rendering of one value (cells are Text, so no rich markup is interpreted)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        # An event reads by its type first: "trade  buyer=... price=...".
        head = f"{value['type']}  " if isinstance(value.get("type"), str) else ""
        return head + " ".join(f"{k}={_cell(v)}" for k, v in sorted(value.items()) if not (head and k == "type"))
    if isinstance(value, list | tuple):
        # Records (events, changes) one per line; plain values on one line.
        separator = "\n" if any(isinstance(v, Mapping) for v in value) else ", "
        return separator.join(_cell(v) for v in value)
    return str(value)

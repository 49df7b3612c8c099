"""The options many commands share, as ``Annotated`` aliases, and what they resolve to.

A command declares ``node: NodeOpt = DEFAULT_NODE`` instead of repeating the
``typer.Option`` call, so an option reads and behaves the same everywhere.
Passphrases come from, in order: ``--passphrase-file FILE`` (its first line),
the ``GRIDLEDGER_PASSPHRASE`` environment variable, or a hidden interactive
prompt (asked twice when a key is created).
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from abci_app.ledger.crypto import SigningKey
from cli.output import Format, UsageError
from node.client.chain import DEFAULT_NODE as DEFAULT_NODE  # re-exported: the default of NodeOpt
from node.client.keystore import Keystore

PASSPHRASE_ENV = "GRIDLEDGER_PASSPHRASE"
KEYRING_ENV = "GRIDLEDGER_KEYRING_DIR"
NODE_ENV = "GRIDLEDGER_NODE"
DEFAULT_KEYRING = Path("~/.gridledger/keys")

# -- where and how --------------------------------------------------------------------------
NodeOpt = Annotated[str, typer.Option("--node", envvar=NODE_ENV, help="CometBFT RPC URL.")]
OutputOpt = Annotated[Format, typer.Option("--output", "-o", help="Result format on stdout.")]

class LogLevel(StrEnum):
    """One level for a whole node (node/supervisor.py LOG_LEVELS): CometBFT has no warn, so warn keeps its errors."""

    debug = "debug"
    info = "info"
    warn = "warn"
    error = "error"


LogLevelOpt = Annotated[LogLevel | None, typer.Option(
    "--log-level", case_sensitive=False,
    help="debug | info | warn | error, for CometBFT and the app (default: config.toml's, app INFO).")]

# -- keys -----------------------------------------------------------------------------------
KeyringDirOpt = Annotated[Path, typer.Option(
    "--keyring-dir", envvar=KEYRING_ENV, help="Directory of the encrypted keys.")]
PassphraseFileOpt = Annotated[Path | None, typer.Option(
    "--passphrase-file", metavar="FILE",
    help=f"Read the passphrase from the first line of FILE (else ${PASSPHRASE_ENV}, else ask).")]
def complete_keys(incomplete: str) -> list[str]:
    """Shell completion: the keyring's key names (no passphrase needed)."""
    keyring = Path(os.environ.get(KEYRING_ENV) or DEFAULT_KEYRING).expanduser()
    keys, _problems = Keystore(keyring).scan()
    return [key.name for key in keys if key.name.startswith(incomplete)]


def complete_zones(incomplete: str) -> list[str]:
    """Shell completion: the zones the chain's DSOs serve (asked of the node, briefly; none if it is down)."""
    from node.client.chain import NodeClient

    try:
        operators = NodeClient(os.environ.get(NODE_ENV) or DEFAULT_NODE, timeout=1.0).query("/operators")
    except Exception:  # completion never fails: no node, no suggestions
        return []
    zones = sorted({zone for op in operators["operators"] for zone in op.get("zones", [])})
    return [zone for zone in zones if zone.startswith(incomplete)]


FromOpt = Annotated[str, typer.Option("--from", help="Name of the signing key in the keyring.",
                                      autocompletion=complete_keys)]
ZoneArg = Annotated[str, typer.Argument(help="Grid zone.", autocompletion=complete_zones)]

# -- sending a transaction ------------------------------------------------------------------
ChainIdOpt = Annotated[str | None, typer.Option("--chain-id", help="Chain id (default: from the node).")]
NonceOpt = Annotated[int | None, typer.Option("--nonce", min=1, help="Nonce (default: from the node).")]
WaitOpt = Annotated[bool, typer.Option("--wait", help="Wait for the commit; print the block result.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds --wait waits for the commit.")]
SignOnlyOpt = Annotated[bool, typer.Option("--sign-only", help="Sign offline; write the tx to --out.")]
SignedOutOpt = Annotated[Path | None, typer.Option("--out", help="File for --sign-only.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the decoded tx; send nothing.")]
CurrencyOpt = Annotated[str | None, typer.Option(
    "--currency", metavar="CODE[:EXPONENT]",
    help="Offline (--sign-only, --dry-run): the chain's currency (default EUR:6); online the node says.")]


def read_passphrase(passphrase_file: Path | None, *, prompt: str, confirm: bool) -> str:
    """The passphrase from --passphrase-file, $GRIDLEDGER_PASSPHRASE, or a hidden prompt."""
    if passphrase_file is not None:
        return _first_line(passphrase_file)
    from_env = os.environ.get(PASSPHRASE_ENV)
    if from_env:
        return from_env
    answer: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    return answer


def load_key(name: str, keyring_dir: Path, passphrase_file: Path | None) -> SigningKey:
    """Unlock a key for signing (KeystoreError if it is unknown, corrupt or the passphrase is wrong)."""
    store = Keystore(keyring_dir.expanduser())
    store.show(name)  # an unknown or corrupt key fails before the passphrase is asked
    return store.load(name, read_passphrase(passphrase_file, prompt=f"Passphrase for {name!r}", confirm=False))


def _first_line(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise UsageError(f"passphrase file {path} is not UTF-8 text") from None
    if not lines or not lines[0]:
        raise UsageError(f"passphrase file {path} is empty")
    return lines[0]

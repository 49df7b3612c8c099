"""`gridledger keys`: the local encrypted keyring (account and meter keys).

Passphrases come from, in order: ``--passphrase-file FILE`` (its first line),
the ``GRIDLEDGER_PASSPHRASE`` environment variable, or a hidden interactive
prompt (asked twice when a key is created). Private keys are printed only by
an explicit ``keys export``.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cli.options import DEFAULT_KEYRING, KeyringDirOpt, OutputOpt, PassphraseFileOpt, read_passphrase
from cli.output import USAGE, Format, Output, UsageError, error, note
from node.client.keystore import (
    FAST_ENV,
    KeyExists,
    KeyNotFound,
    Keystore,
    fast_kdf_requested,
    read_import_file,
    validate_name,
    write_private,
)

LIST_COLUMNS = ("name", "kind", "account", "pubkey", "created")


class Kind(StrEnum):
    account = "account"
    meter = "meter"


NameArg = Annotated[str, typer.Argument(
    metavar="NAME", help="Key name: up to 64 of a-z 0-9 . _ - (starting with a letter or digit).", show_default=False)]

keys_app = typer.Typer(help="Manage the local encrypted keyring (account and meter keys).", no_args_is_help=True)


# --- helpers ------------------------------------------------------------------


def _store(keyring_dir: Path) -> Keystore:
    return Keystore(keyring_dir.expanduser())


def _require_absent(store: Keystore, name: str) -> None:
    """Fail before prompting for a passphrase that could not be used anyway."""
    if store.exists(name):
        raise KeyExists(name, store.directory)


def _new_passphrase(passphrase_file: Path | None, name: str) -> str:
    passphrase = read_passphrase(passphrase_file, prompt=f"New passphrase for {name!r}", confirm=True)
    if fast_kdf_requested():
        note(f"warning: {FAST_ENV}=1 is for tests only; key {name!r} is protected by a weak KDF")
    return passphrase


# --- commands --------------------------------------------------------------------
@keys_app.command("add")
def add(
    name: NameArg,
    kind: Annotated[Kind, typer.Option(help="What the key signs for: a participant account or a meter.")]
    = Kind.account,
    keyring_dir: KeyringDirOpt = DEFAULT_KEYRING,
    passphrase_file: PassphraseFileOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Generate a new key and store it encrypted under a passphrase.

    Example: gridledger keys add alice --kind account
    """
    store = _store(keyring_dir)
    _require_absent(store, validate_name(name))
    info = store.generate(name, _new_passphrase(passphrase_file, name), kind.value)
    Output(output.value).record(info.record())


@keys_app.command("list")
def list_keys(keyring_dir: KeyringDirOpt = DEFAULT_KEYRING, output: OutputOpt = Format.table) -> None:
    """List the keys in the keyring (public information only).

    Example: gridledger keys list --output json
    """
    store = _store(keyring_dir)
    keys, problems = store.scan()
    if not keys and not problems:
        note(f"no keys in {store.directory}")
    Output(output.value).records([key.record() for key in keys], columns=LIST_COLUMNS)
    for problem in problems:
        error(str(problem))
    if problems:
        raise typer.Exit(USAGE)


@keys_app.command("show")
def show(name: NameArg, keyring_dir: KeyringDirOpt = DEFAULT_KEYRING, output: OutputOpt = Format.table) -> None:
    """Show one key's public information: account id, public key, KDF parameters.

    Example: gridledger keys show alice
    """
    info = _store(keyring_dir).show(name)
    Output(output.value).record(info.record())


@keys_app.command("import")
def import_key(
    name: NameArg,
    file: Annotated[Path, typer.Argument(
        metavar="FILE", help="A `keys export` document, or a file holding a 32-byte seed as 64 hex characters.")],
    kind: Annotated[Kind | None, typer.Option(
        help="Kind of the key (default: as recorded in an export file, else account).")] = None,
    keyring_dir: KeyringDirOpt = DEFAULT_KEYRING,
    passphrase_file: PassphraseFileOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Import a private key and store it encrypted under a new passphrase.

    Example: gridledger keys import alice ./alice-export.json
    """
    store = _store(keyring_dir)
    _require_absent(store, validate_name(name))
    read_import_file(file)  # a bad file fails before the passphrase prompt
    info = store.import_file(name, _new_passphrase(passphrase_file, name), file, kind.value if kind else None)
    note(f"imported {name!r}; {file} still holds the unencrypted key: delete it once it is no longer needed")
    Output(output.value).record(info.record())


@keys_app.command("export")
def export(
    name: NameArg,
    out: Annotated[Path | None, typer.Option(
        "--out", metavar="FILE", help="Write to FILE (created with mode 0600, never overwritten) instead of stdout.")]
    = None,
    keyring_dir: KeyringDirOpt = DEFAULT_KEYRING,
    passphrase_file: PassphraseFileOpt = None,
    output: OutputOpt = Format.table,
) -> None:
    """Export the DECRYPTED private key (seed) as a JSON document that `keys import` reads.

    Anyone holding the result controls the key. Without --out the document goes to
    stdout whatever --output says; with --out, --output formats the confirmation.

    Example: gridledger keys export alice --out alice-export.json
    """
    store = _store(keyring_dir)
    store.show(name)  # an unknown or corrupt key fails before the passphrase is asked
    passphrase = read_passphrase(passphrase_file, prompt=f"Passphrase for {name!r}", confirm=False)
    document = store.export(name, passphrase)
    data = json.dumps(document, sort_keys=True, indent=2) + "\n"
    if out is None:
        typer.echo(data, nl=False)
        return
    _write_export(out, data)
    note(f"wrote the unencrypted private key of {name!r} to {out}: keep it safe, delete it when done")
    Output(output.value).record({"name": name, "file": str(out), "account": document["account"],
                                 "pubkey": document["pubkey"]})


def _write_export(path: Path, data: str) -> None:
    try:
        write_private(path, data.encode("utf-8"))
    except FileExistsError:
        raise UsageError(f"{path} already exists; refusing to overwrite it") from None


@keys_app.command("delete")
def delete(
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    keyring_dir: KeyringDirOpt = DEFAULT_KEYRING,
    output: OutputOpt = Format.table,
) -> None:
    """Delete a key file for good (it cannot be recovered without an export).

    Example: gridledger keys delete alice --yes
    """
    store = _store(keyring_dir)
    if not store.exists(name):  # exists(), not show(): a corrupt file must stay deletable
        raise KeyNotFound(name, store.directory)
    if not yes and not typer.confirm(f"Delete key {name!r} from {store.directory}? This cannot be undone"):
        raise UsageError(f"key {name!r} not deleted")
    store.delete(name)
    Output(output.value).record({"name": name, "deleted": True})

"""The client's config file: defaults for options that would otherwise be typed on every command.

``gridledger config set node http://10.0.0.5:26657`` writes ``~/.gridledger/client.toml``
(or ``$GRIDLEDGER_CONFIG``). A value there is the default of its option; the
environment variable and the command line still win, in that order:

    command line  >  environment (GRIDLEDGER_NODE, ...)  >  config file  >  built-in default
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path

import tomlkit

CONFIG_ENV = "GRIDLEDGER_CONFIG"
DEFAULT_PATH = Path("~/.gridledger/client.toml")
KEYS = {"node": "GRIDLEDGER_NODE", "keyring-dir": "GRIDLEDGER_KEYRING_DIR"}
"""Settable keys and the environment variable each one stands in for."""


class ConfigError(Exception):
    """An unknown key, a bad value, or a config file that is not TOML."""


def path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_PATH).expanduser()


def read(file: Path | None = None) -> dict[str, str]:
    file = file or path()
    if not file.exists():
        return {}
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file} is not a TOML file: {exc}") from exc
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise ConfigError(f"{file}: unknown key(s) {', '.join(unknown)}; known: {', '.join(KEYS)}")
    return {key: str(value) for key, value in data.items()}


def check_key(key: str) -> str:
    if key not in KEYS:
        raise ConfigError(f"unknown key {key!r}; known: {', '.join(KEYS)}")
    return key


def write(values: dict[str, str], file: Path | None = None) -> Path:
    file = file or path()
    file.parent.mkdir(parents=True, exist_ok=True)
    document = tomlkit.document()
    for key in sorted(values):
        document[key] = values[key]
    file.write_text(tomlkit.dumps(document), encoding="utf-8")
    return file


def set_value(key: str, value: str) -> Path:
    if key == "node":
        from node.rpc import RpcError, normalize_url

        try:
            value = normalize_url(value)
        except RpcError as exc:
            raise ConfigError(str(exc)) from exc
    values = read()
    values[check_key(key)] = value
    return write(values)


def unset(key: str) -> Path:
    values = read()
    values.pop(check_key(key), None)
    return write(values)


@contextlib.contextmanager
def defaults() -> Iterator[None]:
    """Within the block, the file's values are defaults: each sets its environment variable unless that is set.

    The environment is put back afterwards, so a program that runs many commands (or a test) keeps its own.
    """
    values = read()
    added = [KEYS[key] for key in values if KEYS[key] not in os.environ]
    try:
        for key, value in values.items():
            os.environ.setdefault(KEYS[key], value)
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)

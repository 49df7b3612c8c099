"""The dashboard's options, from the command line or from a node home's ``[dashboard]`` block.

A validator serves the dashboard when its home's ``config/gridledger.toml``
holds a ``[dashboard]`` table (docs/dashboard.md); the node supervisor then
runs ``python -m dashboard --home HOME --node <its RPC>``::

    [dashboard]
    listen = "127.0.0.1:8080"        # default
    nodes = ["http://127.0.0.1:26667"]  # more nodes for the app-hash comparison (optional)
    roster = "roster.toml"           # names for participants (optional; relative to the home)
    results = "/srv/results"         # experiment runs to show (optional)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from node import cometbft

DEFAULT_LISTEN = "127.0.0.1:8080"
SECTION = "dashboard"


class ConfigError(Exception):
    """An option or the node home's block is invalid: nothing is started."""


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    def url(self, port: int | None = None) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port if port is None else port}/"

    @property
    def loopback(self) -> bool:
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host == "localhost"


def parse_listen(text: str) -> Listen:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6); port 0 picks a free one."""
    host, sep, port_text = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port_text.isdigit() or int(port_text) > 65535:
        raise ConfigError(f"listen address {text!r} is not HOST:PORT (e.g. {DEFAULT_LISTEN})")
    return Listen(host, int(port_text))


def check_node_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"node {url!r} is not an http(s) URL of a CometBFT RPC (e.g. http://127.0.0.1:26657)")
    return url.rstrip("/")


@dataclass(frozen=True)
class DashboardConfig:
    nodes: tuple[str, ...]
    """CometBFT RPC URLs; the first is read and followed, all are compared on the Network page."""
    listen: Listen
    results: Path | None = None
    roster: Path | None = None

    @classmethod
    def build(cls, nodes: Sequence[str], listen: str = DEFAULT_LISTEN, results: Path | None = None,
              roster: Path | None = None) -> DashboardConfig:
        if not nodes:
            raise ConfigError("give at least one --node")
        checked = tuple(dict.fromkeys(check_node_url(url) for url in nodes))
        if results is not None and not results.is_dir():
            raise ConfigError(f"results directory {results} does not exist")
        if roster is not None and not roster.is_file():
            raise ConfigError(f"roster {roster} does not exist")
        return cls(nodes=checked, listen=parse_listen(listen), results=results, roster=roster)


def home_block(home: Path) -> Mapping[str, Any] | None:
    """The ``[dashboard]`` table of a node home's gridledger.toml, or None when it has none."""
    try:
        settings = cometbft.read_node_settings(home)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the node settings of {home}: {exc}") from exc
    block = settings.get(SECTION)
    if block is None:
        return None
    if not isinstance(block, dict):
        raise ConfigError(f"[{SECTION}] in {home / cometbft.NODE_SETTINGS} must be a table")
    return block


def from_home(home: Path, node_url: str, listen: str | None = None, nodes: Sequence[str] = (),
              results: Path | None = None, roster: Path | None = None) -> DashboardConfig:
    """The home's ``[dashboard]`` block, with any option given on the command line taking precedence."""
    block = home_block(home) or {}

    def path(key: str, given: Path | None) -> Path | None:
        if given is not None:
            return given
        value = block.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ConfigError(f"[{SECTION}] {key} must be a path (text)")
        return home / value

    extra = block.get("nodes", [])
    if not isinstance(extra, list) or not all(isinstance(url, str) for url in extra):
        raise ConfigError(f"[{SECTION}] nodes must be a list of RPC URLs")
    listen_text = listen or block.get("listen", DEFAULT_LISTEN)
    if not isinstance(listen_text, str):
        raise ConfigError(f"[{SECTION}] listen must be HOST:PORT (text)")
    return DashboardConfig.build([node_url, *nodes, *extra], listen_text, path("results", results),
                                 path("roster", roster))

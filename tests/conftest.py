from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from node import cometbft


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def tools_bin() -> Path:
    path = cometbft.tools_bin()
    if not (path / "cometbft").exists() or not (path / "abci-cli").exists():
        pytest.fail(f"pinned CometBFT binaries missing in {path}: run `make setup`")
    return path


@pytest.fixture
def ports() -> Iterator[list[int]]:
    yield [free_port() for _ in range(3)]

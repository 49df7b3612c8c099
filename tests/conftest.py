from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.ports import free_port
from node import cometbft


@pytest.fixture
def tools_bin() -> Path:
    path = cometbft.tools_bin()
    if not (path / "cometbft").exists() or not (path / "abci-cli").exists():
        pytest.fail(f"pinned CometBFT binaries missing in {path}: run `make setup`")
    return path


@pytest.fixture
def ports() -> Iterator[list[int]]:
    yield [free_port() for _ in range(3)]

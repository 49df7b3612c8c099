from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from lab.ports import free_port
from node import cometbft
from tests.harness import Chain
from tests.market_harness import market_chain

# Hypothesis's defaults time each example (a 200 ms deadline, a health check on slow data generation):
# on a loaded CI box that fails correct code. A test's own @settings still override this per test.
settings.register_profile("gridledger", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("gridledger")


@pytest.fixture
def tools_bin() -> Path:
    path = cometbft.tools_bin()
    if not (path / "cometbft").exists() or not (path / "abci-cli").exists():
        pytest.fail(f"pinned CometBFT binaries missing in {path}: run `make setup`")
    return path


@pytest.fixture
def ports() -> Iterator[list[int]]:
    yield [free_port() for _ in range(3)]


@pytest.fixture
def chain(request: pytest.FixtureRequest) -> Chain:
    """An in-process chain (tests/harness.py) after its first block.

    In a module marked ``pytestmark = pytest.mark.market(**params)`` it is the market
    harness's chain (tests/market_harness.py: fees, meters, funded traders) with ``params``.
    A module that needs more (an open proposal, a resting order) extends it with its own
    ``chain`` fixture taking this one.
    """
    market = request.node.get_closest_marker("market")
    if market is not None:
        return market_chain(*market.args, **market.kwargs)
    chain = Chain()
    chain.block()
    return chain

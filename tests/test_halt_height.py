"""The halt height of an upgrade (node/app_main.py HaltAfterCommit): nothing past the agreed block."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from abci_app.pb.tendermint.abci import types_pb2 as abci
from node.app_main import EXIT_HALTED, HALT_LINE, HaltAfterCommit, Halted
from tests.harness import Chain


def halting_chain(halt: int) -> tuple[Chain, HaltAfterCommit]:
    chain = Chain()
    ledger = chain.app
    wrapper = HaltAfterCommit(ledger, halt, lambda: ledger.committed.height)
    chain.app = wrapper  # type: ignore[assignment]
    return chain, wrapper


def test_basic_blocks_up_to_the_halt_height_run_as_before(capsys: pytest.CaptureFixture[str]) -> None:
    chain, wrapper = halting_chain(3)
    reference = Chain()
    for _ in range(2):
        assert chain.block([]).app_hash == reference.block([]).app_hash
    assert not wrapper.halted and HALT_LINE not in capsys.readouterr().out
    assert chain.block([]).app_hash == reference.block([]).app_hash
    assert wrapper.halted
    assert f"{HALT_LINE}: block 3 is committed (halt height 3)" in capsys.readouterr().out


def test_invalid_nothing_past_the_halt_height() -> None:
    chain, wrapper = halting_chain(1)
    chain.block([])
    assert wrapper.prepare_proposal(abci.RequestPrepareProposal(txs=[b"tx"], max_tx_bytes=100, height=2)).txs == []
    verdict = wrapper.process_proposal(abci.RequestProcessProposal(height=2))
    assert verdict.status == abci.ResponseProcessProposal.REJECT
    with pytest.raises(Halted, match="block 2 is past the halt height 1"):
        wrapper.finalize_block(abci.RequestFinalizeBlock(height=2))
    assert wrapper.info(abci.RequestInfo()).last_block_height == 1  # queries and Info still answer


def test_invalid_start_at_the_halt_height(tmp_path: Path) -> None:
    """A store at the halt height: the app refuses to serve and says what to do."""
    from abci_app.app import LedgerApplication
    from abci_app.ledger.store import LevelDBBackend

    db = tmp_path / "app"
    chain = Chain(backend=LevelDBBackend(db))
    chain.block([])
    chain.block([])
    assert isinstance(chain.app, LedgerApplication)
    chain.app.close()
    result = subprocess.run([sys.executable, "-m", "node.app_main", "--db", str(db), "--address",
                             "tcp://127.0.0.1:1", "--halt-height", "2", "--snapshot-interval", "0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == EXIT_HALTED
    assert "the state is at height 2, the halt height is 2" in result.stdout
    assert "remove [upgrade] halt_height" in result.stdout


def test_invalid_negative_halt_height(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "node.app_main", "--db", str(tmp_path / "app"),
                             "--halt-height", "-1"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--halt-height must be 0" in result.stderr


def test_basic_supervisor_and_app_agree_on_the_halt_signals() -> None:
    from node import supervisor

    assert supervisor.HALT_LINE == HALT_LINE
    assert supervisor.APP_EXIT_HALTED == EXIT_HALTED


def test_basic_info_reports_the_app_protocol_version() -> None:
    from abci_app.app import APP_PROTOCOL_VERSION
    from node.metrics import build_labels

    info = Chain().app.info(abci.RequestInfo())
    assert info.app_version == APP_PROTOCOL_VERSION == int(build_labels()["app_version"])
    assert info.version == build_labels()["version"] and info.data == "gridledger"

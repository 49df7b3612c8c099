"""Block retention: Commit's retain_height lets CometBFT prune old blocks (abci_app/retention.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from abci_app.pb.tendermint.abci import types_pb2 as abci
from abci_app.retention import DEFAULT_RETAIN_BLOCKS, MIN_RETAIN_BLOCKS, Retention, RetentionError
from node.supervisor import REINDEX_BLOCKS
from tests.harness import Chain


def commit_answers(chain: Chain, blocks: int) -> list[int]:
    """The retain_height of each Commit while ``blocks`` blocks are finalized and committed."""
    answers = []
    for _ in range(blocks):
        chain.height += 1
        chain.time += 5
        req = abci.RequestFinalizeBlock(height=chain.height)
        req.time.seconds = chain.time
        chain.app.finalize_block(req)
        answers.append(chain.app.commit(abci.RequestCommit()).retain_height)
    return answers


def test_basic_commit_keeps_the_newest_blocks() -> None:
    chain = Chain()
    chain.app.retention = Retention(blocks=64)
    answers = commit_answers(chain, 70)
    # Nothing to prune while at most 64 blocks exist; then always the newest 64.
    assert answers[:64] == [0] * 64
    assert answers[64:] == [height - 63 for height in range(65, 71)]


def test_basic_default_keeps_the_evidence_window() -> None:
    retention = Retention()
    assert retention.blocks == DEFAULT_RETAIN_BLOCKS == 100_000
    assert retention.retain_height(100_000) == 0
    assert retention.retain_height(100_001) == 2
    assert retention.retain_height(250_000) == 150_001


def test_basic_zero_keeps_every_block() -> None:
    assert Retention(blocks=0, snapshot_interval=10, snapshot_keep=2).retain_height(10**9) == 0


def test_basic_blocks_since_the_oldest_snapshot_are_kept() -> None:
    retention = Retention(blocks=100, snapshot_interval=1000, snapshot_keep=2)
    for height in range(2001, 6001, 7):
        snapshots = [h for h in range(1000, height + 1, 1000)][-2:]
        lowest = retention.retain_height(height)
        # Every block after the oldest snapshot kept is still there to block-sync from.
        assert lowest <= snapshots[0] + 1, height
        assert lowest == height - 1999


def test_basic_app_default_never_prunes_a_short_chain() -> None:
    chain = Chain()
    assert set(commit_answers(chain, 5)) == {0}


@pytest.mark.parametrize("blocks", [1, 2, MIN_RETAIN_BLOCKS - 1, -5])
def test_invalid_retention_below_the_minimum(blocks: int) -> None:
    with pytest.raises(RetentionError, match="at least 64"):
        Retention(blocks=blocks)


def test_invalid_negative_snapshot_settings() -> None:
    with pytest.raises(RetentionError):
        Retention(blocks=100, snapshot_interval=-1, snapshot_keep=1)


def test_basic_minimum_covers_the_supervisor_reindex() -> None:
    assert MIN_RETAIN_BLOCKS >= REINDEX_BLOCKS


def test_invalid_retain_blocks_refused_at_start(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "node.app_main", "--db", str(tmp_path / "app"),
                             "--retain-blocks", "10"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "retain_blocks must be 0 (keep every block) or at least 64, got 10" in result.stderr


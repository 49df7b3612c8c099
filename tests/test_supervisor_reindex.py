"""Before CometBFT starts, the supervisor re-indexes the events of the app's newest blocks.

CometBFT indexes transactions asynchronously after a commit; the fault suite
(tests/test_faults_e2e.py) found that a stop at the wrong moment loses index
entries for good, so `/tx?hash=` no longer finds committed transactions.
"""

from __future__ import annotations

import sys
from pathlib import Path

from node import supervisor
from node.supervisor import NodeSpec, Supervisor
from tests.test_supervisor import CONSENSUS, Recorder

APP = """
import signal, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print(f"ABCI server ready on tcp://127.0.0.1:1 at height {sys.argv[1]}", flush=True)
while True:
    signal.pause()
"""
# A stand-in `cometbft reindex-event`: records its arguments, answers as CometBFT does.
REINDEX = """
import pathlib, sys
pathlib.Path(sys.argv[1]).write_text(" ".join(sys.argv[3:]))
print("start re-indexing events:")
print("event re-index finished" if sys.argv[2] == "ok" else "event re-index failed:  height is not available")
"""


class ReindexSpec(NodeSpec):
    def __init__(self, home: Path, height: int, outcome: str = "ok") -> None:
        super().__init__(home=home, abci_address="tcp://127.0.0.1:1")
        self.height = height
        self.outcome = outcome
        self.record = home / "reindex-args"

    def app_argv(self) -> list[str]:
        return [sys.executable, "-c", APP, str(self.height)]

    def cometbft_argv(self) -> list[str]:
        return [sys.executable, "-c", CONSENSUS]

    def reindex_argv(self, start: int, end: int) -> list[str] | None:
        return [sys.executable, "-c", REINDEX, str(self.record), self.outcome, "--start-height", str(start),
                "--end-height", str(end)]


def run(spec: ReindexSpec) -> Recorder:
    log = Recorder()
    sup = Supervisor(spec, sink=log, grace=10)
    sup.start(ready_timeout=20)
    log.wait_for("consensus running")
    sup.request_stop()
    assert sup.wait() == supervisor.EXIT_OK
    return log


def test_basic_newest_blocks_reindexed_before_cometbft_starts(tmp_path: Path) -> None:
    spec = ReindexSpec(tmp_path, height=100)
    log = run(spec)
    first = 100 - supervisor.REINDEX_BLOCKS + 1
    assert spec.record.read_text() == f"--start-height {first} --end-height 100"
    done = log.index(f"re-indexed CometBFT's events of blocks {first}..100")
    assert done < log.index("starting CometBFT") < log.index("consensus running")


def test_basic_short_chain_from_block_one(tmp_path: Path) -> None:
    spec = ReindexSpec(tmp_path, height=3)
    run(spec)
    assert spec.record.read_text() == "--start-height 1 --end-height 3"


def test_basic_fresh_chain_needs_none(tmp_path: Path) -> None:
    spec = ReindexSpec(tmp_path, height=0)
    log = run(spec)
    assert not spec.record.exists()
    assert not any("re-index" in line for line in log.lines)


def test_invalid_reindex_failure_is_logged_and_cometbft_starts(tmp_path: Path) -> None:
    log = run(ReindexSpec(tmp_path, height=50, outcome="fail"))
    line = log.lines[log.index("re-indexing blocks 1..50 failed")]
    assert "height is not available" in line and "starting CometBFT anyway" in line


def test_basic_real_cometbft_reindex_argv(tmp_path: Path) -> None:
    """The real command line, and none for a home whose indexer is off."""
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    (home / "config" / "config.toml").write_text('[tx_index]\nindexer = "kv"\n')
    argv = NodeSpec(home=home, abci_address="tcp://127.0.0.1:1").reindex_argv(5, 9)
    assert argv is not None and argv[0].endswith("cometbft")
    assert argv[1:] == ["reindex-event", "--home", str(home), "--start-height", "5", "--end-height", "9"]
    (home / "config" / "config.toml").write_text('[tx_index]\nindexer = "null"\n')
    assert NodeSpec(home=home, abci_address="tcp://127.0.0.1:1").reindex_argv(5, 9) is None

"""node/backup.py: a backup's app state is whole (its tree reproduces its app hash) and is the chain's."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import plyvel
import pytest

from abci_app.ledger.modules.bank import Transfer
from abci_app.ledger.store import META_RESTORING, LevelDBBackend
from node import backup
from tests.harness import Chain


def chain_on_disk(db: Path, blocks: int = 3) -> Chain:
    chain = Chain(backend=LevelDBBackend(db))
    for amount in range(1, blocks + 1):
        chain.block([chain.sign("alice", Transfer(recipient=chain.id("bob"), amount=amount, memo=""))])
    return chain


class FakeRpc:
    """Answers ``header`` like CometBFT: the app hash of block h+1 is the state after block h."""

    def __init__(self, hashes: dict[int, bytes]) -> None:
        self.hashes = hashes

    def call(self, method: str, **params: Any) -> Any:
        assert method == "header"
        height = int(params["height"])
        if height not in self.hashes:
            raise backup.RpcError("header: Internal error height 9 must be less than or equal to the current "
                                  "blockchain height 8")
        return {"header": {"app_hash": self.hashes[height].hex().upper()}}

    def close(self) -> None:
        pass


def test_basic_a_copy_is_whole_and_the_chains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    chain = chain_on_disk(tmp_path / "app")
    app_hash = chain.app.committed.app_hash
    chain.app.close()
    state = backup.read_app_state(tmp_path / "app")
    assert (state.height, state.app_hash, state.whole) == (3, app_hash, True)
    monkeypatch.setattr(backup, "CometRpc", lambda url: FakeRpc({4: app_hash}))
    assert backup.verify(tmp_path / "app", "http://node") == backup.EXIT_OK
    assert "the chain agrees: block 4" in capsys.readouterr().out


def test_basic_newest_state_cannot_be_compared_yet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    chain_on_disk(tmp_path / "app").app.close()
    monkeypatch.setattr(backup, "CometRpc", lambda url: FakeRpc({}))
    assert backup.verify(tmp_path / "app", "http://node") == backup.EXIT_OK
    assert "has no block 4 yet" in capsys.readouterr().out


def test_invalid_another_chains_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    chain_on_disk(tmp_path / "app").app.close()
    monkeypatch.setattr(backup, "CometRpc", lambda url: FakeRpc({4: b"\x01" * 32}))
    assert backup.verify(tmp_path / "app", "http://node") == backup.EXIT_MISMATCH
    assert "NOT THIS CHAIN'S STATE" in capsys.readouterr().out


def test_invalid_a_changed_value_is_found(tmp_path: Path) -> None:
    chain_on_disk(tmp_path / "app").app.close()
    db = plyvel.DB(str(tmp_path / "app"))
    key, value = next(iter(db.iterator(start=b"a")))  # a state entry (the META keys sort elsewhere)
    db.put(key, value + b"\x00")
    db.close()
    state = backup.read_app_state(tmp_path / "app")
    assert not state.whole
    assert backup.verify(tmp_path / "app", None) == backup.EXIT_MISMATCH


@pytest.mark.parametrize("case", ["missing", "empty dir", "restoring", "no height"])
def test_invalid_not_an_app_state(tmp_path: Path, case: str) -> None:
    db = tmp_path / "app"
    if case == "empty dir":
        db.mkdir()
    elif case == "restoring":
        chain_on_disk(db).app.close()
        handle = plyvel.DB(str(db))
        handle.put(META_RESTORING, b"1")
        handle.close()
    elif case == "no height":
        plyvel.DB(str(db), create_if_missing=True).close()
    with pytest.raises(backup.BackupError):
        backup.read_app_state(db)
    assert backup.verify(db, None) == backup.EXIT_UNREADABLE


def test_invalid_the_live_node_is_refused_not_waited_for(tmp_path: Path) -> None:
    chain = chain_on_disk(tmp_path / "app")  # still open, as by a running app
    with pytest.raises(backup.BackupError, match="cannot be opened"):
        backup.read_app_state(tmp_path / "app")
    chain.app.close()


def test_basic_command_line(tmp_path: Path) -> None:
    chain_on_disk(tmp_path / "app").app.close()
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "app", copy)
    result = subprocess.run([sys.executable, "-m", "node.backup", "--db", str(copy)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "height 3" in result.stdout and "reproduces its app hash" in result.stdout

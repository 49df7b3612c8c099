"""A node's own settings (config/gridledger.toml of its home) reach the app; the reference file is the code."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from abci_app.ledger import snapshots
from abci_app.retention import DEFAULT_RETAIN_BLOCKS
from node.cometbft import REPO_ROOT, Ports
from node.supervisor import NodeSpec

REFERENCE = REPO_ROOT / "config" / "gridledger.toml"


def home_with(tmp_path: Path, settings: str) -> Path:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text('proxy_app = "tcp://127.0.0.1:1"\n')
    (tmp_path / "config" / "gridledger.toml").write_text(settings)
    return tmp_path


def test_basic_home_settings_reach_the_app(tmp_path: Path) -> None:
    home = home_with(tmp_path, "[pruning]\nretain_blocks = 5000\n[upgrade]\nhalt_height = 77\n")
    argv = NodeSpec.from_home(home).app_argv()
    assert argv[argv.index("--retain-blocks") + 1] == "5000"
    assert argv[argv.index("--halt-height") + 1] == "77"
    plain = NodeSpec(home=tmp_path, abci_address="tcp://127.0.0.1:1").app_argv()
    assert "--retain-blocks" not in plain and "--halt-height" not in plain


def test_basic_reference_file_holds_the_defaults() -> None:
    reference = tomllib.loads(REFERENCE.read_text())
    assert reference["snapshots"] == {"interval": snapshots.DEFAULT_INTERVAL, "keep": snapshots.DEFAULT_KEEP,
                                      "chunk_bytes": snapshots.DEFAULT_CHUNK_BYTES}
    assert reference["pruning"] == {"retain_blocks": DEFAULT_RETAIN_BLOCKS}
    assert reference["upgrade"] == {"halt_height": 0}
    assert reference["app_metrics"] == f"127.0.0.1:{Ports.from_base(26650).app_metrics}"


def test_basic_reference_file_as_a_home_gives_the_default_app(tmp_path: Path) -> None:
    home = home_with(tmp_path, "")
    shutil.copy(REFERENCE, home / "config" / "gridledger.toml")
    argv = NodeSpec.from_home(home).app_argv()
    assert argv[argv.index("--retain-blocks") + 1] == str(DEFAULT_RETAIN_BLOCKS)
    assert "--halt-height" not in argv  # 0: never


def test_basic_one_log_level_for_the_node(tmp_path: Path) -> None:
    from node.supervisor import log_levels

    assert log_levels("warn") == ("error", "WARNING")
    assert log_levels("INFO") == ("info", "INFO")
    comet, app = log_levels("warn")
    spec = NodeSpec(home=tmp_path, abci_address="tcp://127.0.0.1:1", log_level=comet, app_log_level=app)
    assert spec.app_argv()[-2:] == ["--log-level", "WARNING"]
    assert spec.cometbft_argv()[-2:] == ["--log_level", "error"]
    with pytest.raises(ValueError, match="not one of debug, info, warn, error"):
        log_levels("verbose")


def test_basic_operators_guide_states_the_retention_of_the_code() -> None:
    from abci_app.retention import MIN_RETAIN_BLOCKS

    guide = (REPO_ROOT / "docs" / "operators.md").read_text()
    assert f"retain_blocks = {DEFAULT_RETAIN_BLOCKS}     # default" in guide
    assert f"else at least {MIN_RETAIN_BLOCKS}" in guide
    assert "| 14 | the app committed its halt height" in guide

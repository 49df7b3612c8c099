"""The pinned CometBFT binaries and the homes they run in."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import tomlkit

REPO_ROOT = Path(__file__).resolve().parents[1]


def pinned_version() -> str:
    """The CometBFT version pinned in config/versions.env."""
    for line in (REPO_ROOT / "config" / "versions.env").read_text().splitlines():
        if line.startswith("COMETBFT_VERSION="):
            return line.split("=", 1)[1].strip()
    raise RuntimeError("config/versions.env does not pin COMETBFT_VERSION")


def tools_bin() -> Path:
    """Where `make` installs the pinned binaries (override: GRIDLEDGER_TOOLS_BIN)."""
    override = os.environ.get("GRIDLEDGER_TOOLS_BIN")
    if override:
        return Path(override)
    return REPO_ROOT / ".tools" / f"cometbft-{pinned_version()}" / "bin"


def binary(name: str = "cometbft") -> Path:
    path = tools_bin() / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `make setup` to build the pinned CometBFT")
    return path


def init_home(home: Path) -> None:
    """Create a CometBFT home (keys, config, genesis) unless one exists."""
    if (home / "config" / "genesis.json").exists():
        return
    subprocess.run([str(binary()), "init", "--home", str(home)], check=True, capture_output=True)


def configure(home: Path, settings: dict[str, dict[str, Any]]) -> None:
    """Set values in config.toml: ``{"consensus": {"timeout_commit": "1s"}, "": {"moniker": "x"}}``."""
    path = home / "config" / "config.toml"
    doc = tomlkit.parse(path.read_text())
    for section, values in settings.items():
        table: Any = doc if section == "" else doc[section]
        for key, value in values.items():
            if key not in table:
                raise KeyError(f"config.toml has no setting {section}.{key}")
            table[key] = value
    path.write_text(tomlkit.dumps(doc))


def set_genesis(home: Path, chain_id: str, app_state: dict[str, Any], genesis_time: str | None = None) -> None:
    """Write the chain id and gridledger's app_state into genesis.json."""
    path = home / "config" / "genesis.json"
    genesis = json.loads(path.read_text())
    genesis["chain_id"] = chain_id
    genesis["app_state"] = app_state
    if genesis_time is not None:
        genesis["genesis_time"] = genesis_time
    path.write_text(json.dumps(genesis, indent=2) + "\n")


def validator_pubkey(home: Path) -> str:
    """Base64 Ed25519 consensus public key of the home's validator."""
    key = json.loads((home / "config" / "priv_validator_key.json").read_text())
    value: str = key["pub_key"]["value"]
    return value


def node_id(home: Path) -> str:
    out = subprocess.run([str(binary()), "show-node-id", "--home", str(home)], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()

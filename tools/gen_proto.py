"""Generate the Python protobuf classes of CometBFT's ABCI from the pinned module.

The .proto files come from the Go module cache (``go mod download``), so the
messages always match the pinned CometBFT release. The output package is
``abci_app.pb``; it is rebuilt at set-up and never committed.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

# The ABCI messages and everything they import.
PROTO_FILES = (
    "tendermint/abci/types.proto",
    "tendermint/crypto/proof.proto",
    "tendermint/crypto/keys.proto",
    "tendermint/types/params.proto",
    "tendermint/types/validator.proto",
    "gogoproto/gogo.proto",
)
# protoc emits absolute imports (``from tendermint.crypto import ...``); the
# generated tree lives inside our package, so those become package imports.
TOP_LEVEL_PACKAGES = ("tendermint", "gogoproto")


def module_dir(module: str, version: str) -> Path:
    """Download ``module@version`` into the module cache and return its directory."""
    out = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    info = json.loads(out)
    if "Error" in info:
        raise SystemExit(f"go mod download {module}@{version}: {info['Error']}")
    return Path(info["Dir"])


def required_version(go_mod: Path, module: str) -> str:
    """The version of ``module`` that CometBFT's go.mod requires."""
    match = re.search(rf"^\s*{re.escape(module)}\s+(v\S+)", go_mod.read_text(), re.M)
    if match is None:
        raise SystemExit(f"{module} not found in {go_mod}")
    return match.group(1)


def rewrite_imports(out: Path, package: str) -> None:
    pattern = re.compile(rf"^(from|import) ({'|'.join(TOP_LEVEL_PACKAGES)})(\.|\s)", re.M)
    for path in sorted(out.rglob("*.py*")):
        text = path.read_text()
        path.write_text(pattern.sub(rf"\1 {package}.\2\3", text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--version", required=True, help="CometBFT version, e.g. v0.38.26")
    parser.add_argument("--out", required=True, type=Path, help="output package directory")
    args = parser.parse_args()

    import grpc_tools
    from grpc_tools import protoc

    comet = module_dir("github.com/cometbft/cometbft", args.version)
    gogo_version = required_version(comet / "go.mod", "github.com/cosmos/gogoproto")
    gogo = module_dir("github.com/cosmos/gogoproto", gogo_version)
    well_known = Path(grpc_tools.__file__).parent / "_proto"

    out: Path = args.out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    argv = [
        "grpc_tools.protoc",
        f"-I{comet / 'proto'}",
        f"-I{gogo}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        *PROTO_FILES,
    ]
    if protoc.main(argv) != 0:
        raise SystemExit("protoc failed")

    package = ".".join(out.resolve().relative_to(Path.cwd().resolve()).parts)
    rewrite_imports(out, package)
    for directory in [out, *sorted(p for p in out.rglob("*") if p.is_dir())]:
        (directory / "__init__.py").touch()
    (out / "VERSION").write_text(f"{args.version}\n")
    print(f"generated ABCI protobuf classes for CometBFT {args.version} in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()

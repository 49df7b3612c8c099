"""The packages import downward only, and every third-party package they import is declared.

    abci_app  <-  node  <-  lab  <-  cli
                       \\      \\
                        dashboard (beside cli, at the top)

Every import statement counts, also one inside a function. Within the layers:
the ledger state machine (``abci_app/ledger``) imports nothing else of
abci_app; ``node/client`` (what programs talking to a node use) does not need
the validator runtime; the CLI's command modules (one per noun) share only the
helpers ``cli.options``, ``cli.output`` and ``cli.verify``, never each other.
A validator install (no ``[lab]``/``[dashboard]`` extras) must be able to load
the CLI and run its node commands.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("abci_app", "node", "lab", "cli", "dashboard")
ALLOWED: dict[str, set[str]] = {
    "abci_app": {"abci_app"},
    "node": {"abci_app", "node"},
    "lab": {"abci_app", "node", "lab"},
    "cli": {"abci_app", "node", "lab", "dashboard", "cli"},
    "dashboard": {"abci_app", "node", "lab", "dashboard"},
}
FIRST_PARTY = {*PACKAGES, "tests", "tools"}
CLI_HELPERS = {"cli.options", "cli.output", "cli.verify"}
EXTRAS_OF_PACKAGE = {"lab": ("lab", "dashboard"), "dashboard": ("dashboard",)}
# markdown_it is not among them: rich (the CLI's tables) depends on it too.
LAB_AND_DASHBOARD_ONLY = ("matplotlib", "starlette", "uvicorn", "sse_starlette", "jinja2")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "pb" not in p.relative_to(ROOT).parts[1:2])


def imports_of(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in the file; relative imports resolved."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                yield node.lineno, ".".join([*base, *([node.module] if node.module else [])])
            elif node.module is not None:
                yield node.lineno, node.module
                # `from node import cometbft` imports the module node.cometbft
                for alias in node.names:
                    yield node.lineno, f"{node.module}.{alias.name}"


def first_party_imports(package: str) -> Iterator[tuple[str, int, str]]:
    for path in source_files(package):
        for line, name in imports_of(path):
            if name.split(".")[0] in FIRST_PARTY:
                yield module_name(path), line, name


def test_the_parser_sees_every_kind_of_import() -> None:
    found = {name for _, _, name in first_party_imports("cli")}
    assert {"cli.options", "node.client.chain", "lab.testnet", "dashboard.server"} <= found  # the last is lazy


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_run_downward_only(package: str) -> None:
    upward = [f"{importer}:{line} imports {name}" for importer, line, name in first_party_imports(package)
              if name.split(".")[0] not in ALLOWED[package]]
    assert upward == [], f"{package} may import only {sorted(ALLOWED[package])}"


def test_the_ledger_state_machine_imports_only_itself() -> None:
    outside = [f"{importer}:{line} imports {name}" for importer, line, name in first_party_imports("abci_app")
               if importer.startswith("abci_app.ledger") and not name.startswith("abci_app.ledger")]
    assert outside == []


def test_node_client_does_not_need_the_validator_runtime() -> None:
    allowed = ("abci_app", "node.client", "node.rpc")
    runtime = [f"{importer}:{line} imports {name}" for importer, line, name in first_party_imports("node")
               if importer.startswith("node.client") and not name.startswith(allowed) and name != "node"]
    assert runtime == []


def _cli_command_modules() -> set[str]:
    return {name for _, _, name in imports_of_module("cli.main") if name.startswith("cli.") and name.count(".") == 1}


def imports_of_module(name: str) -> list[tuple[str, int, str]]:
    path = ROOT / (name.replace(".", "/") + ".py")
    return [(name, line, imported) for line, imported in imports_of(path)]


def test_cli_command_modules_share_helpers_only() -> None:
    commands = _cli_command_modules() - CLI_HELPERS
    assert {"cli.tx", "cli.query", "cli.node", "cli.testnet", "cli.keys"} <= commands
    crossing = [f"{importer}:{line} imports {name}" for importer, line, name in first_party_imports("cli")
                if importer in commands and name.startswith("cli.") and name.count(".") == 1
                and name not in CLI_HELPERS]
    assert crossing == [], "a command module may import cli.options, cli.output and cli.verify only"


def test_cli_helpers_import_no_command_module() -> None:
    commands = _cli_command_modules() - CLI_HELPERS
    crossing = [f"{importer}:{line} imports {name}" for importer, line, name in first_party_imports("cli")
                if importer in CLI_HELPERS and name in commands]
    assert crossing == []


# -- third-party packages -------------------------------------------------------------------------------------
def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _requirement_name(requirement: str) -> str:
    for separator in "[<>=!~; ":
        requirement = requirement.split(separator, 1)[0]
    return _canonical(requirement)


def declared() -> tuple[set[str], dict[str, set[str]]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {_requirement_name(r) for r in project["dependencies"]}
    extras = {extra: {_requirement_name(r) for r in requirements}
              for extra, requirements in project["optional-dependencies"].items()}
    return core, extras


def third_party_imports(package: str) -> dict[str, list[str]]:
    """Top-level module name -> where it is imported."""
    found: dict[str, list[str]] = {}
    for path in source_files(package):
        for line, name in imports_of(path):
            top = name.split(".")[0]
            if top in sys.stdlib_module_names or top in FIRST_PARTY or top == "__future__":
                continue
            found.setdefault(top, []).append(f"{module_name(path)}:{line}")
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_every_imported_package_is_declared(package: str) -> None:
    core, extras = declared()
    allowed = core.union(*(extras[extra] for extra in EXTRAS_OF_PACKAGE.get(package, ())))
    distributions = packages_distributions()
    missing = []
    for top, where in sorted(third_party_imports(package).items()):
        names = {_canonical(d) for d in distributions.get(top, [top])}
        if not names & allowed:
            missing.append(f"{top} ({', '.join(sorted(names))}) imported at {where[0]}")
    assert missing == [], f"declare in pyproject.toml (dependencies or the {package} extra)"


def test_lab_and_dashboard_dependencies_are_extras() -> None:
    core, extras = declared()
    assert "matplotlib" in extras["lab"] and "matplotlib" not in core
    assert {"starlette", "uvicorn"} <= extras["dashboard"] and not {"starlette", "uvicorn"} & core
    assert "psutil" in core and "types-psutil" in extras["test"]


def test_every_dependency_is_pinned() -> None:
    core, extras = declared()
    pinned = {_requirement_name(line) for line in (ROOT / "requirements.lock").read_text().splitlines()
              if line.strip() and not line.startswith("#") and "==" in line}
    wanted = core.union(*(names for extra, names in extras.items())) - {"gridledger"}
    assert wanted - pinned == set()


def test_a_validator_install_runs_the_cli_without_lab_or_dashboard_packages() -> None:
    blocked = ", ".join(repr(name) for name in LAB_AND_DASHBOARD_ONLY)
    script = textwrap.dedent(f"""
        import importlib.abc, sys
        class Missing(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ({blocked},):
                    raise ModuleNotFoundError(f"No module named {{name!r}} (not installed)")
                return None
        sys.meta_path.insert(0, Missing())
        from typer.testing import CliRunner
        from cli.main import app
        import node.app_main, node.supervisor
        for args in (["node", "--help"], ["node", "init", "--help"], ["tx", "transfer", "--help"], ["version"]):
            result = CliRunner().invoke(app, args)
            assert result.exit_code == 0, (args, result.output)
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr

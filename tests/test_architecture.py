"""docs/architecture.md says what the code is: its module list and its layer table match the code, and
every module path or dotted name the docs mention exists."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from tests.test_layers import ALLOWED, PACKAGES, ROOT

DOCS = ROOT / "docs"
PATH = re.compile(r"(?<![\w/.-])((?:abci_app|node|lab|cli|dashboard|tools|tests)/[\w/]*\w\.py)\b")
DOTTED = re.compile(r"`((?:abci_app|node|lab|cli|dashboard)(?:\.\w+)+)")


def _section(text: str, title: str) -> str:
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def documented_modules() -> set[str]:
    """Paths in the module tables: a row's first cell is a module, or a package whose row names its files."""
    listed: set[str] = set()
    for line in _section((DOCS / "architecture.md").read_text(), "Modules").splitlines():
        if not line.startswith("| `"):
            continue
        first, *rest = _cells(line)
        path = first.strip("`")
        if path.endswith(".py"):
            listed.add(path)
        else:
            assert path.endswith("/"), f"a module row names a .py file or a package directory: {line}"
            listed.add(f"{path}__init__.py")
            listed.update(path + name for name in re.findall(r"`(\w+\.py)`", " ".join(rest)))
    return listed


def code_modules() -> set[str]:
    return {str(p.relative_to(ROOT)) for package in PACKAGES for p in (ROOT / package).rglob("*.py")
            if not p.relative_to(ROOT).as_posix().startswith("abci_app/pb/")}


def test_every_module_is_in_the_module_list() -> None:
    # A package's __init__.py needs a row only when it holds more than its docstring.
    missing = {path for path in code_modules() - documented_modules()
               if not path.endswith("__init__.py") or _has_code(ROOT / path)}
    assert missing == set(), "add them to the Modules section of docs/architecture.md"


def test_every_listed_module_exists() -> None:
    assert documented_modules() - code_modules() == set()


def _has_code(path: Path) -> bool:
    import ast

    body = ast.parse(path.read_text()).body
    return any(not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)) for node in body)


def test_the_layer_table_is_the_enforced_one() -> None:
    section = _section((DOCS / "architecture.md").read_text(), "Packages and layers")
    rows = [_cells(line) for line in section.splitlines() if line.startswith("| `")]
    table = {package.strip("`"): {name.strip(" `") for name in allowed.split(",")} for package, allowed in rows}
    assert table == ALLOWED


def _docs() -> dict[str, str]:
    pages = {p.name: p.read_text() for p in sorted(DOCS.glob("*.md"))}
    pages["README.md"] = (ROOT / "README.md").read_text()
    return pages


def test_every_module_path_in_the_docs_exists() -> None:
    missing = sorted({f"{page}: {path}" for page, text in _docs().items() for path in PATH.findall(text)
                      if not (ROOT / path).exists()})
    assert missing == []


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(found, name):
                return False
            found = getattr(found, name)
        return True
    return False


def test_every_dotted_name_in_the_docs_exists() -> None:
    missing = sorted({f"{page}: {name}" for page, text in _docs().items() for name in DOTTED.findall(text)
                      if not _resolves(name)})
    assert missing == []

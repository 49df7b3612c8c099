"""The reference docs in docs/ must not drift from the code.

Checked here: the error table lists exactly ``ALL_ERRORS``; every query path of
query.py's docstring (and app.py's ``/next_nonce/``), every message type with
its body fields in wire order, and every event type with every attribute the
ledger emits appear in their page; the genesis parameter table is the code's
defaults and bounds; the reserve id is the code's; the worked example's bytes
are what the code produces.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from abci_app.ledger import errors, query
from abci_app.ledger.crypto import SigningKey
from abci_app.ledger.modules.bank import Transfer
from abci_app.ledger.router import MESSAGE_TYPES
from abci_app.ledger.tx import encode_tx, sign_bytes

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
ERROR_TABLE_HEADER = ("code", "name", "meaning", "typical log")


def _doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _error_table() -> list[tuple[int, str, str]]:
    """Rows (code, name, meaning) of the one table in errors.md with the error header."""
    lines = _doc("errors.md").splitlines()
    starts = [i for i, line in enumerate(lines)
              if line.lstrip().startswith("|") and tuple(_cells(line)) == ERROR_TABLE_HEADER]
    assert len(starts) == 1, "docs/errors.md must hold exactly one 'code | name | meaning | typical log' table"
    rows = []
    for line in lines[starts[0] + 2:]:  # skip the header and the |---| line
        if not line.lstrip().startswith("|"):
            break
        cells = _cells(line)
        assert len(cells) == len(ERROR_TABLE_HEADER), f"malformed error table row: {line!r}"
        rows.append((int(cells[0]), cells[1].strip("`"), cells[2]))
    return rows


def test_error_table_lists_exactly_all_errors() -> None:
    rows = _error_table()
    codes = [code for code, _, _ in rows]
    assert codes == sorted(set(codes)), "codes must be unique and ascending"
    assert rows[0][:2] == (0, "OK")
    documented = [(code, name) for code, name, _ in rows if code != 0]
    expected = [(cls.code, cls.__name__) for cls in errors.ALL_ERRORS]
    assert documented == expected


def test_error_table_meanings_are_the_summaries() -> None:
    meanings = {code: meaning for code, _, meaning in _error_table()}
    for cls in errors.ALL_ERRORS:
        assert meanings[cls.code] == cls.summary, f"code {cls.code}"


def test_error_codespace_documented() -> None:
    assert f"`{errors.LedgerError.codespace}`" in _doc("errors.md")


def _query_paths() -> list[str]:
    doc = query.__doc__ or ""
    return re.findall(r"^\s+(/\S+(?: \S+)*?)\s{2,}\S", doc, flags=re.MULTILINE)


def test_query_docstring_parsed() -> None:
    paths = _query_paths()
    assert "/params" in paths and "/account/<account id>" in paths
    assert len(paths) >= 10


@pytest.mark.parametrize("path", _query_paths())
def test_query_path_documented(path: str) -> None:
    assert path in _doc("queries.md"), f"docs/queries.md does not mention {path}"


def test_node_local_query_path_documented() -> None:
    from abci_app.app import NEXT_NONCE_PATH  # needs the generated protobuf classes

    assert f"`{NEXT_NONCE_PATH}<account id>`" in _doc("queries.md")


@pytest.mark.parametrize("msg_type", sorted(MESSAGE_TYPES))
def test_message_type_documented(msg_type: str) -> None:
    heading = re.compile(rf"^#+ .*`{re.escape(msg_type)}`", flags=re.MULTILINE)
    assert heading.search(_doc("transactions.md")), f"docs/transactions.md has no section for {msg_type}"


def test_message_fields_documented_in_wire_order() -> None:
    text = _doc("transactions.md")
    for msg_type, cls in MESSAGE_TYPES.items():
        section = re.split(r"^#{2,3} ", text.split(f"### `{msg_type}`", 1)[1], flags=re.MULTILINE)[0]
        documented = re.findall(r"^\| (\d+) \| `(\w+)` \|", section, flags=re.MULTILINE)
        expected = [(str(i), name) for i, (name, _) in enumerate((name, None) for name in cls.__struct_fields__)]
        assert documented == expected, msg_type


def _emitted_event_types() -> set[str]:
    """String literals passed as the first argument of ``event(...)`` in the ledger sources."""
    found: set[str] = set()
    for path in (ROOT / "abci_app" / "ledger").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "event"
                    and node.args):
                for sub in ast.walk(node.args[0]):
                    if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                        found.add(sub.value)
    return found


def test_event_types_documented() -> None:
    types = _emitted_event_types()
    assert {"transfer", "proposal.expired", "meter.deactivated"} <= types
    text = _doc("events.md")
    missing = sorted(t for t in types if f"`{t}`" not in text)
    assert not missing, f"docs/events.md does not mention {missing}"


def _example_block(marker: str) -> str:
    text = _doc("transactions.md")
    match = re.search(rf"<!-- example:{marker} -->\s*```text\n(.*?)```", text, flags=re.DOTALL)
    assert match, f"no example block {marker} in docs/transactions.md"
    return match.group(1).strip()


def test_worked_example_bytes() -> None:
    key = SigningKey.from_seed(bytes(range(32)))
    recipient = SigningKey.from_seed(bytes(range(32, 64))).account
    msg = Transfer(recipient=recipient, amount=1_500_000, memo="solar surplus")
    assert _example_block("sign-bytes") == sign_bytes("gridledger-demo", msg, key.pubkey, 1).hex()
    assert _example_block("tx") == encode_tx("gridledger-demo", msg, key, 1).hex()
    inputs = _example_block("inputs")
    for value in (key.seed().hex(), key.pubkey.hex(), key.account, recipient):
        assert value in inputs


def _genesis_param_rows() -> dict[str, tuple[str, ...]]:
    """name -> (type, default, bounds text) of the params block in genesis.md's schema."""
    rows = {}
    for line in _doc("genesis.md").splitlines():
        match = re.match(r"│   [├└]─ (\w+)\s+(str|int)\s+default (\S+)\s+(.*)$", line)
        if match:
            rows[match.group(1)] = match.groups()[1:]
    return rows


def test_genesis_parameter_table_is_the_code() -> None:
    from abci_app.ledger.params import Params
    rows = _genesis_param_rows()
    assert list(rows) == list(Params.__struct_fields__), "every parameter, in declaration order"
    defaults = Params()
    for name, (_kind, default, bounds) in rows.items():
        assert default.strip('"') == str(getattr(defaults, name)), name
        if name in Params.IMMUTABLE:
            assert bounds.startswith("fixed for the chain's life"), name
            continue
        low, high = Params.BOUNDS[name]
        assert bounds.startswith(f"{low} … {high}"), f"{name}: {bounds!r} is not {low} … {high}"


def test_reserve_id_in_the_docs_is_the_code() -> None:
    from abci_app.ledger.modules.settlement.keys import RESERVE_ID
    assert f"`{RESERVE_ID}`" in _doc("queries.md")


def _emitted_event_attributes() -> dict[str, set[str]]:
    """Event type -> keyword names passed to ``event("type", ...)`` anywhere in the ledger."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / "abci_app" / "ledger").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "event"
                    and node.args and isinstance(node.args[0], ast.Constant)):
                names = {kw.arg for kw in node.keywords if kw.arg is not None}
                found.setdefault(str(node.args[0].value), set()).update(names)
    return found


def test_event_attributes_documented() -> None:
    """Every attribute the ledger emits is named in its event's row of events.md."""
    rows: dict[str, str] = {}
    for line in _doc("events.md").splitlines():
        cells = _cells(line) if line.startswith("|") else []
        if len(cells) == 3:
            for event_type in re.findall(r"`([\w.]+)`", cells[0]):
                rows[event_type] = rows.get(event_type, "") + cells[2]
    missing = {event_type: sorted(a for a in attributes if f"`{a}`" not in rows.get(event_type, ""))
               for event_type, attributes in _emitted_event_attributes().items()}
    assert not {k: v for k, v in missing.items() if v}, "docs/events.md rows lack these attributes"

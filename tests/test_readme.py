"""The README's commands work as pasted.

* Every ``gridledger`` command in a ``sh`` block of the README parses against the
  CLI (the command exists, its options exist, arguments fit), without running
  it (typer checks enum choices only when a command runs: the run below does).
* The blocks marked ``<!-- readme-test: NAME -->`` (the Quick start and the
  Market section) run as pasted, line by line in one bash, against a real demo
  chain (``gridledger demo`` on a free port block, a fresh home): each line
  exits 0, or the exit code its comment announces ("exit code N").
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import typer._click as click  # typer vendors click: its commands are of this module's types

from cli.main import app
from lab.ports import free_base_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
_BLOCK = re.compile(r"(?:<!-- readme-test: (?P<name>[\w-]+) -->\n)?```sh\n(?P<body>.*?)```", re.S)
_EXPECTED = re.compile(r"exit code (\d)")


def sh_blocks(text: str) -> list[tuple[str | None, list[str]]]:
    """(marker name or None, logical lines) of every ``sh`` block: continuations joined."""
    blocks = []
    for match in _BLOCK.finditer(text):
        lines, current = [], ""
        for raw in match["body"].splitlines():
            current += raw.rstrip()
            if current.endswith("\\"):
                current = current[:-1] + " "
                continue
            if current.strip():
                lines.append(current.strip())
            current = ""
        blocks.append((match["name"], lines))
    return blocks


def gridledger_commands(text: str) -> list[tuple[list[str], int]]:
    """The argument lists of every ``gridledger`` line and the exit code its comment announces (default 0);
    placeholder lines (``<offer id>``) are left out."""
    commands = []
    for _name, lines in sh_blocks(text):
        for line in lines:
            words = shlex.split(line, comments=True)
            if not words or Path(words[0]).name != "gridledger" or "<" in line:
                continue
            expected = _EXPECTED.search(line.partition("#")[2])
            if ">" in words:  # a redirection and its target are the shell's
                at = words.index(">")
                words = words[:at] + words[at + 2:]
            commands.append(([w for w in words[1:] if w != "&"], int(expected.group(1)) if expected else 0))
    return commands


def parse(command: Any, args: list[str], parent: Any = None) -> Any:
    """Parse ``args`` as the CLI would, down to the leaf command; nothing is invoked."""
    ctx = command.make_context(command.name or "gridledger", list(args), parent=parent)
    if hasattr(command, "resolve_command"):
        rest = [*getattr(ctx, "_protected_args", getattr(ctx, "protected_args", [])), *ctx.args]
        _name, sub, remaining = command.resolve_command(ctx, rest)
        assert sub is not None
        return parse(sub, remaining, ctx)
    return ctx


COMMANDS = gridledger_commands(README.read_text(encoding="utf-8"))


def test_the_readme_has_commands_and_marked_blocks() -> None:
    names = {name for name, _ in sh_blocks(README.read_text(encoding="utf-8"))}
    assert {"quickstart", "market"} <= names
    assert len(COMMANDS) > 40


@pytest.mark.parametrize(("args", "code"), COMMANDS, ids=[" ".join(a[:3]) for a, _ in COMMANDS])
def test_readme_command_parses(args: list[str], code: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDLEDGER_PASSPHRASE", "x")
    root = typer.main.get_command(app)
    if code == 2:  # announced as an input error: the parser itself refuses it
        with pytest.raises(click.ClickException):
            parse(root, args)
        return
    try:
        parse(root, args)
    except click.ClickException as exc:
        pytest.fail(f"gridledger {' '.join(args)}: {exc.format_message()}")


def test_invalid_a_wrong_option_is_found() -> None:
    with pytest.raises(click.ClickException):
        parse(typer.main.get_command(app), ["tx", "order", "place", "--sides", "bid"])
    with pytest.raises(click.ClickException):
        parse(typer.main.get_command(app), ["query", "slots", "--no-such-option"])


# -- running the marked blocks against a real demo ------------------------------------------------------
@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A demo chain on a free port block; the README's relative paths point at its home through a symlink."""
    base = free_base_port(1)
    workdir = tmp_path / "work"
    (workdir / ".gridledger").mkdir(parents=True)
    (workdir / ".venv").symlink_to(ROOT / ".venv")
    home = workdir / ".gridledger" / "demo"
    env = {**os.environ, "GRIDLEDGER_KDF_FAST": "1", "GRIDLEDGER_NODE": f"http://127.0.0.1:{base + 7}"}
    for name in ("GRIDLEDGER_KEYRING_DIR", "GRIDLEDGER_PASSPHRASE"):
        env.pop(name, None)
    log = (tmp_path / "demo.out").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "demo", "--home", str(home), "--base-port",
                             str(base), "--dashboard-listen", "off"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "demo.out").read_text()
            try:
                status = httpx.get(f"{env['GRIDLEDGER_NODE']}/status", timeout=2).json()
                if int(status["result"]["sync_info"]["latest_block_height"]) >= 1:
                    break
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            assert time.monotonic() < deadline, "the demo did not commit block 1 within 60 s"
            time.sleep(0.5)
        yield workdir, env
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    assert proc.returncode == 0, (tmp_path / "demo.out").read_text()


def run_block(lines: list[str], workdir: Path, env: dict[str, str]) -> tuple[list[str], str]:
    """Run the lines in one bash (so `export` and `.` carry over); the failed lines, and stderr."""
    script = []
    for index, line in enumerate(lines):
        expected = _EXPECTED.search(line.partition("#")[2])
        code = int(expected.group(1)) if expected else 0
        script.append(f"{line}\nrc=$?; [ $rc -eq {code} ] || echo \"FAILED {index}: exit $rc, expected {code}: "
                      f"{shlex.quote(line)}\" >&2")
    result = subprocess.run(["bash", "-c", "\n".join(script)], cwd=workdir, env=env, capture_output=True,
                            text=True, timeout=600)
    return [line for line in result.stderr.splitlines() if line.startswith("FAILED ")], result.stderr


@pytest.mark.e2e
def test_quickstart_and_market_run_as_pasted(demo: tuple[Path, dict[str, str]]) -> None:
    workdir, env = demo
    blocks = {name: lines for name, lines in sh_blocks(README.read_text(encoding="utf-8")) if name}
    # The Market section continues the Quick start's shell (its activated venv and exported keyring).
    failures, stderr = run_block(blocks["quickstart"] + blocks["market"], workdir, env)
    assert not failures, "\n".join(failures) + "\n" + stderr


def test_invalid_a_line_with_another_exit_code_is_reported(tmp_path: Path) -> None:
    failures, _ = run_block(["true", "false   # exit code 1", "true   # exit code 1", "false"], tmp_path,
                            dict(os.environ))
    assert [line.split(":")[0] for line in failures] == ["FAILED 2", "FAILED 3"]

"""Helpers for the dashboard's browser tests: the dashboard as a real process, Debian's Chromium via Playwright.

Playwright drives the system browser (``/usr/bin/chromium``, installed by the
Makefile's test targets) through ``executable_path``; it never downloads a
browser of its own. Screenshots go to ``test-artifacts/dashboard/`` (ignored
by git: they are test artefacts, never committed).
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts" / "dashboard"
LAPTOP = {"width": 1366, "height": 860}
PHONE = {"width": 390, "height": 844}
URL_LINE = re.compile(r"dashboard: (http://\S+)")


class DashboardProcess:
    """``python -m dashboard`` as the node supervisor would run it, on a free loopback port."""

    def __init__(self, args: Sequence[str], timeout: float = 30.0) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "dashboard", "--listen", "127.0.0.1:0", *args],
                                     cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        found = threading.Event()
        self.url = ""

        def drain() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.lines.append(line.rstrip())
                match = URL_LINE.search(line)
                if match and not found.is_set():
                    self.url = match.group(1).rstrip("/")
                    found.set()
            found.set()

        threading.Thread(target=drain, daemon=True).start()
        if not found.wait(timeout) or not self.url:
            self.stop()
            raise RuntimeError("the dashboard did not start:\n" + "\n".join(self.lines))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log(self) -> str:
        return "\n".join(self.lines)


@contextlib.contextmanager
def chromium(viewport: dict[str, int] = LAPTOP) -> Iterator[Any]:
    """A browser context of Debian's headless Chromium with a fresh profile directory."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        raise RuntimeError(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with tempfile.TemporaryDirectory(prefix="gl-chromium-") as profile, sync_playwright() as driver:
        context = driver.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS, viewport=viewport,
            locale="en-GB", timezone_id="UTC", accept_downloads=True)
        try:
            yield context
        finally:
            context.close()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout}s")
        time.sleep(0.2)


CONTRAST_JS = "\n".join(line for line in Path(__file__).with_name("dashboard_contrast.js").read_text().splitlines()
                        if not line.startswith("//"))
"""Returns every visible text below WCAG AA contrast against its background (see the file)."""

UNLABELLED_JS = """
() => [...document.querySelectorAll('input, select, textarea, button')]
  .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
  .map((el) => el.outerHTML.slice(0, 80))
"""

OVERFLOW_JS = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


def page_shots(base: str, out: Path, pages: dict[str, str], viewport: dict[str, int] | None = None) -> list[Path]:
    """Viewport screenshots ``out/dashboard-<name>.png`` of a running dashboard (the README's images)."""
    from playwright.sync_api import expect

    out.mkdir(parents=True, exist_ok=True)
    taken = []
    with chromium(viewport or {"width": 1280, "height": 860}) as context:
        page = context.new_page()
        for name, path in pages.items():
            page.goto(base.rstrip("/") + path)
            expect(page.locator("#chain-status")).to_contain_text("Live", timeout=20_000)
            page.wait_for_timeout(2_000)  # the page's first view and chart drawn
            taken.append(out / f"dashboard-{name}.png")
            page.screenshot(path=str(taken[-1]))
    return taken


if __name__ == "__main__":
    # python -m tests.dashboard_browser http://127.0.0.1:8080 docs/img market=/market prices=/prices?zone=north-1 ...
    shots = page_shots(sys.argv[1], Path(sys.argv[2]), dict(arg.split("=", 1) for arg in sys.argv[3:]))
    print("\n".join(str(path) for path in shots))

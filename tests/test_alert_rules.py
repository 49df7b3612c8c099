"""config/prometheus/gridledger-alerts.yml: well-formed, about metrics that exist, with runbooks that exist.

``promtool`` (unpacked by the Makefile from Debian's prometheus package)
checks the file and runs its unit tests (tests/alert_rules_test.yml). The
other checks need no tool: every metric a rule reads is exported by the app
(node/metrics.py) or by the pinned CometBFT (its ``metrics.gen.go`` files),
and every runbook link names a section of docs/operators.md.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from node import metrics
from node.cometbft import REPO_ROOT, pinned_version

RULES = REPO_ROOT / "config" / "prometheus" / "gridledger-alerts.yml"
RULE_TESTS = REPO_ROOT / "tests" / "alert_rules_test.yml"
OPERATORS_DOC = REPO_ROOT / "docs" / "operators.md"
SEVERITIES = {"warning", "critical"}
# Words in expressions that are PromQL, not metric names.
PROMQL_WORDS = {"up", "time", "changes", "rate", "sum", "by", "count", "and", "or", "unless", "histogram_quantile",
                "max", "min", "on", "without", "le", "instance", "job", "method", "code", "app_version", "bool"}


def promtool() -> Path | None:
    pin = re.search(r"^PROMETHEUS_DEB\s*:=\s*(\S+)", (REPO_ROOT / "Makefile").read_text(), re.MULTILINE)
    assert pin is not None, "the Makefile pins the prometheus package"
    path = REPO_ROOT / ".tools" / f"prometheus-{pin.group(1)}" / "usr" / "bin" / "promtool"
    return path if path.exists() else None


def rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def metric_names(expr: str) -> set[str]:
    # Drop label matchers and strings, then keep identifiers that are not PromQL keywords or durations.
    bare = re.sub(r"\{[^}]*\}|\"[^\"]*\"|\[[^\]]*\]", " ", expr)
    return {word for word in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare)
            if word not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhd]?|e\d+", word)}


SERIES_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "info": ("_info",),
                   "gauge": ("",)}


def app_metric_names() -> set[str]:
    """Every series name the app exports, also of labelled families that have no sample yet."""
    names = set()
    for family in metrics.AppMetrics().registry.collect():
        names.update(family.name + suffix for suffix in SERIES_SUFFIXES[family.type])
    return names


def cometbft_metric_names() -> set[str]:
    """``cometbft_<subsystem>_<name>`` of every metric the pinned CometBFT module defines."""
    modcache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True).stdout.strip()
    source = Path(modcache) / "github.com" / "cometbft" / f"cometbft@{pinned_version()}"
    if not source.is_dir():
        pytest.fail(f"{source} missing: `make setup` builds CometBFT from it")
    names = set()
    for generated in source.rglob("metrics.gen.go"):
        subsystem = re.search(r'MetricsSubsystem\s*=\s*"(\w+)"', (generated.parent / "metrics.go").read_text())
        if subsystem is None:
            continue
        for name in re.findall(r'Name:\s*"(\w+)"', generated.read_text()):
            names.add(f"cometbft_{subsystem.group(1)}_{name}")
    return names


def test_basic_every_rule_is_complete() -> None:
    found = rules()
    assert len(found) >= 10
    for rule in found:
        assert re.fullmatch(r"(Gridledger|CometBFT)[A-Za-z]+", rule["alert"]), rule
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
    assert len({rule["alert"] for rule in found}) == len(found)


def test_basic_rules_read_only_metrics_that_exist() -> None:
    app, comet = app_metric_names(), cometbft_metric_names()
    assert "cometbft_consensus_height" in comet  # the source was read
    for rule in rules():
        for name in metric_names(rule["expr"]):
            if name.startswith("cometbft_"):
                assert name in comet, f"{rule['alert']}: CometBFT {pinned_version()} exports no {name}"
            else:
                assert name in app, f"{rule['alert']}: the app exports no {name}"


def test_basic_runbook_links_name_sections_of_the_operators_guide() -> None:
    prose = re.sub(r"^```.*?^```", "", OPERATORS_DOC.read_text(), flags=re.MULTILINE | re.DOTALL)
    headings = re.findall(r"^#+ (.+)$", prose, re.MULTILINE)
    anchors = {re.sub(r"[^a-z0-9 -]", "", heading.lower()).replace(" ", "-") for heading in headings}
    for rule in rules():
        page, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert page == "docs/operators.md", rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: docs/operators.md has no section #{anchor}"


def test_basic_every_alert_is_documented() -> None:
    text = OPERATORS_DOC.read_text()
    for rule in rules():
        assert f"`{rule['alert']}`" in text, f"docs/operators.md does not list {rule['alert']}"


def test_basic_promtool_checks_and_unit_tests_pass() -> None:
    tool = promtool()
    if tool is None:
        pytest.skip("promtool is not unpacked (`make test` does it from Debian's prometheus package)")
    check = subprocess.run([str(tool), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(rules())} rules found" in check.stdout
    unit = subprocess.run([str(tool), "test", "rules", str(RULE_TESTS)], capture_output=True, text=True,
                          timeout=120)
    assert unit.returncode == 0, unit.stdout + unit.stderr


def test_invalid_a_broken_rule_is_caught(tmp_path: Path) -> None:
    """promtool refuses what the checks above are meant to catch (so their passing means something)."""
    tool = promtool()
    if tool is None:
        pytest.skip("promtool is not unpacked (`make test` does it from Debian's prometheus package)")
    broken = tmp_path / "broken.yml"
    broken.write_text(RULES.read_text().replace("time() - gridledger_block_timestamp_seconds > 120",
                                                "time() - gridledger_block_timestamp_seconds >"))
    check = subprocess.run([str(tool), "check", "rules", str(broken)], capture_output=True, text=True, timeout=60)
    assert check.returncode != 0
    assert metric_names("rate(foo_total{a=\"b\"}[5m]) > 3") == {"foo_total"}

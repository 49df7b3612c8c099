# gridledger: every set-up step lives here, so a fresh machine needs only
#   make run    (set up, then start the main job)
#   make test   (set up, then run the whole test suite)
# Each step is a file target with a stamp, so a second run rebuilds nothing.

include config/versions.env

SHELL       := /bin/bash
PYTHON      ?= python3.11
VENV        := .venv
PY          := $(VENV)/bin/python
TOOLS       := $(abspath .tools)
COMET_DIR   := $(TOOLS)/cometbft-$(COMETBFT_VERSION)
COMETBFT    := $(COMET_DIR)/bin/cometbft
ABCI_CLI    := $(COMET_DIR)/bin/abci-cli
DEPS_STAMP  := $(VENV)/.deps-stamp
PROTO_STAMP := abci_app/pb/.stamp
FRONTEND    := dashboard/frontend
FRONTEND_STAMP := $(FRONTEND)/node_modules/.stamp
CHROMIUM    := /usr/bin/chromium
# Never let `go` fetch a different toolchain: only the Go module proxy is reachable.
GO_ENV      := GOTOOLCHAIN=local GOFLAGS=-mod=mod

.PHONY: setup run test lint unit e2e bench clean distclean testnet testnet-down

setup: $(DEPS_STAMP) $(COMETBFT) $(ABCI_CLI) $(PROTO_STAMP) $(FRONTEND_STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(DEPS_STAMP): requirements.lock pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

# The consensus engine and CometBFT's own ABCI test client, from the pinned module.
$(COMETBFT): config/versions.env
	mkdir -p $(COMET_DIR)/bin
	$(GO_ENV) GOBIN=$(COMET_DIR)/bin go install github.com/cometbft/cometbft/cmd/cometbft@$(COMETBFT_VERSION)
	touch $@

$(ABCI_CLI): config/versions.env
	mkdir -p $(COMET_DIR)/bin
	$(GO_ENV) GOBIN=$(COMET_DIR)/bin go install github.com/cometbft/cometbft/abci/cmd/abci-cli@$(COMETBFT_VERSION)
	touch $@

# Python classes for the ABCI protobuf messages, generated from the .proto files
# of the pinned module (never committed).
$(PROTO_STAMP): config/versions.env tools/gen_proto.py $(DEPS_STAMP)
	$(GO_ENV) $(PY) tools/gen_proto.py --version $(COMETBFT_VERSION) --out abci_app/pb
	touch $@

# The dashboard's chart library, exactly as pinned in its package-lock.json, served by the
# app itself (no CDN). Without npm the dashboard runs with tables only (and says so).
$(FRONTEND_STAMP): $(FRONTEND)/package.json $(FRONTEND)/package-lock.json
	@if command -v npm >/dev/null; then \
	  npm ci --prefix $(FRONTEND) --no-audit --no-fund --ignore-scripts && touch $@; \
	else echo "warning: npm not found: the dashboard's charts are not installed" >&2; fi

# Browser tests drive Debian's Chromium (never a browser build downloaded by a driver).
$(CHROMIUM):
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

run: setup
	$(VENV)/bin/gridledger demo

# The 4-validator testnet of config/testnet-4.toml, left running in the background
# (`make testnet-down` stops it); created once in $(TESTNET_DIR).
TESTNET_DIR ?= .gridledger/testnet
testnet: setup
	test -f $(TESTNET_DIR)/testnet.json || $(VENV)/bin/gridledger testnet init --roster config/testnet-4.toml --out $(TESTNET_DIR)
	$(VENV)/bin/gridledger testnet up --dir $(TESTNET_DIR)

testnet-down:
	$(VENV)/bin/gridledger testnet down --dir $(TESTNET_DIR)

# mypy --strict checks every package: abci_app node lab cli dashboard ([tool.mypy] in pyproject.toml).
lint: setup
	$(VENV)/bin/ruff check abci_app node lab cli tests tools dashboard
	$(VENV)/bin/mypy

unit: setup
	$(PY) -m pytest -m "not e2e"

e2e: setup $(CHROMIUM)
	$(PY) -m pytest -m e2e

# The fault suite (tests/test_faults_e2e.py) builds network namespaces with iproute2's `ip`.
NETNS_STAMP := $(VENV)/.netns-tools-stamp
$(NETNS_STAMP): | $(VENV)/bin/python
	command -v ip >/dev/null || { apt-get update && apt-get install -y --no-install-recommends iproute2; } \
		|| echo "iproute2 could not be installed: the fault suite will skip"
	touch $@

test: setup lint $(NETNS_STAMP) $(CHROMIUM)
	$(PY) -m pytest

# promtool checks and unit-tests config/prometheus/gridledger-alerts.yml (tests/test_alert_rules.py).
# Taken from Debian's prometheus package at a pinned version and only unpacked into .tools:
# nothing is installed and no service starts. Without it the test still parses and checks the rules.
PROMETHEUS_DEB := 2.42.0+ds-5+deb12u1
PROMTOOL    := $(TOOLS)/prometheus-$(PROMETHEUS_DEB)/usr/bin/promtool
$(PROMTOOL):
	mkdir -p $(TOOLS)/prometheus-$(PROMETHEUS_DEB)
	cd $(TOOLS)/prometheus-$(PROMETHEUS_DEB) && \
	  { apt-get download prometheus=$(PROMETHEUS_DEB) || { apt-get update && apt-get download prometheus=$(PROMETHEUS_DEB); }; } && \
	  dpkg-deb -x prometheus_*.deb . && rm -f prometheus_*.deb usr/bin/prometheus \
	  || echo "warning: promtool could not be unpacked: the alert rules are checked without it" >&2
test unit: $(PROMTOOL)

bench: setup
	$(PY) tools/bench_ledger.py
	$(PY) tools/bench_market.py --book 10000 --orders 2000
	$(PY) tools/bench_auction.py --orders 1000 --books 5

clean:
	rm -rf abci_app/pb .pytest_cache .mypy_cache .ruff_cache

distclean: clean
	rm -rf $(VENV) $(TOOLS)

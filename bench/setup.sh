#!/usr/bin/env bash
# Installs what `make bench` needs beyond `make build deps`, into project-local folders:
#   wrk (Debian package, when missing), .deps/bench/venv (matplotlib for the chart, PyPI
#   mcp-proxy), .deps/bench/npm (supergateway, npm mcp-proxy). Idempotent: a stamp file records
#   the versions installed, so later runs cost nothing.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEPS="$ROOT/.deps/bench"
PIP_PKGS="matplotlib==3.11.2 mcp-proxy==0.13.0"
NPM_PKGS="supergateway@4.0.0 mcp-proxy@6.7.19"
mkdir -p "$DEPS"

if ! command -v wrk >/dev/null 2>&1; then
  echo "bench setup: installing wrk"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

if [ "$(cat "$DEPS/venv/.stamp" 2>/dev/null)" != "$PIP_PKGS" ]; then
  echo "bench setup: $PIP_PKGS -> .deps/bench/venv"
  [ -x "$DEPS/venv/bin/python" ] || python3 -m venv "$DEPS/venv"
  # shellcheck disable=SC2086
  "$DEPS/venv/bin/pip" install -q --disable-pip-version-check $PIP_PKGS
  echo "$PIP_PKGS" > "$DEPS/venv/.stamp"
fi

if [ "$(cat "$DEPS/npm/.stamp" 2>/dev/null)" != "$NPM_PKGS" ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "bench setup: $NPM_PKGS -> .deps/bench/npm"
    mkdir -p "$DEPS/npm"
    # shellcheck disable=SC2086
    npm install --silent --no-audit --no-fund --prefix "$DEPS/npm" $NPM_PKGS
    echo "$NPM_PKGS" > "$DEPS/npm/.stamp"
  else
    echo "bench setup: npm not found; the npm peers will be reported as missing" >&2
  fi
fi

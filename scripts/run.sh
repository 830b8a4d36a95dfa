#!/usr/bin/env bash
# `make run`: the bridge with the two demo servers, then Envoy with envoy/envoy.yaml on :9020.
# Ctrl-C stops both (each runs in its own process group, so their children go too).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ENVOY=${ENVOY:-$ROOT/.venv/bin/envoy}
NPM=$ROOT/.deps/npm/node_modules
RUN=$ROOT/.deps/run
SANDBOX=$ROOT/.deps/sandbox
mkdir -p "$RUN" "$SANDBOX"
[ -e "$SANDBOX/README.txt" ] || printf 'This folder is the demo filesystem server'"'"'s sandbox.\n' > "$SANDBOX/README.txt"

for port in 9020 9101 9901; do
  if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null; then
    echo "port $port is already in use; stop what is listening there first" >&2; exit 1
  fi
done

cat > "$RUN/bridge.json" <<JSON
{
  "listen": "127.0.0.1:9101",
  "servers": {
    "filesystem": {"command": "node", "args": ["$NPM/@modelcontextprotocol/server-filesystem/dist/index.js", "$SANDBOX"]},
    "everything": {"command": "node", "args": ["$NPM/@modelcontextprotocol/server-everything/dist/index.js", "stdio"]}
  }
}
JSON

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  sleep 1
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped"
}
trap cleanup INT TERM EXIT

setsid "$ROOT/dist/mcp-stdio-bridge" --config "$RUN/bridge.json" &
pids+=($!)
for _ in $(seq 100); do curl -fsS http://127.0.0.1:9101/healthz >/dev/null 2>&1 && break; sleep 0.1; done

setsid "$ENVOY" -c envoy/envoy.yaml --concurrency 2 --log-level warn &
pids+=($!)
for _ in $(seq 200); do [ "$(curl -fsS http://127.0.0.1:9901/ready 2>/dev/null)" = LIVE ] && break; sleep 0.1; done

cat <<TXT

  MCP security gateway is running on http://127.0.0.1:9020
    /filesystem/mcp   server-filesystem on $SANDBOX
    /everything/mcp   server-everything
    /mcp              both, aggregated by Envoy's mcp_router (tools named <backend>__<tool>)

  DEMO KEYS (public, never use them outside this demo):
    sk-demo-admin    every tool
    sk-demo-reader   read-only filesystem tools + everything/echo

  Connect:
    claude mcp add --transport http fs http://127.0.0.1:9020/filesystem/mcp --header "Authorization: Bearer sk-demo-reader"
    npx @modelcontextprotocol/inspector-cli http://127.0.0.1:9020/mcp --transport http \\
        --header "Authorization: Bearer sk-demo-admin" --method tools/list

  The audit log (Envoy's JSON access log) follows on this terminal. Ctrl-C stops everything.

TXT
wait -n "${pids[@]}"

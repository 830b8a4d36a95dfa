#!/usr/bin/env bash
# Quick throughput/latency benchmark of mcp-stdio-bridge: wrk posts tools/call(echo) on one
# pre-opened Streamable HTTP session, c=1 and c=8 (after a warm-up), against an SDK-free echo
# stdio server. Prints rps / p50 / p99 and the count of bad responses.
#
#   UPSTREAM=py (default: tests/bridge/fixtures/echo_server.py) | rust (target/release/mcp-bridge-echo)
#   DURATION=5  WARMUP=3  BRIDGE=path/to/mcp-stdio-bridge  BRIDGE_ARGS="--worker-threads 1"
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
DURATION="${DURATION:-5}"; WARMUP="${WARMUP:-3}"; UPSTREAM="${UPSTREAM:-py}"
command -v wrk >/dev/null || { echo "bench: wrk missing (apt-get install -y wrk)" >&2; exit 1; }

if [ -z "${BRIDGE:-}" ] || [ "$UPSTREAM" = rust ]; then
  (cd "$REPO" && cargo build --release -p mcp-stdio-bridge >&2)
fi
BRIDGE="${BRIDGE:-$REPO/target/release/mcp-stdio-bridge}"
case "$UPSTREAM" in
  rust) UP=("$REPO/target/release/mcp-bridge-echo") ;;
  *) UP=(python3 "$HERE/fixtures/echo_server.py") ;;
esac

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$BRIDGE" --listen "127.0.0.1:$PORT" --name bench --log-level warn ${BRIDGE_ARGS:-} -- "${UP[@]}" 2>/tmp/bridge-bench.log &
BPID=$!
TMP="$(mktemp -d)"
cleanup() { kill -TERM "$BPID" 2>/dev/null || true; wait "$BPID" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.05; done

URL="http://127.0.0.1:$PORT/bench/mcp"
SID="$(curl -sS -D - -o /dev/null "$URL" -H 'content-type: application/json' \
  -H 'accept: application/json, text/event-stream' \
  -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}' \
  | tr -d '\r' | awk 'tolower($1)=="mcp-session-id:"{print $2}')"
[ -n "$SID" ] || { echo "bench: no session id" >&2; exit 1; }
curl -sS -o /dev/null "$URL" -H 'content-type: application/json' -H "mcp-session-id: $SID" \
  -H 'mcp-protocol-version: 2025-11-25' -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'

cat > "$TMP/call.lua" <<'LUA'
local threads = {}
local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid); next_tid = next_tid + 1
  table.insert(threads, thread)
end
function init(args) sid = args[1]; n = 0; bad = 0 end
function request()
  n = n + 1
  local body = '{"jsonrpc":"2.0","id":"' .. tid .. '-' .. n ..
    '","method":"tools/call","params":{"name":"echo","arguments":{"message":"hello bench"}}}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream", ["Mcp-Session-Id"] = sid,
    ["MCP-Protocol-Version"] = "2025-11-25"}, body)
end
function response(status, headers, body)
  if status ~= 200 or not body:find('"result"', 1, true) or body:find('"isError":true', 1, true) then
    bad = bad + 1
  end
end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  io.write(string.format("RESULT rps=%.0f p50_ms=%.2f p99_ms=%.2f errors=%d bad=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout, b))
end
LUA

wrk -t1 -c8 -d"${WARMUP}s" -s "$TMP/call.lua" "$URL" -- "$SID" >/dev/null
echo "mcp-stdio-bridge, upstream=$UPSTREAM, tools/call echo, one session, ${DURATION}s per point"
for c in 1 8; do
  out="$(wrk -t1 -c"$c" -d"${DURATION}s" --latency -s "$TMP/call.lua" "$URL" -- "$SID")"
  echo "c=$c $(grep '^RESULT' <<<"$out" | sed 's/^RESULT //')"
done

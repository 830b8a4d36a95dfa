#!/usr/bin/env bash
# Same load as bench.sh against supergateway 4.0.0 (stateful Streamable HTTP) in front of the
# same Python echo upstream, for a same-moment ratio on a noisy machine. Installs supergateway
# into $REPO/.deps/npm if missing.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
SG="$REPO/.deps/npm/node_modules/supergateway/dist/index.js"
[ -f "$SG" ] || npm install --silent --no-audit --no-fund --prefix "$REPO/.deps/npm" supergateway@4.0.0 >&2
DURATION="${DURATION:-5}"; WARMUP="${WARMUP:-3}"
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
node "$SG" --stdio "python3 $HERE/fixtures/echo_server.py" --outputTransport streamableHttp --stateful \
  --port "$PORT" --logLevel none >/tmp/bridge-bench-peer.log 2>&1 &
PID=$!
TMP="$(mktemp -d)"
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$TMP"' EXIT
URL="http://127.0.0.1:$PORT/mcp"
for _ in $(seq 1 200); do curl -s -o /dev/null "$URL" && break; sleep 0.1; done
SID="$(curl -sS -D - -o /dev/null "$URL" -H 'content-type: application/json' \
  -H 'accept: application/json, text/event-stream' \
  -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}' \
  | tr -d '\r' | awk 'tolower($1)=="mcp-session-id:"{print $2}')"
curl -sS -o /dev/null "$URL" -H 'content-type: application/json' -H 'accept: application/json, text/event-stream' \
  -H "mcp-session-id: $SID" -H 'mcp-protocol-version: 2025-11-25' -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
# Reuse bench.sh's Lua script.
sed -n "/^cat > \"\$TMP\/call.lua\" <<'LUA'/,/^LUA/p" "$HERE/bench.sh" | sed '1d;$d' > "$TMP/call.lua"
wrk -t1 -c8 -d"${WARMUP}s" -s "$TMP/call.lua" "$URL" -- "$SID" >/dev/null
echo "supergateway 4.0.0 --stateful, upstream=py, tools/call echo, one session, ${DURATION}s per point"
for c in 1 8; do
  echo "c=$c $(wrk -t1 -c"$c" -d"${DURATION}s" --latency -s "$TMP/call.lua" "$URL" -- "$SID" | grep '^RESULT' | sed 's/^RESULT //')"
done

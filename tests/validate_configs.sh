#!/usr/bin/env bash
# `envoy --mode validate` on every shipped Envoy configuration (this also runs the filter's
# on_configure), and proof that a misspelt key is rejected with its name.
set -euo pipefail
cd "$(dirname "$0")/.."
ENVOY=${ENVOY:-.venv/bin/envoy}
fail=0
for f in envoy/*.yaml; do
  if out=$("$ENVOY" --mode validate -c "$f" --log-level error 2>&1); then
    echo "ok      $f"
  else
    echo "FAILED  $f"; echo "$out" | tail -5; fail=1
  fi
done

bad=$(mktemp --suffix=.yaml)
trap 'rm -f "$bad"' EXIT
sed 's/^\(\s*\)denied_tools:/\1denyed_tools:/' envoy/envoy.yaml > "$bad"
if out=$("$ENVOY" --mode validate -c "$bad" --log-level error 2>&1); then
  echo "FAILED  a misspelt key was accepted"; fail=1
elif grep -q 'backends\[0\].denyed_tools' <<<"$out"; then
  echo "ok      misspelt key rejected: $(grep -o 'invalid mcp-gateway configuration at `[^`]*`' <<<"$out" | head -1)"
else
  echo "FAILED  misspelt key rejected without naming it:"; echo "$out" | tail -3; fail=1
fi
# docker compose: no engine runs here, but the file is checked by docker-compose itself.
if out=$(docker-compose -f docker-compose.yml config -q 2>&1); then
  echo "ok      docker-compose.yml"
else
  echo "FAILED  docker-compose.yml"; echo "$out"; fail=1
fi
[ $fail -eq 0 ] && echo "validate: all shipped configs OK"
exit $fail

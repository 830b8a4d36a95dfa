#!/usr/bin/env bash
# Short fuzz run for `make test`: builds every cargo-fuzz target under fuzz/, replays the saved
# crash inputs in fuzz/regressions/<target>/, then fuzzes each target for its share of a fixed
# time budget. Exits non-zero on any failing regression or new crash.
#
#   FUZZ_BUDGET_SECS   total fuzzing time in seconds (default 150; `make fuzz` uses more)
#   FUZZ_JOBS          targets fuzzed at once (default: number of cores, at most 2)
#   FUZZ_TARGETS       space-separated subset of targets (default: all)
#   FUZZ_SEED          libFuzzer seed; `make test` pins it so the CI gate explores the same
#                      inputs every run (a red gate is then reproducible); `make fuzz` leaves it
#                      random to explore further
#   FUZZ_SANITIZER     cargo-fuzz sanitizer (default none: the core is safe Rust, and without
#                      ASan the build is faster and each target runs ~3x more inputs)
#
# A crash leaves its input in fuzz/artifacts/<target>/. Once understood, copy it to
# fuzz/regressions/<target>/<short-name> so that every later run replays it.
#
# cargo-fuzz needs nightly-only rustc flags; the stable toolchain accepts them with
# RUSTC_BOOTSTRAP=1 (set below), so no nightly toolchain is required.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

BUDGET=${FUZZ_BUDGET_SECS:-150}
CORES=$(nproc 2>/dev/null || echo 2)
JOBS=${FUZZ_JOBS:-$(( CORES < 2 ? 1 : 2 ))}
SANITIZER=${FUZZ_SANITIZER:-none}
export RUSTC_BOOTSTRAP=1
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

log() { printf 'fuzz: %s\n' "$*"; }

if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

read -r -a TARGETS <<< "$(echo ${FUZZ_TARGETS:-$(cargo fuzz list)})"
[ ${#TARGETS[@]} -gt 0 ] || { log "no fuzz targets found"; exit 1; }

# -O: optimised; -a: debug assertions on, so integer overflow panics instead of wrapping.
BUILD_FLAGS=(-O -a --sanitizer "$SANITIZER")
log "building ${#TARGETS[@]} targets (${BUILD_FLAGS[*]})"
start=$(date +%s)
cargo fuzz build "${BUILD_FLAGS[@]}" >"$ROOT/fuzz/build.log" 2>&1 || { tail -40 "$ROOT/fuzz/build.log"; exit 1; }
log "build took $(( $(date +%s) - start )) s"

BIN_DIR="$ROOT/fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release"
failures=()

# 1. Regressions: every saved input must now pass.
for t in "${TARGETS[@]}"; do
  dir="$ROOT/fuzz/regressions/$t"
  [ -d "$dir" ] || continue
  mapfile -t inputs < <(find "$dir" -type f ! -name '*.md' | sort)
  [ ${#inputs[@]} -gt 0 ] || continue
  if "$BIN_DIR/$t" -timeout=10 -rss_limit_mb=2048 "${inputs[@]}" >"$ROOT/fuzz/regress-$t.log" 2>&1; then
    log "regressions $t: ${#inputs[@]} input(s) pass"
  else
    log "regressions $t: FAILED"
    grep -E "Running:|panicked at|assertion|left:|right:" "$ROOT/fuzz/regress-$t.log" | head -20 || true
    failures+=("regression:$t")
  fi
done

# 2. Fuzzing: each target gets an equal share of BUDGET x JOBS core-seconds.
per=$(( BUDGET * JOBS / ${#TARGETS[@]} ))
[ "$per" -ge 5 ] || per=5
log "fuzzing ${#TARGETS[@]} targets, ${per} s each, ${JOBS} at a time (budget ${BUDGET} s)"

run_target() {
  local t=$1 corpus="$ROOT/fuzz/corpus/$1" art="$ROOT/fuzz/artifacts/$1/"
  mkdir -p "$corpus" "$art"
  local dirs=("$corpus")
  [ -d "$ROOT/fuzz/seeds/$t" ] && dirs+=("$ROOT/fuzz/seeds/$t")
  [ -d "$ROOT/fuzz/regressions/$t" ] && dirs+=("$ROOT/fuzz/regressions/$t")
  # libFuzzer takes one -dict: the JSON tokens, plus the target's own (fuzz/dicts/<target>.dict).
  local dict="$ROOT/fuzz/dicts/json.dict"
  if [ -f "$ROOT/fuzz/dicts/$t.dict" ]; then
    dict="$ROOT/fuzz/artifacts/$t.dict"
    cat "$ROOT/fuzz/dicts/json.dict" "$ROOT/fuzz/dicts/$t.dict" >"$dict"
  fi
  local rc=0
  "$BIN_DIR/$t" "${dirs[@]}" ${FUZZ_SEED:+-seed="$FUZZ_SEED"} -max_total_time="$per" -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
    -dict="$dict" -artifact_prefix="$art" -print_final_stats=1 \
    >"$ROOT/fuzz/artifacts/$t.log" 2>&1 || rc=$?
  echo "$rc" >"$ROOT/fuzz/artifacts/$t.rc"
}

for t in "${TARGETS[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  rm -f "$ROOT/fuzz/artifacts/$t.rc"
  run_target "$t" &
done
wait
for t in "${TARGETS[@]}"; do
  if [ "$(cat "$ROOT/fuzz/artifacts/$t.rc" 2>/dev/null || echo 1)" = 0 ]; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$ROOT/fuzz/artifacts/$t.log" | tail -1)
    log "fuzz $t: ok (${runs:-?} inputs)"
  else
    log "fuzz $t: CRASH"
    grep -E "panicked at|assertion|left:|right:|ERROR: libFuzzer|Test unit written" \
      "$ROOT/fuzz/artifacts/$t.log" | head -12 || true
    failures+=("fuzz:$t")
  fi
done

if [ ${#failures[@]} -gt 0 ]; then
  log "FAILED: ${failures[*]}"
  log "logs: fuzz/artifacts/<target>.log, fuzz/regress-<target>.log; reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run <target> <input>"
  exit 1
fi
log "all targets passed"

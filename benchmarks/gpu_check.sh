#!/usr/bin/env bash
# Every GPU-side check and measurement of chipscreen in one device call (about 450 s of work;
# give the call a 540 s limit). Each stage has its own time limit, so one slow stage cannot eat
# the rest; what a stage measured is kept even when a later one fails.
#
#   CHIPSCREEN_COMMIT=<sha> benchmarks/gpu_check.sh            # on the device; results in $OUT
#   benchmarks/gpu_check.sh --dry-run --out DIR                # on a CPU: NumPy, tiny sizes
#   benchmarks/gpu_check.sh --stages env,pytest,accumulators     # some stages only
#
# Writes at most 5 files into $OUT (or --out):
#   gpu-check.json      versions, probe, auto's choice, no-device fallback, every stage's results
#                       and status (exit code, seconds), device, commit, date
#   pytest-junit.xml    every CuPy test case (tests/test_backends.py, test_similarity.py,
#                       test_kernels.py, test_differential.py; -k cupy)
#   pytest.txt          pytest's own report
#   gpu-check.log       everything the stages printed
#   kernel-cache.tar.gz CuPy's and Numba's compiled kernels: copy it to
#                       benchmarks/work/kernel-cache.tar.gz here and name that path in the next
#                       call's carry, so the next call starts warm.
# Dask-CUDA: carry .whl/ (the dask, distributed and dask-cuda wheels); the dask stage runs only with those wheels
# (or when --stages names it).
# Stage limits (seconds) can be changed with T_ENV, T_PYTEST, T_ACCUMULATORS, T_SCREEN,
# T_PARTIES, T_PAIRS, T_DASK.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
DRY=""
DEST=${OUT:-}
STAGES="env,pytest,accumulators,screen,parties,pairs,ownership"
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY="--dry-run" ;;
    --out) DEST=$2; shift ;;
    --stages) STAGES=$2; shift ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$DEST" ]; then echo "set OUT or pass --out DIR" >&2; exit 2; fi
mkdir -p "$DEST"
PY=${PYTHON:-python3}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
LOG="$DEST/gpu-check.log"
: > "$LOG"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH="$ROOT:$ROOT/benchmarks${PYTHONPATH:+:$PYTHONPATH}"
export CUPY_CACHE_DIR="$WORK/cache/cupy"
mkdir -p "$CUPY_CACHE_DIR" "$WORK/cache/numba"
if [ -z "$DRY" ]; then export NUMBA_CACHE_DIR="$WORK/cache/numba"; fi  # returned with CuPy's; here: the usual one
if [ -f benchmarks/work/kernel-cache.tar.gz ]; then
  tar -xzf benchmarks/work/kernel-cache.tar.gz -C "$WORK/cache" && echo "kernel cache restored" >> "$LOG"
fi
if [ -d .whl ] && ls .whl/*.whl > /dev/null 2>&1; then  # carried Dask wheels
  SITE="$WORK/site"
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" .whl/*.whl >> "$LOG" 2>&1 \
    && export PYTHONPATH="$PYTHONPATH:$SITE" && STAGES="$STAGES,dask"
fi
if [ -n "$DRY" ]; then
  : "${T_ENV:=60}" "${T_PYTEST:=120}" "${T_ACCUMULATORS:=60}" "${T_SCREEN:=120}" "${T_PARTIES:=60}" "${T_PAIRS:=60}" "${T_OWNERSHIP:=60}" "${T_DASK:=60}"
else
  : "${T_ENV:=25}" "${T_PYTEST:=130}" "${T_ACCUMULATORS:=50}" "${T_SCREEN:=100}" "${T_PARTIES:=45}" "${T_PAIRS:=40}" "${T_OWNERSHIP:=30}" "${T_DASK:=40}"  # 460 s of limits
fi

status() {  # stage, exit code, start time
  local seconds=$(( $(date +%s) - $3 ))
  printf '{"exit_code": %d, "seconds": %d, "timed_out": %s}\n' "$2" "$seconds" \
    "$([ "$2" = 124 ] || [ "$2" = 137 ] && echo true || echo false)" > "$WORK/status-$1.json"
  echo "== $1: exit $2 in ${seconds}s" | tee -a "$LOG"
}

wanted() { case ",$STAGES," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }

stage() {  # name, limit
  wanted "$1" || return 0
  local start; start=$(date +%s)
  echo "== $1 (limit $2 s)" | tee -a "$LOG"
  timeout -k 5 "$2" "$PY" benchmarks/gpu_check.py "$1" --work "$WORK" $DRY >> "$LOG" 2>&1
  status "$1" $? "$start"
  "$PY" benchmarks/gpu_check.py merge --work "$WORK" --out "$DEST" $DRY >> "$LOG" 2>&1
}

stage env "$T_ENV"

if wanted pytest; then
  start=$(date +%s)
  echo "== pytest (limit $T_PYTEST s)" | tee -a "$LOG"
  timeout -k 5 "$T_PYTEST" "$PY" -m pytest -q -p no:cacheprovider -k cupy -o addopts="" -rs \
    --junitxml="$DEST/pytest-junit.xml" tests/test_backends.py tests/test_similarity.py tests/test_kernels.py \
    tests/test_differential.py tests/test_ownership.py > "$DEST/pytest.txt" 2>&1
  status pytest $? "$start"
  tail -n 3 "$DEST/pytest.txt" | tee -a "$LOG"
fi

stage accumulators "$T_ACCUMULATORS"
stage screen "$T_SCREEN"
stage parties "$T_PARTIES"
stage pairs "$T_PAIRS"
stage ownership "$T_OWNERSHIP"
stage dask "$T_DASK"

tar -czf "$DEST/kernel-cache.tar.gz" -C "$WORK/cache" cupy numba 2>> "$LOG"
"$PY" benchmarks/gpu_check.py merge --work "$WORK" --out "$DEST" $DRY >> "$LOG" 2>&1
"$PY" - "$DEST/gpu-check.json" <<'EOF'
import json, sys
result = json.load(open(sys.argv[1]))
print(f"device {result['device']}  commit {result['commit']}  {result['date']}")
for stage, status in result["status"].items():
    print(f"  {stage:<13} exit {status['exit_code']:>3}  {status['seconds']:>4} s{'  TIMED OUT' if status['timed_out'] else ''}")
EOF
rm -rf "$WORK"

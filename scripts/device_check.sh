#!/usr/bin/env bash
# One device call does it all: build for the GPU with every core, run the whole
# test suite (GPU tests included) and the benchmark; results land in $OUT.
#   usage (on the GPU machine, repo root): bash scripts/device_check.sh [bench args...]
set -uo pipefail
OUT=${OUT:-$PWD/device_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
{
  date -u; git rev-parse --short HEAD 2>/dev/null || true
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  python3 -c "import jax, jaxlib; print('jax', jax.__version__, 'jaxlib', jaxlib.__version__, jax.devices())"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

echo "== build"
# CMake + Ninja with every core into a folder that survives while the machine
# stays warm (scripts/device_build.sh: a later call rebuilds only what
# changed); the extension lands in jax_fcm/, run from this tree.
# FCM_CUDA_ARCH (default 90a-real) and FCM_CMAKE_ARGS (e.g. -DJAX_FCM_LINEINFO=ON
# for source-level profiles) pass through.
start=$(date +%s)
if ! bash scripts/device_build.sh > "$OUT/build.log" 2>&1; then
  grep -E "error|FAILED" "$OUT/build.log" | head -20; tail -20 "$OUT/build.log"; exit 1
fi
echo "built in $(( $(date +%s) - start )) s"
grep -E "spill" "$OUT/build.log" | sort | uniq -c | sort -rn | head -5
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

echo "== tests"
# FCM_PYTEST_ARGS is parsed like shell words: FCM_PYTEST_ARGS='-m gpu -k "splits or walking"'.
eval "pytest_args=(${FCM_PYTEST_ARGS:-})"
python3 -P -m pytest -q -p no:cacheprovider tests "${pytest_args[@]}" 2>&1 | tee "$OUT/tests.log" | tail -25
tests_rc=${PIPESTATUS[0]}

echo "== benchmark"
python3 -P -m jax_fcm.bench --csv "$OUT/bench.csv" --markdown "$OUT/bench.md" --plot "$OUT/bench.png" "$@" \
  2> "$OUT/bench_progress.log"
bench_rc=$?
tail -5 "$OUT/bench_progress.log"
echo "tests rc=$tests_rc bench rc=$bench_rc"
exit $(( tests_rc || bench_rc ))

#!/usr/bin/env bash
# One device call does it all: build for the GPU with every core, run the whole
# test suite (GPU tests included) and the benchmark; results land in $OUT.
#   usage (on the GPU machine, repo root): bash scripts/device_check.sh [bench args...]
set -uo pipefail
OUT=${OUT:-$PWD/device_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
export CMAKE_BUILD_PARALLEL_LEVEL=$(nproc)
# Only the device's own architecture: a faster build than the default pair.
# FCM_CMAKE_ARGS adds options, e.g. -DJAX_FCM_LINEINFO=ON for source-level profiles.
export CMAKE_ARGS="-DCMAKE_CUDA_ARCHITECTURES=${FCM_CUDA_ARCH:-90a-real} -DJAX_FCM_CUDA=ON ${FCM_CMAKE_ARGS:-}"

{
  date -u; git rev-parse --short HEAD 2>/dev/null || true
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  python3 -c "import jax, jaxlib; print('jax', jax.__version__, 'jaxlib', jaxlib.__version__, jax.devices())"
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

echo "== build"
start=$(date +%s)
if ! python3 -m pip install --no-build-isolation --no-deps -v . > "$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"; exit 1
fi
echo "built in $(( $(date +%s) - start )) s"
grep -E "spill|registers" "$OUT/build.log" | sort | uniq -c | sort -rn | head -5

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

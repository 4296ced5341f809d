#!/usr/bin/env bash
# GPU hardening checks of issue 7, one device call (after a build, e.g. by
# scripts/device_check.sh): compute-sanitizer memcheck and racecheck on the
# fused kernel over GPU tests, a 10,000-call loop without device-memory
# growth, and the same outputs with XLA command buffers on and off.
#   usage (GPU machine, repo root): bash scripts/hardening_check.sh
set -uo pipefail
OUT=${OUT:-$PWD/device_out}
mkdir -p "$OUT"
# One cudaMalloc per buffer (no preallocated pool), so memcheck sees each
# buffer's real bounds; only our kernels are instrumented.
export XLA_PYTHON_CLIENT_ALLOCATOR=platform
sanitize=(compute-sanitizer --kernel-name kns=dw_pw_fused_kernel --error-exitcode 3)
pytest=(python3 -P -m pytest -q -p no:cacheprovider tests/test_dw_pw_numerics.py -m gpu)
status=0

echo "== memcheck"
"${sanitize[@]}" --tool memcheck "${pytest[@]}" -k "odd_shapes or walking or channel_splits" > "$OUT/memcheck.log" 2>&1
rc=$?; tail -3 "$OUT/memcheck.log"; echo "memcheck rc=$rc"; status=$((status || rc))

echo "== racecheck"
"${sanitize[@]}" --tool racecheck --racecheck-report hazard "${pytest[@]}" -k "walking or channel_splits" \
  > "$OUT/racecheck.log" 2>&1
rc=$?; tail -3 "$OUT/racecheck.log"; echo "racecheck rc=$rc"; status=$((status || rc))

unset XLA_PYTHON_CLIENT_ALLOCATOR
echo "== 10,000 calls"
python3 -P scripts/repeat_calls.py --calls 10000 2>&1 | tail -2; rc=${PIPESTATUS[0]}; status=$((status || rc))

echo "== command buffers on / off"
python3 -P scripts/repeat_calls.py --calls 10 --digest "$OUT/digest_on.txt" > /dev/null 2>&1
XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_enable_command_buffer=" \
  python3 -P scripts/repeat_calls.py --calls 10 --digest "$OUT/digest_off.txt" > /dev/null 2>&1
if cmp -s "$OUT/digest_on.txt" "$OUT/digest_off.txt"; then echo "identical"; else echo "DIFFERENT"; status=1; fi
echo "hardening status=$status"
exit $status

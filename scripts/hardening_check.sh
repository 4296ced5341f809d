#!/usr/bin/env bash
# GPU hardening checks of issue 7, one device call (after a build, e.g. by
# scripts/device_check.sh): compute-sanitizer memcheck and racecheck on a
# kernel over GPU tests, a 10,000-call loop without device-memory growth, and
# the same outputs with XLA command buffers on and off.
#   usage (GPU machine, repo root): bash scripts/hardening_check.sh [dw_pw | dw_pw_int8 | depthwise | depthwise_rows | mbconv |
#                                                                   pointwise | pw_pw | pw_pw_int8 | conv2d | convnext_block | pw_dw]
# dw_pw (default): the fused kernel, then the memory loop and command buffers;
# the others: that op's kernels' sanitizer runs only.
# Writes one file, $OUT/hardening.log (the device tool returns few files).
set -uo pipefail
OUT=${OUT:-$PWD/device_out}
mkdir -p "$OUT"
log="$OUT/hardening.log"
: > "$log"
# One cudaMalloc per buffer (no preallocated pool), so memcheck sees each
# buffer's real bounds; only our kernels are instrumented.
export XLA_PYTHON_CLIENT_ALLOCATOR=platform
# Sanitized runs are 10-100x slower: a subset of the GPU tests covering odd
# shapes, blocks walking several tiles and cluster splits, each bounded in time.
# A tree built by scripts/device_build.sh (extension in jax_fcm/) runs as it is.
if compgen -G "jax_fcm/_jax_fcm*.so" > /dev/null; then export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"; fi
target=${1:-dw_pw}
case "$target" in
  dw_pw)
    kernel=dw_pw_fused_kernel; tests=tests/test_dw_pw_numerics.py
    memcheck_k="odd_shapes and bfloat16 or walking and float32 or channel_splits and float16"
    racecheck_k="walking and bfloat16 or channel_splits and bfloat16";;
  depthwise)
    # Odd shapes: partial tiles and chunks, C not a multiple of the vector
    # (element-wise copies), 64-channel chunks; strides 1 and 2.
    kernel=depthwise_kernel; tests=tests/test_depthwise.py
    memcheck_k="odd_shapes and (bfloat16 or float32)"
    racecheck_k="odd_shapes and bfloat16";;
  depthwise_rows)
    # The 7x7 large-batch kernel: both tile widths, partial tiles and chunks,
    # element-wise copies and stores, persistent blocks staging ahead.
    kernel=depthwise_rows_kernel; tests=tests/test_depthwise.py
    memcheck_k="7x7_large and (bfloat16 or float32)"
    racecheck_k="7x7_large and bfloat16";;
  mbconv)
    # Odd shapes (partial chunks, Cin not a multiple of the vector) and the
    # cluster splits of the expanded channels.
    kernel=mbconv_kernel; tests=tests/test_mbconv.py
    memcheck_k="odd_shapes and (bfloat16 or float32) or channel_splits"
    racecheck_k="odd_shapes and bfloat16 or channel_splits and bfloat16";;
  pointwise)
    # Both pointwise kernels (mma.sync; wgmma on Hopper for the deep 16-bit
    # layouts): partial tiles in M, Cin and Cout, splits, ring wrap-around.
    kernel=pointwise; tests=tests/test_pointwise.py
    memcheck_k="layouts"
    racecheck_k="layouts and bfloat16";;
  pw_pw)
    # The fused PW -> PW kernel: every output tile, partial pixel tiles and
    # steps, element-wise copies (channel counts off the vector).
    kernel=pw_pw_kernel; tests=tests/test_pw_pw.py
    memcheck_k="layouts or unaligned"
    racecheck_k="layouts and bfloat16";;
  conv2d)
    # The pointwise kernel over window gathers (its instances for conv2d):
    # both gather paths, padding on every side, all-padding windows, partial
    # tiles and chunks, channel splits, 64-channel chunks.
    kernel=pointwise_kernel; tests=tests/test_conv2d.py
    memcheck_k="layers or layouts"
    racecheck_k="layers and bfloat16";;
  pw_dw)
    # The MBConv kernel without its projection (mbconv_kernel<Tr, false>):
    # odd shapes (partial chunks and tiles, Cin and Cmid off the vector,
    # several chunk groups per tile), both strides.
    kernel=mbconv_kernel; tests=tests/test_pw_dw.py
    memcheck_k="odd_shapes and (bfloat16 or float32)"
    racecheck_k="odd_shapes and bfloat16";;
  dw_pw_int8)
    # The fused kernel's int8 instances: odd shapes (partial chunks and
    # tiles, element-wise copies), both strides; the clamp ranges.
    kernel=dw_pw_fused_kernel; tests=tests/test_dw_pw_int8.py
    memcheck_k="odd_shapes or clamp_ranges"
    racecheck_k="odd_shapes";;
  pw_pw_int8)
    # The PW -> PW kernel's int8 instances: odd shapes (partial steps and
    # tiles, element-wise copies, the widest input), the clamp ranges.
    kernel=pw_pw_kernel; tests=tests/test_pw_pw_int8.py
    memcheck_k="odd_shapes or clamp_ranges"
    racecheck_k="odd_shapes";;
  convnext_block)
    # The wgmma PW -> PW kernel with ConvNeXt's block ends (the LayerNorm of
    # the resident rows in place, the residual epilogue): partial boxes of C,
    # partial pixel tiles and hidden steps, every output tile.
    kernel=pw_pw_wgmma_kernel; tests=tests/test_convnext_block.py
    memcheck_k="shapes and bfloat16"
    racecheck_k="shapes and float16 and not 56";;
  *) echo "unknown target $target (dw_pw, dw_pw_int8, depthwise, depthwise_rows, mbconv, pointwise, pw_pw, pw_pw_int8, conv2d, convnext_block or pw_dw)"
     exit 2;;
esac
# kns= matches kernel names containing $kernel (pointwise: both kernels).
sanitize=(timeout 240 compute-sanitizer --kernel-name "kns=$kernel" --error-exitcode 3)
pytest=(python3 -P -m pytest -q -p no:cacheprovider "$tests" -m gpu)
status=0

echo "== memcheck"
"${sanitize[@]}" --tool memcheck "${pytest[@]}" \
  -k "$memcheck_k" > /tmp/memcheck.log 2>&1
rc=$?; tail -40 /tmp/memcheck.log >> "$log"; tail -3 /tmp/memcheck.log; echo "memcheck rc=$rc" | tee -a "$log"
status=$((status || rc))

echo "== racecheck"
"${sanitize[@]}" --tool racecheck --racecheck-report hazard "${pytest[@]}" \
  -k "$racecheck_k" > /tmp/racecheck.log 2>&1
rc=$?; tail -40 /tmp/racecheck.log >> "$log"; tail -3 /tmp/racecheck.log; echo "racecheck rc=$rc" | tee -a "$log"
status=$((status || rc))

if [ "$target" != dw_pw ]; then
  echo "hardening status=$status" | tee -a "$log"; exit $status
fi
unset XLA_PYTHON_CLIENT_ALLOCATOR
# The loop and the command-buffer comparison call every op's kernels (scripts/repeat_calls.py OPS),
# once per check: with the default target only.
echo "== 10,000 calls"
python3 -P scripts/repeat_calls.py --calls 10000 2>&1 | tail -2 | tee -a "$log"; rc=${PIPESTATUS[0]}
status=$((status || rc))

echo "== command buffers on / off"
python3 -P scripts/repeat_calls.py --calls 10 --digest /tmp/digest_on.txt > /dev/null 2>&1
XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_enable_command_buffer=" \
  python3 -P scripts/repeat_calls.py --calls 10 --digest /tmp/digest_off.txt > /dev/null 2>&1
cat /tmp/digest_on.txt /tmp/digest_off.txt >> "$log"
if cmp -s /tmp/digest_on.txt /tmp/digest_off.txt && [ -s /tmp/digest_on.txt ]; then
  echo "command buffers on/off: identical outputs" | tee -a "$log"
else
  echo "command buffers on/off: DIFFERENT outputs" | tee -a "$log"; status=1
fi
echo "hardening status=$status" | tee -a "$log"
exit $status

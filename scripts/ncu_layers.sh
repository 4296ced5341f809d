#!/usr/bin/env bash
# Nsight Compute summaries of the fused kernel on a few suite layers, into $OUT:
# the section details (stall reasons, bank conflicts, excess sectors per
# access) and, with SOURCE=1, the per-instruction SASS table (stall samples
# and executed instructions per line; build with -DJAX_FCM_LINEINFO=ON for
# source lines).
#   usage (GPU machine, after the build): [SOURCE=1] [KERNEL=mbconv] bash scripts/ncu_layers.sh "mv1_112_32_64 64 bfloat16" ...
# (KERNEL: a regex of the kernel to profile, default dw_pw_fused; block names of bench_blocks.SUITE work too)
set -uo pipefail
OUT=${OUT:-$PWD/device_out}
for spec in "$@"; do
  read -r name n dtype <<< "$spec"
  tag="${name}_${n}_${dtype}"
  ncu --clock-control none -k "regex:${KERNEL:-dw_pw_fused}" -c 1 --print-details all \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
    --section MemoryWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables --section ComputeWorkloadAnalysis \
    --section InstructionStats --section SchedulerStats --section SourceCounters \
    ${SOURCE:+-o "/tmp/ncu_$tag" -f} \
    python3 -P scripts/profile_layer.py "$name" "$n" "$dtype" > "$OUT/ncu_$tag.txt" 2>&1
  if [ -n "${SOURCE:-}" ]; then
    ncu --import "/tmp/ncu_$tag.ncu-rep" --page details --print-details all > "$OUT/ncu_$tag.txt" 2>&1
    ncu --import "/tmp/ncu_$tag.ncu-rep" --page source --print-source sass --csv > "$OUT/ncu_sass_$tag.csv" 2>&1
  fi
  grep -E "Duration|Registers Per|Achieved Occupancy|Theoretical Occupancy|DRAM Throughput|Memory Throughput|Compute \(SM\)|Stall|Dynamic Shared|Issued Warp|Excessive|bank" \
    "$OUT/ncu_$tag.txt" | head -40
done

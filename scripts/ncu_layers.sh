#!/usr/bin/env bash
# Nsight Compute summaries of the fused kernel on a few suite layers, into $OUT.
#   usage (GPU machine, after the build): bash scripts/ncu_layers.sh "mv1_112_32_64 64 bfloat16" ...
set -uo pipefail
OUT=${OUT:-$PWD/device_out}
for spec in "$@"; do
  read -r name n dtype <<< "$spec"
  ncu --clock-control none -k regex:dw_pw_fused -c 1 \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats \
    --section MemoryWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables --section ComputeWorkloadAnalysis \
    --section InstructionStats --section SchedulerStats --section SourceCounters \
    python3 -P scripts/profile_layer.py "$name" "$n" "$dtype" > "$OUT/ncu_${name}_${n}_${dtype}.txt" 2>&1
  grep -E "Duration|Registers Per|Achieved Occupancy|Theoretical Occupancy|Block Limit|DRAM Throughput|Memory Throughput|Compute \(SM\)|Stall|Dynamic Shared" \
    "$OUT/ncu_${name}_${n}_${dtype}.txt" | head -30
done

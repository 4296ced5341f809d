#!/usr/bin/env bash
# Opcode histogram of one compiled fused-kernel instantiation (after a build),
# e.g.: bash scripts/sass_summary.sh bf16_k3_s1 'Li64ELi8ELi32E'   (tile_n=64, tile_h=8, 32-channel chunks)
set -uo pipefail
OUT=${OUT:-$PWD/device_out}
obj=$(find build -name "dw_pw_${1}.cu.o" | head -1)
cuobjdump -sass "$obj" | awk -v pat="$2" '/Function :/{keep = index($0, pat) > 0} keep' > "$OUT/sass_${1}.txt"
grep -oE '^\s+/\*[0-9a-f]{4}\*/\s+(@!?U?P[0-9T] )?[A-Z0-9_.]+' "$OUT/sass_${1}.txt" | awk '{print $NF}' |
  sed 's/\..*//' | sort | uniq -c | sort -rn | head -25
echo "total: $(grep -cE '^\s+/\*[0-9a-f]{4}\*/' "$OUT/sass_${1}.txt") instructions (static, all paths)"

"""Calls every op's kernels many times (round robin over a few layers of
each op's benchmark suite, chosen to reach each op's kernel variants) and
reports device-memory growth; optionally writes a digest of the outputs, so
runs under different XLA flags (command buffers on/off) can be compared bit
for bit.

    python3 -P scripts/repeat_calls.py --calls 10000
    XLA_FLAGS=--xla_gpu_enable_command_buffer= python3 -P scripts/repeat_calls.py --calls 10 --digest off.txt

Exit status 1 when bytes in use grew by more than --max-growth bytes over the
calls (checked where the device reports memory statistics: GPUs)."""

from __future__ import annotations

import argparse
import hashlib
import sys

import jax
import numpy as np

from jax_fcm import (bench, bench_blocks, bench_conv2d, bench_convnext, bench_depthwise, bench_pointwise, bench_pw_dw,
                     bench_pw_pw)

# op -> (benchmark module, the implementation that forces its kernel, layers).
OPS = {
    "dw_pw": (bench, "fused", ("mv1_112_32_64", "mv2_7_960_160", "mv2_56s2_144_32", "convnext_56_96_384_k7")),
    "depthwise": (bench_depthwise, "kernel", ("mv2_112s2_96", "convnext_14_384_k7", "effb0_14_672_k5")),
    "pointwise": (bench_pointwise, "kernel", ("mv2_56_24_144", "convnext_7_768_3072")),  # mma.sync; wgmma (16-bit)
    "pw_pw": (bench_pw_pw, "kernel", ("mv2_56_144_24_144", "convnext_56_96_384_96")),  # mma.sync; wgmma (16-bit)
    "mbconv": (bench_blocks, "fused", ("mv2_56_24_24", "effl_14_112_112_k5")),
    "pw_dw": (bench_pw_dw, "fused", ("mv2_56_24_144", "mv2_112s2_16_96")),  # mbconv's kernel without its projection
    "conv2d": (bench_conv2d, "kernel", ("mv2_stem_224", "mvit_local_14_128")),  # element-wise; vector gathers
    "convnext_block": (bench_convnext, "kernel", ("convnext_56_96", "convnext_28_192")),  # the wgmma kernel's ends
}


def bytes_in_use() -> int | None:
    stats = jax.devices()[0].memory_stats()
    return None if not stats else int(stats.get("bytes_in_use", 0))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--digest", help="write one sha256 per layer of its output to this file")
    parser.add_argument("--max-growth", type=int, default=0, help="bytes of growth allowed (default 0)")
    parser.add_argument("--ops", nargs="+", default=list(OPS), choices=list(OPS), help="the ops to call (default: all)")
    args = parser.parse_args(argv)

    calls = []
    for op_name in args.ops:
        module, implementation, names = OPS[op_name]
        suite = {layer.name: layer for layer in module.SUITE}
        for name in names:
            layer = suite[name]
            calls.append((f"{op_name}:{name}", jax.jit(module.op(layer, implementation)),
                          module.make_args(layer, args.batch, args.dtype, 0)))
    outputs = {name: jax.block_until_ready(fn(*inputs)) for name, fn, inputs in calls}  # compile, warm up
    before = bytes_in_use()
    for i in range(args.calls):
        name, fn, inputs = calls[i % len(calls)]
        out = fn(*inputs)
        if i % 100 == 99:
            jax.block_until_ready(out)
    jax.block_until_ready(out)
    del out
    after = bytes_in_use()

    if args.digest:
        with open(args.digest, "w") as f:
            for name, _, _ in calls:
                data = np.asarray(outputs[name]).tobytes()
                f.write(f"{name} {hashlib.sha256(data).hexdigest()}\n")
    device = jax.devices()[0].device_kind
    if before is None or after is None:
        print(f"{device}: {args.calls} calls; the device reports no memory statistics")
        return 0
    growth = after - before
    print(f"{device}: {args.calls} calls; bytes in use {before} -> {after} (growth {growth})")
    return 1 if growth > args.max_growth else 0


if __name__ == "__main__":
    sys.exit(main())

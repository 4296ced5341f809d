"""Calls the fused op many times and reports device-memory growth; optionally
writes a digest of its outputs, so runs under different XLA flags (command
buffers on/off) can be compared bit for bit.

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

from jax_fcm import bench

LAYERS = ("mv1_112_32_64", "mv2_7_960_160", "mv2_56s2_144_32", "convnext_56_96_384_k7")


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
    args = parser.parse_args(argv)

    suite = {layer.name: layer for layer in bench.SUITE}
    calls = []
    for name in LAYERS:
        layer = suite[name]
        calls.append((name, jax.jit(bench.op(layer, None)), bench.make_args(layer, args.batch, args.dtype, 0)))
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

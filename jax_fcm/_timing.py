"""Device-side timing of jitted JAX functions through the JAX profiler: the sum
of the GPU kernel durations per call, so host dispatch and launch gaps are out
of the figure (DESIGN.md section 6)."""

from __future__ import annotations

import glob
import math
import os
import tempfile
import time

import jax

_SKIP = ("memcpy", "memset")


def _gpu_kernel_ns(trace_dir: str) -> dict[str, int]:
    """Nanoseconds per GPU kernel name in the trace (copies and memsets left out)."""
    from jax.profiler import ProfileData

    paths = glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True)
    if not paths:
        raise RuntimeError("the profiler wrote no .xplane.pb")
    totals: dict[str, int] = {}
    for plane in ProfileData.from_file(paths[0]).planes:
        if not plane.name.startswith("/device:GPU:0"):
            continue
        for line in plane.lines:
            if not line.name.startswith("Stream"):
                continue
            for event in line.events:
                if not any(s in event.name.lower() for s in _SKIP):
                    totals[event.name] = totals.get(event.name, 0) + event.duration_ns
    return totals


def kernel_times_us(fn, arg_sets, iters: int = 30, warmup: int = 3) -> dict[str, float]:
    """Mean device time per call of each GPU kernel of jitted `fn` (by kernel
    name), rotating over `arg_sets` (several input sets, so that small
    problems are not timed out of L2)."""
    jitted = jax.jit(fn)
    for i in range(warmup):
        jax.block_until_ready(jitted(*arg_sets[i % len(arg_sets)]))
    with tempfile.TemporaryDirectory() as trace_dir:
        jax.profiler.start_trace(trace_dir)
        out = None
        for i in range(iters):
            out = jitted(*arg_sets[i % len(arg_sets)])
        jax.block_until_ready(out)
        jax.profiler.stop_trace()
        totals = _gpu_kernel_ns(trace_dir)
    return {name: ns / iters / 1e3 for name, ns in totals.items()}


def device_time_us(fn, arg_sets, iters: int = 30, warmup: int = 3) -> float:
    """Mean device time of one call of jitted `fn`: the sum of its kernels'
    times (kernel_times_us)."""
    total = sum(kernel_times_us(fn, arg_sets, iters, warmup).values())
    if total == 0:
        raise RuntimeError("no GPU kernel events in the profile (is JAX running on a GPU?)")
    return total


def copy_bandwidth_gbs(timer, nbytes: int = 256 * 2**20) -> float:
    """Read + write bandwidth (GB/s) of an elementwise pass over nbytes of
    float32, timed by timer(fn, arg_sets) like the ops (the benchmarks' HBM
    floor, the planner's measured DRAM bandwidth)."""
    import jax.numpy as jnp

    x = jnp.ones((nbytes // 4,), jnp.float32)
    us = timer(lambda a: a * 2.0 + 1.0, [(x,)])
    return 2 * x.nbytes / (us * 1e-6) / 1e9


def wall_time_us(fn, arg_sets, iters: int = 30, warmup: int = 3) -> float:
    """Host wall-clock per call (for the CPU backend, where there are no device events)."""
    jitted = jax.jit(fn)
    for i in range(warmup):
        jax.block_until_ready(jitted(*arg_sets[i % len(arg_sets)]))
    start = time.perf_counter()
    out = None
    for i in range(iters):
        out = jitted(*arg_sets[i % len(arg_sets)])
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / iters * 1e6


def geomean(values) -> float:
    """Geometric mean of the positive values (None and 0 skipped); nan if none."""
    values = [v for v in values if v and v > 0]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def rotation_sets(nbytes: int) -> int:
    """How many input sets a timing loop rotates over so that one call's
    operands (nbytes) are not served from the L2 by the previous call."""
    return max(1, min(8, math.ceil(200e6 / nbytes)))


def format_ratio(v) -> str:
    """A speed-up as "1.23x"; "–" where there is none."""
    return "–" if v is None or math.isnan(v) else f"{v:.2f}x"


def summary_lines(rows, name_key: str, ratios: dict[str, str]) -> list[str]:
    """Markdown summary per (dtype, N): the geomean of each speed-up column
    (ratios: header -> row key; rows without that value are skipped) and the
    row slowest against XLA ("speedup_vs_xla")."""
    headers = " | ".join(ratios)
    lines = ["", f"| dtype | N | {headers} | slowest {name_key} vs XLA |", "|---|---|" + "---|" * (len(ratios) + 1)]
    for key in sorted({(r["dtype"], r["n"]) for r in rows}):
        group = [r for r in rows if (r["dtype"], r["n"]) == key]
        worst = min(group, key=lambda r: r["speedup_vs_xla"])
        means = " | ".join(format_ratio(geomean(r.get(k) for r in group)) for k in ratios.values())
        lines.append(f"| {key[0]} | {key[1]} | {means} | {worst[name_key]} {worst['speedup_vs_xla']:.2f}x |")
    return lines

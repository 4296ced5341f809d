"""Planner CLI: `python -m jax_fcm.plan --gpu h100 --model mobilenet_v2 --batch 64 --dtype bfloat16`.

Prints, for every depthwise -> pointwise pair of the model, whether to fuse
(jax_fcm.planner: where the fused kernel measured faster), whether its whole
inverted-residual block runs as one jax_fcm.mbconv kernel and otherwise how
its 1x1 expansion runs (jax_fcm.pointwise or XLA), the fused pair
kernel's tile configuration, the traffic of both options and the traffic
model's times (not yet calibrated), and a total.
Runs without a GPU (presets); --gpu auto reads the running device."""

from __future__ import annotations

import argparse
import sys

import jax.numpy as jnp

from jax_fcm import gpu as gpus
from jax_fcm import model_layers, planner, tiling


def plan_model(model: str, batch: int, dtype, spec: gpus.GpuSpec, image_size: int = 224,
               width_multiplier: float = 1.0) -> list[tuple[str, planner.PairPlan, int]]:
    """(pair name, plan, the block's input channels before its expansion)."""
    itemsize = jnp.dtype(dtype).itemsize
    return [(name, planner.plan_pair(planner.PairLayer(batch, h, h, c, cout, k, stride, itemsize), spec), cin)
            for name, h, c, cout, k, stride, cin in model_layers.dw_pw_pairs(model, image_size, width_multiplier)]


def format_plan(rows, model: str, batch: int, dtype, spec: gpus.GpuSpec) -> str:
    mb = lambda b: f"{b / 2**20:.2f}"  # noqa: E731
    lines = [f"Plan for {model}, N = {batch}, {jnp.dtype(dtype).name}, on {spec.name} ({spec.sm_count} SMs, "
             f"{spec.dram_gbs:.0f} GB/s). Choice: where fused measured faster (jax_fcm.planner); µs: traffic "
             "model, not calibrated (kernel v3 measured 2-10x higher).", "",
             "| pair | H | C → Cout | k/s | choice | whole block | expansion | fused config | fused MB (issued / DRAM) | "
             "unfused MB | fused µs | unfused µs | reason |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    total_plan = total_unfused = 0.0
    for name, p, cin in rows:
        l = p.layer
        block = planner.plan_block(l, cin, spec, model_layers.block_activation(model))
        lines.append(f"| {name} | {l.h} | {l.c} → {l.cout} | {l.k}/{l.stride} | {pair_choice(p)} | {block} | "
                     f"{expansion_choice(p, cin, block, dtype, spec)} | {tiling.config_label(p.config)} | "
                     f"{mb(p.fused.issued)} / {mb(p.fused.unique)} | {mb(p.unfused.unique)} | {p.fused_us:.1f} | "
                     f"{p.unfused_us:.1f} | {p.reason} |")
        total_plan += p.fused_us if p.fuse else p.unfused_us
        total_unfused += p.unfused_us
    lines += ["", f"Total over the pairs (traffic model): planned {total_plan:.1f} µs, all unfused {total_unfused:.1f} µs "
                  f"({total_unfused / total_plan:.2f}x).",
              "", block_bytes_line(rows),
              "", f"As a Flax model's plan: fusion={tuple(flax_value(p, cin, spec, model) for _, p, cin in rows)}"]
    return "\n".join(lines)


def pair_choice(p: planner.PairPlan) -> str:
    """"fused", "split" (jax_fcm.depthwise + XLA's 1x1 conv) or "unfused" (XLA)."""
    if p.fuse:
        return "fused"
    return "split" if planner.use_depthwise_kernel(p.layer.k, p.layer.stride) else "unfused"


def expansion_choice(p: planner.PairPlan, cin: int, block: str, dtype, spec: gpus.GpuSpec) -> str:
    """How the block's 1x1 expansion runs under fusion="auto": inside the
    whole-block kernel, as jax_fcm.pointwise (planner.use_pointwise_kernel),
    as XLA's 1x1 convolution, or "–" without an expansion."""
    if block == "–":
        return "–"
    if block == "mbconv":
        return "in block"
    l = p.layer
    return "pointwise" if planner.use_pointwise_kernel((l.n, l.h, l.w, cin), l.c, dtype, spec) else "XLA"


def flax_value(p: planner.PairPlan, cin: int, spec: gpus.GpuSpec, model: str = "mobilenet_v2"):
    """The plan entry a Flax model takes: "block" for a whole-block kernel,
    True for a fused pair, "split" or False."""
    if planner.plan_block(p.layer, cin, spec, model_layers.block_activation(model)) == "mbconv":
        return "block"
    return {"fused": True, "split": "split", "unfused": False}[pair_choice(p)]


def block_bytes_line(rows) -> str:
    """DRAM bytes over the model's blocks (expansions included) for three
    options: everything unfused, the pairs fused as planned, whole blocks fused."""
    expansions = sum(planner.expansion_bytes(p.layer, cin) for _, p, cin in rows)
    unfused = expansions + sum(p.unfused.unique for _, p, _ in rows)
    planned = expansions + sum((p.fused if p.fuse else p.unfused).unique for _, p, _ in rows)
    blocks = sum(planner.whole_block_bytes(p.layer, cin) for _, p, cin in rows)
    return (f"DRAM bytes over the blocks, 1x1 expansions included: all unfused {unfused / 2**20:.1f} MB, pairs fused as "
            f"planned {planned / 2**20:.1f} MB, whole blocks fused (jax_fcm.mbconv: x, output and weights once) "
            f"{blocks / 2**20:.1f} MB.")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jax_fcm.plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", default="auto", choices=["auto", *gpus.PRESETS])
    parser.add_argument("--model", default="mobilenet_v2", choices=model_layers.MODELS)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--width-multiplier", type=float, default=1.0)
    args = parser.parse_args(argv)
    spec = gpus.detect() if args.gpu == "auto" else gpus.PRESETS[args.gpu]
    rows = plan_model(args.model, args.batch, args.dtype, spec, args.image_size, args.width_multiplier)
    print(format_plan(rows, args.model, args.batch, args.dtype, spec))
    return 0


if __name__ == "__main__":
    sys.exit(main())

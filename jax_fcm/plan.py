"""Planner CLI: `python -m jax_fcm.plan --gpu h100 --model mobilenet_v2 --batch 64 --dtype bfloat16`.

Prints, for every depthwise -> pointwise pair of the model, whether to fuse
(jax_fcm.planner: where the fused kernel measured faster), whether its whole
inverted-residual block runs as one jax_fcm.mbconv kernel and otherwise how
its 1x1 expansion runs (jax_fcm.pointwise or XLA), the fused pair
kernel's tile configuration, the traffic of both options and the traffic
model's calibrated times, and a total. For ConvNeXt (no such
pairs: a LayerNorm follows each depthwise conv), per stage: the 7x7
depthwise conv's kernel and how each block's MLP runs (one jax_fcm.pw_pw
kernel, or its expansion on jax_fcm.pointwise, or XLA), with its traffic.
Then, for every model, its dense convolutions (stems; MobileViT's 3x3s):
jax_fcm.conv2d or XLA's, and why. Runs without a GPU (presets); --gpu auto reads the running device."""

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


def format_plan(rows, model: str, batch: int, dtype, spec: gpus.GpuSpec, image_size: int = 224,
                width_multiplier: float = 1.0) -> str:
    mb = lambda b: f"{b / 2**20:.2f}"  # noqa: E731
    lines = [f"Plan for {model}, N = {batch}, {jnp.dtype(dtype).name}, on {spec.name} ({spec.sm_count} SMs, "
             f"{spec.dram_gbs:.0f} GB/s). Choice: where fused measured faster (jax_fcm.planner); µs: traffic "
             "model calibrated on H100 measurements (~16 % rms; planner.FUSED_CALIBRATION).", "",
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
    return "\n".join(lines + dense_conv_lines(model, batch, image_size, width_multiplier))


def plan_convnext(model: str, batch: int, dtype, spec: gpus.GpuSpec, image_size: int = 224) -> list[dict]:
    """One row per stage: blocks, H, C, the depthwise conv's kernel (and which
    CUDA kernel runs it), how the rest of the block runs (one convnext_block
    kernel, planner.layer_norm_mlp_choice, else the MLP as
    planner.convnext_mlp_plan says) and the DRAM bytes of that rest
    (LayerNorm, MLP, residual) as planned and as XLA's, for every block of
    the stage together."""
    itemsize = jnp.dtype(dtype).itemsize
    rows = []
    for blocks, h, c in model_layers.convnext_stages(model[len("convnext_"):], image_size):
        x_shape = (batch, h, h, c)
        whole, reason = planner.layer_norm_mlp_choice(x_shape, c, dtype, spec)
        if whole:
            tail = "convnext_block"
        else:
            tail, mlp_reason = planner.convnext_mlp_plan(x_shape, c, dtype, spec)
            reason = f"{reason}; MLP: {mlp_reason}"
        rows.append(dict(blocks=blocks, h=h, c=c, tail=tail, reason=reason,
                         depthwise=(f"jax_fcm.depthwise ({planner.depthwise_kernel(batch, h, h, c, 7, 1, spec)})"
                                    if planner.use_depthwise_kernel(7, 1) else "XLA"),
                         planned=blocks * planner.convnext_tail_bytes(x_shape, c, itemsize, tail),
                         xla=blocks * planner.convnext_tail_bytes(x_shape, c, itemsize, "XLA")))
    return rows


def format_convnext_plan(rows, model: str, batch: int, dtype, spec: gpus.GpuSpec, image_size: int = 224) -> str:
    mb = lambda b: f"{b / 2**20:.1f}"  # noqa: E731
    lines = [f"Plan for {model}, N = {batch}, {jnp.dtype(dtype).name}, on {spec.name} ({spec.sm_count} SMs). "
             "Per stage, every block alike: its 7x7 depthwise conv, then the rest of the block (LayerNorm, "
             "MLP C -> 4C, GELU, -> C, layer-scaled residual): one jax_fcm.convnext_block kernel where "
             "jax_fcm.planner.layer_norm_mlp_choice picks it, else XLA's LayerNorm and residual around the MLP as "
             "jax_fcm.planner.convnext_mlp_plan says (where the kernels measured faster).",
             "", "| stage | blocks | H | C | 7x7 depthwise | LayerNorm + MLP + residual | DRAM MB (planned / XLA) "
             "| reason |",
             "|---|---|---|---|---|---|---|---|"]
    for stage, r in enumerate(rows):
        lines.append(f"| {stage} | {r['blocks']} | {r['h']} | {r['c']} → {4 * r['c']} → {r['c']} | {r['depthwise']} | "
                     f"{r['tail']} | {mb(r['planned'])} / {mb(r['xla'])} | {r['reason']} |")
    planned, xla = sum(r["planned"] for r in rows), sum(r["xla"] for r in rows)
    lines += ["", f"DRAM bytes after the depthwise convs over the model: planned {mb(planned)} MB, XLA's "
                  f"{mb(xla)} MB.",
              "", f"As a Flax model's plan: ConvNeXt({model[len('convnext_'):]!r}, fusion=\"auto\") runs this."]
    return "\n".join(lines + dense_conv_lines(model, batch, image_size))


def dense_conv_lines(model: str, batch: int, image_size: int = 224, width_multiplier: float = 1.0) -> list[str]:
    """A table of the model's dense convolutions (model_layers.dense_convs):
    jax_fcm.conv2d or XLA's convolution, as planner.conv2d_choice decides
    for the Flax layers, and why."""
    lines = ["", "Dense convolutions (jax_fcm.planner.conv2d_choice: jax_fcm.conv2d where it measured faster than XLA's):",
             "", "| layer | H | Cin → Cout | k/s | runs | reason |", "|---|---|---|---|---|---|"]
    for name, h, cin, cout, k, stride, padding in model_layers.dense_convs(model, image_size, width_multiplier):
        kernel, reason = planner.conv2d_choice((batch, h, h, cin), (k, k, cin, cout), stride, padding)
        lines.append(f"| {name} | {h} | {cin} → {cout} | {k}/{stride} | {'conv2d' if kernel else 'XLA'} | {reason} |")
    return lines


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
    """DRAM bytes over the model's blocks (expansions included) for four
    options: everything unfused, the pairs fused as planned, the expansions
    fused into the depthwise convs instead (PW -> DW as jax_fcm.pw_dw, then the
    1x1 projection), whole blocks fused."""
    expansions = sum(planner.expansion_bytes(p.layer, cin) for _, p, cin in rows)
    unfused = expansions + sum(p.unfused.unique for _, p, _ in rows)
    planned = expansions + sum((p.fused if p.fuse else p.unfused).unique for _, p, _ in rows)
    pw_dw = sum(pw_dw_then_projection_bytes(p, cin) for _, p, cin in rows)
    blocks = sum(planner.whole_block_bytes(p.layer, cin) for _, p, cin in rows)
    return (f"DRAM bytes over the blocks, 1x1 expansions included: all unfused {unfused / 2**20:.1f} MB, pairs fused as "
            f"planned {planned / 2**20:.1f} MB, expansions fused into the depthwise convs instead (PW -> DW, "
            f"jax_fcm.pw_dw) {pw_dw / 2**20:.1f} MB, whole blocks fused (jax_fcm.mbconv: x, output and weights once) "
            f"{blocks / 2**20:.1f} MB.")


def pw_dw_then_projection_bytes(p: planner.PairPlan, cin: int) -> int:
    """A block's DRAM bytes with its expansion fused into the depthwise conv
    and the 1x1 projection on its own (reading the depthwise result); the
    pair as planned where the block has no expansion."""
    l = p.layer
    if cin == l.c:
        return (p.fused if p.fuse else p.unfused).unique
    projection = (l.n * l.ho * l.wo * (l.c + l.cout) + l.c * l.cout + l.cout) * l.itemsize
    return planner.pw_dw_traffic(l, cin).unique + projection


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jax_fcm.plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", default="auto", choices=["auto", *gpus.PRESETS])
    parser.add_argument("--model", default="mobilenet_v2", choices=model_layers.MODELS + model_layers.CONVNEXT_MODELS)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--dtype", default="bfloat16", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--width-multiplier", type=float, default=1.0)
    args = parser.parse_args(argv)
    # auto: the running device's attributes and its measured copy bandwidth (the calibrated times use it).
    spec = gpus.detect(measure_bandwidth=True) if args.gpu == "auto" else gpus.PRESETS[args.gpu]
    if args.model in model_layers.CONVNEXT_MODELS:
        if args.width_multiplier != 1.0:
            parser.error("--width-multiplier applies to the MobileNets and MobileViT, not ConvNeXt")
        print(format_convnext_plan(plan_convnext(args.model, args.batch, args.dtype, spec, args.image_size),
                                   args.model, args.batch, args.dtype, spec, args.image_size))
        return 0
    rows = plan_model(args.model, args.batch, args.dtype, spec, args.image_size, args.width_multiplier)
    print(format_plan(rows, args.model, args.batch, args.dtype, spec, args.image_size, args.width_multiplier))
    return 0


if __name__ == "__main__":
    sys.exit(main())

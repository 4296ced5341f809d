"""Block suite of `python -m jax_fcm.bench --blocks`: whole inverted-residual
(MBConv) blocks through `jax_fcm.mbconv` against XLA running the same block
(`implementation="xla"`, lax convolutions under jit) and against the pair
path (the expansion through XLA, then the fused `jax_fcm.dw_pw`: what the
models ran before the whole-block kernel), with the HBM floor of a fused
block (x, output and weights read or written once)."""

from __future__ import annotations

import dataclasses
import sys
from typing import Callable

import jax.numpy as jnp
import numpy as np

import jax_fcm
from jax_fcm._timing import rotation_sets, summary_lines
from jax_fcm.reference import pointwise_conv


@dataclasses.dataclass(frozen=True)
class Block:
    name: str
    hw: int
    cin: int
    cmid: int
    cout: int
    k: int = 3
    stride: int = 1
    activation: str = "relu6"

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.cin == self.cout


# MobileNetV2 (t = 6) at every resolution, and EfficientNet-Lite0's 5x5 blocks.
SUITE = (
    Block("mv2_112_16_24s2", 112, 16, 96, 24, stride=2),
    Block("mv2_56_24_24", 56, 24, 144, 24),
    Block("mv2_56_24_32s2", 56, 24, 144, 32, stride=2),
    Block("mv2_28_32_32", 28, 32, 192, 32),
    Block("mv2_28_32_64s2", 28, 32, 192, 64, stride=2),
    Block("mv2_14_64_64", 14, 64, 384, 64),
    Block("mv2_14_96_96", 14, 96, 576, 96),
    Block("mv2_14_96_160s2", 14, 96, 576, 160, stride=2),
    Block("mv2_7_160_160", 7, 160, 960, 160),
    Block("mv2_7_160_320", 7, 160, 960, 320),
    Block("effl_28_40_40_k5", 28, 40, 240, 40, k=5),
    Block("effl_14_112_112_k5", 14, 112, 672, 112, k=5),
    Block("effl_7_192_192_k5", 7, 192, 1152, 192, k=5),
)


def block_bytes(block: Block, n: int, dtype) -> int:
    """Fewest bytes a fused block must move: x, the output and the weights once."""
    ho = -(-block.hw // block.stride)
    weights = (block.cin * block.cmid + block.k * block.k * block.cmid + block.cmid * block.cout
               + 2 * block.cmid + block.cout)
    return (n * block.hw * block.hw * block.cin + n * ho * ho * block.cout + weights) * jnp.dtype(dtype).itemsize


def make_args(block: Block, n: int, dtype, seed: int):
    rng = np.random.default_rng(seed)

    def arr(shape, scale):
        return jnp.asarray(rng.standard_normal(shape) * scale, dtype)

    return (arr((n, block.hw, block.hw, block.cin), 1.0), arr((1, 1, block.cin, block.cmid), block.cin ** -0.5),
            arr((block.k, block.k, 1, block.cmid), 1.0 / block.k), arr((1, 1, block.cmid, block.cout), block.cmid ** -0.5),
            arr((block.cmid,), 0.1), arr((block.cmid,), 0.1), arr((block.cout,), 0.1))


def op(block: Block, implementation):
    """The block as jax_fcm.mbconv(implementation=...), or with "pair" as an
    XLA 1x1 expansion followed by jax_fcm.dw_pw."""

    def f(x, we, wd, wp, be, bd, bp):
        if implementation == "pair":
            mid = pointwise_conv(x, we, be, activation=block.activation, precision=None)
            y = jax_fcm.dw_pw(mid, wd, wp, bd, bp, strides=block.stride, dw_activation=block.activation)
            return y + x if block.residual else y
        return jax_fcm.mbconv(x, we, wd, wp, be, bd, bp, strides=block.stride, activation=block.activation,
                              residual=block.residual, implementation=implementation)

    return f


def time_blocks(blocks, batches, dtypes, timer: Callable, bandwidth_gbs: float, on_row=None) -> list[dict]:
    rows = []
    total = len(blocks) * len(batches) * len(dtypes)
    for dtype_name in dtypes:
        dtype = jnp.dtype(dtype_name)
        for n in batches:
            for block in blocks:
                nbytes = block_bytes(block, n, dtype)
                sets = rotation_sets(nbytes)
                arg_sets = [make_args(block, n, dtype, seed) for seed in range(sets)]
                fused, xla = timer(op(block, None), arg_sets), timer(op(block, "xla"), arg_sets)
                pair = timer(op(block, "pair"), arg_sets)
                floor = nbytes / (bandwidth_gbs * 1e9) * 1e6
                rows.append(dict(block=block.name, n=n, dtype=dtype_name, fused_us=fused, xla_us=xla, pair_us=pair,
                                 floor_us=floor, speedup_vs_xla=xla / fused, speedup_vs_pair=pair / fused,
                                 fused_over_floor=fused / floor))
                print(f"[{len(rows)}/{total}] {dtype_name} N={n} {block.name}: fused {fused:.1f} us, xla {xla:.1f} us, "
                      f"pair {pair:.1f} us, floor {floor:.1f} us", file=sys.stderr, flush=True)
                if on_row:
                    on_row(rows)
    return rows


def format_table(rows, device: str, bandwidth_gbs: float, timing: str) -> str:
    lines = [f"Device: {device}; copy bandwidth {bandwidth_gbs:.0f} GB/s (read+write); {timing} per block call (us).",
             "pair: XLA 1x1 expansion + jax_fcm.dw_pw.", "",
             "| dtype | N | block | jax_fcm.mbconv | XLA | pair | HBM floor | vs XLA | vs pair | fused/floor |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['dtype']} | {r['n']} | {r['block']} | {r['fused_us']:.1f} | {r['xla_us']:.1f} | "
                     f"{r['pair_us']:.1f} | {r['floor_us']:.1f} | {r['speedup_vs_xla']:.2f}x | "
                     f"{r['speedup_vs_pair']:.2f}x | {r['fused_over_floor']:.2f} |")
    lines += summary_lines(rows, "block", {"geomean vs XLA": "speedup_vs_xla", "vs pair": "speedup_vs_pair"})
    return "\n".join(lines)

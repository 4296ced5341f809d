"""Layer suite of `python -m jax_fcm.bench --depthwise`: standalone depthwise
convolutions (+ bias + activation) through `jax_fcm.depthwise` against XLA
running the same layer (`implementation="xla"`: lax.conv with
feature_group_count=C, bias and activation under jit), cuDNN through PyTorch
where it is installed, and the HBM floor (input, output and weights once).

The layers are the depthwise convolutions of the zoo's models that stay
unfused: every stride-2 and deep MobileNetV2 depthwise layer, ConvNeXt's 7x7
ones (a LayerNorm follows) and EfficientNet's 5x5 ones (a squeeze-excite
follows in B0)."""

from __future__ import annotations

import dataclasses
import sys
from typing import Callable

import jax.numpy as jnp
import numpy as np

import jax_fcm
from jax_fcm import _torch_timing
from jax_fcm._timing import format_ratio, rotation_sets, summary_lines


@dataclasses.dataclass(frozen=True)
class DwLayer:
    name: str
    hw: int
    c: int
    k: int = 3
    stride: int = 1
    activation: str | None = "relu6"


SUITE = (
    DwLayer("mv2_112_32", 112, 32),
    DwLayer("mv2_112s2_96", 112, 96, stride=2),
    DwLayer("mv2_56_144", 56, 144),
    DwLayer("mv2_56s2_144", 56, 144, stride=2),
    DwLayer("mv2_28_192", 28, 192),
    DwLayer("mv2_14_576", 14, 576),
    DwLayer("mv2_14s2_576", 14, 576, stride=2),
    DwLayer("mv2_7_960", 7, 960),
    DwLayer("convnext_56_96_k7", 56, 96, k=7, activation=None),
    DwLayer("convnext_28_192_k7", 28, 192, k=7, activation=None),
    DwLayer("convnext_14_384_k7", 14, 384, k=7, activation=None),
    DwLayer("convnext_7_768_k7", 7, 768, k=7, activation=None),
    DwLayer("effb0_56s2_144_k5", 56, 144, k=5, stride=2, activation="silu"),
    DwLayer("effb0_14_672_k5", 14, 672, k=5, activation="silu"),
    DwLayer("effb0_7_1152_k5", 7, 1152, k=5, activation="silu"),
)


def layer_bytes(layer: DwLayer, n: int, dtype) -> int:
    """Fewest bytes the layer must move: input, output and weights once."""
    ho = -(-layer.hw // layer.stride)
    elems = n * layer.hw * layer.hw * layer.c + n * ho * ho * layer.c + (layer.k * layer.k + 1) * layer.c
    return elems * jnp.dtype(dtype).itemsize


def make_args(layer: DwLayer, n: int, dtype, seed: int):
    rng = np.random.default_rng(seed)
    return (jnp.asarray(rng.standard_normal((n, layer.hw, layer.hw, layer.c)), dtype),
            jnp.asarray(rng.standard_normal((layer.k, layer.k, 1, layer.c)) / layer.k, dtype),
            jnp.asarray(rng.standard_normal((layer.c,)) * 0.1, dtype))


def op(layer: DwLayer, implementation):
    def f(x, kernel, bias):
        return jax_fcm.depthwise(x, kernel, bias, strides=layer.stride, padding="SAME", activation=layer.activation,
                                 implementation=implementation)

    return f


def torch_time_us(layer: DwLayer, n: int, dtype, iters: int) -> float | None:
    """The layer in cuDNN (torch.nn.Conv2d(groups=C) + activation); None without torch + CUDA."""

    def build(torch):
        return torch.nn.Sequential(*_torch_timing.depthwise_layers(torch, layer.c, layer.k, layer.stride,
                                                                   layer.activation))

    return _torch_timing.torch_net_time_us(build, n, layer.c, layer.hw, dtype, iters)


def time_layers(layers, batches, dtypes, timer: Callable, bandwidth_gbs: float, torch_timer=None,
                on_row=None) -> list[dict]:
    """torch_timer(layer, n, dtype) -> cuDNN us or None."""
    rows = []
    total = len(layers) * len(batches) * len(dtypes)
    for dtype_name in dtypes:
        dtype = jnp.dtype(dtype_name)
        for n in batches:
            for layer in layers:
                nbytes = layer_bytes(layer, n, dtype)
                sets = rotation_sets(nbytes)
                arg_sets = [make_args(layer, n, dtype, seed) for seed in range(sets)]
                ours, xla = timer(op(layer, None), arg_sets), timer(op(layer, "xla"), arg_sets)
                cudnn = torch_timer(layer, n, dtype) if torch_timer else None
                floor = nbytes / (bandwidth_gbs * 1e9) * 1e6
                rows.append(dict(layer=layer.name, n=n, dtype=dtype_name, jax_fcm_us=ours, xla_us=xla, cudnn_us=cudnn,
                                 floor_us=floor, speedup_vs_xla=xla / ours,
                                 speedup_vs_cudnn=cudnn / ours if cudnn else None, over_floor=ours / floor,
                                 xla_over_floor=xla / floor))
                print(f"[{len(rows)}/{total}] {dtype_name} N={n} {layer.name}: jax_fcm {ours:.1f} us, xla {xla:.1f} us, "
                      f"cudnn {cudnn or float('nan'):.1f} us, floor {floor:.1f} us", file=sys.stderr, flush=True)
                if on_row:
                    on_row(rows)
    return rows


def format_table(rows, device: str, bandwidth_gbs: float, timing: str) -> str:
    lines = [f"Device: {device}; copy bandwidth {bandwidth_gbs:.0f} GB/s (read+write); {timing} per call (us).", "",
             "| dtype | N | layer | jax_fcm.depthwise | XLA | cuDNN | HBM floor | vs XLA | vs cuDNN | jax_fcm/floor "
             "| XLA/floor |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cudnn = "–" if r["cudnn_us"] is None else f"{r['cudnn_us']:.1f}"
        lines.append(f"| {r['dtype']} | {r['n']} | {r['layer']} | {r['jax_fcm_us']:.1f} | {r['xla_us']:.1f} | {cudnn} | "
                     f"{r['floor_us']:.1f} | {format_ratio(r['speedup_vs_xla'])} | {format_ratio(r['speedup_vs_cudnn'])} | "
                     f"{r['over_floor']:.2f} | {r['xla_over_floor']:.2f} |")
    lines += summary_lines(rows, "layer", {"geomean vs XLA": "speedup_vs_xla", "vs cuDNN": "speedup_vs_cudnn"})
    return "\n".join(lines)

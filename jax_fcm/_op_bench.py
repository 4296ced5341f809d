"""The timing loop and table shared by the standalone-op suites of
`python -m jax_fcm.bench` (--depthwise, --pointwise): each suite module
gives OP_NAME, SUITE and, per layer, layer_bytes(layer, n, dtype),
make_args(layer, n, dtype, seed), op(layer, implementation) and
torch_time_us(layer, n, dtype, iters). Every layer runs through the jax_fcm
kernel and through XLA (implementation="xla": the same math as plain lax ops
under jit), beside cuDNN (PyTorch) where installed and the HBM floor."""

from __future__ import annotations

import sys
from typing import Callable

import jax.numpy as jnp

from jax_fcm._timing import format_ratio, rotation_sets, summary_lines


def time_layers(suite, layers, batches, dtypes, timer: Callable, bandwidth_gbs: float, torch_timer=None,
                on_row=None) -> list[dict]:
    """timer(fn, arg_sets) -> us per call; torch_timer(layer, n, dtype) -> cuDNN us or None."""
    rows = []
    total = len(layers) * len(batches) * len(dtypes)
    for dtype_name in dtypes:
        dtype = jnp.dtype(dtype_name)
        for n in batches:
            for layer in layers:
                nbytes = suite.layer_bytes(layer, n, dtype)
                arg_sets = [suite.make_args(layer, n, dtype, seed) for seed in range(rotation_sets(nbytes))]
                ours, xla = timer(suite.op(layer, None), arg_sets), timer(suite.op(layer, "xla"), arg_sets)
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


def format_table(op_name: str, rows, device: str, bandwidth_gbs: float, timing: str) -> str:
    lines = [f"Device: {device}; copy bandwidth {bandwidth_gbs:.0f} GB/s (read+write); {timing} per call (us).", "",
             f"| dtype | N | layer | {op_name} | XLA | cuDNN | HBM floor | vs XLA | vs cuDNN | jax_fcm/floor "
             "| XLA/floor |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cudnn = "–" if r["cudnn_us"] is None else f"{r['cudnn_us']:.1f}"
        lines.append(f"| {r['dtype']} | {r['n']} | {r['layer']} | {r['jax_fcm_us']:.1f} | {r['xla_us']:.1f} | {cudnn} | "
                     f"{r['floor_us']:.1f} | {format_ratio(r['speedup_vs_xla'])} | {format_ratio(r['speedup_vs_cudnn'])} | "
                     f"{r['over_floor']:.2f} | {r['xla_over_floor']:.2f} |")
    lines += summary_lines(rows, "layer", {"geomean vs XLA": "speedup_vs_xla", "vs cuDNN": "speedup_vs_cudnn"})
    return "\n".join(lines)

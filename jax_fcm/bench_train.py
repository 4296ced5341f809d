"""Training-step timing for `python -m jax_fcm.bench --train`: forward and
backward of one DW->PW layer (the output and the gradients of all five
operands for a fixed output cotangent), jax_fcm vs XLA, over the layer suite.

jax_fcm's backward is today the lax reference (jax_fcm.dw_pw's custom VJP
recomputes the depthwise intermediate with lax), so this measures what a
training step costs now and is the baseline for fused backward kernels."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np


def train_step(op):
    """(x, dw, pw, dwb, pwb, cotangent) -> (output, gradients) of op."""

    def step(x, dw, pw, dwb, pwb, cotangent):
        out, vjp = jax.vjp(op, x, dw, pw, dwb, pwb)
        return out, vjp(cotangent)

    return step


def with_cotangent(args, out_shape, dtype, seed: int):
    rng = np.random.default_rng(seed + 1000)
    return (*args, jnp.asarray(rng.standard_normal(out_shape), dtype))


def time_training(layers, batches, dtypes, timer, make_args, op, on_row=None) -> list[dict]:
    """Rows of layer, n, dtype, forward+backward time of jax_fcm and XLA (us);
    on_row(rows) after each row."""
    rows = []
    total = len(layers) * len(batches) * len(dtypes)
    for dtype_name in dtypes:
        dtype = jnp.dtype(dtype_name)
        for n in batches:
            for layer in layers:
                ho = -(-layer.hw // layer.stride)
                arg_sets = [with_cotangent(make_args(layer, n, dtype, seed), (n, ho, ho, layer.cout), dtype, seed)
                            for seed in range(2)]
                fused = timer(train_step(op(layer, None)), arg_sets)
                xla = timer(train_step(op(layer, "xla")), arg_sets)
                rows.append(dict(layer=layer.name, n=n, dtype=dtype_name, fused_train_us=fused, xla_train_us=xla,
                                 speedup_vs_xla=xla / fused))
                print(f"[{len(rows)}/{total}] {dtype_name} N={n} {layer.name}: forward+backward fused {fused:.1f} us, "
                      f"xla {xla:.1f} us", file=sys.stderr, flush=True)
                if on_row:
                    on_row(rows)
    return rows


def format_training_table(rows, device: str, timing: str) -> str:
    lines = [f"Device: {device}; {timing}; forward + backward of one layer (output and all five gradients), us.",
             "", "| dtype | N | layer | jax_fcm | XLA | vs XLA |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['dtype']} | {r['n']} | {r['layer']} | {r['fused_train_us']:.1f} | "
                     f"{r['xla_train_us']:.1f} | {r['speedup_vs_xla']:.2f}x |")
    return "\n".join(lines)

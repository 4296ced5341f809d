"""End-to-end model timing for `python -m jax_fcm.bench --models`: each model
under jax.jit in inference mode, fused (fusion="auto") vs the stock Flax model
(fusion="never", same variables), per batch of images."""

from __future__ import annotations

import sys
from typing import Callable

import jax
import jax.numpy as jnp

from flax_models.mobilenet import EfficientNetLite0, MobileNetV1, MobileNetV2

MODELS: dict[str, Callable] = {
    "mobilenet_v1": lambda **kw: MobileNetV1(**kw),
    "mobilenet_v2": lambda **kw: MobileNetV2(**kw),
    "efficientnet_lite0": lambda **kw: EfficientNetLite0(**kw),
}


def time_models(names, batches, dtypes, timer: Callable, image_size: int = 224) -> list[dict]:
    """Rows of model, n, dtype, fused/stock time per batch (ms), speed-up and
    fused images/s. timer(fn, arg_sets) -> microseconds per call."""
    rows = []
    for name in names:
        for dtype_name in dtypes:
            dtype = jnp.dtype(dtype_name)
            stock = MODELS[name](fusion="never", dtype=dtype)
            fused = MODELS[name](fusion="auto", dtype=dtype)
            variables = jax.jit(stock.init)(jax.random.key(0), jnp.zeros((1, image_size, image_size, 3), dtype))
            for n in batches:
                images = jax.random.normal(jax.random.key(n), (n, image_size, image_size, 3), dtype)
                arg_sets = [(variables, images)]
                fused_ms = timer(lambda v, x: fused.apply(v, x), arg_sets) / 1e3
                stock_ms = timer(lambda v, x: stock.apply(v, x), arg_sets) / 1e3
                rows.append(dict(model=name, n=n, dtype=dtype_name, fused_ms=fused_ms, stock_ms=stock_ms,
                                 speedup=stock_ms / fused_ms, fused_images_per_s=n / fused_ms * 1e3))
                print(f"[{len(rows)}] {name} {dtype_name} N={n}: fused {fused_ms:.3f} ms, stock {stock_ms:.3f} ms",
                      file=sys.stderr, flush=True)
    return rows


def format_model_table(rows, device: str, timing: str, image_size: int = 224) -> str:
    lines = [f"Device: {device}; {timing}; time per batch of {image_size}x{image_size} images in ms, inference "
             "(jit).", "",
             "| model | dtype | N | jax_fcm (fusion=auto) | stock Flax | speed-up | images/s (fused) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['dtype']} | {r['n']} | {r['fused_ms']:.3f} | {r['stock_ms']:.3f} | "
                     f"{r['speedup']:.2f}x | {r['fused_images_per_s']:.0f} |")
    return "\n".join(lines)

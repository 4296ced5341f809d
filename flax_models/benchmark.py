"""End-to-end model timing for `python -m jax_fcm.bench --models`: each model
under jax.jit in inference mode with the planner's fusion (fusion="auto"),
with every pair fused (fusion="always"), as the stock Flax model
(fusion="never") and as the stock model with its nn.Conv calls on jax_fcm
ops (flax_models.jax_fcm_convs: no code change), same variables, per batch
of images."""

from __future__ import annotations

import functools
import statistics
import sys
import time
from typing import Callable

import jax
import jax.numpy as jnp

from flax_models.convnext import ConvNeXt
from flax_models.efficientnet import EfficientNetB0
from flax_models.intercept import jax_fcm_convs
from flax_models.mobilenet import EfficientNetLite0, MobileNetV1, MobileNetV2
from flax_models.mobilevit import MobileViT

MODELS: dict[str, Callable] = {
    "mobilenet_v1": lambda **kw: MobileNetV1(**kw),
    "mobilenet_v2": lambda **kw: MobileNetV2(**kw),
    "efficientnet_lite0": lambda **kw: EfficientNetLite0(**kw),
    "efficientnet_b0": lambda **kw: EfficientNetB0(**kw),
    "mobilevit_s": lambda **kw: MobileViT("s", **kw),
    "convnext_tiny": lambda **kw: ConvNeXt("tiny", **kw),
}


def time_models(names, batches, dtypes, timer: Callable, image_size: int = 224, on_row: Callable | None = None
                ) -> list[dict]:
    """Rows of model, n, dtype, time per batch (ms) with fusion auto (fused_ms),
    always, never (stock_ms) and the stock model under jax_fcm_convs
    (intercepted_ms), the auto speed-up and its images/s.
    timer(fn, arg_sets) -> microseconds per call; on_row(rows) after each row."""
    rows = []
    for name in names:
        for dtype_name in dtypes:
            dtype = jnp.dtype(dtype_name)
            stock = MODELS[name](fusion="never", dtype=dtype)
            fused = MODELS[name](fusion="auto", dtype=dtype)
            every = MODELS[name](fusion="always", dtype=dtype)
            variables = jax.jit(stock.init)(jax.random.key(0), jnp.zeros((1, image_size, image_size, 3), dtype))
            for n in batches:
                images = jax.random.normal(jax.random.key(n), (n, image_size, image_size, 3), dtype)
                arg_sets = [(variables, images)]
                fused_ms = timer(lambda v, x: fused.apply(v, x), arg_sets) / 1e3
                always_ms = timer(lambda v, x: every.apply(v, x), arg_sets) / 1e3
                stock_ms = timer(lambda v, x: stock.apply(v, x), arg_sets) / 1e3
                intercepted_ms = timer(functools.partial(intercepted, stock), arg_sets) / 1e3
                rows.append(dict(model=name, n=n, dtype=dtype_name, fused_ms=fused_ms, always_ms=always_ms,
                                 stock_ms=stock_ms, intercepted_ms=intercepted_ms, speedup=stock_ms / fused_ms,
                                 fused_images_per_s=n / fused_ms * 1e3))
                print(f"[{len(rows)}] {name} {dtype_name} N={n}: auto {fused_ms:.3f} ms, always {always_ms:.3f} ms, "
                      f"stock {stock_ms:.3f} ms, stock + jax_fcm_convs {intercepted_ms:.3f} ms", file=sys.stderr,
                      flush=True)
                if on_row:
                    on_row(rows)
    return rows


def median_ms(fn, *args, repeats: int = 20) -> float:
    """Host wall-clock median (ms) of fn(*args) after one warm-up call (the
    examples' quick timing; the benchmarks measure device time)."""
    jax.block_until_ready(fn(*args))  # compile and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def intercepted(model, variables, images):
    """model.apply traced with its nn.Conv calls on jax_fcm ops."""
    with jax_fcm_convs():
        return model.apply(variables, images)


def format_model_table(rows, device: str, timing: str, image_size: int = 224) -> str:
    lines = [f"Device: {device}; {timing}; time per batch of {image_size}x{image_size} images in ms, inference "
             "(jit).", "",
             "| model | dtype | N | fusion=auto | fusion=always | stock Flax | stock + jax_fcm_convs | "
             "speed-up (auto) | speed-up (jax_fcm_convs) | images/s (auto) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['dtype']} | {r['n']} | {r['fused_ms']:.3f} | {r['always_ms']:.3f} | "
                     f"{r['stock_ms']:.3f} | {r['intercepted_ms']:.3f} | {r['speedup']:.2f}x | "
                     f"{r['stock_ms'] / r['intercepted_ms']:.2f}x | {r['fused_images_per_s']:.0f} |")
    return "\n".join(lines)

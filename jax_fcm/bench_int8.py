"""Suites of `python -m jax_fcm.bench --int8` and `--int8-pw-pw`: the layers
whose activations int8 folds into its requantization (ReLU, ReLU6, none)
through `jax_fcm.dw_pw_int8` (the MobileNet rows of the main suite) and
`jax_fcm.pw_pw_int8` (the PW -> PW suite's MobileNetV2 pairs, and its MLPs
with ReLU in place of GELU/SiLU), against XLA running the same integer math
(`implementation="xla"`: int32 sums, int8 dots, the requantizations, under
jit), against our bf16 fused kernel on the same layer (`jax_fcm.dw_pw` /
`jax_fcm.pw_pw`), and the int8 HBM floor (input, output and weights once)."""

from __future__ import annotations

import dataclasses
import sys
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

import jax_fcm
from jax_fcm import _timing, gpu, quantization, tiling

SKIPPED_ACTIVATIONS = ("gelu_exact", "gelu_tanh", "silu", "hard_swish")


def suite(layers):
    """The layers int8 can run (the requantization folds ReLU/ReLU6 only)."""
    return [layer for layer in layers
            if layer.dw_activation not in SKIPPED_ACTIVATIONS and layer.pw_activation not in SKIPPED_ACTIVATIONS]


def layer_bytes(layer, n: int) -> int:
    """bench.layer_bytes at one byte per value, with each channel's int32
    bias and fp32 multiplier (8 bytes, not 1)."""
    from jax_fcm.bench import layer_bytes as float_layer_bytes

    return float_layer_bytes(layer, n, jnp.int8) + 7 * (layer.c + layer.cout)


def make_int8_args(layer, n: int, seed: int):
    """Quantized input and weights of a float layer (bench.make_args's values,
    calibrated on the input itself)."""
    from jax_fcm.bench import make_args

    x, dw, pw, dwb, pwb = make_args(layer, n, np.float32, seed)
    acts = dict(dw_activation=layer.dw_activation, pw_activation=layer.pw_activation)
    scales = quantization.calibrate_dw_pw(x[:2], dw, pw, dwb, pwb, strides=layer.stride, **acts)
    q = quantization.quantize_dw_pw(dw, pw, dwb, pwb, **scales, **acts)
    return quantization.quantize(x, q.input_scale), q


def int8_op(layer, implementation, config=None):
    def f(x, q):
        return jax_fcm.dw_pw_int8(x, q, strides=layer.stride, implementation=implementation, config=config)

    return f


def sweep_configs(layer, n: int, arg_sets, timer) -> list[dict]:
    """Device time of every compiled int8 tile configuration for one layer,
    the tile model's choice marked."""
    ho = -(-layer.hw // layer.stride)
    spec = gpu.detect(jax.default_backend())
    chosen = tiling.choose_config(n, ho, ho, layer.c, layer.cout, layer.k, layer.stride, 1, gpu=spec)
    rows = [dict(layer=layer.name, n=n, dtype="int8", config=tiling.config_label(cfg), chosen=cfg == chosen,
                 us=timer(int8_op(layer, None, cfg), arg_sets))
            for cfg in tiling.all_configs(layer.cout, layer.c, tiles_per_block=(0, 1), itemsize=1)]
    from jax_fcm.bench import report_sweep

    report_sweep(rows, lambda r: r["config"])
    return rows


def pw_pw_suite():
    """The PW -> PW pairs int8 can run: those with foldable activations as
    they are, the others (the MLPs) with ReLU instead (named "..._relu")."""
    from jax_fcm.bench_pw_pw import SUITE as PW_PW_SUITE

    layers = []
    for layer in PW_PW_SUITE:
        if layer.act1 in SKIPPED_ACTIVATIONS or layer.act2 in SKIPPED_ACTIVATIONS:
            layer = dataclasses.replace(layer, name=layer.name + "_relu",
                                        act1=None if layer.act1 is None else "relu",
                                        act2=None if layer.act2 is None else "relu")
        layers.append(layer)
    return layers


def make_pw_pw_int8_args(layer, n: int, seed: int):
    """Quantized input and weights of a float PW -> PW layer (bench_pw_pw.make_args's values)."""
    from jax_fcm.bench_pw_pw import make_args

    x, w1, w2, b1, b2 = make_args(layer, n, np.float32, seed)
    acts = dict(pw1_activation=layer.act1, pw2_activation=layer.act2)
    scales = quantization.calibrate_pw_pw(x[:2], w1, w2, b1, b2, **acts)
    q = quantization.quantize_pw_pw(w1, w2, b1, b2, **scales, **acts)
    return quantization.quantize(x, q.input_scale), q


@dataclasses.dataclass(frozen=True)
class Pair:
    """What the int8 table times for one kind of fused pair."""

    bf16_op: str                      # the table's name for the bf16 kernel
    nbytes: Callable                  # (layer, n) -> int8 bytes moved at least
    int8_args: Callable               # (layer, n, seed) -> (x, params)
    int8_op: Callable                 # (layer, implementation) -> f(x, params)
    bf16_args: Callable               # (layer, n, seed) -> the bf16 op's operands
    bf16_op_fn: Callable              # layer -> f(*operands): our bf16 fused kernel


def _dw_pw_bf16_args(layer, n, seed):
    from jax_fcm.bench import make_args

    return make_args(layer, n, jnp.bfloat16, seed)


def _dw_pw_bf16_op(layer):
    from jax_fcm.bench import op

    return op(layer, "fused")


def _pw_pw_bytes(layer, n):
    from jax_fcm.bench_pw_pw import layer_bytes as float_layer_bytes

    return float_layer_bytes(layer, n, jnp.int8) + 7 * (layer.hidden + layer.cout)


def _pw_pw_bf16_args(layer, n, seed):
    from jax_fcm.bench_pw_pw import make_args

    return make_args(layer, n, jnp.bfloat16, seed)


def _pw_pw_bf16_op(layer):
    def f(x, w1, w2, b1, b2):
        return jax_fcm.pw_pw(x, w1, w2, b1, b2, pw1_activation=layer.act1, pw2_activation=layer.act2,
                             implementation="kernel")

    return f


def _pw_pw_int8_op(layer, implementation):
    def f(x, q):
        return jax_fcm.pw_pw_int8(x, q, implementation=implementation)

    return f


DW_PW = Pair("jax_fcm.dw_pw", layer_bytes, make_int8_args, int8_op, _dw_pw_bf16_args, _dw_pw_bf16_op)
PW_PW = Pair("jax_fcm.pw_pw", _pw_pw_bytes, make_pw_pw_int8_args, _pw_pw_int8_op, _pw_pw_bf16_args, _pw_pw_bf16_op)


def time_layers(layers, batches, timer, bandwidth_gbs: float, on_row=None, on_sweep=None, pair: Pair = DW_PW
                ) -> list[dict]:
    """Rows per (N, layer); with on_sweep (DW -> PW only), every tile
    configuration's time too (on_sweep(all sweep rows so far) after each layer)."""
    rows, sweep_rows = [], []
    for n in batches:
        for layer in layers:
            nbytes = pair.nbytes(layer, n)
            sets = _timing.rotation_sets(nbytes)
            int8_sets = [pair.int8_args(layer, n, seed) for seed in range(sets)]
            int8 = timer(pair.int8_op(layer, None), int8_sets)
            xla = timer(pair.int8_op(layer, "xla"), int8_sets)
            bf16 = timer(pair.bf16_op_fn(layer), [pair.bf16_args(layer, n, seed) for seed in range(sets)])
            floor = nbytes / (bandwidth_gbs * 1e9) * 1e6
            rows.append(dict(layer=layer.name, n=n, dtype="int8", int8_us=int8, xla_int8_us=xla, bf16_fused_us=bf16, floor_us=floor,
                             speedup_vs_xla=xla / int8, speedup_vs_bf16=bf16 / int8, over_floor=int8 / floor))
            print(f"[{len(rows)}/{len(layers) * len(batches)}] N={n} {layer.name}: int8 {int8:.1f} us, "
                  f"XLA int8 {xla:.1f} us, bf16 fused {bf16:.1f} us, floor {floor:.1f} us", file=sys.stderr, flush=True)
            if on_row:
                on_row(rows)
            if on_sweep:
                sweep_rows += sweep_configs(layer, n, int8_sets, timer)
                on_sweep(sweep_rows)
    return rows


def format_table(rows, device: str, bandwidth_gbs: float, timing: str, pair: Pair = DW_PW) -> str:
    lines = [f"Device: {device}; copy bandwidth {bandwidth_gbs:.0f} GB/s (read+write); {timing} per call (us).",
             f"XLA int8: the same integer math as lax ops under jit; bf16 fused: {pair.bf16_op} on bfloat16.", "",
             "| N | layer | int8 fused | XLA int8 | bf16 fused | floor | vs XLA int8 | vs bf16 fused | int8/floor |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['n']} | {r['layer']} | {r['int8_us']:.1f} | {r['xla_int8_us']:.1f} | "
                     f"{r['bf16_fused_us']:.1f} | {r['floor_us']:.1f} | {r['speedup_vs_xla']:.2f}x | "
                     f"{r['speedup_vs_bf16']:.2f}x | {r['over_floor']:.2f} |")
    lines += _timing.summary_lines(rows, "layer", {"geomean vs XLA int8": "speedup_vs_xla",
                                                   "vs bf16 fused": "speedup_vs_bf16"})
    return "\n".join(lines)


def time_mobilenet_v1(batches, timer, image_size: int = 224, on_row=None) -> list[dict]:
    """Whole MobileNetV1 per batch of images: the int8 network
    (flax_models.quantized: every separable block one dw_pw_int8 kernel) vs
    the bfloat16 model with the planner's fusion and the stock bfloat16 model
    (the same variables; calibrated on 8 of the images)."""
    from flax_models import quantized
    from flax_models.mobilenet import MobileNetV1

    stock, fused = MobileNetV1(fusion="never", dtype=jnp.bfloat16), MobileNetV1(fusion="auto", dtype=jnp.bfloat16)
    variables = jax.jit(stock.init)(jax.random.key(0), jnp.zeros((1, image_size, image_size, 3)))
    calibration = jax.random.normal(jax.random.key(1), (8, image_size, image_size, 3))
    qnet = quantized.quantize_mobilenet_v1(MobileNetV1(), variables, calibration)
    rows = []
    for n in batches:
        images = jax.random.normal(jax.random.key(n), (n, image_size, image_size, 3))
        half = images.astype(jnp.bfloat16)
        int8_ms = timer(quantized.apply_quantized_mobilenet_v1, [(qnet, images)]) / 1e3
        fused_ms = timer(lambda v, x: fused.apply(v, x), [(variables, half)]) / 1e3
        stock_ms = timer(lambda v, x: stock.apply(v, x), [(variables, half)]) / 1e3
        rows.append(dict(model="mobilenet_v1", n=n, dtype="int8", int8_ms=int8_ms, bf16_fused_ms=fused_ms,
                         bf16_stock_ms=stock_ms, speedup_vs_bf16_fused=fused_ms / int8_ms,
                         speedup_vs_bf16_stock=stock_ms / int8_ms))
        print(f"[{len(rows)}/{len(batches)}] mobilenet_v1 N={n}: int8 {int8_ms:.3f} ms, bf16 fused {fused_ms:.3f} ms, "
              f"bf16 stock {stock_ms:.3f} ms", file=sys.stderr, flush=True)
        if on_row:
            on_row(rows)
    return rows


def format_model_table(rows, device: str, timing: str, image_size: int) -> str:
    lines = [f"Device: {device}; {timing} per batch (ms), {image_size}x{image_size} images. int8: stem and "
             "classifier float, the 13 separable blocks chained in int8 (jax_fcm.dw_pw_int8).", "",
             "| model | N | int8 | bf16 fused (auto) | bf16 stock | vs bf16 fused | vs bf16 stock |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['n']} | {r['int8_ms']:.3f} | {r['bf16_fused_ms']:.3f} | "
                     f"{r['bf16_stock_ms']:.3f} | {r['speedup_vs_bf16_fused']:.2f}x | "
                     f"{r['speedup_vs_bf16_stock']:.2f}x |")
    return "\n".join(lines)

"""The int8 quantization scheme of jax_fcm's quantized ops, and the helpers
that quantize a float layer's weights and calibrate activation scales.

Scheme (symmetric, as TFLite's int8 weights and PyTorch's qint8 with zero
points 0; every value is ``scale * q``):

- activations (the input, the on-chip intermediate, the output): int8 with one
  float scale per tensor, ``q = clip(round(v / scale), -128, 127)``; zero is
  exactly 0, so zero padding stays exact;
- weights: int8 with one float scale per output channel (per channel C of a
  depthwise kernel, per Cout of a 1x1 kernel), ``q = round(w / scale)`` with
  ``scale = max|w| / 127`` (range [-127, 127]);
- biases: int32 in units of ``input_scale * weight_scale[c]``;
- each stage sums int8 x int8 products in int32 (plus the bias) and is
  requantized to the next tensor's scale with a float32 multiplier
  ``m[c] = input_scale * weight_scale[c] / output_scale``:
  ``q = clip(round_half_even(float32(acc) * m[c]), qmin, qmax)``, where the
  clamp range holds the activation: none [-128, 127], ReLU [0, 127], ReLU6
  [0, min(127, round(6 / output_scale))].

The CUDA kernels, the CPU handler and ``requantize`` below compute exactly
these steps (cuda_src/requantize.h), so their outputs agree bit for bit.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jax_fcm.activations import normalize_activation

QMIN, QMAX = -128, 127
# The activations the requantization folds into its clamp range.
INT8_ACTIVATIONS = ("none", "relu", "relu6")


def quantize(x, scale):
    """Float activations -> int8 at one per-tensor scale."""
    return jnp.clip(jnp.round(jnp.asarray(x, jnp.float32) / scale), QMIN, QMAX).astype(jnp.int8)


def dequantize(q, scale):
    """int8 (or int32 accumulator units) -> float32 values."""
    return q.astype(jnp.float32) * scale


def scale_for(amax) -> float:
    """The per-tensor scale that maps [-amax, amax] onto [-127, 127]."""
    amax = float(amax)
    return amax / QMAX if amax > 0 else 1.0


def quantize_weights(kernel) -> tuple[np.ndarray, np.ndarray]:
    """A float kernel whose last axis is the output channel -> (int8 kernel,
    float32 per-output-channel scales), symmetric in [-127, 127]."""
    w = np.asarray(kernel, np.float32)
    amax = np.abs(w.reshape(-1, w.shape[-1])).max(axis=0)
    scales = np.where(amax > 0, amax / QMAX, 1.0).astype(np.float32)
    return np.clip(np.round(w / scales), -QMAX, QMAX).astype(np.int8), scales


def clamp_range(activation, scale: float) -> tuple[int, int]:
    """(qmin, qmax) of a requantized tensor at `scale` after `activation`."""
    act = normalize_activation(activation, "activation")
    if act not in INT8_ACTIVATIONS:
        raise ValueError(f"int8 ops fold only {INT8_ACTIVATIONS} into their requantization; got {act!r}")
    if act == "none":
        return QMIN, QMAX
    if act == "relu":
        return 0, QMAX
    return 0, int(min(QMAX, np.round(6.0 / scale)))


def requantize(acc, multiplier, qmin: int, qmax: int):
    """int32 accumulators -> int8: the kernels' requantization in lax ops."""
    scaled = jnp.round(acc.astype(jnp.float32) * multiplier)  # round half to even
    return jnp.clip(scaled, qmin, qmax).astype(jnp.int8)


def _bias_units(bias, units: np.ndarray) -> np.ndarray:
    if bias is None:
        return np.zeros(units.shape, np.int32)
    q = np.round(np.asarray(bias, np.float64) / units)
    return np.clip(q, np.iinfo(np.int32).min, np.iinfo(np.int32).max).astype(np.int32)


def _check_scales(**scales) -> None:
    for name, v in scales.items():
        if not np.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be a positive finite float; got {v!r}")


def _requantized_stage(kernel: np.ndarray, bias, input_scale: float, output_scale: float):
    """One int32-summing stage in the scheme: (int8 kernel, int32 bias in
    input x weight-scale units, fp32 multipliers to the output scale)."""
    q, weight_scales = quantize_weights(kernel)
    units = np.float64(input_scale) * weight_scales
    return q, jnp.asarray(_bias_units(bias, units)), jnp.asarray((units / output_scale).astype(np.float32))


def _pointwise_matrix(kernel, name: str, axes: str, cin: int | None = None) -> np.ndarray:
    """A (1, 1, in, out) float kernel as its (in, out) matrix, or a clear
    error (axes: how the message names in and out, e.g. "C={cin}, Cout")."""
    k = np.asarray(kernel, np.float32)
    if k.ndim != 4 or k.shape[:2] != (1, 1) or (cin is not None and k.shape[2] != cin):
        raise ValueError(f"{name} must be (1, 1, {axes}); got shape {k.shape}")
    return k[0, 0]


def check_int8_input(x) -> None:
    """The int8 ops' check of their input: an int8 NHWC array (leading batch axes allowed)."""
    if not hasattr(x, "shape") or not hasattr(x, "dtype") or jnp.dtype(x.dtype) != jnp.int8:
        raise TypeError(f"x must be an int8 array (jax_fcm.quantization.quantize); got "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim < 4:
        raise ValueError(f"x must be NHWC with optional leading batch axes (rank >= 4); got shape {x.shape}")


def check_int8_params(params, cls, expected_dtypes: dict, clamps: tuple[str, ...]) -> None:
    """The int8 ops' checks of their params pytree: its type, the arrays'
    dtypes and the clamp ranges."""
    if not isinstance(params, cls):
        raise TypeError(f"params must be a jax_fcm.quantization.{cls.__name__}; got {type(params).__name__}")
    for name, dtype in expected_dtypes.items():
        a = getattr(params, name)
        if jnp.dtype(a.dtype) != jnp.dtype(dtype):
            raise TypeError(f"params.{name} must be {jnp.dtype(dtype).name}; got {jnp.dtype(a.dtype).name}")
    for name in clamps:
        lo, hi = getattr(params, name)
        if not QMIN <= lo <= hi <= QMAX:
            raise ValueError(f"params.{name} must satisfy -128 <= qmin <= qmax <= 127; got {(lo, hi)}")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class QuantizedDwPw:
    """An int8 depthwise -> pointwise pair (``jax_fcm.dw_pw_int8``'s weights).

    Arrays (a pytree: pass it through jit like any parameters):
      dw_kernel: int8 ``(k, k, 1, C)``; dw_bias: int32 ``(C,)``;
      dw_multiplier: float32 ``(C,)`` (input scale x weight scale / mid scale);
      pw_kernel: int8 ``(Cout, C)``, the 1x1 kernel transposed (each output
      channel's row is contiguous, as the int8 tensor cores take it);
      pw_bias: int32 ``(Cout,)``; pw_multiplier: float32 ``(Cout,)``.
    Static fields: the clamp ranges (the activations) and the three
    activation scales, for quantizing inputs and dequantizing outputs.
    """

    dw_kernel: jax.Array
    dw_bias: jax.Array
    dw_multiplier: jax.Array
    pw_kernel: jax.Array
    pw_bias: jax.Array
    pw_multiplier: jax.Array
    dw_clamp: tuple[int, int] = dataclasses.field(metadata=dict(static=True), default=(QMIN, QMAX))
    pw_clamp: tuple[int, int] = dataclasses.field(metadata=dict(static=True), default=(QMIN, QMAX))
    input_scale: float = dataclasses.field(metadata=dict(static=True), default=1.0)
    mid_scale: float = dataclasses.field(metadata=dict(static=True), default=1.0)
    output_scale: float = dataclasses.field(metadata=dict(static=True), default=1.0)


def quantize_dw_pw(dw_kernel, pw_kernel, dw_bias=None, pw_bias=None, *, input_scale: float, mid_scale: float,
                   output_scale: float, dw_activation=None, pw_activation=None) -> QuantizedDwPw:
    """A float DW -> PW pair (``jax_fcm.dw_pw``'s operands) in the int8 scheme,
    given the scales of its input, of the depthwise output (after its
    activation) and of the output (``calibrate_dw_pw`` measures them)."""
    _check_scales(input_scale=input_scale, mid_scale=mid_scale, output_scale=output_scale)
    dw = np.asarray(dw_kernel, np.float32)
    if dw.ndim != 4 or dw.shape[0] != dw.shape[1] or dw.shape[2] != 1:
        raise ValueError(f"dw_kernel must be (k, k, 1, C); got shape {dw.shape}")
    pw = _pointwise_matrix(pw_kernel, "pw_kernel", f"C={dw.shape[3]}, Cout", cin=dw.shape[3])
    dw_q, dw_b, dw_m = _requantized_stage(dw, dw_bias, input_scale, mid_scale)
    pw_q, pw_b, pw_m = _requantized_stage(pw, pw_bias, mid_scale, output_scale)
    return QuantizedDwPw(
        dw_kernel=jnp.asarray(dw_q), dw_bias=dw_b, dw_multiplier=dw_m,
        pw_kernel=jnp.asarray(np.ascontiguousarray(pw_q.T)), pw_bias=pw_b, pw_multiplier=pw_m,
        dw_clamp=clamp_range(dw_activation, mid_scale),
        pw_clamp=clamp_range(pw_activation, output_scale),
        input_scale=float(input_scale), mid_scale=float(mid_scale), output_scale=float(output_scale),
    )


def calibrate_dw_pw(samples, dw_kernel, pw_kernel, dw_bias=None, pw_bias=None, *, strides=1, padding="SAME",
                    dw_activation=None, pw_activation=None) -> dict:
    """Per-tensor scales from sample inputs (max-abs calibration): runs the
    float pair (XLA's reference) on `samples` and returns
    ``dict(input_scale=..., mid_scale=..., output_scale=...)`` for
    ``quantize_dw_pw``."""
    from jax_fcm import _args
    from jax_fcm.reference import depthwise_conv, pointwise_conv

    x = jnp.asarray(samples, jnp.float32)
    k = dw_kernel.shape[0]
    stride, pads, _, _ = _args.window(strides, padding, x.shape[-3], x.shape[-2], k)
    c, cout = dw_kernel.shape[-1], pw_kernel.shape[-1]
    dw_b = jnp.zeros((c,), jnp.float32) if dw_bias is None else jnp.asarray(dw_bias, jnp.float32)
    pw_b = jnp.zeros((cout,), jnp.float32) if pw_bias is None else jnp.asarray(pw_bias, jnp.float32)
    x4 = x.reshape((-1,) + x.shape[-3:])
    hi = jax.lax.Precision.HIGHEST
    mid = depthwise_conv(x4, jnp.asarray(dw_kernel, jnp.float32), dw_b, stride=stride, padding=pads,
                         activation=normalize_activation(dw_activation, "dw_activation"), precision=hi)
    out = pointwise_conv(mid, jnp.asarray(pw_kernel, jnp.float32), pw_b,
                         activation=normalize_activation(pw_activation, "pw_activation"), precision=hi)
    return dict(input_scale=scale_for(jnp.max(jnp.abs(x4))), mid_scale=scale_for(jnp.max(jnp.abs(mid))),
                output_scale=scale_for(jnp.max(jnp.abs(out))))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class QuantizedPwPw:
    """Two int8 1x1 convolutions (``jax_fcm.pw_pw_int8``'s weights).

    Arrays (a pytree): pw1_kernel: int8 ``(hidden, Cin)`` and pw2_kernel: int8
    ``(Cout, hidden)``, the 1x1 kernels transposed (each output channel's row
    contiguous, as the int8 tensor cores take it); pw1_bias: int32
    ``(hidden,)``, pw2_bias: int32 ``(Cout,)``; pw1_multiplier, pw2_multiplier:
    float32 (input scale x weight scale / output scale of each stage).
    Static fields: the clamp ranges (the activations) and the three
    activation scales.
    """

    pw1_kernel: jax.Array
    pw1_bias: jax.Array
    pw1_multiplier: jax.Array
    pw2_kernel: jax.Array
    pw2_bias: jax.Array
    pw2_multiplier: jax.Array
    pw1_clamp: tuple[int, int] = dataclasses.field(metadata=dict(static=True), default=(QMIN, QMAX))
    pw2_clamp: tuple[int, int] = dataclasses.field(metadata=dict(static=True), default=(QMIN, QMAX))
    input_scale: float = dataclasses.field(metadata=dict(static=True), default=1.0)
    mid_scale: float = dataclasses.field(metadata=dict(static=True), default=1.0)
    output_scale: float = dataclasses.field(metadata=dict(static=True), default=1.0)


def quantize_pw_pw(pw1_kernel, pw2_kernel, pw1_bias=None, pw2_bias=None, *, input_scale: float, mid_scale: float,
                   output_scale: float, pw1_activation=None, pw2_activation=None) -> QuantizedPwPw:
    """A float PW -> PW pair (``jax_fcm.pw_pw``'s operands) in the int8
    scheme, given the scales of its input, of the intermediate (after
    pw1_activation) and of the output (``calibrate_pw_pw`` measures them)."""
    _check_scales(input_scale=input_scale, mid_scale=mid_scale, output_scale=output_scale)
    w1 = _pointwise_matrix(pw1_kernel, "pw1_kernel", "Cin, hidden")
    w2 = _pointwise_matrix(pw2_kernel, "pw2_kernel", f"hidden={w1.shape[1]}, Cout", cin=w1.shape[1])
    w1_q, b1, m1 = _requantized_stage(w1, pw1_bias, input_scale, mid_scale)
    w2_q, b2, m2 = _requantized_stage(w2, pw2_bias, mid_scale, output_scale)
    return QuantizedPwPw(
        pw1_kernel=jnp.asarray(np.ascontiguousarray(w1_q.T)), pw1_bias=b1, pw1_multiplier=m1,
        pw2_kernel=jnp.asarray(np.ascontiguousarray(w2_q.T)), pw2_bias=b2, pw2_multiplier=m2,
        pw1_clamp=clamp_range(pw1_activation, mid_scale), pw2_clamp=clamp_range(pw2_activation, output_scale),
        input_scale=float(input_scale), mid_scale=float(mid_scale), output_scale=float(output_scale),
    )


def calibrate_pw_pw(samples, pw1_kernel, pw2_kernel, pw1_bias=None, pw2_bias=None, *, pw1_activation=None,
                    pw2_activation=None) -> dict:
    """Per-tensor scales from sample inputs (max-abs calibration) of the float
    PW -> PW pair, as ``dict(input_scale=..., mid_scale=..., output_scale=...)``
    for ``quantize_pw_pw``."""
    from jax_fcm.reference import pointwise_conv

    x = jnp.asarray(samples, jnp.float32)
    x4 = x.reshape((-1,) + x.shape[-3:])
    hi = jax.lax.Precision.HIGHEST
    stages = []
    h = x4
    for kernel, bias, act, name in ((pw1_kernel, pw1_bias, pw1_activation, "pw1_activation"),
                                    (pw2_kernel, pw2_bias, pw2_activation, "pw2_activation")):
        k = jnp.asarray(kernel, jnp.float32)
        b = jnp.zeros((k.shape[-1],), jnp.float32) if bias is None else jnp.asarray(bias, jnp.float32)
        h = pointwise_conv(h, k, b, activation=normalize_activation(act, name), precision=hi)
        stages.append(h)
    return dict(input_scale=scale_for(jnp.max(jnp.abs(x4))), mid_scale=scale_for(jnp.max(jnp.abs(stages[0]))),
                output_scale=scale_for(jnp.max(jnp.abs(stages[1]))))

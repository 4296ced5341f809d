"""`jax_fcm.dw_pw_int8`: the fused depthwise -> pointwise pair in int8 (the
scheme of jax_fcm.quantization): int8 activations and per-channel weights,
int32 sums, the intermediate requantized on chip, int8 tensor cores for the
1x1 part."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jax_fcm import _args, _batching, _ffi, gpu, quantization, tiling
from jax_fcm.quantization import QuantizedDwPw, requantize
from jax_fcm.tiling import DwPwConfig

IMPLEMENTATIONS = (None, "fused", "xla")


def dw_pw_int8_reference(x, q: QuantizedDwPw, *, stride: int, padding: _args.Padding):
    """The same integer math as plain lax ops (any backend, bit-exact): the
    depthwise sums as k*k shifted int32 products (one XLA fusion), the 1x1 as
    an int8 x int8 -> int32 dot."""
    k = q.dw_kernel.shape[0]
    n, h, w, c = x.shape
    ho = _args.output_size(h, k, stride, padding[0])
    wo = _args.output_size(w, k, stride, padding[1])
    xp = jnp.pad(x.astype(jnp.int32), ((0, 0), padding[0], padding[1], (0, 0)))
    taps = q.dw_kernel.astype(jnp.int32)
    acc = jnp.broadcast_to(q.dw_bias, (n, ho, wo, c))
    for ky in range(k):
        for kx in range(k):
            window = lax.slice(xp, (0, ky, kx, 0), (n, ky + (ho - 1) * stride + 1, kx + (wo - 1) * stride + 1, c),
                               (1, stride, stride, 1))
            acc = acc + window * taps[ky, kx, 0]
    mid = requantize(acc, q.dw_multiplier, *q.dw_clamp)
    out = lax.dot_general(mid, q.pw_kernel, (((3,), (1,)), ((), ())), preferred_element_type=jnp.int32)
    return requantize(out + q.pw_bias, q.pw_multiplier, *q.pw_clamp)


@dataclasses.dataclass(frozen=True)
class _Static:
    """The call's non-array description (hashable: one batching wrapper each)."""

    stride: int
    padding: _args.Padding
    dw_clamp: tuple[int, int]
    pw_clamp: tuple[int, int]
    config: DwPwConfig


def _ffi_call(st: _Static, x, dw_kernel, dw_bias, dw_multiplier, pw_kernel, pw_bias, pw_multiplier):
    n, h, w, _ = x.shape
    k = dw_kernel.shape[0]
    ho = _args.output_size(h, k, st.stride, st.padding[0])
    wo = _args.output_size(w, k, st.stride, st.padding[1])
    call = jax.ffi.ffi_call(_ffi.DW_PW_INT8_TARGET, jax.ShapeDtypeStruct((n, ho, wo, pw_kernel.shape[0]), jnp.int8))
    return call(
        x, dw_kernel, dw_bias, dw_multiplier, pw_kernel, pw_bias, pw_multiplier,
        **_args.window_attrs(st.stride, st.padding), **tiling.config_attrs(st.config),
        dw_qmin=np.int64(st.dw_clamp[0]), dw_qmax=np.int64(st.dw_clamp[1]),
        pw_qmin=np.int64(st.pw_clamp[0]), pw_qmax=np.int64(st.pw_clamp[1]),
    )


# The FFI call with vmap and batch-sharding rules, per call description.
_batched_ffi_call = _batching.per_call_description(_ffi_call, weight_ranks=(4, 1, 1, 2, 1, 1))


def _check_params(q, c: int) -> tuple[int, int]:
    """(k, Cout) of a QuantizedDwPw for C input channels, or a clear error."""
    quantization.check_int8_params(q, QuantizedDwPw, {"dw_kernel": jnp.int8, "dw_bias": jnp.int32,
                                                      "dw_multiplier": jnp.float32, "pw_kernel": jnp.int8,
                                                      "pw_bias": jnp.int32, "pw_multiplier": jnp.float32},
                                   ("dw_clamp", "pw_clamp"))
    k = _args.depthwise_kernel_size(q.dw_kernel, c, name="params.dw_kernel")
    if q.pw_kernel.ndim != 2 or q.pw_kernel.shape[1] != c:
        raise ValueError(f"params.pw_kernel must be (Cout, C={c}); got shape {tuple(q.pw_kernel.shape)}")
    cout = q.pw_kernel.shape[0]
    _args.check_shape(q.dw_bias, (c,), "params.dw_bias", "(C,)")
    _args.check_shape(q.dw_multiplier, (c,), "params.dw_multiplier", "(C,)")
    _args.check_shape(q.pw_bias, (cout,), "params.pw_bias", "(Cout,)")
    _args.check_shape(q.pw_multiplier, (cout,), "params.pw_multiplier", "(Cout,)")
    return k, cout


def dw_pw_int8(x, params: QuantizedDwPw, *, strides=1, padding="SAME", implementation=None,
               config: DwPwConfig | None = None):
    """Fused int8 depthwise -> pointwise convolution, NHWC.

    ``q_mid = requant(depthwise(x) + dw_bias)``, ``y = requant(q_mid @ pw + pw_bias)``
    with int32 sums and the intermediate kept on chip (the scheme, with the
    ReLU/ReLU6 clamps, is in ``jax_fcm.quantization``).

    Args:
      x: int8 ``(..., N, H, W, C)`` at ``params.input_scale``
        (``jax_fcm.quantization.quantize(x_float, params.input_scale)``).
      params: a ``jax_fcm.quantization.QuantizedDwPw`` (``quantize_dw_pw``).
      strides, padding: as ``jax_fcm.dw_pw``.
      implementation: None or "fused" for the fused kernel (CUDA on GPU, C++ on
        CPU); "xla" for the same integer math as plain lax ops (bit-exact).
      config: a ``jax_fcm.DwPwConfig`` (kernel tiles), or None to let the
        tile model pick one.

    Returns:
      int8 ``(..., N, Ho, Wo, Cout)`` at ``params.output_scale``.
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}; got {implementation!r}")
    quantization.check_int8_input(x)
    *lead, h, w, c = x.shape
    k, cout = _check_params(params, c)
    if c == 0 or cout == 0:
        raise ValueError(f"channel counts must be positive; got C={c}, Cout={cout}")
    stride, pads, ho, wo = _args.window(strides, padding, h, w, k)
    if implementation in (None, "fused"):
        _args.check_fused_index_range(h, w, c, k, cout, ho, wo)
    n = math.prod(lead)
    if config is None:
        config = tiling.choose_config(max(n, 1), ho, wo, c, cout, k, stride, 1, gpu=gpu.detect(jax.default_backend()))
    elif not isinstance(config, DwPwConfig):
        raise TypeError(f"config must be a jax_fcm.DwPwConfig or None; got {type(config).__name__}")
    x4 = x.reshape((n, h, w, c))
    if implementation == "xla":
        y = dw_pw_int8_reference(x4, params, stride=stride, padding=pads)
    else:
        _ffi.check_backend_supported()
        st = _Static(stride=stride, padding=pads, dw_clamp=tuple(params.dw_clamp), pw_clamp=tuple(params.pw_clamp),
                     config=config)
        y = _batched_ffi_call(st)(x4, params.dw_kernel, params.dw_bias, params.dw_multiplier, params.pw_kernel,
                                  params.pw_bias, params.pw_multiplier)
    return y.reshape(tuple(lead) + y.shape[1:])

"""`jax_fcm.dw_pw`: depthwise k x k conv -> bias -> activation -> pointwise 1x1
conv -> bias -> activation in one fused kernel, NHWC."""

from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jax_fcm import _args, _batching, _ffi, depthwise_backward, gpu, tiling
from jax_fcm.activations import activation_code, apply_activation, normalize_activation
from jax_fcm.depthwise_op import depthwise
from jax_fcm.reference import depthwise_conv, dw_pw_reference, pointwise_conv
from jax_fcm.tiling import DwPwConfig

IMPLEMENTATIONS = (None, "fused", "xla", "split")


@dataclasses.dataclass(frozen=True)
class _Static:
    """Everything about a call that is not an array: hashable for custom_vjp."""

    stride: int
    padding: _args.Padding
    dw_activation: str
    pw_activation: str
    precision: lax.Precision
    config: DwPwConfig

    def reference(self, x, dw_kernel, dw_bias, pw_kernel, pw_bias):
        return dw_pw_reference(x, dw_kernel, dw_bias, pw_kernel, pw_bias, stride=self.stride, padding=self.padding,
                               dw_activation=self.dw_activation, pw_activation=self.pw_activation,
                               precision=self.precision)


def _ffi_call(st: _Static, x, dw_kernel, dw_bias, pw_kernel, pw_bias):
    n, h, w, _ = x.shape
    k = dw_kernel.shape[0]
    ho = _args.output_size(h, k, st.stride, st.padding[0])
    wo = _args.output_size(w, k, st.stride, st.padding[1])
    out_type = jax.ShapeDtypeStruct((n, ho, wo, pw_kernel.shape[-1]), x.dtype)
    full_fp32 = _args.full_fp32(st.precision)
    call = jax.ffi.ffi_call(_ffi.DW_PW_TARGET, out_type)
    return call(
        x, dw_kernel, dw_bias, pw_kernel, pw_bias,
        **_args.window_attrs(st.stride, st.padding), **tiling.config_attrs(st.config),
        dw_activation=np.int64(activation_code(st.dw_activation)),
        pw_activation=np.int64(activation_code(st.pw_activation)),
        pw_math=np.int64(1 if full_fp32 else 0),
    )


# The FFI call with vmap and batch-sharding rules, per call description.
_batched_ffi_call = _batching.per_call_description(_ffi_call, weight_ranks=(4, 1, 4, 1))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _fused(st: _Static, x, dw_kernel, dw_bias, pw_kernel, pw_bias):
    return _batched_ffi_call(st)(x, dw_kernel, dw_bias, pw_kernel, pw_bias)


def _fused_fwd(st, x, dw_kernel, dw_bias, pw_kernel, pw_bias):
    return _fused(st, x, dw_kernel, dw_bias, pw_kernel, pw_bias), (x, dw_kernel, dw_bias, pw_kernel, pw_bias)


def _fused_bwd(st, residuals, g):
    x, dw_kernel, dw_bias, pw_kernel, pw_bias = residuals
    k = dw_kernel.shape[0]
    if not depthwise_backward.use_kernel(k, st.stride, st.padding, g.shape[1], g.shape[2], x.dtype):
        _, vjp = jax.vjp(st.reference, *residuals)
        return vjp(g)
    # The pointwise half through XLA (its GEMMs are cuBLAS's), from the
    # recomputed depthwise pre-activation; the depthwise half (input, kernel
    # and bias gradients) in one jax_fcm kernel.
    pre = depthwise_conv(x, dw_kernel, dw_bias, stride=st.stride, padding=st.padding, activation="none",
                         precision=st.precision)

    def head(pre, pw_kernel, pw_bias):
        return pointwise_conv(apply_activation(st.dw_activation, pre), pw_kernel, pw_bias,
                              activation=st.pw_activation, precision=st.precision)

    _, vjp = jax.vjp(head, pre, pw_kernel, pw_bias)
    d_pre, d_pw_kernel, d_pw_bias = vjp(g)
    dx, d_dw_kernel, d_dw_bias = depthwise_backward.depthwise_gradients(x, d_pre, dw_kernel, stride=st.stride,
                                                                          padding=st.padding)
    return dx, d_dw_kernel, d_dw_bias, d_pw_kernel, d_pw_bias


_fused.defvjp(_fused_fwd, _fused_bwd)


def dw_pw(
    x,
    dw_kernel,
    pw_kernel,
    dw_bias=None,
    pw_bias=None,
    *,
    strides=1,
    padding="SAME",
    dw_activation=None,
    pw_activation=None,
    precision=None,
    implementation=None,
    config: DwPwConfig | None = None,
):
    """Fused depthwise -> pointwise convolution, NHWC.

    Computes ``act_pw(conv1x1(act_dw(depthwise(x) + dw_bias)) + pw_bias)`` with
    the intermediate kept on chip.

    Args:
      x: ``(..., N, H, W, C)``; extra leading axes are folded into the batch.
      dw_kernel: ``(k, k, 1, C)`` (lax HWIO with ``feature_group_count=C``), k in {3, 5, 7}.
      pw_kernel: ``(1, 1, C, Cout)``.
      dw_bias, pw_bias: ``(C,)`` and ``(Cout,)``, or None.
      strides: 1 or 2 (int or equal pair).
      padding: "SAME" (TF/Flax: output ceil(H / s), extra row/column after), "VALID",
        an int or pair of ints (symmetric, as PyTorch), or ((top, bottom), (left, right)).
      dw_activation, pw_activation: None, "relu", "relu6", "silu", "gelu_exact",
        "gelu_tanh" or "hard_swish".
      precision: as in lax. For float32, the default lets the pointwise GEMM run
        on TF32 tensor cores (as XLA's own convolutions do on GPU); HIGH or
        HIGHEST run it in full fp32. bfloat16/float16 always use their tensor
        cores with fp32 accumulation. The CPU handler always computes in fp32.
      implementation: None or "fused" for the fused kernel (CUDA on GPU, C++ on
        CPU); "xla" for the same math as plain lax ops; "split" for
        ``jax_fcm.depthwise`` then XLA's 1x1 convolution (what the Flax layers
        run where fusing does not pay; ``config`` is unused).
      config: a ``jax_fcm.DwPwConfig`` (kernel tiles); None picks one from the
        shapes and the GPU (``jax_fcm.tiling.choose_config``).

    Returns:
      ``(..., N, Ho, Wo, Cout)`` in x's dtype (all operands must share it).
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}; got {implementation!r}")
    dtype = _args.check_operands({"x": x, "dw_kernel": dw_kernel, "pw_kernel": pw_kernel},
                                 {"dw_bias": dw_bias, "pw_bias": pw_bias})
    *lead, h, w, c = x.shape
    k = _args.depthwise_kernel_size(dw_kernel, c)
    cout = _args.pointwise_features(pw_kernel, c, "pw_kernel", "(1, 1, C, Cout)")
    if c == 0 or cout == 0:
        raise ValueError(f"channel counts must be positive; got C={c}, Cout={cout}")
    if dw_bias is not None:
        _args.check_shape(dw_bias, (c,), "dw_bias", "(C,)")
    if pw_bias is not None:
        _args.check_shape(pw_bias, (cout,), "pw_bias", "(Cout,)")
    stride, pads, ho, wo = _args.window(strides, padding, h, w, k)
    if implementation in (None, "fused"):
        _args.check_fused_index_range(h, w, c, k, cout, ho, wo)
    precision = _args.normalize_precision(precision)
    if config is None:
        n = math.prod(lead)
        full_fp32 = dtype == jnp.float32 and _args.full_fp32(precision)
        config = tiling.choose_config(
            max(n, 1), ho, wo, c, cout, k, stride, jnp.dtype(dtype).itemsize, tensor_cores=not full_fp32,
            gpu=gpu.detect(jax.default_backend()))
    elif not isinstance(config, DwPwConfig):
        raise TypeError(f"config must be a jax_fcm.DwPwConfig or None; got {type(config).__name__}")
    elif config.channel_chunk != tiling.CHANNEL_CHUNK and jnp.dtype(dtype).itemsize != 2:
        raise ValueError(f"config channel_chunk={config.channel_chunk} is compiled for bfloat16 and float16 only; "
                         f"x has {jnp.dtype(dtype).name}")
    st = _Static(
        stride=stride,
        padding=pads,
        dw_activation=normalize_activation(dw_activation, "dw_activation"),
        pw_activation=normalize_activation(pw_activation, "pw_activation"),
        precision=precision,
        config=config,
    )
    dw_bias = jnp.zeros((c,), dtype) if dw_bias is None else dw_bias
    pw_bias = jnp.zeros((cout,), dtype) if pw_bias is None else pw_bias

    x4 = x.reshape((math.prod(lead), h, w, c))
    if implementation == "xla":
        y = st.reference(x4, dw_kernel, dw_bias, pw_kernel, pw_bias)
    elif implementation == "split":
        mid = depthwise(x4, dw_kernel, dw_bias, strides=stride, padding=pads, activation=st.dw_activation,
                        precision=precision)
        y = pointwise_conv(mid, pw_kernel, pw_bias, activation=st.pw_activation, precision=precision)
    else:
        _ffi.check_backend_supported()
        y = _fused(st, x4, dw_kernel, dw_bias, pw_kernel, pw_bias)
    return y.reshape(tuple(lead) + y.shape[1:])

"""`jax_fcm.depthwise`: a standalone depthwise k x k convolution -> bias ->
activation, NHWC, in one kernel: for the depthwise layers that stay unfused
(followed by a norm, a squeeze-excite, or a pointwise conv that runs better
on its own), where XLA's kernels sit far above the memory floor and stride 2
adds a padding pass."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
from jax import lax

from jax_fcm import _args, _ffi, _kernel_call, depthwise_backward
from jax_fcm.activations import activation_code, normalize_activation
from jax_fcm.reference import depthwise_conv

IMPLEMENTATIONS = (None, "kernel", "xla")


@dataclasses.dataclass(frozen=True)
class _Static:
    """Everything about a call that is not an array: hashable for custom_vjp."""

    stride: int
    padding: _args.Padding
    activation: str
    precision: lax.Precision

    def reference(self, x, kernel, bias):
        return depthwise_conv(x, kernel, bias, stride=self.stride, padding=self.padding, activation=self.activation,
                              precision=self.precision)


def _ffi_call(st: _Static, x, kernel, bias):
    n, h, w, c = x.shape
    k = kernel.shape[0]
    ho = _args.output_size(h, k, st.stride, st.padding[0])
    wo = _args.output_size(w, k, st.stride, st.padding[1])
    call = jax.ffi.ffi_call(_ffi.DEPTHWISE_TARGET, jax.ShapeDtypeStruct((n, ho, wo, c), x.dtype))
    return call(x, kernel, bias, stride=np.int64(st.stride),
                pad_top=np.int64(st.padding[0][0]), pad_bottom=np.int64(st.padding[0][1]),
                pad_left=np.int64(st.padding[1][0]), pad_right=np.int64(st.padding[1][1]),
                activation=np.int64(activation_code(st.activation)))


def _backward(call, st, residuals, g):
    """The depthwise backward kernel where it pays (depthwise_backward.use_kernel), from the
    cotangent before the activation; XLA's backward of the reference elsewhere."""
    x, kernel, _ = residuals
    if not depthwise_backward.use_kernel(kernel.shape[0], st.stride, st.padding, g.shape[1], g.shape[2], x.dtype):
        _, vjp = jax.vjp(st.reference, *residuals)
        return vjp(g)
    d_pre = _kernel_call.pre_activation_cotangent(call, st, residuals, g)
    return depthwise_backward.depthwise_gradients(x, d_pre, kernel, stride=st.stride, padding=st.padding)


# The FFI call with vmap and batch-sharding rules and the custom VJP above.
_call = _kernel_call.differentiable_kernel_call(_ffi_call, _backward)


def depthwise(x, kernel, bias=None, *, strides=1, padding="SAME", activation=None, precision=None,
              implementation=None):
    """Depthwise k x k convolution -> bias -> activation, NHWC, in one kernel.

    The same as ``lax.conv_general_dilated(x, kernel, strides, padding,
    dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=C)``
    followed by ``+ bias`` and the activation (Flax: ``nn.Conv(C, (k, k),
    feature_group_count=C)``).

    Args:
      x: ``(..., N, H, W, C)``; extra leading axes are folded into the batch.
      kernel: ``(k, k, 1, C)``, k in {3, 5, 7}.
      bias: ``(C,)`` or None.
      strides: 1 or 2 (int or equal pair); stride 2 needs no padding pass.
      padding: "SAME" (TF/Flax), "VALID", an int or pair of ints (symmetric,
        as PyTorch), or ((top, bottom), (left, right)).
      activation: None, "relu", "relu6", "silu", "gelu_exact", "gelu_tanh" or
        "hard_swish".
      precision: as in lax; used by the "xla" path. The kernel always
        multiplies and accumulates in fp32 (no TF32: a depthwise conv has no
        GEMM to put on tensor cores), whatever the precision.
      implementation: None or "kernel" for the jax_fcm kernel (CUDA on GPU,
        C++ on CPU); "xla" for the same math as plain lax ops.

    Returns:
      ``(..., N, Ho, Wo, C)`` in x's dtype (kernel and bias must share it).
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}; got {implementation!r}")
    _args.check_operands({"x": x, "kernel": kernel}, {"bias": bias})
    *lead, h, w, c = x.shape
    if c == 0:
        raise ValueError(f"x must have at least one channel; got shape {x.shape}")
    k = _args.depthwise_kernel_size(kernel, c, name="kernel")
    if bias is not None:
        _args.check_shape(bias, (c,), "bias", "(C,)")
    stride, pads, ho, wo = _args.window(strides, padding, h, w, k)
    if implementation != "xla" and max(h * w * c, ho * wo * c) > _args.INT32_MAX:
        raise ValueError(f"one image has {max(h * w * c, ho * wo * c)} elements, more than the kernel indexes "
                         "(2**31 - 1); use implementation='xla'")
    st = _Static(stride=stride, padding=pads, activation=normalize_activation(activation, "activation"),
                 precision=_args.normalize_precision(precision))
    return _kernel_call.run(_call, st, x, kernel, bias, implementation)

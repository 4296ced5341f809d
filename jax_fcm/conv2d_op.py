"""`jax_fcm.conv2d`: a dense kh x kw convolution -> bias -> activation, NHWC,
in one kernel: for the stems (3x3 stride 2 and ConvNeXt's 4x4 stride 4 over
3 channels, where XLA's convolutions sit 5-8x above their memory floor), and
the full 3x3 convs of MobileViT-style blocks. An implicit GEMM on tensor
cores whose A rows are the output pixels' windows in window order (im2win),
gathered from x on chip: no im2col tensor, no padding copy."""

from __future__ import annotations

import dataclasses
import math

import jax
import numpy as np
from jax import lax

from jax_fcm import _args, _ffi, _kernel_call, planner
from jax_fcm.activations import activation_code, normalize_activation
from jax_fcm.pointwise_op import pointwise_plan
from jax_fcm.reference import dense_conv

IMPLEMENTATIONS = (None, "kernel", "xla")


@dataclasses.dataclass(frozen=True)
class _Static:
    """Everything about a call that is not an array: hashable for custom_vjp."""

    strides: tuple[int, int]
    padding: _args.Padding
    activation: str
    precision: lax.Precision

    def reference(self, x, kernel, bias):
        return dense_conv(x, kernel, bias, strides=self.strides, padding=self.padding, activation=self.activation,
                          precision=self.precision)


def _ffi_call(st: _Static, x, kernel, bias):
    n, h, w, _ = x.shape
    kh, kw, _, cout = kernel.shape
    ho = _args.output_size(h, kh, st.strides[0], st.padding[0])
    wo = _args.output_size(w, kw, st.strides[1], st.padding[1])
    call = jax.ffi.ffi_call(_ffi.CONV2D_TARGET, jax.ShapeDtypeStruct((n, ho, wo, cout), x.dtype))
    # float32 at DEFAULT precision multiplies on TF32 tensor cores, as XLA does.
    full_fp32 = _args.full_fp32(st.precision)
    return call(x, kernel, bias, stride_h=np.int64(st.strides[0]), stride_w=np.int64(st.strides[1]),
                pad_top=np.int64(st.padding[0][0]), pad_bottom=np.int64(st.padding[0][1]),
                pad_left=np.int64(st.padding[1][0]), pad_right=np.int64(st.padding[1][1]),
                activation=np.int64(activation_code(st.activation)), pw_math=np.int64(1 if full_fp32 else 0))


# The FFI call with vmap and batch-sharding rules and a custom VJP: the
# linear part's gradients are XLA's own transposed convolutions.
_call = _kernel_call.differentiable_kernel_call(_ffi_call)


def conv2d(x, kernel, bias=None, *, strides=1, padding="SAME", activation=None, precision=None,
           implementation=None):
    """Dense kh x kw convolution -> bias -> activation, NHWC, in one kernel.

    The same as ``lax.conv_general_dilated(x, kernel, strides, padding,
    dimension_numbers=("NHWC", "HWIO", "NHWC"))`` followed by ``+ bias`` and
    the activation (Flax: ``nn.Conv(Cout, (kh, kw), strides)``).

    Args:
      x: ``(..., N, H, W, Cin)``; extra leading axes are folded into the batch.
      kernel: ``(kh, kw, Cin, Cout)`` (HWIO), any window size.
      bias: ``(Cout,)`` or None.
      strides: an int or a pair (sh, sw), each >= 1.
      padding: "SAME" (TF/Flax), "VALID", an int or pair of ints (symmetric,
        as PyTorch), or ((top, bottom), (left, right)).
      activation: None, "relu", "relu6", "silu", "gelu_exact", "gelu_tanh" or
        "hard_swish".
      precision: as in lax. For float32 the default multiplies on TF32 tensor
        cores on the GPU (as XLA does); "high"/"highest" ask for full fp32.
        bfloat16/float16 multiply on tensor cores and accumulate in fp32. The
        CPU handler always computes in fp32.
      implementation: None (the default) runs the jax_fcm kernel where
        ``jax_fcm.planner.use_conv2d_kernel`` says it measured faster than
        XLA's convolution (the stems; small outputs), else XLA's; "kernel"
        always runs the jax_fcm kernel (CUDA on GPU, C++ on CPU); "xla" the
        same math as plain lax ops.

    Returns:
      ``(..., N, Ho, Wo, Cout)`` in x's dtype (kernel and bias must share it).
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}; got {implementation!r}")
    _args.check_operands({"x": x, "kernel": kernel}, {"bias": bias})
    *lead, h, w, cin = x.shape
    if kernel.ndim != 4 or kernel.shape[2] != cin:
        raise ValueError(f"kernel must have shape (kh, kw, Cin={cin}, Cout); got {kernel.shape}")
    kh, kw, _, cout = kernel.shape
    if min(cin, cout, kh, kw) == 0:
        raise ValueError(f"kernel sizes and channel counts must be positive; got x {x.shape}, kernel {kernel.shape}")
    if bias is not None:
        _args.check_shape(bias, (cout,), "bias", "(Cout,)")
    strides, pads, ho, wo = _args.dense_window(strides, padding, h, w, kh, kw)
    n = math.prod(lead)
    reach = (n * h + pads[0][0] + kh) * (w + pads[1][0] + kw) * cin  # conv2d_shape_supported in C++
    fits = max(reach, n * ho * wo + 128, kh * kw * cin * cout, 128 * kh * kw * cin, 128 * cout) <= _args.INT32_MAX
    refusal = None if fits else ("the input (with padding) or the kernel has more elements than the CUDA kernel "
                                 "indexes (2**31 - 1); use implementation='xla'")
    implementation = _args.resolve_implementation(
        implementation, refusal, lambda: planner.use_conv2d_kernel(x.shape, kernel.shape, strides, pads))
    st = _Static(strides=strides, padding=pads, activation=normalize_activation(activation, "activation"),
                 precision=_args.normalize_precision(precision))
    return _kernel_call.run(_call, st, x, kernel, bias, implementation)


def conv2d_plan(dtype, pixels: int, kh: int, kw: int, cin: int, cout: int, *, sm_count: int,
                clusters: bool = True) -> dict:
    """How the CUDA kernel lays out a conv2d with `pixels` (N*Ho*Wo) outputs:
    the pointwise kernel's plan for the implicit GEMM of K = kh*kw*Cin (see
    jax_fcm.pointwise_plan; never the wgmma kernel), as plan_conv2d in C++."""
    return pointwise_plan(dtype, pixels, kh * kw * cin, cout, sm_count=sm_count, clusters=clusters, wgmma=False)
